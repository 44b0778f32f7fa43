"""Benchmark the reconciliation sweep on the local stack (not a test: it prints numbers).

Seeds N users in step (Cognito in moto, Matrix in the real Synapse, each in The Red Room),
then measures a no-drift sweep (Synapse requests, wall time) and a 1% drift sweep (users
kicked from The Red Room behind the events' back): Synapse requests per fixed user against
the raw minimum (one join each). Requests are counted in Synapse's own access log.

    .venv/bin/python bench/sweep.py --users 10000     # about 30-40 min of seeding here
"""

import argparse
import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from report import commit, publish  # bench/, first on sys.path as the script's folder

from local_run import env
from local_run.lambda_runtime import number, reports

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--drift", type=float, default=0.01)
    args = parser.parse_args()
    from chat_provisioning.domain.config import ChatConfig

    state_dir = ROOT / ".local" / "bench"
    with env.running(state_dir, ChatConfig.from_cdk_json(str(ROOT / "cdk.json"))) as local:
        def requests() -> int:
            return len(local.inspector.synapse_requests())

        red = local.config.rooms["red_room"].room_id
        subs = [str(uuid.uuid4()) for _ in range(args.users)]

        def seed(sub: str) -> None:
            local.cognito.create_user(sub)
            local.synapse.upsert_user(local.user_id(sub), None, external_id=sub, auth_provider="cognito")
            local.synapse.join(red, local.user_id(sub))

        started = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(seed, subs))
        print(f"seeded {args.users} users in {time.monotonic() - started:.0f} s")

        before, started = requests(), time.monotonic()
        clean = local.operator.sweep(dry_run=False)
        plan = plan_seconds(local, clean["execution_arn"])
        no_drift = {"synapse_requests": requests() - before, "seconds": round(time.monotonic() - started, 2),
                    "users_to_fix": clean["summary"]["users_to_fix"], "plan_seconds": plan,
                    # what sizes PlanSweep's timeout (docs/how-it-works.md, "Time budgets")
                    "plan_seconds_per_10000_users": round(plan * 10000 / args.users, 1),
                    "plan_max_memory_mb": max_memory_mb(local, "PlanSweep")}

        drifted = subs[: max(1, int(args.users * args.drift))]
        for sub in drifted:
            local.synapse.kick(red, local.user_id(sub), "benchmark drift")
        before, started = requests(), time.monotonic()
        fixed = local.operator.sweep(dry_run=False)
        spent = requests() - before
        plan_cost = no_drift["synapse_requests"]
        results = {
            "commit": commit(), "users": args.users,
            "no_drift_sweep": no_drift,
            "drift_sweep": {
                "drifted_users": len(drifted), "fixed": sum(r["status"] == "SUCCEEDED"
                                                           for r in fixed.get("executions", {}).values()),
                "synapse_requests": spent, "seconds": round(time.monotonic() - started, 2),
                "requests_per_fixed_user": round((spent - plan_cost) / len(drifted), 2),
                "raw_minimum_per_fixed_user": 1},
        }
        print(json.dumps(results, indent=1))
        publish("bench/sweep.py", report(results), results, key="sweep")


def report(r: dict) -> list[str]:
    """This script's section of docs/benchmarks.md, from this run's results."""
    clean, drift = r["no_drift_sweep"], r["drift_sweep"]
    return [f"One run of `bench/sweep.py --users {r['users']}` at {r['commit']}, {datetime.now(UTC):%Y-%m-%d}:", "",
            "| sweep | Synapse requests | seconds | per fixed user (raw minimum) |", "|---|---|---|---|",
            f"| no drift | {clean['synapse_requests']} | {clean['seconds']} | |",
            f"| {drift['drifted_users']} users drifted, {drift['fixed']} fixed | {drift['synapse_requests']} | "
            f"{drift['seconds']} | {drift['requests_per_fixed_user']} ({drift['raw_minimum_per_fixed_user']}) |", "",
            f"`PlanSweep` planned them in {clean['plan_seconds']} s ({clean['plan_seconds_per_10000_users']} s per "
            f"10,000 users) at {clean['plan_max_memory_mb']} MB at most."]


def max_memory_mb(local, function: str) -> int:
    """The largest Max Memory Used in the function's REPORT lines (the local Lambda runtime's)."""
    log = local.state.state_dir / "lambda" / f"{local.state.functions[function]}.log"
    return max(int(number(r["Max Memory Used"])) for r in reports(log))


def plan_seconds(local, sweep_arn: str) -> float:
    """How long the PlanSweep Task ran: from its state's entry to its exit in the history."""
    times = {e["type"]: e["timestamp"] for e in local.inspector.history(sweep_arn)
             if e.get("stateEnteredEventDetails", e.get("stateExitedEventDetails", {})).get("name") == "PlanSweep"}
    return round((times["TaskStateExited"] - times["TaskStateEntered"]).total_seconds(), 2)


if __name__ == "__main__":
    main()
