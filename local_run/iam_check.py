"""Every AWS call each function made, checked against its role as the template deployed it, and
against the calls stacks/calls.py declares for it.

moto checks each call's action and, with aws_server.py's help, its resource (moto alone names
a resource for S3 only). Each
execution environment records the calls its function makes (lambda_worker.py); here each one is
matched, action and resource, against the Allow and Deny statements of the policies on the
function's role in moto, which CloudFormation created from the synthesized template.

    python -m local_run.iam_check STATE_DIR    prints the calls seen, per function, as a table
"""

import json
import re
import sys
from pathlib import Path

from stacks import calls

from .deploy import ACCOUNT, REGION
from .state import LocalState


def resource_of(call: dict, secret_arn, stack_arn=None) -> str:
    """The ARN IAM evaluates for the call, from the parameters that name it (aws_server.py
    gives it to moto's check too); `secret_arn`, `stack_arn`: a secret's, a stack's name -> its
    ARN."""
    arn = f"{REGION}:{ACCOUNT}"
    if "StackName" in call and stack_arn:
        return stack_arn(call["StackName"])
    if "FunctionName" in call:
        name = call["FunctionName"]
        return name if name.startswith("arn:") else f"arn:aws:lambda:{arn}:function:{name}"
    if "TableName" in call:
        return f"arn:aws:dynamodb:{arn}:table/{call['TableName']}"
    if "UserPoolId" in call:
        return f"arn:aws:cognito-idp:{arn}:userpool/{call['UserPoolId']}"
    if "SecretId" in call:
        return secret_arn(call["SecretId"])
    if "QueueUrl" in call:
        return f"arn:aws:sqs:{arn}:{call['QueueUrl'].rstrip('/').rsplit('/', 1)[-1]}"
    if "Bucket" in call:
        return f"arn:aws:s3:::{call['Bucket']}" + (f"/{call['Key']}" if "Key" in call else "")
    return call.get("executionArn") or call.get("stateMachineArn") or "*"


def statements(role_name: str, aws: dict) -> list[dict]:
    iam, found = aws["iam"], []
    for name in iam.list_role_policies(RoleName=role_name)["PolicyNames"]:
        found += _listed(iam.get_role_policy(RoleName=role_name, PolicyName=name)["PolicyDocument"]["Statement"])
    for attached in iam.list_attached_role_policies(RoleName=role_name)["AttachedPolicies"]:
        policy = iam.get_policy(PolicyArn=attached["PolicyArn"])["Policy"]
        version = iam.get_policy_version(PolicyArn=attached["PolicyArn"], VersionId=policy["DefaultVersionId"])
        document = version["PolicyVersion"]["Document"]
        found += _listed((json.loads(document) if isinstance(document, str) else document)["Statement"])
    return found


def _listed(value) -> list:
    return value if isinstance(value, list) else [value]


def iam_match(pattern: str, value: str) -> re.Match | None:
    """IAM's wildcards: `*` any run, `?` one character (moto's own matcher breaks on `?`, which
    the bot token's resource, `<name>-??????`, has; aws_server.py gives moto this one, and moto
    tests its answer against None)."""
    return re.match("^" + re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".") + "$", value)


def _matches(statement: dict, action: str, resource: str) -> bool:
    if "NotAction" in statement or "NotResource" in statement:
        raise ValueError(f"NotAction/NotResource is not checked here: {statement}")
    return (any(iam_match(a.lower(), action.lower()) for a in _listed(statement["Action"]))
            and any(iam_match(r, resource) for r in _listed(statement["Resource"])))


def allowed(action: str, resource: str, role_statements: list[dict]) -> bool:
    """IAM's evaluation without conditions: an explicit Deny wins, else an Allow is needed."""
    matching = [s for s in role_statements if _matches(s, action, resource)]
    return any(s["Effect"] == "Allow" for s in matching) and not any(s["Effect"] == "Deny" for s in matching)


def calls_seen(state: LocalState) -> dict[str, list[dict]]:
    """Function (as wiring names it) -> the calls its environments recorded."""
    by_name = {physical: name for name, physical in state.functions.items()}
    seen = {}
    for path in sorted((state.state_dir / "lambda" / "calls").glob("*.jsonl")):
        seen[by_name[path.stem]] = [json.loads(line) for line in path.read_text().splitlines()]
    return seen


def unallowed_calls(seen: dict[str, list[dict]], roles: dict[str, str], aws: dict) -> list[str]:
    """Calls seen that the function's role (`roles`: its ARN) does not allow."""
    problems = []
    for name, made in seen.items():
        role_statements = statements(roles[name].rsplit("/", 1)[-1], aws)
        for call in {json.dumps(c, sort_keys=True) for c in made}:
            call = json.loads(call)
            action = f"{call['service']}:{call['action']}"
            resource = resource_of(call, lambda s: aws["secretsmanager"].describe_secret(SecretId=s)["ARN"])
            if not allowed(action, resource, role_statements):
                problems.append(f"{name}: {action} on {resource}")
    return sorted(problems)


def undeclared_calls(seen: dict[str, list[dict]]) -> list[str]:
    """Calls seen that stacks/calls.py does not declare for the function that made them."""
    return sorted(f"{name}: {action}" for name, action in rows(seen) if action not in calls.actions(name))


def rows(seen: dict[str, list[dict]]) -> set[tuple[str, str]]:
    return {(name, f"{c['service']}:{c['action']}") for name, calls in seen.items() for c in calls}


def table(seen: dict[str, list[dict]]) -> str:
    return "\n".join(["| function | call |", "|---|---|"] + [f"| {n} | `{a}` |" for n, a in sorted(rows(seen))])


if __name__ == "__main__":
    print(table(calls_seen(LocalState.load(Path(sys.argv[1])))))
