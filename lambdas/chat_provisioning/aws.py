"""The AWS clients the handlers use, and the one way a workflow is started. Light on purpose
(boto3, nothing else): the sign-up trigger loads it on Cognito's clock (signup.py)."""

import functools
import json
import os

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

# boto3's defaults (60 s to connect, 60 s to read, 5 attempts) could outlast any step's
# timeout; these bound one AWS call to about 25 s, retries included.
AWS_CALLS = Config(connect_timeout=3, read_timeout=5, retries={"mode": "standard", "total_max_attempts": 3})


@functools.cache
def aws_client(service: str, config: Config = AWS_CALLS):
    """Created at first use, so that endpoint settings made before it (the local run) count;
    one per service and config."""
    return boto3.client(service, config=config)


def start_sync(sfn, sub: str, cause: str, name: str) -> str:
    """Start the user's SyncUser workflow as `name` (or find it started): its ARN."""
    return start_once(sfn, os.environ["SYNC_STATE_MACHINE_ARN"], name, json.dumps({"sub": sub, "cause": cause}))


def start_once(sfn, state_machine_arn: str, name: str, workflow_input: str) -> str:
    """Start the execution `name`, or find it started before (a retried trigger, a doubled
    event, a re-applied sweep): its ARN either way. Standard executions' names are unique per
    state machine, which is what turns every repeat into the one execution."""
    try:
        return sfn.start_execution(stateMachineArn=state_machine_arn, name=name,
                                   input=workflow_input)["executionArn"]
    except ClientError as e:
        if e.response["Error"]["Code"] != "ExecutionAlreadyExists":
            raise
        return execution_arn(state_machine_arn, name)


def execution_arn(state_machine_arn: str, name: str) -> str:
    return f"{state_machine_arn.replace(':stateMachine:', ':execution:')}:{name}"
