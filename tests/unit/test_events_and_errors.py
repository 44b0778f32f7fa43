"""Event parsing in the handlers, and the adapter's mapping of Synapse failures to typed errors
(an error-injecting transport stands in for Synapse here; integration tests use the real one)."""

import json
import logging
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from chat_provisioning.adapters.synapse import SynapseAdmin
from chat_provisioning.domain import errors
from chat_provisioning.domain.deadline import RESERVE_SECONDS, Deadline
from chat_provisioning.domain.models import StartRequest, WorkflowState, parse
from chat_provisioning.handlers import runtime, signup, steps
from local_run.aws_events import post_confirmation_event
from stacks import wiring
from tests.fakes import POOL, SUB, FakeRetryQueue, fresh_clients, runtime_of, signup_ports_of


def signup_event(source="PostConfirmation_ConfirmSignUp", sub=SUB):
    return post_confirmation_event(POOL, "u", {"sub": sub, "email": "a@b.c"}, source)


def sign_up_ports():
    rt = runtime_of()
    rt.directory.add(SUB, username="u")
    return signup_ports_of(rt)


def test_password_reset_confirmation_starts_nothing(context):
    ports = sign_up_ports()
    event = signup_event("PostConfirmation_ConfirmForgotPassword")
    assert signup.post_confirmation(event, context, ports=ports) == event
    assert ports.workflows.calls == [] and ports.retry_queue.sent == []


@pytest.mark.parametrize("source", ["PreSignUp_SignUp", None, 42])
def test_a_trigger_that_is_not_post_confirmation_is_a_typed_error(context, source):
    with pytest.raises(errors.InvalidInput, match="not a PostConfirmation event"):
        signup.post_confirmation(signup_event(source), context)


@pytest.mark.parametrize("sub", [None, "", "nope", "0F9E8D7C-1234-4ABC-8DEF-0123456789AB-x"])
def test_signup_without_valid_sub_starts_nothing_and_does_not_fail(context, sub):
    ports = sign_up_ports()
    event = signup_event(sub=sub)
    assert signup.post_confirmation(event, context, ports=ports) == event
    assert ports.workflows.calls == [] and ports.retry_queue.sent == []


def test_failed_start_is_queued_and_signup_still_succeeds(context):
    ports = sign_up_ports()
    ports.workflows.fail("start_sync", RuntimeError("Step Functions unreachable"))
    event = signup_event()
    assert signup.post_confirmation(event, context, ports=ports) == event
    assert ports.retry_queue.sent == [{"user_pool_id": POOL, "user_name": "u", "sub": SUB}]


@pytest.mark.parametrize("workflow, problem", [
    ({}, "sub"),
    ({"sub": "x"}, "Cognito UUID"),
    ({"sub": SUB, "cause": "enable"}, "cause"),
    # What a start may carry is a sub and a cause: groups, flags, a name, the audit trail's
    # fields, personal data are refused, not ignored (a caller learns its input was wrong).
    ({"sub": SUB, "groups": ["staff"]}, "groups"),
    ({"sub": SUB, "reactivate": True}, "reactivate"),
    ({"sub": SUB, "display_name": "Boss"}, "display_name"),
    ({"sub": SUB, "execution": "arn:forged", "actions": []}, "execution"),
    ({"sub": SUB, "cognito": "confirmed"}, "cognito"),
    ({"sub": SUB, "email": "a@b.c"}, "email"),
])
def test_the_first_step_takes_a_sub_and_a_cause_only(context, monkeypatch, workflow, problem):
    monkeypatch.setattr(steps, "runtime", lambda: pytest.fail("reached the domain"))
    with pytest.raises(errors.InvalidInput, match=problem):
        steps.read_cognito_user({"execution": "arn:x", "workflow": workflow}, context)


def test_step_event_needs_execution(context):
    with pytest.raises(errors.InvalidInput, match="execution"):
        steps.join_rooms({"workflow": {"sub": SUB}}, context)


def test_request_is_normalised_so_retries_have_identical_input():
    a = parse(StartRequest, {"sub": SUB.upper(), "cause": "signup"})
    b = parse(StartRequest, {"sub": SUB, "cause": "signup"})
    assert a.model_dump_json() == b.model_dump_json()


