"""Every step of the workflows through its whole handler (parsing, logging, metrics), on a
Runtime of in-memory fakes (tests/fakes.py): what each step does to Synapse, the audit trail and
the plans, what it reads of Cognito, and the typed errors it lets through for the ASL's Retry."""

from dataclasses import replace

import pytest

from chat_provisioning.adapters.telemetry import logger
from chat_provisioning.domain.errors import InvalidInput, LeaseLost, RoomBusy, SynapseUnavailable, UserDeactivated
from chat_provisioning.domain.models import Action, WorkflowState
from chat_provisioning.handlers import steps
from tests.fakes import POOL, SERVER, SUB, FakeDirectory, FakeRoomLocks, runtime_of, sample_config

USER = f"@{SUB}:{SERVER}"
EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:test-SyncUser:run-1"
RED, STAFF, ANALYSTS = (f"!{r}:{SERVER}" for r in ("red_room", "staff", "analysts"))


def run(handler, state, rt, context, redrive=0) -> WorkflowState:
    """The handler, given the payload the ASL's Parameters build."""
    workflow = state.model_dump(mode="json", exclude_none=True) if isinstance(state, WorkflowState) else state
    return WorkflowState.model_validate(
        handler({"execution": EXECUTION, "redrive": redrive, "workflow": workflow}, context, rt=rt))


def outcomes(state: WorkflowState, step: str) -> list[tuple]:
    return [(a.action, a.room, a.outcome) for a in state.actions if a.step == step]


def confirmed(rt, groups=(), name=None, **kw) -> WorkflowState:
    """The state ReadCognitoUser leaves for a confirmed user, who is so in Cognito now too."""
    rt.directory.add(SUB, groups, display_name=name)
    return WorkflowState(sub=SUB, cause="signup", cognito="confirmed", groups=groups, **kw)


def test_the_sync_user_function_runs_the_step_its_task_names(context, monkeypatch):
    """One function serves every SyncUser step: its Task names the step (`$$.State.Name`). A
    name that is not a SyncUser step is refused before anything runs, and logged without the
    keys of the invocation before it."""
    rt = runtime_of()
    rt.directory.add(SUB, ("staff",))
    monkeypatch.setattr(steps, "runtime", lambda: rt)
    event = {"execution": EXECUTION, "workflow": {"sub": SUB, "cause": "signup"}}
    for wrong in (None, "PlanSweep", "read_cognito_user", "ReadCognitoUser ", 7):
        with pytest.raises(InvalidInput, match="not a step of SyncUser"):
            steps.sync_user_step({**event, "step": wrong}, context)
    assert rt.synapse.users == {}
    state = WorkflowState.model_validate(steps.sync_user_step({**event, "step": "ReadCognitoUser"}, context))
    assert (state.cognito, state.groups) == ("confirmed", ("staff",))
    provisioned = steps.sync_user_step({**event, "step": "ProvisionUser", "workflow": state.model_dump()}, context)
    assert provisioned["user_id"] in rt.synapse.users
    assert logger.get_current_keys().get("sub") == SUB  # the step's keys, kept after it
    with pytest.raises(InvalidInput):
        steps.sync_user_step({**event, "step": "PlanSweep"}, context)
    assert SUB not in str(logger.get_current_keys()) and EXECUTION not in str(logger.get_current_keys())


def test_read_cognito_user_keeps_known_groups_and_reports_unknown_ones(context):
    rt = runtime_of()
    rt.directory.add(SUB, ("staff", "admins"), display_name="Aaron")
    state = run(steps.read_cognito_user, {"sub": SUB, "cause": "signup"}, rt, context)
    assert (state.cognito, state.groups) == ("confirmed", ("staff",))
    assert "Aaron" not in state.model_dump_json()  # the name is read where it is written
    assert outcomes(state, "ReadCognitoUser") == [("finding", None, "unknown_group:admins")]


