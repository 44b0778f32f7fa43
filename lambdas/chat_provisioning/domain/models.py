"""What flows through the workflow. What starts it names a user and at most a cause: anything
else in the execution input is refused, so no caller can grant, forge or carry anything. The
state after that is built by the steps themselves, from Cognito and Synapse."""

from typing import Any, Literal, TypeVar, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .config import Frozen
from .errors import InvalidInput
from .policy import Standing
from .subs import normalise_sub

# Why a run started: the sign-up trigger, CloudTrail's record of a Cognito admin call, the
# custom event, the sweep, or an operator. Only "AdminEnableUser" may reactivate, and only a
# deactivation this workflow made (steps.provision_user).
Cause = Literal["signup", "AdminAddUserToGroup", "AdminRemoveUserFromGroup", "AdminDisableUser",
                "AdminEnableUser", "AdminDeleteUser", "AdminResetUserPassword", "AdminSetUserPassword",
                "AdminUpdateUserAttributes", "event", "sweep", "manual"]
# The Cognito admin calls whose CloudTrail records start a user's sync (handlers/starts.on_cognito_change):
# those that change a user's groups, status (a password reset or a temporary password makes
# a user unconfirmed: it keeps no grant until it is confirmed again) or name.
COGNITO_EVENT_NAMES = [c for c in get_args(Cause) if c.startswith("Admin")]
# The documented custom event that syncs a user with Cognito now (docs/how-it-works.md, "Who
# can start what"), on the stack's own bus: detail {"sub": ...} and nothing else.
SYNC_EVENT = {"source": "chat-provisioning", "detail-type": "Sync chat user"}


M = TypeVar("M", bound=BaseModel)


class Sub(Frozen):
    sub: str

    @field_validator("sub")
    @classmethod
    def valid_sub(cls, value: str) -> str:
        try:
            return normalise_sub(value)
        except InvalidInput as e:
            raise ValueError(str(e)) from None


class StartRequest(Sub):
    """The execution input, from whoever starts a run (trigger, event, sweep, console)."""
    cause: Cause = "manual"


class Action(Frozen):
    """One thing a step did, found done, or found wrong: one audit item each."""
    step: str
    action: str  # create_user, update_user, join, set_power_level, deactivate_user, finding...
    room: str | None = None  # room ID
    outcome: str  # created, updated, joined, already_joined, set:100, unchanged, unknown_group:x...


class WorkflowState(Sub):
    """The state between steps, built by ReadCognitoUser from Cognito and extended by each
    step. Never execution input: a start that carries any of it is refused."""
    cause: Cause
    cognito: Standing | Literal["unmanaged"]
    # The groups that grant something, sorted, as the run's first read found them: shown to
    # operators and compared with later reads (a finding when they differ), never the basis
    # of a grant: each step that grants reads Cognito again (steps.granted_now).
    groups: tuple[str, ...] = ()
    user_id: str | None = None
    actions: tuple[Action, ...] = ()
    # The run ("<execution id>#<redrive count>") in which ProvisionUser saw the user active:
    # later steps of that run skip the check; a redriven run checks again, since the user may
    # have been deactivated since.
    active_in_run: str | None = None

    @model_validator(mode="before")
    @classmethod
    def without_retired_fields(cls, data: Any) -> Any:
        """A run started before issue 22 carried the display name and the rooms joined; its
        redrive must still parse (each step now reads them itself)."""
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if k not in ("display_name", "joined")}
        return data

    def did(self, *actions: Action) -> "WorkflowState":
        return self.model_copy(update={"actions": self.actions + actions})


class Run(Frozen):
    """Which run a step belongs to, from the context object (never from the state)."""
    execution: str  # $$.Execution.Id: a redrive keeps it
    redrive: int = 0  # $$.Execution.RedriveCount

    @property
    def id(self) -> str:
        return f"{self.execution}#{self.redrive}"


class StepEvent(Run):
    """The Lambda payload each Task builds with Parameters: the context and the state."""
    workflow: dict[str, Any]
    step: str | None = None  # $$.State.Name: which step the function that serves several runs


class SweepRequest(Frozen):
    """The sweep's execution input (the schedule sends {})."""
    dry_run: bool = False
    # An operator's approval of a sweep held for its removals (leaves, demotions,
    # deactivations): applies them if it plans at most this many.
    approve_removals: int | None = Field(default=None, ge=0)
    # Read every active account's links (one Synapse request per user) and adopt those without
    # our tie: going live on a Synapse whose accounts the old trigger or a JWT login made.
    adopt: bool = False
    # Lower each leveled room's thresholds to the highest level a role gives there before
    # planning (the plan's `thresholds` on a dry run): its admins keep every power, the bot
    # alone above them.
    align_rooms: bool = False


class SweepEvent(Frozen):
    """The PlanSweep Task's payload: the execution (the sweep's id) and its input."""
    execution: str
    request: dict[str, Any]


class Loose(BaseModel):
    """AWS event shapes: the fields we read are checked, the rest is AWS's business."""
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)


class BusEvent(Loose):
    """An EventBridge event: its id, detail-type and detail."""
    id: str
    detail_type: str = Field(alias="detail-type")
    detail: dict[str, Any]


class ExecutionStatus(Loose):
    """The detail of 'Step Functions Execution Status Change'."""
    executionArn: str
    status: str
    input: str | None = None
    error: str | None = None
    cause: str | None = None
    redriveCount: int = 0


class RetryJob(Frozen):
    """A sign-up whose start failed, as the trigger queued it: checked again like the
    trigger's own event, since anyone who can send to the queue can write one."""
    user_pool_id: str
    user_name: str = Field(max_length=128)
    sub: str


def parse(model: type[M], data: object) -> M:
    """Validate into `model`, turning pydantic's error into the typed InvalidInput."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(map(str, err['loc'])) or 'event'}: {err['msg']}"
                             for err in e.errors(include_input=False, include_url=False))
        raise InvalidInput(f"{model.__name__}: {problems}") from None
