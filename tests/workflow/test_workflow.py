"""The ASL executed by moto, the real handlers, a real Synapse: the workflow end to end."""

import json
import os
import signal
import time
import uuid

import httpx

from local_run import synapse_server
from local_run.actors import username_of
from local_run.aws_events import sqs_batch


def audit_actions(local, sub):
    return [(a["step"], a["action"], a["outcome"]) for a in local.audit.trail(sub)]


def test_staff_signup_gets_rooms_levels_and_audit(local, sub):
    result = local.cognito.signup(sub, ["staff"], "Aaron")
    assert result["status"] == "SUCCEEDED"
    assert local.inspector.rooms(sub) == {("The Red Room", 0), ("Staff", 99)}
    assert audit_actions(local, sub) == [
        ("ProvisionUser", "create_user", "created"), ("JoinRooms", "join", "joined"),
        ("JoinRooms", "join", "joined"), ("AssignRoles", "set_power_level", "set:99")]
    d = local.aws["stepfunctions"].describe_execution(executionArn=result["execution_arn"])
    assert json.loads(d["input"]) == {"sub": sub, "cause": "signup"}  # Cognito says the rest
    assert local.synapse.user(local.user_id(sub))["displayname"] == "Aaron"
    # The email stays in Cognito, and the name is read where it is written: neither is in the run.
    assert "example.invalid" not in d["input"] + d["output"] and "Aaron" not in d["output"]


def test_synapse_requests_per_signup_and_role_change(local, sub):
    """Exact counts from Synapse's access log (bench/signup.py measures the raw minimums):
    a sign-up reads the user (an existing account's links are kept), creates it, joins, and
    reads Staff's levels after The Red Room (a level set for it before it existed is taken
    back, member or not); a staff
    sign-up adds Staff's join and a levels read, write and read-back; a promotion reads the user
    (nothing to write), its rooms, joins Staff, levels as above."""
    def served(change) -> list[str]:
        before = len(local.inspector.synapse_requests())
        assert change()["status"] == "SUCCEEDED"
        return [method for method, _ in local.inspector.synapse_requests()[before:]]

    assert served(lambda: local.cognito.signup(sub, [], None)) == ["GET", "PUT", "POST", "GET"]
    assert served(lambda: local.cognito.signup(None, ["staff"], None)) == [
        "GET", "PUT", "POST", "POST", "GET", "PUT", "GET"]
    analyst = str(uuid.uuid4())
    local.cognito.signup(analyst, ["analysts"], None)
    assert served(lambda: local.cognito.change(analyst, "AdminAddUserToGroup", "staff")) == [
        "GET", "GET", "POST", "GET", "PUT", "GET"]


def test_cognito_retry_starts_one_execution(local, sub):
    first = local.cognito.signup(sub, ["analysts"], None)
    again = local.cognito.signup(sub, ["analysts"], None)
    assert first["execution_arn"] == again["execution_arn"] and again["status"] == "SUCCEEDED"
    assert len(local.inspector.executions(sub)) == 1
    assert len(local.audit.trail(sub)) == 3  # create, join red room, join analysts


def test_transient_outage_is_retried_then_succeeds(local, sub):
    pid = local.state.pids["synapse"]
    os.kill(pid, signal.SIGSTOP)  # Synapse hangs: requests time out
    try:
        arn = local.cognito.signup(sub, ["experiencers"], None, wait=False)["execution_arn"]
        deadline = time.monotonic() + 30
        while not any(e["type"].endswith("Failed") for e in local.inspector.history(arn)):
            assert time.monotonic() < deadline, "no failed attempt seen"
            time.sleep(0.2)
    finally:
        os.kill(pid, signal.SIGCONT)
    result = local.operator.wait(arn)
    assert result["status"] == "SUCCEEDED", result
    failures = [e for e in local.inspector.history(arn) if e["type"].endswith("Failed")]
    assert failures and all("SynapseUnavailable" in json.dumps(e, default=str) for e in failures)
    assert local.inspector.rooms(sub) == {("The Red Room", 0), ("Experiencers", 0)}


