"""The findings on the synthesized template that we accept, each with its reason: cdk-nag's
(accepted on the construct they concern, `accept_nag_finding`, or stack-wide), and
checkov's, written into each resource's own Metadata (`checkov: skip`, which checkov reads), so
a reviewer sees them in the template. tests/infra runs both, and a new finding fails the suite
until it is fixed or accepted here."""

import jsii
from aws_cdk import Acknowledgment, CfnResource, IAspect, Stack, Token, Validations
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from constructs import Construct


def accept_nag_finding(scope: Construct, rule: str, reason: str) -> None:
    """Accept a cdk-nag finding on `scope` and below, saying why."""
    Validations.of(scope).acknowledge(Acknowledgment(id=rule, reason=reason))

ACCEPTED = {
    "AWS::Lambda::Function": {
        "CKV_AWS_115": "Reserved concurrency caps the functions that call Synapse (synapse_concurrency); "
                       "a cap on the others would throttle sign-ups and Cognito's events for nothing.",
        "CKV_AWS_116": "No function DLQ: the steps and the sign-up trigger are invoked synchronously, "
                       "RetryStart by its queue (which has its own DLQ), and the rules' targets keep their "
                       "failures in an on-failure destination (EventInvokeConfig), which records the error.",
        "CKV_AWS_117": "Only the functions that call Synapse run in the VPC (network.*; synth warns while it "
                       "is unset); the others call AWS's public APIs only.",
        "CKV_AWS_173": "The environment holds the chat config and resource names, no secret (the bot's token "
                       "is read from Secrets Manager); Lambda encrypts it at rest with its own key.",
    },
    "AWS::Logs::LogGroup": {
        "CKV_AWS_158": "CloudWatch Logs encrypts at rest; the logs hold subs and no secret or email "
                       "(tests scan them), and a customer managed key would only add a key policy to keep.",
    },
    "AWS::DynamoDB::Table": {
        "CKV_AWS_119": "Encrypted at rest with the AWS managed key; who reads the audit trail and the "
                       "leases is decided by IAM, which a customer managed key would only repeat.",
    },
    "AWS::S3::Bucket": {
        "CKV_AWS_18": "Sweep plans are written and read by this stack only; every write is in PlanSweep's "
                      "logs and the sweep's execution history (as acknowledged to cdk-nag, S1).",
    },
    "AWS::SNS::Topic": {
        "CKV_AWS_26": "Alarm notifications carry alarm names and states only; CloudWatch cannot publish to a "
                      "topic under SNS's AWS managed key, and these are not worth a customer managed one.",
    },
    "AWS::SQS::Queue": {
        "CKV_AWS_27": "Encrypted with SSE-SQS (SqsManagedSseEnabled); this check reads KmsMasterKeyId only.",
    },
}


@jsii.implements(IAspect)
class AcceptCheckovFindings:
    def visit(self, node) -> None:
        if isinstance(node, CfnResource) and node.cfn_resource_type in ACCEPTED:
            node.add_metadata("checkov", {"skip": [
                {"id": check, "comment": reason} for check, reason in ACCEPTED[node.cfn_resource_type].items()]})


def accept_stack_wide_findings(stack: Stack, machines: list[str], invoked: list[lambda_.Function],
                without_async_dlq: list[lambda_.Function], with_destination: list[lambda_.Function],
                dlqs: list[sqs.Queue], dlqs_of_targets: list[sqs.Queue], sqs_consumer: lambda_.Function,
                plans: s3.Bucket) -> None:
    """The cdk-nag findings we accept for the whole stack, with their reasons."""
    basic = ("AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
             "AWSLambdaBasicExecutionRole]")
    accept_nag_finding(stack, basic, "AWSLambdaBasicExecutionRole only lets a function write its own logs.")
    accept_nag_finding(stack, basic.replace("AWSLambdaBasicExecutionRole", "AWSLambdaVPCAccessExecutionRole"),
        "AWSLambdaVPCAccessExecutionRole only manages the function's own network interfaces.")
    accept_nag_finding(stack, "AwsSolutions::AwsSolutions-IAM5[Resource::*]",
        "X-Ray's PutTraceSegments/PutTelemetryRecords and Step Functions' log delivery "
        "actions accept no resource but *.")
    for fn in invoked:
        logical = stack.get_logical_id(fn.node.default_child)
        accept_nag_finding(stack, f"AwsSolutions::AwsSolutions-IAM5[Resource::<{logical}.Arn>:*]",
            "The state machine may invoke the step's versions and aliases (grantInvoke).")
    for fn in without_async_dlq:
        accept_nag_finding(fn, "Serverless::Serverless-LambdaDLQ",
            "Invoked synchronously (Step Functions, Cognito) or by an SQS event source "
            "whose queue has its own DLQ; an async DLQ would never receive anything.")
    # cdk-nag names the account as the template holds it: a literal once `cdk deploy` (or
    # CDK_DEFAULT_ACCOUNT) gives the stack one, the pseudo parameter otherwise.
    account = "<AWS::AccountId>" if Token.is_unresolved(stack.account) else stack.account
    for name in machines + ["SweepUsers/*"]:
        accept_nag_finding(stack,
                           f"AwsSolutions::AwsSolutions-IAM5[Resource::arn:{stack.partition}:states:{stack.region}"
                  f":{account}:execution:{stack.stack_name}-{name}:*]",
            "Executions of this stack's own state machines (failure audit, the sweep's map "
            "runs and child workflows): their names are not known in advance.")
    accept_nag_finding(stack,
                       f"AwsSolutions::AwsSolutions-IAM5[Resource::<{stack.get_logical_id(plans.node.default_child)}.Arn>/sweeps/*]",
        "Each sweep writes and reads its own objects under sweeps/<id>/.")
    for dlq in dlqs:
        accept_nag_finding(dlq, "Serverless::Serverless-SQSRedrivePolicy", "This queue is itself a DLQ.")
    for fn in with_destination:
        accept_nag_finding(fn, "Serverless::Serverless-LambdaDLQ",
            "Its asynchronous failures go to an on-failure destination (FailedEventsQueue), "
            "which records the error with the event; a DLQ would keep the event alone.")
    for queue in dlqs_of_targets:  # no queue's redrive policy names them: cdk-nag cannot tell
        accept_nag_finding(queue, "AwsSolutions::AwsSolutions-SQS3",
            "This queue is itself a dead-letter queue: of the rules' deliveries, or the "
            "on-failure destination of their Lambda targets.")
    accept_nag_finding(sqs_consumer, "Serverless::Serverless-LambdaEventSourceMappingDestination",
        "SQS event sources take no on-failure destination; the queue's redrive policy "
        "moves a message to its DLQ after 10 receives.")
