"""The workflow: the steps' functions and the two state machines, their ASL inlined from
statemachines/. Like every part of the stack, a plain class on the stack, not a nested
construct: a construct's path is in each resource's logical ID, and a deployed stack whose
logical IDs change would have CloudFormation replace its tables, machines and bus."""

from aws_cdk import ArnFormat, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn

from chat_provisioning.domain.config import ChatConfig
from stacks import wiring

from .functions import LOG_RETENTION, Functions


def machine_arn(stack: Stack, name: str) -> str:
    return stack.format_arn(service="states", resource="stateMachine",
                            resource_name=f"{stack.stack_name}-{name}", arn_format=ArnFormat.COLON_RESOURCE_NAME)


def execution_arn(stack: Stack, name: str) -> str:
    return stack.format_arn(service="states", resource="execution",
                            resource_name=f"{stack.stack_name}-{name}:*", arn_format=ArnFormat.COLON_RESOURCE_NAME)


class Workflow:
    """The steps' functions (wiring.STEP_FUNCTIONS) and the state machines that run them."""

    def __init__(self, stack: Stack, config: ChatConfig, functions: Functions, pool_arn: str,
                 audit: dynamodb.Table, locks: dynamodb.Table, plans: s3.Bucket):
        # The steps' environment, InspectUser's too (operators.py)
        self.env = wiring.lambda_environment(config, audit.table_name, locks.table_name, plans_bucket=plans.bucket_name)
        self.steps = {name: functions.make(name, self.env) for name in wiring.STEP_FUNCTIONS}
        functions.grant("SyncUserSteps", self.steps["SyncUserSteps"], {
            "pool": [pool_arn], "token": [functions.token], "audit table": [audit.table_arn],
            "lease table": [locks.table_arn]})
        functions.grant("PlanSweep", self.steps["PlanSweep"], {
            "pool": [pool_arn], "token": [functions.token], "lease table": [locks.table_arn],
            "plans": [plans.arn_for_objects("sweeps/*")]})

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
