"""The shipped cdk.json, synthesized as `cdk deploy` runs it: with the account and region of its
credentials. The only test that reads cdk.json (the rest synthesize a test deployment's config,
so that an operator's edit of cdk.json breaks nothing but this), and a module of its own, so that
it runs beside test_stack.py's synth."""

import json

import pytest
from cdk_cli import cfn_lint_errors, checkov_failures, cli_synth

# The README's first deploy of the runbook, with a second override: both tests read one synth
# (each takes seconds of CPU, bundling and cdk-nag included).
OVERRIDES = ("chat-provisioning.sweep_schedule_enabled=false", "chat-provisioning.sweep_max_removals=3")


@pytest.fixture(scope="module")
def deployed(tmp_path_factory) -> tuple:
    """What the CDK CLI wrote (cdk.out) and printed for the shipped cdk.json (config None) with
    OVERRIDES, as `cdk deploy` synthesizes: with the account and region of its credentials."""
    printed: list[str] = []
    out = cli_synth(tmp_path_factory.mktemp("deploy") / "cdk.out", config=None, context=OVERRIDES, printed=printed,
                    CDK_DEFAULT_ACCOUNT="111122223333", CDK_DEFAULT_REGION="us-east-1")
    return out, printed


def test_the_shipped_cdk_json_is_valid_and_synthesizes_as_cdk_deploy_does(deployed):
    """app.py validates the config at synth; `cdk deploy` gives the stack the account of its
    credentials, ARNs then hold it, and the cdk-nag acknowledgments must still match; cfn-lint
    and checkov find nothing either. It prints no deprecation of ours and no Node banner (found by
    a newcomer running `npx cdk deploy` outside make): the one deprecation left is cdk-nag's, whose
    rules read CfnEventBusPolicy's deprecated `principal` (gone with the nag plugins)."""
    out, printed = deployed
    assert [line for line in printed if "deprecated" in line] == [
        "[WARNING] aws-cdk-lib.aws_events.CfnEventBusPolicy#principal is deprecated, and will be removed in the "
        "next major release.", "  this property has been deprecated"]
    assert not [line for line in printed if line.startswith("b'") or "end-of-life" in line]
    report = json.loads((out / "validation-report.json").read_text())
    assert {p["pluginName"]: p["conclusion"] for p in report["pluginReports"]
            if p["pluginName"] in ("AwsSolutions", "Serverless")} == {
        "AwsSolutions": "success", "Serverless": "success"}
    assert "111122223333" in (out / "ChatProvisioning.template.json").read_text()
    assert cfn_lint_errors(out / "ChatProvisioning.template.json") == ""
    assert checkov_failures(out / "ChatProvisioning.template.json") == []


def test_a_go_live_deploy_turns_the_schedule_off_with_one_override(deployed):
    """The README's runbook deploys with `-c chat-provisioning.sweep_schedule_enabled=false`:
    the CLI sets that dotted key as a top-level string, which app.py reads into the config."""
    out, _ = deployed
    resources = json.loads((out / "ChatProvisioning.template.json").read_text())["Resources"]
    (rule,) = [r for name, r in resources.items() if name.startswith("SweepSchedule")]
    assert rule["Properties"]["State"] == "DISABLED"
    configs = {json.loads(r["Properties"]["Environment"]["Variables"]["CHAT_CONFIG"])["sweep_max_removals"]
               for r in resources.values() if r["Type"] == "AWS::Lambda::Function"
               and "CHAT_CONFIG" in r["Properties"].get("Environment", {}).get("Variables", {})}
    assert configs == {3}  # a number, read as JSON, in every function's config
