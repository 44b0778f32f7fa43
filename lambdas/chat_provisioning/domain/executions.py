"""Facts of Step Functions' executions that the workflow and the operators' tool both reason
with: which statuses failed, an execution's ARN from its name, the newest state entered."""

from typing import Any

# The statuses of an execution that did not succeed: audited, and the ones a redrive takes.
FAILED_STATUSES = ["FAILED", "TIMED_OUT", "ABORTED"]


def execution_arn(state_machine_arn: str, name: str) -> str:
    return f"{state_machine_arn.replace(':stateMachine:', ':execution:')}:{name}"


def newest_state_entered(events: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The details (name, input) of the newest state entered, picked by event id: that order
    is what Step Functions defines, and moto ignores reverseOrder."""
    entered = [e for e in events if "stateEnteredEventDetails" in e]
    return max(entered, key=lambda e: e["id"])["stateEnteredEventDetails"] if entered else None
