"""RecordFailure, the failure audit: the target of the rule on Step Functions' status changes.
An execution that did not succeed gets its audit item, with the state it stopped at, and the
ExecutionsFailed metric."""

import json
import re
from typing import Any, get_args

from aws_lambda_powertools.utilities.typing import LambdaContext

from ..adapters.telemetry import count, logger
from ..domain.errors import InvalidInput
from ..domain.models import BusEvent, Cause, ExecutionStatus, parse
from ..domain.subs import normalise_sub
from .runtime import Runtime, runtime

# The failure metric's dimensions come from the execution input and error: only known causes
# and names shaped like an error's (ours, Lambda.*, States.*) are kept, so nobody who can start
# an execution can grow the metric's dimension values.
CAUSES = set(get_args(Cause))
ERROR_NAME = re.compile(r"[A-Za-z][\w.]{0,63}")


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
    cause, error = request.get("cause"), detail.error or ""
    new = rt.audit.record_failure(
        sub, execution, attempt=detail.redriveCount, status=detail.status,
        failed_state=failed_state, error=detail.error, cause=detail.cause,
        event=str(cause)[:64] if cause else None)
    count("ExecutionsFailed", cause=cause if isinstance(cause, str) and cause in CAUSES else "other",
          step=failed_state or "none", error=error if ERROR_NAME.fullmatch(error) else "other")
    logger.info("failure audited", extra={"state": failed_state, "new": new})
    return {"execution": execution, "failed_state": failed_state}
