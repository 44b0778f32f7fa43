"""Property-based fuzzing of every handler's event parsing (hypothesis, 200 cases each): the
answer is a typed error or a valid result, never an unhandled exception, and nothing is
written: every port below the parsing raises on first use."""

import os
import string
from unittest import mock

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chat_provisioning.domain.errors import ProvisioningError
from chat_provisioning.handlers import failure_audit, signup, starts, steps
from tests.fakes import SUB, runtime_of

# 200 cases per handler in `make test`; `make proof` runs 2,000 (FUZZ_EXAMPLES).
FUZZ = settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", 200)), deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=12), inner, max_size=5), max_leaves=20)
subs = st.sampled_from([SUB, SUB.upper(), "", "x", None, 7]) | st.text(alphabet=string.hexdigits + "-", max_size=40)


def events_like(template: dict):
    """The template with any field replaced, dropped, or kept; plus arbitrary JSON."""
    fields = {k: st.one_of(st.just(v), json_values) for k, v in template.items()}
    return st.fixed_dictionaries({}, optional=fields) | json_values


class Reached(Exception):
    """The event was valid: the handler got past its parsing to the domain."""


class Unreachable:
    def __getattr__(self, name):
        raise Reached()


NO_DOMAIN = runtime_of(**{port: Unreachable() for port in ("synapse", "directory", "workflows", "plans", "audit",
                                                           "locks")})


def outcome(handler, event, context, **injected):
    try:
        return handler(event, context, **(injected or {"rt": NO_DOMAIN}))
    except (ProvisioningError, Reached) as e:
        return e


STEP_EVENT = {"execution": "arn:aws:states:us-east-1:1:execution:m:e", "redrive": 0,
              "workflow": {"sub": SUB, "cause": "signup", "cognito": "confirmed", "groups": ["staff"],
                           "display_name": "A"}}


@pytest.mark.parametrize("handler", [*steps.SYNC_USER_STEPS.values(), steps.plan_sweep],
                         ids=[*steps.SYNC_USER_STEPS, "PlanSweep"])
@FUZZ
@given(event=events_like(STEP_EVENT) | st.fixed_dictionaries(
    {"execution": st.text(max_size=30), "redrive": json_values, "workflow": events_like(STEP_EVENT["workflow"]),
     "dry_run": json_values}))
def test_steps(context, handler, event):
    outcome(handler, event, context)


@FUZZ
@given(event=events_like({**STEP_EVENT, "step": "ProvisionUser"}) | st.builds(
    lambda step, event: {**event, "step": step} if isinstance(event, dict) else event,
    st.sampled_from(sorted(steps.SYNC_USER_STEPS)) | json_values,
    events_like(STEP_EVENT)))
def test_the_sync_user_steps_function(context, event):
    """The deployed handler, whatever step its payload names: a typed error, or a step's answer."""
    with mock.patch.object(steps, "runtime", lambda: NO_DOMAIN):
        outcome(lambda e, c, rt: steps.sync_user_step(e, c), event, context)


SIGN_UP = {"version": "1", "region": "us-east-1", "userPoolId": "us-east-1_abc", "userName": "u",
           "triggerSource": "PostConfirmation_ConfirmSignUp", "callerContext": {"clientId": "c"},
           "request": {"userAttributes": {"sub": SUB, "name": "A"}}, "response": {}}


@FUZZ
@given(event=events_like(SIGN_UP) | st.fixed_dictionaries(
    {**{k: st.just(v) for k, v in SIGN_UP.items() if k != "request"},
     "request": st.fixed_dictionaries({"userAttributes": st.dictionaries(
         st.sampled_from(["sub", "name", "email", "nickname"]), subs | json_values)})}))
def test_post_confirmation_never_fails_a_valid_sign_up(context, event):
    result = outcome(signup.post_confirmation, event, context,
                     ports=signup.SignUpPorts(Unreachable(), Unreachable(), Unreachable()))
    if isinstance(event, dict) and event.get("triggerSource") == SIGN_UP["triggerSource"]:
        assert result == event  # a sign-up always goes through, whatever else is wrong


CLOUDTRAIL = {"id": "e1", "source": "aws.cognito-idp", "detail-type": "AWS API Call via CloudTrail",
              "detail": {"eventName": "AdminDisableUser",
                         "requestParameters": {"userPoolId": "us-east-1_abc", "username": SUB}}}


@FUZZ
@given(event=events_like(CLOUDTRAIL) | st.fixed_dictionaries(
    {"id": st.text(max_size=10), "detail-type": st.sampled_from(["Sync chat user", "AWS API Call via CloudTrail"]),
     "detail": events_like({"sub": SUB, "eventName": "AdminEnableUser"})}))
def test_on_cognito_change(context, event):
    outcome(starts.on_cognito_change, event, context)


STATUS = {"id": "e2", "source": "aws.states", "detail-type": "Step Functions Execution Status Change",
          "detail": {"executionArn": "arn:aws:states:us-east-1:1:execution:m:e", "status": "FAILED",
                     "input": f'{{"sub": "{SUB}"}}', "error": "X", "cause": "Y", "redriveCount": 0}}


@FUZZ
@given(event=events_like(STATUS) | st.fixed_dictionaries({"detail": events_like(STATUS["detail"])}))
def test_record_failure(context, event):
    outcome(failure_audit.record_failure, event, context)


@FUZZ
@given(event=events_like({"Records": [{"messageId": "m", "body": f'{{"sub": "{SUB}"}}'}]})
       | st.fixed_dictionaries({"Records": st.lists(st.fixed_dictionaries(
           {"messageId": st.text(max_size=5), "body": st.text(max_size=60) | st.just('{"sub": 1}')}), max_size=3)}))
def test_retry_start(context, event):
    try:
        outcome(starts.retry_start, event, context)
    except BatchProcessingError:
        pass  # every record failed: Powertools fails the batch so SQS retries it, then its DLQ
