"""What every handler logs and counts with: Powertools' logger and metrics, and the caps that
keep wire data (the bot's token among it) out of the logs. Light on purpose: the sign-up
trigger loads it on Cognito's clock (signup.py)."""

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit, single_metric

logger = Logger()

NAMESPACE = "ChatProvisioning"
# Every metric the functions publish, with the dimensions each has besides `service` (which
# Powertools adds: POWERTOOLS_SERVICE_NAME). The stack's dashboard and alarms are drawn from
# this (stacks/), and count() publishes nothing else. Dimension values are bounded by the code:
# state names, error class names, the causes models.Cause allows.
METRICS: dict[str, tuple[str, ...]] = {
    "SignUpsStarted": (), "SignUpStartFailures": (), "SignUpsLost": (), "InvalidSignUpEvents": (),
    "UnresolvedCognitoEvents": (), "UnknownGroups": (),
    "LevelsBeyondTheBot": (),  # a level change Matrix will never let the bot make (a person's to do)
    "StartNamesTaken": (),  # a run's name another execution took with another input (step_functions.start_once)
    "UsersSynced": ("cause",),  # a run that reached RecordAudit
    "ExecutionsFailed": ("cause", "step", "error"),  # a run that did not succeed, where and why
    "StepErrors": ("step", "error"),  # each error a step raised, retried ones included
    "SweepUsersToFix": (), "SweepFindings": (), "SweepsHeld": (),
}


def count(name: str, value: float = 1, **dimensions: str) -> None:
    """Publish `value` of the metric `name` (Embedded Metric Format, in the log) with exactly its
    declared dimensions."""
    if set(dimensions) != set(METRICS[name]):
        raise ValueError(f"{name} has dimensions {METRICS[name]}, not {sorted(dimensions)}")
    with single_metric(name=name, unit=MetricUnit.Count, value=value, namespace=NAMESPACE) as metric:
        for key, dimension in dimensions.items():
            metric.add_dimension(name=key, value=str(dimension)[:64] or "none")

# With the root logger at DEBUG (AWS_LAMBDA_LOG_LEVEL, a developer's basicConfig), botocore
# logs every response body, GetSecretValue's too: the bot's token. These libraries log wire
# data at DEBUG only, so INFO is their cap, whatever the root level.
for _library in ("botocore", "boto3", "s3transfer", "urllib3", "httpx", "httpcore"):
    logging.getLogger(_library).setLevel(logging.INFO)


@contextmanager
def errors_counted(step: str) -> Iterator[None]:
    """Count each error the step raises by its type (StepErrors), then let it propagate: its
    name is what the ASL's Retry matches."""
    try:
        yield
    except Exception as e:
        count("StepErrors", step=step, error=type(e).__name__)
        raise
