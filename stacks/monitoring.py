"""Monitoring: the alarms (to one SNS topic for the on-call) and the operators' CloudWatch
dashboard: sign-ups, executions by workflow and status, failures by step and error, errors the
steps raised by type (Synapse's among them), the sweep's drift and findings, the dead-letter
queues' depths, and the alarms. Every metric on it is one that AWS publishes for a resource of
this stack, or one the functions publish (telemetry.METRICS; the infra tests check both)."""

from aws_cdk import Aws, CfnOutput, Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn

from chat_provisioning.adapters.telemetry import METRICS, NAMESPACE
from stacks.wiring import SERVICE

PERIOD = Duration.minutes(5)


def ours(name: str, label: str | None = None, **dimensions: str) -> cloudwatch.Metric:
    """A metric the functions publish (telemetry.count), with these dimension values."""
    return cloudwatch.Metric(namespace=NAMESPACE, metric_name=name, statistic="Sum", period=PERIOD,
                             dimensions_map={"service": SERVICE, **dimensions}, label=label or name)


def every(name: str, label: str, where: str = "", total: bool = False) -> cloudwatch.MathExpression:
    """Each series of a metric of ours that has dimensions of its own (one line per value), or
    their sum."""
    schema = ",".join([NAMESPACE, "service", *METRICS[name]])
    search = f"SEARCH('{{{schema}}} MetricName=\"{name}\"{' ' + where if where else ''}', 'Sum', {PERIOD.to_seconds()})"
    return cloudwatch.MathExpression(expression=f"SUM({search})" if total else search, label=label,
                                     period=PERIOD, using_metrics={})


def operations_dashboard(stack: Stack, machines: dict[str, sfn.StateMachine], dlqs: dict[str, sqs.IQueue],
                         alarms: list[cloudwatch.IAlarm]) -> cloudwatch.Dashboard:
    def graph(title: str, metrics: list, width: int = 12) -> cloudwatch.GraphWidget:
        return cloudwatch.GraphWidget(title=title, left=metrics, width=width, height=6)

    name = f"{stack.stack_name}-operations"
    board = cloudwatch.Dashboard(stack, "OperationsDashboard", dashboard_name=name)
    board.add_widgets(
        graph("Sign-ups", [
            ours("SignUpsStarted", "started"), ours("UsersSynced", "succeeded", cause="signup"),
            every("ExecutionsFailed", "failed", 'cause="signup"', total=True),
            ours("SignUpStartFailures", "start retried (queue)"), ours("SignUpsLost", "lost (sweep repairs)"),
            ours("InvalidSignUpEvents", "not this pool's")]),
        graph("Users synced, by cause", [every("UsersSynced", "synced")]))
    board.add_widgets(*[graph(f"{machine} executions", [
        m.metric_started(label="started", period=PERIOD), m.metric_succeeded(label="succeeded", period=PERIOD),
        m.metric_failed(label="failed", period=PERIOD), m.metric_timed_out(label="timed out", period=PERIOD),
        m.metric_aborted(label="aborted", period=PERIOD), m.metric_throttled(label="throttled", period=PERIOD)])
        for machine, m in machines.items()])
    board.add_widgets(
        graph("Failed executions, by cause, step and error", [every("ExecutionsFailed", "failed")]),
        graph("Errors the steps raised, by step and type (retried ones too; Synapse's among them)",
              [every("StepErrors", "errors")]))
    board.add_widgets(
        graph("Sweep: drift and findings", [ours("SweepUsersToFix", "users to fix"),
                                            ours("SweepFindings", "findings"), ours("SweepsHeld", "held")], width=8),
        graph("For a person: events that name no user or group we know, levels beyond the bot",
              [ours("UnresolvedCognitoEvents", "unresolved users"), ours("UnknownGroups", "unknown groups"),
               ours("LevelsBeyondTheBot", "levels beyond the bot"),
               ours("StartNamesTaken", "start names taken by another input")], width=8),
        graph("Dead-letter queues (messages)", [q.metric_approximate_number_of_messages_visible(
            label=label, statistic="Maximum", period=PERIOD) for label, q in dlqs.items()], width=8))
    board.add_widgets(cloudwatch.AlarmStatusWidget(title="Alarms", alarms=alarms, width=24))
    CfnOutput(stack, "DashboardUrl", value=f"https://{Aws.REGION}.console.aws.amazon.com/cloudwatch/home"
                                           f"?region={Aws.REGION}#dashboards/dashboard/{name}")
    return board


def alarms(stack: Stack, machines: dict[str, sfn.StateMachine], dlqs: dict[str, sqs.Queue]) -> list[cloudwatch.Alarm]:
    topic = sns.Topic(stack, "AlarmTopic", enforce_ssl=True,
                      master_key=None, display_name="chat-provisioning alarms")
    watched = {}
    for name, machine in machines.items():
        watched.update({
            f"{name}Failed": machine.metric_failed(period=PERIOD),
            f"{name}Throttled": machine.metric_throttled(period=PERIOD),
            f"{name}Aborted": machine.metric_aborted(period=PERIOD),
            f"{name}TimedOut": machine.metric_timed_out(period=PERIOD),
        })
    # Sign-ups that neither started nor reached the retry queue; Cognito events that name
    # no user we can resolve (a deletion in a pool whose usernames are not subs); a sweep
    # held for its removals (approve it, or find why the pool looks emptied); Cognito
    # groups that are neither roles nor ignored; sign-up events that are not our pool's; a
    # level change the bot can never make (a peer's, or one above its own).
    # A start whose name another execution took with another input (a pre-started signup-<sub>).
    for metric_name in ("SignUpsLost", "UnresolvedCognitoEvents", "SweepsHeld", "UnknownGroups",
                        "InvalidSignUpEvents", "LevelsBeyondTheBot", "StartNamesTaken"):
        watched[metric_name] = ours(metric_name)
    for name, dlq in dlqs.items():
        watched[name] = dlq.metric_approximate_number_of_messages_visible(
            period=PERIOD, statistic="Maximum")
    CfnOutput(stack, "AlarmTopicArn", value=topic.topic_arn, description="Subscribe the on-call here")
    made = [cloudwatch.Alarm(
        stack, f"{name}Alarm", metric=metric, threshold=1, evaluation_periods=1,
        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING) for name, metric in watched.items()]
    for alarm in made:
        alarm.add_alarm_action(cw_actions.SnsAction(topic))
    return made


def monitoring(stack: Stack, machines: dict[str, sfn.StateMachine], dlqs: dict[str, sqs.Queue]) -> None:
    operations_dashboard(stack, machines, dlqs, alarms(stack, machines, dlqs))
