"""The reconciliation sweep, as deployed (SweepUsers run by moto to the end, its Distributed
Map included): drift of every kind seeded behind the events' back, the plan lists exactly it,
each drifted user's own workflow fixes it, a second sweep plans nothing."""

import json
import uuid

import pytest

from local_run import env
from local_run.actors import username_of

UNMANAGED = str(uuid.uuid4())


@pytest.fixture(scope="module")
def local(tmp_path_factory, config):
    # Two deactivations among a dozen users: above the default 5% share, so allow half here (the
    # cap has tests of its own, in tests/attacks).
    custom = config.model_copy(update={"unmanaged_subs": (UNMANAGED,), "sweep_max_removal_share": 0.5})
    with env.running(tmp_path_factory.mktemp("sweep"), custom) as local:
        yield local


def new():
    return str(uuid.uuid4())


def test_seeded_drift_is_planned_exactly_then_fixed(local):
    rooms = {k: r.room_id for k, r in local.config.rooms.items()}
    server = local.config.server_name
    uid = local.user_id
    idp, pool = local.aws["cognito-idp"], local.state.user_pool_id
    s = {k: new() for k in ("ok", "missing_user", "unconfirmed", "missing_membership", "lost_group_event",
                            "wrong_level", "disabled", "banned", "deleted", "no_external_id")}

    local.cognito.signup(s["ok"], ["analysts"], None)  # in step: never in the plan
    local.cognito.create_user(s["missing_user"], ["analysts"])  # admin-created: no trigger fired
    local.cognito.create_user(s["unconfirmed"], ["staff"], confirmed=False)  # never signed in: no account
    local.cognito.signup(s["missing_membership"], ["analysts"], None)
    local.kick(s["missing_membership"], "analysts")
    local.cognito.signup(s["lost_group_event"], [], None)
    idp.admin_add_user_to_group(UserPoolId=pool, Username=username_of(s["lost_group_event"]), GroupName="staff")
    local.cognito.signup(s["wrong_level"], [], None)
    local.synapse.join(rooms["staff"], uid(s["wrong_level"]))  # in Staff by hand, at 50
    local.synapse.set_power_levels(rooms["staff"], {uid(s["wrong_level"]): 50})
    local.cognito.signup(s["disabled"], [], None)
    idp.admin_disable_user(UserPoolId=pool, Username=username_of(s["disabled"]))  # the event was lost
    local.cognito.signup(s["banned"], [], None)
    local.synapse.deactivate(uid(s["banned"]), erase=False)  # a Matrix admin; Cognito: enabled
    local.cognito.signup(s["deleted"], [], None)
    idp.admin_delete_user(UserPoolId=pool, Username=username_of(s["deleted"]))  # the event was lost
    local.synapse.upsert_user(uid(s["no_external_id"]), None, external_id="someone-else", auth_provider="other")
    # out of scope: an allow-listed user with drift, a hand-made account, a room not configured
    local.cognito.create_user(UNMANAGED, ["staff"])
    local.synapse.upsert_user(f"@logan:{server}", "Logan", external_id="x", auth_provider="other")
    # bad input: a Cognito sub that cannot be a Matrix localpart; a room missing from Synapse
    local.cognito.create_user("Not-A-Sub")
    local.admin("DELETE", f"/_synapse/admin/v2/rooms/{rooms['experiencers']}", json={"purge": True}).raise_for_status()

    planned = local.operator.sweep(dry_run=True)
    fixes = {(f["sub"], f["kind"], f["room"]) for f in planned["fixes"]}
    assert fixes == {
        (s["missing_user"], "create", None),
        (s["missing_membership"], "join", rooms["analysts"]),
        (s["lost_group_event"], "join", rooms["staff"]),
        (s["lost_group_event"], "promote", rooms["staff"]),
        (s["wrong_level"], "demote", rooms["staff"]),
        (s["disabled"], "deactivate", None),
        (s["deleted"], "deactivate", None),
    }
    assert {(f["kind"], f["subject"]) for f in planned["findings"]} == {
        ("invalid_sub", "Not-A-Sub"), ("room_missing", rooms["experiencers"]),
        ("no_external_id", uid(s["no_external_id"])), ("deactivated_in_matrix", s["banned"]),
        ("member_without_group", s["wrong_level"])}  # in Staff by hand: no group gives the room
    assert (planned["outcome"], planned["executions"]) == ("dry_run", {})
    assert local.inspector.status(s["missing_user"])["rooms"] == []  # the dry run wrote nothing

    applied = local.operator.sweep()
    assert applied["outcome"] == "apply"
    assert sorted(applied["executions"]) == sorted({f[0] for f in fixes})
    assert {r["status"] for r in applied["executions"].values()} == {"SUCCEEDED"}
    assert local.operator.sweep(dry_run=True)["fixes"] == []  # converged
    levels = local.synapse.power_levels(rooms["staff"])["users"]
    assert levels[uid(s["lost_group_event"])] == 99 and uid(s["wrong_level"]) not in levels
    assert local.admin("GET", f"/_synapse/admin/v2/users/{uid(s['banned'])}").json()["deactivated"] is True
    assert local.admin("GET", f"/_synapse/admin/v2/users/{uid(s['unconfirmed'])}").status_code == 404
    assert local.admin("GET", f"/_synapse/admin/v2/users/@logan:{server}").json()["deactivated"] is False
    trail = local.audit.trail(s["deleted"])  # the sweep never erases
    assert [(a["outcome"], a.get("event")) for a in trail][-1] == ("deactivated", "sweep")


