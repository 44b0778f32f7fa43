"""The chat-provisioning stack, composed: the stateful resources (the audit and lease tables, the
sweep's plans), the workflow and its functions (workflow.py), what starts and audits it
(triggers.py), the sweep (sweep.py), monitoring (monitoring.py), and the operators' policy.
Every resource follows config from cdk.json."""

from aws_cdk import Annotations, Aspects, CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from chat_provisioning.domain.config import ChatConfig

from .findings import AcceptCheckovFindings, ack, acknowledge
from .monitoring import monitoring
from .network import network
from .sweep import run_sweeps
from .triggers import Triggers
from .workflow import Functions, Workflow


class ChatProvisioningStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, config: ChatConfig, **kwargs):
        super().__init__(scope, construct_id, **kwargs)
        Aspects.of(self).add(AcceptCheckovFindings())
        for note in config.unconfirmed:
            Annotations.of(self).add_warning_v2("chat-provisioning:unconfirmed", note)
        functions = Functions(self, config, network(self, config))

        audit = self._table("AuditTable", "sub", "sk", RemovalPolicy.RETAIN)
        # One item per room: the lease that serialises power-level writes (locks.py).
        locks = self._table("LocksTable", "lock", None, RemovalPolicy.DESTROY)
        # The sweep's plans: what it found and the requests its Distributed Map reads.
        # Versioned: a plan overwritten or deleted (only the sweep may, its policy says) keeps
        # its earlier version for 90 days.
        plans = s3.Bucket(self, "SweepPlans", enforce_ssl=True, encryption=s3.BucketEncryption.S3_MANAGED,
                          block_public_access=s3.BlockPublicAccess.BLOCK_ALL, versioned=True,
                          lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(90),
                                                            noncurrent_version_expiration=Duration.days(90))],
                          removal_policy=RemovalPolicy.RETAIN)
        ack(plans, "AwsSolutions::AwsSolutions-S1", "Sweep plans are written and read by this stack "
            "only; every write is in the plan Lambda's logs and the state machine's history.")
        if config.synapse_url.startswith("http://"):
            Annotations.of(self).add_warning_v2(
                "chat-provisioning:http-synapse",
                f"synapse_url {config.synapse_url} is http (allow_http_synapse): the bot's admin token "
                "crosses the network in clear. Use https unless that network is yours alone.")

        workflow = Workflow(self, config, functions, audit, locks, plans)
        triggers = Triggers(self, config, functions, workflow, audit, locks)
        run_sweeps(self, config, workflow, plans, triggers.delivery)

        for name, machine in workflow.machines.items():
            CfnOutput(self, f"{name}StateMachineArn", value=machine.state_machine_arn)
        CfnOutput(self, "PostConfirmationFunctionArn", value=triggers.post_confirmation.function_arn,
                  description="For `chat-provisioning attach-trigger` on an imported pool")
        CfnOutput(self, "AuditTableName", value=audit.table_name)
        # What `chat-provisioning` reads to find the rest (toolbox/deployment.py).
        CfnOutput(self, "UserPoolId", value=triggers.pool_id)
        CfnOutput(self, "PlansBucketName", value=plans.bucket_name)
        CfnOutput(self, "InspectUserFunctionName", value=workflow.inspect_user.function_name)
        CfnOutput(self, "EventBusName", value=triggers.bus.event_bus_name,
                  description="Put 'Sync chat user' events here (config event_senders may)")
        self._operator_policy(triggers.pool, workflow, audit, plans)
        monitoring(self, workflow.machines, triggers.dlqs)
        steps = list(workflow.steps.values())
        acknowledge(self, list(workflow.machines), invoked=steps,
                    without_async_dlq=steps + [triggers.post_confirmation, triggers.retry_start, workflow.inspect_user],
                    with_destination=[triggers.record_failure, triggers.on_cognito_change],
                    dlqs=list(triggers.dlqs.values()), dlqs_of_targets=[triggers.events_dlq, triggers.failed_events],
                    sqs_consumer=triggers.retry_start, plans=plans)

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

    def _operator_policy(self, pool: str, workflow: Workflow, audit: dynamodb.Table,
                         plans: s3.Bucket) -> None:
        """What `chat-provisioning` calls (toolbox/), and nothing more: attach it to the
        operators' role. Reading Matrix goes through InspectUser: no token, no network path."""
        machines = list(workflow.machines.values())

        def allowed(actions: list[str], resources: list[str]) -> iam.PolicyStatement:
            return iam.PolicyStatement(actions=actions, resources=resources)
        policy = iam.ManagedPolicy(self, "OperatorPolicy", description="chat-provisioning's operator commands", statements=[
            allowed(["cloudformation:DescribeStacks"], [self.stack_id]),
            allowed(["cognito-idp:ListUsers"], [pool]),  # a user named by email or username
            allowed(["lambda:InvokeFunction"], [workflow.inspect_user.function_arn]),
            allowed(["dynamodb:Query"], [audit.table_arn]),
            allowed(["states:ListExecutions", "states:StartExecution"], [m.state_machine_arn for m in machines]),
            allowed(["states:DescribeExecution", "states:GetExecutionHistory", "states:RedriveExecution"],
                    workflow.execution_arns(self)),
            allowed(["s3:GetObject"], [plans.arn_for_objects("sweeps/*")])])
        CfnOutput(self, "OperatorPolicyArn", value=policy.managed_policy_arn,
                  description="Attach to the role of the people who run chat-provisioning's commands")
        # Day one only (`chat-provisioning import-groups --apply`): a grant of roles, kept out of
        # the everyday policy. Attach it beside OperatorPolicy for the import, then detach it.
        importing = iam.ManagedPolicy(self, "GroupImportPolicy", description="chat-provisioning import-groups --apply",
                                      statements=[allowed(["cognito-idp:AdminAddUserToGroup"], [pool])])
        CfnOutput(self, "GroupImportPolicyArn", value=importing.managed_policy_arn,
                  description="Beside OperatorPolicy, for import-groups --apply on day one; detach it after")
