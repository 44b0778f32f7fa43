"""`make bench`: what a sign-up costs and what a new user waits for, measured on the local
stack in one run, as exact counts and as ratios against baselines measured in the same run.
Prints a table and writes bench/results.json and docs/benchmarks.md. Not a test: it asserts
nothing.

Baselines: the one Lambda this project replaced, cold and warm, for the wait from confirmation
to The Red Room (first_signup.py); the raw minimum of Synapse requests (the same changes made by
raw admin calls, counted in Synapse's access log like the workflow's); Synapse's own processing
time (from its access log) for the overhead; `import boto3` for each handler module's cold
import, both in the local Lambda runtime's environment (the asset's packages only). Prices:
us-east-1 list prices, stated below; check them before relying on the cost."""

import os
import statistics
import subprocess
import uuid
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import first_signup  # bench/, first on sys.path as the script's folder
import httpx
from report import commit, publish

from chat_provisioning.domain.config import ChatConfig
from local_run import env
from local_run.lambda_runtime import PYTHON, TASK_ROOT
from stacks import wiring

ROOT = Path(__file__).resolve().parent.parent
STEP_FUNCTIONS_PER_TRANSITION = 0.025 / 1000  # Standard workflows
LAMBDA_PER_REQUEST = 0.20 / 1_000_000
LAMBDA_PER_GB_SECOND_ARM = 0.0000133334
DYNAMODB_PER_WRITE = 0.625 / 1_000_000  # on-demand write request unit
IMPORT_RUNS = 7


def seconds(d) -> float:
    return (d["stopDate"] - d["startDate"]).total_seconds()


def cold_imports(modules: list[str]) -> dict[str, float]:
    """Each module's import in a fresh process of the local Lambda runtime's Python, from the
    task root as Lambda imports a handler: the median of IMPORT_RUNS, taken in turns so that a
    busy moment falls on all of them alike."""
    code = "import sys, time; t = time.perf_counter(); __import__(sys.argv[1]); print(time.perf_counter() - t)"
    times: dict[str, list[float]] = {m: [] for m in modules}
    for _ in range(IMPORT_RUNS):
        for module in modules:
            times[module].append(float(subprocess.run([str(PYTHON), "-c", code, module], cwd=TASK_ROOT,
                                                      capture_output=True, text=True, check=True).stdout))
    return {m: statistics.median(t) for m, t in times.items()}


def heaviest_imports(module: str, top: int = 4) -> list[str]:
    err = subprocess.run([str(PYTHON), "-X", "importtime", "-c", f"import {module}"], cwd=TASK_ROOT,
                         capture_output=True, text=True).stderr
    rows = [line.split("|") for line in err.splitlines() if line.startswith("import time:") and "|" in line]
    timed = [(int(r[1]), r[2].strip()) for r in rows if r[1].strip().isdigit()]
    return [f"{name} {us / 1000:.0f} ms" for us, name in sorted(timed, reverse=True)
            if "." not in name][:top]


def main() -> None:
    state_dir = ROOT / ".local" / "bench-signup"
    with env.running(state_dir, ChatConfig.from_cdk_json(str(ROOT / "cdk.json"))) as local:

        def since(start: int) -> tuple[int, float]:
            """Requests Synapse served since the `start`th, and its processing seconds for them."""
            new = local.inspector.synapse_requests()[start:]
            return len(new), sum(t for _, t in new)

        sfn = local.aws["stepfunctions"]

        # Sequential sign-ups of plain mobile users: requests, time split, transitions.
        plain, splits, transitions, invocations, gb_seconds, writes = [], [], [], [], [], []
        memory_gb = {c["FunctionArn"]: c["MemorySize"] / 1024
                     for c in local.aws["lambda"].list_functions()["Functions"]}
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
            scheduled = {e["id"]: e for e in history if e["type"] == "LambdaFunctionScheduled"}
            gb_seconds.append(sum(
                (e["timestamp"] - scheduled[e["previousEventId"] - 1]["timestamp"]).total_seconds()
                * memory_gb[scheduled[e["previousEventId"] - 1]["lambdaFunctionScheduledEventDetails"]["resource"]]
                for e in history if e["type"] == "LambdaFunctionSucceeded" and e["previousEventId"] - 1 in scheduled))

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

        # What a new user waits for, cold and warm, against the one Lambda it replaces.
        waits = first_signup.measure(local)

    modules = sorted({handler.rsplit(".", 1)[0] for handler in wiring.FUNCTIONS.values()})
    imports = cold_imports(["boto3", *modules])
    boto3_import = imports.pop("boto3")
    slowest = max(imports, key=imports.__getitem__)
    overhead, synapse_time = (statistics.mean(x) for x in zip(*splits, strict=True))
    cost = 1000 * (statistics.mean(transitions) * STEP_FUNCTIONS_PER_TRANSITION
                   + statistics.mean(invocations) * LAMBDA_PER_REQUEST
                   + statistics.mean(gb_seconds) * LAMBDA_PER_GB_SECOND_ARM
                   + statistics.mean(writes) * DYNAMODB_PER_WRITE)
    cold, warm = waits["cold"], waits["warm"]
    baseline_cold, baseline_warm = waits["baseline_cold"], waits["baseline_warm"]
    results = {
        "commit": commit(),
        "cold_signup_seconds": round(cold["seconds"], 3), "baseline_cold_seconds": round(baseline_cold["seconds"], 3),
        "cold_signup_ratio": round(cold["seconds"] / baseline_cold["seconds"], 2),
        "warm_signup_seconds": round(warm["seconds"], 3), "baseline_warm_seconds": round(baseline_warm["seconds"], 3),
        "warm_signup_ratio": round(warm["seconds"] / baseline_warm["seconds"], 2),
        # with the local emulator's own time between the functions (moto's Step Functions)
        "cold_signup_local_seconds": round(cold["local_seconds"], 3),
        "warm_signup_local_seconds": round(warm["local_seconds"], 3),
        "signup_rounds_seconds": {kind: run["all_seconds"] for kind, run in waits.items()},
        "cold_signup_chain": [{k: round(v) if k.endswith("_ms") else v for k, v in step.items()}
                              for step in cold["chain"]],
        "baseline_cold_chain": [{k: round(v) if k.endswith("_ms") else v for k, v in step.items()}
                                for step in baseline_cold["chain"]],
        "requests_per_signup": statistics.mean(plain), "raw_minimum_per_signup": raw["signup"],
        "requests_per_staff_signup": statistics.mean(staff), "raw_minimum_per_staff_signup": raw["staff_signup"],
        "requests_per_role_change": statistics.mean(promoted), "raw_minimum_per_role_change": raw["role_change"],
        "overhead_ratio": round(overhead / synapse_time, 2),
        "signup_seconds": round(overhead + synapse_time, 3), "synapse_seconds": round(synapse_time, 3),
        "transitions_per_signup": statistics.mean(transitions),
        "lambda_invocations_per_signup": statistics.mean(invocations),
        "aws_cost_per_1000_signups_usd": round(cost, 4),
        "boto3_import_seconds": round(boto3_import, 3),
        "cold_import_ratio": round(imports[slowest] / boto3_import, 2),
        "cold_import_ratio_by_module": {m: round(t / boto3_import, 2) for m, t in imports.items()},
        "cold_import_heaviest": heaviest_imports(slowest),
    }
    publish("bench/signup.py", report(results, local.state.synapse_version), results)
    width = max(map(len, results))
    for key, value in results.items():
        print(f"{key:<{width}}  {value}")




