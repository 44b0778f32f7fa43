"""Create in moto what the CDK stack creates in AWS, from the same wiring table, ASL files and
config: the secret, the audit and lease tables, the retry queue, the plans bucket, a user
pool, the functions (their code runs in the moto process, see aws_server.py) and the state
machines."""

import io
import json
import zipfile

import boto3

from chat_provisioning import wiring
from chat_provisioning.config import ChatConfig

PREFIX = "chat-provisioning"
ROLE_POLICY = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": ["lambda.amazonaws.com", "states.amazonaws.com"]},
    "Action": "sts:AssumeRole"}]})


def clients(endpoint: str) -> dict:
    kw = dict(endpoint_url=endpoint, region_name="us-east-1",
              aws_access_key_id="local", aws_secret_access_key="local")
    return {s: boto3.client(s, **kw) for s in
            ("cognito-idp", "dynamodb", "events", "iam", "lambda", "s3", "secretsmanager", "sqs",
             "stepfunctions")}


def create_user_pool(aws: dict, config: ChatConfig) -> tuple[str, str]:
    idp = aws["cognito-idp"]
    pool = idp.create_user_pool(PoolName=f"{PREFIX}-local")["UserPool"]["Id"]
    client = idp.create_user_pool_client(UserPoolId=pool, ClientName="mobile")["UserPoolClient"]["ClientId"]
    for group in list(config.roles) + list(config.ignored_groups):
        idp.create_group(UserPoolId=pool, GroupName=group)
    return pool, client


def deploy(aws: dict, config: ChatConfig, admin_token: str, retry_seconds: int | None = None) -> dict:
    """`retry_seconds`: cap every Retry's wait at this (the reliability suite, so that exhausting
    the retries takes seconds); the attempts and the errors retried stay as deployed."""
    aws["secretsmanager"].create_secret(Name=config.admin_token_secret_name, SecretString=admin_token)

    def table(name: str, *keys: str) -> str:  # the partition key, and the sort key if any
        aws["dynamodb"].create_table(
            TableName=name, BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": k, "KeyType": t} for k, t in zip(keys, ("HASH", "RANGE"))],
            AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k in keys])
        return name

    audit, locks = table(f"{PREFIX}-audit", "sub", "sk"), table(f"{PREFIX}-locks", "lock")
    queue_url = aws["sqs"].create_queue(QueueName=f"{PREFIX}-start-retry")["QueueUrl"]
    events_dlq_url = aws["sqs"].create_queue(QueueName=f"{PREFIX}-events-dlq")["QueueUrl"]
    role = aws["iam"].create_role(RoleName=PREFIX, AssumeRolePolicyDocument=ROLE_POLICY)["Role"]["Arn"]

    def function(name: str, handler: str, env: dict) -> str:
        return aws["lambda"].create_function(
            FunctionName=f"{PREFIX}-{name}", Runtime="python3.12", Role=role, Handler=handler,
            Code={"ZipFile": _placeholder_zip()}, Timeout=60, MemorySize=256,
            Environment={"Variables": env})["FunctionArn"]

    bucket = f"{PREFIX}-plans"
    aws["s3"].create_bucket(Bucket=bucket)
    step_env = wiring.lambda_environment(config, audit, locks, plans_bucket=bucket)
    arns = {wiring.placeholder(step): function(step, handler, step_env)
            for step, handler in wiring.STEPS.items()}
    machines = {}
    for name, path in wiring.MACHINES.items():  # in order: the sweep names the two before it
        machines[name] = aws["stepfunctions"].create_state_machine(
            name=f"{PREFIX}-{name}", roleArn=role, type="STANDARD",
            definition=with_retry_wait(wiring.substitute(path.read_text(), arns | {
                wiring.machine_placeholder(m): arn for m, arn in machines.items()} | {
                wiring.PLANS_BUCKET_PLACEHOLDER: bucket}), retry_seconds))["stateMachineArn"]
    trigger_env = wiring.lambda_environment(config, audit, locks, queue_url, machines["SyncUser"])
    functions = {name: function(name, handler, trigger_env) for name, handler in wiring.TRIGGERS.items()}
    return {"sync_state_machine_arn": machines["SyncUser"],
            "sweep_state_machine_arn": machines["SweepUsers"], "plans_bucket": bucket,
            "audit_table": audit, "locks_table": locks,
            "retry_queue_url": queue_url, "events_dlq_url": events_dlq_url,
            "functions": {name: f"{PREFIX}-{name}" for name in list(wiring.STEPS) + list(functions)},
            "role_arn": role}


def with_retry_wait(asl: str, seconds: int | None) -> str:
    if seconds is None:
        return asl

    def cap(node):
        if isinstance(node, dict):
            for retry in node.get("Retry", []):
                retry["IntervalSeconds"] = retry["MaxDelaySeconds"] = seconds
            for value in node.values():
                cap(value)
        elif isinstance(node, list):
            for value in node:
                cap(value)
    definition = json.loads(asl)
    cap(definition)
    return json.dumps(definition)


def _placeholder_zip() -> bytes:
    """moto wants a code package; the handler is imported from this checkout instead."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("README.txt", "code runs in-process from the chat_provisioning package")
    return buf.getvalue()