def test_permanent_fault_fails_at_its_step_and_redrive_completes(local, sub):
    user = local.user_id(sub)
    local.synapse.upsert_user(user, None, external_id=sub, auth_provider="cognito")
    local.admin("POST", f"/_synapse/admin/v1/deactivate/{user}", json={}).raise_for_status()

    failed = local.cognito.signup(sub, ["analysts"], None)
    assert (failed["status"], failed["failed_state"], failed["error"]) == ("FAILED", "ProvisionUser", "UserDeactivated")
    attempts = local.inspector.failed_attempts(failed["execution_arn"])
    assert len(attempts) == 1  # permanent: never retried
    assert local.inspector.status(sub)["rooms"] == []

    local.admin("PUT", f"/_synapse/admin/v2/users/{user}", json={"deactivated": False}).raise_for_status()
    redriven = local.operator.redrive(failed["execution_arn"])
    assert redriven["status"] == "SUCCEEDED" and redriven["from_state"] == "ProvisionUser"
    assert local.inspector.rooms(sub) == {("The Red Room", 0), ("Analysts", 0)}
    trail = local.audit.trail(sub)
    assert [(a["step"], a["outcome"]) for a in trail] == [
        ("ProvisionUser", "failed"), ("ProvisionUser", "unchanged"),
        ("JoinRooms", "joined"), ("JoinRooms", "joined")]
    assert {a["execution"] for a in trail} == {failed["execution_arn"]}  # one execution's trail


def test_fault_at_a_later_step_redrives_from_there(local, sub):
    """A permanent fault at AssignRoles (not retried) ends the run FAILED there; the redrive
    resumes at AssignRoles, without provisioning or joining again."""
    local.fail_lambda("AssignRoles", "SynapseForbidden", times=1)
    failed = local.cognito.signup(sub, ["staff"], None)
    assert (failed["failed_state"], failed["error"]) == ("AssignRoles", "SynapseForbidden")
    assert local.inspector.rooms(sub) == {("The Red Room", 0), ("Staff", 0)}  # joined, not promoted

    redriven = local.operator.redrive(failed["execution_arn"])
    assert redriven["status"] == "SUCCEEDED" and redriven["from_state"] == "AssignRoles"
    # provisioning and joins were not rerun
    assert local.inspector.states_entered(redriven["execution_arn"]) == ["AssignRoles", "RecordAudit"]
    assert local.inspector.rooms(sub) == {("The Red Room", 0), ("Staff", 99)}
    assert [a["outcome"] for a in local.audit.trail(sub)] == ["failed", "created", "joined", "joined", "set:99"]


def test_a_level_above_a_demoted_bots_own_is_a_finding_and_a_sync_grants_it_once_restored(local, sub):
    """Someone demotes the bot in Staff: the staff sign-up joins, and the level it cannot grant
    is an audited finding (the run succeeds: nothing to redrive); a second room admin restores
    the bot; the operator's sync grants the level."""
    synapse_dir = local.state.state_dir / "synapse"
    secret = json.loads((synapse_dir / "homeserver.yaml").read_text())["registration_shared_secret"]
    helper_token = synapse_server.register_admin(local.state.synapse_url, secret, "helper-admin")
    helper = f"@helper-admin:{local.config.server_name}"
    staff = local.config.rooms["staff"].room_id
    local.synapse.join(staff, helper)
    local.set_level_by_hand(staff, helper, 100)
    bot = local.synapse.bot_user_id
    path = f"/_matrix/client/v3/rooms/{staff}/state/m.room.power_levels"
    levels = local.synapse.power_levels(staff)
    local.admin("PUT", path, json={**levels, "users": {**levels["users"], bot: 50}}).raise_for_status()
    try:
        signed_up = local.cognito.signup(sub, ["staff"], None)
    finally:
        levels = local.synapse.power_levels(staff)
        httpx.put(local.state.synapse_url + path, headers={"Authorization": f"Bearer {helper_token}"},
                  json={**levels, "users": {**levels["users"], bot: 100}}).raise_for_status()
    assert signed_up["status"] == "SUCCEEDED"
    assert ("AssignRoles", "finding", "level_beyond_the_bot") in audit_actions(local, sub)
    assert local.inspector.rooms(sub) == {("The Red Room", 0), ("Staff", 0)}  # joined, not promoted
    assert local.operator.start(sub)["status"] == "SUCCEEDED"
    assert local.inspector.rooms(sub) == {("The Red Room", 0), ("Staff", 99)}


def test_a_redrive_checks_again_that_the_user_is_active(local, sub):
    """Within a run, JoinRooms trusts ProvisionUser's view that the user is active (one request
    fewer); a redrive is a later run: the user may have been deactivated since, so it checks."""
    local.fail_lambda("JoinRooms", "SynapseAuthFailed", times=1)  # permanent: not retried
    failed = local.cognito.signup(sub, ["analysts"], None)
    assert (failed["failed_state"], failed["error"]) == ("JoinRooms", "SynapseAuthFailed")
    user = local.user_id(sub)
    local.synapse.deactivate(user, erase=False)  # Cognito disabled the user meanwhile

    redriven = local.operator.redrive(failed["execution_arn"])
    assert (redriven["status"], redriven["failed_state"],
            redriven["error"]) == ("FAILED", "JoinRooms", "UserDeactivated")
    assert local.synapse.joined_rooms(user) == []


