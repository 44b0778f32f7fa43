"""`make diagram`: draw statemachines/provision_user.asl.json as a Mermaid flowchart and put it in
README.md between the diagram markers, so the picture cannot drift from the ASL."""

import json
import re
from pathlib import Path

from chat_provisioning import wiring

README = Path(__file__).resolve().parent.parent / "README.md"
BEGIN, END = "<!-- diagram:begin (make diagram) -->", "<!-- diagram:end -->"


def _errors(names: list[str]) -> str:
    lambda_errors = [n for n in names if n.startswith("Lambda.")]
    return "/".join([n for n in names if n not in lambda_errors] + (["Lambda.*"] if lambda_errors else []))


def mermaid(asl: dict) -> str:
    lines = ["flowchart TD", f"    start((start)) --> {asl['StartAt']}"]
    for name, state in asl["States"].items():
        retried = ", ".join(f"{_errors(r['ErrorEquals'])} ×{r['MaxAttempts']}" for r in state.get("Retry", []))
        label = f"{name}<br/><small>retries {retried}</small>" if retried else name
        lines.append(f'    {name}["{label}"]')
        lines.append(f"    {name} --> {state['Next']}" if "Next" in state else f"    {name} --> done((SUCCEEDED))")
        if state["Type"] == "Task":
            lines.append(f"    {name} -. any other error .-> failed{name}[[FAILED at {name}: redrive resumes here]]")
    return "\n".join(lines)


def main() -> None:
    block = f"{BEGIN}\n```mermaid\n{mermaid(json.loads(wiring.ASL_FILE.read_text()))}\n```\n{END}"
    text = README.read_text()
    README.write_text(re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: block, text, flags=re.S))
    print(f"diagram written to {README}")


if __name__ == "__main__":
    main()
