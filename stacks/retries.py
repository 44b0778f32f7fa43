"""The one retry policy of the workflows' Lambda Tasks: our transient errors, each retried as
its class says (errors.py; a subclass as its parent, Step Functions matching exact names), and
AWS's own errors, below. The ASL files show it in every Task, where operators read it;
`make asl` writes it there, and an infra test fails on a Task whose Retry differs."""

import json
from pathlib import Path
from typing import Any

from chat_provisioning.domain import errors
from chat_provisioning.domain.errors import Retry
from stacks import wiring

# AWS's errors, as Step Functions names them: a Lambda invocation's, and the AWS calls' the
# steps make (botocore raises each service error as a class of its code's name).
AWS_ERRORS: dict[tuple[str, ...], Retry] = {
    # Cognito's throttling and its own faults
    ("TooManyRequestsException", "InternalErrorException"): Retry(2, 5, 30),
    # the function's reserved concurrency reached: wait, up to about 10 minutes
    ("Lambda.TooManyRequestsException",): Retry(1, 25, 30, backoff_rate=1.5),
    # the function timed out or crashed (every step is idempotent). AWS's guide names a timeout
    # Lambda.Unknown; executions have been reported with Sandbox.Timedout as the error itself.
    ("Lambda.Unknown", "Sandbox.Timedout"): Retry(5, 3, 30),
    # Lambda's service errors, the Task's own timeout, DynamoDB's throttling
    ("Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException",
     "Lambda.ClientExecutionTimeoutException", "States.Timeout", "ProvisionedThroughputExceededException",
     "ThrottlingException", "RequestLimitExceeded"): Retry(2, 6, 60),
}


def subclasses(cls: type) -> list[type]:
    """Every class below `cls`, in definition order, subclasses of subclasses included."""
    return [c for sub in cls.__subclasses__() for c in [sub, *subclasses(sub)]]


def retriers() -> list[dict[str, Any]]:
    """The Retry list of every Lambda Task: one retrier per timing, ours first."""
    ours: dict[Retry, list[str]] = {}
    for cls in subclasses(errors.TransientError):
        ours.setdefault(cls.retry, []).append(cls.__name__)
    groups = [(names, retry) for retry, names in ours.items()] + [(list(n), r) for n, r in AWS_ERRORS.items()]
    return [{"ErrorEquals": names, "IntervalSeconds": r.interval_seconds, "MaxAttempts": r.max_attempts,
             "BackoffRate": r.backoff_rate, "MaxDelaySeconds": r.max_delay_seconds, "JitterStrategy": "FULL"}
            for names, r in groups]


# Said at the top of each ASL file: its Retry blocks are most of its lines.
GENERATED = "(Every Lambda Task's Retry is written by `make asl` from stacks/retries.py: change it there.)"


def write(asl: Path) -> bool:
    """Give every Lambda Task of the file the policy's Retry, and say so in its Comment; True if
    the file changed."""
    text = asl.read_text()
    definition = json.loads(text)
    for _, _, task in wiring.lambda_tasks(definition["States"]):
        task["Retry"] = retriers()
    definition["Comment"] = f"{definition['Comment'].removesuffix(GENERATED).rstrip()} {GENERATED}"
    new = json.dumps(definition, indent=2) + "\n"
    asl.write_text(new)
    return new != text


if __name__ == "__main__":
    changed = [path.name for path in wiring.MACHINES.values() if write(path)]
    print(f"Retry written from the policy: {', '.join(changed) or 'no file changed'}")