def test_workflow_state_keeps_actions_in_order():
    state = parse(WorkflowState, {"sub": SUB, "cause": "signup", "cognito": "confirmed"})
    assert state.did().actions == ()


def test_every_url_path_segment_is_quoted_whole():
    """Config allows "/" in room IDs: unquoted, one could reach another admin path."""
    paths = []

    def handler(request):
        paths.append(request.url.raw_path.decode())
        return httpx.Response(200, json={})
    a = adapter(handler)
    a.join("!a/../../v1/deactivate/x:server", "@u:x")
    a.user("@u/../x:server")
    assert paths == ["/_synapse/admin/v1/join/%21a%2F..%2F..%2Fv1%2Fdeactivate%2Fx%3Aserver",
                     "/_synapse/admin/v2/users/%40u%2F..%2Fx%3Aserver"]


def adapter(handler, token=lambda refresh=False: "t") -> SynapseAdmin:
    return SynapseAdmin("http://synapse", token, "@bot:x", transport=httpx.MockTransport(handler))


@pytest.mark.parametrize("status, body, error", [
    (500, {}, errors.SynapseUnavailable),
    (502, "bad gateway", errors.SynapseUnavailable),
    (403, {"errcode": "M_FORBIDDEN", "error": "You are not a server admin"}, errors.SynapseForbidden),
    (400, {"errcode": "M_INVALID_USERNAME", "error": "bad"}, errors.InvalidInput),
    (400, {"errcode": "M_BAD_JSON", "error": "bad"}, errors.SynapseRejected),
    (401, {"errcode": "M_UNKNOWN_TOKEN", "error": "Invalid access token"}, errors.SynapseAuthFailed),
])
def test_status_codes_map_to_typed_errors(status, body, error):
    a = adapter(lambda r: httpx.Response(status, **({"json": body} if isinstance(body, dict) else {"text": body})))
    with pytest.raises(error):
        a.upsert_user("@u:x", None, "u", "cognito")


def test_transport_errors_are_unavailable():
    def refuse(request):
        raise httpx.ConnectError("refused")
    with pytest.raises(errors.SynapseUnavailable):
        adapter(refuse).join("!r:x", "@u:x")


def test_401_rereads_the_token_once():
    reads = []

    def token(refresh=False):
        reads.append(refresh)
        return "new" if refresh else "old"

    def handler(request):
        ok = request.headers["Authorization"] == "Bearer new"
        return httpx.Response(200 if ok else 401, json={} if ok else {"errcode": "M_UNKNOWN_TOKEN"})
    assert adapter(handler, token).join("!r:x", "@u:x") is True
    assert reads == [False, True]


def test_429_waits_retry_after_then_succeeds():
    calls = []

    def handler(request):
        calls.append(1)
        if len(calls) == 1:
            return httpx.Response(429, json={"errcode": "M_LIMIT_EXCEEDED", "retry_after_ms": 10})
        return httpx.Response(200, json={})
    assert adapter(handler).join("!r:x", "@u:x") is True
    assert len(calls) == 2


def test_429_with_long_wait_goes_back_to_step_functions():
    def handler(request):
        return httpx.Response(429, json={"errcode": "M_LIMIT_EXCEEDED", "retry_after_ms": 60_000})
    with pytest.raises(errors.SynapseRateLimited) as e:
        adapter(handler).join("!r:x", "@u:x")
    assert e.value.retry_after_ms == 60_000


def test_power_level_put_never_drops_the_bot():
    puts = []

    def handler(request):
        if request.method == "PUT":
            puts.append(request.content)
            return httpx.Response(200, json={})
        return httpx.Response(200, json={"users": {"@bot:x": 100}, "users_default": 0})
    a = adapter(handler)
    assert a.set_power_levels("!r:x", {"@u:x": 99}) == {"@u:x": 99}
    assert b'"@bot:x":100' in puts[0].replace(b" ", b"")
    with pytest.raises(errors.PowerLevelForbidden):
        a.set_power_levels("!r:x", {"@bot:x": 0})
    with pytest.raises(errors.PowerLevelForbidden, match="above the bot"):
        a.set_power_levels("!r:x", {"@u:x": 101})
    assert len(puts) == 1  # neither refused change reached Synapse