@pytest.mark.parametrize("enabled, status, standing, actions", [
    (False, "CONFIRMED", "disabled", []),
    (True, "UNCONFIRMED", "unconfirmed", [("sync", None, "unconfirmed:no_grants")]),
    (True, "RESET_REQUIRED", "unconfirmed", [("sync", None, "unconfirmed:no_grants")]),
])
def test_read_cognito_user_lets_status_decide_before_groups(context, enabled, status, standing, actions):
    class GroupsAlways(FakeDirectory):
        """A directory that answers groups whatever the status: the step must not use them."""
        def user(self, sub, groups=True):
            return self.users.get(sub)
    rt = runtime_of(directory=GroupsAlways(POOL))
    rt.directory.add(SUB, ("staff",), enabled=enabled, status=status)
    state = run(steps.read_cognito_user, {"sub": SUB, "cause": "AdminAddUserToGroup"}, rt, context)
    assert (state.cognito, state.groups) == (standing, ())
    assert outcomes(state, "ReadCognitoUser") == actions


def test_read_cognito_user_of_a_deleted_user_and_of_an_unmanaged_one(context):
    rt = runtime_of()
    assert run(steps.read_cognito_user, {"sub": SUB, "cause": "AdminDeleteUser"}, rt, context).cognito == "absent"
    rt = runtime_of(sample_config(unmanaged_subs=[SUB]))
    state = run(steps.read_cognito_user, {"sub": SUB, "cause": "sweep"}, rt, context)
    assert state.cognito == "unmanaged" and rt.directory.calls == []


def test_provision_user_creates_then_updates(context):
    rt = runtime_of()
    state = run(steps.provision_user, confirmed(rt, name="Aaron"), rt, context)
    assert state.user_id == USER and state.active_in_run == f"{EXECUTION}#0"
    assert outcomes(state, "ProvisionUser") == [("create_user", None, "created")]
    assert rt.synapse.users[USER]["displayname"] == "Aaron"
    assert rt.synapse.users[USER]["external_ids"] == [{"auth_provider": "cognito", "external_id": SUB}]
    again = run(steps.provision_user, confirmed(rt, name="Aaron"), rt, context)
    assert outcomes(again, "ProvisionUser") == [("update_user", None, "unchanged")]
    renamed = run(steps.provision_user, confirmed(rt, name="Aaron S."), rt, context)
    assert outcomes(renamed, "ProvisionUser") == [("update_user", None, "updated")]


def test_provision_user_writes_a_posing_name_as_a_neutral_one_and_says_why(context):
    rt = runtime_of()
    state = run(steps.provision_user, confirmed(rt, name="Provisioner Bot"), rt, context)
    assert rt.synapse.users[USER]["displayname"] == f"User {SUB[:8]}"
    assert outcomes(state, "ProvisionUser") == [("create_user", None, "created"),
                                                ("display_name", None, "replaced:reserved")]
    assert "Provisioner Bot" not in state.model_dump_json()  # why, never the name


def test_a_reactivated_account_keeps_no_posing_name_set_in_matrix(context):
    """Synapse keeps the name of an account it deactivates (without erasing): with no name in
    Cognito, the reactivation checks the one Matrix holds."""
    rt = runtime_of()
    rt.directory.add(SUB)
    rt.synapse.add_user(USER, displayname="Provisioner Bot")
    rt.synapse.deactivate(USER, erase=False)
    rt.audit.record_actions(SUB, USER, f"{EXECUTION[:-1]}0", (Action(
        step="DeactivateUser", action="deactivate_user", outcome="deactivated"),))
    state = run(steps.provision_user, WorkflowState(sub=SUB, cause="AdminEnableUser", cognito="confirmed"), rt, context)
    assert outcomes(state, "ProvisionUser") == [("reactivate_user", None, "reactivated"),
                                                ("display_name", None, "replaced:reserved")]
    assert rt.synapse.users[USER]["displayname"] == f"User {SUB[:8]}"


def test_provision_user_adopts_an_account_made_elsewhere_keeping_its_links(context):
    rt = runtime_of()
    rt.synapse.add_user(USER, (("oidc-google", "g-4242"),))  # an SSO-linked account of the old Lambda's
    state = run(steps.provision_user, confirmed(rt), rt, context)
    assert outcomes(state, "ProvisionUser") == [("update_user", None, "adopted")]
    assert rt.synapse.users[USER]["external_ids"] == [{"auth_provider": "oidc-google", "external_id": "g-4242"},
                                                      {"auth_provider": "cognito", "external_id": SUB}]


