"""Attacks, as someone who can reach one of the public interfaces would make them, against the
stack deployed locally (a real Synapse, moto running the state machines and the functions).
Each checks, against Synapse's admin API and the audit table, that nothing was granted,
reactivated, forged, created or mass-deactivated. `make negative-controls` removes each
protection in turn and shows the attack that it stops succeeding (tests/attacks/mutations.py).

Who can reach what: PutEvents on a bus (any principal the account's IAM allows), StartExecution
(operators, and anyone with states:StartExecution), the retry queue (sqs:SendMessage), the plans
bucket (s3:PutObject), Cognito's public SignUp (anyone with the app's client ID), a Matrix
admin (deactivates users in Synapse), and a Cognito admin (changes names and groups)."""

import json
import time
import uuid

import httpx
import pytest

from chat_provisioning.adapters.room_locks import DynamoRoomLocks
from chat_provisioning.domain.config import ReservedName, RoleGrant
from chat_provisioning.domain.sweep_plan import REMOVALS
from local_run import env
from local_run.actors import username_of
from local_run.aws_events import ACCOUNT, cloudtrail_event, post_confirmation_event, sqs_batch
from toolbox import cli, operations

OUTSIDER = f"arn:aws:iam::{ACCOUNT}:role/ci-deployer"  # may call PutEvents, is not a sender


@pytest.fixture(scope="module")
def local(tmp_path_factory, config):
    # The test config (Phenom's rooms and roles), with deleted users erased and a role whose
    # level the bot can take back (the staff level, 100, is the bot's own: the bot cannot
    # demote its peers).
    roles = {**config.roles, "moderators": (RoleGrant(room="experiencers", power_level=50),)}
    custom = config.model_copy(update={"erase_deleted_users": True, "roles": roles,
                                       "reserved_display_names": (ReservedName(name="Phenom Staff"),)})
    with env.running(tmp_path_factory.mktemp("attacks"), custom) as local:
        yield local


def new() -> str:
    return str(uuid.uuid4())


def until(read, timeout: float = 60):
    """What `read` returns, once it is true (not empty)."""
    deadline = time.monotonic() + timeout
    while not (value := read()):
        if time.monotonic() > deadline:
            raise TimeoutError("the condition never held")
        time.sleep(0.05)
    return value


def matrix(local, sub) -> dict:
    """What Synapse says of the user: exists, deactivated, display name, rooms and levels."""
    r = local.admin("GET", f"/_synapse/admin/v2/users/{local.user_id(sub)}")
    if r.status_code == 404:
        return {"exists": False}
    user = r.json()
    return {"exists": True, "deactivated": user["deactivated"], "name": user.get("displayname"),
            "rooms": local.inspector.rooms(sub)}


def audited(local, sub) -> list[tuple]:
    return [(a.get("step"), a["action"], a["outcome"], a.get("event")) for a in local.audit.trail(sub)]


@pytest.fixture(scope="module")
def banned(local) -> str:
    """A user a Matrix admin deactivated; Cognito still has it enabled."""
    sub = new()
    local.cognito.signup(sub, ["experiencers"], "Banned")
    local.synapse.deactivate(local.user_id(sub), erase=False)
    return sub


def test_events_cannot_grant_reactivate_or_reach_the_workflow_with_more_than_a_sub(local, banned):
    attacker = new()
    local.cognito.signup(attacker, [], "Mallory")
    forged = {"sub": attacker, "groups": ["staff"], "reactivate": True, "cause": "AdminEnableUser"}
    # Any principal with events:PutEvents, on the default bus: no rule of ours takes custom events there.
    assert local.events.put("chat-provisioning", "Sync chat user", forged,
                            bus="default") == {"accepted": True, "matched": False}
    # ...on the stack's bus: only config's senders may put events there.
    assert local.events.put("chat-provisioning", "Sync chat user", forged,
                            sender=OUTSIDER)["error"] == "AccessDeniedException"
    # ...posing as CloudTrail: EventBridge refuses aws.* sources from callers.
    record = cloudtrail_event("AdminEnableUser", local.state.user_pool_id, banned)
    assert local.events.put(record["source"], record["detail-type"], record["detail"],
                            bus="default")["accepted"] is False
    # A configured sender's event that carries more than a sub is refused, and kept.
    refused = local.events.send_sync_event(forged)
    assert (refused["started"], refused["error"], refused["dead_lettered"]) == (False, "InvalidInput", True)
    # A sub alone syncs the user with Cognito: nothing granted, the ban stays.
    assert local.events.send_sync_event({"sub": attacker})["status"] == "SUCCEEDED"
    stays = local.events.send_sync_event({"sub": banned})
    assert (stays["status"], stays["failed_state"], stays["error"]) == ("FAILED", "ProvisionUser", "UserDeactivated")
    assert matrix(local, attacker)["rooms"] == {("The Red Room", 0)}
    assert matrix(local, banned)["deactivated"] is True
    assert all(outcome != "reactivated" for _, _, outcome, _ in audited(local, banned))


