"""What an operator reads, without AWS: the verdict `user status` ends with, and the failure
metric's dimensions, which come from an execution's input (whatever its starter sent)."""

import json
from pathlib import Path

import pytest

from chat_provisioning.adapters import telemetry
from chat_provisioning.handlers import failure_audit
from tests.fakes import runtime_of
from toolbox.operations import DRIFT, FAILED, IN_SYNC, NOT_FOUND, judge

SUB = "11111111-2222-4333-8444-555555555555"
RED = {"room": "red_room", "name": "The Red Room", "room_id": "!red:x", "exists": True, "joined": False,
       "power_level": 0}


def seen(fixes=(), findings=(), standing="confirmed", exists=True) -> dict:
    return {"sub": SUB, "cognito": {"standing": standing}, "matrix": {"exists": exists, "rooms": [RED]},
            "drift": {"fixes": list(fixes), "findings": list(findings)}}


def run(status: str, name: str = f"signup-{SUB}") -> dict:
    return {"name": name, "status": status, "execution_arn": f"arn:x:{name}", "failed_state": "JoinRooms",
            "error": "SynapseUnavailable"}


JOIN = {"kind": "join", "room_id": "!red:x"}
TOOL = "chat-provisioning --stack Chat --region eu-west-1"  # as the operator ran it: pasted, it reaches the same stack
BANNED = {"kind": "deactivated_in_matrix", "detail": "..."}


@pytest.mark.parametrize("user, runs, verdict, code", [
    (seen(), [run("SUCCEEDED")], "in sync", IN_SYNC),
    (seen(), [run("RUNNING", "operator-x")], "in sync (operator-x running)", IN_SYNC),
    (seen([JOIN]), [run("SUCCEEDED")], f"drift: join The Red Room; fix: {TOOL} user sync {SUB}", DRIFT),
    (seen([JOIN]), [run("RUNNING", "operator-x"), run("SUCCEEDED")], "drift: join The Red Room; operator-x is running",
     DRIFT),
    (seen([JOIN]), [run("FAILED")], f"failed at JoinRooms: SynapseUnavailable (signup-{SUB}); once the cause is "
     f"fixed: {TOOL} executions redrive arn:x:signup-{SUB}", FAILED),
    # A failed run long since repaired is history, not the verdict.
    (seen(), [run("FAILED")], "in sync", IN_SYNC),
    # What a sync cannot fix is not offered one.
    (seen(findings=[BANNED]), [], "needs a person: deactivated_in_matrix (see drift.findings)", DRIFT),
    (seen([{"kind": "create", "room_id": None}], [BANNED]), [],
     f"drift: create; fix: {TOOL} user sync {SUB}; needs a person: deactivated_in_matrix "
     "(see drift.findings)", DRIFT),
    (seen(standing="absent", exists=False), [], "not found: neither Cognito nor Matrix has this user", NOT_FOUND),
])
def test_the_verdict_names_what_is_wrong_and_what_to_do(user, runs, verdict, code):
    assert judge(user, runs, TOOL) == (verdict, code)


@pytest.mark.parametrize("cause, error, dimensions", [
    ("signup", "SynapseUnavailable", {"cause": "signup", "error": "SynapseUnavailable"}),
    ([], "Lambda.Unknown", {"cause": "other", "error": "Lambda.Unknown"}),
    ({"a": 1}, None, {"cause": "other", "error": "other"}),
    ("x" * 500, "not an error name; with spaces", {"cause": "other", "error": "other"}),
])
def test_the_failure_metric_takes_only_known_causes_and_error_names(monkeypatch, context, cause, error, dimensions):
    """Anyone with states:StartExecution writes the input: a dimension value of theirs would
    be a new CloudWatch metric each time, and a cause of the wrong type must not fail the
    failure audit."""
    counted = []
    monkeypatch.setattr(failure_audit, "count", lambda name, **dims: counted.append((name, dims)))
    rt = runtime_of()
    rt.workflows.stopped_at["arn:aws:states:us-east-1:1:execution:m:e"] = "JoinRooms"
    failure_audit.record_failure({"id": "e", "source": "aws.states",
                                  "detail-type": "Step Functions Execution Status Change",
                             "detail": {"executionArn": "arn:aws:states:us-east-1:1:execution:m:e", "status": "FAILED",
                                        "input": json.dumps({"sub": SUB, "cause": cause}), "error": error,
                                        "cause": "c", "redriveCount": 0}}, context, rt=rt)
    assert counted == [("ExecutionsFailed", {**dimensions, "step": "JoinRooms"})]