def test_provision_user_reactivates_only_a_deactivation_of_ours_on_cognitos_enable(context):
    rt = runtime_of()
    rt.directory.add(SUB)
    rt.synapse.upsert_user(USER, None, SUB, "cognito")
    rt.synapse.deactivate(USER, erase=False)
    enable = WorkflowState(sub=SUB, cause="AdminEnableUser", cognito="confirmed")
    with pytest.raises(UserDeactivated):  # a Matrix admin's deactivation: not on record as ours
        run(steps.provision_user, enable, rt, context)
    rt.audit.record_actions(SUB, USER, f"{EXECUTION[:-1]}0", (Action(  # an earlier run: sorts first
        step="DeactivateUser", action="deactivate_user", outcome="deactivated"),))
    with pytest.raises(UserDeactivated):  # ours, but this run's cause is not Cognito's enable
        run(steps.provision_user, confirmed(rt), rt, context)
    rt.directory.add(SUB, enabled=False)  # Cognito's enable, but disabled again since: nothing written
    assert outcomes(run(steps.provision_user, enable, rt, context), "ProvisionUser") == [
        ("create_user", None, "skipped:cognito_disabled")]
    assert rt.synapse.users[USER]["deactivated"] is True
    rt.directory.add(SUB)
    rt.synapse.fail("reactivate", SynapseUnavailable("down"))  # the act fails after the record
    with pytest.raises(SynapseUnavailable):
        run(steps.provision_user, enable, rt, context)
    assert not rt.audit.deactivated_by_workflow(SUB)  # on record before the act: a later ban is not ours
    assert [i["outcome"] for i in rt.audit.trail(SUB)][-1] == "reactivated"
    state = run(steps.provision_user, enable, rt, context)  # the retry of that act goes on
    assert outcomes(state, "ProvisionUser") == [("reactivate_user", None, "reactivated")]
    assert rt.synapse.users[USER]["deactivated"] is False


def test_a_synapse_outage_is_the_typed_error_the_asl_retries(context):
    rt = runtime_of()
    rt.synapse.fail("upsert_user", SynapseUnavailable("PUT /users: ConnectError"))
    with pytest.raises(SynapseUnavailable):
        run(steps.provision_user, confirmed(rt), rt, context)
    assert rt.synapse.users == {}
    assert run(steps.provision_user, confirmed(rt), rt, context).user_id == USER  # the retry


def test_join_rooms_joins_what_the_groups_earn_once(context):
    rt = runtime_of()
    created = run(steps.provision_user, confirmed(rt, ("staff",)), rt, context)
    state = run(steps.join_rooms, created, rt, context)
    assert outcomes(state, "JoinRooms") == [("join", RED, "joined"), ("join", STAFF, "joined")]
    assert rt.synapse.called("joined_rooms") == []  # created in this run: in no room yet
    again = run(steps.join_rooms, confirmed(rt, ("staff",)), rt, context, redrive=1)
    assert outcomes(again, "JoinRooms") == [("join", RED, "already_joined"), ("join", STAFF, "already_joined")]
    assert len(rt.synapse.called("join")) == 2  # the second run read the rooms instead


def test_join_rooms_refuses_a_user_deactivated_since_provisioning(context):
    rt = runtime_of()
    run(steps.provision_user, confirmed(rt), rt, context)
    rt.synapse.deactivate(USER, erase=False)
    with pytest.raises(UserDeactivated):
        run(steps.join_rooms, confirmed(rt), rt, context)  # another run: active_in_run is not set


def staff_member(rt, context) -> WorkflowState:
    return run(steps.join_rooms, run(steps.provision_user, confirmed(rt, ("staff",)), rt, context), rt, context)


def test_assign_roles_grants_under_the_rooms_lease(context):
    rt = runtime_of()
    state = run(steps.assign_roles, staff_member(rt, context), rt, context)
    assert outcomes(state, "AssignRoles") == [("set_power_level", STAFF, "set:99")]
    assert rt.synapse.levels[STAFF]["users"][USER] == 99
    assert rt.locks.called("hold") == [(STAFF,)] and rt.locks.called("check") == [(STAFF,)]
    again = run(steps.assign_roles, state, rt, context)
    assert outcomes(again, "AssignRoles")[-1] == ("set_power_level", STAFF, "unchanged")


