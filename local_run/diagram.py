"""`make diagram`: draw each statemachines/*.asl.json as a Mermaid flowchart and put it in
README.md between its markers, so the pictures cannot drift from the ASL."""

import json
import re
from pathlib import Path

from stacks import wiring

README = Path(__file__).resolve().parent.parent / "README.md"


def markers(machine: str) -> tuple[str, str]:
    return f"<!-- diagram {machine}: begin (make diagram) -->", f"<!-- diagram {machine}: end -->"


def _errors(names: list[str]) -> str:
    lambda_errors = [n for n in names if n.startswith("Lambda.")]
    return "/".join([n for n in names if n not in lambda_errors] + (["Lambda.*"] if lambda_errors else []))


def _condition(choice: dict) -> str:
    if "Or" in choice:
        return " or ".join(_condition(c) for c in choice["Or"])
    ((_, value),) = ((k, v) for k, v in choice.items() if k not in ("Variable", "Next"))
    return f"{choice['Variable'].removeprefix('$.')} = {json.dumps(value).strip(chr(34))}"


def mermaid(asl: dict) -> str:
    lines = ["flowchart TD", f"    start((start)) --> {asl['StartAt']}"]
    for name, state in asl["States"].items():
        if state["Type"] == "Succeed":
            lines.append(f"    {name}((SUCCEEDED))")
            continue
        if state["Type"] == "Map":
            runs = [n for n, s in state["ItemProcessor"]["States"].items() if s["Type"] == "Task"]
            tolerated = state.get("ToleratedFailurePercentage", 0) == 100
            lines.append(f'    {name}[["{name}<br/><small>Distributed Map, one item per user: '
                         f'{" or ".join(runs)}</small>"]]')
            lines.append(f"    {name} --> done((SUCCEEDED))")
            lines.append(f"    {name} -. a failed user .-> " + (
                f"failed{name}[[that user's execution FAILED on its own: redrive it, or sweep again]]"
                if tolerated else f"failed{name}[[FAILED at {name}: redrive reruns the failed items]]"))
            continue
        if state["Type"] == "Choice":
            lines.append(f"    {name}{{{name}}}")
            lines += [f"    {name} -- {_condition(c)} --> {c['Next']}" for c in state["Choices"]]
            lines.append(f"    {name} -- otherwise --> {state['Default']}")
            continue
        retried = ", ".join(f"{_errors(r['ErrorEquals'])} ×{r['MaxAttempts']}" for r in state.get("Retry", []))
        lines.append(f'    {name}["{name}<br/><small>retries {retried}</small>"]')
        lines.append(f"    {name} --> {state['Next']}" if "Next" in state else f"    {name} --> done((SUCCEEDED))")
        lines.append(f"    {name} -. any other error .-> failed{name}[[FAILED at {name}: redrive resumes here]]")
    return "\n".join(lines)


def main() -> None:
    text = README.read_text()
    for machine, path in wiring.MACHINES.items():
        begin, end = markers(machine)
        block = f"{begin}\n```mermaid\n{mermaid(json.loads(path.read_text()))}\n```\n{end}"
        text, found = re.subn(re.escape(begin) + ".*?" + re.escape(end), lambda _: block, text, flags=re.S)
        if not found:
            raise SystemExit(f"README.md has no markers for {machine}: add\n{begin}\n{end}")
    README.write_text(text)
    print(f"diagrams written to {README}")


if __name__ == "__main__":
    main()
