"""The local Lambda service answers as AWS's does: a function past its timeout, a function at its
reserved concurrency, a call its role does not allow."""

import json
import time
from contextlib import contextmanager

import pytest

from local_run import iam_check


@contextmanager
def configured(local, function: str, **settings):
    """UpdateFunctionConfiguration as an operator would, undone afterwards."""
    name, aws = local.state.functions[function], local.aws["lambda"]
    before = {k: aws.get_function(FunctionName=name)["Configuration"][k] for k in settings}
    aws.update_function_configuration(FunctionName=name, **settings)
    try:
        yield
    finally:
        aws.update_function_configuration(FunctionName=name, **before)


@pytest.mark.parametrize("name", ["Lambda.Unknown", "Sandbox.Timedout"])
def test_a_function_past_its_timeout_is_retried_as_the_asl_says(local, sub, name):
    """Lambda ends a function at its timeout and Step Functions sees Lambda.Unknown, as AWS's
    guide says (the cause says Sandbox.Timedout), or Sandbox.Timedout itself, as executions
    have been reported to record it. Every step is idempotent and a timeout can pass, so the
    ASL retries either: held past a 5 s timeout once (the steps before it keep 2 s of it back
    and start no Synapse request with under 1 s left), RecordAudit succeeds on its retry."""
    local.cognito.create_user(sub)
    log = local.state.state_dir / "lambda" / f"{local.state.functions['SyncUserSteps']}.log"
    with (configured(local, "SyncUserSteps", Timeout=5), local.timeouts_named(name),
          local.holding("RecordAudit") as reached):
        arn = local.operator.start(sub, wait=False)["execution_arn"]
        reached()  # RecordAudit has written; its answer is held past the 5 s
        result = local.operator.wait(arn)
    assert result["status"] == "SUCCEEDED"
    [failed] = [e["lambdaFunctionFailedEventDetails"] for e in local.inspector.failed_attempts(arn)]
    assert failed["error"] == name
    cause = json.loads(failed["cause"])
    assert cause["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 5.00 seconds" in cause["errorMessage"]
    assert "Status: timeout" in log.read_text()  # the environment was killed, as Lambda does


def test_a_throttled_step_is_retried_as_lambda_too_many_requests(local, sub):
    """Reserved concurrency 0 throttles every invocation (HTTP 429, TooManyRequestsException);
    Step Functions names it Lambda.TooManyRequestsException, which the ASL retries."""
    lam, name = local.aws["lambda"], local.state.functions["SyncUserSteps"]
    reserved = lam.get_function_concurrency(FunctionName=name).get("ReservedConcurrentExecutions")
    local.cognito.create_user(sub)
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    try:
        try:
            lam.invoke(FunctionName=name, Payload=b"{}")
            raise AssertionError("invoked beyond its reserved concurrency")
        except lam.exceptions.TooManyRequestsException:
            pass
        arn = local.operator.start(sub, wait=False)["execution_arn"]
        deadline = time.monotonic() + 30
        while not (throttled := local.inspector.failed_attempts(arn)):
            assert time.monotonic() < deadline, "no throttled attempt within 30 s"
            time.sleep(0.2)
    finally:  # as deployed, for the tests after this one
        if reserved is None:
            lam.delete_function_concurrency(FunctionName=name)
        else:
            lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=reserved)
    assert throttled[0]["lambdaFunctionFailedEventDetails"]["error"] == "Lambda.TooManyRequestsException"
    assert local.operator.wait(arn)["status"] == "SUCCEEDED"  # retried once the function could run


def test_a_call_the_role_lacks_is_denied_and_flagged(local, sub):
    """Negative control of the IAM enforcement: without PutItem in its role, RecordAudit's write
    is refused by moto as AWS would refuse it, and the call check names it."""
    iam = local.aws["iam"]
    role = local.state.roles["SyncUserSteps"].rsplit("/", 1)[-1]
    [default] = [p for p in iam.list_role_policies(RoleName=role)["PolicyNames"] if "DefaultPolicy" in p]
    document = iam.get_role_policy(RoleName=role, PolicyName=default)["PolicyDocument"]
    without = {**document, "Statement": [
        {**s, "Action": [a for a in s["Action"] if a != "dynamodb:PutItem"]} if isinstance(s["Action"], list) else s
        for s in document["Statement"] if s["Action"] != "dynamodb:PutItem"]}
    assert without["Statement"] != document["Statement"]
    iam.put_role_policy(RoleName=role, PolicyName=default, PolicyDocument=json.dumps(without))
    try:
        local.cognito.create_user(sub)
        result = local.operator.start(sub)
        seen = iam_check.calls_seen(local.state)
        flagged = iam_check.unallowed_calls(seen, local.state.roles, local.aws)
    finally:
        iam.put_role_policy(RoleName=role, PolicyName=default, PolicyDocument=json.dumps(document))
    assert (result["status"], result["failed_state"]) == ("FAILED", "RecordAudit")
    calls = seen["SyncUserSteps"]
    assert {"service": "dynamodb", "action": "PutItem", "TableName": local.state.audit_table,
            "error": "AccessDeniedException"} in calls
    table = f"arn:aws:dynamodb:us-east-1:123456789012:table/{local.state.audit_table}"
    assert f"SyncUserSteps: dynamodb:PutItem on {table}" in flagged
    assert not any(f.startswith("SyncUserSteps") for f in iam_check.unallowed_calls(seen, local.state.roles, local.aws))
