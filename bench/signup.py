"""`make bench`: what a sign-up costs, measured on the local stack in one run, as exact counts
and as ratios against baselines measured in the same run. Prints a table and writes
bench/results.json. Not a test: it asserts nothing.

Baselines: the raw minimum of Synapse requests (the same changes made by raw admin calls,
counted in Synapse's access log like the workflow's); Synapse's own processing time (from its
access log) for the overhead; the same users created and joined by raw admin calls at the
same concurrency for the throughput; `import boto3` for the handlers' cold import. Cold starts:
from the REPORT lines of the local Lambda runtime (one per invocation, Init Duration on a cold one).
Prices: us-east-1 list prices, stated below; check them before relying on the cost."""

import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

import httpx

from chat_provisioning.config import ChatConfig
from chat_provisioning.signup import signup_execution_name
from local_run import env

ROOT = Path(__file__).resolve().parent.parent
STEP_FUNCTIONS_PER_TRANSITION = 0.025 / 1000  # Standard workflows
LAMBDA_PER_REQUEST = 0.20 / 1_000_000
LAMBDA_PER_GB_SECOND_ARM = 0.0000133334
LAMBDA_MEMORY_GB = 0.25
DYNAMODB_PER_WRITE = 0.625 / 1_000_000  # on-demand write request unit


def seconds(d) -> float:
    return (d["stopDate"] - d["startDate"]).total_seconds()


def cold_import(module: str, runs: int = 5) -> float:
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    return statistics.median(float(subprocess.run([sys.executable, "-c", code], capture_output=True,
                                                  text=True, check=True).stdout) for _ in range(runs))


def heaviest_imports(module: str, top: int = 3) -> list[str]:
    err = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"],
                         capture_output=True, text=True).stderr
    rows = [line.split("|") for line in err.splitlines() if line.startswith("import time:") and "|" in line]
    timed = [(int(r[1]), r[2].strip()) for r in rows if r[1].strip().isdigit()]
    return [f"{name} {us / 1000:.0f} ms" for us, name in sorted(timed, reverse=True)
            if "." not in name][:top]


def lambda_reports(log_dir: Path) -> tuple[int, list[float]]:
    """Invocations, and the init durations (ms) of the cold ones, from the REPORT lines the
    local Lambda runtime writes as Lambda does."""
    reports = [line for log in log_dir.glob("*.log") for line in log.read_text().splitlines()
               if line.startswith("REPORT ")]
    return len(reports), [float(line.split("Init Duration: ")[1].split(" ms")[0])
                          for line in reports if "Init Duration: " in line]


