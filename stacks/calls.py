"""Which AWS calls each function makes, on what, and why: written here once. The stack grants
exactly these (functions.Functions.grant), the README's least-privilege table is written from
them (`make docs`), the local run checks every call a function made against them and against its
role (local_run/iam_check.py), and the infra test holds each role in the template to them.

A new call is one line here, in its function's entry, naming a resource its part of the stack
hands to `grant`."""

from dataclasses import dataclass
from typing import Literal

# What a call is made on, as each part of the stack names its resources for `grant`.
Resource = Literal["pool", "token", "audit table", "lease table", "plans", "SyncUser", "SyncUser's executions",
                   "the machines' executions", "retry queue", "failed events queue"]


@dataclass(frozen=True)
class Calls:
    actions: tuple[str, ...]
    on: Resource
    why: str
    granted_by_cdk: bool = False  # CDK grants these with what needs them (an event source)


START = (Calls(("states:StartExecution",), "SyncUser", "start the user's workflow"),
         Calls(("states:DescribeExecution",), "SyncUser's executions",
               "a taken name: the existing execution's input tells a repeat from another start"))
READ_USER = Calls(("cognito-idp:AdminGetUser",), "pool",
                  "the sign-up's username must resolve to its sub in the pool before a start")
FAILED_EVENT = Calls(("sqs:SendMessage",), "failed events queue", "Lambda sends its on-failure record as the function")
TOKEN = Calls(("secretsmanager:GetSecretValue",), "token",
              "the bot's token, to call Synapse (and kms:Decrypt through Secrets Manager only, when "
              "config names a customer managed key)")

CALLS: dict[str, tuple[Calls, ...]] = {
    "SyncUserSteps": (
        Calls(("cognito-idp:ListUsers", "cognito-idp:AdminListGroupsForUser"), "pool",
              "ReadCognitoUser, and each step that grants, right before it writes"),
        TOKEN,
        Calls(("dynamodb:Query", "dynamodb:PutItem"), "audit table",
              "RecordAudit's items, always conditional (append-only in the code; IAM cannot require "
              "the condition); ProvisionUser's reactivation rule reads the trail and puts the "
              "reactivation on it before the act"),
        Calls(("dynamodb:UpdateItem",), "lease table", "AssignRoles' room leases (only ever updated)"),
    ),
    "PlanSweep": (
        Calls(("cognito-idp:ListUsers", "cognito-idp:ListGroups", "cognito-idp:ListUsersInGroup"), "pool",
              "the whole pool and its groups, for the plan"),
        TOKEN,
        Calls(("s3:PutObject",), "plans", "the plan and the requests the Distributed Map reads"),
        Calls(("dynamodb:UpdateItem",), "lease table", "--align-rooms' room leases"),
    ),
    "InspectUser": (
        Calls(("cognito-idp:ListUsers", "cognito-idp:AdminListGroupsForUser"), "pool",
              "one user, for operators (it only reads)"),
        TOKEN,
    ),
    "PostConfirmation": (
        READ_USER, *START,
        Calls(("sqs:SendMessage",), "retry queue", "a start that did not answer in time, for RetryStart"),
    ),
    "RetryStart": (
        READ_USER, *START,
        Calls(("sqs:ReceiveMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueUrl", "sqs:DeleteMessage",
               "sqs:GetQueueAttributes"), "retry queue", "the queue's consumer", granted_by_cdk=True),
    ),
    "OnCognitoChange": (
        Calls(("cognito-idp:AdminGetUser",), "pool", "the sub of a CloudTrail record that names only a username"),
        *START,
        FAILED_EVENT,
    ),
    "RecordFailure": (
        Calls(("dynamodb:PutItem",), "audit table", "the failed execution's item"),
        Calls(("states:GetExecutionHistory",), "the machines' executions", "the state it failed in"),
        FAILED_EVENT,
    ),
}


def actions(function: str) -> set[str]:
    return {a for c in CALLS[function] for a in c.actions}


def readme_table() -> list[str]:
    """The README's least-privilege table."""
    return ["| function | may call | on | why |", "|---|---|---|---|"] + [
        f"| `{function}` | {', '.join(f'`{a}`' for a in c.actions)} | {c.on} | {c.why} |"
        for function, calls in CALLS.items() for c in calls]
