"""The CDK CLI as infra runs it, for the infra tests: on the test deployment's config (the
project's cdk.json with tests.fakes.sample_config in place of Phenom's), or on the shipped
cdk.json itself (test_deploy_synth.py, the one test that reads it)."""

import json
import os
import subprocess
import sys
from pathlib import Path

from chat_provisioning.domain.config import ChatConfig
from local_run.deploy import project_context

ROOT = Path(__file__).resolve().parents[2]


def cli_synth(out: Path, config: ChatConfig | None, context: tuple[str, ...] = (), printed: list[str] | None = None,
              **environment: str) -> Path:
    """`cdk synth` through the CLI, offline, with no credentials, in a project whose cdk.json
    holds `config` (None: the shipped cdk.json); `context`: `-c` overrides as an operator types
    them; `printed`: gets what the CLI printed; `environment`: what the CLI adds when it deploys
    (CDK_DEFAULT_ACCOUNT, CDK_DEFAULT_REGION). Nothing of make's environment but PATH and the
    like: a person's shell sets no JSII_* either."""
    project = ROOT
    if config is not None:  # as an operator edits it: the same app, another cdk.json
        project = out.parent / f"{out.name}-project"
        project.mkdir()
        shipped = json.loads((ROOT / "cdk.json").read_text())  # its settings too ("notices": false: offline)
        (project / "cdk.json").write_text(json.dumps(shipped | {"app": f"{sys.executable} {ROOT / 'app.py'}",
                                                                "context": project_context(config)}))
    clean_env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CDK_DEFAULT_", "JSII_"))}
    clean_env.update(AWS_EC2_METADATA_DISABLED="true", AWS_CONFIG_FILE="/dev/null",
                     AWS_SHARED_CREDENTIALS_FILE="/dev/null", CDK_DISABLE_VERSION_CHECK="true", **environment)
    run = subprocess.run([str(ROOT / "node_modules/.bin/cdk"), "synth", "--quiet", "--output", str(out),
                          *(arg for c in context for arg in ("-c", c))],
                         cwd=project, env=clean_env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    if printed is not None:
        printed += (run.stdout + run.stderr).splitlines()
    return out


def cfn_lint_errors(template: Path) -> str:
    """cfn-lint's findings on a synthesized template; W3005 (an explicit DependsOn that is also
    implied) is CDK's own doing."""
    run = subprocess.run([str(ROOT / ".venv/bin/cfn-lint"), "--ignore-checks", "W3005", "--", str(template)],
                         capture_output=True, text=True)
    return "" if run.returncode == 0 else run.stdout + run.stderr


def checkov_failures(template: Path) -> list[str]:
    """checkov's failed checks on a synthesized template (its own venv: its pins are not ours);
    what stacks/findings.py accepts is skipped through the template's metadata."""
    run = subprocess.run([str(ROOT / ".checkov-venv/bin/checkov"), "-f", str(template), "--framework",
                          "cloudformation", "--compact", "--quiet", "-o", "json"],
                         capture_output=True, text=True, timeout=300)
    report = json.loads(run.stdout)
    assert report.get("summary", {}).get("resource_count"), run.stdout[:500] + run.stderr[-2000:]
    return [f"{r['check_id']} {r['resource']}" for r in report.get("results", {}).get("failed_checks", [])]