def test_a_start_names_a_user_and_a_cause_and_nothing_else(local, banned):
    attacker = new()
    local.cognito.signup(attacker, [], None)
    execution = "arn:aws:states:us-east-1:123456789012:execution:chat-provisioning-SyncUser:forged"
    forged = local.operator.start(attacker, {
        "sub": attacker, "groups": ["staff"], "reactivate": True, "cognito": "confirmed",
        "execution": execution, "joined": [], "display_name": "Admin",
        "actions": [{"step": "AssignRoles", "action": "set_power_level", "outcome": "set:100"}]})
    assert (forged["status"], forged["failed_state"], forged["error"]) == ("FAILED", "ReadCognitoUser", "InvalidInput")
    assert matrix(local, attacker)["rooms"] == {("The Red Room", 0)}
    assert [a[2] for a in audited(local, attacker)].count("set:100") == 0  # no forged audit item
    assert all(item["execution"] != execution for item in local.audit.trail(attacker))
    # A cause is all a start may claim, and claiming Cognito's enable undoes no Matrix ban.
    claimed = local.operator.start(banned, {"sub": banned, "cause": "AdminEnableUser"})
    assert (claimed["failed_state"], claimed["error"]) == ("ProvisionUser", "UserDeactivated")
    assert matrix(local, banned)["deactivated"] is True


def test_the_sign_up_trigger_and_its_retry_queue_check_pool_and_username(local):
    victim, attacker = new(), new()
    local.cognito.create_user(victim, ["staff"])  # admin-created: its account is the sweep's to make
    local.cognito.signup(attacker, [], None)
    pool = local.state.user_pool_id
    # The trigger invoked with a forged event: another pool's, or a username that is not the sub's.
    for event in (post_confirmation_event("us-east-1_Other", username_of(victim), {"sub": victim}),
                  post_confirmation_event(pool, username_of(attacker), {"sub": victim})):
        assert local.invoke("PostConfirmation", event) == event  # a sign-up is never failed...
    assert local.inspector.executions(victim) == []  # ...and nothing started
    # The retry queue's consumer, given forged jobs beside a real one.
    jobs = [{"user_pool_id": pool, "user_name": username_of(attacker), "sub": victim},
            {"user_pool_id": "us-east-1_Other", "user_name": username_of(victim), "sub": victim},
            {"user_pool_id": pool, "user_name": username_of(victim), "sub": victim, "groups": ["staff"]},
            {"user_pool_id": pool, "user_name": username_of(attacker), "sub": attacker}]
    answer = local.invoke("RetryStart", sqs_batch(*jobs))
    # back to the queue, then its DLQ
    assert sorted(f["itemIdentifier"] for f in answer["batchItemFailures"]) == ["m0", "m1", "m2"]
    assert local.inspector.executions(victim) == [] and matrix(local, victim) == {"exists": False}


