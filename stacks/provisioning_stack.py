"""The chat-provisioning stack, composed of its parts, one file each, each making its functions
and granting them their calls (calls.py): the stateful resources (the audit and lease tables,
the sweep's plans, here), the user pool (user_pool.py), the workflow (workflow.py), the sign-up
trigger (signup_trigger.py), the event rules and the failure audit (event_rules.py), the sweep
(sweep.py), what operators use (operators.py), monitoring (monitoring.py). Every resource
follows config from cdk.json."""

from aws_cdk import Annotations, Aspects, CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_s3 as s3
from constructs import Construct

from chat_provisioning.domain.config import ChatConfig

from .event_rules import EventRules
from .findings import AcceptCheckovFindings, accept_nag_finding, accept_stack_wide_findings
from .functions import Functions
from .monitoring import monitoring
from .network import network
from .operators import Operators
from .signup_trigger import SignUpTrigger
from .sweep import run_sweeps
from .user_pool import UserPool
from .workflow import Workflow


class ChatProvisioningStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, config: ChatConfig, **kwargs):
        super().__init__(scope, construct_id, **kwargs)
        Aspects.of(self).add(AcceptCheckovFindings())
        for note in config.unconfirmed:
            Annotations.of(self).add_warning_v2("chat-provisioning:unconfirmed", note)
        functions = Functions(self, config, network(self, config))

        audit = self._table("AuditTable", "sub", "sk", RemovalPolicy.RETAIN)
        # One item per room: the lease that serialises power-level writes (adapters/room_locks.py).
        locks = self._table("LocksTable", "lock", None, RemovalPolicy.DESTROY)
        # The sweep's plans: what it found and the requests its Distributed Map reads.
        # Versioned: a plan overwritten or deleted (only the sweep may, its policy says) keeps
        # its earlier version for 90 days.
        plans = s3.Bucket(self, "SweepPlans", enforce_ssl=True, encryption=s3.BucketEncryption.S3_MANAGED,
                          block_public_access=s3.BlockPublicAccess.BLOCK_ALL, versioned=True,
                          lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(90),
                                                            noncurrent_version_expiration=Duration.days(90))],
                          removal_policy=RemovalPolicy.RETAIN)
        accept_nag_finding(plans, "AwsSolutions::AwsSolutions-S1", "Sweep plans are written and read by this stack "
            "only; every write is in the plan Lambda's logs and the state machine's history.")
        if config.synapse_url.startswith("http://"):
            Annotations.of(self).add_warning_v2(
                "chat-provisioning:http-synapse",
                f"synapse_url {config.synapse_url} is http (allow_http_synapse): the bot's admin token "
                "crosses the network in clear. Use https unless that network is yours alone.")

        pool = UserPool(self, config)
        workflow = Workflow(self, config, functions, pool.arn, audit, locks, plans)
        signup = SignUpTrigger(self, config, functions, pool, workflow, audit, locks)
        rules = EventRules(self, config, functions, pool, workflow, audit, locks)
        run_sweeps(self, config, workflow, plans, rules.delivery)
        operators = Operators(self, functions, pool, workflow, audit, plans)

        for name, machine in workflow.machines.items():
            CfnOutput(self, f"{name}StateMachineArn", value=machine.state_machine_arn)
        CfnOutput(self, "PostConfirmationFunctionArn", value=signup.post_confirmation.function_arn,
                  description="For `chat-provisioning attach-trigger` on an imported pool")
        CfnOutput(self, "AuditTableName", value=audit.table_name)
        # What `chat-provisioning` reads to find the rest (toolbox/deployment.py).
        CfnOutput(self, "UserPoolId", value=pool.id)
        CfnOutput(self, "PlansBucketName", value=plans.bucket_name)
        CfnOutput(self, "InspectUserFunctionName", value=operators.inspect_user.function_name)
        CfnOutput(self, "EventBusName", value=rules.bus.event_bus_name,
                  description="Put 'Sync chat user' events here (config event_senders may)")
        dlqs = {"StartRetryDLQ": signup.retry_dlq, "EventsDLQ": rules.events_dlq,
                "FailedEventsQueue": rules.failed_events}
        monitoring(self, workflow.machines, dlqs)
        steps = list(workflow.steps.values())
        accept_stack_wide_findings(
            self, list(workflow.machines), invoked=steps,
            without_async_dlq=steps + [signup.post_confirmation, signup.retry_start, operators.inspect_user],
            with_destination=[rules.record_failure, rules.on_cognito_change],
            dlqs=list(dlqs.values()), dlqs_of_targets=[rules.events_dlq, rules.failed_events],
            sqs_consumer=signup.retry_start, plans=plans)

    def _table(self, construct_id: str, partition: str, sort: str | None,
               removal: RemovalPolicy) -> dynamodb.Table:
        def key(name: str) -> dynamodb.Attribute:
            return dynamodb.Attribute(name=name, type=dynamodb.AttributeType.STRING)
        return dynamodb.Table(
            self, construct_id, partition_key=key(partition), sort_key=key(sort) if sort else None,
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True),
            encryption=dynamodb.TableEncryption.AWS_MANAGED, removal_policy=removal)
