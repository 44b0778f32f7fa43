"""The workflow and its functions: every Lambda function the stack deploys is made alike here
(Functions), the steps and InspectUser with what each may call, and the two state machines,
their ASL inlined from statemachines/. These are plain classes on the stack, not nested
constructs: a construct's path is in each resource's logical ID, and a deployed stack whose
logical IDs change would have CloudFormation replace its tables, machines and bus."""

from typing import Any

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn

from chat_provisioning.domain.config import ChatConfig
from stacks import wiring

from .bundling import ARCHITECTURE, RUNTIME, lambda_code

LOG_RETENTION = logs.RetentionDays.THREE_MONTHS
# Lambda's CPU scales with memory: 1,769 MB is one vCPU, all a Python process uses. The path of
# a sign-up to The Red Room (PostConfirmation, then SyncUserSteps) gets it: its cold starts are
# CPU work (imports, the first AWS client), about seven times as long at 256 MB, and a
# sporadic sign-up meets them (docs/benchmarks.md). PlanSweep holds the whole pool (about 4 KB a
# user over a 75 MB start: 100,000 users need about 500 MB) and plans on a full CPU too.
MEMORY_MB = {"PlanSweep": 1769, "PostConfirmation": 1769, "SyncUserSteps": 1769}


def allow(fn: lambda_.Function, actions: list[str], resources: list[str]) -> None:
    fn.add_to_role_policy(iam.PolicyStatement(actions=actions, resources=resources))


def machine_arn(stack: Stack, name: str) -> str:
    return stack.format_arn(service="states", resource="stateMachine",
                            resource_name=f"{stack.stack_name}-{name}", arn_format=ArnFormat.COLON_RESOURCE_NAME)


def execution_arn(stack: Stack, name: str) -> str:
    return stack.format_arn(service="states", resource="execution",
                            resource_name=f"{stack.stack_name}-{name}:*", arn_format=ArnFormat.COLON_RESOURCE_NAME)


class Functions:
    """Every function: the one asset, its own log group, active tracing, a step's time from its
    Task's TimeoutSeconds (wiring.function_timeouts). Only the functions that call Synapse run in
    the VPC, and they are capped: Synapse is single-threaded, and an event flood then waits in
    Step Functions' retries."""

    def __init__(self, stack: Stack, config: ChatConfig, network: dict[str, Any]):
        self.stack, self.config, self.network = stack, config, network
        self.code = lambda_code()
        self.timeouts = wiring.function_timeouts()
        needed = wiring.longest_unsplit_seconds(config)
        if short := {n: t for n, t in self.timeouts.items() if n in wiring.CALLS_SYNAPSE and t < needed}:
            raise SystemExit(
                f"synapse_timeout_seconds {config.synapse_timeout_seconds} is too long for the steps' time: "
                f"a lease wait and a guarded write need {needed:.0f} s, and {short} have less (their Tasks' "
                f"TimeoutSeconds in statemachines/, less {wiring.TASK_OVERHEAD_SECONDS} s).")

    def reserved_concurrency(self, name: str) -> int | None:
        if name not in wiring.CALLS_SYNAPSE:
            return None
        if name in wiring.TOOLS:
            return wiring.INSPECT_CONCURRENCY
        return None if self.config.synapse_concurrency == "none" else self.config.synapse_concurrency

    def make(self, name: str, handler: str, env: dict[str, str], timeout: Duration | None = None) -> lambda_.Function:
        return lambda_.Function(
            self.stack, f"{name}Function", runtime=RUNTIME, architecture=ARCHITECTURE,
            handler=handler, code=self.code, environment=env, memory_size=MEMORY_MB.get(name, 256),
            timeout=timeout or Duration.seconds(self.timeouts[name]), tracing=lambda_.Tracing.ACTIVE,
            reserved_concurrent_executions=self.reserved_concurrency(name),
            log_group=logs.LogGroup(self.stack, f"{name}Logs", retention=LOG_RETENTION,
                                    removal_policy=RemovalPolicy.DESTROY),
            **(self.network if name in wiring.CALLS_SYNAPSE else {}))