class Lease:
    def __init__(self):
        self.checks = 0

    def check(self):
        self.checks += 1


def test_guarded_write_is_read_back_and_redone_when_lost():
    """A writer outside the lease overwrites our first PUT: the read-back sees it, we redo."""
    state = {"users": {"@bot:x": 100}, "users_default": 0}
    puts = []

    def handler(request):
        nonlocal state
        if request.method == "PUT":
            puts.append(1)
            if len(puts) > 1:  # the first PUT is lost to a concurrent writer
                state = json.loads(request.content)
        return httpx.Response(200, json=state)
    lease = Lease()
    assert adapter(handler).set_power_levels("!r:x", {"@u:x": 50}, lease) == {"@u:x": 50}
    assert len(puts) == 2 and lease.checks == 2 and state["users"]["@u:x"] == 50


def test_guarded_write_lost_every_time_is_a_typed_error():
    def handler(request):
        return httpx.Response(200, json={"users": {"@bot:x": 100}})
    with pytest.raises(errors.PowerLevelWriteLost):
        adapter(handler).set_power_levels("!r:x", {"@u:x": 50}, Lease())


def test_a_debug_root_logger_never_logs_the_token(monkeypatch, caplog):
    """AWS_LAMBDA_LOG_LEVEL=DEBUG (or a developer's basicConfig) puts the root logger at DEBUG,
    where botocore logs every response body; telemetry caps the libraries that log wire data."""
    import boto3
    from moto import mock_aws

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws(), fresh_clients():  # clients made under moto must not outlive it
        boto3.client("secretsmanager").create_secret(Name="bot-token", SecretString="canary_bot_token_debug")
        caplog.set_level(logging.DEBUG)  # the root logger and its handler
        assert runtime.bot_token("bot-token", refresh=True) == "canary_bot_token_debug"
    assert any(r.name.startswith("botocore") for r in caplog.records)  # botocore did log, at INFO
    assert "canary_bot_token_debug" not in caplog.text


