"""Going live on a Synapse that has users already, built as Phenom's is (chat-services.md):
accounts the old chat-user-provisioner Lambda made (no external id, The Red Room only), one a
JWT login made, one an SSO login linked to its provider, Staff set to 100 by hand, an Analyst
added by hand, a room member no group explains, and people and bots Cognito does not know.
The day-one path is the README's runbook: plan (adopting), import the groups today's roles
imply, plan again (nothing removed), then the sweep that adopts; every other provider's link
kept on every path that writes a user."""

import json
import uuid
from dataclasses import dataclass

import pytest

from chat_provisioning.domain.sweep_plan import REMOVALS
from local_run import env
from local_run.actors import username_of
from toolbox import operations
from toolbox.cli import main


def new() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True)
class BrownField:
    """The subs of Phenom's kinds of users, and the Matrix IDs of those Cognito does not know."""
    legacy: str  # the old Lambda's account, in The Red Room; Cognito: analysts
    plain: str  # the old Lambda's account, in The Red Room; no group
    jwt: str  # made by its first JWT login: no tie, no room
    sso: str  # the old Lambda's account, linked to an SSO provider too
    staff: tuple[str, str]  # at 100 in Staff by hand; no staff group in Cognito
    analyst: str  # in Analysts by hand; no analysts group
    member: str  # in Experiencers at the room's default; no group
    unprovisioned: str  # confirmed in Cognito, no account (a lost sign-up)
    deleted: str  # made by a JWT login, its Cognito user deleted since (the event lost): ours to deactivate
    strangers: tuple[str, ...]  # a human admin, another bot, a sub-named account of another provider's


def sso_link(sub: str) -> tuple[str, str]:
    """A Google login's link (an external id is one account's on the whole server)."""
    return ("oidc-google", f"g-{sub[:8]}")


def links_of(local, user_id: str) -> list[tuple[str, str]]:
    user = local.admin("GET", f"/_synapse/admin/v2/users/{user_id}").json()
    return sorted((e["auth_provider"], e["external_id"]) for e in user["external_ids"])


@pytest.fixture(scope="module")
def local(tmp_path_factory, config):
    with env.running(tmp_path_factory.mktemp("brown-field"), config) as local:
        yield local


@pytest.fixture(scope="module")
def field(local) -> BrownField:
    f = BrownField(legacy=new(), plain=new(), jwt=new(), sso=new(), staff=(new(), new()), analyst=new(),
                   member=new(), unprovisioned=new(), deleted=new(),
                   strangers=(f"@logan:{local.config.server_name}", f"@other-bot:{local.config.server_name}",
                              local.user_id(new())))
    uid = local.user_id
    for sub, groups in ((f.legacy, ["analysts"]), (f.plain, []), (f.jwt, []), (f.sso, []), (f.staff[0], []),
                        (f.staff[1], []), (f.analyst, []), (f.member, []), (f.unprovisioned, [])):
        local.cognito.create_user(sub, groups)
    for sub in (f.legacy, f.plain, f.staff[0], f.staff[1], f.analyst, f.member):
        local.account_made_elsewhere(uid(sub), rooms=("red_room",))
    local.account_made_elsewhere(uid(f.sso), links=(sso_link(f.sso),), rooms=("red_room",))
    assert local.inspector.login(f.jwt)["logged_in"]  # the mobile app's first login made it
    for sub in f.staff:
        local.account_made_elsewhere(uid(sub), rooms=("staff",), levels={"staff": 100})
    local.account_made_elsewhere(uid(f.analyst), rooms=("analysts",))
    local.account_made_elsewhere(uid(f.member), rooms=("experiencers",))
    logan, other_bot, orphan = f.strangers
    local.account_made_elsewhere(logan, rooms=("red_room", "staff"), levels={"staff": 100})
    local.account_made_elsewhere(other_bot, rooms=("staff",), levels={"staff": 50})
    local.account_made_elsewhere(orphan, rooms=("red_room",), links=(sso_link(orphan[1:9]),))  # named like a sub
    local.cognito.create_user(f.deleted, [])
    assert local.inspector.login(f.deleted)["logged_in"]
    local.aws["cognito-idp"].admin_delete_user(UserPoolId=local.state.user_pool_id, Username=username_of(f.deleted))
    return f