class Workflow:
    """The steps' functions and InspectUser, and the state machines that run the steps."""

    def __init__(self, stack: Stack, config: ChatConfig, functions: Functions, audit: dynamodb.Table,
                 locks: dynamodb.Table, plans: s3.Bucket):
        step_env = wiring.lambda_environment(config, audit.table_name, locks.table_name,
                                             plans_bucket=plans.bucket_name)
        self.steps = {name: functions.make(name, handler, step_env) for name, handler in wiring.STEP_FUNCTIONS.items()}
        # Operators' read of one user in Cognito and Synapse (toolbox/, `user status`).
        self.inspect_user = functions.make("InspectUser", wiring.TOOLS["InspectUser"], step_env,
                                           timeout=Duration.seconds(wiring.INSPECT_SECONDS))
        callers = {n: fn for n, fn in {**self.steps, "InspectUser": self.inspect_user}.items()
                   if n in wiring.CALLS_SYNAPSE}
        # Each function's role allows the calls it makes and nothing more: the bot's token for
        # those that call Synapse (GetSecretValue); the audit trail is
        # append-only (PutItem, always conditional in audit.py; ProvisionUser reads it for the
        # reactivation rule); the leases are only ever updated (locks.py).
        token = stack.format_arn(service="secretsmanager", resource="secret",
                                 resource_name=f"{config.admin_token_secret_name}-??????",
                                 arn_format=ArnFormat.COLON_RESOURCE_NAME)
        for caller in callers.values():
            allow(caller, ["secretsmanager:GetSecretValue"], [token])
            if config.admin_token_kms_key_arn:  # a customer managed key: decrypt, via the secret only
                caller.add_to_role_policy(iam.PolicyStatement(
                    actions=["kms:Decrypt"], resources=[config.admin_token_kms_key_arn],
                    conditions={"StringEquals": {"kms:ViaService": f"secretsmanager.{stack.region}.amazonaws.com"}}))
        # RecordAudit's items; ProvisionUser's reactivation rule: read the trail, and put the
        # reactivation on it before the act
        allow(self.steps["SyncUserSteps"], ["dynamodb:Query", "dynamodb:PutItem"], [audit.table_arn])
        for writer in ("SyncUserSteps", "PlanSweep"):  # AssignRoles' levels, a sweep's --align-rooms
            allow(self.steps[writer], ["dynamodb:UpdateItem"], [locks.table_arn])
        allow(self.steps["PlanSweep"], ["s3:PutObject"], [plans.arn_for_objects("sweeps/*")])

        # Under /aws/vendedlogs/states/: other names grow the account's CloudWatch Logs resource
        # policy (5,120 characters), and CreateStateMachine fails once it is full.
        machine_logs = logs.LogGroup(stack, "WorkflowLogs", retention=LOG_RETENTION,
                                     log_group_name=f"/aws/vendedlogs/states/{stack.stack_name}-workflows",
                                     removal_policy=RemovalPolicy.DESTROY)
        arns = {wiring.placeholder(n): fn.function_arn for n, fn in self.steps.items()}
        self.machines: dict[str, sfn.StateMachine] = {}
        for name, asl in wiring.MACHINES.items():  # in order: the sweep runs the one before it
            text = asl.read_text()
            values = arns | {wiring.machine_placeholder(m): sm.state_machine_arn for m, sm in self.machines.items()} \
                | {wiring.PLANS_BUCKET_PLACEHOLDER: plans.bucket_name}
            self.machines[name] = sfn.StateMachine(
                stack, name, state_machine_name=f"{stack.stack_name}-{name}",
                definition_body=sfn.DefinitionBody.from_string(text),
                definition_substitutions={k: v for k, v in values.items() if f"${{{k}}}" in text},
                state_machine_type=sfn.StateMachineType.STANDARD,
                tracing_enabled=True,
                # Execution data holds the sub and display name: keep it out of the logs.
                logs=sfn.LogOptions(destination=machine_logs, level=sfn.LogLevel.ALL,
                                    include_execution_data=False))
            for step, fn in self.steps.items():
                if f"${{{wiring.placeholder(step)}}}" in text:
                    fn.grant_invoke(self.machines[name])
        self.sync, self.sweep = self.machines["SyncUser"], self.machines["SweepUsers"]

    def execution_arns(self, stack: Stack) -> list[str]:
        return [execution_arn(stack, name) for name in self.machines]
