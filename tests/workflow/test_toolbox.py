"""The operator's commands (toolbox/) against the local deployment, through the code path
production takes: the stack found by its name, the rest from its outputs, AWS's APIs, and
Synapse read by the stack's InspectUser; only the endpoint differs (--local)."""

import json
import shlex
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from local_run.actors import email_of
from local_run.aws_events import ACCOUNT, REGION
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
    return typed(capsys, "--state-dir", str(local.state.state_dir), "--local", *args)


def typed(capsys, *argv: str) -> tuple[dict, int, str]:
    """The command as a person types it, options where they put them."""
    try:
        code = main(list(argv))
    except SystemExit as e:  # a usage error, as argparse ends it
        code = e.code
    out = capsys.readouterr()
    return json.loads(out.out), code, out.err


def tool(local) -> str:
    """How the commands above are invoked: what a command they suggest must repeat."""
    return f"chat-provisioning --local --state-dir {shlex.quote(str(local.state.state_dir))}"


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
    assert (code, status["verdict"]) == (2, f"drift: join The Red Room; fix: {tool(local)} user sync {sub}")

    synced, code, progress = cli(local, capsys, "user", "sync", sub)
    assert (code, synced["status"]) == (0, "SUCCEEDED")
    assert "JoinRooms done: joined" in progress and "RecordAudit done" in progress  # what each step did
    before = len(local.inspector.synapse_requests())
    status, code, _ = cli(local, capsys, "user", "status", sub)
    assert (code, status["verdict"]) == (0, "in sync")
    assert [e["name"].split("-")[0] for e in status["executions"]] == ["operator", "signup"]
    assert {method for method, _ in local.inspector.synapse_requests()[before:]} == {"GET"}  # InspectUser reads only


