"""Deploy into moto what `cdk deploy` deploys: the CDK app synthesized with the local config
(account and region set, as the CLI sets them), its assets uploaded to the bucket the template
names, and the template created by moto's CloudFormation. The functions, their roles and
policies, the tables, queues, bucket, bus, rules and state machines are the template's.

moto's CloudFormation cannot take four things, so the template is changed before it is created,
from its own properties:
- a state machine's DefinitionSubstitutions are ignored: they are applied as an Fn::Join (an
  Fn::Sub would do, but moto's turns the ASL's `$$.` into `$.`);
- a rule whose EventBusName is a Ref to the stack's bus fails in moto: it gets the bus's Name;
- with a Retry cap (`retry_seconds`, the reliability suite) every Retry waits that long;
- the dashboard is left out: it names the alarms, which moto skips (below).
Skipped by moto (it logs "No Moto CloudFormation support"): the alarms, the bucket, queue,
topic and bus policies, and the functions' asynchronous-invocation configs. The bus policy is
emulated by actors.EventBridge.put from the same config; the configs are put here, from the template.

What exists only here: the user pool stands in for production's, which the stack imports (with
its groups); the bot's secret is created by hand, as the README asks of production."""

import io
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import boto3

from chat_provisioning.domain.config import CONTEXT_KEY, ChatConfig
from stacks import wiring

from .aws_events import ACCOUNT, REGION

ROOT = Path(__file__).resolve().parent.parent
STACK = "ChatProvisioning"
SERVICES = ("cognito-idp", "dynamodb", "events", "iam", "lambda", "s3", "secretsmanager", "sqs",
            "stepfunctions", "cloudformation", "ssm", "sts")


def clients(endpoint: str, credentials: dict | None = None) -> dict:
    credentials = credentials or {"aws_access_key_id": "local", "aws_secret_access_key": "local"}
    return {s: boto3.client(s, endpoint_url=endpoint, region_name=REGION, **credentials) for s in SERVICES}


def create_user_pool(aws: dict, config: ChatConfig) -> tuple[str, str]:
    idp = aws["cognito-idp"]
    pool = idp.create_user_pool(PoolName="chat-provisioning-local")["UserPool"]["Id"]
    client = idp.create_user_pool_client(UserPoolId=pool, ClientName="mobile")["UserPoolClient"]["ClientId"]
    for group in list(config.roles) + list(config.ignored_groups):
        idp.create_group(UserPoolId=pool, GroupName=group)
    return pool, client


def project_context(config: ChatConfig) -> dict:
    """cdk.json's context (its feature flags) with `config` as the deployment's."""
    return json.loads((ROOT / "cdk.json").read_text())["context"] | {CONTEXT_KEY: config.model_dump(mode="json")}


def synthesize(config: ChatConfig, out: Path) -> dict:
    """The app as the CDK CLI runs it (cdk.json's context, the account and region set). Not
    here: cdk-nag's validation and bundling (the workers run the checkout's code); the infra
    tests synthesize with both."""
    context = project_context(config) | {"aws:cdk:bundling-stacks": []}
    subprocess.run([sys.executable, "app.py"], cwd=ROOT, check=True, capture_output=True, env={
        **os.environ, "CDK_CONTEXT_JSON": json.dumps(context), "CDK_OUTDIR": str(out),
        "CDK_DEFAULT_ACCOUNT": ACCOUNT, "CDK_DEFAULT_REGION": REGION, "CDK_VALIDATION": "false"})
    return json.loads((out / f"{STACK}.template.json").read_text())


def upload_assets(aws: dict, out: Path) -> None:
    aws["ssm"].put_parameter(Name="/cdk-bootstrap/hnb659fds/version", Value="27", Type="String")
    for asset in json.loads((out / f"{STACK}.assets.json").read_text())["files"].values():
        source = out / asset["source"]["path"]
        body = io.BytesIO()
        if asset["source"].get("packaging") == "zip":
            with zipfile.ZipFile(body, "w") as z:
                for f in sorted(source.rglob("*")):
                    if f.is_file() and "__pycache__" not in f.parts:
                        z.write(f, f.relative_to(source))
        else:
            body.write(source.read_bytes())
        for dest in asset["destinations"].values():
            bucket = dest["bucketName"].replace("${AWS::AccountId}", ACCOUNT).replace("${AWS::Region}", REGION)
            try:
                aws["s3"].create_bucket(Bucket=bucket)
            except aws["s3"].exceptions.BucketAlreadyOwnedByYou:
                pass
            aws["s3"].put_object(Bucket=bucket, Key=dest["objectKey"], Body=body.getvalue())


def for_moto(template: dict, retry_seconds: int | None) -> dict:
    resources = template["Resources"]
    for r in resources.values():
        props = r.get("Properties", {})
        if r["Type"] == "AWS::StepFunctions::StateMachine":
            definition = with_retry_wait(props["DefinitionString"], retry_seconds)
            values = props.pop("DefinitionSubstitutions", {})  # ${Key} -> a value or an intrinsic
            parts = re.split(r"\$\{(\w+)\}", definition)
            props["DefinitionString"] = {"Fn::Join": ["", [values[p] if i % 2 else p for i, p in enumerate(parts)]]}
        if r["Type"] == "AWS::Events::Rule" and isinstance(props.get("EventBusName"), dict):
            props["EventBusName"] = resources[props["EventBusName"]["Ref"]]["Properties"]["Name"]
    for name in [k for k, r in resources.items() if r["Type"] == "AWS::CloudWatch::Dashboard"]:
        del resources[name]  # it names the alarms, which moto skips: CreateStack would fail
    return template


