"""The reliability suite (`make proof`): a fault of each kind at each step that talks to
Synapse (the sign-up's three, the sync's DeactivateUser, the sweep's PlanSweep), injected by
a proxy between the handlers and the real Synapse, and Lambda, Cognito and DynamoDB faults at
every step, injected by the local Lambda runner. Transient faults are retried and succeed;
exhausted or permanent ones end FAILED at that step, and after the fault is gone a redrive
completes the run; then Synapse and the audit table hold exactly one user, one
membership per room, the right levels, and an audit trail with both attempts."""

import json
import time
import uuid

import pytest

from chat_provisioning.domain.errors import UserDeactivated
from local_run import env
from local_run.fault_proxy import FaultProxy
from stacks import wiring

# The first Synapse call of each step that writes (ProvisionUser's PUT, JoinRooms' joins,
# AssignRoles' power-levels PUT): a staff sign-up goes through all three.
AT_STEP = {"ProvisionUser": ("PUT", r"^/_synapse/admin/v2/users/"),
           "JoinRooms": ("POST", r"^/_synapse/admin/v1/join/"),
           "AssignRoles": ("PUT", r"/state/m\.room\.power_levels$")}
RECOVERABLE = {"stopped": "SynapseUnavailable", "5xx": "SynapseUnavailable",
               "timeout": "SynapseUnavailable", "429": None}  # 429: waited out in-process
# A fault that does not go away: the error it ends with, and the attempts made (1 + the ASL's
# MaxAttempts for that error; a revoked token is permanent).
EXHAUSTED = [("stopped", "SynapseUnavailable", 1 + 4), ("5xx", "SynapseUnavailable", 1 + 4),
             ("timeout", "SynapseUnavailable", 1 + 4), ("429", "SynapseRateLimited", 1 + 5),
             ("revoked_token", "SynapseAuthFailed", 1)]


@pytest.fixture(scope="module")
def proxy():
    p = FaultProxy()
    yield p
    p.close()


@pytest.fixture(scope="module")
def local(tmp_path_factory, config, proxy):
    # Retries wait at most 1 s here (the deployed ASL waits up to a minute): the attempts and
    # the errors retried are the deployed ones; exhausting them takes seconds instead of minutes.
    with env.running(tmp_path_factory.mktemp("faults"), config, handlers_synapse_url=proxy.url,
                     retry_seconds=1) as local:
        proxy.upstream = local.state.synapse_url
        yield local


def confirmed_users_tasks() -> list[str]:
    """The Task states a confirmed user's run passes, in order: the ASL's own path (its
    Choices taken for `cognito` = confirmed), so that a step added there is faulted too."""
    asl = json.loads(wiring.MACHINES["SyncUser"].read_text())
    states, tasks, name = asl["States"], [], asl["StartAt"]
    while name:
        state = states[name]
        if state["Type"] == "Task":
            tasks.append(name)
        name = next((c["Next"] for c in state["Choices"] if c.get("StringEquals") == "confirmed"),
                    state.get("Default")) if state["Type"] == "Choice" else state.get("Next")
    return tasks


@pytest.fixture(scope="module")
def staff_signup_trail(local) -> list[str]:
    """The audit outcomes of a staff sign-up with no fault: what each faulted one must end with."""
    sub = str(uuid.uuid4())
    assert local.cognito.signup(sub, ["staff"], None)["status"] == "SUCCEEDED"
    assert_provisioned_once(local, sub)
    trail = [a["outcome"] for a in local.audit.trail(sub)]
    assert {"created", "joined", "set:99"} <= set(trail)  # tests/workflow/test_workflow.py pins it whole
    return trail


@pytest.fixture(autouse=True)
def no_faults_left(proxy):
    yield
    proxy.clear()


def assert_provisioned_once(local, sub):
    user = local.user_id(sub)
    joined = local.synapse.joined_rooms(user)
    rooms = {k: r.room_id for k, r in local.config.rooms.items()}
    assert sorted(joined) == sorted({rooms["red_room"], rooms["staff"]})  # one membership each
    assert local.synapse.power_levels(rooms["staff"])["users"][user] == 99


