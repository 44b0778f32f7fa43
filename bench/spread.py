"""The spread of `make bench` over several runs (each in a fresh clone, say): the least, median
and greatest of its main figures, written into docs/benchmarks.md between its markers and
printed. Not a test: it asserts nothing.

    .venv/bin/python bench/spread.py RUN1/bench/results.json RUN2/bench/results.json ...
"""

import json
import statistics
import sys
from pathlib import Path

from stacks.docs import BENCHMARKS, write_sections

FIGURES = ("cold_signup_ratio", "warm_signup_ratio", "cold_signup_seconds", "baseline_cold_seconds",
           "warm_signup_seconds", "baseline_warm_seconds", "cold_import_ratio", "requests_per_signup",
           "requests_per_role_change")


def main(paths: list[str]) -> None:
    if len(paths) < 2:
        sys.exit("usage: bench/spread.py RESULTS.json RESULTS.json... (two runs at least)")
    runs = [json.loads(Path(p).read_text()) for p in paths]
    commits = sorted({run.get("commit", "unrecorded") for run in runs})
    lines = [f"Over {len(runs)} runs of `make bench` at {', '.join(commits)}, each in a fresh clone:", "",
             "| figure | least | median | greatest |", "|---|---|---|---|"]
    for figure in FIGURES:
        values = sorted(run[figure] for run in runs)
        lines.append(f"| `{figure}` | {values[0]} | {statistics.median(values):g} | {values[-1]} |")
    write_sections(BENCHMARKS, {"bench/spread.py": lines})
    print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1:])
