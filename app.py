#!/usr/bin/env python3
"""The CDK app: config from cdk.json context (validated here, at synth), one stack, cdk-nag."""

import json
import os
import sys
from pathlib import Path

# jsii calls Node 20 end-of-life in a dozen lines of Python byte strings at every synth; the CDK
# works on it (README, "Two commands"). Set before jsii starts, and only for 20: an older Node
# still gets the warning.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from aws_cdk import App, Environment, Validations  # noqa: E402
from cdk_nag import AwsSolutionsChecks, ServerlessChecks  # noqa: E402
from pydantic import ValidationError  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent / "lambdas"))

from chat_provisioning.domain.config import CONTEXT_KEY, ChatConfig  # noqa: E402
from stacks.provisioning_stack import ChatProvisioningStack  # noqa: E402


def context_config(context: dict) -> object:
    """cdk.json's `chat-provisioning` object, with what `cdk ... -c` overrides. The CLI sets
    each `-c key=value` as a top-level string: `-c chat-provisioning.<key>=<value>` sets that
    one key (a string key as given; any other read as JSON where it parses: `false`, `5`,
    `{...}`), and `-c chat-provisioning='{...}'` replaces the whole object."""
    config = context.get(CONTEXT_KEY)
    if isinstance(config, str):
        config = json.loads(config)
    overrides = {k.removeprefix(f"{CONTEXT_KEY}."): v for k, v in context.items() if k.startswith(f"{CONTEXT_KEY}.")}
    if not overrides:
        return config
    return {**(config or {}), **{key: _as_field(key, value) for key, value in overrides.items()}}


def _as_field(key: str, value: object) -> object:
    """A string for a string field (`bot_localpart=123` stays "123"), else JSON where it parses."""
    field = ChatConfig.model_fields.get(key)
    if not isinstance(value, str) or (field is not None and field.annotation is str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def build(app: App) -> ChatProvisioningStack:
    try:
        config = ChatConfig.model_validate(context_config(app.node.get_all_context()))
    except (ValidationError, ValueError) as e:
        raise SystemExit(f"cdk.json context '{CONTEXT_KEY}' (with its -c overrides) is invalid:\n{e}") from None
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
