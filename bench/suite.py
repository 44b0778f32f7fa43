"""How long `make test` takes in a fresh clone of this checkout's HEAD, on this machine: quiet,
then busy (two CPU-bound processes beside it, as on a runner shared with other jobs). The clone
installs everything first, as CI's does. Writes its section of docs/benchmarks.md and
results.json's "suite", and prints them. Not a test: it asserts nothing.

    .venv/bin/python bench/suite.py        # two installs and two suites: about 15 minutes
"""

import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from report import commit, publish  # bench/, first on sys.path as the script's folder

ROOT = Path(__file__).resolve().parent.parent
BUSY = 2  # CPU-bound processes beside the busy run


def make_test(burners: int) -> dict:
    """`make test` in a fresh clone, with `burners` CPU-bound processes running beside it."""
    with tempfile.TemporaryDirectory() as tmp:
        clone = Path(tmp) / "clone"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        beside = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(burners)]
        try:
            started = time.monotonic()
            done = subprocess.run(["make", "test"], cwd=clone, capture_output=True, text=True)
            seconds = time.monotonic() - started
        finally:
            for process in beside:
                process.kill()
                process.wait()
    # pytest's last line: "==== 413 passed, 1 failed in 220.13s (0:03:40) ===="
    summary, pytest_seconds = (re.findall(r"^=+ (.+) in ([0-9.]+)s", done.stdout, re.M) or [("", None)])[-1]
    counts = {kind: int(n) for n, kind in re.findall(r"(\d+) (passed|failed|error|skipped)", summary)}
    return {"exit_code": done.returncode, "burners": burners, **counts,
            "pytest_seconds": pytest_seconds and float(pytest_seconds), "make_test_seconds": round(seconds, 1)}


def main() -> None:
    runs = {"quiet": make_test(0), "busy": make_test(BUSY)}
    results = {"commit": commit(), "cores": os.cpu_count(), **runs}
    lines = [f"`make test` in a fresh clone at {results['commit']}, {datetime.now(UTC):%Y-%m-%d}, on "
             f"{os.cpu_count()} cores, installing first (busy: {BUSY} CPU-bound processes beside it):", "",
             "| run | exit | passed | failed | errors | pytest | `make test` in all |", "|---|---|---|---|---|---|---|"]
    for name, r in runs.items():
        lines.append(f"| {name} | {r['exit_code']} | {r.get('passed', 0)} | {r.get('failed', 0)} | "
                     f"{r.get('error', 0)} | {r['pytest_seconds']} s | {r['make_test_seconds']} s |")
    publish("bench/suite.py", lines, results, key="suite")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
