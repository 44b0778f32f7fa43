"""What the sweep and InspectUser read of Matrix, for sweep_plan.plan: the whole server in paged
lists and one request per room, never one per user (read_matrix), or one user (read_matrix_user)."""

from typing import Any

from ..domain.config import ChatConfig
from ..domain.policy import CognitoUser, level_of, links_of
from ..domain.sweep_plan import MatrixSide, in_scope, matrix_only
from ..ports import ChatServer


def read_matrix(synapse: ChatServer, config: ChatConfig, users_in_cognito: list[CognitoUser],
                adopt: bool = False) -> MatrixSide:
    """`adopt`: the links of every active user in scope too, not only of those Cognito does
    not know (one request per user: for going live, not for the daily sweep)."""
    listed = synapse.list_users()
    users = {u: entry.deactivated for u, entry in listed.items()}
    members, levels = {}, {}
    for room in config.rooms.values():
        joined = synapse.room_members(room.room_id)
        if joined is not None:
            members[room.room_id] = joined
            levels[room.room_id] = synapse.power_levels(room.room_id)
    linked = ([u for u, deactivated in users.items() if not deactivated and in_scope(u, config)] if adopt
              else matrix_only(users_in_cognito, users, config))
    return MatrixSide(users, {u: entry.displayname for u, entry in listed.items()}, members, levels,
                      {u: links_of(synapse.user(u) or {}) for u in linked})


def read_matrix_user(synapse: ChatServer, config: ChatConfig, user_id: str) -> MatrixSide:
    """What the sweep reads of Matrix (read_matrix), for one user: whether it exists,
    which configured rooms exist and hold it, and each room's power levels with only its level
    and the bot's (what the bot can change). Nothing of other users is kept."""
    user = synapse.user(user_id)
    members: dict[str, frozenset[str]] = {}
    levels: dict[str, dict[str, Any]] = {}
    for room in config.rooms.values():
        joined = synapse.room_members(room.room_id)
        if joined is None:
            continue  # the planner reports it as room_missing
        members[room.room_id] = joined & {user_id}
        content = synapse.power_levels(room.room_id)
        levels[room.room_id] = {**{k: v for k, v in content.items() if k != "users"}, "users": {
            u: level_of(content, u) for u in (user_id, synapse.bot_user_id)}}
    return MatrixSide(users={user_id: bool(user["deactivated"])} if user else {},
                      names={user_id: user.get("displayname")} if user else {},
                      members=members, levels=levels,
                      links={user_id: links_of(user)} if user else {})