def test_bad_input_fails_typed_with_audit_and_no_write(local, sub):
    local.cognito.create_user(sub, ["analysts"])
    d = local.operator.start(sub, {"sub": sub, "cause": "manual", "groups": ["analysts"]})
    assert (d["status"], d["failed_state"], d["error"]) == ("FAILED", "ReadCognitoUser", "InvalidInput")
    assert local.admin("GET", f"/_synapse/admin/v2/users/{local.user_id(sub)}").status_code == 404
    assert [(a["step"], a["outcome"], a["error"]) for a in local.audit.trail(sub)] == [
        ("ReadCognitoUser", "failed", "InvalidInput")]

    nameless = local.operator.start(sub, {"sub": "not-a-sub"})
    assert nameless["error"] == "InvalidInput"
    name = nameless["execution_arn"].rsplit(":", 1)[1]
    assert local.audit.trail(f"unknown:{name}")[0]["step"] == "ReadCognitoUser"


def test_the_custom_event_and_an_operator_start_sync_a_user_with_cognito(local, sub):
    local.cognito.create_user(sub, ["experiencers"], "Eve")  # admin-created: no trigger fired
    result = local.events.send_sync_event({"sub": sub})
    assert result["matched"] and result["status"] == "SUCCEEDED"
    assert local.inspector.rooms(sub) == {("The Red Room", 0), ("Experiencers", 0)}
    idp = local.aws["cognito-idp"]
    idp.admin_add_user_to_group(UserPoolId=local.state.user_pool_id, Username=username_of(sub), GroupName="analysts")
    assert local.operator.start(sub)["status"] == "SUCCEEDED"  # {"sub"} from the console
    assert local.inspector.rooms(sub) == {("The Red Room", 0), ("Analysts", 0), ("Experiencers", 0)}


def test_password_reset_starts_nothing(local, sub):
    result = local.cognito.signup(sub, [], None, trigger_source="PostConfirmation_ConfirmForgotPassword")
    assert result["started"] is False and local.inspector.executions(sub) == []


def test_client_login_sees_provisioned_rooms(local, sub):
    local.cognito.signup(sub, ["staff"], None)
    seen = local.inspector.login(sub)
    assert seen["user_id"] == local.user_id(sub)
    assert {r["name"] for r in seen["rooms"]} == {"The Red Room", "Staff"}


def test_login_first_then_provision_is_the_same_account(local, sub):
    before = local.inspector.login(sub)  # the JWT login creates the account
    assert before["logged_in"] and before["rooms"] == []
    local.cognito.signup(sub, ["analysts"], None)
    assert local.audit.trail(sub)[0]["outcome"] == "adopted"  # not a second account: tied to its sub
    after = local.inspector.login(sub)
    assert after["user_id"] == before["user_id"]
    assert {r["name"] for r in after["rooms"]} == {"The Red Room", "Analysts"}


def test_retry_queue_consumer_starts_the_workflow(local, sub):
    """What RetryStart receives when the trigger could not start the execution itself."""
    local.cognito.create_user(sub, ["analysts"])
    job = {"user_pool_id": local.state.user_pool_id, "user_name": username_of(sub), "sub": sub}
    r = local.aws["lambda"].invoke(FunctionName=local.state.functions["RetryStart"],
                                   Payload=json.dumps(sqs_batch(job)).encode())
    assert json.loads(r["Payload"].read()) == {"batchItemFailures": []}
    arn = local.inspector.execution_arn(f"signup-{sub}")
    assert local.operator.wait(arn)["status"] == "SUCCEEDED"
    assert local.inspector.rooms(sub) == {("The Red Room", 0), ("Analysts", 0)}


def test_duplicates_have_one_effect(local, sub):
    """Three PostConfirmations, one execution; the same event twice, one user with one
    membership per room; a RecordAudit retried after its writes, no duplicate item."""
    runs = {local.cognito.signup(sub, ["analysts"], None)["execution_arn"] for _ in range(3)}
    assert len(runs) == 1 and len(local.inspector.executions(sub)) == 1
    other = str(uuid.uuid4())
    local.cognito.create_user(other, ["analysts"])
    for _ in range(2):
        assert local.events.send_sync_event({"sub": other})["status"] == "SUCCEEDED"
    assert local.inspector.rooms(other) == {("The Red Room", 0), ("Analysts", 0)}
    assert sorted(local.synapse.joined_rooms(local.user_id(other))) == sorted(
        {local.config.rooms["red_room"].room_id, local.config.rooms["analysts"].room_id})

    (arn,) = runs
    output = json.loads(local.aws["stepfunctions"].describe_execution(executionArn=arn)["output"])
    before = len(local.audit.trail(sub))
    again = local.invoke("RecordAudit", {"execution": arn, "workflow": output})
    assert again["actions"] == output["actions"] and len(local.audit.trail(sub)) == before