def test_a_swapped_plan_names_users_and_nothing_more(local, banned):
    """s3:PutObject on the plans bucket between PlanSweep and ApplyPlan (the stack's bucket
    policy denies it to all but the sweep; here it is done anyway)."""
    drifted = new()
    local.cognito.create_user(drifted, [])  # admin-created: the sweep will create it
    with local.holding("PlanSweep") as planned:
        arn = local.aws["stepfunctions"].start_execution(
            stateMachineArn=local.state.sweep_state_machine_arn, name=f"swap-{drifted}", input="{}")["executionArn"]
        planned()
        key = f"sweeps/swap-{drifted}/requests.json"
        local.aws["s3"].put_object(Bucket=local.state.plans_bucket, Key=key, Body=json.dumps([
            {"sub": drifted, "groups": ["staff"], "cause": "AdminEnableUser", "display_name": "Root"},
            {"sub": banned, "cause": "AdminEnableUser", "reactivate": True}]).encode())
    result = local.operator.sweep_result(arn)
    inputs = {sub: json.loads(local.aws["stepfunctions"].describe_execution(executionArn=run["execution_arn"])["input"])
              for sub, run in result["executions"].items()}
    assert inputs == {drifted: {"sub": drifted, "cause": "sweep"}, banned: {"sub": banned, "cause": "sweep"}}
    assert matrix(local, drifted)["rooms"] == {("The Red Room", 0)} and matrix(local, drifted)["name"] != "Root"
    assert matrix(local, banned)["deactivated"] is True


def test_no_name_or_unknown_group_stops_a_deactivation(local):
    long_name, odd_group = new(), new()
    local.cognito.signup(long_name, ["analysts"], None)
    local.cognito.signup(odd_group, ["analysts"], None)
    idp, pool = local.aws["cognito-idp"], local.state.user_pool_id
    idp.admin_update_user_attributes(UserPoolId=pool, Username=username_of(long_name),
                                     UserAttributes=[{"Name": "name", "Value": "N" * 300}])
    try:
        idp.create_group(UserPoolId=pool, GroupName="hasura-admins")
    except idp.exceptions.GroupExistsException:
        pass
    idp.admin_add_user_to_group(UserPoolId=pool, Username=username_of(odd_group), GroupName="hasura-admins")
    # Enabled: provisioned all the same, the name cut to what Synapse takes, the group a finding.
    assert local.events.send_sync_event({"sub": long_name})["status"] == "SUCCEEDED"
    assert matrix(local, long_name)["name"] == "N" * 256
    assert local.events.send_sync_event({"sub": odd_group})["status"] == "SUCCEEDED"
    assert ("ReadCognitoUser", "finding", "unknown_group:hasura-admins", "event") in audited(local, odd_group)
    # Disabled: deactivated, whatever the name or groups.
    for sub in (long_name, odd_group):
        assert local.cognito.change(sub, "AdminDisableUser")["status"] == "SUCCEEDED"
        assert matrix(local, sub)["deactivated"] is True


def test_unconfirmed_sign_ups_get_no_account_on_any_path(local):
    """Anyone with the app's public client ID can call SignUp; nobody confirms these."""
    idp, pool = local.aws["cognito-idp"], local.state.user_pool_id
    subs = []
    for _ in range(3):
        name = f"anon-{new()}"
        idp.sign_up(ClientId=local.state.client_id, Username=name, Password="Anon-pass-1234!")
        attributes = idp.admin_get_user(UserPoolId=pool, Username=name)
        assert attributes["UserStatus"] == "UNCONFIRMED"
        subs.append(next(a["Value"] for a in attributes["UserAttributes"] if a["Name"] == "sub"))
    plan = local.operator.sweep(dry_run=True)
    assert not {f["sub"] for f in plan["fixes"]} & set(subs)
    for sub in subs:  # an event or an operator naming one: audited, nothing made
        assert local.events.send_sync_event({"sub": sub})["status"] == "SUCCEEDED"
        assert matrix(local, sub) == {"exists": False}
        assert audited(local, sub) == [("ReadCognitoUser", "sync", "unconfirmed:no_grants", "event")]


def test_a_user_no_longer_confirmed_keeps_no_grant(local):
    """An admin resets a compromised moderator's password or gives it a temporary one: until it
    is confirmed again it keeps no group's grant, by event and by sweep."""
    idp, pool = local.aws["cognito-idp"], local.state.user_pool_id
    by_event, by_sweep = new(), new()
    for sub in (by_event, by_sweep):
        local.cognito.signup(sub, ["moderators"], None)
        assert ("Experiencers", 50) in matrix(local, sub)["rooms"]
        idp.admin_set_user_password(UserPoolId=pool, Username=username_of(sub), Password="Temp-pass-1234!",
                                    Permanent=False)
    synced = local.events.deliver(cloudtrail_event("AdminSetUserPassword", pool, by_event))
    assert synced["status"] == "SUCCEEDED"
    assert matrix(local, by_event)["rooms"] == {("The Red Room", 0)}  # no level, no role's room
    assert ("ReadCognitoUser", "sync", "unconfirmed:no_grants", "AdminSetUserPassword") in audited(local, by_event)
    planned = local.operator.sweep(dry_run=True)
    assert (by_sweep, "demote") in {(f["sub"], f["kind"]) for f in planned["fixes"]}


