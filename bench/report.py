"""Where the bench scripts publish what they measure, and nowhere else: bench/results.json
(bench/signup.py's figures at its top, which bench/spread.py reads; each other script's under
its own key) and the script's own section of docs/benchmarks.md."""

import json
import subprocess
from pathlib import Path

from stacks.docs import BENCHMARKS, write_sections

RESULTS = Path(__file__).resolve().parent / "results.json"
OWN_KEYS = ("sweep", "suite")  # the scripts that write under a key of their own


def commit() -> str:
    """The checkout's commit, which every figure is measured at."""
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=RESULTS.parent, capture_output=True,
                          text=True).stdout.strip() or "unknown"


def publish(writer: str, lines: list[str], results: dict, key: str | None = None) -> None:
    """`lines` into `writer`'s section of docs/benchmarks.md; `results` into results.json, under
    `key`, or (key None: bench/signup.py) as its top-level figures. Each keeps the others'."""
    write_sections(BENCHMARKS, {writer: lines})  # first: a marker missing writes neither
    old = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    new = {**old, key: results} if key else {**results, **{k: old[k] for k in OWN_KEYS if k in old}}
    RESULTS.write_text(json.dumps(new, indent=1) + "\n")
