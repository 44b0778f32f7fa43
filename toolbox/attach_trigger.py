"""Attach the PostConfirmation trigger to an existing (imported) user pool, safely.

CDK cannot add a trigger to an imported pool, and Cognito's UpdateUserPool resets every
setting it is not given to its default: a bare `update-user-pool --lambda-config ...` would
wipe the pool's password policy, MFA, email settings and its other triggers. This reads the
pool, copies every setting UpdateUserPool accepts, changes LambdaConfig.PostConfirmation only,
and shows the change; it writes only with --apply, then reads the pool again and compares.

botocore drops the fields its model does not know when it parses DescribeUserPool's answer,
and it would send none of them back: a setting newer than the installed botocore would be
reset. So the request is checked against the answer as Cognito sent it (its raw JSON), and any
setting the request would leave out is refused by name."""

import json

import boto3

# What DescribeUserPool answers and UpdateUserPool does not take (read-only, or set only when
# the pool is created): leaving these out resets nothing.
NOT_UPDATABLE = {"AliasAttributes", "Arn", "CreationDate", "CustomDomain", "Domain",
                 "EmailConfigurationFailure", "EstimatedNumberOfUsers", "Id", "LastModifiedDate",
                 "SchemaAttributes", "SmsConfigurationFailure", "Status", "UsernameAttributes",
                 "UsernameConfiguration"}
RENAMED = {"Name": "PoolName"}  # DescribeUserPool's Name is UpdateUserPool's PoolName
# The deprecated twin of Policies.PasswordPolicy.TemporaryPasswordValidityDays: sending both fails.
DEPRECATED = "AdminCreateUserConfig.UnusedAccountValidityDays"
TRIGGER = "LambdaConfig.PostConfirmation"


def describe(client, pool_id: str) -> tuple[dict, dict]:
    """The pool as botocore parsed it, and as Cognito sent it."""
    sent = {}

    def keep(response_dict, **_):  # the body botocore is about to parse (an error raises as usual)
        if response_dict["status_code"] == 200:
            sent.update(json.loads(response_dict["body"])["UserPool"])
    event = "before-parse.cognito-idp.DescribeUserPool"
    client.meta.events.register(event, keep)
    try:
        parsed = client.describe_user_pool(UserPoolId=pool_id)["UserPool"]
    finally:
        client.meta.events.unregister(event, keep)
    return parsed, sent


def planned_update(client, pool_id: str, function_arn: str) -> tuple[dict, str | None, dict]:
    """The UpdateUserPool request that keeps everything but the trigger, the old trigger, and
    the pool as Cognito sent it."""
    pool, raw = describe(client, pool_id)
    accepted = client.meta.service_model.operation_model("UpdateUserPool").input_shape.members
    request = {RENAMED.get(k, k): v for k, v in pool.items() if RENAMED.get(k, k) in accepted}
    request["UserPoolId"] = pool_id
    lambda_config = dict(pool.get("LambdaConfig") or {})
    old = lambda_config.get("PostConfirmation")
    lambda_config["PostConfirmation"] = function_arn
    request["LambdaConfig"] = lambda_config
    admin = dict(request.get("AdminCreateUserConfig") or {})
    if admin.pop("UnusedAccountValidityDays", None) is not None:
        request["AdminCreateUserConfig"] = admin
    return request, old, raw


def left_out(raw, request, path: str = "") -> list[str]:
    """The settings in Cognito's answer that the request does not carry (by path)."""
    missing = []
    if isinstance(raw, dict) and isinstance(request, dict):
        for key, value in raw.items():
            name = RENAMED.get(key, key) if not path else key
            where = f"{path}{key}"
            if (not path and key in NOT_UPDATABLE) or where == DEPRECATED:
                continue
            if name not in request:
                missing.append(where)
            else:
                missing += left_out(value, request[name], f"{where}.")
    elif isinstance(raw, list) and isinstance(request, list):
        for i, (a, b) in enumerate(zip(raw, request, strict=False)):
            missing += left_out(a, b, f"{path.rstrip('.')}[{i}].")
    return missing


def changed(before, after, path: str = "") -> list[str]:
    """The paths whose values differ between two of Cognito's answers. A block one answer
    leaves out is an empty one (a pool with no trigger may have no LambdaConfig at all)."""
    if isinstance(before, dict) and after is None or before is None and isinstance(after, dict):
        before, after = before or {}, after or {}
    if isinstance(before, dict) and isinstance(after, dict):
        return [p for key in sorted(set(before) | set(after))
                for p in changed(before.get(key), after.get(key), f"{path}{key}.")]
    return [] if before == after else [path.rstrip(".")]


def attach(pool_id: str, function_arn: str, apply: bool, client=None) -> dict:
    client = client or boto3.client("cognito-idp", region_name=pool_id.split("_")[0])
    request, old, before = planned_update(client, pool_id, function_arn)
    result = {"user_pool_id": pool_id, "post_confirmation": {"before": old, "after": function_arn},
              "settings_kept": sorted(k for k in request if k not in ("UserPoolId", "LambdaConfig"))}
    if missing := left_out(before, request):
        return {**result, "applied": False,
                "error": f"UpdateUserPool would reset settings this botocore does not know: {missing}. "
                         "Upgrade boto3 and botocore (pyproject.toml) and try again."}
    if not apply or old == function_arn:
        return {**result, "applied": False}
    client.update_user_pool(**request)
    after = describe(client, pool_id)[1]
    unexpected = [p for p in changed(before, after) if p not in (TRIGGER, DEPRECATED, "LastModifiedDate")]
    return {**result, "applied": True, "changed_besides_the_trigger": unexpected,
            **({"error": f"the pool changed beyond its trigger: {unexpected}"} if unexpected else {})}
