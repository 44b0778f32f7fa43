"""Which handler serves which function, read by the CDK stack and by the local run alike, so
the wiring exists once. Steps are named as the ASL names them: `${<Step>FunctionArn}` in
statemachines/provision_user.asl.json is the ARN of the function that serves <Step>."""

import re
from pathlib import Path

from .config import CONFIG_ENV, ChatConfig

STEPS = {
    "ProvisionUser": "chat_provisioning.steps.provision_user",
    "JoinRooms": "chat_provisioning.steps.join_rooms",
    "AssignRoles": "chat_provisioning.steps.assign_roles",
    "RecordAudit": "chat_provisioning.steps.record_audit",
}
TRIGGERS = {
    "PostConfirmation": "chat_provisioning.triggers.post_confirmation",
    "RetryStart": "chat_provisioning.triggers.retry_start",
    "RecordFailure": "chat_provisioning.triggers.record_failure",
}
ASL_FILE = Path(__file__).resolve().parents[2] / "statemachines" / "provision_user.asl.json"
SERVICE = "chat-provisioning"
# The documented custom event that provisions a user (README, "Starting the workflow"):
# its detail is the execution input, {"sub": ..., "groups": [...], "display_name": ...}.
PROVISION_EVENT_PATTERN = {"source": ["chat-provisioning"], "detail-type": ["Provision chat user"]}
# Executions that did not succeed, for the failure audit.
FAILED_STATUSES = ["FAILED", "TIMED_OUT", "ABORTED"]


def placeholder(step: str) -> str:
    return f"{step}FunctionArn"


def substitute(asl: str, values: dict[str, str]) -> str:
    """What CDK's definition_substitutions does at deploy: replace every ${Key}."""
    missing = set(re.findall(r"\$\{(\w+)\}", asl)) - set(values)
    if missing:
        raise KeyError(f"no value for ASL placeholders {sorted(missing)}")
    return re.sub(r"\$\{(\w+)\}", lambda m: values[m.group(1)], asl)


def lambda_environment(config: ChatConfig, audit_table: str, locks_table: str,
                       state_machine_arn: str = "", retry_queue_url: str = "") -> dict[str, str]:
    env = {
        CONFIG_ENV: config.to_env(),
        "AUDIT_TABLE": audit_table,
        "LOCKS_TABLE": locks_table,
        "POWERTOOLS_SERVICE_NAME": SERVICE,
    }
    if state_machine_arn:
        env["STATE_MACHINE_ARN"] = state_machine_arn
    if retry_queue_url:
        env["START_RETRY_QUEUE_URL"] = retry_queue_url
    return env