def test_assign_roles_grants_nothing_cognito_took_away_since_the_read(context):
    rt = runtime_of()
    state = staff_member(rt, context)
    rt.directory.add(SUB, ())  # staff removed after ReadCognitoUser
    done = run(steps.assign_roles, state, rt, context)
    assert ("finding", None, "cognito_changed_since_read") in outcomes(done, "AssignRoles")
    assert USER not in rt.synapse.levels[STAFF]["users"]


def test_assign_roles_decides_a_level_on_a_read_taken_inside_the_rooms_lease(context):
    """The run waits for the Staff lease (a concurrent writer holds it); meanwhile `staff` is
    removed in Cognito: the level is decided on the read taken once the lease is held."""
    rt = runtime_of()
    state = staff_member(rt, context)

    class RemovedWhileWaiting(FakeRoomLocks):
        def hold(self, room_id):
            rt.directory.add(SUB, ())
            return super().hold(room_id)
    rt = replace(rt, locks=RemovedWhileWaiting())
    done = run(steps.assign_roles, state, rt, context)
    assert USER not in rt.synapse.levels[STAFF]["users"]
    assert outcomes(done, "AssignRoles") == [("finding", None, "cognito_changed_since_read")]


def test_a_redriven_run_writes_on_cognitos_word_now_not_on_its_first_read(context):
    """A sign-up failed at ProvisionUser; Cognito then disabled the user and took a group away;
    the redrive creates nothing. And a run past ProvisionUser joins only what Cognito gives now."""
    rt = runtime_of()
    signup = confirmed(rt, ("analysts",))
    rt.directory.add(SUB, ("analysts",), enabled=False)
    state = run(steps.provision_user, signup, rt, context, redrive=1)
    assert outcomes(state, "ProvisionUser") == [("create_user", None, "skipped:cognito_disabled")]
    assert outcomes(run(steps.join_rooms, state, rt, context, redrive=1), "JoinRooms") == [
        ("join", None, "skipped:cognito_disabled")]
    assert rt.synapse.users == {} and rt.synapse.called("join") == []
    rt.directory.add(SUB, ("analysts",))
    provisioned = run(steps.provision_user, signup, rt, context, redrive=2)
    rt.directory.add(SUB, ())  # analysts removed before JoinRooms ran
    joined = run(steps.join_rooms, provisioned, rt, context, redrive=2)
    assert outcomes(joined, "JoinRooms") == [("finding", None, "cognito_changed_since_read"),
                                             ("join", RED, "joined")]


def test_a_level_outlives_a_membership_and_is_taken_back_all_the_same(context):
    """A Staff member left the room, then lost `staff`: the level stays in the power levels
    (the next invite would bring it back) unless the run demotes non-members too."""
    rt = runtime_of(sample_config(roles={"staff": [{"room": "staff", "power_level": 50}]}))
    run(steps.assign_roles, staff_member(rt, context), rt, context)
    rt.synapse.members[STAFF].discard(USER)  # the user left the room
    rt.directory.add(SUB, ())
    removed = WorkflowState(sub=SUB, cause="AdminRemoveUserFromGroup", cognito="confirmed", groups=("staff",))
    done = run(steps.assign_roles, removed, rt, context)
    assert ("set_power_level", STAFF, "set:default") in outcomes(done, "AssignRoles")
    assert USER not in rt.synapse.levels[STAFF]["users"]


def test_a_leveled_room_gone_is_a_finding_not_every_runs_failure(context):
    rt = runtime_of()
    del rt.synapse.levels[STAFF]  # deleted, or the bot left it: Synapse refuses its levels
    done = run(steps.assign_roles, staff_member(rt, context), rt, context)
    assert outcomes(done, "AssignRoles") == [("finding", STAFF, "room_missing")]


def test_a_run_started_before_the_state_lost_its_name_and_rooms_is_still_redriven(context):
    rt = runtime_of()
    old = {**confirmed(rt).model_dump(mode="json"), "display_name": "Aaron", "joined": [RED]}
    assert run(steps.provision_user, old, rt, context).user_id == USER