def failed_attempts(local, arn):
    return local.inspector.failed_attempts(arn)


@pytest.mark.parametrize("step", list(AT_STEP))
@pytest.mark.parametrize("fault", list(RECOVERABLE))
def test_a_transient_fault_is_retried(local, proxy, step, fault, staff_signup_trail):
    sub = str(uuid.uuid4())
    rule = proxy.fail(*AT_STEP[step], fault, times=1)
    result = local.cognito.signup(sub, ["staff"], None)
    assert result["status"] == "SUCCEEDED" and rule.seen == 1
    errors = [e["lambdaFunctionFailedEventDetails"]["error"] for e in failed_attempts(local, result["execution_arn"])]
    assert errors == ([RECOVERABLE[fault]] if RECOVERABLE[fault] else [])
    assert_provisioned_once(local, sub)
    assert [a["outcome"] for a in local.audit.trail(sub)] == staff_signup_trail


@pytest.mark.parametrize("step", list(AT_STEP))
@pytest.mark.parametrize("fault, error, attempts", EXHAUSTED)
def test_an_exhausted_or_permanent_fault_fails_at_its_step_and_redrives(local, proxy, step, fault, error, attempts,
                                                                         staff_signup_trail):
    sub = str(uuid.uuid4())
    proxy.fail(*AT_STEP[step], fault, times=float("inf"))
    failed = local.cognito.signup(sub, ["staff"], None)
    assert (failed["status"], failed["failed_state"], failed["error"]) == ("FAILED", step, error)
    assert len(failed_attempts(local, failed["execution_arn"])) == attempts

    proxy.clear()  # the outage is over, the token rotated back
    redriven = local.operator.redrive(failed["execution_arn"])
    assert (redriven["status"], redriven["from_state"]) == ("SUCCEEDED", step)
    assert_provisioned_once(local, sub)
    trail = local.audit.trail(sub)
    assert [(a["step"], a["outcome"]) for a in trail][0] == (step, "failed")
    assert sorted(a["outcome"] for a in trail[1:]) == sorted(staff_signup_trail)
    assert {a["execution"] for a in trail} == {failed["execution_arn"]}


@pytest.mark.parametrize("step", confirmed_users_tasks())
@pytest.mark.parametrize("error", ["Lambda.ServiceException", "Lambda.TooManyRequestsException",
                                   "ProvisionedThroughputExceededException"])
def test_lambda_and_dynamodb_faults_at_every_step_are_retried(local, step, error, staff_signup_trail):
    """Faults the Synapse proxy cannot make: the Lambda service failing an invocation, DynamoDB
    throttling (RecordAudit's only dependency), injected where the Lambda runtime would report
    them (the error comes back as the invocation's errorType)."""
    sub = str(uuid.uuid4())
    local.fail_lambda(step, error, times=1)
    result = local.cognito.signup(sub, ["staff"], None)
    assert result["status"] == "SUCCEEDED"
    errors = [e["lambdaFunctionFailedEventDetails"]["error"] for e in failed_attempts(local, result["execution_arn"])]
    assert errors == [error]
    assert_provisioned_once(local, sub)
    assert [a["outcome"] for a in local.audit.trail(sub)] == staff_signup_trail


def test_a_permanent_audit_store_fault_fails_at_record_audit_and_redrives(local, staff_signup_trail):
    """The audit table missing (a broken deployment): not retried; fixed, then redriven."""
    sub = str(uuid.uuid4())
    local.fail_lambda("RecordAudit", "ResourceNotFoundException", times=100)
    failed = local.cognito.signup(sub, ["staff"], None)
    assert (failed["failed_state"], failed["error"]) == ("RecordAudit", "ResourceNotFoundException")
    assert len(failed_attempts(local, failed["execution_arn"])) == 1
    local.fail_lambda("RecordAudit", "ResourceNotFoundException", times=0)
    redriven = local.operator.redrive(failed["execution_arn"])
    assert (redriven["status"], redriven["from_state"]) == ("SUCCEEDED", "RecordAudit")
    assert_provisioned_once(local, sub)
    assert [a["outcome"] for a in local.audit.trail(sub)] == ["failed", *staff_signup_trail]