def main() -> None:
    state_dir = ROOT / ".local" / "bench-signup"
    with env.running(state_dir, ChatConfig.from_cdk_json(str(ROOT / "cdk.json"))) as local:

        def since(start: int) -> tuple[int, float]:
            """Requests Synapse served since the `start`th, and its processing seconds for them."""
            new = local.inspector.synapse_requests()[start:]
            return len(new), sum(t for _, t in new)

        sfn = local.aws["stepfunctions"]

        # Sequential sign-ups of plain mobile users: requests, time split, transitions.
        plain, splits, transitions, invocations, lambda_seconds, writes = [], [], [], [], [], []
        for _ in range(10):
            start = len(local.inspector.synapse_requests())
            signed_up = local.cognito.signup(None, [], None)
            arn = signed_up["execution_arn"]
            writes.append(len(local.audit.trail(signed_up["sub"])))  # DynamoDB writes: its audit items
            requests, synapse_seconds = since(start)
            d = sfn.describe_execution(executionArn=arn)
            history = local.inspector.history(arn)
            plain.append(requests)
            splits.append((seconds(d) - synapse_seconds, synapse_seconds))
            transitions.append(sum(1 for e in history if "stateEnteredEventDetails" in e))
            invocations.append(1 + sum(1 for e in history if e["type"] == "LambdaFunctionScheduled"))
            scheduled = {e["id"]: e["timestamp"] for e in history if e["type"] == "LambdaFunctionScheduled"}
            lambda_seconds.append(sum((e["timestamp"] - scheduled[e["previousEventId"] - 1]).total_seconds()
                                      for e in history if e["type"] == "LambdaFunctionSucceeded"
                                      and e["previousEventId"] - 1 in scheduled))

        # Staff sign-ups, and role changes (analysts promoted to staff), through the workflow.
        staff, promoted = [], []
        for _ in range(5):
            start = len(local.inspector.synapse_requests())
            local.cognito.signup(None, ["staff"], None)
            staff.append(since(start)[0])
            sub = str(uuid.uuid4())
            local.cognito.signup(sub, ["analysts"], None)
            start = len(local.inspector.synapse_requests())
            assert local.cognito.change(sub, "AdminAddUserToGroup", "staff")["status"] == "SUCCEEDED"
            promoted.append(since(start)[0])

        # The same by raw admin calls (one PUT makes the user, as the old trigger did; the
        # adapter's joins and levels with no checks, no reads of its own and no lease): what no
        # design can go below. A power-levels event is replaced whole, so a level costs its
        # read and its write.
        rooms = {k: r.room_id for k, r in local.config.rooms.items()}
        staff_level = local.config.roles["staff"][0].power_level

        admin = httpx.Client(base_url=local.state.synapse_url, headers={"Authorization": f"Bearer {local.token}"})

        def raw_signup(groups: list[str]) -> str:
            sub = str(uuid.uuid4())
            user = local.user_id(sub)
            admin.put(f"/_synapse/admin/v2/users/{quote(user, safe='')}", json={
                "external_ids": [{"auth_provider": local.config.auth_provider, "external_id": sub}]}).raise_for_status()
            for room in ["red_room", *groups]:
                local.synapse.join(rooms[room], user)
            if "staff" in groups:
                local.synapse.set_power_levels(rooms["staff"], {user: staff_level})
            return user

        def raw_promotion(user: str) -> None:
            local.synapse.join(rooms["staff"], user)
            local.synapse.set_power_levels(rooms["staff"], {user: staff_level})

        def counted(change, *args) -> int:
            start = len(local.inspector.synapse_requests())
            change(*args)
            return since(start)[0]

        raw = {"signup": counted(raw_signup, []), "staff_signup": counted(raw_signup, ["staff"]),
               "role_change": counted(raw_promotion, raw_signup(["analysts"]))}

        # Throughput: N users confirm at once (Cognito invokes each trigger), timed from the
        # triggers to the last execution's end, against raw admin calls at the same concurrency.
        # The users are put in the local pool first: that is Cognito's work, not the workflow's.
        # A first burst, untimed, starts the environments a burst needs (its cold starts are in
        # the counts below); the second is timed, as a warm service would take it.
        n = 20

        def cpu_seconds(pid: int) -> float:  # user + system, from /proc
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

        def burst() -> tuple[float, dict]:
            subs = [str(uuid.uuid4()) for _ in range(n)]
            for sub in subs:
                local.cognito.create_user(sub)
            pids = local.state.pids
            before = {name: cpu_seconds(pid) for name, pid in pids.items()}
            started = time.monotonic()
            with ThreadPoolExecutor(n) as pool:
                list(pool.map(local.cognito.confirm, subs))
            arns = [local.inspector.execution_arn(signup_execution_name(sub)) for sub in subs]
            assert all(local.operator.wait(a, queued=True)["status"] == "SUCCEEDED" for a in arns)
            return n / (time.monotonic() - started), {
                name: round(cpu_seconds(pid) - before[name], 2) for name, pid in pids.items()}
        burst()
        workflow_rate, burst_cpu = burst()

        started = time.monotonic()
        with ThreadPoolExecutor(n) as pool:
            list(pool.map(lambda _: raw_signup([]), range(n)))
        raw_rate = n / (time.monotonic() - started)
        invoked, inits = lambda_reports(local.state.state_dir / "lambda")

    boto3_import = cold_import("boto3")
    imports = {m: cold_import(m) for m in ("chat_provisioning.signup", "chat_provisioning.steps",
                                           "chat_provisioning.triggers")}
    handler_import = max(imports.values())  # the slowest handler module
    # The sign-up trigger's module, on Cognito's 5 s clock: target at most 1.5 x `import boto3`.
    signup_import = imports["chat_provisioning.signup"]
    overhead, synapse_time = (statistics.mean(x) for x in zip(*splits))
    per_signup_lambda_s = statistics.mean(lambda_seconds)
    cost = 1000 * (statistics.mean(transitions) * STEP_FUNCTIONS_PER_TRANSITION
                   + statistics.mean(invocations) * LAMBDA_PER_REQUEST
                   + per_signup_lambda_s * LAMBDA_MEMORY_GB * LAMBDA_PER_GB_SECOND_ARM
                   + statistics.mean(writes) * DYNAMODB_PER_WRITE)
    results = {
        "requests_per_signup": statistics.mean(plain), "raw_minimum_per_signup": raw["signup"],
        "requests_per_staff_signup": statistics.mean(staff), "raw_minimum_per_staff_signup": raw["staff_signup"],
        "requests_per_role_change": statistics.mean(promoted), "raw_minimum_per_role_change": raw["role_change"],
        "overhead_ratio": round(overhead / synapse_time, 2),
        "signup_seconds": round(overhead + synapse_time, 3), "synapse_seconds": round(synapse_time, 3),
        "throughput_ratio": round(workflow_rate / raw_rate, 3),
        "workflow_signups_per_second": round(workflow_rate, 2), "raw_signups_per_second": round(raw_rate, 2),
        # CPU seconds in the timed burst: moto (the emulated AWS, not the functions) and Synapse
        "burst_cpu_seconds": burst_cpu,
        "lambda_invocations": invoked, "cold_starts": len(inits),
        "cold_start_share": round(len(inits) / invoked, 3),
        "cold_start_init_ms_median": round(statistics.median(inits)),
        "cold_start_init_ms_max": round(max(inits)),
        "transitions_per_signup": statistics.mean(transitions),
        "lambda_invocations_per_signup": statistics.mean(invocations),
        "aws_cost_per_1000_signups_usd": round(cost, 4),
        "signup_trigger_cold_import_ratio": round(signup_import / boto3_import, 2),
        "cold_import_ratio": round(handler_import / boto3_import, 2),
        "cold_import_seconds": round(handler_import, 3), "boto3_import_seconds": round(boto3_import, 3),
        "cold_import_ratio_by_module": {m: round(t / boto3_import, 2) for m, t in imports.items()},
        "cold_import_heaviest": heaviest_imports("chat_provisioning.steps"),
    }
    (ROOT / "bench" / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    width = max(map(len, results))
    for key, value in results.items():
        print(f"{key:<{width}}  {value}")


if __name__ == "__main__":
    main()
