"""Every `chat-provisioning` command the README shows is one the tool takes. The going-live
runbook's lines are run as written by `make demo` (local_run/demo.py reads the block); the
operator's commands and the example session are parsed here, each form each line shows, and
run against the local stack by tests/workflow/test_toolbox.py and the demo."""

import re
import shlex
from pathlib import Path

import pytest

from local_run import demo
from toolbox.cli import parser

README = Path(__file__).resolve().parents[2] / "README.md"
SUB = "32f5bd38-8e9a-59cf-8643-15a98baa9167"
ARN = "arn:aws:states:us-east-1:111122223333:execution:ChatProvisioning-SyncUser:signup-" + SUB

# Each synopsis line of the README, as written, and the commands it stands for.
FORMS = {
    "chat-provisioning user status <sub | email | username>": [
        ["user", "status", SUB], ["user", "status", "ann@example.invalid"], ["user", "status", "ann"]],
    "chat-provisioning user sync <who>": [["user", "sync", SUB]],
    "chat-provisioning executions redrive <ARN>... | --since 6h [--dry-run]": [
        ["executions", "redrive", ARN, ARN], ["executions", "redrive", "--since", "6h"],
        ["executions", "redrive", ARN, "--dry-run"], ["executions", "redrive", "--since", "6h", "--dry-run"]],
    "chat-provisioning sweep [--dry-run] [--approve-removals N] [--adopt] [--plan-file FILE]": [
        ["sweep"], ["sweep", "--dry-run", "--adopt", "--plan-file", "plan.json"], ["sweep", "--approve-removals", "3"]],
    "chat-provisioning import-groups [--plan-file FILE] [--apply FILE]": [
        ["import-groups"], ["import-groups", "--plan-file", "groups.json"],
        ["import-groups", "--apply", "groups.json"]],
    "chat-provisioning attach-trigger --user-pool-id ... --function-arn ... [--apply]": [
        ["attach-trigger", "--user-pool-id", "us-east-1_abc", "--function-arn", "arn:aws:lambda:x", "--apply"]],
    "chat-provisioning attach-trigger --user-pool-id us-east-1_knEL7cqS3 --function-arn <PostConfirmationFunctionArn "
    "output>": [["attach-trigger", "--user-pool-id", "us-east-1_knEL7cqS3", "--function-arn", "arn:aws:lambda:x"]],
    "chat-provisioning attach-trigger ... --apply": [
        ["attach-trigger", "--user-pool-id", "us-east-1_knEL7cqS3", "--function-arn", "arn:aws:lambda:x", "--apply"]],
}
# A fenced block, indented (in a list) or not.
FENCE = re.compile(r"^( *)```(?:sh|text)\n(.*?)^\1```", flags=re.S | re.M)


def shown() -> list[str]:
    """Each command of a README block that runs the tool (continued lines joined), without its
    comment, prompt or `.venv/bin/`."""
    commands = []
    for _, block in FENCE.findall(README.read_text()):
        for line in re.sub(r"\\\n\s*", " ", block).splitlines():
            line = line.split("  #", 1)[0].strip().removeprefix("$ ").removeprefix(".venv/bin/")
            if line.startswith("chat-provisioning "):
                commands.append(" ".join(line.split()))
    return commands


def runbook() -> set[str]:
    return {shlex.join(["chat-provisioning", *args]) for args in demo.runbook()}


def test_the_demo_runs_the_readmes_going_live_runbook():
    """What the demo reads as the runbook is the README's block, every tool line of it."""
    assert len(runbook()) >= 5 and runbook() <= {shlex.join(shlex.split(line)) for line in shown()}
    for args in demo.runbook():  # and the tool takes each, before the demo runs it
        parser().parse_args(args)


@pytest.mark.parametrize("line", sorted(FORMS))
def test_each_form_of_a_synopsis_line_is_taken(line):
    assert line in shown(), "a synopsis this test knows is no longer in the README: update FORMS"
    for argv in FORMS[line]:
        args = parser().parse_args(argv)  # a form the tool refuses ends the test (SystemExit)
        assert args.area == argv[0] and (argv[0] not in ("user", "executions") or args.command == argv[1])


def test_every_other_command_the_readme_shows_is_taken_as_typed():
    """The example session, and any line added later: as a person would paste it."""
    others = [line for line in shown() if line not in FORMS and shlex.join(shlex.split(line)) not in runbook()]
    assert others, "the README's example session is gone"
    for line in others:
        parser().parse_args(shlex.split(line)[1:])
