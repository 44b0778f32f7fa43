"""Bundle the Lambda asset without Docker: chat_provisioning plus its wheels for the Lambda
platform (Python 3.14, arm64), installed from .wheels/ (made by `make install`) so that synth
needs no network. The asset's requirements are the project's own pins (pyproject.toml) of the
packages it ships: `python -m stacks.bundling` prints them for `make install`; with `--local`,
also the pins of what Lambda's Python runtime provides and of its runtime interface client,
for the local Lambda runtime's environment (local_run/lambda_runtime.py)."""

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import jsii
from aws_cdk import BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_

ROOT = Path(__file__).resolve().parent.parent
LAMBDAS = ROOT / "lambdas"
WHEELS = ROOT / ".wheels"
PYTHON_VERSION = "3.14"
RUNTIME = lambda_.Runtime.PYTHON_3_14
ARCHITECTURE = lambda_.Architecture.ARM_64
# What the asset ships besides chat_provisioning. The Python runtime ships boto3 and botocore
# (stripped from the asset should a dependency pull them in).
ASSET_PACKAGES = ("aws-lambda-powertools", "httpx", "pydantic")
PROVIDED_BY_RUNTIME = ("boto3", "botocore", "s3transfer")
LOCAL_RUNTIME_PACKAGES = ("boto3", "botocore", "awslambdaric")  # pinned as the runtime has them
REQUIREMENTS = "ASSET_REQUIREMENTS"


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


@jsii.implements(ILocalBundling)
class LocalPipBundling:
    def try_bundle(self, output_dir: str, options) -> bool:
        if not any(WHEELS.glob("*.whl")):
            raise RuntimeError(f"no wheels in {WHEELS}: run `make install` (needs PyPI once)")
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-index",
             "--find-links", str(WHEELS), "--target", output_dir,
             "--platform", "manylinux2014_aarch64", "--python-version", PYTHON_VERSION,
             "--implementation", "cp", "--only-binary=:all:",
             *options.environment[REQUIREMENTS].split()], check=True)
        out = Path(output_dir)
        for name in PROVIDED_BY_RUNTIME:
            for path in out.glob(f"{name}*"):
                shutil.rmtree(path) if path.is_dir() else path.unlink()
        shutil.copytree(LAMBDAS / "chat_provisioning", out / "chat_provisioning",
                        ignore=shutil.ignore_patterns("__pycache__"))
        return True


def lambda_code() -> lambda_.Code:
    return lambda_.Code.from_asset(
        str(LAMBDAS),
        exclude=["**/__pycache__"],
        bundling=BundlingOptions(
            # Required by the API, never pulled: local bundling always succeeds or raises.
            image=DockerImage.from_registry("unused-local-bundling-only"),
            # The pins travel in the options, which CDK hashes with lambdas/: a new pin is a
            # new asset (they live outside lambdas/, whose contents alone would not change).
            environment={REQUIREMENTS: " ".join(asset_requirements())},
            local=LocalPipBundling()))


if __name__ == "__main__":
    local = sys.argv[1:] == ["--local"]
    print("\n".join(asset_requirements() + (pins_of(LOCAL_RUNTIME_PACKAGES) if local else [])))
