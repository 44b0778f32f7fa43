"""chat-provisioning: one command line for every deployment. `user`, `executions` and `sweep`
work against a deployed stack (AWS credentials and region as the AWS CLI finds them, the rest
from the stack's outputs) or the local run (`--local`: `local up`'s endpoint); `local` runs the
embedded default; `attach-trigger` attaches the sign-up trigger to an existing pool.

Output is JSON (the AWS CLI's habit), or `--output table` for people, narrowed by `--query`
(JMESPath, as the AWS CLI has it); progress goes to stderr.
Exit codes (operations.py): 0 in sync or succeeded, 1 an error, 2 drift, 3 a failed execution,
4 no such user."""

import argparse
import functools
import json
import os
import re
import shlex
import shutil
import sys
from datetime import UTC, datetime, timedelta
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path

import boto3
import jmespath
from botocore.exceptions import BotoCoreError, ClientError
from jmespath.exceptions import JMESPathError

from chat_provisioning.adapters.step_functions import NameTaken
from chat_provisioning.domain.executions import FAILED_STATUSES

from . import operations
from .deployment import Deployment, ToolError

ROOT = Path(__file__).resolve().parent.parent


def when(text: str) -> datetime:
    """An ISO 8601 time, or a time ago: 30m, 6h, 7d."""
    if m := re.fullmatch(r"(\d+)([mhd])", text):
        unit = {"m": "minutes", "h": "hours", "d": "days"}[m.group(2)]
        return datetime.now(UTC) - timedelta(**{unit: int(m.group(1))})
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a time: {text!r} (e.g. 2026-11-28T09:00Z, 6h, 7d)") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class Parser(argparse.ArgumentParser):
    """A usage error is an error (exit 1, and JSON): argparse's own exit 2 would read as drift."""

    def error(self, message: str):
        print(json.dumps({"error": f"{self.prog}: {message}"}))
        sys.exit(1)


@functools.cache  # each lookup reads every installed package's metadata
def plugins() -> dict[str, EntryPoint]:
    """Command groups that other packages add (pyproject.toml's `chat_provisioning.commands`
    entry points: the local run's `local`). Each is loaded only when its command runs, so an
    operator's command never loads the local run's code."""
    return {ep.name: ep for ep in entry_points(group="chat_provisioning.commands")}


DEFAULTS = {"stack": "ChatProvisioning", "local": False, "state_dir": ROOT / ".local", "output": "json"}
# The options that say which deployment to reach, as a command suggested to paste must repeat them.
DEPLOYMENT_OPTIONS = ("stack", "region", "profile", "endpoint_url", "local", "state_dir")


def global_options(defaults: bool) -> argparse.ArgumentParser:
    """The options every command takes, before its name or after (`user status X --local`).
    Only the top parser has defaults: a subcommand's parser sets what is written after the
    subcommand's name and nothing else, so it cannot undo what was written before it."""
    p = argparse.ArgumentParser(add_help=False)
    default = DEFAULTS.get if defaults else lambda name: argparse.SUPPRESS
    p.add_argument("--stack", default=default("stack"), help="the deployed stack's name (default ChatProvisioning)")
    p.add_argument("--region", default=default("region"), help="default: as the AWS CLI finds it")
    p.add_argument("--profile", default=default("profile"), help="an AWS CLI profile")
    p.add_argument("--endpoint-url", default=default("endpoint_url"), help="an AWS endpoint other than AWS's")
    p.add_argument("--local", action="store_true", default=default("local"),
                   help="the local run's deployment (`local up`)")
    p.add_argument("--state-dir", type=Path, default=default("state_dir"),
                   help="where the local run keeps its servers' data and state.json")
    p.add_argument("--output", choices=["json", "table"], default=default("output"))
    p.add_argument("--query", type=query, default=default("query"), help="a JMESPath expression the answer is "
                   "narrowed by (as the AWS CLI's --query; an error is printed whole)")
    return p