def test_the_first_plan_lists_exactly_the_expected_changes(local, field, tmp_path, capsys):
    f = field
    staff, analysts, experiencers = (local.config.rooms[k].room_id for k in ("staff", "analysts", "experiencers"))
    plan_file = tmp_path / "day-one.json"
    code = main(["--state-dir", str(local.state.state_dir), "--local", "sweep", "--dry-run", "--adopt",
                 "--plan-file", str(plan_file)])
    capsys.readouterr()
    plan = json.loads(plan_file.read_text())
    assert code == 2 and plan["held"] is None
    assert plan["adopt"] == [{"sub": s} for s in sorted([f.legacy, f.plain, f.jwt, f.sso, *f.staff, f.analyst,
                                                         f.member])]
    assert plan["create"] == [{"sub": f.unprovisioned}]
    red_room = local.config.rooms["red_room"].room_id
    assert plan["join"] == sorted([{"sub": f.legacy, "room": analysts}, {"sub": f.jwt, "room": red_room}],
                                  key=lambda j: j["sub"])
    assert all(plan[kind] == [] for kind in ("promote", "demote", "leave"))
    assert plan["deactivate"] == [{"sub": f.deleted}]  # a JWT login's account, linked to nothing: the sub's
    assert sorted((x["kind"], x["subject"], x.get("room")) for x in plan["findings"]) == sorted(
        [("level_beyond_the_bot", s, staff) for s in f.staff] + [("no_external_id", f.strangers[2], None)]
        + [("member_without_group", f.analyst, analysts), ("member_without_group", f.member, experiencers)])


def test_the_import_adds_only_reviewed_proposals_still_true_and_needs_its_own_policy(local, field, tmp_path, capsys):
    f, state_dir = field, str(local.state.state_dir)
    reviewed = tmp_path / "groups.json"
    assert main(["--state-dir", state_dir, "--local", "import-groups", "--plan-file", str(reviewed)]) == 2
    capsys.readouterr()
    proposed = {(p["sub"], p["group"]) for p in json.loads(reviewed.read_text())}
    assert proposed == {(f.staff[0], "staff"), (f.staff[1], "staff"), (f.analyst, "analysts"),
                        (f.member, "experiencers")}

    everyday, _ = operations.import_groups(local.operator.deployment, json.loads(reviewed.read_text()),
                                           progress=lambda line: None)
    assert everyday["added"] == [] and {r["error"][:12] for r in everyday["refused"]} == {"AccessDenied"}

    # The person reviewing leaves one out and someone slips in a grant Matrix does not show.
    cut = [p for p in json.loads(reviewed.read_text()) if p["sub"] != f.member]
    cut.append({"sub": f.plain, "group": "staff", "detail": "in Staff at 100"})
    reviewed.write_text(json.dumps(cut))
    code = main(["--state-dir", state_dir, "--local", "import-groups", "--apply", str(reviewed)])
    answer = json.loads(capsys.readouterr().out)
    assert code == 1  # signed with GroupImportPolicy beside OperatorPolicy; the slipped-in one refused
    assert {(p["sub"], p["group"]) for p in answer["added"]} == proposed - {(f.member, "experiencers")}
    assert [(p["sub"], p["group"]) for p in answer["refused"]] == [(f.plain, "staff")]
    assert [(p["sub"], p["group"]) for p in answer["unreviewed"]] == [(f.member, "experiencers")]
    def groups(sub: str) -> set[str]:
        return {g["GroupName"] for g in local.aws["cognito-idp"].admin_list_groups_for_user(
            UserPoolId=local.state.user_pool_id, Username=username_of(sub))["Groups"]}
    for sub, group in proposed:
        assert (group in groups(sub)) is (sub != f.member)
    assert groups(f.plain) == set()

    reviewed.write_text(json.dumps([{"sub": f.member, "group": "experiencers"}]))
    assert main(["--state-dir", state_dir, "--local", "import-groups", "--apply", str(reviewed)]) == 0
    capsys.readouterr()
    level = local.config.roles["staff"][0].power_level
    for sub in f.staff:  # the runbook: the bot can never lower its peers; each lowers its own level
        local.lower_own_level(sub, "staff", level)
    again = local.operator.sweep(dry_run=True, adopt=True)
    # Nothing removed but the deleted user's account (deactivated by the go-live sweep, if it ran first).
    assert [x for x in again["fixes"] if x["kind"] in REMOVALS and x["sub"] != f.deleted] == []
    assert not [x for x in again["findings"] if x["kind"] == "level_beyond_the_bot"]
    assert again["proposed_groups"] == []


