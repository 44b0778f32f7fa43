"""Drift repair, the I/O part: read Cognito (paged) and Synapse (paged lists, one request per
room, never one per user) and plan with sweep.plan. The plan is applied by the state
machine's Distributed Map, which starts each drifted user's own workflow."""

from .config import ChatConfig
from .policy import CognitoUser
from .ports import ChatServer, UserDirectory
from .sweep import MatrixSide, Plan, matrix_only, plan
from .synapse import external_ids


def read_matrix(synapse: ChatServer, config: ChatConfig, users_in_cognito: list[CognitoUser]) -> MatrixSide:
    users = synapse.list_users()
    members, levels = {}, {}
    for room in config.rooms.values():
        joined = synapse.room_members(room.room_id)
        if joined is not None:
            members[room.room_id] = joined
            levels[room.room_id] = synapse.power_levels(room.room_id)
    external = {u: external_ids(synapse.user(u) or {}, config.auth_provider)
                for u in matrix_only(users_in_cognito, users, config)}
    return MatrixSide(users, members, levels, external)


def sweep(directory: UserDirectory, synapse: ChatServer, config: ChatConfig) -> Plan:
    users = directory.all_users()
    return plan(users, read_matrix(synapse, config, users), config)
