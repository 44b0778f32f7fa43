"""The reconciliation sweep: drift of every kind seeded behind the events' back, the plan
lists exactly it, apply fixes it through the per-user workflows, a second sweep plans nothing."""

import json
import uuid

import pytest

from local_run import env

UNMANAGED = str(uuid.uuid4())


@pytest.fixture(scope="module")
def local(tmp_path_factory, config):
    with env.running(tmp_path_factory.mktemp("sweep"),
                     config.model_copy(update={"unmanaged_subs": (UNMANAGED,)})) as local:
        yield local


def new():
    return str(uuid.uuid4())


def test_seeded_drift_is_planned_exactly_then_fixed(local):
    rooms = {k: r["room_id"] for k, r in local.state["rooms"].items()}
    server = local.state["server_name"]
    uid = local.user_id
    idp, pool = local.aws["cognito-idp"], local.state["user_pool_id"]
    s = {k: new() for k in ("ok", "missing_user", "missing_membership", "lost_group_event",
                            "wrong_level", "disabled", "reactivate", "deleted", "no_external_id")}

    local.signup(s["ok"], ["analysts"], None)  # in step: never in the plan
    local.cognito_user(s["missing_user"], ["analysts"])  # admin-created: no trigger fired
    local.signup(s["missing_membership"], ["analysts"], None)
    local.synapse.kick(rooms["analysts"], uid(s["missing_membership"]), "seeded drift")
    local.signup(s["lost_group_event"], [], None)
    idp.admin_add_user_to_group(UserPoolId=pool, Username=s["lost_group_event"], GroupName="staff")
    local.signup(s["wrong_level"], [], None)
    local.synapse.join(rooms["staff"], uid(s["wrong_level"]))  # in Staff by hand, at 50
    local.synapse.set_power_levels(rooms["staff"], {uid(s["wrong_level"]): 50})
    local.signup(s["disabled"], [], None)
    idp.admin_disable_user(UserPoolId=pool, Username=s["disabled"])  # the event was lost
    local.signup(s["reactivate"], [], None)
    local.synapse.deactivate(uid(s["reactivate"]), erase=False)  # Cognito still says enabled
    local.signup(s["deleted"], [], None)
    idp.admin_delete_user(UserPoolId=pool, Username=s["deleted"])  # the event was lost
    local.synapse.upsert_user(uid(s["no_external_id"]), None, external_id="someone-else", auth_provider="other")
    # out of scope: an allow-listed user with drift, a hand-made account, a room not configured
    local.cognito_user(UNMANAGED, ["staff"])
    local.synapse.upsert_user(f"@logan:{server}", "Logan", external_id="x", auth_provider="other")
    # bad input: a Cognito sub that cannot be a Matrix localpart; a room missing from Synapse
    local.cognito_user(new(), sub_attribute="Not-A-Sub")
    local.admin("DELETE", f"/_synapse/admin/v2/rooms/{rooms['experiencers']}", json={"purge": True}).raise_for_status()

    planned = local.sweep(dry_run=True)
    fixes = {(f["sub"], f["kind"], f["room"]) for f in planned["fixes"]}
    assert fixes == {
        (s["missing_user"], "create", None),
        (s["missing_membership"], "join", rooms["analysts"]),
        (s["lost_group_event"], "join", rooms["staff"]),
        (s["lost_group_event"], "promote", rooms["staff"]),
        (s["wrong_level"], "demote", rooms["staff"]),
        (s["disabled"], "deactivate", None),
        (s["reactivate"], "reactivate", None),
        (s["deleted"], "deactivate", None),
    }
    assert {(f["kind"], f["subject"]) for f in planned["findings"]} == {
        ("invalid_sub", "Not-A-Sub"), ("room_missing", rooms["experiencers"]),
        ("no_external_id", uid(s["no_external_id"]))}
    assert planned["applied"] is False
    assert local.status(s["missing_user"])["rooms"] == []  # the dry run wrote nothing

    applied = local.sweep(dry_run=False)
    assert {r["status"] for r in applied["executions"].values()} == {"SUCCEEDED"}
    assert local.sweep(dry_run=True)["fixes"] == []  # converged
    levels = local.synapse.power_levels(rooms["staff"])["users"]
    assert levels[uid(s["lost_group_event"])] == 100 and uid(s["wrong_level"]) not in levels
    assert UNMANAGED not in str(applied["executions"])
    assert local.admin("GET", f"/_synapse/admin/v2/users/@logan:{server}").json()["deactivated"] is False


def test_a_sweep_without_drift_starts_nothing(local):
    local.signup(new(), ["analysts"], None)
    sfn = local.aws["stepfunctions"]
    machines = [local.state["state_machine_arn"], local.state["sync_state_machine_arn"]]

    def executions():
        return sum(len(sfn.list_executions(stateMachineArn=m)["executions"]) for m in machines)
    before = executions()
    result = local.sweep(dry_run=False)
    assert result["summary"]["users_to_fix"] == 0 and result["applied"] is False
    assert executions() == before


def test_the_sweep_state_machine_plans_and_stores_the_plan(local):
    """SweepUsers as deployed, run by moto up to its Choice: PlanSweep reads both sides and
    stores the plan in S3. (moto cannot run its ApplyPlan: a Distributed Map of
    startExecution.sync:2; the local `sweep` applies the same plan with sweeper.apply.)"""
    sub = new()
    local.cognito_user(sub, ["analysts"])  # drift: an admin-created user
    sfn = local.aws["stepfunctions"]
    arn = sfn.start_execution(stateMachineArn=local.state["sweep_state_machine_arn"],
                              name=f"dry-{sub}", input='{"dry_run": true}')["executionArn"]
    assert local.wait(arn)["status"] == "SUCCEEDED"
    output = json.loads(sfn.describe_execution(executionArn=arn)["output"])
    assert output["dry_run"] is True and output["summary"]["fixes"] == {"create": 1}
    s3 = local.aws["s3"]
    stored = json.loads(s3.get_object(Bucket=output["bucket"], Key=output["plan_key"])["Body"].read())
    assert stored["fixes"] == [{"sub": sub, "kind": "create", "room": None}]
    requests = json.loads(s3.get_object(Bucket=output["bucket"], Key=output["requests_key"])["Body"].read())
    assert requests == [{"workflow": "ProvisionUser", "input": {"sub": sub, "groups": ["analysts"]}}]
    assert local.states_entered(arn) == ["PlanSweep", "AnythingToFix", "NothingToApply"]
