"""`chat-provisioning local ...`: the embedded default, and what only it can do: stand in for
Cognito and EventBridge, cause an outage, count what the stack wrote. What an operator does in
production (user status and sync, redrives, the sweep) is the same command against any
deployment (toolbox/cli.py), `local up`'s included (`--local`: `deployment` below).

The tool finds this module by its entry point (pyproject.toml, `chat_provisioning.commands`)
and hands it the words after `local`: the operator's tool imports nothing of the local run."""

import argparse
import json
import uuid
from pathlib import Path

import boto3

from chat_provisioning.handlers.signup import SIGN_UP
from toolbox.cli import Parser, program
from toolbox.deployment import Deployment, ToolError

from .aws_events import REGION
from .state import LocalState

ROOT = Path(__file__).resolve().parent.parent


def deployment(state_dir: Path, stack: str, importer: bool = False) -> Deployment:
    """The local run's stack (`local up`), for `--local`: its endpoint, signed as its operator,
    a user with the stack's OperatorPolicy alone, or (`importer`) one with GroupImportPolicy
    beside it."""
    state = local_state(state_dir)
    credentials = state.importer_credentials if importer else state.operator_credentials
    return Deployment.find(stack, REGION, None, state.aws_endpoint_url, credentials)


def administrator(state_dir: Path) -> Deployment:
    """The local run's AWS as its administrator (`local up`'s own credentials), for what no role
    of the stack may do: attach-trigger's UpdateUserPool."""
    state = local_state(state_dir)
    return Deployment("local", {}, boto3.Session(region_name=REGION, **state.aws_credentials),
                      state.aws_endpoint_url)


def local_state(state_dir: Path) -> LocalState:
    if not (state_dir / "state.json").exists():
        raise ToolError(f"no {state_dir / 'state.json'}: run `{program()} local up` first")
    return LocalState.load(state_dir)


def parser() -> argparse.ArgumentParser:
    p = Parser(prog="chat-provisioning local", description=__doc__.split("\n\n")[0])
    add_commands(p.add_subparsers(dest="command", required=True))
    return p


def add_commands(local: argparse._SubParsersAction) -> None:
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
    group = local.add_parser("group", help="add or remove a Cognito group, as CloudTrail reports it")
    group.add_argument("change", choices=["add", "remove"])
    group.add_argument("--sub", required=True)
    group.add_argument("--group", required=True)
    for verb in ("disable", "enable", "delete"):
        local.add_parser(verb, help=f"{verb} the Cognito user, as CloudTrail reports it").add_argument(
            "--sub", required=True)
    rename = local.add_parser("rename", help="change the user's name in Cognito, as CloudTrail reports it")
    rename.add_argument("--sub", required=True)
    rename.add_argument("--name", required=True)
    deliver = local.add_parser("deliver", help="deliver an EventBridge event (a file, e.g. a record captured "
                               "in a real account) through the deployed rules to their targets")
    deliver.add_argument("event", type=Path, help="the event as EventBridge delivers it (JSON)")
    deliver.add_argument("--bus", help="default: the default bus for aws.* sources, else the stack's own")
    kick = local.add_parser("kick", help="remove the user from a room by hand, as a Matrix admin would")
    kick.add_argument("--sub", required=True)
    kick.add_argument("--room", required=True, help="the room's key in config, e.g. red_room")
    made = local.add_parser("account-made-elsewhere", help="an account this stack did not make: the old "
                            "trigger's, an SSO-linked one, a level set by hand")
    made.add_argument("--sub", help="the Cognito sub it is named after")
    made.add_argument("--user-id", help="or a whole Matrix user ID (someone Cognito does not know)")
    made.add_argument("--room", action="append", default=[], dest="rooms", help="a room's key in config (repeat)")
    made.add_argument("--level", action="append", default=[], dest="levels", metavar="ROOM=LEVEL",
                      help="a level set by hand, e.g. staff=100 (repeat)")
    made.add_argument("--link", action="append", default=[], dest="links", metavar="PROVIDER:ID",
                      help="an external id of another provider, e.g. oidc-google:g-4242 (repeat)")
    lower = local.add_parser("lower-own-level", help="the user lowers its own level in a room, as anyone may "
                             "in a client (a Staff member set to the bot's level by hand must: the bot "
                             "can never change a peer's level)")
    lower.add_argument("--sub", required=True)
    lower.add_argument("--room", required=True, help="the room's key in config, e.g. staff")
    lower.add_argument("--level", required=True, type=int)
    links = local.add_parser("links", help="the account's links (external ids), as Synapse's admin API has them")
    links.add_argument("--sub", required=True)
    login = local.add_parser("login", help="log in as the mobile app does (JWT) and list rooms")
    login.add_argument("--sub", required=True)
    local.add_parser("stop-synapse", help="stop Synapse (an outage)")
    local.add_parser("start-synapse", help="start Synapse again on the same data")
    local.add_parser("scan", help="count the bot token and emails in all the stack wrote")
    local.add_parser("calls", help="the AWS calls each function made, checked against its role")
    local.add_parser("down", help="stop everything `up` started")


