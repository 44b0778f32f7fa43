"""checkov's findings on the synthesized template that we accept, each once, with its reason.
They are written into each resource's own Metadata (`checkov: skip`, which checkov reads), so a
reviewer sees them in the template; tests/infra runs checkov, and a new finding fails the
suite until it is fixed or accepted here. cdk-nag's are accepted in the stack (_acknowledge)."""

import jsii
from aws_cdk import CfnResource, IAspect

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