def parser() -> argparse.ArgumentParser:
    p = Parser(prog="chat-provisioning", description=__doc__.split("\n\n")[0],
               formatter_class=argparse.RawDescriptionHelpFormatter, parents=[global_options(defaults=True)])
    # No abbreviations after a command: `--r` would be --region to one parser and --room to the
    # local run's, which reads the words this one leaves.
    anywhere = functools.partial(Parser, parents=[global_options(defaults=False)], allow_abbrev=False)

    def commands(of: argparse.ArgumentParser, dest: str) -> argparse._SubParsersAction:
        return of.add_subparsers(dest=dest, required=True, parser_class=anywhere)

    top = commands(p, "area")

    user = commands(top.add_parser("user", help="one user: where they stand, and their fix"), "command")
    status = user.add_parser("status", help="Cognito, Matrix, the drift, the audit trail, the executions, a verdict")
    status.add_argument("who", help="the user's sub, email address or username")
    status.add_argument("--since", type=when, default="30d", help="executions started since (default 30d)")
    sync = user.add_parser("sync", help="start the user's workflow now and follow it")
    sync.add_argument("who", help="the user's sub, email address or username")
    sync.add_argument("--no-wait", action="store_true")

    executions = commands(top.add_parser("executions", help="the workflows' executions"), "command")
    redrive = executions.add_parser("redrive", help="resume failed executions at the state they failed in")
    redrive.add_argument("arns", nargs="*", metavar="ARN", help="the executions (or --since)")
    redrive.add_argument("--since", type=when, help="every FAILED, TIMED_OUT or ABORTED one that stopped since")
    redrive.add_argument("--dry-run", action="store_true", help="list them and where each resumes")
    redrive.add_argument("--no-wait", action="store_true")

    sweep = top.add_parser("sweep", help="reconcile Cognito and Matrix now: plan, then apply")
    sweep.add_argument("--dry-run", action="store_true", help="plan and report, change nothing")
    sweep.add_argument("--approve-removals", type=int, metavar="N",
                       help="apply a plan held for its removals (leaves, demotions, deactivations), "
                            "if it has at most N")
    sweep.add_argument("--adopt", action="store_true",
                       help="read every account's links (one Synapse request per user) and tie the "
                            "accounts made before this stack: going live")
    sweep.add_argument("--align-rooms", action="store_true",
                       help="first lower the thresholds of each room with an admin grant (config's "
                            "`admin`, Phenom's Staff) to that grant's level: its admins keep every "
                            "power, the bot alone above them; a --dry-run lists them as `thresholds`")
    sweep.add_argument("--plan-file", type=Path, metavar="FILE",
                       help="also write the plan to FILE, grouped by kind, to review and diff")

    imports = top.add_parser("import-groups", help="propose the Cognito groups today's Matrix roles imply "
                             "(day one; a dry run unless --apply, which needs GroupImportPolicy)")
    imports.add_argument("--plan-file", type=Path, metavar="FILE", help="also write the proposals to FILE, to review")
    imports.add_argument("--apply", type=Path, metavar="FILE",
                         help="add in Cognito the proposals in FILE (a reviewed --plan-file) still proposed now")

    attach = top.add_parser("attach-trigger", help="attach the PostConfirmation trigger to an existing "
                            "pool, keeping every other setting (dry run unless --apply)")
    attach.add_argument("--user-pool-id", required=True)
    attach.add_argument("--function-arn", required=True, help="the stack's PostConfirmationFunctionArn output")
    attach.add_argument("--apply", action="store_true")

    for name, plugin in plugins().items():  # its own parser reads the words after it (main)
        top.add_parser(name, help=f"the commands {plugin.module} adds", add_help=False)
    return p


