"""`make demo`: the main job on the embedded default. A real Synapse and the real workflow.
Day one first: a Synapse built as Phenom's is (accounts of the old trigger, a JWT login's, an
SSO-linked one, Staff set to 100 by hand, an Analyst added by hand, a bot Cognito does not
know), taken live by the README's runbook (plan, import the groups, plan again, the adopting
sweep). Then sign-ups across the groups, a duplicated Cognito retry, a password-reset confirmation, the
'Sync chat user' event (and one that carries more than a sub, refused), an outage that fails
an execution and its redrive, a promotion, a deactivation and a re-enable from Cognito, and
the sweep catching up a user no trigger announced; the operator's toolbox (a membership removed
by hand named by `user status` and repaired by `user sync`, the outage's failed run found and
redriven by `executions redrive --since`); then what Synapse holds, read back from Synapse.
Uses the `chat-provisioning` commands; leaves nothing running."""

import json
import shlex
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import get_args

from chat_provisioning.domain.config import ChatConfig
from chat_provisioning.domain.policy import desired_memberships
from chat_provisioning.domain.sweep_plan import REMOVALS, FixKind

from . import synapse_server
from .aws_events import ACCOUNT, REGION
from .state import LocalState

ROOT = Path(__file__).resolve().parent.parent
STATE_DIR = ROOT / ".local" / "demo"
CLI = [str(ROOT / ".venv" / "bin" / "chat-provisioning"), "--state-dir", str(STATE_DIR)]

# Phenom's people as its Synapse has them (chat-services.md): Staff set to 100 by hand, an
# Analyst added by hand; all in Cognito, in no group (nothing made groups of their roles yet).
STAFF = ["Aaron", "Irena", "Logan", "M", "Jonathan"]
ANALYSTS = ["Mark"]
# name, groups: new people who sign up once the stack is live.
PEOPLE = [("Nadia", ["staff"]), ("Ravi", ["analysts"]), ("Eve", ["experiencers"]),
          ("Sam", ["analysts", "experiencers"]), ("Mobile user", [])]
PLANS = ROOT / ".local"  # where the runbook's files (day-one.json...) go
# The README's going-live runbook: the block after this line is what go_live() runs.
RUNBOOK = "**Then, in order**"


def sub_of(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"chat-provisioning-demo/{name}"))


def cli(*args: str, exits: tuple[int, ...] = (0,)) -> dict:
    """A `local` command's answer; its exit code must be one of `exits` (3: a run that failed,
    1: a refusal), or the demo stops."""
    run = subprocess.run(CLI + ["local", *args], capture_output=True, text=True)
    if run.returncode not in exits:
        sys.exit(f"chat-provisioning local {' '.join(args)} exited {run.returncode}:\n{run.stdout}{run.stderr}")
    return json.loads(run.stdout)


