"""What the steps share, built once per Lambda instance (cold start): config, the Synapse
adapter with the bot token cached, the audit store, the room leases, the invocation's
deadline, and the X-Ray tracer. Logging and metrics are in telemetry.py, AWS clients in
aws.py."""

import functools
import json
import os
from dataclasses import dataclass

from aws_lambda_powertools import Tracer
from aws_lambda_powertools.utilities import parameters

from .audit import AuditStore
from .aws import aws_client
from .config import ChatConfig
from .deadline import Deadline
from .locks import RoomLocks
from .synapse import SynapseAdmin
from . import telemetry  # noqa: F401 - its caps keep botocore from logging the token read here

tracer = Tracer()

TOKEN_CACHE_SECONDS = 300


@dataclass(frozen=True)
class Runtime:
    config: ChatConfig
    synapse: SynapseAdmin
    audit: AuditStore
    locks: RoomLocks
    deadline: Deadline  # the adapter's and the leases': started by each step's handler


@functools.cache
def secrets() -> parameters.SecretsProvider:
    """Powertools' secrets cache, on a client whose calls are bounded like the others."""
    return parameters.SecretsProvider(boto3_client=aws_client("secretsmanager"))


def bot_token(secret_name: str, refresh: bool = False) -> str:
    """The bot's access token: the secret's plain string, or its `access_token` field when
    the secret holds JSON. Cached by Powertools; never logged."""
    value = secrets().get(secret_name, max_age=TOKEN_CACHE_SECONDS, force_fetch=refresh)
    if value.lstrip().startswith("{"):
        return json.loads(value)["access_token"]
    return value.strip()


@functools.cache
def chat_config() -> ChatConfig:
    return ChatConfig.from_env(os.environ)


@functools.cache
def runtime() -> Runtime:
    """What the steps share; the triggers need chat_config() only."""
    config = chat_config()
    deadline = Deadline()
    synapse = SynapseAdmin(
        config.synapse_url,
        functools.partial(bot_token, config.admin_token_secret_name),
        config.bot_user_id, timeout=config.synapse_timeout_seconds, deadline=deadline)
    dynamodb = aws_client("dynamodb")  # one client (~0.3 s to build) for both tables
    return Runtime(config, synapse, AuditStore(os.environ["AUDIT_TABLE"], dynamodb),
                   RoomLocks(os.environ["LOCKS_TABLE"], dynamodb, deadline=deadline), deadline)
