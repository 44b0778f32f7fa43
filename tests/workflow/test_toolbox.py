"""The operator's commands (toolbox/) against the local deployment, through the code path
production takes: the stack found by its name, the rest from its outputs, AWS's APIs, and
Synapse read by the stack's InspectUser; only the endpoint differs (--local)."""

import json
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from toolbox.cli import main

README = Path(__file__).resolve().parents[2] / "README.md"
CALLS: set[str] = set()  # service:Action, each call the commands made in this module


@pytest.fixture(autouse=True)
def recorded_calls(monkeypatch):
    """Record each AWS call the commands make (botocore's before-call event on every client
    a command creates; the local run's own were created before)."""
    client = boto3.session.Session.client

    def recording(self, *args, **kwargs):
        made = client(self, *args, **kwargs)
        made.meta.events.register("before-call", lambda model, **_: CALLS.add(
            f"{model.service_model.signing_name}:{model.name}"))
        return made
    monkeypatch.setattr(boto3.session.Session, "client", recording)


def cli(local, capsys, *args: str) -> tuple[dict, int, str]:
    """The answer (stdout, JSON), the exit code, and the progress (stderr)."""
    try:
        code = main(["--state-dir", str(local.state.state_dir), "--local", *args])
    except SystemExit as e:  # a usage error, as argparse ends it
        code = e.code
    out = capsys.readouterr()
    return json.loads(out.out), code, out.err


def test_query_narrows_the_answer_as_the_aws_clis_does(local, sub, capsys):
    local.cognito.signup(sub, ["analysts"], None)
    rooms, code, _ = cli(local, capsys, "--query", "matrix.rooms[?joined].name", "user", "status", sub)
    assert (rooms, code) == (["The Red Room", "Analysts"], 0)
    refused, code, _ = cli(local, capsys, "--query", "matrix.[", "user", "status", sub)
    assert code == 1 and "not a JMESPath expression" in refused["error"]
    missing, code, _ = cli(local, capsys, "--query", "matrix", "user", "status", "not-a-user@example.invalid")
    assert code == 4 and "error" in missing  # an error is printed whole, never narrowed away


def test_status_names_the_drift_and_sync_repairs_it(local, sub, capsys):
    local.cognito.signup(sub, ["staff"], "Ann")
    status, code, _ = cli(local, capsys, "user", "status", sub)
    assert (code, status["verdict"]) == (0, "in sync")
    assert status["cognito"] == {"standing": "confirmed", "status": "CONFIRMED", "enabled": True, "groups": ["staff"]}
    assert {r["name"]: (r["joined"], r["power_level"]) for r in status["matrix"]["rooms"]} == {
        "The Red Room": (True, 0), "Staff": (True, 99), "Analysts": (False, 0), "Experiencers": (False, 0)}
    assert [e["name"] for e in status["executions"]] == [f"signup-{sub}"]
    assert ("ProvisionUser", "created") in {(a["step"], a["outcome"]) for a in status["audit"]}

    local.kick(sub, "red_room")  # by hand, in Synapse: no event reports it
    status, code, _ = cli(local, capsys, "user", "status", sub)
    red = local.config.rooms["red_room"].room_id
    assert status["drift"]["fixes"] == [{"kind": "join", "room_id": red}]
    assert (code, status["verdict"]) == (2, f"drift: join The Red Room; fix: chat-provisioning user sync {sub}")

    synced, code, progress = cli(local, capsys, "user", "sync", sub)
    assert (code, synced["status"]) == (0, "SUCCEEDED")
    assert "JoinRooms done" in progress and "RecordAudit done" in progress
    before = len(local.inspector.synapse_requests())
    status, code, _ = cli(local, capsys, "user", "status", sub)
    assert (code, status["verdict"]) == (0, "in sync")
    assert [e["name"].split("-")[0] for e in status["executions"]] == ["operator", "signup"]
    assert {method for method, _ in local.inspector.synapse_requests()[before:]} == {"GET"}  # InspectUser reads only


