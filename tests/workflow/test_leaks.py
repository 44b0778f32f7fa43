"""No secret and no more personal data than designed, anywhere we write: Lambda logs,
execution inputs, outputs and histories, the audit table, the sweep's plans. Runs the main
paths (sign-up, Cognito's retry, a failure and its redrive, role sync, deactivation, a sweep
that plans) on the suite's shared stack, then scans everything for the bot's token (a canary
value given to Synapse) and for the users' email addresses. env.running scans every stack the
same way when it stops (the sweep tests' stacks, with plans that were applied, included)."""

import json
import uuid

import pytest

from chat_provisioning.adapters.telemetry import METRICS, NAMESPACE

CANARY = "canary_bot_token_"


@pytest.fixture(scope="module")
def exercised(local):
    subs = [str(uuid.uuid4()) for _ in range(3)]
    local.cognito.signup(subs[0], ["staff"], "Ann")
    local.cognito.signup(subs[0], ["staff"], "Ann")  # Cognito's retry
    user = local.user_id(subs[1])  # a failure, its audit and redrive
    local.synapse.upsert_user(user, None, external_id=subs[1], auth_provider="cognito")
    local.synapse.deactivate(user, erase=False)
    failed = local.cognito.signup(subs[1], ["analysts"], None)
    assert failed["error"] == "UserDeactivated"
    local.synapse.reactivate(user)
    local.operator.redrive(failed["execution_arn"])
    local.cognito.change(subs[1], "AdminAddUserToGroup", "experiencers")
    local.cognito.change(subs[0], "AdminDisableUser")
    local.cognito.create_user(subs[2], [], "Zed")
    local.events.send_sync_event({"sub": subs[2]})
    local.operator.sweep(dry_run=True)  # the shared stack's other users are other tests': plan only
    return local, subs


def test_the_bot_token_is_written_nowhere(exercised):
    local, _ = exercised
    token = local.token
    assert token.startswith(CANARY)  # the value Synapse was given (synapse_server.canary_token)
    written = local.inspector.everything_written()
    assert len(written) > 10_000  # the scan saw the runs, not an empty log
    assert "REPORT RequestId" in written and '"cold_start"' in written  # and the functions' own logs
    assert '"fixes"' in written  # and the sweep's plan
    assert written.count(token) == 0 and CANARY not in written
    assert local.inspector.leaks(written)["bot_token"] == 0


def test_no_email_or_other_attribute_beyond_the_design(exercised):
    local, subs = exercised
    written = local.inspector.everything_written()
    assert "example.invalid" not in written  # every sign-up event carried an email
    assert "email" not in written.lower() and local.inspector.leaks(written)["emails"] == 0
    assert all(sub in written for sub in subs)  # what the design allows is there


def test_every_metric_the_functions_wrote_is_declared(exercised):
    """What the dashboard test checks the dashboard against (telemetry.METRICS) is what the
    functions publish: each Embedded Metric Format record in their logs, name and dimensions."""
    local, _ = exercised
    written = set()
    for log in (local.state.state_dir / "lambda").glob("*.log"):
        for line in log.read_text().splitlines():
            record = json.loads(line) if line.startswith('{"_aws"') else None
            for directive in (record or {}).get("_aws", {}).get("CloudWatchMetrics", []):
                (dimensions,) = directive["Dimensions"]
                for metric in directive["Metrics"]:
                    assert directive["Namespace"] == NAMESPACE
                    assert set(dimensions) == {"service", *METRICS[metric["Name"]]}, metric
                    written.add(metric["Name"])
    assert {"SignUpsStarted", "UsersSynced", "ExecutionsFailed", "StepErrors", "SweepUsersToFix"} <= written