def test_an_account_cognito_does_not_tie_is_never_kicked(context):
    """Deleted in Cognito, not tied by external_ids: DeactivateUser leaves it alone, and so does
    AssignRoles with the leave flag on."""
    rt = runtime_of(sample_config(leave_rooms_on_role_removal=True))
    rt.synapse.add_user(USER, (("oidc-google", "g-4242"),))  # another provider's: someone else's
    rt.synapse.members[ANALYSTS].add(USER)
    gone = WorkflowState(sub=SUB, cause="AdminDeleteUser", cognito="absent")
    run(steps.assign_roles, run(steps.deactivate_user, gone, rt, context), rt, context)
    assert ANALYSTS in rt.synapse.joined_rooms(USER) and rt.synapse.called("kick") == []


@pytest.mark.parametrize("port, method, error", [
    ("locks", "hold", RoomBusy("locked")), ("locks", "check", LeaseLost("expired")),
    ("synapse", "set_power_levels", SynapseUnavailable("down"))])
def test_assign_roles_writes_nothing_without_the_lease_and_fails_typed(context, port, method, error):
    rt = runtime_of()
    state = staff_member(rt, context)
    getattr(rt, port).fail(method, error)
    with pytest.raises(type(error)):
        run(steps.assign_roles, state, rt, context)
    assert USER not in rt.synapse.levels[STAFF]["users"] and rt.locks.held == set()


def test_assign_roles_demotes_and_with_the_flag_leaves_rooms_no_group_grants(context):
    rt = runtime_of(sample_config(leave_rooms_on_role_removal=True))
    state = staff_member(rt, context)
    rt.directory.add(SUB, ("analysts", "staff"))
    run(steps.join_rooms, state, rt, context)
    rt.synapse.levels[STAFF]["users"][USER] = 50
    rt.directory.add(SUB, ())
    removed = WorkflowState(sub=SUB, cause="AdminRemoveUserFromGroup", cognito="confirmed", groups=())
    done = run(steps.assign_roles, removed, rt, context)
    assert outcomes(done, "AssignRoles") == [("set_power_level", STAFF, "set:default"),
                                             ("leave", STAFF, "left"), ("leave", ANALYSTS, "left")]
    assert rt.synapse.joined_rooms(USER) == [RED]


@pytest.mark.parametrize("leave", [False, True])
def test_a_level_the_bot_cannot_change_is_a_finding_not_a_failure(context, leave):
    """Matrix lets nobody change a peer's level (nor kick it): the run records what a person
    must do and goes on; it does not fail, so nothing redrives or sweeps it again to fail."""
    rt = runtime_of(sample_config(leave_rooms_on_role_removal=leave))
    staff_member(rt, context)
    rt.synapse.levels[STAFF]["users"][USER] = 100  # the bot's level, set by hand
    rt.directory.add(SUB, ())
    removed = WorkflowState(sub=SUB, cause="AdminRemoveUserFromGroup", cognito="confirmed")
    done = run(steps.assign_roles, removed, rt, context)
    assert outcomes(done, "AssignRoles") == [("finding", STAFF, "level_beyond_the_bot")]
    assert rt.synapse.levels[STAFF]["users"][USER] == 100 and STAFF in rt.synapse.joined_rooms(USER)
    assert rt.locks.held == set()


def test_a_member_the_bot_cannot_remove_is_a_finding_not_a_failure(context):
    rt = runtime_of(sample_config(leave_rooms_on_role_removal=True))
    state = staff_member(rt, context)
    rt.directory.add(SUB, ("analysts",))
    run(steps.join_rooms, state, rt, context)
    rt.synapse.levels[ANALYSTS]["users"][USER] = 100  # a peer in Analysts, set by hand
    rt.directory.add(SUB, ("staff",))
    removed = WorkflowState(sub=SUB, cause="AdminRemoveUserFromGroup", cognito="confirmed", groups=("staff",))
    done = run(steps.assign_roles, removed, rt, context)
    assert ("finding", ANALYSTS, "leave_beyond_the_bot") in outcomes(done, "AssignRoles")
    assert ANALYSTS in rt.synapse.joined_rooms(USER)