def test_table_output_is_for_people(local, sub, capsys):
    local.cognito.signup(sub, [], None)
    assert main(["--state-dir", str(local.state.state_dir), "--local", "--output", "table", "user", "status", sub]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == "verdict: in sync" and "cognito:" in lines
    red = local.config.rooms["red_room"].room_id
    assert ["red_room", "The", "Red", "Room", red, "true", "true", "0"] in [line.split() for line in lines]  # columns
    assert any(line.strip().startswith(f"signup-{sub}  SUCCEEDED") for line in lines)


def test_a_user_is_found_by_email_or_username_in_cognito(local, sub, capsys):
    username, email = f"ann-{sub[:8]}", f"ann-{sub[:8]}@example.invalid"
    local.cognito.create_user(username, [], None, sub_attribute=sub)  # a pool whose usernames are not subs
    local.aws["cognito-idp"].admin_update_user_attributes(
        UserPoolId=local.state.user_pool_id, Username=username,
        UserAttributes=[{"Name": "email", "Value": email}])
    for who in (email, username):
        status, code, _ = cli(local, capsys, "user", "status", who)
        assert status["sub"] == sub and email not in json.dumps(status)  # only the sub comes back
        assert (code, status["verdict"]) == (2, f"drift: create; fix: chat-provisioning user sync {sub}")
    missing, code, _ = cli(local, capsys, "user", "status", "nobody@example.invalid")
    assert (code, missing) == (4, {"error": "no user in the pool has this email"})
    unknown, code, _ = cli(local, capsys, "user", "status", "0" * 8 + sub[8:])
    assert (code, unknown["verdict"]) == (4, "not found: neither Cognito nor Matrix has this user")


def test_a_failed_run_is_named_then_redriven_where_it_failed(local, sub, capsys):
    local.fail_lambda("JoinRooms", "UserDeactivated")  # permanent: not retried
    failed = local.cognito.signup(sub, ["analysts"], None)
    status, code, _ = cli(local, capsys, "user", "status", sub)
    assert code == 3 and status["verdict"].startswith(f"failed at JoinRooms: UserDeactivated (signup-{sub}); ")
    assert status["verdict"].endswith(f"executions redrive {failed['execution_arn']}")

    listed, code, _ = cli(local, capsys, "executions", "redrive", "--since", "10m", "--dry-run")
    mine = [e for e in listed["executions"] if e["execution_arn"] == failed["execution_arn"]]
    assert (code, mine) == (0, [{"execution_arn": failed["execution_arn"], "name": f"signup-{sub}",
                                 "status": "FAILED", "resumes_at": "JoinRooms", "error": "UserDeactivated",
                                 "redrivable": "REDRIVABLE"}])
    assert local.inspector.rooms(sub) == set()  # a dry run changes nothing

    redriven, code, progress = cli(local, capsys, "executions", "redrive", failed["execution_arn"])
    assert code == 0 and redriven["executions"] == [{
        **mine[0], "status": "SUCCEEDED", "redrive_count": 1, "failed_state": None, "error": None}]
    assert "redriven at JoinRooms" in progress and "ReadCognitoUser done" not in progress
    assert local.inspector.rooms(sub) == {("The Red Room", 0), ("Analysts", 0)}
    status, code, _ = cli(local, capsys, "user", "status", sub)
    assert (code, status["verdict"]) == (0, "in sync")

    again, code, _ = cli(local, capsys, "executions", "redrive", failed["execution_arn"])
    assert code == 1 and "ExecutionNotRedrivable" in again["executions"][0]["refused"]  # it SUCCEEDED


def test_errors_are_json_with_exit_1_never_a_traceback_or_drifts_2(local, capsys):
    """Scripts read exit 2 as drift: a usage error, an AWS refusal, a bad ARN are 1."""
    for args, error in ((["executions", "redrive", "--since", "yesterday"], "not a time"),
                        (["executions", "redrive"], "name the executions, or --since"),
                        (["--stack", "NoSuchStack", "user", "status", "x"], "cannot read the stack NoSuchStack"),
                        (["user", "status", 'a"b'], "not a sub, email address or username")):
        answer, code, _ = cli(local, capsys, *args)
        assert code == 1 and error in answer["error"], (args, answer)
    missing = local.inspector.execution_arn("no-such-execution")
    answer, code, _ = cli(local, capsys, "executions", "redrive", missing)
    assert code == 1 and "ExecutionDoesNotExist" in answer["executions"][0]["refused"]


def test_a_dry_run_sweep_reports_its_plan_and_changes_nothing(local, sub, capsys, tmp_path):
    """The sweep command on the suite's shared stack: a dry run (the other users are other
    tests'; tests/workflow/test_sweep.py applies sweeps on a stack of its own, through the same
    report), its plan also written to a file grouped by kind, for a person to review and diff."""
    local.cognito.create_user(sub, ["analysts"], "Noor")  # admin-created: no trigger, no account
    plan_file = tmp_path / "day-one.json"
    swept, code, progress = cli(local, capsys, "sweep", "--dry-run", "--adopt", "--plan-file", str(plan_file))
    assert (swept["status"], swept["outcome"], swept["workflows"]) == ("SUCCEEDED", "dry_run", {})
    assert {"sub": sub, "kind": "create", "room": None} in swept["fixes"] and code == 2  # left unapplied
    assert swept["plan_key"].endswith("/plan.json") and "PlanSweep done" in progress
    grouped = json.loads(plan_file.read_text())
    assert list(grouped) == ["adopt", "create", "deactivate", "demote", "findings", "held", "join", "leave",
                             "promote", "proposed_groups", "rename", "summary", "thresholds",
                             "unapplied"]  # sorted: two plans diff
    assert {"sub": sub} in grouped["create"] and grouped["unapplied"] == len(swept["fixes"])
    status, _, _ = cli(local, capsys, "user", "status", sub)
    assert status["matrix"]["exists"] is False


def test_the_operator_signs_with_the_stacks_operator_policy_and_nothing_more(local):
    """The commands ran as a user with the stack's OperatorPolicy only (the local run enforces
    IAM, resources included): the token and the steps are not theirs."""
    operator, recorded = local.operator.deployment, set(CALLS)
    with pytest.raises(ClientError, match="AccessDenied"):
        operator.client("secretsmanager").get_secret_value(SecretId=local.config.admin_token_secret_name)
    with pytest.raises(ClientError, match="AccessDenied"):
        operator.client("lambda").invoke(FunctionName=local.state.functions["SyncUserSteps"], Payload=b"{}")
    with pytest.raises(ClientError, match="AccessDenied"):
        operator.client("dynamodb").put_item(TableName=local.state.audit_table, Item={"sub": {"S": "x"}})
    CALLS.intersection_update(recorded)  # these were this test's, not the commands'


def test_every_call_the_commands_made_is_in_the_readmes_operator_role():
    """Last in this module (tests run in file order): what an operator's role needs, as the
    README lists it, covers every call the commands above made."""
    listed = README.read_text().split("**What an operator's role needs:**")[1].split("\n\n")[0]
    assert {"cloudformation:DescribeStacks", "cognito-idp:ListUsers", "lambda:Invoke",
            "states:RedriveExecution"} <= CALLS
    # IAM's action for the Invoke API is lambda:InvokeFunction
    missing = {c for c in CALLS if f"`{c.replace('lambda:Invoke', 'lambda:InvokeFunction')}`" not in listed}
    assert not missing, f"calls the README's operator role does not list: {sorted(missing)}"
