"""The Cognito PostConfirmation trigger. Cognito waits 5 s for it, cold start included, and
cannot fire it again, so this module loads only botocore, Powertools' logger and metrics, and the
pure rules (not pydantic, httpx or the X-Ray SDK: Lambda's active tracing still traces the
invocation), and its AWS calls are cut short: a start that does not answer in time goes to the
retry queue, whose consumer (starts.retry_start) runs the same checks again."""

import functools
import math
import os
from collections.abc import Callable
from typing import Any, NamedTuple

from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config

from ..adapters.clients import client_of, given
from ..adapters.cognito import CognitoDirectory
from ..adapters.retry_queue import SqsRetryQueue
from ..adapters.step_functions import StepFunctionsWorkflows
from ..adapters.telemetry import count, logger
from ..domain.errors import InvalidInput
from ..domain.subs import normalise_sub
from ..ports import RetryQueue, UserDirectory, Workflows

SIGN_UP = "PostConfirmation_ConfirmSignUp"
# At most three calls (AdminGetUser, StartExecution and, if that failed, SendMessage), each
# given up after about 1.3 s: within the function's 4 s, and Cognito's 5.
QUICK = Config(connect_timeout=0.5, read_timeout=0.8, retries={"mode": "standard", "total_max_attempts": 1})
# StartExecution is tried only with time left for it and then for the retry queue (a client
# and SendMessage) should it fail; with less, the sign-up goes to the queue at once.
START_NEEDS_SECONDS = 2.8


def signup_execution_name(sub: str) -> str:
    """Derived from the sub alone, so Cognito's retries of one sign-up start one execution."""
    return f"signup-{sub}"


class SignUpPorts(NamedTuple):
    """The trigger's own few ports, not runtime.Runtime: that one loads pydantic and httpx."""
    directory: UserDirectory
    workflows: Workflows
    retry_queue: RetryQueue


@functools.cache
def signup_ports() -> SignUpPorts:
    """From the environment the stack sets (stacks/wiring.py, lambda_environment), with QUICK
    clients. A missing value fails the call that needs it (clients.given), caught below: never the
    sign-up."""
    env = os.environ.get
    idp, sfn = client_of("cognito-idp", QUICK), client_of("stepfunctions", QUICK)
    idp(), sfn()  # built now (a client costs CPU time), not inside START_NEEDS_SECONDS, which is the calls'
    return SignUpPorts(CognitoDirectory(env("USER_POOL_ID", ""), idp),
                       StepFunctionsWorkflows(env("SYNC_STATE_MACHINE_ARN"), sfn), retry_queue())


def retry_queue() -> RetryQueue:
    """Its client is made at the first send: a trigger whose other clients could not be made
    still queues the sign-up."""
    return SqsRetryQueue(os.environ.get("START_RETRY_QUEUE_URL"), client_of("sqs", QUICK))


def start_signup(user_pool_id: str, user_name: str, sub: str, directory: UserDirectory, workflows: Workflows,
                 time_left: Callable[[], float] = lambda: math.inf) -> str:
    """Start the workflow for a confirmed sign-up of our pool whose username is this sub's;
    returns the execution ARN. Safe to repeat. InvalidInput: not a sign-up to start;
    TimeoutError: no time left to start it (`time_left`, in seconds)."""
    pool = given(directory.user_pool_id, "USER_POOL_ID")
    if user_pool_id != pool:
        raise InvalidInput(f"a sign-up in pool {user_pool_id!r:.60}, not in {pool}")
    if directory.sub_of_username(user_name) != sub:
        raise InvalidInput("the sign-up's username does not resolve to its sub in the pool")
    if time_left() < START_NEEDS_SECONDS:
        raise TimeoutError(f"{time_left():.1f}s left: too little to start, and queue should that fail")
    return workflows.start_sync(sub, "signup", signup_execution_name(sub))


def signup_job(event: dict[str, Any]) -> dict[str, str]:
    """The sign-up a PostConfirmation event names, as the retry queue carries it (models.RetryJob):
    {"user_pool_id", "user_name", "sub"}. InvalidInput when the event lacks one of them."""
    request = event.get("request")
    attributes = request.get("userAttributes") if isinstance(request, dict) else None
    pool, name = event.get("userPoolId"), event.get("userName")
    if not (isinstance(pool, str) and isinstance(name, str) and 0 < len(name) <= 128
            and isinstance(attributes, dict)):
        raise InvalidInput("a PostConfirmation event needs userPoolId, userName (1-128) and userAttributes")
    return {"user_pool_id": pool, "user_name": name, "sub": normalise_sub(attributes.get("sub"))}


@logger.inject_lambda_context(clear_state=True)
def post_confirmation(event: dict[str, Any], context: LambdaContext,
                      ports: SignUpPorts | None = None) -> dict[str, Any]:
    """Never fails the sign-up (Cognito cannot re-fire it): a failed start goes to the retry
    queue, and if even that fails, to the log and a metric the sweep's alarm watches."""
    source = event.get("triggerSource") if isinstance(event, dict) else None
    if not isinstance(source, str) or not source.startswith("PostConfirmation_"):
        # Attached to the wrong trigger: fail loudly, this is configuration, not a sign-up.
        raise InvalidInput(f"not a PostConfirmation event: triggerSource={source!r:.80}")
    if source != SIGN_UP:
        logger.info("not a sign-up, nothing to start", extra={"trigger_source": source})
        return event
    try:
        job = signup_job(event)
        logger.append_keys(sub=job["sub"])
        ports = ports or signup_ports()  # inside: a client that cannot be made queues the sign-up
        arn = start_signup(**job, directory=ports.directory, workflows=ports.workflows,
                           time_left=lambda: context.get_remaining_time_in_millis() / 1000)
        logger.info("workflow started", extra={"execution": arn})
        count("SignUpsStarted")
    except InvalidInput as e:  # malformed, another pool's, or a username that is not this sub's
        logger.error("not a sign-up of this pool; nothing started", extra={"error": str(e)[:300]})
        count("InvalidSignUpEvents")
    except Exception as e:  # noqa: BLE001 - whatever broke, the sign-up must go through
        logger.warning("start failed; queued for retry", extra={"error": type(e).__name__})
        count("SignUpStartFailures")
        try:
            (ports.retry_queue if ports else retry_queue()).send(job)
        except Exception as e2:  # noqa: BLE001
            logger.error("retry queue unreachable: the sweep must repair this user",
                         extra={"error": type(e2).__name__})
            count("SignUpsLost")
    return event
