"""What starts the workflow and what audits it, through each handler on in-memory fakes, fed
AWS's documented event shapes (local_run/aws_events.py): the sign-up trigger, its retry queue's
consumer, the CloudTrail and custom-event target, the failure audit, and InspectUser."""

import json

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from botocore.exceptions import ClientError

from chat_provisioning.adapters.step_functions import NameTaken, StepFunctionsWorkflows, start_once
from chat_provisioning.domain.errors import InvalidInput
from chat_provisioning.domain.executions import execution_arn
from chat_provisioning.handlers import failure_audit, inspection, signup, starts
from local_run.aws_events import (
    MASKED,
    bus_event,
    cloudtrail_event,
    execution_status_change,
    post_confirmation_event,
    sqs_batch,
)
from stacks import wiring
from tests.fakes import POOL, SERVER, SUB, FakeWorkflows, runtime_of, signup_ports_of


def sign_up(pool=POOL, user_name="aaron", sub=SUB) -> dict:
    return post_confirmation_event(pool, user_name, {"sub": sub, "email": "aaron@example.test"})


def test_a_sign_up_starts_one_workflow_named_by_its_sub(context):
    rt = runtime_of()
    rt.directory.add(SUB, username="aaron")
    ports = signup_ports_of(rt)
    for _ in range(2):  # Cognito may call the trigger again: one execution
        assert signup.post_confirmation(sign_up(), context, ports=ports) == sign_up()
    assert rt.workflows.started == {f"signup-{SUB}": {"sub": SUB, "cause": "signup"}}


@pytest.mark.parametrize("event", [sign_up(pool="us-east-1_Other"), sign_up(user_name="someone-else")])
def test_a_sign_up_of_another_pool_or_username_starts_nothing(context, event):
    rt = runtime_of()
    rt.directory.add(SUB, username="aaron")
    rt.directory.add("11111111-2222-4333-8444-555555555555", username="someone-else")
    ports = signup_ports_of(rt)
    assert signup.post_confirmation(event, context, ports=ports) == event
    assert rt.workflows.started == {} and ports.retry_queue.sent == []


def test_the_retry_queue_starts_each_job_checked_as_the_trigger_checks_it(context):
    rt = runtime_of()
    rt.directory.add(SUB, username="aaron")
    good = {"user_pool_id": POOL, "user_name": "aaron", "sub": SUB}
    forged = {"user_pool_id": POOL, "user_name": "aaron", "sub": "11111111-2222-4333-8444-555555555555"}
    answer = starts.retry_start(sqs_batch(good, forged, "not json"), context, rt=rt)
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m1"}, {"itemIdentifier": "m2"}]}
    assert list(rt.workflows.started) == [f"signup-{SUB}"]


def test_a_retry_whose_start_fails_again_returns_to_the_queue(context):
    rt = runtime_of()
    rt.directory.add(SUB, username="aaron")
    rt.workflows.fail("start_sync", RuntimeError("throttled"))
    with pytest.raises(BatchProcessingError):  # every record failed: SQS delivers it again
        starts.retry_start(sqs_batch({"user_pool_id": POOL, "user_name": "aaron", "sub": SUB}),
                             context, rt=rt)


@pytest.mark.parametrize("event_name, group", [("AdminAddUserToGroup", "staff"), ("AdminDisableUser", None)])
def test_a_cloudtrail_record_starts_the_users_sync_by_the_recorded_sub(context, event_name, group):
    rt = runtime_of()
    event = cloudtrail_event(event_name, POOL, SUB, group)
    answer = starts.on_cognito_change(event, context, rt=rt)
    name = f"sync-{SUB}-{event['id']}"
    assert answer == {"started": True, "execution": execution_arn(FakeWorkflows.MACHINE, name)}
    assert rt.workflows.started == {name: {"sub": SUB, "cause": event_name}}
    assert rt.directory.calls == []  # the sub is in the record: no lookup


def test_a_record_without_the_sub_falls_back_to_a_username_that_is_there(context):
    rt = runtime_of()
    rt.directory.add(SUB, username="aaron")
    event = cloudtrail_event("AdminEnableUser", POOL, None)
    event["detail"]["requestParameters"]["username"] = "aaron"
    assert starts.on_cognito_change(event, context, rt=rt)["started"]
    assert [s["sub"] for s in rt.workflows.started.values()] == [SUB]
    masked = cloudtrail_event("AdminEnableUser", POOL, None)  # the username masked too: the sweep's
    assert starts.on_cognito_change(masked, context, rt=rt) == {"started": False, "cause": "AdminEnableUser"}
    assert masked["detail"]["requestParameters"]["username"] == MASKED


def test_another_pools_record_and_a_call_we_do_not_handle_start_nothing(context):
    rt = runtime_of()
    other = cloudtrail_event("AdminDisableUser", "us-east-1_Other", SUB)
    assert starts.on_cognito_change(other, context, rt=rt)["started"] is False
    with pytest.raises(InvalidInput, match="not a Cognito event"):
        starts.on_cognito_change(cloudtrail_event("AdminGetUser", POOL, SUB), context, rt=rt)
    assert rt.workflows.started == {}


