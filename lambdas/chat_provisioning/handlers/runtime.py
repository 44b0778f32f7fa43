"""What a function's handlers share, built once per Lambda instance (cold start) from its
environment, checked first: the config, one adapter per port (ports.py) and the invocation's
deadline. Tests build a Runtime of fakes instead (tests/fakes.py). Logging and metrics are in
telemetry.py; tracing is Lambda's own (active tracing), with no SDK in the function."""

import functools
import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, Json

from ..adapters import telemetry  # noqa: F401 - its caps keep botocore from logging the token read here
from ..adapters.audit_table import DynamoAuditStore
from ..adapters.clients import aws_client, client_of
from ..adapters.cognito import CognitoDirectory
from ..adapters.plan_store import S3PlanStore
from ..adapters.room_locks import DynamoRoomLocks
from ..adapters.step_functions import StepFunctionsWorkflows
from ..adapters.synapse import SynapseAdmin
from ..domain.config import CONFIG_ENV, ChatConfig
from ..domain.deadline import Deadline
from ..ports import AuditStore, ChatServer, PlanStore, RoomLocks, UserDirectory, Workflows

TOKEN_CACHE_SECONDS = 300


@dataclass(frozen=True)
class Runtime:
    config: ChatConfig
    synapse: ChatServer
    directory: UserDirectory
    workflows: Workflows
    plans: PlanStore
    audit: AuditStore
    locks: RoomLocks
    deadline: Deadline  # the adapter's and the leases': started by each handler


class FunctionEnv(BaseModel):
    """A function's environment as the stack sets it (stacks/wiring.py, lambda_environment).
    Validated at cold start, so that a wrong deployment fails its first invocation naming the
    variable. The steps' functions have no state machine ARN (the machine is built from theirs)
    and the triggers' no plans bucket: an adapter refuses a call that needs what it lacks."""
    model_config = ConfigDict(frozen=True, extra="ignore")

    config: Json[ChatConfig] = Field(alias=CONFIG_ENV)
    audit_table: str = Field(alias="AUDIT_TABLE", min_length=3)
    locks_table: str = Field(alias="LOCKS_TABLE", min_length=3)
    sync_state_machine_arn: str | None = Field(
        default=None, alias="SYNC_STATE_MACHINE_ARN",
        pattern=r"^arn:aws[a-z-]*:states:[a-z0-9-]+:[0-9]{12}:stateMachine:.+$")
    plans_bucket: str | None = Field(default=None, alias="PLANS_BUCKET", min_length=3)


# secret name -> (its string, when it was read): the token read once per TOKEN_CACHE_SECONDS
SECRETS: dict[str, tuple[str, float]] = {}


def bot_token(secret_name: str, refresh: bool = False) -> str:
    """The bot's access token: the secret's plain string, or its `access_token` field when
    the secret holds JSON. Read again after TOKEN_CACHE_SECONDS, or at once with `refresh`
    (Synapse refused it: the secret may have been rotated); never logged."""
    cached = SECRETS.get(secret_name)
    if refresh or cached is None or time.monotonic() - cached[1] > TOKEN_CACHE_SECONDS:
        answer = aws_client("secretsmanager").get_secret_value(SecretId=secret_name)
        if not isinstance(answer.get("SecretString"), str):
            raise TypeError("the bot's token secret is not a string")
        cached = SECRETS[secret_name] = (answer["SecretString"], time.monotonic())
    value = cached[0]
    if value.lstrip().startswith("{"):
        token: str = json.loads(value)["access_token"]
        return token
    return value.strip()


def build(environ: Mapping[str, str]) -> Runtime:
    env = FunctionEnv.model_validate(environ)
    config = env.config
    deadline = Deadline()
    dynamodb = client_of("dynamodb")  # one client for both tables
    return Runtime(
        config=config,
        synapse=SynapseAdmin(config.synapse_url, functools.partial(bot_token, config.admin_token_secret_name),
                             config.bot_user_id, timeout=config.synapse_timeout_seconds, deadline=deadline),
        directory=CognitoDirectory(config.user_pool.user_pool_id, client_of("cognito-idp")),
        workflows=StepFunctionsWorkflows(env.sync_state_machine_arn, client_of("stepfunctions")),
        plans=S3PlanStore(env.plans_bucket, client_of("s3")),
        audit=DynamoAuditStore(env.audit_table, dynamodb),
        locks=DynamoRoomLocks(env.locks_table, dynamodb, deadline=deadline),
        deadline=deadline)


@functools.cache
def runtime() -> Runtime:
    return build(os.environ)