def run(argv: list[str], state_dir: Path) -> dict:
    """The `local` command `argv` (the words after `local`) names; its answer."""
    from chat_provisioning.domain.config import ChatConfig

    args = parser().parse_args(argv)

    try:
        from . import env, iam_check
    except ImportError as e:  # moto and the rest are the `local` extra's, not every install's
        raise SystemExit(json.dumps({"error": f"the local run needs the local extra "
                                              f"(pip install '.[local]', or make install): {e}"})) from None

    if args.command == "up":
        try:
            config = ChatConfig.from_cdk_json(str(args.cdk_json))
        except (OSError, ValueError, KeyError) as e:  # ValueError: bad JSON, or pydantic's ValidationError
            raise ToolError(f"--cdk-json {args.cdk_json}: not a cdk.json with a valid 'chat-provisioning' "
                            f"context: {e}") from None
        return env.up(state_dir, config).summary()
    if args.command == "down":
        return env.down(state_dir)
    if args.command == "stop-synapse":
        env.stop_synapse(state_dir)
        return {"synapse": "stopped"}
    if args.command == "start-synapse":
        env.start_synapse(state_dir)
        return {"synapse": "started"}
    local_state(state_dir)  # none yet: the one-line error every command gives
    local_env = env.LocalEnv.load(state_dir)
    if args.command == "signup":
        return local_env.cognito.signup(args.sub, args.groups, args.name, args.trigger_source, wait=not args.no_wait)
    if args.command == "admin-create":
        sub = args.sub or str(uuid.uuid4())
        from .actors import email_of  # here: the module loads moto, which other commands need not
        username = local_env.cognito.create_user(sub, args.groups, args.name, confirmed=not args.unconfirmed)
        return {"sub": sub, "username": username, "email": email_of(sub), "groups": args.groups}
    if args.command == "event":
        return local_env.events.send_sync_event(args.detail or {"sub": args.sub})
    if args.command == "group":
        event_name = "AdminAddUserToGroup" if args.change == "add" else "AdminRemoveUserFromGroup"
        return local_env.cognito.change(args.sub, event_name, args.group)
    if args.command in ("disable", "enable", "delete"):
        return local_env.cognito.change(args.sub, f"Admin{args.command.title()}User")
    if args.command == "rename":
        return local_env.cognito.change(args.sub, "AdminUpdateUserAttributes", name=args.name)
    if args.command == "deliver":
        return local_env.events.deliver(json.loads(args.event.read_text()), args.bus)
    if args.command == "scan":
        return local_env.inspector.leaks()
    if args.command == "calls":
        seen = iam_check.calls_seen(local_env.state)
        return {"calls": sorted(f"{n} {a}" for n, a in iam_check.rows(seen)),
                "not_allowed": iam_check.unallowed_calls(seen, local_env.state.roles, local_env.aws),
                "not_declared": iam_check.undeclared_calls(seen)}
    if args.command == "kick":
        return local_env.kick(args.sub, args.room)
    if args.command == "lower-own-level":
        if args.room not in local_env.config.rooms:
            rooms = ", ".join(local_env.config.rooms)
            raise SystemExit(json.dumps({"error": f"no room {args.room!r} in config (rooms: {rooms})"}))
        return local_env.lower_own_level(args.sub, args.room, args.level)
    if args.command == "links":
        user = local_env.synapse.user(local_env.user_id(args.sub)) or {}
        return {"external_ids": [f"{e['auth_provider']}:{e['external_id']}" for e in user.get("external_ids", [])]}
    if args.command == "account-made-elsewhere":
        levels = {room: level for room, _, level in (x.partition("=") for x in args.levels)}
        links = [x.partition(":")[::2] for x in args.links]
        rooms = set(args.rooms) | set(levels)
        problems = (["name the account by --sub or by --user-id (one of them)"] * (bool(args.sub) == bool(args.user_id))
                    + [f"no room {r!r} in config (rooms: {', '.join(local_env.config.rooms)})"
                       for r in sorted(rooms - set(local_env.config.rooms))]
                    + [f"--level {r}={v}: a level is a whole number"
                       for r, v in levels.items() if not v.lstrip("-").isdigit()]
                    + [f"--link {p}:{e}: write PROVIDER:ID" for p, e in links if not (p and e)])
        if problems:
            raise SystemExit(json.dumps({"error": "; ".join(problems)}))
        return local_env.account_made_elsewhere(args.user_id or local_env.user_id(args.sub), tuple(args.rooms),
                                                {r: int(v) for r, v in levels.items()}, tuple(links))
    return local_env.inspector.login(args.sub)
