"""The events AWS sends the functions, in AWS's documented shapes: what the local run delivers
and what the unit tests feed the handlers. Light (the standard library and the wiring), so that
the unit tier loads no moto to build them."""

import json
import time
import uuid
from typing import Any

from chat_provisioning.handlers.signup import SIGN_UP
from stacks import wiring

ACCOUNT, REGION = "123456789012", "us-east-1"  # moto's, the local run's
# The principal the local run sends custom events as: the local config's only event sender.
LOCAL_OPERATOR = f"arn:aws:iam::{ACCOUNT}:role/chat-operator"


def bus_event(pattern: dict, detail: dict, resources: tuple[str, ...] = ()) -> dict:
    """An EventBridge event of the source and detail-type `pattern` names, as targets get it."""
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": pattern["detail-type"][0],
            "source": pattern["source"][0], "account": ACCOUNT,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "region": REGION,
            "resources": list(resources), "detail": detail}


MASKED = "HIDDEN_DUE_TO_SECURITY_REASONS"


def cloudtrail_event(event_name: str, user_pool_id: str, sub: str | None, group: str | None = None,
                     error_code: str | None = None) -> dict:
    """CloudTrail's record of a Cognito admin call about one user, as EventBridge delivers it on
    the default bus, in AWS's documented shape: Cognito masks the username and records the
    user's sub in additionalEventData (`sub` None: a record without it); a call Cognito refused
    has an errorCode. Cognito masks private fields (its CloudTrail guide): the attributes of
    AdminUpdateUserAttributes are masked here."""
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    params = {"userPoolId": user_pool_id, "username": MASKED} | ({"groupName": group} if group else {}) | (
        # The new values are private fields: the run reads the name from Cognito, never from here.
        {"userAttributes": MASKED} if event_name == "AdminUpdateUserAttributes" else {})
    detail = {
        "eventVersion": "1.08",
        "userIdentity": {"type": "AssumedRole", "principalId": "AROAEXAMPLEOPERATOR:operator",
                         "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/chat-operator/operator",
                         "accountId": ACCOUNT, "accessKeyId": "ASIAEXAMPLEOPERATOR",
                         "sessionContext": {"sessionIssuer": {"type": "Role", "arn": LOCAL_OPERATOR,
                                                              "accountId": ACCOUNT, "userName": "chat-operator"}}},
        "eventTime": now, "eventSource": "cognito-idp.amazonaws.com", "eventName": event_name,
        "awsRegion": REGION, "sourceIPAddress": "192.0.2.1", "userAgent": "aws-cli/2",
        "requestParameters": params, "responseElements": None,
        **({"additionalEventData": {"sub": sub}} if sub else {}),
        **({"errorCode": error_code, "errorMessage": "refused"} if error_code else {}),
        "requestID": str(uuid.uuid4()), "eventID": str(uuid.uuid4()), "readOnly": False,
        "eventType": "AwsApiCall", "managementEvent": True, "recipientAccountId": ACCOUNT,
        "eventCategory": "Management"}
    return bus_event(wiring.cognito_event_pattern(user_pool_id, ACCOUNT), detail)


def post_confirmation_event(user_pool_id: str, user_name: str, attributes: dict[str, str],
                            trigger_source: str = SIGN_UP, client_id: str = "local") -> dict[str, Any]:
    """The event Cognito sends the PostConfirmation trigger."""
    return {"version": "1", "region": REGION, "userPoolId": user_pool_id, "userName": user_name,
            "triggerSource": trigger_source, "callerContext": {"awsSdkVersion": "local", "clientId": client_id},
            "request": {"userAttributes": attributes}, "response": {}}


def sqs_batch(*jobs: object) -> dict[str, Any]:
    """What an SQS event source gives its function: one record per message (`jobs` as JSON,
    a string as it is), messageIds m0, m1..."""
    return {"Records": [{"messageId": f"m{i}", "receiptHandle": "r", "attributes": {}, "messageAttributes": {},
                         "body": job if isinstance(job, str) else json.dumps(job), "md5OfBody": "",
                         "eventSource": "aws:sqs", "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:q",
                         "awsRegion": REGION} for i, job in enumerate(jobs)]}


def execution_status_change(execution: dict[str, Any]) -> dict[str, Any]:
    """'Step Functions Execution Status Change' for an execution as DescribeExecution answers."""
    return bus_event(wiring.EXECUTION_STATUS_PATTERN, {
        key: execution.get(key) for key in ("executionArn", "stateMachineArn", "name", "status", "input",
                                             "error", "cause")} | {"redriveCount": execution.get("redriveCount", 0)},
        resources=(execution["executionArn"],))
