"""What every handler shares, built once per Lambda instance (cold start): config, the
Synapse adapter with the bot token cached, the audit store, and Powertools' logger,
tracer and metrics. boto3 clients are created lazily so that endpoint settings made
before the first call (moto in the local run) are honoured."""

import functools
import json
import logging
import os
import warnings
from dataclasses import dataclass

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from botocore.config import Config
from botocore.exceptions import ClientError
from aws_lambda_powertools.utilities import parameters

from .audit import AuditStore
from .config import ChatConfig
from .deadline import Deadline
from .locks import RoomLocks
from .synapse import SynapseAdmin

# Steps that emit no metric of their own would warn on every invocation.
warnings.filterwarnings("ignore", message="No application metrics to publish")

logger = Logger()
tracer = Tracer()
metrics = Metrics(namespace="ChatProvisioning")

# With the root logger at DEBUG (AWS_LAMBDA_LOG_LEVEL, a developer's basicConfig), botocore
# logs every response body, GetSecretValue's too: the bot's token. These libraries log wire
# data at DEBUG only, so INFO is their cap, whatever the root level.
for _library in ("botocore", "boto3", "s3transfer", "urllib3", "httpx", "httpcore"):
    logging.getLogger(_library).setLevel(logging.INFO)

TOKEN_CACHE_SECONDS = 300


@dataclass(frozen=True)
class Runtime:
    config: ChatConfig
    synapse: SynapseAdmin
    audit: AuditStore
    locks: RoomLocks
    deadline: Deadline  # the adapter's and the leases': started by each step's handler


def bot_token(secret_name: str, refresh: bool = False) -> str:
    """The bot's access token: the secret's plain string, or its `access_token` field when
    the secret holds JSON. Cached by Powertools; never logged."""
    value = parameters.get_secret(secret_name, max_age=TOKEN_CACHE_SECONDS, force_fetch=refresh)
    if value.lstrip().startswith("{"):
        return json.loads(value)["access_token"]
    return value.strip()


@functools.cache
def chat_config() -> ChatConfig:
    return ChatConfig.from_env(os.environ)


@functools.cache
def runtime() -> Runtime:
    """What the steps share; the triggers need chat_config() only (a sign-up's cold start counts)."""
    config = chat_config()
    deadline = Deadline()
    synapse = SynapseAdmin(
        config.synapse_url,
        functools.partial(bot_token, config.admin_token_secret_name),
        config.bot_user_id, timeout=config.synapse_timeout_seconds, deadline=deadline)
    dynamodb = aws_client("dynamodb")  # one client (~0.3 s to build) for both tables
    return Runtime(config, synapse, AuditStore(os.environ["AUDIT_TABLE"], dynamodb),
                   RoomLocks(os.environ["LOCKS_TABLE"], dynamodb, deadline=deadline), deadline)


# boto3's defaults (60 s to connect, 60 s to read, 5 attempts) could outlast any step's
# timeout; these bound one AWS call to about 25 s, retries included.
AWS_CALLS = Config(connect_timeout=3, read_timeout=5, retries={"mode": "standard", "total_max_attempts": 3})


@functools.cache
def aws_client(service: str):
    return boto3.client(service, config=AWS_CALLS)


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
