"""`cdk synth` as `cdk deploy` runs it: with the account and region of its credentials. A module
of its own, so that it runs beside test_stack.py's synth without an account."""

import json

from cdk_cli import checkov_failures, cli_synth


def test_synth_as_cdk_deploy_does_with_an_account(tmp_path):
    """`cdk deploy` gives the stack the account of its credentials: ARNs then hold it, and the
    cdk-nag acknowledgments must still match; checkov too finds nothing not accepted."""
    out = cli_synth(tmp_path, CDK_DEFAULT_ACCOUNT="111122223333", CDK_DEFAULT_REGION="us-east-1")
    report = json.loads((out / "validation-report.json").read_text())
    assert {p["pluginName"]: p["conclusion"] for p in report["pluginReports"]
            if p["pluginName"] in ("AwsSolutions", "Serverless")} == {"AwsSolutions": "success", "Serverless": "success"}
    assert "111122223333" in (out / "ChatProvisioning.template.json").read_text()
    assert checkov_failures(out / "ChatProvisioning.template.json") == []
