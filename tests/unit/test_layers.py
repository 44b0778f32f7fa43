"""The folders are the architecture: pyproject.toml's import contracts (the Lambda package's
layers, a pure domain, an asset and an operator's tool that load no emulation code, no import
cycle) hold on every import, as `make lint` checks them."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_import_keeps_the_contracts():
    lint = subprocess.run([str(Path(sys.executable).parent / "lint-imports"), "--no-cache"], cwd=ROOT,
                          capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout[-3000:]
