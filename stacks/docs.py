"""`make docs`: the pages' sections that are drawn from what the stack deploys, so that they
cannot drift from it: in docs/how-it-works.md, each state machine's picture (from
statemachines/), the retry policy's legend (retries.py) and what each step does (the steps'
docstrings); in the README, the least-privilege table (calls.py) and the defaults of the config
keys the shipped cdk.json leaves out (config.py's). tests/unit/test_docs.py
fails while a page differs from what this would write."""

import inspect
import json
from pathlib import Path

from chat_provisioning.domain.config import CONTEXT_KEY, ChatConfig
from chat_provisioning.handlers.steps import SYNC_USER_STEPS
from stacks import calls, retries, wiring

README = Path(__file__).resolve().parent.parent / "README.md"
HOW_IT_WORKS = README.parent / "docs" / "how-it-works.md"
CDK_JSON = README.parent / "cdk.json"
BENCHMARKS = README.parent / "docs" / "benchmarks.md"  # the bench scripts' page


def write_sections(page: Path, sections: dict[str, list[str]]) -> None:
    """Replace what lies between each writer's two markers on `page` with its lines; a marker
    missing leaves the page as it was."""
    text = page.read_text()
    for writer, lines in sections.items():
        begin, end = markers(writer)
        before, _, rest = text.partition(begin)
        if end not in rest:
            raise SystemExit(f"{page.name} has no markers for {writer}: add\n{begin}\n{end}")
        text = before + "\n".join([begin, *lines, end]) + rest.split(end, 1)[1]
    page.write_text(text)


def markers(writer: str) -> tuple[str, str]:
    return f"<!-- written by {writer}: begin -->", f"<!-- written by {writer}: end -->"


def _condition(choice: dict) -> str:
    if "Or" in choice:
        return " or ".join(_condition(c) for c in choice["Or"])
    ((_, value),) = ((k, v) for k, v in choice.items() if k not in ("Variable", "Next"))
    return f"{choice['Variable'].removeprefix('$.')} = {json.dumps(value).strip(chr(34))}"


def mermaid(asl: dict) -> str:
    """The machine as a flowchart. A Lambda Task is a box; its retries are the legend's
    (retry_legend): every Task has the one policy, which an infra test holds."""
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
        lines.append(f"    {name}[{name}]")
        lines.append(f"    {name} --> {state['Next']}" if "Next" in state else f"    {name} --> done((SUCCEEDED))")
        lines.append(f"    {name} -. retries spent, or any other error .-> "
                     f"failed{name}[[FAILED at {name}: redrive resumes here]]")
    return "\n".join(lines)


def diagram(machine: str) -> list[str]:
    return ["```mermaid", *mermaid(json.loads(wiring.MACHINES[machine].read_text())).splitlines(), "```"]


def retry_legend() -> list[str]:
    """The one retry policy of every Lambda Task (a box in the pictures), as a table."""
    return ["Every box retries these errors, each with its own budget (full jitter), then fails at "
            "itself; any other error fails at once ([`stacks/retries.py`](../stacks/retries.py)):", "",
            "| errors | attempts | first wait | backoff | longest wait |", "|---|---|---|---|---|"] + [
        f"| {', '.join(f'`{e}`' for e in r['ErrorEquals'])} | {r['MaxAttempts']} | {r['IntervalSeconds']} s "
        f"| ×{r['BackoffRate']:g} | {r['MaxDelaySeconds']} s |" for r in retries.retriers()]


def steps_table() -> list[str]:
    """What runs where: a row per SyncUser step, from its docstring (handlers/steps.py), whose
    last paragraph says why it is idempotent."""
    rows = ["| step (ASL state) | does | idempotent because |", "|---|---|---|"]
    for state, handler in SYNC_USER_STEPS.items():
        does, _, because = (inspect.getdoc(handler.step) or "").partition("\n\nIdempotent: ")
        if not because:
            raise SystemExit(f"{state}: its docstring (handlers/steps.py) must end with a paragraph "
                             "'Idempotent: <why a second run changes nothing>'")
        rows.append(f"| `{state}` | {' '.join(does.split())} | {' '.join(because.split()).removesuffix('.')} |")
    return rows


def config_defaults() -> list[str]:
    """What each key the shipped cdk.json leaves out is set to: the model's default."""
    shipped = json.loads(CDK_JSON.read_text())["context"][CONTEXT_KEY]
    effective = ChatConfig.model_validate(shipped).model_dump(mode="json")
    return ["The keys the shipped `cdk.json` leaves out, at their defaults:", ""] + [
        f"- `{key}`: " + ("unset" if value is None else f"`{json.dumps(value)}`")
        for key, value in effective.items() if key not in shipped]


def sections() -> dict[Path, dict[str, list[str]]]:
    """Each page's written sections, by writer."""
    return {HOW_IT_WORKS: {**{f"make docs: {machine}": diagram(machine) for machine in wiring.MACHINES},
                           "make docs: retries": retry_legend(), "make docs: steps": steps_table()},
            README: {"make docs: calls": calls.readme_table(), "make docs: defaults": config_defaults()}}


if __name__ == "__main__":
    for page, written in sections().items():
        write_sections(page, written)
        print(f"written: {', '.join(written)} in {page.relative_to(README.parent)}")
