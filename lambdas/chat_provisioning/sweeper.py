"""Drift repair, the I/O part: read Cognito (paged) and Synapse (paged lists, one request per
room, never one per user), plan with sweep.plan, and apply by starting each drifted user's
own workflow (provisioning or role sync), so every fix has its execution, audit and redrive."""

import json
import time
from collections import deque

from . import wiring
from .config import ChatConfig
from .policy import display_name_of
from .runtime import start_once
from .sweep import CognitoUser, MatrixSide, Plan, matrix_only, plan
from .synapse import SynapseAdmin

DONE = {"SUCCEEDED", *wiring.FAILED_STATUSES}


def read_cognito(idp, user_pool_id: str) -> list[CognitoUser]:
    """Users from ListUsers, groups from ListUsersInGroup: pages of 60, not a call per user."""
    in_group: dict[str, list[str]] = {}
    for page in idp.get_paginator("list_groups").paginate(UserPoolId=user_pool_id):
        for group in page["Groups"]:
            for members in idp.get_paginator("list_users_in_group").paginate(
                    UserPoolId=user_pool_id, GroupName=group["GroupName"]):
                for user in members["Users"]:
                    in_group.setdefault(user["Username"], []).append(group["GroupName"])
    users = []
    for page in idp.get_paginator("list_users").paginate(UserPoolId=user_pool_id):
        for user in page["Users"]:
            attributes = {a["Name"]: a["Value"] for a in user.get("Attributes", [])}
            users.append(CognitoUser(
                sub=attributes.get("sub", ""), enabled=user.get("Enabled", True),
                groups=tuple(sorted(in_group.get(user["Username"], []))),
                display_name=display_name_of(attributes)))
    return users


def read_matrix(synapse: SynapseAdmin, config: ChatConfig, cognito: list[CognitoUser]) -> MatrixSide:
    users = synapse.list_users()
    members, levels = {}, {}
    for room in config.rooms.values():
        joined = synapse.room_members(room.room_id)
        if joined is not None:
            members[room.room_id] = joined
            levels[room.room_id] = synapse.power_levels(room.room_id)
    external = {u: synapse.external_ids(u, config.auth_provider)
                for u in matrix_only(cognito, users, config)}
    return MatrixSide(users, members, levels, external)


def sweep(idp, synapse: SynapseAdmin, config: ChatConfig) -> Plan:
    cognito = read_cognito(idp, config.user_pool.user_pool_id)
    return plan(cognito, read_matrix(synapse, config, cognito), config)


def apply(sfn, the_plan: Plan, machines: dict[str, str], sweep_id: str,
          max_in_flight: int = 8, poll_seconds: float = 0.5) -> dict[str, dict]:
    """Start one execution per drifted user, never more than `max_in_flight` running at once
    (Synapse is single-threaded). Named sweep-<id>-<sub>: re-applying the same sweep starts
    nothing twice. Returns each user's execution and final status."""
    pending = deque(sorted(the_plan.requests.items()))
    running: dict[str, str] = {}
    status: dict[str, dict] = {}
    while pending or running:
        while pending and len(running) < max_in_flight:
            sub, request = pending.popleft()
            running[sub] = start_once(sfn, machines[request["workflow"]], f"sweep-{sweep_id}-{sub}"[:80],
                                      json.dumps(request["input"]))
        time.sleep(poll_seconds)
        for sub, arn in list(running.items()):
            state = sfn.describe_execution(executionArn=arn)["status"]
            if state in DONE:
                status[sub] = {"execution": arn, "status": state}
                del running[sub]
    return status

