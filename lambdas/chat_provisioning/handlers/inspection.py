"""InspectUser: one user as Cognito and Synapse see it now, and the drift between them as the
sweep's planner computes it for this user alone. Read-only, for operators (`chat-provisioning
user status`): it runs in the VPC beside the steps, so nobody needs the bot's token or a route
to Synapse to ask why someone is not in a room. The input names a sub and nothing else."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from ..adapters.telemetry import logger
from ..domain.config import ChatConfig
from ..domain.models import Sub, parse
from ..domain.policy import CognitoUser, level_of, standing, user_id_for
from ..domain.sweep_plan import MatrixSide, plan
from .matrix_reads import read_matrix_user
from .runtime import Runtime, runtime


def report(sub: str, user: CognitoUser | None, matrix: MatrixSide, config: ChatConfig) -> dict[str, Any]:
    """The answer: both sides, and the plan's fixes and findings for this user (JSON)."""
    user_id = user_id_for(sub, config)
    drift = plan([user] if user else [], matrix, config).report()
    return {
        "sub": sub, "user_id": user_id,
        "cognito": {"standing": standing(user), **({"status": user.status, "enabled": user.enabled,
                                                    "groups": list(user.groups)} if user else {})},
        "matrix": {"exists": user_id in matrix.users, "deactivated": matrix.users.get(user_id),
                   "rooms": [{"room": key, "name": room.name, "room_id": room.room_id,
                              "exists": room.room_id in matrix.members,
                              "joined": user_id in matrix.members.get(room.room_id, ()),
                              "power_level": level_of(matrix.levels[room.room_id], user_id)
                              if room.room_id in matrix.levels else None}
                             for key, room in config.rooms.items()]},
        "drift": {"fixes": [{"kind": f["kind"], "room_id": f["room"]} for f in drift["fixes"]],
                  "findings": [{"kind": f["kind"], "room_id": f["room"], "detail": f["detail"]}
                               for f in drift["findings"]]},
    }


@logger.inject_lambda_context(clear_state=True)
def inspect_user(event: dict[str, Any], context: LambdaContext, rt: Runtime | None = None) -> dict[str, Any]:
    sub = parse(Sub, event).sub
    logger.append_keys(sub=sub)
    rt = rt or runtime()
    rt.deadline.start(context.get_remaining_time_in_millis())
    user = rt.directory.user(sub)
    return report(sub, user, read_matrix_user(rt.synapse, rt.config, user_id_for(sub, rt.config)), rt.config)