def not_elsewhere(args: argparse.Namespace) -> None:
    """--local is the local run's deployment, on its own endpoint and credentials: an option
    that chooses AWS's account, region or endpoint with it would be ignored, so it is refused."""
    given = [f"--{name.replace('_', '-')}" for name in ("profile", "region", "endpoint_url") if getattr(args, name)]
    if args.local and given:
        raise ToolError(f"--local reaches the local run, which {' and '.join(given)} would not change: "
                        f"give --local, or {' and '.join(given)}, not both")


def deployment(args: argparse.Namespace) -> Deployment:
    not_elsewhere(args)
    if args.local:  # the local run is an endpoint; its operator has the stack's OperatorPolicy
        d = plugins()["local"].load().deployment(args.state_dir, args.stack, importer=args.area == "import-groups")
    else:
        d = Deployment.find(args.stack, args.region, args.profile, args.endpoint_url)
    d.invoked_as = invoked_as(args)
    return d


def pool_client(args: argparse.Namespace):
    """Cognito for attach-trigger, on the deployment options every command takes: the pool's
    region unless --region says otherwise, --profile, --endpoint-url; with --local, the local
    run's pool, as its administrator (the stack's operator may not change a pool)."""
    not_elsewhere(args)
    if args.local:
        return plugins()["local"].load().administrator(args.state_dir).client("cognito-idp")
    session = boto3.Session(profile_name=args.profile, region_name=args.region or args.user_pool_id.split("_")[0])
    return session.client("cognito-idp", endpoint_url=args.endpoint_url)


def program() -> str:
    """The tool by its path when `chat-provisioning` on PATH is not this one (run as
    `.venv/bin/chat-provisioning`, the venv not activated): a suggestion pasted runs this one."""
    typed = sys.argv[0]
    if Path(typed).name != "chat-provisioning" or os.sep not in typed:
        return "chat-provisioning"
    on_path = shutil.which("chat-provisioning")
    if on_path and Path(on_path).resolve() == Path(typed).resolve():
        return "chat-provisioning"
    return shlex.quote(str(Path(typed).absolute()))  # pasted from anywhere, as --state-dir is


def invoked_as(args: argparse.Namespace) -> str:
    """The tool (program()) with the options that reached this deployment, as written: a
    command the tool suggests then reaches the same one when pasted."""
    words = [program()]
    for name in DEPLOYMENT_OPTIONS:
        value = getattr(args, name)
        if value is None or value is False or value == DEFAULTS.get(name):
            continue
        value = value.resolve() if isinstance(value, Path) else value  # pasted from anywhere
        words += [f"--{name.replace('_', '-')}", *([] if value is True else [shlex.quote(str(value))])]
    return " ".join(words)


def run(args: argparse.Namespace) -> tuple[dict, int]:
    if args.area in plugins():
        return answered(plugins()[args.area].load().run(args.rest, args.state_dir))
    if args.area == "attach-trigger":
        from . import attach_trigger
        result, code = answered(attach_trigger.attach(args.user_pool_id, args.function_arn, args.apply,
                                                      pool_client(args)))
        trigger = result.get("post_confirmation", {})
        pending = code == operations.IN_SYNC and not result["applied"] and trigger["before"] != trigger["after"]
        return result, operations.DRIFT if pending else code  # a dry run's change to make, as a sweep's
    # A file of reviewed proposals is read first: a wrong one is said before any AWS call.
    reviewed = reviewed_proposals(args.apply) if args.area == "import-groups" and args.apply else None
    d = deployment(args)
    if args.area == "user" and args.command == "status":
        return operations.user_status(d, args.who, args.since)
    if args.area == "user":
        return operations.user_sync(d, args.who, progress, wait=not args.no_wait)
    if args.area == "import-groups":
        result, code = operations.import_groups(d, reviewed, progress)
        if args.plan_file and "proposed" in result:
            args.plan_file.write_text(json.dumps(result["proposed"], indent=1, sort_keys=True) + "\n")
            result["plan_file"] = str(args.plan_file)
        return result, code
    if args.area == "executions":
        if not args.arns and not args.since:
            raise ToolError("which executions? name them (ARNs), or give --since a time (e.g. --since 6h)")
        if args.arns and args.since:
            raise ToolError("name the executions or give --since, not both")
        return operations.redrive(d, args.arns, args.since, args.dry_run, progress, wait=not args.no_wait)
    result, code = operations.sweep(d, args.dry_run, args.approve_removals, args.adopt, progress, args.align_rooms)
    if args.plan_file and "fixes" in result:
        args.plan_file.write_text(json.dumps(operations.grouped(result), indent=1, sort_keys=True) + "\n")
        result["plan_file"] = str(args.plan_file)
    return result, code