def test_a_redriven_enable_reactivates_nobody_cognito_disabled_since(local):
    """An enable's run fails before it reactivates; the user is disabled again; days later an
    operator redrives the old run. Cognito is read again before reactivating."""
    sub = new()
    local.cognito.signup(sub, ["experiencers"], None)
    assert local.cognito.change(sub, "AdminDisableUser")["status"] == "SUCCEEDED"
    local.fail_lambda("ProvisionUser", "SynapseAuthFailed", times=1)  # permanent: not retried
    enable = local.cognito.change(sub, "AdminEnableUser")
    assert (enable["failed_state"], enable["error"]) == ("ProvisionUser", "SynapseAuthFailed")
    assert local.cognito.change(sub, "AdminDisableUser")["status"] == "SUCCEEDED"  # already deactivated
    assert local.operator.redrive(enable["execution_arn"])["status"] == "SUCCEEDED"
    assert matrix(local, sub)["deactivated"] is True
    assert ("ProvisionUser", "create_user", "skipped:cognito_disabled", "AdminEnableUser") in audited(local, sub)


def test_a_delayed_run_grants_no_level_a_later_change_took_away(local):
    """A moderator is added and removed within seconds: the add's run reads Cognito, then is
    delayed (throttled, waiting for a room's lease) while the removal's run completes."""
    idp, pool = local.aws["cognito-idp"], local.state.user_pool_id
    sub = new()
    local.cognito.signup(sub, [], None)
    idp.admin_add_user_to_group(UserPoolId=pool, Username=username_of(sub), GroupName="moderators")
    with local.holding("ReadCognitoUser") as read:
        added = local.events.deliver(cloudtrail_event("AdminAddUserToGroup", pool, sub, "moderators"), wait=False)
        read()  # the add's run has read [moderators]
        idp.admin_remove_user_from_group(UserPoolId=pool, Username=username_of(sub), GroupName="moderators")
        assert local.events.deliver(cloudtrail_event("AdminRemoveUserFromGroup", pool, sub,
                                                     "moderators"))["status"] == "SUCCEEDED"
    assert local.operator.wait(added["execution"])["status"] == "SUCCEEDED"
    experiencers = local.config.rooms["experiencers"].room_id  # member or not: no level
    assert local.synapse.power_levels(experiencers)["users"].get(local.user_id(sub)) is None
    assert ("AssignRoles", "finding", "cognito_changed_since_read", "AdminAddUserToGroup") in audited(local, sub)


def test_a_run_that_waited_for_a_rooms_lease_grants_what_cognito_says_after_the_wait(local):
    """A moderator is added; the add's run waits for Experiencers' lease (a concurrent writer
    holds it); `moderators` is removed meanwhile (its event not yet delivered). The level is
    decided on a read taken inside the lease: nothing is granted."""
    idp, pool = local.aws["cognito-idp"], local.state.user_pool_id
    sub = new()
    local.cognito.signup(sub, [], None)
    room_id = local.config.rooms["experiencers"].room_id
    calls = local.state.state_dir / "lambda" / "calls" / f"{local.state.functions['SyncUserSteps']}.jsonl"
    seen = len(calls.read_text().splitlines())
    writer = DynamoRoomLocks(local.state.locks_table, lambda: local.aws["dynamodb"], lease_seconds=120)
    with writer.hold(room_id):
        added = local.cognito.change(sub, "AdminAddUserToGroup", "moderators", wait=False)
        until(lambda: any(json.loads(line).get("error") == "ConditionalCheckFailedException"
                          for line in calls.read_text().splitlines()[seen:]))  # it waits for the lease
        idp.admin_remove_user_from_group(UserPoolId=pool, Username=username_of(sub), GroupName="moderators")
    assert local.operator.wait(added["execution"])["status"] == "SUCCEEDED"
    assert local.synapse.power_levels(room_id)["users"].get(local.user_id(sub)) is None
    assert ("AssignRoles", "finding", "cognito_changed_since_read", "AdminAddUserToGroup") in audited(local, sub)


