"""chat-provisioning: the command line of the local run. Every command prints one JSON object."""

import argparse
import json
import sys
import uuid
from pathlib import Path

from chat_provisioning.config import ChatConfig
from chat_provisioning.signup import SIGN_UP

from stacks import attach_trigger

from . import env, iam_check

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="chat-provisioning")
    parser.add_argument("--state-dir", type=Path, default=ROOT / ".local",
                        help="where the local run keeps its servers' data and state.json")
    top = parser.add_subparsers(dest="area", required=True)
    attach = top.add_parser("attach-trigger", help="attach the PostConfirmation trigger to an existing "
                            "pool, keeping every other setting (dry run unless --apply)")
    attach.add_argument("--user-pool-id", required=True)
    attach.add_argument("--function-arn", required=True, help="the stack's PostConfirmationFunctionArn output")
    attach.add_argument("--apply", action="store_true")
    local = top.add_parser("local", help="the embedded default: a real Synapse and moto").add_subparsers(
        dest="command", required=True)
    up = local.add_parser("up", help="start Synapse and moto, create the workflow")
    up.add_argument("--cdk-json", type=Path, default=ROOT / "cdk.json")
    signup = local.add_parser("signup", help="a Cognito sign-up through the real trigger")
    signup.add_argument("--sub", help="the Cognito sub (a UUID; default: a new one)")
    signup.add_argument("--group", action="append", default=[], dest="groups")
    signup.add_argument("--name", help="display name (the Cognito `name` attribute)")
    signup.add_argument("--trigger-source", default=SIGN_UP,
                        help="e.g. PostConfirmation_ConfirmForgotPassword, which starts nothing")
    signup.add_argument("--no-wait", action="store_true")
    create = local.add_parser("admin-create", help="a user an admin creates in the pool (no trigger fires)")
    create.add_argument("--sub", help="the Cognito sub (a UUID; default: a new one)")
    create.add_argument("--group", action="append", default=[], dest="groups")
    create.add_argument("--name", help="display name (the Cognito `name` attribute)")
    create.add_argument("--unconfirmed", action="store_true", help="never signed in (FORCE_CHANGE_PASSWORD)")
    event = local.add_parser("event", help="the documented 'Sync chat user' event, on the stack's bus")
    event.add_argument("--sub", required=True)
    event.add_argument("--detail", type=json.loads, help="the whole detail as JSON (default: {\"sub\": ...})")
    start = local.add_parser("start", help="start the user's workflow as an operator would in the console")
    start.add_argument("--sub", required=True)
    group = local.add_parser("group", help="add or remove a Cognito group, as CloudTrail reports it")
    group.add_argument("change", choices=["add", "remove"])
    group.add_argument("--sub", required=True)
    group.add_argument("--group", required=True)
    for verb in ("disable", "enable", "delete"):
        local.add_parser(verb, help=f"{verb} the Cognito user, as CloudTrail reports it").add_argument(
            "--sub", required=True)
    deliver = local.add_parser("deliver", help="deliver an EventBridge event (a file, e.g. a record captured "
                               "in a real account) through the deployed rules to their targets")
    deliver.add_argument("event", type=Path, help="the event as EventBridge delivers it (JSON)")
    deliver.add_argument("--bus", help="default: the default bus for aws.* sources, else the stack's own")
    sweep = local.add_parser("sweep", help="reconcile Cognito and Synapse: plan, then apply")
    sweep.add_argument("--dry-run", action="store_true", help="show the plan, change nothing")
    sweep.add_argument("--approve-deactivations", type=int, metavar="N",
                       help="apply a plan held for its deactivations, if it has at most N")
    status = local.add_parser("status", help="the user as Synapse sees it, audit trail, executions")
    status.add_argument("--sub", required=True)
    login = local.add_parser("login", help="log in as the mobile app does (JWT) and list rooms")
    login.add_argument("--sub", required=True)
    redrive = local.add_parser("redrive", help="resume a failed execution at its failed state")
    redrive.add_argument("arn")
    local.add_parser("stop-synapse", help="stop Synapse (an outage)")
    local.add_parser("start-synapse", help="start Synapse again on the same data")
    local.add_parser("scan", help="count the bot token and emails in all the stack wrote")
    local.add_parser("calls", help="the AWS calls each function made, checked against its role")
    local.add_parser("down", help="stop everything `up` started")
    args = parser.parse_args(argv)

    state_dir: Path = args.state_dir
    if args.area == "attach-trigger":
        result = attach_trigger.attach(args.user_pool_id, args.function_arn, args.apply)
    elif args.command == "up":
        result = env.up(state_dir, ChatConfig.from_cdk_json(str(args.cdk_json)))
        result = {k: v for k, v in result.items() if k not in ("config",)}
    elif args.command == "down":
        result = env.down(state_dir)
    elif args.command == "stop-synapse":
        env.stop_synapse(state_dir)
        result = {"synapse": "stopped"}
    elif args.command == "start-synapse":
        env.start_synapse(state_dir)
        result = {"synapse": "started"}
    else:
        local_env = env.LocalEnv.load(state_dir)
        if args.command == "signup":
            result = local_env.signup(args.sub, args.groups, args.name, args.trigger_source,
                                      wait=not args.no_wait)
        elif args.command == "admin-create":
            sub = args.sub or str(uuid.uuid4())
            local_env.cognito_user(sub, args.groups, args.name, confirmed=not args.unconfirmed)
            result = {"sub": sub, "groups": args.groups}
        elif args.command == "event":
            result = local_env.send_sync_event(args.detail or {"sub": args.sub})
        elif args.command == "start":
            result = local_env.start(args.sub)
        elif args.command == "group":
            event_name = "AdminAddUserToGroup" if args.change == "add" else "AdminRemoveUserFromGroup"
            result = local_env.cognito_change(args.sub, event_name, args.group)
        elif args.command in ("disable", "enable", "delete"):
            result = local_env.cognito_change(args.sub, f"Admin{args.command.title()}User")
        elif args.command == "deliver":
            result = local_env.deliver(json.loads(args.event.read_text()), args.bus)
        elif args.command == "sweep":
            result = local_env.sweep(args.dry_run, args.approve_deactivations)
        elif args.command == "scan":
            result = local_env.leaks()
        elif args.command == "calls":
            result = {"calls": sorted(f"{n} {a}" for n, a in iam_check.rows(local_env.state)),
                      "not_allowed": iam_check.unallowed_calls(local_env.state, local_env.aws),
                      "not_in_readme": iam_check.unlisted_calls(local_env.state, (ROOT / "README.md").read_text())}
        elif args.command == "status":
            result = local_env.status(args.sub)
        elif args.command == "login":
            result = local_env.login(args.sub)
        else:
            result = local_env.redrive(args.arn)
    json.dump(result, sys.stdout, indent=1, default=str)
    print()
    return 1 if args.area == "attach-trigger" and "error" in result else 0


if __name__ == "__main__":
    sys.exit(main())
