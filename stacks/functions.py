"""Every Lambda function the stack deploys, made alike (Functions.make), and granted the calls
calls.py declares for it (Functions.grant), by the part of the stack that owns it."""

from typing import Any

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs

from chat_provisioning.domain.config import ChatConfig
from stacks import calls, wiring

from .bundling import ARCHITECTURE, RUNTIME, lambda_code

LOG_RETENTION = logs.RetentionDays.THREE_MONTHS
# Lambda's CPU scales with memory: 1,769 MB is one vCPU, all a Python process uses. The path of
# a sign-up to The Red Room (PostConfirmation, then SyncUserSteps) gets it: its cold starts are
# CPU work (imports, the first AWS client), and a sporadic sign-up meets them
# (docs/benchmarks.md). PlanSweep holds the whole pool and plans on a full CPU too
# (docs/how-it-works.md, "Time budgets").
MEMORY_MB = {"PlanSweep": 1769, "PostConfirmation": 1769, "SyncUserSteps": 1769}


def allow(fn: lambda_.Function, actions: list[str], resources: list[str]) -> None:
    fn.add_to_role_policy(iam.PolicyStatement(actions=actions, resources=resources))


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
                f"the steps' time is too short: {short} (their Tasks' TimeoutSeconds in statemachines/, less "
                f"{wiring.TASK_OVERHEAD_SECONDS} s) must fit what a step cannot split, {needed:.0f} s: a wait for a "
                f"room's lease (LEASE_WAIT_SECONDS, domain/deadline.py), a guarded write of three requests at "
                f"twice synapse_timeout_seconds {config.synapse_timeout_seconds} each, and RESERVE_SECONDS. "
                f"Raise the Tasks' TimeoutSeconds, or lower one of those.")
        # The bot's token, for the functions that call Synapse (calls.TOKEN).
        self.token = stack.format_arn(service="secretsmanager", resource="secret",
                                      resource_name=f"{config.admin_token_secret_name}-??????",
                                      arn_format=ArnFormat.COLON_RESOURCE_NAME)

    def reserved_concurrency(self, name: str) -> int | None:
        if name not in wiring.CALLS_SYNAPSE:
            return None
        if name in wiring.TOOLS:
            return wiring.INSPECT_CONCURRENCY
        return None if self.config.synapse_concurrency == "none" else self.config.synapse_concurrency

    def make(self, name: str, env: dict[str, str], timeout: Duration | None = None) -> lambda_.Function:
        return lambda_.Function(
            self.stack, f"{name}Function", runtime=RUNTIME, architecture=ARCHITECTURE,
            handler=wiring.FUNCTIONS[name], code=self.code, environment=env, memory_size=MEMORY_MB.get(name, 256),
            timeout=timeout or Duration.seconds(self.timeouts[name]), tracing=lambda_.Tracing.ACTIVE,
            reserved_concurrent_executions=self.reserved_concurrency(name),
            log_group=logs.LogGroup(self.stack, f"{name}Logs", retention=LOG_RETENTION,
                                    removal_policy=RemovalPolicy.DESTROY),
            **(self.network if name in wiring.CALLS_SYNAPSE else {}))

    def grant(self, name: str, fn: lambda_.Function, on: dict[calls.Resource, list[str]]) -> None:
        """Allow the function `name` its calls (calls.CALLS) on the resources `on` names, which
        must name every one its calls need, and nothing else. The pool's calls go in a policy of
        their own, not the role's default policy: a created pool depends on the sign-up trigger,
        which depends on its default policy, which must not depend on the pool."""
        needed = {c.on for c in calls.CALLS[name] if not c.granted_by_cdk}
        if needed != set(on):
            raise ValueError(f"{name}'s calls are made on {sorted(needed)}; its part names {sorted(on)}")
        pool = [a for c in calls.CALLS[name] if c.on == "pool" for a in c.actions]
        if pool:
            iam.Policy(self.stack, f"{name}CognitoCalls", roles=[fn.role],
                       statements=[iam.PolicyStatement(actions=pool, resources=on["pool"])])
        for c in calls.CALLS[name]:
            if c.granted_by_cdk or c.on == "pool":
                continue
            allow(fn, list(c.actions), on[c.on])
            if c.on == "token" and self.config.admin_token_kms_key_arn:  # decrypt, via the secret only
                fn.add_to_role_policy(iam.PolicyStatement(
                    actions=["kms:Decrypt"], resources=[self.config.admin_token_kms_key_arn],
                    conditions={"StringEquals": {
                        "kms:ViaService": f"secretsmanager.{self.stack.region}.amazonaws.com"}}))