def test_options_are_taken_wherever_they_are_written_and_a_suggested_command_runs_as_pasted(local, sub, capsys):
    """Found by a newcomer: `user status X --output table` and `user status --local X` were
    refused, and the verdict's fix, pasted, reached no deployment (it dropped --local)."""
    local.cognito.signup(sub, ["analysts"], None)
    local.kick(sub, "red_room")
    state_dir = str(local.state.state_dir)
    answers = [typed(capsys, "user", "status", sub, "--local", "--state-dir", state_dir),
               typed(capsys, "user", "--local", "status", "--state-dir", state_dir, sub),
               typed(capsys, "--state-dir", state_dir, "user", "status", "--local", sub)]
    assert {(code, status["verdict"]) for status, code, _ in answers} == {
        (2, f"drift: join The Red Room; fix: {tool(local)} user sync {sub}")}
    fix = answers[0][0]["verdict"].split("fix: ", 1)[1]
    synced, code, _ = typed(capsys, *shlex.split(fix)[1:])  # as pasted, after the program's name
    assert (code, synced["status"]) == (0, "SUCCEEDED")
    assert main(["user", "status", sub, "--output", "table", "--local", "--state-dir", state_dir]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "verdict: in sync"


def test_a_sync_of_a_sub_nobody_has_says_so_with_exit_4(local, capsys):
    """Found by a newcomer: its progress read `DeactivateUser done`, as if someone was deactivated."""
    nobody = "0" * 8 + "-0000-4000-8000-000000000000"
    answer, code, progress = cli(local, capsys, "user", "sync", nobody)
    assert (code, answer["status"], answer["error"]) == (
        4, "SUCCEEDED", "no such user: neither Cognito nor Matrix has this sub")
    assert "DeactivateUser done: skipped:no_matrix_user" in progress


@pytest.fixture
def not_an_operators_calls():
    """The calls of a test that are not an operator command's (the test's own, the local run's
    stand-ins for Cognito, attach-trigger's administrator): kept out of the operator role's check."""
    before = set(CALLS)
    yield
    CALLS.intersection_update(before)


def test_local_commands_exit_as_every_command_does(local, sub, capsys, tmp_path, not_an_operators_calls):
    """Found by a newcomer: every `local` command exited 0, a FAILED sign-up and an error
    included, and a cdk.json that is not one printed a traceback."""
    answer, code, _ = cli(local, capsys, "local", "signup", "--group", "no-such-group")
    assert code == 1 and "ResourceNotFoundException" in answer["error"]
    local.fail_lambda("JoinRooms", "UserDeactivated")  # permanent: not retried
    failed, code, _ = cli(local, capsys, "local", "signup", "--sub", sub, "--group", "analysts")
    assert (code, failed["status"]) == (3, "FAILED")
    (bad := tmp_path / "cdk.json").write_text('{"context": {"chat-provisioning": {"rooms": 1}}}')
    refused, code, _ = cli(local, capsys, "local", "up", "--cdk-json", str(bad))
    assert code == 1 and refused["error"].startswith(f"--cdk-json {bad}: not a cdk.json with a valid")


def test_attach_trigger_takes_the_deployment_options_and_runs_on_the_local_pool(local, capsys, not_an_operators_calls):
    """Found by a newcomer: attach-trigger ignored --profile, --region and --endpoint-url, the
    one command that writes to the production pool, and could not be tried locally."""
    arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{local.state.functions['PostConfirmation']}"
    args = ("attach-trigger", "--user-pool-id", local.state.user_pool_id, "--function-arn", arn)
    planned, code, _ = cli(local, capsys, *args)
    assert (code, planned["applied"], planned["post_confirmation"]["after"]) == (2, False, arn)  # a change to make
    refused, code, _ = typed(capsys, *args, "--profile", "no-such-profile")
    assert code == 1 and "no-such-profile" in refused["error"] and "could not be found" in refused["error"]


def test_local_takes_no_option_that_would_choose_another_deployment(local, capsys):
    """Found by a newcomer: `--local --profile nope` answered as if --profile were not there."""
    for option in (("--profile", "nope"), ("--region", "eu-west-1"), ("--endpoint-url", "http://x")):
        refused, code, _ = cli(local, capsys, "user", "status", "someone", *option)
        assert (code, refused) == (1, {"error": f"--local reaches the local run, which {option[0]} would not "
                                                f"change: give --local, or {option[0]}, not both"})


def test_local_up_answers_where_things_are_and_no_credentials(local):
    """Found by a newcomer: `local up` printed 170 lines, three sets of access keys among them,
    and the pool's ID only deep inside its config."""
    summary = local.state.summary()
    assert (summary["user_pool_id"], summary["rooms"]["staff"]["room_id"]) == (
        local.state.user_pool_id, local.config.rooms["staff"].room_id)
    keys = [c for creds in (local.state.aws_credentials, local.state.operator_credentials) for c in creds.values()]
    assert not [key for key in keys if key in json.dumps(summary)]


def test_a_local_command_before_local_up_answers_in_one_json_line(tmp_path, capsys):
    """Found by a newcomer: `local signup` before `local up` wrote plain text to stderr, where
    every other refusal is JSON on stdout."""
    refused, code, _ = typed(capsys, "--state-dir", str(tmp_path), "local", "signup")
    assert (code, refused) == (1, {"error": f"no {tmp_path / 'state.json'}: run `chat-provisioning local up` first"})


def test_status_says_what_it_could_read_when_matrix_cannot_be_read(local, sub, capsys):
    """Found by a newcomer: during a Synapse outage `user status` failed whole (InspectUser
    failed, exit 1), hiding Cognito, the audit trail and the failed run that explain it."""
    local.fail_lambda("JoinRooms", "UserDeactivated")  # permanent: not retried
    failed = local.cognito.signup(sub, ["analysts"], None)
    local.fail_lambda("InspectUser", "SynapseUnavailable")
    status, code, _ = cli(local, capsys, "user", "status", sub)
    assert code == 3 and status["verdict"].startswith("incomplete: Matrix unread (InspectUser failed: "
                                                      "SynapseUnavailable")
    assert status["verdict"].endswith(f"{tool(local)} executions redrive {failed['execution_arn']}")
    assert status["cognito"] == {"standing": "confirmed", "status": "CONFIRMED", "enabled": True,
                                 "groups": "unread: InspectUser reads them"}
    assert [e["name"] for e in status["executions"]] == [f"signup-{sub}"] and status["audit"]
    assert local.operator.redrive(failed["execution_arn"])["status"] == "SUCCEEDED"
    local.fail_lambda("InspectUser", "SynapseUnavailable")
    status, code, _ = cli(local, capsys, "user", "status", sub)
    assert code == 2
    assert status["verdict"].startswith("incomplete: Matrix unread (InspectUser failed: SynapseUnavailable")
    assert status["verdict"].endswith("; Cognito: confirmed; see the audit trail and the executions")


def test_a_local_sign_up_has_an_email_that_user_status_finds(local, sub, capsys, not_an_operators_calls):
    """Found by a newcomer: `local signup` made a user with no email, so the README's
    `user status <email>` answered "not found" on the local run."""
    signed_up, code, _ = cli(local, capsys, "local", "signup", "--sub", sub, "--group", "analysts")
    assert (code, signed_up["status"]) == (0, "SUCCEEDED")
    status, code, _ = cli(local, capsys, "user", "status", signed_up["email"])
    assert (code, status["sub"], status["verdict"]) == (0, sub, "in sync")
    assert signed_up["email"] not in json.dumps(status)  # only the sub comes back


def test_table_output_is_for_people(local, sub, capsys):
    local.cognito.signup(sub, [], None)
    assert main(["--state-dir", str(local.state.state_dir), "--local", "--output", "table", "user", "status", sub]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == "verdict: in sync" and "cognito:" in lines
    red = local.config.rooms["red_room"].room_id
    assert ["red_room", "The", "Red", "Room", red, "true", "true", "0"] in [line.split() for line in lines]  # columns
    assert any(line.strip().startswith(f"signup-{sub}  SUCCEEDED") for line in lines)


def test_a_user_is_found_by_email_or_username_in_cognito(local, sub, capsys):
    """As the README shows it, on a local user as `local admin-create` makes one."""
    username, email = local.cognito.create_user(sub), email_of(sub)
    assert sub not in (username, email)  # a pool whose usernames are not subs
    for who in (email, username):
        status, code, _ = cli(local, capsys, "user", "status", who)
        assert status["sub"] == sub and email not in json.dumps(status)  # only the sub comes back
        assert (code, status["verdict"]) == (2, f"drift: create; fix: {tool(local)} user sync {sub}")
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
                        (["executions", "redrive", "--dry-run"], "which executions? name them (ARNs), or give "
                                                                  "--since a time"),
                        (["executions", "redrive", "arn:x", "--since", "1h"], "name the executions or give --since, "
                                                                              "not both"),
                        (["--stack", "NoSuchStack", "user", "status", "x"],
                         "cannot read the stack NoSuchStack in us-east-1: access denied. Either no stack has that "
                         "name"),
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


def test_the_operator_signs_with_the_stacks_operator_policy_and_nothing_more(local, not_an_operators_calls):
    """The commands ran as a user with the stack's OperatorPolicy only (the local run enforces
    IAM, resources included): the token and the steps are not theirs."""
    operator = local.operator.deployment
    with pytest.raises(ClientError, match="AccessDenied"):
        operator.client("secretsmanager").get_secret_value(SecretId=local.config.admin_token_secret_name)
    with pytest.raises(ClientError, match="AccessDenied"):
        operator.client("lambda").invoke(FunctionName=local.state.functions["SyncUserSteps"], Payload=b"{}")
    with pytest.raises(ClientError, match="AccessDenied"):
        operator.client("dynamodb").put_item(TableName=local.state.audit_table, Item={"sub": {"S": "x"}})


def test_every_call_the_commands_made_is_in_the_readmes_operator_role():
    """Last in this module (tests run in file order): what an operator's role needs, as the
    README lists it, covers every call the commands above made."""
    listed = README.read_text().split("**What an operator's role needs:**")[1].split("\n\n")[0]
    assert {"cloudformation:DescribeStacks", "cognito-idp:ListUsers", "lambda:Invoke",
            "states:RedriveExecution"} <= CALLS
    # IAM's action for the Invoke API is lambda:InvokeFunction
    missing = {c for c in CALLS if f"`{c.replace('lambda:Invoke', 'lambda:InvokeFunction')}`" not in listed}
    assert not missing, f"calls the README's operator role does not list: {sorted(missing)}"