def test_a_sweep_without_drift_starts_nothing(local):
    local.cognito.signup(new(), ["analysts"], None)
    held = local.operator.sweep(dry_run=True)["held"]  # what other modules left on this stack, repaired
    local.operator.sweep(approve_removals=held and held["removals"])
    result = local.operator.sweep()
    assert result["summary"]["users_to_fix"] == 0
    assert (result["outcome"], result["executions"]) == ("in_step", {})
    assert "ApplyPlan" not in local.inspector.states_entered(result["execution_arn"])


def test_the_plan_is_stored_and_names_users_only(local):
    sub = new()
    local.cognito.create_user(sub, ["analysts"])  # drift: an admin-created user
    result = local.operator.sweep(dry_run=True)
    assert result["summary"]["fixes"] == {"create": 1}
    stored = local.inspector.s3_json(result["bucket"], result["plan_key"])
    assert stored["fixes"] == [{"sub": sub, "kind": "create", "room": None}]
    # What the Distributed Map reads: subs, nothing a child could take as authority.
    assert local.inspector.s3_json(result["bucket"], result["requests_key"]) == [{"sub": sub}]
    assert local.inspector.states_entered(result["execution_arn"]) == ["PlanSweep", "ShouldApply", "PlanOnly"]
    assert json.loads(local.aws["stepfunctions"].describe_execution(
        executionArn=result["execution_arn"])["input"]) == {"dry_run": True}


def test_a_level_the_bot_cannot_change_is_a_finding_and_starts_nothing(local):
    """Phenom's Staff were set to 100 by hand: one of them in Cognito without a `staff` group is
    the bot's peer, whom Matrix will not let it demote. The plan names who, where and what to
    do; the sweep starts no run for it (a run would fail every day)."""
    sub, staff = new(), local.config.rooms["staff"].room_id
    local.cognito.signup(sub, [], None)
    local.synapse.join(staff, local.user_id(sub))
    local.set_level_by_hand(staff, local.user_id(sub), 100)  # the bot's own level
    applied = local.operator.sweep()
    assert sub not in {f["sub"] for f in applied["fixes"]} and sub not in applied["executions"]
    found = [f for f in applied["findings"] if f["subject"] == sub]
    assert [(f["kind"], f["room"]) for f in found] == [("level_beyond_the_bot", staff)]
    assert "only the user can lower its own level" in found[0]["detail"]
    assert local.synapse.power_levels(staff)["users"][local.user_id(sub)] == 100