def test_a_banned_account_made_elsewhere_gets_no_tie(context):
    """A Matrix admin's deactivation of an old account: no tie is written to it, and the run
    stops (UserDeactivated) as for any deactivated user."""
    rt = runtime_of()
    rt.synapse.add_user(USER)
    rt.synapse.users[USER]["deactivated"] = True
    with pytest.raises(UserDeactivated):
        run(steps.provision_user, confirmed(rt), rt, context)
    assert rt.synapse.users[USER]["external_ids"] == []


def test_a_level_above_the_bots_own_is_a_finding(context):
    rt = runtime_of()
    rt.synapse.levels[STAFF]["users"][rt.synapse.bot_user_id] = 50  # someone demoted the bot
    done = run(steps.assign_roles, staff_member(rt, context), rt, context)
    assert outcomes(done, "AssignRoles") == [("finding", STAFF, "level_beyond_the_bot")]
    assert USER not in rt.synapse.levels[STAFF]["users"]


@pytest.mark.parametrize("cognito, cause, erase, links, outcome", [
    ("disabled", "AdminDisableUser", True, (("cognito", SUB),), "deactivated"),
    ("absent", "AdminDeleteUser", False, (("cognito", SUB),), "deactivated"),
    ("absent", "AdminDeleteUser", True, (("cognito", SUB),), "erased"),
    ("absent", "sweep", True, (("cognito", SUB),), "deactivated"),  # a sweep never erases
    ("absent", "AdminDeleteUser", False, (), "deactivated"),  # a JWT login's: linked to nothing, the sub's
    ("absent", "AdminDeleteUser", True, (("cognito", "someone-else"),), "skipped:not_tied_to_cognito"),
    ("absent", "AdminDeleteUser", True, (("oidc-google", "g-1"),), "skipped:not_tied_to_cognito"),
])
def test_deactivate_user(context, cognito, cause, erase, links, outcome):
    rt = runtime_of(sample_config(erase_deleted_users=erase))
    rt.synapse.add_user(USER, links)
    state = run(steps.deactivate_user, WorkflowState(sub=SUB, cause=cause, cognito=cognito), rt, context)
    assert outcomes(state, "DeactivateUser") == [("deactivate_user", None, outcome)]
    ours = not outcome.startswith("skipped")
    assert rt.synapse.users[USER]["deactivated"] is ours
    assert rt.synapse.called("deactivate") == ([(USER, outcome == "erased")] if ours else [])


def test_deactivate_user_leaves_an_absent_or_already_deactivated_user_alone(context):
    rt = runtime_of()
    disabled = WorkflowState(sub=SUB, cause="AdminDisableUser", cognito="disabled")
    assert outcomes(run(steps.deactivate_user, disabled, rt, context), "DeactivateUser") == [
        ("deactivate_user", None, "skipped:no_matrix_user")]
    rt.synapse.upsert_user(USER, None, SUB, "cognito")
    rt.synapse.deactivate(USER, erase=False)
    assert outcomes(run(steps.deactivate_user, disabled, rt, context), "DeactivateUser") == [
        ("deactivate_user", None, "already_deactivated")]


def test_record_audit_writes_each_action_once(context):
    rt = runtime_of()
    state = staff_member(rt, context)
    run(steps.record_audit, state, rt, context)
    run(steps.record_audit, state, rt, context, redrive=1)  # a redrive writes the same keys
    assert [i["outcome"] for i in rt.audit.trail(SUB)] == ["created", "joined", "joined"]
    assert {i["event"] for i in rt.audit.trail(SUB)} == {"signup"}


def sweep(rt, context, **request) -> dict:
    return steps.plan_sweep({"execution": "arn:aws:states:us-east-1:123456789012:execution:test-SweepUsers:s1",
                             "request": request}, context, rt=rt)


def test_plan_sweep_stores_the_plan_and_the_users_to_sync(context):
    rt = runtime_of()
    rt.directory.add(SUB, ("staff",))
    result = sweep(rt, context)
    assert (result["outcome"], result["apply"], result["bucket"]) == ("apply", True, "test-plans")
    assert rt.plans.documents[result["requests_key"]] == [{"sub": SUB}]
    assert rt.plans.documents[result["plan_key"]]["summary"] == result["summary"]
    assert sweep(rt, context, dry_run=True)["outcome"] == "dry_run"