def test_the_go_live_sweep_adopts_starts_no_run_that_must_fail_and_touches_no_stranger(local, field):
    f = field
    before = {u: local.admin("GET", f"/_synapse/admin/v2/users/{u}").json() for u in f.strangers}
    levels_before = local.synapse.power_levels(local.config.rooms["staff"].room_id)["users"]
    swept = local.operator.sweep(adopt=True)
    assert swept["outcome"] == "apply" and swept["executions"]
    assert {r["status"] for r in swept["executions"].values()} == {"SUCCEEDED"}
    for sub in (f.legacy, f.plain, f.jwt, *f.staff, f.analyst, f.member):
        assert links_of(local, local.user_id(sub)) == [("cognito", sub)]
    assert links_of(local, local.user_id(f.sso)) == sorted([sso_link(f.sso), ("cognito", f.sso)])
    assert {u: local.admin("GET", f"/_synapse/admin/v2/users/{u}").json() for u in f.strangers} == before
    assert local.admin("GET", f"/_synapse/admin/v2/users/{local.user_id(f.deleted)}").json()["deactivated"] is True
    levels = local.synapse.power_levels(local.config.rooms["staff"].room_id)["users"]
    assert {u: levels.get(u) for u in f.strangers[:2]} == {u: levels_before.get(u) for u in f.strangers[:2]}
    assert local.operator.sweep(dry_run=True, adopt=True)["fixes"] == []  # converged


def test_an_sso_link_survives_sign_up_group_change_sync_sweep_and_reactivation(local):
    sub = new()
    local.account_made_elsewhere(local.user_id(sub), links=(sso_link(sub),), rooms=("red_room",))
    ours = sorted([sso_link(sub), ("cognito", sub)])

    assert local.cognito.signup(sub, ["analysts"], None)["status"] == "SUCCEEDED"
    assert local.audit.trail(sub)[0]["outcome"] == "adopted"
    assert links_of(local, local.user_id(sub)) == ours
    assert local.cognito.change(sub, "AdminAddUserToGroup", "experiencers")["status"] == "SUCCEEDED"
    assert links_of(local, local.user_id(sub)) == ours
    assert local.events.send_sync_event({"sub": sub})["status"] == "SUCCEEDED"
    local.kick(sub, "experiencers")  # drift the next sweep repairs
    swept = local.operator.sweep()
    assert swept["executions"][sub]["status"] == "SUCCEEDED"
    assert links_of(local, local.user_id(sub)) == ours
    assert local.cognito.change(sub, "AdminDisableUser")["status"] == "SUCCEEDED"
    assert local.cognito.change(sub, "AdminEnableUser")["status"] == "SUCCEEDED"
    assert [a["outcome"] for a in local.audit.trail(sub) if a["step"] == "ProvisionUser"][-1] == "reactivated"
    assert links_of(local, local.user_id(sub)) == ours
    assert local.inspector.rooms(sub) == {("The Red Room", 0), ("Analysts", 0), ("Experiencers", 0)}
