"""What starts the workflow besides the sign-up trigger (signup.py): the consumer of its retry
queue, and the target of the Cognito-change and custom-event rules. Each names a user (its sub)
and a cause, and nothing else: the workflow asks Cognito for the rest. Powertools' batch
utility (asyncio and its event classes) is loaded by the retry queue's consumer alone."""

from __future__ import annotations

import functools
import json
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from ..adapters.telemetry import count, logger
from ..domain.errors import InvalidInput
from ..domain.models import COGNITO_EVENT_NAMES, SYNC_EVENT, BusEvent, RetryJob, Sub, parse
from ..domain.subs import SUB, normalise_sub
from ..ports import UserDirectory
from .runtime import Runtime, runtime
from .signup import start_signup

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch import BatchProcessor
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord


@functools.cache
def sqs_batch_processor() -> BatchProcessor:
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
    return BatchProcessor(event_type=EventType.SQS)


@logger.inject_lambda_context(clear_state=True)
def retry_start(event: dict[str, Any], context: LambdaContext, rt: Runtime | None = None) -> PartialItemFailureResponse:
    """Consumes the retry queue: each message is a sign-up whose start failed, checked again as
    the trigger checks it. A message that fails again returns to the queue, and after
    maxReceiveCount to its DLQ (alarmed)."""
    records = event.get("Records") if isinstance(event, dict) else None
    if not isinstance(records, list) or not records or not all(
            isinstance(r, dict) and isinstance(r.get("messageId"), str) and isinstance(r.get("body"), str)
            for r in records):
        raise InvalidInput("not an SQS batch of messages with messageId and body")
    rt = rt or runtime()

    def handle(record: SQSRecord) -> None:
        try:
            job = parse(RetryJob, json.loads(record.body))
        except ValueError as e:  # not JSON, or not a job (InvalidInput is a ValueError too)
            raise InvalidInput(f"retry message is not a sign-up job: {str(e)[:200]}") from None
        execution = start_signup(job.user_pool_id, job.user_name, job.sub, rt.directory, rt.workflows)
        logger.info("retrying start", extra={"sub": job.sub, "execution": execution})
    from aws_lambda_powertools.utilities.batch import process_partial_response
    return process_partial_response(event=event, record_handler=handle, processor=sqs_batch_processor(),
                                    context=context)


@logger.inject_lambda_context(clear_state=True)
def on_cognito_change(event: dict[str, Any], context: LambdaContext, rt: Runtime | None = None) -> dict[str, Any]:
    """Target of the CloudTrail rule (the Cognito admin calls in models.COGNITO_EVENT_NAMES)
    on the default bus, and of the custom 'Sync chat user' rule on the stack's own bus: start
    the user's workflow. The execution is named sync-<sub>-<event id>: a doubled delivery
    starts one run, and an operator finds the user's runs by the sub (`user status`). The run
    reads Cognito's current state itself. A custom event names a sub and nothing else, and
    its cause is "event", which never reactivates."""
    bridge = parse(BusEvent, event)
    rt = rt or runtime()
    if bridge.detail_type == SYNC_EVENT["detail-type"]:
        sub, cause = parse(Sub, bridge.detail).sub, "event"  # a bad detail raises (see below)
    else:
        name = bridge.detail.get("eventName")
        if name not in COGNITO_EVENT_NAMES:
            raise InvalidInput(f"not a Cognito event this handles: {name!r:.60}")
        cause, resolved = str(name), resolve_sub(bridge.detail, rt.directory)
        if resolved is None:
            # Another pool's record, or one without the sub whose username is masked or gone.
            logger.warning("event names no user we can resolve; the sweep will catch up",
                           extra={"cause": cause})
            count("UnresolvedCognitoEvents")
            return {"started": False, "cause": cause}
        sub = resolved
    logger.append_keys(sub=sub)
    # A failure raises: EventBridge invoked us asynchronously, so Lambda retries the event
    # twice, then sends it with the error to the on-failure destination (FailedEventsQueue).
    execution = rt.workflows.start_sync(sub, cause, f"sync-{sub}-{bridge.id}"[:80])
    logger.info("sync started", extra={"execution": execution, "cause": cause})
    return {"started": True, "execution": execution}


# What CloudTrail writes in place of a value it will not record (AWS's guide spells it both ways).
MASKED = {"HIDDEN_DUE_TO_SECURITY_REASONS", "HIDDEN_FOR_SECURITY_REASONS"}


def resolve_sub(record: dict[str, Any], directory: UserDirectory) -> str | None:
    """The sub of the user a CloudTrail record of a Cognito admin call names, in our pool only.
    For a request about one user Cognito records the user's sub in `additionalEventData.sub`
    and masks `requestParameters.username`; only a record without the sub falls back to
    looking the username up, and only when the username is really there."""
    params = record.get("requestParameters")
    params = params if isinstance(params, dict) else {}
    if params.get("userPoolId") != directory.user_pool_id:
        return None
    extra = record.get("additionalEventData")
    recorded = extra.get("sub") if isinstance(extra, dict) else None
    if recorded is not None and recorded not in MASKED:
        return normalise_sub(recorded)  # not a UUID: raises, and the event is kept
    username = params.get("username")
    if not isinstance(username, str) or username in MASKED:
        return None
    sub = directory.sub_of_username(username)
    # Gone (AdminDeleteUser). In pools that sign in by email or phone the username is the
    # sub itself; in others the deleted user cannot be named any more.
    sub = sub if sub is not None else username
    return sub if isinstance(sub, str) and SUB.match(sub) else None