def report(r: dict, synapse_version: str) -> list[str]:
    """This script's section of docs/benchmarks.md, from this run's results."""
    def ms(step: dict) -> str:
        return f"| {step['state'] or '(the whole sign-up)'} | `{step['function']}` | {step['memory_mb']} MB | " \
               f"{step['init_ms'] or '(warm)'} | {step['duration_ms']} |"
    ratios = r["cold_import_ratio_by_module"]
    lines = [
        f"One run of `make bench` at {r['commit']}, {datetime.now(UTC):%Y-%m-%d}, on {os.cpu_count()} "
        f"cores, Synapse {synapse_version}; `bench/results.json` holds every figure.",
        "",
        "**What a new user waits for**: from the confirmation (Cognito invokes `PostConfirmation`) to their",
        "membership of The Red Room, as the functions' own time on the path: their inits and durations",
        "(REPORT lines), with none of the time between them (the emulator's here; on AWS the start, the",
        "invocations and the transitions, which the old trigger did not have: the ratios are lower",
        f"bounds); the median of {len(r['signup_rounds_seconds']['cold'])} sign-ups each.",
        "",
        "| | cold (every environment new) | warm |",
        "|---|---|---|",
        f"| this stack | {r['cold_signup_seconds']:.3f} s | {r['warm_signup_seconds']:.3f} s |",
        f"| the one Lambda it replaced (`bench/old_provisioner.py`) | {r['baseline_cold_seconds']:.3f} s | "
        f"{r['baseline_warm_seconds']:.3f} s |",
        f"| **ratio** | **{r['cold_signup_ratio']}** | **{r['warm_signup_ratio']}** |",
        f"| this stack, with the local emulator's transitions | {r['cold_signup_local_seconds']:.3f} s | "
        f"{r['warm_signup_local_seconds']:.3f} s |",
        "",
        "Every round (s): " + "; ".join(f"{kind} {', '.join(map(str, runs))}"
                                        for kind, runs in r["signup_rounds_seconds"].items()) + ".",
        "",
        "The cold path, step by step (ms; a local environment runs at a full CPU, what 1,769 MB gets on AWS):",
        "",
        "| state | function | memory | init | duration |",
        "|---|---|---|---|---|",
        *map(ms, r["cold_signup_chain"]), *map(ms, r["baseline_cold_chain"]),
        "",
        "**Synapse requests**, counted in Synapse's access log, against the raw minimum (the same changes",
        "by raw admin calls: no checks, no lease; a level is a read and a write even there):",
        "",
        "| | this stack | raw minimum |",
        "|---|---|---|",
        f"| sign-up (plain mobile user) | {r['requests_per_signup']} | {r['raw_minimum_per_signup']} |",
        f"| staff sign-up | {r['requests_per_staff_signup']} | {r['raw_minimum_per_staff_signup']} |",
        f"| role change (analyst promoted to staff) | {r['requests_per_role_change']} | "
        f"{r['raw_minimum_per_role_change']} |",
        "",
        "**Per sign-up**: state transitions and Lambda invocations "
        f"{r['transitions_per_signup']} and {r['lambda_invocations_per_signup']} (the trigger included); "
        f"AWS cost ${r['aws_cost_per_1000_signups_usd']} per 1,000 sign-ups (us-east-1 list prices in the "
        "script); local time from the execution's start to its end "
        f"{r['signup_seconds']} s, of which Synapse's own processing {r['synapse_seconds']} s.",
        "",
        f"**Cold import** of each handler module against `import boto3` ({r['boto3_import_seconds']} s), both in "
        "the local Lambda runtime's environment (the asset's packages only), the median of "
        f"{IMPORT_RUNS}: " + ", ".join(f"`{m}` {ratio}" for m, ratio in ratios.items())
        + f"; heaviest in the slowest: {', '.join(r['cold_import_heaviest'])}.",
    ]
    return lines


if __name__ == "__main__":
    main()
