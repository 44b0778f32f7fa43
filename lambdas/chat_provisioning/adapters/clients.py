"""The AWS clients the functions use: botocore's, one session per process, each client made at
first use. Light on purpose (botocore, nothing else): the sign-up trigger loads it on Cognito's
clock (handlers/signup.py). The first client of a process costs about 0.1 s of a full CPU to
build, and most functions use one or two. boto3's clients are the same for these calls, and
importing boto3 costs a cold start its S3 transfer manager besides."""

import functools
from collections.abc import Callable
from typing import Any

import botocore.session
from botocore.config import Config

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
