"""Every queue of the stack alike: TLS only, encrypted by SQS, its messages kept 14 days (SQS's
most: what could not be delivered or handled waits for a person that long)."""

from aws_cdk import Duration, Stack
from aws_cdk import aws_sqs as sqs


def queue(stack: Stack, construct_id: str, **options) -> sqs.Queue:
    return sqs.Queue(stack, construct_id, enforce_ssl=True, encryption=sqs.QueueEncryption.SQS_MANAGED,
                     retention_period=Duration.days(14), **options)