def deploy(aws: dict, config: ChatConfig, admin_token: str, out: Path,
           retry_seconds: int | None = None) -> dict:
    """`retry_seconds`: cap every Retry's wait at this (the reliability suite, so that exhausting
    the retries takes seconds); the attempts and the errors retried stay as deployed."""
    aws["secretsmanager"].create_secret(Name=config.admin_token_secret_name, SecretString=admin_token)
    template = synthesize(config, out)
    upload_assets(aws, out)
    cfn = aws["cloudformation"]
    cfn.create_stack(StackName=STACK, TemplateBody=json.dumps(for_moto(template, retry_seconds)),
                     Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"])
    while (stack := cfn.describe_stacks(StackName=STACK)["Stacks"][0])["StackStatus"].endswith("IN_PROGRESS"):
        time.sleep(0.2)
    if stack["StackStatus"] != "CREATE_COMPLETE":
        raise RuntimeError(f"{STACK}: {stack['StackStatus']} {stack.get('StackStatusReason')}")
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    physical = {r["LogicalResourceId"]: r["PhysicalResourceId"]
                for r in cfn.list_stack_resources(StackName=STACK)["StackResourceSummaries"]}

    def resource(construct_id: str) -> str:  # CDK's logical ID: the construct's path and a hash
        [name] = [v for k, v in physical.items() if re.fullmatch(rf"{construct_id}[0-9A-F]{{8}}", k)]
        return name

    for r in template["Resources"].values():  # moto's CloudFormation skips these
        if r["Type"] == "AWS::Lambda::EventInvokeConfig":
            props = r["Properties"]
            queue = physical[props["DestinationConfig"]["OnFailure"]["Destination"]["Fn::GetAtt"][0]]
            aws["lambda"].put_function_event_invoke_config(
                FunctionName=physical[props["FunctionName"]["Ref"]],
                MaximumRetryAttempts=props["MaximumRetryAttempts"],
                MaximumEventAgeInSeconds=props["MaximumEventAgeInSeconds"],
                DestinationConfig={"OnFailure": {
                    "Destination": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{queue.rsplit('/', 1)[1]}"}})
    sync = outputs["SyncUserStateMachineArn"]
    # moto renders the output of the bus's Ref as a Python object's repr: the template names it
    [bus_name] = [r["Properties"]["Name"] for r in template["Resources"].values()
                  if r["Type"] == "AWS::Events::EventBus"]
    functions = {name: resource(f"{name}Function") for name in wiring.FUNCTIONS}
    return {"sync_state_machine_arn": sync, "sweep_state_machine_arn": outputs["SweepUsersStateMachineArn"],
            "plans_bucket": resource("SweepPlans"), "audit_table": outputs["AuditTableName"],
            "locks_table": resource("LocksTable"),
            "failed_events_url": resource("FailedEventsQueue"),
            "policies": {k: outputs[k] for k in ("OperatorPolicyArn", "GroupImportPolicyArn")},
            "event_bus": bus_name,
            "functions": functions, "roles": {name: aws["lambda"].get_function_configuration(
                FunctionName=physical_name)["Role"] for name, physical_name in functions.items()}}


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
    return json.dumps(definition, indent=2)


def enforce_iam(aws: dict, endpoint: str, control_dir: Path, roles: set[str],
                policies: dict[str, str]) -> tuple[dict, dict, dict]:
    """Turn moto's IAM checks on: from now on every request needs an identity whose policies
    allow its action on its resource (aws_server.py names the resource; iam_check.py checks the
    calls again afterwards). The functions sign with their roles' credentials, assumed here as
    the Lambda service assumes them (aws_server.py hands them to each environment); the local
    run's own callers (Cognito's and EventBridge's stand-ins, the tests) and moto's Step
    Functions interpreter sign as this administrator; the operator's commands sign as a user
    with the stack's OperatorPolicy only, and its day-one import as a user with GroupImportPolicy
    beside it. Returns the three users' keys. moto does not expire the roles' session
    credentials."""
    iam = aws["iam"]
    # The Lambda service assumes each function's role (its trust policy names no one else).
    assumed = {role: aws["sts"].assume_role(RoleArn=role, RoleSessionName="lambda")["Credentials"] for role in roles}
    (control_dir / "role-credentials.json").write_text(json.dumps({role: {
        "AWS_ACCESS_KEY_ID": c["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": c["SecretAccessKey"],
        "AWS_SESSION_TOKEN": c["SessionToken"]} for role, c in assumed.items()}))

    def user_keys(name: str) -> dict:
        iam.create_user(UserName=name)
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}
    credentials = user_keys("local-admin")
    iam.put_user_policy(UserName="local-admin", PolicyName="everything", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
    # An operator, with the stack's OperatorPolicy only: what `chat-provisioning --local` signs as.
    operator = user_keys("operator")
    iam.attach_user_policy(UserName="operator", PolicyArn=policies["OperatorPolicyArn"])
    importer = user_keys("importer")
    for policy in ("OperatorPolicyArn", "GroupImportPolicyArn"):
        iam.attach_user_policy(UserName="importer", PolicyArn=policies[policy])
    (control_dir / "admin-credentials.json").write_text(json.dumps(credentials))
    urllib.request.urlopen(urllib.request.Request(
        f"{endpoint}/moto-api/reset-auth", data=b"0", method="POST", headers={"Content-Type": "text/plain"}))
    return credentials, operator, importer
