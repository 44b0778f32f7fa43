"""The AWS clients the functions use, and the adapters of Step Functions, SQS and S3 (ports.py).
Light on purpose (botocore, nothing else): the sign-up trigger loads it on Cognito's clock
(signup.py). Each adapter takes a client factory and makes its client at first use: the first
client of a process costs about 0.1 s of a full CPU to build, and most functions use one or two.
The clients are botocore's: boto3's are the same for these calls, and importing boto3 costs a
cold start its S3 transfer manager besides."""

import functools
import json
import secrets
from collections.abc import Callable
from typing import Any

import botocore.session
from botocore.config import Config
from botocore.exceptions import ClientError

# botocore's defaults (60 s to connect, 60 s to read, 5 attempts) could outlast any step's
# timeout; these bound one AWS call to about 25 s, retries included.
AWS_CALLS = Config(connect_timeout=3, read_timeout=5, retries={"mode": "standard", "total_max_attempts": 3})

Client = Callable[[], Any]  # makes (or returns the cached) client


@functools.cache
def aws_session() -> botocore.session.Session:
    """One session for all of a function's clients: the service data it loads is shared."""
    return botocore.session.get_session()


@functools.cache
def aws_client(service: str, config: Config = AWS_CALLS) -> Any:
    """Created at first use, so that endpoint settings made before it (the local run) count;
    one per service and config."""
    return aws_session().create_client(service, config=config)


def client_of(service: str, config: Config = AWS_CALLS) -> Client:
    return functools.partial(aws_client, service, config)


def given(value: str | None, variable: str) -> str:
    """A value the function's environment must hold for this call (runtime.FunctionEnv)."""
    if not value:
        raise RuntimeError(f"{variable} is not in this function's environment")
    return value


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


# The statuses of an execution that did not succeed: audited, and the ones a redrive takes.
FAILED_STATUSES = ["FAILED", "TIMED_OUT", "ABORTED"]


def execution_arn(state_machine_arn: str, name: str) -> str:
    return f"{state_machine_arn.replace(':stateMachine:', ':execution:')}:{name}"


def newest_state_entered(events: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The details (name, input) of the newest state entered, picked by event id: that order
    is what Step Functions defines, and moto ignores reverseOrder."""
    entered = [e for e in events if "stateEnteredEventDetails" in e]
    return max(entered, key=lambda e: e["id"])["stateEnteredEventDetails"] if entered else None


class SqsRetryQueue:
    def __init__(self, queue_url: str | None, client: Client):
        self.queue_url = queue_url
        self._client = client

    def send(self, job: dict[str, str]) -> None:
        self._client().send_message(QueueUrl=given(self.queue_url, "START_RETRY_QUEUE_URL"),
                                    MessageBody=json.dumps(job))


class S3PlanStore:
    def __init__(self, bucket: str | None, client: Client):
        self.bucket = bucket or ""
        self._client = client

    def put(self, key: str, document: object) -> None:
        self._client().put_object(Bucket=given(self.bucket, "PLANS_BUCKET"), Key=key, ContentType="application/json",
                                  Body=json.dumps(document).encode())
