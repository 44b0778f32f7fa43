"""What starts the workflow and what audits its failures, besides the sign-up trigger
(signup.py): the consumer of its retry queue, the target of the Cognito-change and
custom-event rules, and the Step Functions status-change rule's target. Each names a user (its
sub) and a cause, and nothing else: the workflow asks Cognito for the rest."""

import json
import re
from typing import Any, get_args

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from . import wiring
from .errors import InvalidInput
from .models import BusEvent, Cause, ExecutionStatus, RetryJob, Sub, parse
from .policy import SUB, normalise_sub
from .ports import UserDirectory
from .runtime import Runtime, runtime
from .signup import start_signup
from .telemetry import count, logger

# The failure metric's dimensions come from the execution input and error: only known causes
# and names shaped like an error's (ours, Lambda.*, States.*) are kept, so nobody who can start
# an execution can grow the metric's dimension values.
CAUSES = set(get_args(Cause))
ERROR_NAME = re.compile(r"[A-Za-z][\w.]{0,63}")


_batch = BatchProcessor(event_type=EventType.SQS)


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
    return process_partial_response(event=event, record_handler=handle, processor=_batch, context=context)


@logger.inject_lambda_context(clear_state=True)
def record_failure(event: dict[str, Any], context: LambdaContext, rt: Runtime | None = None) -> dict[str, Any]:
    """Target of the rule on 'Step Functions Execution Status Change' (FAILED, TIMED_OUT,
    ABORTED): the audit item for a run that did not finish, with the state it stopped at."""
    detail = parse(ExecutionStatus, parse(BusEvent, event).detail)
    execution = detail.executionArn
    logger.set_correlation_id(execution)
    try:
        request = json.loads(detail.input or "{}")
        sub = normalise_sub(request.get("sub"))
    except (InvalidInput, ValueError, AttributeError):
        request, sub = {}, None
    rt = rt or runtime()
    failed_state = rt.workflows.last_state_entered(execution)
    new = rt.audit.record_failure(
        sub, execution, attempt=detail.redriveCount, status=detail.status,
        failed_state=failed_state, error=detail.error, cause=detail.cause,
        event=str(request["cause"])[:64] if request.get("cause") else None)
    cause, error = request.get("cause"), detail.error or ""
    count("ExecutionsFailed", cause=cause if isinstance(cause, str) and cause in CAUSES else "other",
          step=failed_state or "none", error=error if ERROR_NAME.fullmatch(error) else "other")
    logger.info("failure audited", extra={"state": failed_state, "new": new})
    return {"execution": execution, "failed_state": failed_state}


@logger.inject_lambda_context(clear_state=True)
def on_cognito_change(event: dict[str, Any], context: LambdaContext, rt: Runtime | None = None) -> dict[str, Any]:
    """Target of the CloudTrail rule (the Cognito admin calls in wiring.COGNITO_EVENT_NAMES)
    on the default bus, and of the custom 'Sync chat user' rule on the stack's own bus: start
    the user's workflow. The execution is named sync-<sub>-<event id>: a doubled delivery
    starts one run, and an operator finds the user's runs by the sub (`user status`). The run
    reads Cognito's current state itself. A custom event names a sub and nothing else, and
    its cause is "event", which never reactivates."""
    bridge = parse(BusEvent, event)
    rt = rt or runtime()
    if bridge.detail_type == wiring.SYNC_EVENT_PATTERN["detail-type"][0]:
        sub, cause = parse(Sub, bridge.detail).sub, "event"  # a bad detail raises (see below)
    else:
        name = bridge.detail.get("eventName")
        if name not in wiring.COGNITO_EVENT_NAMES:
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