def test_only_declared_metrics_with_their_dimensions_are_published():
    with pytest.raises(KeyError):
        telemetry.count("NotDeclared")
    with pytest.raises(ValueError):
        telemetry.count("ExecutionsFailed", cause="signup")  # step and error missing


def test_the_import_adds_groups_only_to_users_still_enabled_and_confirmed():
    """Between the plan an operator reviewed and --apply, a user may have been disabled or
    deleted: Cognito's word now decides, as everywhere."""
    import boto3
    from moto import mock_aws

    from toolbox.operations import add_to_groups

    with mock_aws():
        idp = boto3.client("cognito-idp", region_name="us-east-1")
        pool = idp.create_user_pool(PoolName="import")["UserPool"]["Id"]
        idp.create_group(UserPoolId=pool, GroupName="staff")
        subs = {}
        for name in ("kept", "disabled", "deleted"):
            user = idp.admin_create_user(UserPoolId=pool, Username=name, MessageAction="SUPPRESS")["User"]
            idp.admin_set_user_password(UserPoolId=pool, Username=name, Password="Passw0rd!x", Permanent=True)
            subs[name] = {a["Name"]: a["Value"] for a in user["Attributes"]}["sub"]
        idp.admin_disable_user(UserPoolId=pool, Username="disabled")
        idp.admin_delete_user(UserPoolId=pool, Username="deleted")
        proposed = [{"sub": subs[n], "group": "staff", "detail": "in Staff at 100"} for n in subs]
        added, refused = add_to_groups(idp, pool, proposed, progress=lambda line: None)
        assert [a["sub"] for a in added] == [subs["kept"]]
        assert [r["sub"] for r in refused] == [subs["disabled"], subs["deleted"]]
        members = idp.list_users_in_group(UserPoolId=pool, GroupName="staff")["Users"]
        assert [u["Username"] for u in members] == ["kept"]


@pytest.mark.parametrize("content", [None, "not json", '{"sub": "x"}', '[{"group": "staff"}]'])
def test_an_import_file_that_is_not_reviewed_proposals_is_refused_before_any_aws_call(tmp_path, capsys, content):
    from toolbox.cli import main

    path = tmp_path / "groups.json"
    if content is not None:
        path.write_text(content)
    assert main(["--region", "us-east-1", "import-groups", "--apply", str(path)]) == 1  # no AWS reached: offline
    assert json.loads(capsys.readouterr().out)["error"].startswith(f"--apply {path}")


@pytest.mark.parametrize("typed, on_path, suggested", [
    (".venv/bin/chat-provisioning", None, f"{Path.cwd()}/.venv/bin/chat-provisioning"),  # not activated
    (".venv/bin/chat-provisioning", ".venv/bin/chat-provisioning", "chat-provisioning"),  # activated
    ("chat-provisioning", "/usr/local/bin/chat-provisioning", "chat-provisioning"),
    ("/opt/my tools/chat-provisioning", None, "'/opt/my tools/chat-provisioning'")])
def test_a_suggested_command_names_the_tool_as_it_was_typed(monkeypatch, typed, on_path, suggested):
    """Found by a newcomer: the verdict's fix began `chat-provisioning`, which the shell could not
    find when the README's `.venv/bin/chat-provisioning` was typed: pasted, exit 127."""
    from toolbox import cli
    monkeypatch.setattr(cli.sys, "argv", [typed])
    monkeypatch.setattr(cli.shutil, "which", lambda name: on_path)
    assert cli.program() == suggested
