"""What starts the workflow and what audits it: the user pool (created, or production's,
imported) and its sign-up trigger with its retry queue, the Cognito-change and custom-event
rules on their buses, and the failure audit's rule; the queues that keep what could not be
delivered or handled."""

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sqs as sqs

from chat_provisioning.domain.executions import FAILED_STATUSES
from chat_provisioning.domain.config import ChatConfig
from stacks import wiring

from .findings import ack
from .workflow import Functions, Workflow, allow, execution_arn

# A rule's Lambda target, once delivered: Lambda's own retries of a function error (at most 2)
# and how old an event may get while it waits for them (Lambda allows 60 s to 6 hours).
ASYNC_RETRIES, ASYNC_MAX_AGE = 2, 6 * 3600


class Triggers:
    def __init__(self, stack: Stack, config: ChatConfig, functions: Functions, workflow: Workflow,
                 audit: dynamodb.Table, locks: dynamodb.Table):
        sync, steps, inspect_user = workflow.sync, workflow.steps, workflow.inspect_user
        # The sign-up trigger never fails a sign-up: a start that fails goes to this queue.
        self.retry_dlq = sqs.Queue(stack, "StartRetryDLQ", enforce_ssl=True,
                                   encryption=sqs.QueueEncryption.SQS_MANAGED,
                                   retention_period=Duration.days(14))
        retry_queue = sqs.Queue(
            stack, "StartRetryQueue", enforce_ssl=True, encryption=sqs.QueueEncryption.SQS_MANAGED,
            visibility_timeout=Duration.seconds(360), retention_period=Duration.days(14),
            dead_letter_queue=sqs.DeadLetterQueue(queue=self.retry_dlq, max_receive_count=10))
        trigger_env = wiring.lambda_environment(config, audit.table_name, locks.table_name,
                                                retry_queue.queue_url, sync.state_machine_arn)
        # EventBridge invokes a Lambda target asynchronously: the rules' retry policy and this
        # DLQ cover delivery (throttles, a missing permission), never the function's own errors.
        self.events_dlq = sqs.Queue(stack, "EventsDLQ", enforce_ssl=True,
                                    encryption=sqs.QueueEncryption.SQS_MANAGED,
                                    retention_period=Duration.days(14))
        # A function error is Lambda's to retry (twice, the most it allows); then the invocation
        # record (the event, the error) goes to this queue: a bad 'Sync chat user' detail, a start
        # that kept failing, a failure audit that could not be written.
        self.failed_events = sqs.Queue(stack, "FailedEventsQueue", enforce_ssl=True,
                                       encryption=sqs.QueueEncryption.SQS_MANAGED,
                                       retention_period=Duration.days(14))
        # The triggers make a few AWS calls each (about 25 s at most each, aws.AWS_CALLS; the
        # sign-up trigger's about 1.3 s, signup.QUICK).
        # Cognito waits 5 s for PostConfirmation; AWS asks for a queue's visibility timeout of
        # six times its consumer's (RetryStart: 60 s for one message's two calls, the queue 360 s).
        self.post_confirmation = post_confirmation = functions.make(
            "PostConfirmation", wiring.TRIGGERS["PostConfirmation"], trigger_env, timeout=Duration.seconds(4))
        self.retry_start = retry_start = functions.make(
            "RetryStart", wiring.TRIGGERS["RetryStart"], trigger_env, timeout=Duration.seconds(60))
        self.record_failure = record_failure = functions.make(
            "RecordFailure", wiring.TRIGGERS["RecordFailure"], trigger_env, timeout=Duration.seconds(60))
        self.on_cognito_change = on_cognito_change = functions.make(
            "OnCognitoChange", wiring.TRIGGERS["OnCognitoChange"], trigger_env, timeout=Duration.seconds(60))
        for fn in (record_failure, on_cognito_change):  # the rules' targets
            lambda_.CfnEventInvokeConfig(
                stack, f"{fn.node.id}AsyncInvoke", function_name=fn.function_name, qualifier="$LATEST",
                maximum_retry_attempts=ASYNC_RETRIES, maximum_event_age_in_seconds=ASYNC_MAX_AGE,
                destination_config=lambda_.CfnEventInvokeConfig.DestinationConfigProperty(
                    on_failure=lambda_.CfnEventInvokeConfig.OnFailureProperty(
                        destination=self.failed_events.queue_arn)))
            allow(fn, ["sqs:SendMessage"], [self.failed_events.queue_arn])  # Lambda sends as the function
        for fn in (post_confirmation, retry_start, on_cognito_change):
            sync.grant_start_execution(fn)
            # a taken name: the existing execution's input tells a repeat from another start
            allow(fn, ["states:DescribeExecution"], [execution_arn(stack, "SyncUser")])
        allow(post_confirmation, ["sqs:SendMessage"], [retry_queue.queue_arn])
        retry_start.add_event_source(sources.SqsEventSource(
            retry_queue, batch_size=1, report_batch_item_failures=True))  # one start per invocation: its time is known
        allow(record_failure, ["dynamodb:PutItem"], [audit.table_arn])
        # The failure audit reads the history of these machines' executions (the failed state).
        allow(record_failure, ["states:GetExecutionHistory"], workflow.execution_arns(stack))

        self.pool, self.pool_id = self.user_pool(stack, config)
        # Policies of their own, not the roles' default policies: a created pool depends on the
        # trigger function, which depends on its default policy, which must not depend on it.
        # The SyncUser steps read the user in ReadCognitoUser, and again in each step that grants,
        # right before it writes.
        for fn, actions in ((steps["SyncUserSteps"], ["ListUsers", "AdminListGroupsForUser"]),
                            (steps["PlanSweep"], ["ListUsers", "ListGroups", "ListUsersInGroup"]),
                            (inspect_user, ["ListUsers", "AdminListGroupsForUser"]),
                            (post_confirmation, ["AdminGetUser"]), (retry_start, ["AdminGetUser"]),
                            (on_cognito_change, ["AdminGetUser"])):
            iam.Policy(stack, f"{fn.node.id.removesuffix('Function')}CognitoCalls", roles=[fn.role],
                       statements=[iam.PolicyStatement(actions=[f"cognito-idp:{a}" for a in actions],
                                                       resources=[self.pool])])

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
             targets.LambdaFunction(on_cognito_change, **delivery))
        rule("SyncEventRule", "'Sync chat user' events from this account sync the user",
             wiring.sync_event_pattern(stack.account), targets.LambdaFunction(on_cognito_change, **delivery),
             event_bus=bus)
        # Failed, timed-out and aborted executions are audited from their status change.
        rule("FailureAuditRule", "Audit executions that did not succeed",
             {**wiring.EXECUTION_STATUS_PATTERN,
              "detail": {"status": FAILED_STATUSES,
                         "stateMachineArn": [m.state_machine_arn for m in workflow.machines.values()]}},
             targets.LambdaFunction(record_failure, **delivery))

    def user_pool(self, stack: Stack, config: ChatConfig) -> tuple[str, str]:
        """A new pool with the trigger (dev, demo), or the imported prod pool, which CDK cannot
        attach a trigger to: grant Cognito the invoke, and attach it as the README says. Its
        ARN and ID."""
        if config.user_pool.create:
            pool = cognito.UserPool(
                stack, "UserPool", self_sign_up_enabled=True,
                sign_in_aliases=cognito.SignInAliases(email=True),
                password_policy=cognito.PasswordPolicy(
                    min_length=12, require_symbols=True, require_digits=True,
                    require_lowercase=True, require_uppercase=True),
                mfa=cognito.Mfa.OPTIONAL, mfa_second_factor=cognito.MfaSecondFactor(sms=False, otp=True),
                lambda_triggers=cognito.UserPoolTriggers(post_confirmation=self.post_confirmation),
                removal_policy=RemovalPolicy.DESTROY)
            pool.add_client("MobileClient", auth_flows=cognito.AuthFlow(user_srp=True))
            for group in config.roles:
                cognito.CfnUserPoolGroup(stack, f"Group-{group}", user_pool_id=pool.user_pool_id,
                                         group_name=group)
            ack(pool, "AwsSolutions::AwsSolutions-COG2", "Dev/demo pool: MFA is offered (TOTP), not forced.")
            for nag_rule in ("AwsSolutions::AwsSolutions-COG3", "AwsSolutions::AwsSolutions-COG8"):
                ack(pool, nag_rule, "Dev/demo pool: threat protection (Plus tier) is billed per user; "
                                    "production imports its own pool.")
            return pool.user_pool_arn, pool.user_pool_id
        arn = stack.format_arn(service="cognito-idp", resource="userpool",
                               resource_name=config.user_pool.user_pool_id)
        self.post_confirmation.add_permission(
            "CognitoInvoke", principal=iam.ServicePrincipal("cognito-idp.amazonaws.com"), source_arn=arn)
        return arn, config.user_pool.user_pool_id

    @property
    def dlqs(self) -> dict[str, sqs.Queue]:
        return {"StartRetryDLQ": self.retry_dlq, "EventsDLQ": self.events_dlq, "FailedEventsQueue": self.failed_events}