def test_a_redrive_writes_on_cognitos_word_at_the_write(local):
    """A sign-up fails at ProvisionUser; Cognito disables the user; an operator redrives: no
    account. A run fails at JoinRooms; `analysts` is removed; the redrive does not join it."""
    idp, pool = local.aws["cognito-idp"], local.state.user_pool_id
    disabled, removed = new(), new()
    local.fail_lambda("ProvisionUser", "SynapseAuthFailed", times=1)  # permanent: not retried
    signup = local.cognito.signup(disabled, ["analysts"], None)
    assert (signup["status"], signup["failed_state"]) == ("FAILED", "ProvisionUser")
    idp.admin_disable_user(UserPoolId=pool, Username=username_of(disabled))
    assert local.operator.redrive(signup["execution_arn"])["status"] == "SUCCEEDED"
    assert matrix(local, disabled) == {"exists": False}
    assert ("ProvisionUser", "create_user", "skipped:cognito_disabled", "signup") in audited(local, disabled)
    local.fail_lambda("JoinRooms", "SynapseAuthFailed", times=1)
    signup = local.cognito.signup(removed, ["analysts"], None)
    assert (signup["status"], signup["failed_state"]) == ("FAILED", "JoinRooms")
    idp.admin_remove_user_from_group(UserPoolId=pool, Username=username_of(removed), GroupName="analysts")
    assert local.operator.redrive(signup["execution_arn"])["status"] == "SUCCEEDED"
    assert {room for room, _ in matrix(local, removed)["rooms"]} == {"The Red Room"}


def test_a_level_outlives_no_membership(local):
    """A moderator leaves Experiencers, then loses `moderators`: the level is taken back all the
    same (the next invite would bring it back with it)."""
    sub = new()
    local.cognito.signup(sub, ["moderators"], None)
    local.kick(sub, "experiencers")
    assert local.cognito.change(sub, "AdminRemoveUserFromGroup", "moderators")["status"] == "SUCCEEDED"
    room_id = local.config.rooms["experiencers"].room_id
    assert local.synapse.power_levels(room_id)["users"].get(local.user_id(sub)) is None


def test_staff_keep_every_admin_power_below_the_bot_and_can_be_taken_back(local):
    """Finding 0: Staff at the bot's own level could never be demoted. Below it (99), a room
    whose thresholds ask 100 leaves them without an admin's powers until `sweep --align-rooms`
    (dry run first) lowers the thresholds; then a staff member manages levels, and removing
    `staff` takes the level back."""
    staff_room = local.config.rooms["staff"].room_id
    admin, member = new(), new()
    local.cognito.signup(admin, ["staff"], None)
    local.cognito.signup(member, [], None)
    token = local.admin("POST", f"/_synapse/admin/v1/users/{local.user_id(admin)}/login",
                        json={}).json()["access_token"]

    def promote_as_staff() -> int:
        levels = local.synapse.power_levels(staff_room)
        return httpx.put(f"{local.state.synapse_url}/_matrix/client/v3/rooms/{staff_room}/state/m.room.power_levels",
                         headers={"Authorization": f"Bearer {token}"},
                         json={**levels, "users": {**levels["users"], local.user_id(member): 50}}).status_code

    planned = local.operator.sweep(dry_run=True, align_rooms=True)
    assert planned["thresholds"][0]["room"] == staff_room
    assert planned["thresholds"][0]["lower"]["events.m.room.power_levels"] == 100
    assert promote_as_staff() == 403  # at 99 in a room that asks 100 to change levels
    aligned = local.operator.sweep(align_rooms=True, approve_removals=planned["held"] and planned["held"]["removals"])
    assert aligned["aligned"][staff_room]["events.m.room.power_levels"] == 99 and aligned["thresholds"] == []
    assert promote_as_staff() == 200
    assert local.synapse.power_levels(staff_room)["users"][local.config.bot_user_id] == 100  # alone above Staff
    assert local.cognito.change(admin, "AdminRemoveUserFromGroup", "staff")["status"] == "SUCCEEDED"
    assert local.synapse.power_levels(staff_room)["users"].get(local.user_id(admin)) is None


