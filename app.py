#!/usr/bin/env python3
"""The CDK app: config from cdk.json context (validated here, at synth), one stack, cdk-nag."""

import os
import sys
from pathlib import Path

from aws_cdk import App, Environment, Validations
from cdk_nag import AwsSolutionsChecks, ServerlessChecks
from pydantic import ValidationError

sys.path.insert(0, str(Path(__file__).resolve().parent / "lambdas"))

from chat_provisioning.config import CONTEXT_KEY, ChatConfig  # noqa: E402
from stacks.provisioning_stack import ChatProvisioningStack  # noqa: E402


def build(app: App) -> ChatProvisioningStack:
    try:
        config = ChatConfig.model_validate(app.node.try_get_context(CONTEXT_KEY))
    except ValidationError as e:
        raise SystemExit(f"cdk.json context '{CONTEXT_KEY}' is invalid:\n{e}") from None
    region = config.user_pool.user_pool_id.split("_")[0]  # the pool's region
    stack = ChatProvisioningStack(
        app, "ChatProvisioning", config,
        env=Environment(account=os.environ.get("CDK_DEFAULT_ACCOUNT"), region=region),
        description="Provision Matrix/Synapse users from Cognito with Step Functions")
    Validations.of(app).add_plugins(AwsSolutionsChecks(app), ServerlessChecks(app))
    return stack


if __name__ == "__main__":
    app = App()
    build(app)
    app.synth()
