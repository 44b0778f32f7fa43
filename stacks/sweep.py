"""The reconciliation sweep's place in the stack: its schedule, what its Distributed Map needs
to run the users' workflows, and who may write its plans."""

from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3

from chat_provisioning.domain.config import ChatConfig

from .workflow import Workflow, execution_arn, machine_arn


def run_sweeps(stack: Stack, config: ChatConfig, workflow: Workflow, plans: s3.Bucket,
               delivery: dict[str, Any]) -> None:
    """The schedule starts the sweep with the rules' `delivery` (retries, DLQ)."""
    sweep = workflow.sweep
    # What a Distributed Map of startExecution.sync:2 needs; CDK grants nothing for an
    # inlined definition.
    sweep.add_to_role_policy(iam.PolicyStatement(  # ItemReader, ResultWriter
        actions=["s3:GetObject", "s3:PutObject", "s3:ListMultipartUploadParts",
                 "s3:AbortMultipartUpload"], resources=[plans.arn_for_objects("sweeps/*")]))
    sweep.add_to_role_policy(iam.PolicyStatement(
        actions=["states:StartExecution"],
        resources=[workflow.sync.state_machine_arn, machine_arn(stack, "SweepUsers")]))
    sweep.add_to_role_policy(iam.PolicyStatement(
        actions=["states:DescribeExecution", "states:StopExecution"],
        resources=workflow.execution_arns(stack) + [execution_arn(stack, "SweepUsers/*")]))
    # Redriving a sweep redrives its map run's unsuccessful child executions, which are
    # named <machine>/<map run label>:<id>: that needs RedriveExecution on them.
    sweep.add_to_role_policy(iam.PolicyStatement(
        actions=["states:RedriveExecution"], resources=[execution_arn(stack, "SweepUsers/*")]))
    sweep.add_to_role_policy(iam.PolicyStatement(
        actions=["events:PutTargets", "events:PutRule", "events:DescribeRule"],
        resources=[stack.format_arn(service="events", resource="rule",
                                    resource_name="StepFunctionsGetEventsForStepFunctionsExecutionRule")]))
    # Nobody but PlanSweep writes a plan and nobody but the sweep its results: a swapped
    # requests.json could only name users anyway (ApplyPlan builds each input from a sub).
    plans.add_to_resource_policy(iam.PolicyStatement(
        sid="OnlyTheSweepWritesPlans", effect=iam.Effect.DENY, principals=[iam.AnyPrincipal()],
        actions=["s3:PutObject", "s3:DeleteObject"], resources=[plans.arn_for_objects("sweeps/*")],
        conditions={"ArnNotEquals": {"aws:PrincipalArn": [workflow.steps["PlanSweep"].role.role_arn,
                                                          sweep.role.role_arn]}}))
    events.Rule(stack, "SweepSchedule", description="The reconciliation sweep",
                schedule=events.Schedule.expression(config.sweep_schedule), enabled=config.sweep_schedule_enabled,
                targets=[targets.SfnStateMachine(sweep, input=events.RuleTargetInput.from_object({}),
                                                 **delivery)])