def test_an_account_cognito_no_longer_vouches_for_keeps_no_session(local):
    """A JWT login made the account (no external id); Cognito deletes the user: it is the sub's
    under the JWT rule, so it is deactivated, its session ends and a still-valid ID token no
    longer signs in. An admin gives another user a temporary password (as a reset does): its
    sessions end and it leaves Analysts until it confirms again; a disabled user's end too."""
    idp, pool = local.aws["cognito-idp"], local.state.user_pool_id
    jwt_made, reset, disabled = new(), new(), new()
    local.cognito.create_user(jwt_made, [])
    session = local.inspector.session(jwt_made)  # its first login made the account
    assert session and local.inspector.answers(session)
    assert local.cognito.change(jwt_made, "AdminDeleteUser")["status"] == "SUCCEEDED"
    assert matrix(local, jwt_made)["deactivated"] is True
    assert not local.inspector.answers(session) and local.inspector.session(jwt_made) is None
    for sub in (reset, disabled):
        local.cognito.signup(sub, ["analysts"], None)
    sessions = {sub: local.inspector.session(sub) for sub in (reset, disabled)}
    idp.admin_set_user_password(UserPoolId=pool, Username=username_of(reset), Password="Temp-pass-1234!",
                                Permanent=False)
    assert local.events.deliver(cloudtrail_event("AdminSetUserPassword", pool, reset))["status"] == "SUCCEEDED"
    assert local.cognito.change(disabled, "AdminDisableUser")["status"] == "SUCCEEDED"
    assert not any(local.inspector.answers(token) for token in sessions.values())
    assert matrix(local, reset)["rooms"] == {("The Red Room", 0)}
    assert ("AssignRoles", "log_out", "ended:1", "AdminSetUserPassword") in audited(local, reset)


def test_throwaway_accounts_deleted_without_an_event_hold_no_stated_repair(local):
    """Anyone can sign up; an account provisioned, then deleted without an Admin* call (no
    CloudTrail record reaches the workflow), looks to the sweep like an emptied pool's. More of
    them than the cap (at most 20) hold the sweep, but a user Cognito disabled (its event lost)
    is still deactivated, and the hold names whom it held back."""
    idp, pool = local.aws["cognito-idp"], local.state.user_pool_id
    throwaways = [new() for _ in range(local.config.sweep_max_removals + 1)]
    for sub in throwaways:  # provisioned (tied), then gone from the pool
        local.account_made_elsewhere(local.user_id(sub), links=((local.config.auth_provider, sub),))
    disabled = new()
    local.cognito.signup(disabled, ["analysts"], None)
    idp.admin_disable_user(UserPoolId=pool, Username=username_of(disabled))  # the event was lost
    swept = local.operator.sweep()
    assert swept["outcome"] == "held" and set(throwaways) <= set(swept["held"]["held_back"])
    assert swept["executions"][disabled]["status"] == "SUCCEEDED"
    assert matrix(local, disabled)["deactivated"] is True
    assert not any(matrix(local, sub)["deactivated"] for sub in throwaways)


def test_a_pre_started_sign_up_name_is_not_taken_for_the_sign_up(local):
    """Anyone with states:StartExecution can start `signup-<sub>` first, with another input (a
    sub is no secret: it is the Matrix localpart). The real sign-up is not taken as started: it
    runs under a name nobody could predict, and the start is counted (alarmed)."""
    sub = new()
    local.aws["stepfunctions"].start_execution(stateMachineArn=local.state.sync_state_machine_arn,
                                               name=f"signup-{sub}", input=json.dumps({"sub": sub, "cause": "manual"}))
    local.cognito.signup(sub, ["analysts"], None, wait=False)
    runs = until(lambda: [e for e in local.inspector.executions(sub) if e["name"] != f"signup-{sub}"])
    assert runs[0]["name"].startswith(f"signup-{sub}-")
    assert local.operator.wait(local.inspector.execution_arn(runs[0]["name"]))["status"] == "SUCCEEDED"
    assert ("The Red Room", 0) in matrix(local, sub)["rooms"] and ("Analysts", 0) in matrix(local, sub)["rooms"]


