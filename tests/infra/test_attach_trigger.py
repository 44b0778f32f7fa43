"""attach-trigger against moto's Cognito: only the PostConfirmation trigger changes. moto does
not reset what UpdateUserPool leaves out, as Cognito does, so what would be left out is checked
against DescribeUserPool's answer as sent, and the pool is read again after the write."""

import json

import boto3
import pytest
from moto import mock_aws

from toolbox import cli
from toolbox.attach_trigger import attach

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
    sent = []
    client.meta.events.register("provide-client-params.cognito-idp.UpdateUserPool",
                                lambda params, **_: sent.append(params))
    result = attach(pool_id, NEW, apply=True, client=client)
    assert result["applied"] and result["changed_besides_the_trigger"] == [] and "error" not in result
    assert sent[0]["PoolName"] == "prod"  # UpdateUserPool takes the name as PoolName
    after = client.describe_user_pool(UserPoolId=pool_id)["UserPool"]
    assert after["LambdaConfig"] == {"PreSignUp": PRE_SIGN_UP, "PostConfirmation": NEW}
    for kept in ("Policies", "MfaConfiguration", "AutoVerifiedAttributes", "Name"):
        assert after[kept] == before[kept], kept
    assert not attach(pool_id, NEW, apply=True, client=client)["applied"]  # idempotent


def test_a_pool_with_no_trigger_gets_its_first(pool):
    """A pool no trigger was ever attached to may answer without LambdaConfig: attaching the
    first is the trigger's change alone (found by the demo, on the local run's pool)."""
    client, _ = pool
    bare = client.create_user_pool(PoolName="bare")["UserPool"]["Id"]
    result = attach(bare, NEW, apply=True, client=client)
    assert (result["post_confirmation"], result["changed_besides_the_trigger"]) == ({"before": None, "after": NEW}, [])
    assert "error" not in result
    assert client.describe_user_pool(UserPoolId=bare)["UserPool"]["LambdaConfig"] == {"PostConfirmation": NEW}


def with_answer(client, change):
    """Cognito's answer to DescribeUserPool changed before botocore parses it: what a pool
    with a setting newer than the installed botocore looks like."""
    def edit(response_dict, **_):
        body = json.loads(response_dict["body"])
        change(body["UserPool"])
        response_dict["body"] = json.dumps(body).encode()
    client.meta.events.register("before-parse.cognito-idp.DescribeUserPool", edit)


def test_a_setting_botocore_does_not_know_is_refused_by_name(pool):
    client, pool_id = pool
    with_answer(client, lambda p: (p.update(SettingFromTheFuture={"Enabled": True}),
                                   p["Policies"].update(PolicyFromTheFuture={"Mode": "STRICT"})))
    result = attach(pool_id, NEW, apply=True, client=client)
    assert not result["applied"]
    assert "['Policies.PolicyFromTheFuture', 'SettingFromTheFuture']" in result["error"]
    assert client.describe_user_pool(UserPoolId=pool_id)["UserPool"]["LambdaConfig"]["PostConfirmation"] == OLD


def test_a_pool_that_changed_beyond_its_trigger_is_reported(pool):
    """Negative control of the read-back: an update that also reset MFA (as Cognito resets an
    omitted setting) is named, and the command exits non-zero."""
    client, pool_id = pool
    client.meta.events.register("provide-client-params.cognito-idp.UpdateUserPool",
                                lambda params, **_: params.update(MfaConfiguration="OFF"))
    result = attach(pool_id, NEW, apply=True, client=client)
    assert result["applied"] and result["changed_besides_the_trigger"] == ["MfaConfiguration"]
    assert "MfaConfiguration" in result["error"]


def test_the_command_exits_non_zero_on_a_refusal(pool, monkeypatch, capsys):
    client, pool_id = pool
    with_answer(client, lambda p: p.update(SettingFromTheFuture=1))
    monkeypatch.setattr(cli, "pool_client", lambda args: client)
    assert cli.main(["attach-trigger", "--user-pool-id", pool_id, "--function-arn", NEW, "--apply"]) == 1
    assert "SettingFromTheFuture" in capsys.readouterr().out
