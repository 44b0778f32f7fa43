"""Bundle the Lambda asset without Docker: chat_provisioning plus its wheels for the Lambda
platform (Python 3.14, arm64), installed from .wheels/ (made by `make install`) so that synth
needs no network. Its requirements are asset_pins.py's."""

import shutil
import subprocess
import sys
from pathlib import Path

import jsii
from aws_cdk import BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_

from .asset_pins import PROVIDED_BY_RUNTIME, asset_requirements

ROOT = Path(__file__).resolve().parent.parent
LAMBDAS = ROOT / "lambdas"
WHEELS = ROOT / ".wheels"
REQUIREMENTS = "ASSET_REQUIREMENTS"  # the bundling option that carries asset_requirements()
PYTHON_VERSION = "3.14"
RUNTIME = lambda_.Runtime.PYTHON_3_14
ARCHITECTURE = lambda_.Architecture.ARM_64


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