def test_a_membership_nobody_granted_is_seen(local):
    """A member invites someone into Analysts (or a removal's event was lost): no Cognito group
    explains the membership. `user status` and the sweep's plan name it for a person (the leave
    flag is off, as Phenom has it), where before they said in sync."""
    sub = new()
    local.cognito.signup(sub, [], None)
    analysts = local.config.rooms["analysts"].room_id
    local.synapse.join(analysts, local.user_id(sub))  # invited and joined, by hand
    seen, code = operations.user_status(local.operator.deployment, sub, cli.when("1h"))
    assert code == 2 and [(f["kind"], f["room_id"]) for f in seen["drift"]["findings"]] == [
        ("member_without_group", analysts)]
    planned = local.operator.sweep(dry_run=True)
    found = {(f["kind"], f["subject"], f["room"]) for f in planned["findings"]}
    assert ("member_without_group", sub, analysts) in found


def test_a_display_name_cannot_pose_and_follows_cognito(local):
    """A self-set name is an identity claim: one confusable with the bot's localpart or a reserved
    name, one that spells a Matrix ID, or one that shows nothing is written as a neutral name,
    and audited (never the name itself), wherever it was set. A name an admin changes reaches
    Matrix through its CloudTrail record; one the user changes itself (no record names the
    pool) through the sweep."""
    for name, why in [("Provisioner B\u043et", "reserved"), ("Ph\u0435nom  staff", "reserved"),
                      ("PHEN0M STAFF", "reserved"),
                      (f"@provisioner-bot:{local.config.server_name}", "matrix_id"), ("\u3164\u3164", "invisible")]:
        sub = new()
        local.cognito.signup(sub, [], name)
        assert matrix(local, sub)["name"] == f"User {sub[:8]}"
        assert ("ProvisionUser", "display_name", f"replaced:{why}", "signup") in audited(local, sub)
    assert local.cognito.change(sub, "AdminUpdateUserAttributes", name="Irena")["status"] == "SUCCEEDED"
    assert matrix(local, sub)["name"] == "Irena"
    idp, pool = local.aws["cognito-idp"], local.state.user_pool_id
    idp.admin_update_user_attributes(UserPoolId=pool, Username=username_of(sub),  # as UpdateUserAttributes would
                                     UserAttributes=[{"Name": "name", "Value": "PROVISIONER-BOT"}])
    assert (sub, "rename") in {(f["sub"], f["kind"]) for f in local.operator.sweep(dry_run=True)["fixes"]}
    assert local.operator.sweep()["executions"][sub]["status"] == "SUCCEEDED"
    assert matrix(local, sub)["name"] == f"User {sub[:8]}"
    # No name in Cognito: the name set in Matrix stays, unless it poses (set by the user, through
    # Synapse's profile API; here through the admin API, to the same effect).
    unnamed = new()
    local.cognito.signup(unnamed, [], None)
    for name, kept in (("Ann", "Ann"), ("Phenom Staff", f"User {unnamed[:8]}")):
        local.admin("PUT", f"/_synapse/admin/v2/users/{local.user_id(unnamed)}", json={"displayname": name})
        assert local.events.send_sync_event({"sub": unnamed})["status"] == "SUCCEEDED"
        assert matrix(local, unnamed)["name"] == kept
    assert audited(local, unnamed).count(("ProvisionUser", "display_name", "replaced:reserved", "event")) == 1


def test_a_refused_cognito_call_starts_nothing(local):
    """CloudTrail records refused calls too (with an errorCode): anyone in the account can make
    one, and it changed nothing."""
    sub = new()
    local.cognito.signup(sub, [], None)
    refused = cloudtrail_event("AdminAddUserToGroup", local.state.user_pool_id, sub, "staff", error_code="AccessDenied")
    assert local.events.deliver(refused) == {"matched": False}
    assert [e["name"] for e in local.inspector.executions(sub)] == [f"signup-{sub}"]  # the sign-up's alone


def test_a_sweep_never_reactivates(local, banned):
    plan = local.operator.sweep(dry_run=True)
    assert {(f["kind"], f["subject"]) for f in plan["findings"]} >= {("deactivated_in_matrix", banned)}
    assert banned not in {f["sub"] for f in plan["fixes"]}