def answered(result: dict) -> tuple[dict, int]:
    """The exit code every command gives an answer that carries no code of its own (a plugin's,
    attach-trigger's): 1 an error, 3 a failed execution (operations.py)."""
    if isinstance(result, dict) and result.get("status") in FAILED_STATUSES:  # its error is the execution's
        return result, operations.FAILED
    if isinstance(result, dict) and "error" in result:
        return result, operations.ERROR
    return result, operations.IN_SYNC


def reviewed_proposals(path: Path) -> list[dict]:
    """The proposals a person reviewed: `import-groups --plan-file`'s file, as written or cut down."""
    try:
        proposals = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ToolError(f"--apply {path}: not a file of proposals that import-groups --plan-file wrote ({e})") from None
    if not isinstance(proposals, list) or not all(
            isinstance(p, dict) and {"sub", "group"} <= set(p) for p in proposals):
        raise ToolError(f"--apply {path}: expected a list of {{\"sub\", \"group\", ...}}, "
                        "as import-groups --plan-file writes")
    return proposals


def query(text: str) -> jmespath.parser.ParsedResult:
    try:
        return jmespath.compile(text)
    except JMESPathError as e:
        raise argparse.ArgumentTypeError(f"not a JMESPath expression: {text!r} ({e})") from None


def progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def table(value, indent: int = 0) -> str:
    """JSON for people: a mapping as `key: value` lines, a list of mappings as columns."""
    pad, lines = "  " * indent, []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, (dict, list)) and item:
                lines += [f"{pad}{key}:", table(item, indent + 1)]
            else:
                lines.append(f"{pad}{key}: {_cell(item)}")
    elif value and all(isinstance(item, dict) for item in value):
        keys = list(dict.fromkeys(k for item in value for k in item))
        rows = [[_cell(item.get(k)) for k in keys] for item in value]
        widths = [max(len(k), *(len(r[i]) for r in rows)) for i, k in enumerate(keys)]
        lines += [pad + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
                  for row in [keys, *rows]]
    else:
        lines += [f"{pad}- {_cell(item)}" for item in value]
    return "\n".join(lines)


def _cell(value) -> str:
    return "-" if value is None else value if isinstance(value, str) else json.dumps(value, default=str)


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args, args.rest = p.parse_known_args(argv)
    if args.rest and args.area not in plugins():
        p.error(f"unrecognized arguments: {' '.join(args.rest)}")
    try:
        result, code = run(args)
    except ToolError as e:
        result, code = {"error": str(e)}, e.exit_code
    except (ClientError, BotoCoreError) as e:  # AccessDenied, a mistyped ARN, no credentials...
        result, code = {"error": str(e)}, 1
    except NameTaken as e:  # someone started an execution under the name this one was to have
        result, code = {"error": f"{e}: run the command again"}, 1
    if args.query is not None and not (isinstance(result, dict) and "error" in result):
        result = args.query.search(json.loads(json.dumps(result, default=str)))  # as printed
    if args.output == "table":
        print(table(result))
    else:
        print(json.dumps(result, indent=1, default=str))
    return code


if __name__ == "__main__":
    sys.exit(main())
