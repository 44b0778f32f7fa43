"""The chat-provisioning stack: the Lambda functions, the Step Functions workflow (ASL inlined
from statemachines/), what starts it (Cognito trigger, EventBridge rule, retry queue), the
audit table, the failure audit and the alarms. Every resource follows config from cdk.json."""

from aws_cdk import (Acknowledgment, Annotations, ArnFormat, Aspects, CfnOutput, Duration, RemovalPolicy, Stack,
                     Token, Validations)
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from stacks import wiring
from chat_provisioning.config import GATEWAY_ENDPOINTS, ChatConfig

from .bundling import ARCHITECTURE, RUNTIME, lambda_code
from .checkov import AcceptCheckovFindings
from .dashboard import operations_dashboard, ours

LOG_RETENTION = logs.RetentionDays.THREE_MONTHS
# A rule's Lambda target, once delivered: Lambda's own retries of a function error (at most 2)
# and how old an event may get while it waits for them (Lambda allows 60 s to 6 hours).
ASYNC_RETRIES, ASYNC_MAX_AGE = 2, 6 * 3600
# Lambda's CPU scales with memory (1,769 MB: one vCPU). PlanSweep holds the whole pool:
# measured here, about 4 KB a user over a 75 MB start (88 MB at 3,000 users), so 100,000 users
# need about 500 MB. PostConfirmation's cold start (its import and two clients) took 0.30-0.42 s
# of a full CPU here: about 2-3 s at 256 MB's share, 0.5-0.7 s at 1,024 MB's, which leaves
# Cognito's 5 s to the calls themselves.
MEMORY_MB = {"PlanSweep": 1024, "PostConfirmation": 1024}


def ack(scope: Construct, rule: str, reason: str) -> None:
    """Accept a cdk-nag finding on `scope` and below, saying why."""
    Validations.of(scope).acknowledge(Acknowledgment(id=rule, reason=reason))


class ChatProvisioningStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, config: ChatConfig, **kwargs):
        super().__init__(scope, construct_id, **kwargs)
        Aspects.of(self).add(AcceptCheckovFindings())
        for note in config.unconfirmed:
            Annotations.of(self).add_warning_v2("chat-provisioning:unconfirmed", note)
        code = lambda_code()
        network = self._network(config)

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

        timeouts = wiring.function_timeouts()
        needed = wiring.longest_unsplit_seconds(config)
        if short := {n: t for n, t in timeouts.items() if n in wiring.CALLS_SYNAPSE and t < needed}:
            raise SystemExit(
                f"synapse_timeout_seconds {config.synapse_timeout_seconds} is too long for the steps' time: "
                f"a lease wait and a guarded write need {needed:.0f} s, and {short} have less (their Tasks' "
                f"TimeoutSeconds in statemachines/, less {wiring.TASK_OVERHEAD_SECONDS} s).")

        def function(name: str, handler: str, env: dict, timeout: Duration | None = None,
                     **kw) -> lambda_.Function:
            # Only the functions that call Synapse run in the VPC, and they are capped: Synapse
            # is single-threaded, and an event flood then waits in Step Functions' retries.
            calls_synapse = name in wiring.CALLS_SYNAPSE
            return lambda_.Function(
                self, f"{name}Function", runtime=RUNTIME, architecture=ARCHITECTURE,
                handler=handler, code=code, environment=env, memory_size=MEMORY_MB.get(name, 256),
                timeout=timeout or Duration.seconds(timeouts[name]), tracing=lambda_.Tracing.ACTIVE,
                reserved_concurrent_executions=None if not calls_synapse else wiring.INSPECT_CONCURRENCY
                if name in wiring.TOOLS else config.synapse_concurrency,
                log_group=logs.LogGroup(self, f"{name}Logs", retention=LOG_RETENTION,
                                        removal_policy=RemovalPolicy.DESTROY),
                **(network if calls_synapse else {}), **kw)

        def allow(fn: lambda_.Function, actions: list[str], resources: list[str]) -> None:
            fn.add_to_role_policy(iam.PolicyStatement(actions=actions, resources=resources))

        step_env = wiring.lambda_environment(config, audit.table_name, locks.table_name,
                                             plans_bucket=plans.bucket_name)
        steps = {name: function(name, handler, step_env) for name, handler in wiring.STEPS.items()}
        # Operators' read of one user in Cognito and Synapse (toolbox/, `user status`).
        inspect_user = function("InspectUser", wiring.TOOLS["InspectUser"], step_env,
                                timeout=Duration.seconds(wiring.INSPECT_SECONDS))
        callers = {n: fn for n, fn in {**steps, "InspectUser": inspect_user}.items() if n in wiring.CALLS_SYNAPSE}
        # Each function's role allows the calls it makes and nothing more: the bot's token for
        # those that call Synapse (GetSecretValue, what Powertools calls); the audit trail is
        # append-only (PutItem, always conditional in audit.py; ProvisionUser reads it for the
        # reactivation rule); the leases are only ever updated (locks.py).
        token = self.format_arn(service="secretsmanager", resource="secret",
                                resource_name=f"{config.admin_token_secret_name}-??????",
                                arn_format=ArnFormat.COLON_RESOURCE_NAME)
        for caller in callers.values():
            allow(caller, ["secretsmanager:GetSecretValue"], [token])
            if config.admin_token_kms_key_arn:  # a customer managed key: decrypt, via the secret only
                caller.add_to_role_policy(iam.PolicyStatement(
                    actions=["kms:Decrypt"], resources=[config.admin_token_kms_key_arn],
                    conditions={"StringEquals": {"kms:ViaService": f"secretsmanager.{self.region}.amazonaws.com"}}))
        allow(steps["RecordAudit"], ["dynamodb:PutItem"], [audit.table_arn])
        allow(steps["ProvisionUser"], ["dynamodb:Query"], [audit.table_arn])
        allow(steps["AssignRoles"], ["dynamodb:UpdateItem"], [locks.table_arn])
        allow(steps["PlanSweep"], ["s3:PutObject"], [plans.arn_for_objects("sweeps/*")])

        # Under /aws/vendedlogs/states/: other names grow the account's CloudWatch Logs resource
        # policy (5,120 characters), and CreateStateMachine fails once it is full.
        machine_logs = logs.LogGroup(self, "WorkflowLogs", retention=LOG_RETENTION,
                                     log_group_name=f"/aws/vendedlogs/states/{self.stack_name}-workflows",
                                     removal_policy=RemovalPolicy.DESTROY)
        arns = {wiring.placeholder(n): fn.function_arn for n, fn in steps.items()}
        self.machines = {}
        for name, asl in wiring.MACHINES.items():  # in order: the sweep runs the one before it
            text = asl.read_text()
            values = arns | {wiring.machine_placeholder(m): sm.state_machine_arn for m, sm in self.machines.items()} \
                | {wiring.PLANS_BUCKET_PLACEHOLDER: plans.bucket_name}
            self.machines[name] = sfn.StateMachine(
                self, name, state_machine_name=f"{self.stack_name}-{name}",
                definition_body=sfn.DefinitionBody.from_string(text),
                definition_substitutions={k: v for k, v in values.items() if f"${{{k}}}" in text},
                state_machine_type=sfn.StateMachineType.STANDARD,
                tracing_enabled=True,
                # Execution data holds the sub and display name: keep it out of the logs.
                logs=sfn.LogOptions(destination=machine_logs, level=sfn.LogLevel.ALL,
                                    include_execution_data=False))
            for step, fn in steps.items():
                if f"${{{wiring.placeholder(step)}}}" in text:
                    fn.grant_invoke(self.machines[name])
        sync, sweep = self.machines["SyncUser"], self.machines["SweepUsers"]
        self._allow_sweep_to_run(sweep, sync, plans)
        # Nobody but PlanSweep writes a plan and nobody but the sweep its results: a swapped
        # requests.json could only name users anyway (ApplyPlan builds each input from a sub).
        plans.add_to_resource_policy(iam.PolicyStatement(
            sid="OnlyTheSweepWritesPlans", effect=iam.Effect.DENY, principals=[iam.AnyPrincipal()],
            actions=["s3:PutObject", "s3:DeleteObject"], resources=[plans.arn_for_objects("sweeps/*")],
            conditions={"ArnNotEquals": {"aws:PrincipalArn": [steps["PlanSweep"].role.role_arn,
                                                              sweep.role.role_arn]}}))

        # The sign-up trigger never fails a sign-up: a start that fails goes to this queue.
        retry_dlq = sqs.Queue(self, "StartRetryDLQ", enforce_ssl=True,
                              encryption=sqs.QueueEncryption.SQS_MANAGED,
                              retention_period=Duration.days(14))
        retry_queue = sqs.Queue(
            self, "StartRetryQueue", enforce_ssl=True, encryption=sqs.QueueEncryption.SQS_MANAGED,
            visibility_timeout=Duration.seconds(360), retention_period=Duration.days(14),
            dead_letter_queue=sqs.DeadLetterQueue(queue=retry_dlq, max_receive_count=10))
        trigger_env = wiring.lambda_environment(config, audit.table_name, locks.table_name,
                                                retry_queue.queue_url, sync.state_machine_arn)
        # EventBridge invokes a Lambda target asynchronously: the rules' retry policy and this
        # DLQ cover delivery (throttles, a missing permission), never the function's own errors.
        events_dlq = sqs.Queue(self, "EventsDLQ", enforce_ssl=True,
                               encryption=sqs.QueueEncryption.SQS_MANAGED,
                               retention_period=Duration.days(14))
        # A function error is Lambda's to retry (twice, the most it allows); then the invocation
        # record (the event, the error) goes to this queue: a bad 'Sync chat user' detail, a start
        # that kept failing, a failure audit that could not be written.
        failed_events = sqs.Queue(self, "FailedEventsQueue", enforce_ssl=True,
                                  encryption=sqs.QueueEncryption.SQS_MANAGED,
                                  retention_period=Duration.days(14))
        # The triggers make a few AWS calls each (about 25 s at most each, aws.AWS_CALLS; the
        # sign-up trigger's about 1.3 s, signup.QUICK).
        # Cognito waits 5 s for PostConfirmation; AWS asks for a queue's visibility timeout of
        # six times its consumer's (RetryStart: 60 s for one message's two calls, the queue 360 s).
        post_confirmation = function("PostConfirmation", wiring.TRIGGERS["PostConfirmation"],
                                     trigger_env, timeout=Duration.seconds(4))
        retry_start = function("RetryStart", wiring.TRIGGERS["RetryStart"], trigger_env,
                               timeout=Duration.seconds(60))
        record_failure = function("RecordFailure", wiring.TRIGGERS["RecordFailure"], trigger_env,
                                  timeout=Duration.seconds(60))
        on_cognito_change = function("OnCognitoChange", wiring.TRIGGERS["OnCognitoChange"], trigger_env,
                                     timeout=Duration.seconds(60))
        for fn in (record_failure, on_cognito_change):  # the rules' targets
            lambda_.CfnEventInvokeConfig(
                self, f"{fn.node.id}AsyncInvoke", function_name=fn.function_name, qualifier="$LATEST",
                maximum_retry_attempts=ASYNC_RETRIES, maximum_event_age_in_seconds=ASYNC_MAX_AGE,
                destination_config=lambda_.CfnEventInvokeConfig.DestinationConfigProperty(
                    on_failure=lambda_.CfnEventInvokeConfig.OnFailureProperty(destination=failed_events.queue_arn)))
            allow(fn, ["sqs:SendMessage"], [failed_events.queue_arn])  # Lambda sends as the function
        for fn in (post_confirmation, retry_start, on_cognito_change):
            sync.grant_start_execution(fn)
        allow(post_confirmation, ["sqs:SendMessage"], [retry_queue.queue_arn])
        retry_start.add_event_source(sources.SqsEventSource(
            retry_queue, batch_size=1, report_batch_item_failures=True))  # one start per invocation: its time is known
        allow(record_failure, ["dynamodb:PutItem"], [audit.table_arn])
        # The failure audit reads the history of these machines' executions (the failed state).
        allow(record_failure, ["states:GetExecutionHistory"], [self._execution_arn(name) for name in self.machines])

        pool, pool_id = self._user_pool(config, post_confirmation)
        # Policies of their own, not the roles' default policies: a created pool depends on the
        # trigger function, which depends on its default policy, which must not depend on it.
        for fn, actions in ((steps["ReadCognitoUser"], ["ListUsers", "AdminListGroupsForUser"]),
                            # read again right before a reactivation, and before granting a level
                            (steps["ProvisionUser"], ["ListUsers"]),
                            (steps["AssignRoles"], ["ListUsers", "AdminListGroupsForUser"]),
                            (steps["PlanSweep"], ["ListUsers", "ListGroups", "ListUsersInGroup"]),
                            (inspect_user, ["ListUsers", "AdminListGroupsForUser"]),
                            (post_confirmation, ["AdminGetUser"]), (retry_start, ["AdminGetUser"]),
                            (on_cognito_change, ["AdminGetUser"])):
            iam.Policy(self, f"{fn.node.id.removesuffix('Function')}CognitoCalls", roles=[fn.role],
                       statements=[iam.PolicyStatement(actions=[f"cognito-idp:{a}" for a in actions],
                                                       resources=[pool])])

        # Custom events come on a bus of the stack's own, from the principals config names: the
        # default bus takes PutEvents from anyone in the account who may call it.
        bus = events.EventBus(self, "EventBus", event_bus_name=f"{self.stack_name}-events")
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
            return events.Rule(self, rule_id, description=description, targets=[target], event_bus=event_bus,
                               event_pattern=events.EventPattern(
                                   source=pattern["source"], detail_type=pattern["detail-type"],
                                   account=pattern.get("account"), detail=pattern.get("detail")))

        delivery = dict(dead_letter_queue=events_dlq, retry_attempts=8, max_event_age=Duration.hours(24))
        # Group and status changes (CloudTrail, on the default bus: no one can send aws.* events)
        # and the custom event start the user's workflow.
        rule("CognitoChangeRule", "Cognito group and status changes sync the user",
             wiring.cognito_event_pattern(config.user_pool.user_pool_id, self.account),
             targets.LambdaFunction(on_cognito_change, **delivery))
        rule("SyncEventRule", "'Sync chat user' events from this account sync the user",
             wiring.sync_event_pattern(self.account), targets.LambdaFunction(on_cognito_change, **delivery),
             event_bus=bus)
        events.Rule(self, "SweepSchedule", description="The reconciliation sweep",
                    schedule=events.Schedule.expression(config.sweep_schedule),
                    targets=[targets.SfnStateMachine(sweep, input=events.RuleTargetInput.from_object({}),
                                                     **delivery)])
        # Failed, timed-out and aborted executions are audited from their status change.
        rule("FailureAuditRule", "Audit executions that did not succeed",
             {**wiring.EXECUTION_STATUS_PATTERN,
              "detail": {"status": wiring.FAILED_STATUSES,
                         "stateMachineArn": [m.state_machine_arn for m in self.machines.values()]}},
             targets.LambdaFunction(record_failure, **delivery))

        for name, machine in self.machines.items():
            CfnOutput(self, f"{name}StateMachineArn", value=machine.state_machine_arn)
        CfnOutput(self, "PostConfirmationFunctionArn", value=post_confirmation.function_arn,
                  description="For `chat-provisioning attach-trigger` on an imported pool")
        CfnOutput(self, "AuditTableName", value=audit.table_name)
        # What `chat-provisioning` reads to find the rest (toolbox/deployment.py).
        CfnOutput(self, "UserPoolId", value=pool_id)
        CfnOutput(self, "PlansBucketName", value=plans.bucket_name)
        CfnOutput(self, "InspectUserFunctionName", value=inspect_user.function_name)
        CfnOutput(self, "EventBusName", value=bus.event_bus_name,
                  description="Put 'Sync chat user' events here (config event_senders may)")
        self._operator_policy(pool, inspect_user, audit, plans)
        dlqs = {"StartRetryDLQ": retry_dlq, "EventsDLQ": events_dlq, "FailedEventsQueue": failed_events}
        operations_dashboard(self, self.machines, dlqs, self._alarms(list(dlqs.values())))
        self._acknowledge(invoked=list(steps.values()),
                          without_async_dlq=list(steps.values()) + [post_confirmation, retry_start, inspect_user],
                          with_destination=[record_failure, on_cognito_change],
                          dlqs=[retry_dlq, events_dlq, failed_events], sqs_consumer=retry_start, plans=plans)

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

    def _allow_sweep_to_run(self, sweep: sfn.StateMachine, child: sfn.StateMachine,
                            plans: s3.Bucket) -> None:
        """What a Distributed Map of startExecution.sync:2 needs; CDK grants nothing for an
        inlined definition."""
        sweep.add_to_role_policy(iam.PolicyStatement(  # ItemReader, ResultWriter
            actions=["s3:GetObject", "s3:PutObject", "s3:ListMultipartUploadParts",
                     "s3:AbortMultipartUpload"], resources=[plans.arn_for_objects("sweeps/*")]))
        sweep.add_to_role_policy(iam.PolicyStatement(
            actions=["states:StartExecution"],
            resources=[child.state_machine_arn, self._machine_arn("SweepUsers")]))
        sweep.add_to_role_policy(iam.PolicyStatement(
            actions=["states:DescribeExecution", "states:StopExecution"],
            resources=[self._execution_arn(name) for name in self.machines]
            + [self._execution_arn("SweepUsers/*")]))
        # Redriving a sweep redrives its map run's unsuccessful child executions, which are
        # named <machine>/<map run label>:<id>: that needs RedriveExecution on them.
        sweep.add_to_role_policy(iam.PolicyStatement(
            actions=["states:RedriveExecution"], resources=[self._execution_arn("SweepUsers/*")]))
        sweep.add_to_role_policy(iam.PolicyStatement(
            actions=["events:PutTargets", "events:PutRule", "events:DescribeRule"],
            resources=[self.format_arn(service="events", resource="rule",
                                       resource_name="StepFunctionsGetEventsForStepFunctionsExecutionRule")]))

    def _operator_policy(self, pool: str, inspect_user: lambda_.Function, audit: dynamodb.Table,
                         plans: s3.Bucket) -> None:
        """What `chat-provisioning` calls (toolbox/), and nothing more: attach it to the
        operators' role. Reading Matrix goes through InspectUser: no token, no network path."""
        machines = list(self.machines.values())

        def allowed(actions: list[str], resources: list[str]) -> iam.PolicyStatement:
            return iam.PolicyStatement(actions=actions, resources=resources)
        policy = iam.ManagedPolicy(self, "OperatorPolicy", description="chat-provisioning's operator commands", statements=[
            allowed(["cloudformation:DescribeStacks"], [self.stack_id]),
            allowed(["cognito-idp:ListUsers"], [pool]),  # a user named by email or username
            allowed(["lambda:InvokeFunction"], [inspect_user.function_arn]),
            allowed(["dynamodb:Query"], [audit.table_arn]),
            allowed(["states:ListExecutions", "states:StartExecution"], [m.state_machine_arn for m in machines]),
            allowed(["states:DescribeExecution", "states:GetExecutionHistory", "states:RedriveExecution"],
                    [self._execution_arn(name) for name in self.machines]),
            allowed(["s3:GetObject"], [plans.arn_for_objects("sweeps/*")])])
        CfnOutput(self, "OperatorPolicyArn", value=policy.managed_policy_arn,
                  description="Attach to the role of the people who run chat-provisioning's commands")

    def _machine_arn(self, name: str) -> str:
        return self.format_arn(service="states", resource="stateMachine",
                               resource_name=f"{self.stack_name}-{name}", arn_format=ArnFormat.COLON_RESOURCE_NAME)

    def _execution_arn(self, name: str) -> str:
        return self.format_arn(service="states", resource="execution",
                               resource_name=f"{self.stack_name}-{name}:*", arn_format=ArnFormat.COLON_RESOURCE_NAME)

    def _network(self, config: ChatConfig) -> dict:
        net = config.network
        if not net.vpc_id:
            Annotations.of(self).add_warning_v2(
                "chat-provisioning:no-vpc",
                "network.vpc_id is not set: the step functions run outside any VPC and cannot "
                "reach synapse.phenom-prod.local. Set network.* in cdk.json for production.")
            return {}
        vpc = ec2.Vpc.from_vpc_attributes(self, "Vpc", vpc_id=net.vpc_id, vpc_cidr_block=net.vpc_cidr,
                                          availability_zones=list(net.availability_zones),
                                          private_subnet_ids=list(net.subnet_ids),
                                          private_subnet_route_table_ids=list(net.route_table_ids) or None)
        subnets = ec2.SubnetSelection(subnets=vpc.private_subnets)
        if net.endpoints:
            self._endpoints(vpc, subnets, net.endpoints)
        return {"vpc": vpc, "vpc_subnets": subnets,
                "security_groups": [ec2.SecurityGroup.from_security_group_id(self, f"Sg{i}", sg)
                                    for i, sg in enumerate(net.security_group_ids)]}

    def _endpoints(self, vpc: ec2.IVpc, subnets: ec2.SubnetSelection, services: tuple[str, ...]) -> None:
        """What the functions in the VPC call besides Synapse, reached without a NAT gateway.
        An interface endpoint's private DNS answers for the whole VPC, so it takes HTTPS from the
        whole VPC (IAM still decides what each caller may do), as the public endpoint would."""
        interface = [s for s in services if s not in GATEWAY_ENDPOINTS]
        if interface:
            endpoint_sg = ec2.SecurityGroup(self, "EndpointsSg", vpc=vpc, allow_all_outbound=False,
                                            description="chat-provisioning VPC endpoints: HTTPS from the VPC")
            endpoint_sg.add_ingress_rule(ec2.Peer.ipv4(vpc.vpc_cidr_block), ec2.Port.tcp(443), "the VPC")
        for service in interface:
            ec2.InterfaceVpcEndpoint(self, f"{service}Endpoint", vpc=vpc, subnets=subnets,
                                     service=ec2.InterfaceVpcEndpointAwsService(service),
                                     security_groups=[endpoint_sg], private_dns_enabled=True, open=False)
        for service in set(services) & set(GATEWAY_ENDPOINTS):
            ec2.GatewayVpcEndpoint(self, f"{service}Endpoint", vpc=vpc, subnets=[subnets],
                                   service=ec2.GatewayVpcEndpointAwsService(service))

    def _user_pool(self, config: ChatConfig, post_confirmation: lambda_.Function) -> tuple[str, str]:
        """A new pool with the trigger (dev, demo), or the imported prod pool, which CDK cannot
        attach a trigger to: grant Cognito the invoke, and attach it as the README says. Its
        ARN and ID."""
        if config.user_pool.create:
            pool = cognito.UserPool(
                self, "UserPool", self_sign_up_enabled=True,
                sign_in_aliases=cognito.SignInAliases(email=True),
                password_policy=cognito.PasswordPolicy(
                    min_length=12, require_symbols=True, require_digits=True,
                    require_lowercase=True, require_uppercase=True),
                mfa=cognito.Mfa.OPTIONAL, mfa_second_factor=cognito.MfaSecondFactor(sms=False, otp=True),
                lambda_triggers=cognito.UserPoolTriggers(post_confirmation=post_confirmation),
                removal_policy=RemovalPolicy.DESTROY)
            pool.add_client("MobileClient", auth_flows=cognito.AuthFlow(user_srp=True))
            for group in config.roles:
                cognito.CfnUserPoolGroup(self, f"Group-{group}", user_pool_id=pool.user_pool_id,
                                         group_name=group)
            ack(pool, "AwsSolutions::AwsSolutions-COG2", "Dev/demo pool: MFA is offered (TOTP), not forced.")
            for rule in ("AwsSolutions::AwsSolutions-COG3", "AwsSolutions::AwsSolutions-COG8"):
                ack(pool, rule, "Dev/demo pool: threat protection (Plus tier) is billed per user; "
                                "production imports its own pool.")
            return pool.user_pool_arn, pool.user_pool_id
        arn = self.format_arn(service="cognito-idp", resource="userpool",
                              resource_name=config.user_pool.user_pool_id)
        post_confirmation.add_permission("CognitoInvoke", principal=iam.ServicePrincipal("cognito-idp.amazonaws.com"),
                                         source_arn=arn)
        return arn, config.user_pool.user_pool_id

    def _alarms(self, dlqs: list[sqs.Queue]) -> list[cloudwatch.Alarm]:
        topic = sns.Topic(self, "AlarmTopic", enforce_ssl=True,
                          master_key=None, display_name="chat-provisioning alarms")
        watched = {}
        for name, machine in self.machines.items():
            watched.update({
                f"{name}Failed": machine.metric_failed(period=Duration.minutes(5)),
                f"{name}Throttled": machine.metric_throttled(period=Duration.minutes(5)),
                f"{name}Aborted": machine.metric_aborted(period=Duration.minutes(5)),
                f"{name}TimedOut": machine.metric_timed_out(period=Duration.minutes(5)),
            })
        # Sign-ups that neither started nor reached the retry queue; Cognito events that name
        # no user we can resolve (a deletion in a pool whose usernames are not subs); a sweep
        # held for its deactivations (approve it, or find why the pool looks emptied); Cognito
        # groups that are neither roles nor ignored; sign-up events that are not our pool's.
        for metric_name in ("SignUpsLost", "UnresolvedCognitoEvents", "SweepsHeld", "UnknownGroups",
                            "InvalidSignUpEvents"):
            watched[metric_name] = ours(metric_name)
        for i, dlq in enumerate(dlqs):
            watched[f"DeadLetters{i}"] = dlq.metric_approximate_number_of_messages_visible(
                period=Duration.minutes(5), statistic="Maximum")
        CfnOutput(self, "AlarmTopicArn", value=topic.topic_arn, description="Subscribe the on-call here")
        alarms = [cloudwatch.Alarm(
            self, f"{name}Alarm", metric=metric, threshold=1, evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING) for name, metric in watched.items()]
        for alarm in alarms:
            alarm.add_alarm_action(cw_actions.SnsAction(topic))
        return alarms

    def _acknowledge(self, invoked: list[lambda_.Function], without_async_dlq: list[lambda_.Function],
                     with_destination: list[lambda_.Function],
                     dlqs: list[sqs.Queue], sqs_consumer: lambda_.Function, plans: s3.Bucket) -> None:
        """The cdk-nag findings we accept for the whole stack, with their reasons."""
        basic = "AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]"
        ack(self, basic, "AWSLambdaBasicExecutionRole only lets a function write its own logs.")
        ack(self, basic.replace("AWSLambdaBasicExecutionRole", "AWSLambdaVPCAccessExecutionRole"),
            "AWSLambdaVPCAccessExecutionRole only manages the function's own network interfaces.")
        ack(self, "AwsSolutions::AwsSolutions-IAM5[Resource::*]",
            "X-Ray's PutTraceSegments/PutTelemetryRecords and Step Functions' log delivery "
            "actions accept no resource but *.")
        for fn in invoked:
            logical = self.get_logical_id(fn.node.default_child)
            ack(self, f"AwsSolutions::AwsSolutions-IAM5[Resource::<{logical}.Arn>:*]",
                "The state machine may invoke the step's versions and aliases (grantInvoke).")
        for fn in without_async_dlq:
            ack(fn, "Serverless::Serverless-LambdaDLQ",
                "Invoked synchronously (Step Functions, Cognito) or by an SQS event source "
                "whose queue has its own DLQ; an async DLQ would never receive anything.")
        # cdk-nag names the account as the template holds it: a literal once `cdk deploy` (or
        # CDK_DEFAULT_ACCOUNT) gives the stack one, the pseudo parameter otherwise.
        account = "<AWS::AccountId>" if Token.is_unresolved(self.account) else self.account
        for name in list(self.machines) + ["SweepUsers/*"]:
            ack(self, f"AwsSolutions::AwsSolutions-IAM5[Resource::arn:{self.partition}:states:{self.region}"
                      f":{account}:execution:{self.stack_name}-{name}:*]",
                "Executions of this stack's own state machines (failure audit, the sweep's map "
                "runs and child workflows): their names are not known in advance.")
        ack(self, f"AwsSolutions::AwsSolutions-IAM5[Resource::<{self.get_logical_id(plans.node.default_child)}.Arn>/sweeps/*]",
            "Each sweep writes and reads its own objects under sweeps/<id>/.")
        for dlq in dlqs:
            ack(dlq, "Serverless::Serverless-SQSRedrivePolicy", "This queue is itself a DLQ.")
        for fn in with_destination:
            ack(fn, "Serverless::Serverless-LambdaDLQ",
                "Its asynchronous failures go to an on-failure destination (FailedEventsQueue), "
                "which records the error with the event; a DLQ would keep the event alone.")
        for queue in dlqs[1:]:
            ack(queue, "AwsSolutions::AwsSolutions-SQS3",
                "This queue is itself a dead-letter queue: of the rules' deliveries, or the "
                "on-failure destination of their Lambda targets.")
        ack(sqs_consumer, "Serverless::Serverless-LambdaEventSourceMappingDestination",
            "SQS event sources take no on-failure destination; the queue's redrive policy "
            "moves a message to its DLQ after 10 receives.")