def test_one_failing_user_stops_no_other_and_the_sweep_reruns_it(local):
    failing, disabled, missing = new(), new(), new()
    local.cognito.signup(disabled, [], None)
    local.cognito.signup(missing, ["analysts"], None)
    local.cognito.create_user(failing, ["analysts"])
    server = local.config.server_name
    # An account of the old trigger's (no tie) whose tie another account already holds: Synapse
    # refuses to give it (409), so that user's workflow fails for good at ProvisionUser.
    local.admin("PUT", f"/_synapse/admin/v2/users/{local.user_id(failing)}", json={}).raise_for_status()
    local.admin("PUT", f"/_synapse/admin/v2/users/@merged-{failing[:8]}:{server}", json={"external_ids": [
        {"auth_provider": local.config.auth_provider, "external_id": failing}]}).raise_for_status()
    idp, pool = local.aws["cognito-idp"], local.state.user_pool_id
    # Behind the events' back: one user disabled, one membership lost.
    idp.admin_disable_user(UserPoolId=pool, Username=username_of(disabled))
    local.kick(missing, "analysts")
    # What the earlier tests here left counts against the removal cap: approve what is planned.
    planned = local.operator.sweep(dry_run=True)["held"]
    result = local.operator.sweep(approve_removals=planned and planned["removals"])
    assert result["status"] == "SUCCEEDED"
    runs = {sub: run for sub, run in result["executions"].items() if sub in (failing, disabled, missing)}
    assert {s: (r["status"], r.get("failed_state")) for s, r in runs.items()} == {
        failing: ("FAILED", "ProvisionUser"), disabled: ("SUCCEEDED", None), missing: ("SUCCEEDED", None)}
    assert matrix(local, disabled)["deactivated"] is True
    assert ("Analysts", 0) in matrix(local, missing)["rooms"]
    again = local.operator.sweep(dry_run=True)  # one operator action reruns what failed, and only that
    assert {f["sub"] for f in again["fixes"]} == {failing}


def test_an_emptied_pool_holds_the_sweep_and_it_never_erases(local):
    """Last here: it empties the pool. A script gone wrong, or a deploy pointed at the wrong
    pool, looks the same to a sweep: every managed Matrix user deleted in Cognito, and the
    wrong pool's own users (its `staff` too) new. A held sweep creates and grants nothing."""
    idp, pool = local.aws["cognito-idp"], local.state.user_pool_id
    for page in idp.get_paginator("list_users").paginate(UserPoolId=pool):
        for user in page["Users"]:
            idp.admin_delete_user(UserPoolId=pool, Username=user["Username"])
    strangers = [new(), new()]
    for sub in strangers:
        local.cognito.create_user(sub, ["staff"])  # the wrong pool's staff
    before = local.synapse.list_users()
    held = local.operator.sweep()
    removals = sum(n for kind, n in held["summary"]["fixes"].items() if kind in REMOVALS)
    assert held["summary"]["fixes"]["create"] == 2 and held["summary"]["fixes"]["deactivate"] > 0
    assert held["outcome"] == "held" and held["executions"] == {}
    assert all(not matrix(local, sub)["exists"] for sub in strangers)
    assert held["held"]["removals"] == removals > held["held"]["cap"]
    assert held["held"]["approve"].endswith(f" sweep --approve-removals {removals}")  # the command, to paste
    assert local.synapse.list_users() == before  # nobody deactivated
    # An operator who checked the plan approves it: applied, and a sweep never erases (with
    # erase_deleted_users on, only CloudTrail's own AdminDeleteUser does).
    approved = local.operator.sweep(approve_removals=removals)
    assert len(approved["executions"]) == held["summary"]["users_to_fix"]
    assert {r["status"] for r in approved["executions"].values()} == {"SUCCEEDED"}
    deactivated = {f["sub"] for f in held["fixes"] if f["kind"] == "deactivate"}
    assert all(("DeactivateUser", "deactivate_user", "deactivated", "sweep") in audited(local, sub)
               for sub in deactivated)
    assert not any(outcome == "erased" for sub in deactivated for _, _, outcome, _ in audited(local, sub))
    erased = new()
    local.cognito.signup(erased, [], None)
    assert local.cognito.change(erased, "AdminDeleteUser")["status"] == "SUCCEEDED"
    assert audited(local, erased)[-1][1:] == ("deactivate_user", "erased", "AdminDeleteUser")
