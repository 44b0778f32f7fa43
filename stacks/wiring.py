"""The deployment's metadata, read by the CDK stack and by the local run alike, so that it
exists once (and ships in no Lambda asset): which handler serves which function, which call
Synapse, the functions' environment, the rules' event patterns, the steps' time. Steps are
named as the ASL names their Task states; `${<Function>FunctionArn}` in statemachines/*.asl.json
is the ARN of the function that serves the Task."""

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chat_provisioning.domain.config import CONFIG_ENV, ChatConfig
from chat_provisioning.domain.deadline import LEASE_WAIT_SECONDS, RESERVE_SECONDS
from chat_provisioning.domain.models import COGNITO_EVENT_NAMES, SYNC_EVENT
from chat_provisioning.handlers import failure_audit, inspection, signup, starts, steps


def handler(fn: Callable[..., Any]) -> str:
    """Lambda's name of a handler, from the function itself: a rename cannot leave it behind."""
    return f"{fn.__module__}.{fn.__name__}"


# The functions that serve the Task states. One serves every SyncUser step (steps.SYNC_USER_STEPS),
# so that a sign-up meets one cold start on its way to The Red Room, not one per step: it runs
# the step its Task names. PlanSweep has its own: a sweep's memory, S3 and the whole pool.
STEP_FUNCTIONS = {name: handler(fn) for name, fn in {
    "SyncUserSteps": steps.sync_user_step,
    "PlanSweep": steps.plan_sweep,
}.items()}
# The functions that call Synapse: only these run in the VPC, read the bot's token, and have a
# reserved concurrency (config synapse_concurrency). The others call AWS's public APIs only.
CALLS_SYNAPSE = {"SyncUserSteps", "PlanSweep", "InspectUser"}
TRIGGERS = {name: handler(fn) for name, fn in {
    "PostConfirmation": signup.post_confirmation,
    "RetryStart": starts.retry_start,
    "RecordFailure": failure_audit.record_failure,
    "OnCognitoChange": starts.on_cognito_change,
}.items()}
# Operators' functions, invoked by `chat-provisioning` (toolbox/): read-only.
TOOLS = {"InspectUser": handler(inspection.inspect_user)}
INSPECT_SECONDS = 30  # a user and a few rooms: about ten GETs (the deadline ends a slow Synapse's)
INSPECT_CONCURRENCY = 2  # operators asking at once; the rest are throttled, not piled on Synapse
FUNCTIONS = {**STEP_FUNCTIONS, **TRIGGERS, **TOOLS}  # every function the stack deploys -> its handler
# The state machines (the stack, the local run and the tests walk this) and their ASL files.
STATEMACHINES = Path(__file__).resolve().parents[1] / "statemachines"
MACHINES = {"SyncUser": STATEMACHINES / "sync_user.asl.json",
            "SweepUsers": STATEMACHINES / "sweep_users.asl.json"}  # runs the one above
SERVICE = "chat-provisioning"
SYNC_EVENT_PATTERN = {key: [value] for key, value in SYNC_EVENT.items()}  # models.SYNC_EVENT


def sync_event_pattern(account: str) -> dict[str, Any]:
    """The custom event from this account only: a bus policy could one day let another in."""
    return {**SYNC_EVENT_PATTERN, "account": [account]}


def cognito_event_pattern(user_pool_id: str, account: str) -> dict[str, Any]:
    """CloudTrail's record of the admin calls that change a user's roles or status, when they
    succeeded (a refused call's record has an errorCode: it changed nothing), in this account
    (events forwarded from another account keep their aws.* source)."""
    return {"source": ["aws.cognito-idp"], "detail-type": ["AWS API Call via CloudTrail"], "account": [account],
            "detail": {"eventSource": ["cognito-idp.amazonaws.com"], "eventName": COGNITO_EVENT_NAMES,
                       "errorCode": [{"exists": False}],
                       "requestParameters": {"userPoolId": [user_pool_id]}}}


# The events that report an execution's status (the failure audit's rule takes FAILED_STATUSES).
EXECUTION_STATUS_PATTERN = {"source": ["aws.states"], "detail-type": ["Step Functions Execution Status Change"]}


# Each step's time is its Task's TimeoutSeconds in the ASL, where operators read it. The
# function gets this much less: its own timeout comes first (Lambda.Unknown, retried), and the
# Task's (States.Timeout) only when Lambda did not answer at all.
TASK_OVERHEAD_SECONDS = 10


def lambda_tasks(states: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """The Tasks that invoke a step's function (`${<Function>FunctionArn}`), nested ones
    included: (the function, the state's name, the state)."""
    found = []
    for name, state in states.items():
        if function := re.fullmatch(r"\$\{(\w+)FunctionArn\}", str(state.get("Resource"))):
            found.append((function.group(1), name, state))
        found += lambda_tasks(state.get("ItemProcessor", {}).get("States", {}))
    return found


def function_timeouts() -> dict[str, int]:
    """Each step function's timeout, from its Tasks' TimeoutSeconds: one function, one time."""
    found: dict[str, dict[str, int]] = {}
    for asl in MACHINES.values():
        for function, state, task in lambda_tasks(json.loads(asl.read_text())["States"]):
            found.setdefault(function, {})[state] = task["TimeoutSeconds"]
    if differ := {function: tasks for function, tasks in found.items() if len(set(tasks.values())) != 1}:
        raise SystemExit(f"one function has one timeout, and these Tasks of one function differ in their "
                         f"TimeoutSeconds (statemachines/): {differ}. Give each of a function's Tasks the same.")
    return {function: max(tasks.values()) - TASK_OVERHEAD_SECONDS for function, tasks in found.items()}


def longest_unsplit_seconds(config: ChatConfig) -> float:
    """What a step that calls Synapse cannot split, and so must fit in its function's time: the
    wait for a room's lease, then one guarded write (the levels read, the PUT, the read-back),
    each request up to twice synapse_timeout_seconds (connect, then read), and the reserve to
    answer. Everything else stops at the deadline and is retried (domain/deadline.py)."""
    return LEASE_WAIT_SECONDS + 3 * 2 * config.synapse_timeout_seconds + RESERVE_SECONDS


def placeholder(function: str) -> str:
    return f"{function}FunctionArn"


def machine_placeholder(machine: str) -> str:
    return f"{machine}StateMachineArn"


PLANS_BUCKET_PLACEHOLDER = "PlansBucketName"  # where the sweep's Distributed Map writes results


def lambda_environment(config: ChatConfig, audit_table: str, locks_table: str,
                       retry_queue_url: str = "", sync_state_machine_arn: str = "",
                       plans_bucket: str = "") -> dict[str, str]:
    env = {
        CONFIG_ENV: config.to_env(),
        "USER_POOL_ID": config.user_pool.user_pool_id,  # read unparsed by the sign-up trigger (handlers/signup.py)
        "AUDIT_TABLE": audit_table,
        "LOCKS_TABLE": locks_table,
        "POWERTOOLS_SERVICE_NAME": SERVICE,
    }
    if retry_queue_url:
        env["START_RETRY_QUEUE_URL"] = retry_queue_url
    if sync_state_machine_arn:
        env["SYNC_STATE_MACHINE_ARN"] = sync_state_machine_arn
    if plans_bucket:
        env["PLANS_BUCKET"] = plans_bucket
    return env
