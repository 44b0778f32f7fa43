"""The Lambda asset's requirements: the project's own pins (pyproject.toml) of the packages it
ships. `python3 -m stacks.asset_pins` prints them for `make install`; with `--local`, also the
pins of what Lambda's Python runtime provides and of its runtime interface client, for the local
Lambda runtime's environment (local_run/lambda_runtime.py). The standard library only: make runs
it before any environment is installed."""

import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# What the asset ships besides chat_provisioning. The Python runtime ships boto3 and botocore
# (stripped from the asset should a dependency pull them in).
ASSET_PACKAGES = ("aws-lambda-powertools", "httpx", "pydantic")
PROVIDED_BY_RUNTIME = ("boto3", "botocore", "s3transfer")
LOCAL_RUNTIME_PACKAGES = ("boto3", "botocore", "awslambdaric")  # pinned as the runtime has them


def pins_of(packages: tuple[str, ...]) -> list[str]:
    """The pins of `packages`, as pyproject.toml's dependencies (and its local extra) give them."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = project["dependencies"] + project["optional-dependencies"]["local"]
    found = [pin for pin in pins if re.match(r"[\w.-]+", pin).group(0) in packages]
    if len(found) != len(packages):
        raise ValueError(f"pyproject.toml pins {found}, not each of {packages}")
    return found


def asset_requirements() -> list[str]:
    return pins_of(ASSET_PACKAGES)


if __name__ == "__main__":
    local = sys.argv[1:] == ["--local"]
    print("\n".join(asset_requirements() + (pins_of(LOCAL_RUNTIME_PACKAGES) if local else [])))
