"""attach-trigger against moto's Cognito: only the PostConfirmation trigger changes."""

import boto3
import pytest
from moto import mock_aws

from stacks.attach_trigger import attach

NEW = "arn:aws:lambda:us-east-1:123456789012:function:ChatProvisioning-PostConfirmation"
OLD = "arn:aws:lambda:us-east-1:123456789012:function:chat-user-provisioner"
PRE_SIGN_UP = "arn:aws:lambda:us-east-1:123456789012:function:pre-sign-up"


@pytest.fixture
def pool():
    with mock_aws():
        client = boto3.client("cognito-idp", region_name="us-east-1")
        pool_id = client.create_user_pool(
            PoolName="prod", MfaConfiguration="OPTIONAL",
            Policies={"PasswordPolicy": {"MinimumLength": 14, "RequireSymbols": True}},
            LambdaConfig={"PreSignUp": PRE_SIGN_UP, "PostConfirmation": OLD},
            AutoVerifiedAttributes=["email"])["UserPool"]["Id"]
        yield client, pool_id


def test_dry_run_changes_nothing(pool):
    client, pool_id = pool
    result = attach(pool_id, NEW, apply=False, client=client)
    assert result["post_confirmation"] == {"before": OLD, "after": NEW} and not result["applied"]
    assert client.describe_user_pool(UserPoolId=pool_id)["UserPool"]["LambdaConfig"]["PostConfirmation"] == OLD


def test_apply_changes_the_trigger_and_keeps_the_rest(pool):
    client, pool_id = pool
    before = client.describe_user_pool(UserPoolId=pool_id)["UserPool"]
    assert attach(pool_id, NEW, apply=True, client=client)["applied"]
    after = client.describe_user_pool(UserPoolId=pool_id)["UserPool"]
    assert after["LambdaConfig"] == {"PreSignUp": PRE_SIGN_UP, "PostConfirmation": NEW}
    for kept in ("Policies", "MfaConfiguration", "AutoVerifiedAttributes", "Name"):
        assert after[kept] == before[kept], kept
    assert not attach(pool_id, NEW, apply=True, client=client)["applied"]  # idempotent
