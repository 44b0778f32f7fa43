"""Attach the PostConfirmation trigger to an existing (imported) user pool, safely.

CDK cannot add a trigger to an imported pool, and Cognito's UpdateUserPool resets every
setting it is not given to its default: a bare `update-user-pool --lambda-config ...` would
wipe the pool's password policy, MFA, email settings and its other triggers. This reads the
pool, copies every setting UpdateUserPool accepts, changes LambdaConfig.PostConfirmation only,
shows the change, and writes it only with --apply."""

import boto3


def planned_update(client, pool_id: str, function_arn: str) -> tuple[dict, str | None]:
    """The UpdateUserPool request that keeps everything but the trigger, and the old trigger."""
    pool = client.describe_user_pool(UserPoolId=pool_id)["UserPool"]
    accepted = client.meta.service_model.operation_model("UpdateUserPool").input_shape.members
    request = {k: v for k, v in pool.items() if k in accepted}
    request["UserPoolId"] = pool_id
    lambda_config = dict(pool.get("LambdaConfig") or {})
    old = lambda_config.get("PostConfirmation")
    lambda_config["PostConfirmation"] = function_arn
    request["LambdaConfig"] = lambda_config
    # Deprecated twin of Policies.PasswordPolicy.TemporaryPasswordValidityDays: sending both fails.
    admin = dict(request.get("AdminCreateUserConfig") or {})
    if admin.pop("UnusedAccountValidityDays", None) is not None:
        request["AdminCreateUserConfig"] = admin
    return request, old


def attach(pool_id: str, function_arn: str, apply: bool, client=None) -> dict:
    client = client or boto3.client("cognito-idp", region_name=pool_id.split("_")[0])
    request, old = planned_update(client, pool_id, function_arn)
    if apply and old != function_arn:
        client.update_user_pool(**request)
    return {"user_pool_id": pool_id, "post_confirmation": {"before": old, "after": function_arn},
            "settings_kept": sorted(k for k in request if k not in ("UserPoolId", "LambdaConfig")),
            "applied": apply and old != function_arn}
