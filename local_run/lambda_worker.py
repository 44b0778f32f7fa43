"""The process of one local execution environment (lambda_runtime.py): the task root first on
sys.path, as on Lambda, before the local Lambda environment's site-packages (lambda_runtime.py);
each AWS call the function makes recorded in
LOCAL_CALLS_FILE (service, action, the parameters that name its resource, the error code if
refused) for the IAM check; then AWS's runtime interface client on the handler given as
argument."""

import json
import os
import sys

sys.path[0] = os.environ["LAMBDA_TASK_ROOT"]  # not this file's folder

import botocore.client  # noqa: E402
import botocore.exceptions  # noqa: E402

# The request parameters that name what a call acts on, in the calls our handlers make (an S3
# object's Key only: DynamoDB's Key holds a user's sub, which has no place in this record).
RESOURCE_PARAMETERS = ("TableName", "UserPoolId", "SecretId", "QueueUrl", "Bucket",
                       "stateMachineArn", "executionArn")
_make_api_call = botocore.client.BaseClient._make_api_call


def recorded(client, operation: str, params: dict):
    call = {"service": client.meta.service_model.signing_name, "action": operation,
            **{k: params[k] for k in RESOURCE_PARAMETERS if k in params},
            **({"Key": params["Key"]} if "Bucket" in params and "Key" in params else {})}
    try:
        return _make_api_call(client, operation, params)
    except botocore.exceptions.ClientError as e:
        call["error"] = e.response["Error"]["Code"]
        raise
    finally:
        with open(os.environ["LOCAL_CALLS_FILE"], "a") as f:  # one short append per call
            f.write(json.dumps(call) + "\n")


botocore.client.BaseClient._make_api_call = recorded

from awslambdaric.__main__ import main  # noqa: E402

main(sys.argv)