@pytest.mark.parametrize("fault, error, attempts", EXHAUSTED)
def test_a_fault_at_deactivate_user_fails_there_and_redrives(local, proxy, fault, error, attempts):
    """The role sync's own Synapse step: a disable that cannot reach Synapse ends FAILED at
    DeactivateUser (audited with its event); once the fault is gone the redrive deactivates."""
    sub = str(uuid.uuid4())
    local.cognito.signup(sub, ["analysts"], None)
    proxy.fail("POST", r"^/_synapse/admin/v1/deactivate/", fault, times=float("inf"))
    failed = local.cognito.change(sub, "AdminDisableUser")
    assert (failed["status"], failed["failed_state"], failed["error"]) == ("FAILED", "DeactivateUser", error)
    assert len(failed_attempts(local, failed["execution_arn"])) == attempts

    proxy.clear()
    redriven = local.operator.redrive(failed["execution_arn"])
    assert (redriven["status"], redriven["from_state"]) == ("SUCCEEDED", "DeactivateUser")
    user = local.user_id(sub)
    with pytest.raises(UserDeactivated):
        local.synapse.require_active(user)
    # Synapse parts a deactivated user from its rooms after the deactivation has answered
    # (in the background): seen in 1 of 3 runs of this suite, one room still listed at once.
    deadline = time.monotonic() + 10
    while local.synapse.joined_rooms(user) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert local.synapse.joined_rooms(user) == []
    assert [(a["step"], a["outcome"], a.get("event")) for a in local.audit.trail(sub)[-2:]] == [
        ("DeactivateUser", "failed", "AdminDisableUser"), ("DeactivateUser", "deactivated", "AdminDisableUser")]


@pytest.mark.parametrize("error", ["TooManyRequestsException", "Lambda.ServiceException"])
def test_cognito_throttling_at_read_cognito_user_is_retried(local, error):
    sub = str(uuid.uuid4())
    local.cognito.signup(sub, ["analysts"], None)
    local.fail_lambda("ReadCognitoUser", error, times=1)
    result = local.cognito.change(sub, "AdminAddUserToGroup", "staff")
    assert result["status"] == "SUCCEEDED"
    assert [e["lambdaFunctionFailedEventDetails"]["error"]
            for e in failed_attempts(local, result["execution_arn"])] == [error]
    assert ("Staff", 99) in local.inspector.rooms(sub)


@pytest.mark.parametrize("fault, error, attempts", EXHAUSTED)
def test_a_fault_at_plan_sweep_fails_there_and_redrives(local, proxy, fault, error, attempts):
    """The sweep's reads: Synapse's user list failing ends the sweep FAILED at PlanSweep (no
    plan stored, nothing applied); once the fault is gone the redrive plans."""
    sfn, name = local.aws["stepfunctions"], f"dry-{uuid.uuid4()}"
    proxy.fail("GET", r"^/_synapse/admin/v2/users\?", fault, times=float("inf"))
    arn = sfn.start_execution(stateMachineArn=local.state.sweep_state_machine_arn,
                              name=name, input='{"dry_run": true}')["executionArn"]
    failed = local.operator.wait(arn)
    assert (failed["status"], failed["failed_state"], failed["error"]) == ("FAILED", "PlanSweep", error)
    assert len(failed_attempts(local, arn)) == attempts
    stored = local.aws["s3"].list_objects_v2(Bucket=local.state.plans_bucket, Prefix=f"sweeps/{name}/")
    assert stored["KeyCount"] == 0

    proxy.clear()
    redriven = local.operator.redrive(arn)
    assert (redriven["status"], redriven["from_state"]) == ("SUCCEEDED", "PlanSweep")
    assert local.inspector.states_entered(redriven["execution_arn"]) == ["PlanSweep", "ShouldApply", "PlanOnly"]