def test_plan_sweep_holds_a_sweep_that_would_deactivate_too_many(context):
    rt = runtime_of(sample_config(sweep_max_removals=1))
    for i in range(3):  # Matrix users of our pool that Cognito no longer has
        sub = f"0f9e8d7c-1234-4abc-8def-00000000000{i}"
        rt.synapse.upsert_user(f"@{sub}:{SERVER}", None, sub, "cognito")
    held = sweep(rt, context)
    assert (held["outcome"], held["apply"]) == ("held", False) and held["held"]
    assert sweep(rt, context, approve_removals=3)["outcome"] == "apply"
    rt.directory.add(SUB, ("staff",))  # a confirmed staff user with no account: a create, held too
    assert (sweep(rt, context)["outcome"], sweep(rt, context)["apply"]) == ("held", False)
    rt.synapse.add_user(USER)  # its account, in no room: a join (and a promotion) now
    rt.directory.add(f"{SUB[:-1]}c", ("analysts",))
    rt.synapse.add_user(f"@{SUB[:-1]}c:{SERVER}")  # an analyst's account in no room: joins only
    still_held = sweep(rt, context)
    assert (still_held["outcome"], still_held["apply"]) == ("held", True)
    assert rt.plans.documents[still_held["requests_key"]] == [{"sub": f"{SUB[:-1]}c"}]  # the rest waits
    assert rt.plans.documents[still_held["plan_key"]]["to_apply"] == [f"{SUB[:-1]}c"]


def test_an_adopting_sweep_reads_every_accounts_links_and_plans_their_ties(context):
    rt = runtime_of()
    rt.directory.add(SUB)
    rt.synapse.add_user(USER)  # the old Lambda's account: no tie
    rt.synapse.members[RED].add(USER)
    assert sweep(rt, context)["summary"]["fixes"] == {}  # the daily sweep does not read links
    assert sweep(rt, context, adopt=True)["summary"]["fixes"] == {"adopt": 1}
    assert rt.synapse.called("user") == [(USER,)]  # one read, for the adopting sweep


def test_a_sweep_aligns_the_role_rooms_only_when_asked_and_not_on_a_dry_run(context):
    rt = runtime_of()
    rt.synapse.levels[STAFF]["events"] = {"m.room.power_levels": 100, "m.room.name": 50}
    planned = sweep(rt, context, align_rooms=True, dry_run=True)
    assert rt.plans.documents[planned["plan_key"]]["thresholds"][0]["lower"] == {"events.m.room.power_levels": 100}
    assert rt.synapse.levels[STAFF]["events"]["m.room.power_levels"] == 100
    aligned = sweep(rt, context, align_rooms=True)
    assert rt.plans.documents[aligned["plan_key"]]["aligned"] == {STAFF: {"events.m.room.power_levels": 99}}
    assert rt.plans.documents[aligned["plan_key"]]["thresholds"] == []
    assert rt.synapse.levels[STAFF]["events"] == {"m.room.power_levels": 99, "m.room.name": 50}
    assert rt.locks.called("hold") == [(STAFF,)] and rt.locks.called("check") == [(STAFF,)]


def test_a_user_cognito_holds_unconfirmed_keeps_no_session_and_no_roles_room(context):
    """An admin resets the password of a compromised analyst: until it confirms again it keeps
    no session and no role's room, the leave flag off as Phenom has it; The Red Room stays."""
    rt = runtime_of()
    run(steps.join_rooms, run(steps.provision_user, confirmed(rt, ("analysts",)), rt, context), rt, context)
    rt.synapse.sessions[USER] = {"PHONE", "LAPTOP"}
    rt.directory.add(SUB, ("analysts",), status="RESET_REQUIRED")
    reset = WorkflowState(sub=SUB, cause="AdminResetUserPassword", cognito="unconfirmed")
    done = run(steps.assign_roles, reset, rt, context)
    assert outcomes(done, "AssignRoles") == [("log_out", None, "ended:2"), ("leave", ANALYSTS, "left")]
    assert rt.synapse.sessions == {} and rt.synapse.joined_rooms(USER) == [RED]
    assert outcomes(run(steps.assign_roles, reset, rt, context), "AssignRoles") == []  # idempotent
