"""What a new user waits for: from the confirmation (Cognito invokes PostConfirmation) to their
membership of The Red Room, with every execution environment cold (the first sign-up after a
quiet hour) and warm, against the baseline measured in the same run: the one Lambda this
project replaced (bench/old_provisioner.py), cold and then warm, in the same local runtime.

Each figure is the median of ROUNDS sign-ups. The chain is read from the REPORT lines each
function writes as Lambda does (its init and duration) and from the execution's history (the
states on the path and the functions that served them). `seconds` is the functions' own time on
that path, their inits and durations, with none of the time between them: here the emulator's
(moto's Step Functions, one Python process, is far slower than AWS), on AWS the start, each
Task's invocation and the transitions, which the old trigger did not have; so a ratio is a lower
bound of AWS's. The durations include the emulated AWS calls, moto's speed, not AWS's. Every
local environment runs at a full CPU: what a function of 1,769 MB or more gets on AWS."""

import json
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from chat_provisioning.handlers.signup import signup_execution_name
from local_run.aws_events import REGION, post_confirmation_event
from local_run.lambda_runtime import FunctionConfig, LambdaService, number, reports

ROUNDS = 5
PATH_END = "JoinRooms"  # the state whose end puts a new user in The Red Room
BASELINE = Path(__file__).resolve().parent


def new_reports(log: Path, offset: int) -> list[tuple[float, float]]:
    """(init ms, duration ms) of each REPORT line written past `offset` (init 0 when warm)."""
    return [(number(r.get("Init Duration", "0 ms")), number(r["Duration"])) for r in reports(log, offset)]


def log_sizes(log_dir: Path) -> dict[Path, int]:
    return {log: log.stat().st_size for log in log_dir.glob("*.log")}


def workflow_signup(local) -> dict:
    """One sign-up through the deployed trigger and workflow: the seconds to The Red Room and
    its chain, function by function."""
    sub = str(uuid.uuid4())
    local.cognito.create_user(sub)  # Cognito's own work, before the confirmation
    log_dir = local.state.state_dir / "lambda"
    before = log_sizes(log_dir)
    started = datetime.now(UTC)
    local.cognito.confirm(sub)
    arn = local.inspector.execution_arn(signup_execution_name(sub))
    assert local.operator.wait(arn, queued=True)["status"] == "SUCCEEDED"
    history = local.inspector.history(arn)
    joined = next(e["timestamp"] for e in history if e["type"] == "TaskStateExited"
                  and e["stateExitedEventDetails"]["name"] == PATH_END)
    # The path: the trigger, then each Task state up to PATH_END with the function it invoked.
    path, state = [("PostConfirmation", local.state.functions["PostConfirmation"])], None
    for e in history:
        if e["type"] == "TaskStateEntered":
            state = e["stateEnteredEventDetails"]["name"]
        elif e["type"] == "LambdaFunctionScheduled":
            path.append((state, e["lambdaFunctionScheduledEventDetails"]["resource"].rsplit(":", 1)[-1]))
        elif e["type"] == "TaskStateExited" and e["stateExitedEventDetails"]["name"] == PATH_END:
            break
    by_function = {fn: new_reports(log_dir / f"{fn}.log", before.get(log_dir / f"{fn}.log", 0)) for _, fn in path}
    chain = []
    for state, fn in path:  # a function's REPORT lines are in the order it served the path
        init, duration = by_function[fn].pop(0)
        chain.append({"state": state, "function": function_name(local, fn), "init_ms": init, "duration_ms": duration,
                      "memory_mb": local.aws["lambda"].get_function_configuration(FunctionName=fn)["MemorySize"]})
    return summed({"local_seconds": (joined - started).total_seconds(), "chain": chain})


def function_name(local, physical: str) -> str:
    return next(name for name, p in local.state.functions.items() if p == physical)


def summed(run: dict) -> dict:
    """`seconds`: the functions' own time on the path, their inits and durations alone
    (`local_seconds` adds the emulator's time between them)."""
    return {"seconds": sum(step["init_ms"] + step["duration_ms"] for step in run["chain"]) / 1000, **run}


class OldProvisioner:
    """The baseline, in a local Lambda service of its own with the role of the function that
    serves ProvisionUser (it may read the bot's token). The old trigger's memory is not known."""

    def __init__(self, local, role: str):
        self.local = local
        self.log_dir = local.state.state_dir / "bench-baseline"
        self.log_dir.mkdir(exist_ok=True)
        control = local.state.state_dir / "control"
        credentials = json.loads((control / "role-credentials.json").read_text())
        self.service = LambdaService(self.log_dir, self.log_dir, local.state.aws_endpoint_url, REGION,
                                     lambda arn: credentials[arn])
        config = local.config
        self.function = FunctionConfig(
            name="OldProvisioner", arn=f"arn:aws:lambda:{REGION}:000000000000:function:OldProvisioner",
            handler="old_provisioner.handler", runtime="python3.14", timeout=5, role=role,
            memory=1769,  # as the stack's path: every local environment has a full CPU anyway
            reserved_concurrency=None, task_root=BASELINE, variables=tuple(sorted({
                "SYNAPSE_URL": config.synapse_url, "TOKEN_SECRET": config.admin_token_secret_name,
                "SERVER_NAME": config.server_name, "AUTH_PROVIDER": config.auth_provider,
                "ROOM_ID": config.rooms["red_room"].room_id}.items())))

    def signup(self, cold: bool) -> dict:
        if cold:
            self.service.stop()  # its idle environment goes: the next invocation starts one
        sub = str(uuid.uuid4())
        username = self.local.cognito.create_user(sub)
        log = self.log_dir / "OldProvisioner.log"
        offset = log.stat().st_size if log.exists() else 0
        event = post_confirmation_event(self.local.state.user_pool_id, username, {"sub": sub})
        started = time.monotonic()
        answer, failed = self.service.invoke(self.function, json.dumps(event).encode())
        seconds = time.monotonic() - started
        if failed:
            raise RuntimeError(f"the baseline failed: {answer.decode()}")
        (init, duration), = new_reports(log, offset)
        return summed({"local_seconds": seconds, "chain": [
            {"state": None, "function": "OldProvisioner", "memory_mb": self.function.memory,
             "init_ms": init, "duration_ms": duration}]})

    def stop(self) -> None:
        self.service.stop()


def median_run(runs: list[dict]) -> dict:
    """The run whose time on the path is the median, with the times of all of them."""
    ranked = sorted(runs, key=lambda r: r["seconds"])
    return {**ranked[len(ranked) // 2], "all_seconds": [round(r["seconds"], 3) for r in runs]}


def measure(local) -> dict:
    warm_up = workflow_signup(local)  # moto's own first-call work is not a cold start of ours
    role = local.state.roles[next(c["function"] for c in warm_up["chain"] if c["state"] == "ProvisionUser")]
    baseline = OldProvisioner(local, role)
    try:
        baseline.signup(cold=False)  # the same for moto's Secrets Manager
        runs: dict[str, list[dict]] = {"cold": [], "warm": [], "baseline_cold": [], "baseline_warm": []}
        for _ in range(ROUNDS):
            local.cold_start()
            runs["cold"].append(workflow_signup(local))
            runs["warm"].append(workflow_signup(local))
            runs["baseline_cold"].append(baseline.signup(cold=True))
            runs["baseline_warm"].append(baseline.signup(cold=False))
    finally:
        baseline.stop()
    return {kind: median_run(r) for kind, r in runs.items()}
