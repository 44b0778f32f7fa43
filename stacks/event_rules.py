"""What starts a user's workflow besides a sign-up, and what audits the workflows: the rules on
Cognito's changes (CloudTrail) and on the 'Sync chat user' event (the stack's own bus), their
function OnCognitoChange, the failure audit's rule and RecordFailure, and the queues that keep
what could not be delivered or handled."""

from aws_cdk import Duration, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_

from chat_provisioning.domain.config import ChatConfig
from chat_provisioning.domain.executions import FAILED_STATUSES
from stacks import wiring

from .functions import Functions
from .queues import queue
from .user_pool import UserPool
from .workflow import Workflow, execution_arn

# A rule's Lambda target, once delivered: Lambda's own retries of a function error (at most 2)
# and how old an event may get while it waits for them (Lambda allows 60 s to 6 hours).
ASYNC_RETRIES, ASYNC_MAX_AGE = 2, 6 * 3600


class EventRules:
    def __init__(self, stack: Stack, config: ChatConfig, functions: Functions, pool: UserPool,
                 workflow: Workflow, audit: dynamodb.Table, locks: dynamodb.Table):
        # EventBridge invokes a Lambda target asynchronously: the rules' retry policy and this
        # DLQ cover delivery (throttles, a missing permission), never the function's own errors.
        self.events_dlq = queue(stack, "EventsDLQ")
        # A function error is Lambda's to retry (twice, the most it allows); then the invocation
        # record (the event, the error) goes to this queue: a bad 'Sync chat user' detail, a start
        # that kept failing, a failure audit that could not be written.
        self.failed_events = queue(stack, "FailedEventsQueue")
        # A few AWS calls each, about 25 s at most each (adapters/clients.AWS_CALLS).
        env = wiring.lambda_environment(config, audit.table_name, locks.table_name,
                                        sync_state_machine_arn=workflow.sync.state_machine_arn)
        self.on_cognito_change = functions.make("OnCognitoChange", env, timeout=Duration.seconds(60))
        self.record_failure = functions.make("RecordFailure", env, timeout=Duration.seconds(60))
        failed = {"failed events queue": [self.failed_events.queue_arn]}
        functions.grant("OnCognitoChange", self.on_cognito_change, {
            "pool": [pool.arn], "SyncUser": [workflow.sync.state_machine_arn],
            "SyncUser's executions": [execution_arn(stack, "SyncUser")], **failed})
        functions.grant("RecordFailure", self.record_failure, {
            "audit table": [audit.table_arn], "the machines' executions": workflow.execution_arns(stack), **failed})
        for fn in (self.record_failure, self.on_cognito_change):  # the rules' targets
            lambda_.CfnEventInvokeConfig(
                stack, f"{fn.node.id}AsyncInvoke", function_name=fn.function_name, qualifier="$LATEST",
                maximum_retry_attempts=ASYNC_RETRIES, maximum_event_age_in_seconds=ASYNC_MAX_AGE,
                destination_config=lambda_.CfnEventInvokeConfig.DestinationConfigProperty(
                    on_failure=lambda_.CfnEventInvokeConfig.OnFailureProperty(
                        destination=self.failed_events.queue_arn)))

        # Custom events come on a bus of the stack's own, from the principals config names: the
        # default bus takes PutEvents from anyone in the account who may call it.
        self.bus = bus = events.EventBus(stack, "EventBus", event_bus_name=f"{stack.stack_name}-events")
        senders = list(config.event_senders)
        bus.add_to_resource_policy(iam.PolicyStatement(
            sid="OnlyConfiguredSenders", effect=iam.Effect.DENY, principals=[iam.AnyPrincipal()],
            actions=["events:PutEvents"], resources=[bus.event_bus_arn],
            conditions={"ArnNotEquals": {"aws:PrincipalArn": senders}} if senders else None))
        if senders:
            bus.add_to_resource_policy(iam.PolicyStatement(
                sid="ConfiguredSenders", principals=[iam.ArnPrincipal(a) for a in senders],
                actions=["events:PutEvents"], resources=[bus.event_bus_arn]))

        def rule(rule_id: str, description: str, pattern: dict, target, event_bus=None) -> events.Rule:
            return events.Rule(stack, rule_id, description=description, targets=[target], event_bus=event_bus,
                               event_pattern=events.EventPattern(
                                   source=pattern["source"], detail_type=pattern["detail-type"],
                                   account=pattern.get("account"), detail=pattern.get("detail")))

        # How every rule delivers: retried, then kept in the events DLQ.
        self.delivery = delivery = dict(dead_letter_queue=self.events_dlq, retry_attempts=8,
                                        max_event_age=Duration.hours(24))
        # Group and status changes (CloudTrail, on the default bus: no one can send aws.* events)
        # and the custom event start the user's workflow.
        rule("CognitoChangeRule", "Cognito group and status changes sync the user",
             wiring.cognito_event_pattern(config.user_pool.user_pool_id, stack.account),
             targets.LambdaFunction(self.on_cognito_change, **delivery))
        rule("SyncEventRule", "'Sync chat user' events from this account sync the user",
             wiring.sync_event_pattern(stack.account), targets.LambdaFunction(self.on_cognito_change, **delivery),
             event_bus=bus)
        # Failed, timed-out and aborted executions are audited from their status change.
        rule("FailureAuditRule", "Audit executions that did not succeed",
             {**wiring.EXECUTION_STATUS_PATTERN,
              "detail": {"status": FAILED_STATUSES,
                         "stateMachineArn": [m.state_machine_arn for m in workflow.machines.values()]}},
             targets.LambdaFunction(self.record_failure, **delivery))