def operator(*args: str, shown: bool = True) -> tuple[dict, int]:
    """An operator's command, against the local deployment as against any (--local: its
    endpoint); its answer and exit code. `shown`: the command is printed as typed, then its
    progress lines as they come, then what the caller makes of its answer."""
    if shown:
        say(f"  $ chat-provisioning --local {shlex.join(args)}")
    with subprocess.Popen(CLI + ["--local", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) as run:
        answer: list[str] = []  # read beside the progress: a long answer would fill its pipe
        reader = threading.Thread(target=lambda: answer.append(run.stdout.read()))
        reader.start()
        for line in run.stderr:
            if shown:
                say(f"    {line.rstrip()}")
        reader.join()
    if run.returncode == 1:
        sys.exit(f"chat-provisioning {shlex.join(args)} failed: {answer[0]}")
    return json.loads(answer[0]), run.returncode


def requests_served() -> int:
    return len(synapse_server.requests_served(STATE_DIR / "synapse"))


def raw_minimum(groups: list[str], config: ChatConfig) -> int:
    """Create the user, one join per room, and per level a read and a write of the room's power
    levels (the event is replaced whole): what no design can go below."""
    memberships = desired_memberships(groups, config)
    return 1 + len(memberships) + 2 * sum(1 for m in memberships if m.power_level)


def signup(name: str, groups: list[str], *extra: str, exits: tuple[int, ...] = (0,)) -> tuple[dict, int]:
    before = requests_served()
    args = ["signup", "--sub", sub_of(name), "--name", name, *extra]
    for g in groups:
        args += ["--group", g]
    result = cli(*args, exits=exits)
    return result, requests_served() - before


def say(line: str) -> None:
    print(line, flush=True)


def in_words(counts: dict[str, int]) -> str:
    """{"create": 1, "join": 2} as "create 1, join 2"; none as "none"."""
    return ", ".join(f"{kind} {n}" for kind, n in counts.items()) or "none"


def fixes_by_kind(plan_file: Path) -> str:
    plan = json.loads(plan_file.read_text())
    return ", ".join(f"{k} {len(plan[k])}" for k in get_args(FixKind)) + f"; findings {len(plan['findings'])}"


def runbook() -> list[list[str]]:
    """The `chat-provisioning` commands of the README's going-live runbook, as written there
    (each as its arguments): the demo runs the page itself, so the page cannot drift from
    what works. Its other lines are not the tool's (`npx cdk deploy`, `diff`, a person's step)."""
    block = (ROOT / "README.md").read_text().split(RUNBOOK, 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    return [shlex.split(line.split("  #", 1)[0])[1:] for line in block.splitlines()
            if line.startswith("chat-provisioning ")]


def as_local(args: list[str], env: dict, phenom: ChatConfig) -> list[str]:
    """A runbook command as it runs here: the local pool and its trigger for Phenom's, each
    file under .local/."""
    local = {phenom.user_pool.user_pool_id: env["config"]["user_pool"]["user_pool_id"],
             "<PostConfirmationFunctionArn>": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:"
                                              f"{env['functions']['PostConfirmation']}"}
    return [local.get(a, str(PLANS / a) if a.endswith(".json") else a) for a in args]


def go_live(env: dict, phenom: ChatConfig) -> dict:
    """Phenom's Synapse as it is, then the README's runbook against it (the schedule is off
    here: the local run has none). `env`: the local deployment (`local up`'s answer). Returns
    each step's outcome."""
    local = env["config"]
    say("Day one: Phenom's Synapse as it is, before this stack")
    for name in STAFF + ANALYSTS + ["Pat"]:
        cli("admin-create", "--sub", sub_of(name), "--name", name)  # in Cognito, in no group
    for name in STAFF:
        link = ["--link", f"oidc-google:g-{sub_of(name)[:8]}"] if name == "Jonathan" else []
        cli("account-made-elsewhere", "--sub", sub_of(name), "--room", "red_room", "--room", "staff",
            "--level", "staff=100", *link)
    cli("account-made-elsewhere", "--sub", sub_of("Mark"), "--room", "red_room", "--room", "analysts")
    cli("login", "--sub", sub_of("Pat"))  # the mobile app's first JWT login made Pat's account
    cli("account-made-elsewhere", "--user-id", f"@other-bot:{local['server_name']}", "--room", "red_room")
    say("  Staff at 100 by hand: " + ", ".join(STAFF) + " (Jonathan also linked to Google SSO); Mark in "
        "Analysts by hand; Pat made by a JWT login; @other-bot, whom Cognito does not know")
    say("  The README's runbook, line by line (Going live):")
    outcomes, names = {}, {r["room_id"]: r["name"] for r in local["rooms"].values()}
    last_plan = None
    for args in (as_local(args, env, phenom) for args in runbook()):
        result, code = operator(*args)
        say(f"    exit {code}")
        command, plan_file = args[0], args[args.index("--plan-file") + 1] if "--plan-file" in args else None
        if command == "attach-trigger":
            say(f"    PostConfirmation: {result['post_confirmation']['before'] or 'none'} -> this stack's; "
                f"applied: {result['applied']}, nothing else changed: {not result['changed_besides_the_trigger']}")
            outcomes["Day one: trigger attached"] = "SUCCEEDED" if code == 0 else result
        elif command == "sweep" and "--dry-run" in args:
            say(f"    {fixes_by_kind(Path(plan_file))}")
            for room in result["thresholds"]:
                say(f"    to align: {names.get(room['room'], room['room'])}: {len(room['lower'])} thresholds "
                    f"above {room['level']}, "
                    f"e.g. changing levels needs {room['lower'].get('events.m.room.power_levels', '-')}")
            outcomes[f"Day one: plan {Path(plan_file).name}"] = result["status"]
            last_plan = Path(plan_file)
        elif command == "import-groups" and plan_file:
            say("    proposes: " + ", ".join(f"{p['group']} ({p['detail']})" for p in result["proposed"]))
            proposed_all = len(result["proposed"]) == len(STAFF + ANALYSTS)
            outcomes["Day one: import proposed"] = "SUCCEEDED" if proposed_all else result
        elif command == "import-groups":
            say(f"    added {len(result['added'])}, refused {len(result['refused'])}")
            outcomes["Day one: import applied"] = "SUCCEEDED" if code == 0 else result
        elif command == "sweep":
            runs = [r["status"] for r in result["workflows"].values()]
            say(f"    {result['outcome']}: {len(runs)} users' workflows, {', '.join(sorted(set(runs)))}; "
                f"rooms aligned: {', '.join(names.get(r, r) for r in result['aligned']) or 'none'}; "
                f"findings left for a person: {in_words(result['summary']['findings'])}")
            outcomes["Day one: go live"] = "SUCCEEDED" if set(runs) == {"SUCCEEDED"} and result["aligned"] else result
        else:
            sys.exit(f"demo: the README's runbook has a command the demo does not know how to read: {shlex.join(args)}")
    level = local["roles"]["staff"][0]["power_level"]
    for name in STAFF:  # the bot can never lower a peer: each does it, as anyone may in a client
        cli("lower-own-level", "--sub", sub_of(name), "--room", "staff", "--level", str(level))
    say(f"  Staff set to 100 by hand lower their own level to {level} (any client); the rooms' thresholds "
        f"now ask at most {level}: they keep every admin power, the bot alone above them")
    if last_plan is None:
        sys.exit(f"demo: the README's runbook ({RUNBOOK}) has no sweep --dry-run --plan-file")
    after = json.loads(last_plan.read_text())  # the runbook's plan after the import
    removals = sum(len(after[k]) for k in REMOVALS)
    say(f"  after the import, the plan ({last_plan.name}) removes nothing: {removals} demotions, leaves "
        f"or deactivations")
    outcomes["Day one: nothing removed"] = "SUCCEEDED" if removals == 0 else after
    jonathan, _ = operator("user", "status", sub_of("Jonathan"))
    links = cli("links", "--sub", sub_of("Jonathan"))["external_ids"]
    say(f"  Jonathan: {jonathan['verdict']}; his links in Synapse: {', '.join(sorted(links))}\n")
    jonathan = sub_of("Jonathan")
    kept = f"oidc-google:g-{jonathan[:8]}" in links and f"{local['auth_provider']}:{jonathan}" in links
    outcomes["Day one: SSO link kept"] = "SUCCEEDED" if kept else links
    return outcomes


def main() -> None:
    cli("down")  # a previous run that was interrupted
    try:
        cli("up")
        env = LocalState.load(STATE_DIR).model_dump(mode="json")  # all `up` made, config included
        say(f"Synapse {env['synapse_url']} (room version 10, registration off), moto {env['aws_endpoint_url']}")
        say(f"state machine {env['sync_state_machine_arn']}")
        say(f"(the demo's deployment is its own: each command below also has --state-dir "
            f"{STATE_DIR.relative_to(ROOT)})\n")
        config = ChatConfig.from_cdk_json(str(ROOT / "cdk.json"))
        outcomes, cost = go_live(env, config), {}
        for name, groups in PEOPLE:
            result, requests = signup(name, groups)
            outcomes[name], cost[name] = result["status"], (requests, raw_minimum(groups, config))
            say(f"sign-up {name:<12} {','.join(groups) or '-':<22} {result['status']:<10} "
                f"{requests} Synapse requests")

        again, requests = signup("Ravi", ["analysts"])
        say(f"Cognito retries Ravi's trigger: {again['status']}, same execution "
            f"({again['execution_arn'].rsplit(':', 1)[-1]}), {requests} Synapse requests")
        reset = cli("signup", "--sub", sub_of("Eve"), "--trigger-source",
                    "PostConfirmation_ConfirmForgotPassword")
        say("Eve confirms a password reset: " + ("a workflow started" if reset["started"] else
                                                  "no workflow starts (only a sign-up's confirmation does)"))

        cli("admin-create", "--sub", sub_of("Dana"), "--group", "analysts", "--name", "Dana")
        event = cli("event", "--sub", sub_of("Dana"))
        outcomes["Dana"] = event["status"]
        say(f"An admin creates Dana in Cognito (analysts); the 'Sync chat user' event names her sub "
            f"only: {event['status']}, groups read from Cognito")
        forged = cli("event", "--sub", sub_of("Mobile user"), "--detail",
                     json.dumps({"sub": sub_of("Mobile user"), "groups": ["staff"]}), exits=(1,))
        say(f"The same event with groups in it: refused ({forged['error']}), kept in the events DLQ")

        say("\nOutage: Synapse stops; Olive (staff) signs up")
        cli("stop-synapse")
        failed, _ = signup("Olive", ["staff"], exits=(3,))
        say(f"  {failed['status']} at {failed.get('failed_state')} with {failed.get('error')} "
            f"after Step Functions' retries")
        cli("start-synapse")
        say("  Synapse is back (the operator redrives Olive's run below)\n")

        say("Role changes in Cognito, delivered as CloudTrail records through the deployed rule:")
        before = requests_served()
        promoted = cli("group", "add", "--sub", sub_of("Mark"), "--group", "staff")
        say(f"  Mark added to staff: {promoted['status']}, {requests_served() - before} Synapse requests")
        before = requests_served()
        disabled = cli("disable", "--sub", sub_of("Eve"))
        say(f"  Eve disabled: {disabled['status']}, {requests_served() - before} Synapse requests")
        enabled = cli("enable", "--sub", sub_of("Eve"))
        say(f"  Eve enabled again: {enabled['status']} (this workflow's deactivation is undone; "
            f"a Matrix admin's never is)")
        gone = cli("disable", "--sub", sub_of("Sam"))
        say(f"  Sam disabled: {gone['status']}")
        outcomes.update({"Mark (promotion)": promoted["status"], "Eve (deactivation)": disabled["status"],
                         "Eve (enable)": enabled["status"], "Sam (deactivation)": gone["status"]})

        say("\nThe operator's toolbox (the same commands against a deployed stack: --stack, --region):")
        cli("kick", "--sub", sub_of("Aaron"), "--room", "red_room")
        say("  A Matrix admin removes Aaron from The Red Room by hand; no event reports it.")
        status, code = operator("user", "status", sub_of("Aaron"))
        say(f"    exit {code}: {status['verdict']}")
        outcomes["Aaron (drift named)"] = "SUCCEEDED" if code == 2 and "join The Red Room" in status["verdict"] \
            else status["verdict"]
        synced, code = operator("user", "sync", sub_of("Aaron"))
        say(f"    exit {code}: {synced['status']}")
        status, after = operator("user", "status", sub_of("Aaron"))
        say(f"    exit {after}: {status['verdict']}")
        outcomes["Aaron (repair)"] = synced["status"] if after == 0 else f"exit {after}"
        listed, code = operator("executions", "redrive", "--since", "30m", "--dry-run")
        for e in listed["executions"]:
            say(f"    {e['name']} {e['status']} ({e['error']}): resumes at {e['resumes_at']}")
        redriven, code = operator("executions", "redrive", "--since", "30m")
        for e in redriven["executions"]:
            say(f"    exit {code}: {e['name']} {e['status']} (redrive {e.get('redrive_count')})")
        outcomes["Olive"] = next((e["status"] for e in redriven["executions"]
                                  if e["name"] == f"signup-{sub_of('Olive')}"), "not redriven")

        cli("admin-create", "--sub", sub_of("Lena"), "--group", "staff", "--name", "Lena")
        cli("admin-create", "--sub", sub_of("Nobody"), "--unconfirmed")
        say("\nThe daily sweep, run now (Lena, admin-created, gets her account; a user who never confirmed "
            "gets none):")
        sweep, code = operator("sweep")
        outcomes["Sweep"] = sweep["status"]
        say(f"    exit {code}: {sweep['outcome']}; fixes: {in_words(sweep['summary']['fixes'])}; "
            f"findings: {in_words(sweep['summary']['findings'])}; workflows: "
            f"{', '.join(r['status'] for r in sweep['workflows'].values()) or 'none'}")

        say("\nWhat Synapse holds (read back from Synapse's admin API, not from our records):")
        say(f"{'user':<12} {'rooms (power level)':<50} {'audit items':>11} {'sign-up requests / raw minimum':>31}")
        extra = []
        for name in STAFF + ANALYSTS + ["Pat"] + [n for n, _ in PEOPLE] + ["Dana", "Olive", "Lena"]:
            status, _ = operator("user", "status", sub_of(name), shown=False)
            rooms = ", ".join(f"{r['name']} ({r['power_level']})" for r in status["matrix"]["rooms"]
                              if r["joined"]) or "- (deactivated)"
            measured = "{} / {}".format(*cost[name]) if name in cost else "-"
            if name in cost:
                extra.append(cost[name][0] - cost[name][1])
            say(f"{name:<12} {rooms:<50} {len(status['audit']):>11} {measured:>31}")
        above = f"{min(extra)}" if min(extra) == max(extra) else f"{min(extra)} to {max(extra)}"
        say(f"\nSynapse requests per sign-up above the raw minimum: {above} "
            f"(the read of the user, whose other links the write keeps; per level set, the read-back "
            f"that proves the write stuck; without one, the read of Staff's levels, where a level set "
            f"for the account before it existed would be taken back)")

        say("\nOlive's audit trail (the failed attempt, then the redrive's actions, one execution):")
        for item in operator("user", "status", sub_of("Olive"))[0]["audit"]:
            say(f"  {item['time']}  {item.get('step', ''):<14} {item['action']:<16} "
                f"{item['outcome']:<15} {item.get('error', '')}")

        login = cli("login", "--sub", sub_of("Aaron"))
        say("\nAaron logs in as the mobile app does (Cognito-shaped JWT, org.matrix.login.jwt):")
        say(f"  {login['user_id']} sees: {', '.join(r['name'] for r in login['rooms'])}")
        scan = cli("scan")
        say(f"\nScanned all the stack wrote ({scan['bytes_scanned']:,} bytes of logs, executions, "
            f"histories, audit items, plans): the bot token (a canary) {scan['bot_token']} times, "
            f"emails {scan['emails']}")
        calls = cli("calls")
        say(f"\nAWS calls the functions made: {len(calls['calls'])} kinds, each checked against its "
            f"function's deployed role (action and resource): not allowed {len(calls['not_allowed'])}, "
            f"not declared in stacks/calls.py {len(calls['not_declared'])}")
        bad = [n for n, s in outcomes.items() if s != "SUCCEEDED"]
        if bad:
            sys.exit(f"demo: not every sign-up ended SUCCEEDED: {bad}")
        if calls["not_allowed"] or calls["not_declared"]:
            sys.exit(f"demo: AWS calls not allowed or not declared: {calls}")
    finally:
        stopped = cli("down")
        say(f"\nstopped: {', '.join(stopped['stopped']) or 'nothing'}")


if __name__ == "__main__":
    main()
