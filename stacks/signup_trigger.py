"""The sign-up trigger (PostConfirmation), which never fails a sign-up: a start that fails goes
to the retry queue, whose consumer (RetryStart) starts it again."""

from aws_cdk import Duration, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sqs as sqs

from chat_provisioning.domain.config import ChatConfig
from stacks import wiring

from .functions import Functions
from .queues import queue
from .user_pool import UserPool
from .workflow import Workflow, execution_arn


class SignUpTrigger:
    def __init__(self, stack: Stack, config: ChatConfig, functions: Functions, pool: UserPool,
                 workflow: Workflow, audit: dynamodb.Table, locks: dynamodb.Table):
        self.retry_dlq = queue(stack, "StartRetryDLQ")
        # AWS asks for a queue's visibility timeout of six times its consumer's (RetryStart: 60 s
        # for one message's two calls, the queue 360 s).
        retry_queue = queue(stack, "StartRetryQueue", visibility_timeout=Duration.seconds(360),
                            dead_letter_queue=sqs.DeadLetterQueue(queue=self.retry_dlq, max_receive_count=10))
        env = wiring.lambda_environment(config, audit.table_name, locks.table_name,
                                        retry_queue.queue_url, workflow.sync.state_machine_arn)
        # Cognito waits 5 s for PostConfirmation: its calls take about 1.3 s each at most
        # (handlers/signup.QUICK).
        self.post_confirmation = functions.make("PostConfirmation", env, timeout=Duration.seconds(4))
        self.retry_start = functions.make("RetryStart", env, timeout=Duration.seconds(60))
        self.retry_start.add_event_source(sources.SqsEventSource(
            retry_queue, batch_size=1, report_batch_item_failures=True))  # one start per invocation: its time is known
        starts = {"pool": [pool.arn], "SyncUser": [workflow.sync.state_machine_arn],
                  "SyncUser's executions": [execution_arn(stack, "SyncUser")]}
        functions.grant("PostConfirmation", self.post_confirmation, {**starts, "retry queue": [retry_queue.queue_arn]})
        functions.grant("RetryStart", self.retry_start, starts)
        pool.trigger_post_confirmation(self.post_confirmation)