def test_the_custom_event_names_a_sub_and_nothing_else(context):
    rt = runtime_of()
    event = bus_event(wiring.SYNC_EVENT_PATTERN, {"sub": SUB.upper()})
    assert starts.on_cognito_change(event, context, rt=rt)["started"]
    assert list(rt.workflows.started.values()) == [{"sub": SUB, "cause": "event"}]
    with pytest.raises(InvalidInput):
        starts.on_cognito_change(bus_event(wiring.SYNC_EVENT_PATTERN, {"sub": SUB, "groups": ["staff"]}),
                                   context, rt=rt)


def status_change(execution: str, workflow_input: str, redrive: int = 0) -> dict:
    return execution_status_change({
        "executionArn": execution, "stateMachineArn": FakeWorkflows.MACHINE, "name": execution.rsplit(":", 1)[1],
        "status": "FAILED", "input": workflow_input, "error": "SynapseUnavailable", "cause": "GET /users: 503",
        "redriveCount": redrive})


def test_a_failed_run_is_audited_once_per_attempt_with_the_state_it_stopped_at(context):
    rt = runtime_of()
    execution = execution_arn(FakeWorkflows.MACHINE, f"signup-{SUB}")
    rt.workflows.stopped_at[execution] = "JoinRooms"
    event = status_change(execution, json.dumps({"sub": SUB, "cause": "signup"}))
    for _ in range(2):  # EventBridge delivers at least once
        assert failure_audit.record_failure(event, context, rt=rt) == {
            "execution": execution, "failed_state": "JoinRooms"}
    failure_audit.record_failure(status_change(execution, json.dumps({"sub": SUB}), redrive=1), context, rt=rt)
    trail = rt.audit.trail(SUB)
    assert [(i["sk"], i["step"], i["outcome"], i["error"]) for i in trail] == [
        (f"signup-{SUB}#failed#0", "JoinRooms", "failed", "SynapseUnavailable"),
        (f"signup-{SUB}#failed#1", "JoinRooms", "failed", "SynapseUnavailable")]
    assert trail[0]["event"] == "signup"


def test_a_failed_run_without_a_valid_sub_is_audited_under_its_name(context):
    rt = runtime_of()
    execution = execution_arn(FakeWorkflows.MACHINE, "forged")
    failure_audit.record_failure(status_change(execution, '{"sub": "not-a-sub"}'), context, rt=rt)
    assert [i["outcome"] for i in rt.audit.trail("unknown:forged")] == ["failed"]


def test_inspect_user_reports_both_sides_and_the_drift(context):
    rt = runtime_of()
    rt.directory.add(SUB, ("staff",))
    user_id = f"@{SUB}:{SERVER}"
    rt.synapse.upsert_user(user_id, None, SUB, "cognito")
    rt.synapse.join(f"!red_room:{SERVER}", user_id)
    rt.synapse.calls.clear()
    report = inspection.inspect_user({"sub": SUB}, context, rt=rt)
    assert report["cognito"] == {"standing": "confirmed", "status": "CONFIRMED", "enabled": True, "groups": ["staff"]}
    assert [(r["room"], r["joined"]) for r in report["matrix"]["rooms"]] == [
        ("red_room", True), ("staff", False), ("analysts", False), ("experiencers", False)]
    assert {(f["kind"], f["room_id"]) for f in report["drift"]["fixes"]} >= {("join", f"!staff:{SERVER}")}
    assert not [c for c in rt.synapse.calls if c[0] not in ("user", "room_members", "power_levels")]  # reads only


class StartedOnce:
    """Step Functions' StartExecution as AWS documents it: a name is one execution's; a repeat
    with its input while it runs answers its ARN, any other ExecutionAlreadyExists."""

    def __init__(self, taken: dict[str, str]):
        self.executions, self.started = dict(taken), []

    def start_execution(self, stateMachineArn, name, input):
        if name in self.executions:
            raise ClientError({"Error": {"Code": "ExecutionAlreadyExists", "Message": name}}, "StartExecution")
        self.executions[name] = input
        self.started.append(name)
        return {"executionArn": execution_arn(stateMachineArn, name)}

    def describe_execution(self, executionArn):
        return {"input": self.executions[executionArn.rsplit(":", 1)[-1]]}


def test_a_name_taken_by_another_input_is_counted_and_never_taken_for_ours():
    """Anyone with StartExecution can pre-start signup-<sub> with another input: that is not the
    sign-up started. The start goes ahead under a name nobody could predict."""
    machine = "arn:aws:states:us-east-1:123456789012:stateMachine:ChatProvisioning-SyncUser"
    ours, name = json.dumps({"sub": SUB, "cause": "signup"}), f"signup-{SUB}"
    sfn = StartedOnce({name: ours})
    assert start_once(sfn, machine, name, ours).endswith(name)  # the same start, repeated
    sfn = StartedOnce({name: json.dumps({"sub": SUB, "cause": "manual"})})
    with pytest.raises(NameTaken):
        start_once(sfn, machine, name, ours)
    arn = StepFunctionsWorkflows(machine, lambda: sfn).start_sync(SUB, "signup", name)
    assert sfn.started == [arn.rsplit(":", 1)[-1]] and arn.rsplit(":", 1)[-1].startswith(f"{name}-")
    assert len(arn.rsplit(":", 1)[-1]) <= 80 and sfn.executions[sfn.started[0]] == ours
