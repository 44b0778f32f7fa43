"""The Step Functions adapter (ports.Workflows): starting a user's SyncUser execution once, and
reading which state an execution failed in."""

import json
import secrets
from typing import Any

from botocore.exceptions import ClientError

from ..domain.executions import execution_arn, newest_state_entered
from .clients import Client, given


class StepFunctionsWorkflows:
    def __init__(self, sync_state_machine_arn: str | None, client: Client):
        self.sync_state_machine_arn = sync_state_machine_arn
        self._client = client

    def start_sync(self, sub: str, cause: str, name: str) -> str:
        """Start the user's SyncUser workflow as `name` (or find it started): its ARN. A name
        another execution took with another input (anyone with StartExecution can pre-start
        `signup-<sub>`) is counted (StartNamesTaken, alarmed), and this start is made under a
        name nobody could predict."""
        machine, workflow_input = given(self.sync_state_machine_arn, "SYNC_STATE_MACHINE_ARN"), json.dumps(
            {"sub": sub, "cause": cause})
        try:
            return start_once(self._client(), machine, name, workflow_input)
        except NameTaken:
            from .telemetry import count  # the metrics of the function that starts, loaded only here
            count("StartNamesTaken")
            return start_once(self._client(), machine, f"{name[:66]}-{secrets.token_hex(6)}", workflow_input)

    def last_state_entered(self, execution_arn: str) -> str | None:
        """Asks for the newest events first: the failed state is among them."""
        events = self._client().get_execution_history(
            executionArn=execution_arn, reverseOrder=True, maxResults=100)["events"]
        entered = newest_state_entered(events)
        return entered["name"] if entered else None


class NameTaken(Exception):
    """The execution name is another execution's, started with another input."""


def start_once(sfn: Any, state_machine_arn: str, name: str, workflow_input: str) -> str:
    """Start the execution `name`, or find it started before (a retried trigger, a doubled
    event, a re-applied sweep): its ARN either way. Standard executions' names are unique per
    state machine, which is what turns every repeat into the one execution. Step Functions
    answers a repeat of a running execution with its ARN, and ExecutionAlreadyExists for one
    that ended or had another input: the existing one's input tells them apart (NameTaken)."""
    try:
        arn: str = sfn.start_execution(stateMachineArn=state_machine_arn, name=name,
                                       input=workflow_input)["executionArn"]
        return arn
    except ClientError as e:
        if e.response["Error"]["Code"] != "ExecutionAlreadyExists":
            raise
    existing = execution_arn(state_machine_arn, name)
    if json.loads(sfn.describe_execution(executionArn=existing).get("input") or "null") != json.loads(workflow_input):
        raise NameTaken(f"{name} was started with another input")
    return existing