class Stopped:
    """A clock that stands still: the deadline's time left is what the test sets."""
    def __init__(self, now: float = 100.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_step_out_of_time_stops_with_a_retried_error_before_lambda_ends_it():
    """A request is not started with under a second left, nor waits out a 429 that would pass
    the deadline: SynapseUnavailable and SynapseRateLimited are retried; Lambda's own timeout
    (Lambda.Unknown) would say nothing of why."""
    clock, sent = Stopped(), []
    deadline = Deadline(clock)
    deadline.start(remaining_ms=int((RESERVE_SECONDS + 0.5) * 1000))  # 0.5 s left

    def handler(request):
        sent.append(request.extensions["timeout"])
        return httpx.Response(429, json={"errcode": "M_LIMIT_EXCEEDED", "retry_after_ms": 3000})
    a = SynapseAdmin("http://synapse", lambda refresh=False: "t", "@bot:x",
                     transport=httpx.MockTransport(handler), deadline=deadline)
    with pytest.raises(errors.SynapseUnavailable, match="0.5s left"):
        a.join("!r:x", "@u:x")
    assert sent == []
    deadline.start(remaining_ms=int((RESERVE_SECONDS + 4) * 1000))  # 4 s left: no 3 s wait
    with pytest.raises(errors.SynapseRateLimited):
        a.join("!r:x", "@u:x")
    # One request, whose connect and read each got half the time left (not the 10 s timeout).
    assert [t["connect"] for t in sent] == [2.0] and [t["read"] for t in sent] == [2.0]


def test_the_sign_up_trigger_loads_only_what_a_sign_up_needs():
    """Cognito waits 5 s for PostConfirmation, cold start included: its module loads neither
    pydantic, httpx nor the X-Ray SDK, nor the rest of the package (make bench times it)."""
    code = ("import sys, chat_provisioning.handlers.signup; print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('pydantic', 'httpx', 'aws_xray_sdk') or m in ('chat_provisioning.handlers.runtime', "
            "'chat_provisioning.domain.config', 'chat_provisioning.domain.models', "
            "'chat_provisioning.adapters.synapse')))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(signup.__file__).parents[1])
    assert run.stdout.strip() == "[]"


# the handlers' modules, and what the first invocation builds
@pytest.mark.parametrize("module", sorted({h.rsplit(".", 1)[0] for h in wiring.FUNCTIONS.values()}
                                           | {"chat_provisioning.handlers.runtime"}))
def test_no_handler_module_loads_boto3_or_httpx_when_imported(module):
    """A cold start imports what its handler uses: botocore's clients, not boto3 (whose S3
    transfer manager no handler uses), no X-Ray SDK, and httpx only at the first Synapse
    request (the functions that never call Synapse never load it)."""
    code = (f"import sys, {module}; print(sorted({{m.split('.')[0] for m in sys.modules}}"
            " & {'boto3', 's3transfer', 'aws_xray_sdk', 'httpx'}))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(signup.__file__).parents[1])
    assert run.stdout.strip() == "[]"


def test_the_bots_token_is_read_once_per_cache_time_and_again_when_refused(monkeypatch):
    """The token is read from Secrets Manager once per TOKEN_CACHE_SECONDS, at once again when
    Synapse refused it (`refresh`: a rotated secret), as a plain string or JSON's access_token."""
    reads, now = [], [1000.0]

    class Secrets:
        value = " plain-token \n"

        def get_secret_value(self, SecretId):
            reads.append(SecretId)
            return {"SecretString": self.value} if self.value is not None else {"SecretBinary": b"x"}
    secrets = Secrets()
    monkeypatch.setattr(runtime, "aws_client", lambda service: secrets)
    monkeypatch.setattr(runtime.time, "monotonic", lambda: now[0])
    monkeypatch.setattr(runtime, "SECRETS", {})
    assert runtime.bot_token("bot") == runtime.bot_token("bot") == "plain-token" and reads == ["bot"]
    secrets.value = '{"access_token": "rotated"}'
    now[0] += runtime.TOKEN_CACHE_SECONDS - 1
    assert runtime.bot_token("bot") == "plain-token" and len(reads) == 1  # still within its time
    assert runtime.bot_token("bot", refresh=True) == "rotated" and len(reads) == 2
    secrets.value = "later"
    now[0] += runtime.TOKEN_CACHE_SECONDS + 1
    assert runtime.bot_token("bot") == "later" and len(reads) == 3
    secrets.value = None
    with pytest.raises(TypeError, match="not a string"):
        runtime.bot_token("bot", refresh=True)


def test_a_sign_up_without_time_to_start_and_queue_goes_to_the_queue_at_once(context, monkeypatch):
    """The trigger has 4 s: StartExecution is tried only with time left for it and for the
    retry queue after it (2.8 s); with less, the job is queued without trying."""
    ports = sign_up_ports()
    monkeypatch.setattr(context, "get_remaining_time_in_millis", lambda: 2500, raising=False)
    event = signup_event()
    assert signup.post_confirmation(event, context, ports=ports) == event
    assert ports.workflows.called("start_sync") == []
    assert ports.retry_queue.sent == [{"user_pool_id": POOL, "user_name": "u", "sub": SUB}]


def test_a_trigger_whose_clients_cannot_be_made_still_queues_the_sign_up(context, monkeypatch):
    """signup_ports makes the Cognito and Step Functions clients (no region, a bad endpoint: it
    raises): the sign-up goes through and its job to the queue, whose client is its own."""
    queue = FakeRetryQueue()

    def no_clients():
        raise ValueError("You must specify a region.")
    monkeypatch.setattr(signup, "signup_ports", no_clients)
    monkeypatch.setattr(signup, "retry_queue", lambda: queue)
    event = signup_event()
    assert signup.post_confirmation(event, context) == event
    assert queue.sent == [{"user_pool_id": POOL, "user_name": "u", "sub": SUB}]
