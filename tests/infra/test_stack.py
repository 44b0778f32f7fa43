"""The synthesized stack: `cdk synth` run once, offline and without credentials, through the
CDK CLI as infra runs it, on the test deployment's config (tests.fakes.sample_config, not
cdk.json's: test_deploy_synth.py is the one test of that); then the template, the cdk-nag report,
cfn-lint and asl-validator."""

import json
import re
import subprocess
from pathlib import Path
from typing import get_args

import pytest
from aws_cdk import App
from cdk_cli import cfn_lint_errors, checkov_failures, cli_synth

import app as cdk_app
from chat_provisioning.adapters.telemetry import METRICS, NAMESPACE
from chat_provisioning.domain import errors
from chat_provisioning.domain.config import CONTEXT_KEY, GATEWAY_ENDPOINTS, INTERFACE_ENDPOINTS
from chat_provisioning.domain.executions import FAILED_STATUSES
from chat_provisioning.domain.models import Cause
from chat_provisioning.handlers import steps
from local_run.deploy import project_context
from stacks import calls, retries, wiring
from stacks.functions import MEMORY_MB
from tests.fakes import POOL, sample_config

ROOT = Path(__file__).resolve().parents[2]
ASLS = {name: json.loads(path.read_text()) for name, path in wiring.MACHINES.items()}
TASKS = [(machine, name, s) for machine, asl in ASLS.items()
         for name, s in asl["States"].items() if s["Type"] == "Task"]


@pytest.fixture(scope="session")
def cdk_out(tmp_path_factory) -> Path:
    return cli_synth(tmp_path_factory.mktemp("synth") / "cdk.out", sample_config())


@pytest.fixture(scope="session")
def template(cdk_out) -> dict:
    return json.loads((cdk_out / "ChatProvisioning.template.json").read_text())


def resources(template, kind):
    return {k: r["Properties"] for k, r in template["Resources"].items() if r["Type"] == kind}


# What AWS asks a Lambda Task to retry (service errors, throttling), and a function's own
# timeout (Lambda.Unknown, as AWS's guide names it; Sandbox.Timedout, as executions have been
# reported to name it): every step is idempotent.
LAMBDA_ERRORS = {"Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException",
                 "Lambda.ClientExecutionTimeoutException", "Lambda.TooManyRequestsException", "Lambda.Unknown",
                 "Sandbox.Timedout"}


def test_the_retry_policy_retries_every_transient_error_and_nothing_permanent():
    transient = {c.__name__ for c in retries.subclasses(errors.TransientError)}
    permanent = {c.__name__ for c in retries.subclasses(errors.PermanentError)}
    policy = retries.retriers()
    retried = [e for r in policy for e in r["ErrorEquals"]]
    assert len(retried) == len(set(retried))  # each error in one retrier
    assert transient <= set(retried) and LAMBDA_ERRORS <= set(retried)
    assert not set(retried) & (permanent | {"States.ALL", "States.TaskFailed"})
    assert all(r["BackoffRate"] > 1 and r["MaxAttempts"] >= 3 for r in policy)


def test_every_lambda_task_retries_by_the_one_policy():
    """The ASL files show the policy in every Task, and say at their top that it is written
    there: a hand edit, or an error class added without `make asl`, fails here."""
    for machine, asl in ASLS.items():
        assert asl["Comment"].endswith(retries.GENERATED), f"{machine}: run `make asl`"
        for _, _, task in wiring.lambda_tasks(asl["States"]):
            assert task["Retry"] == retries.retriers(), f"{machine}: {task['Resource']}: run `make asl`"
            assert "Catch" not in task, \
                f"{task['Resource']}: a Catch would end the execution elsewhere than the failing step"


def test_one_function_serves_every_sync_user_step_by_its_state_name():
    """A sign-up's path meets one cold start: each SyncUser Task invokes the one function and
    names its step with the context object (no input can set it); every step has its Task."""
    served = {(function, name, task["Parameters"].get("step.$")) for machine, asl in ASLS.items()
              for function, name, task in wiring.lambda_tasks(asl["States"])}
    assert served == {("SyncUserSteps", step, "$$.State.Name") for step in steps.SYNC_USER_STEPS} \
        | {("PlanSweep", "PlanSweep", None)}


def machines(template) -> dict:
    return {m["StateMachineName"].split("-", 1)[1]: m
            for m in resources(template, "AWS::StepFunctions::StateMachine").values()}


def test_each_function_times_out_before_its_task_and_fits_its_longest_unsplit_work(template):
    """The Task's TimeoutSeconds is the one source: the function gets 10 s less, so that its
    own timeout (retried) comes first; a step that calls Synapse fits a lease wait and a
    guarded write; the sweep's plan gets Lambda's 15 minutes."""
    functions = {f["Handler"].rsplit(".", 1)[1]: f for f in resources(template, "AWS::Lambda::Function").values()}
    for machine, asl in ASLS.items():
        for name, state, task in wiring.lambda_tasks(asl["States"]):
            timeout = functions[wiring.FUNCTIONS[name].rsplit(".", 1)[1]]["Timeout"]
            assert timeout == task["TimeoutSeconds"] - wiring.TASK_OVERHEAD_SECONDS, (machine, state)
            if name in wiring.CALLS_SYNAPSE:
                assert timeout >= wiring.longest_unsplit_seconds(sample_config())
    assert functions["plan_sweep"]["Timeout"] == 900 and functions["plan_sweep"]["MemorySize"] == 1769
    assert functions["post_confirmation"]["Timeout"] < 5  # Cognito waits 5 s
    # a full vCPU on a sign-up's path to The Red Room, for its cold starts
    assert functions["post_confirmation"]["MemorySize"] == functions["sync_user_step"]["MemorySize"] == 1769
    assert set(MEMORY_MB) <= set(wiring.FUNCTIONS)  # a name mistyped there would get 256 MB unnoticed
    queue = next(q for k, q in resources(template, "AWS::SQS::Queue").items() if k.startswith("StartRetryQueue"))
    assert queue["VisibilityTimeout"] >= 6 * functions["retry_start"]["Timeout"]  # AWS's advice


# What a deployed stack keeps only while its logical ID stays: data (the tables, the plans,
# queued messages), names CloudFormation cannot take twice (a replacement of a named resource
# fails), and what people hold by ARN (the operators' policy, the alarm topic's subscriptions).
# Nesting a resource in a construct changes its logical ID: stacks/ composes plain classes.
KEPT = {
    "AuditTableB07F8EEB": "AWS::DynamoDB::Table", "LocksTable0C14848D": "AWS::DynamoDB::Table",
    "SweepPlans14895004": "AWS::S3::Bucket",
    "StartRetryQueue48B2781A": "AWS::SQS::Queue", "StartRetryDLQ1BAE6DDB": "AWS::SQS::Queue",
    "EventsDLQ3D9C0575": "AWS::SQS::Queue", "FailedEventsQueueABD160EA": "AWS::SQS::Queue",
    "SyncUser5A4D80B4": "AWS::StepFunctions::StateMachine", "SweepUsers35B3C959": "AWS::StepFunctions::StateMachine",
    "EventBus7B8748AA": "AWS::Events::EventBus", "WorkflowLogs6DD5EEB0": "AWS::Logs::LogGroup",
    "OperationsDashboard06307C07": "AWS::CloudWatch::Dashboard", "OperatorPolicy63C1EB6F": "AWS::IAM::ManagedPolicy",
    "AlarmTopicD01E77F9": "AWS::SNS::Topic",
}


def test_what_a_deployed_stack_keeps_keeps_its_logical_id(template):
    assert {k: template["Resources"].get(k, {}).get("Type") for k in KEPT} == KEPT


def test_state_machine_logs_are_vended_logs(template):
    """Outside /aws/vendedlogs/states/, each log group grows the account's Logs resource policy."""
    for machine in machines(template).values():
        [destination] = machine["LoggingConfiguration"]["Destinations"]
        group = template["Resources"][destination["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"][0]]
        assert group["Properties"]["LogGroupName"].startswith("/aws/vendedlogs/states/")


def test_a_synapse_timeout_the_steps_cannot_fit_stops_synth():
    with pytest.raises(SystemExit, match=r"the steps' time is too short: \{'SyncUserSteps': 110\}.* must fit .* "
                                         r"202 s: .*synapse_timeout_seconds 30.0"):
        synth_in_process({"synapse_timeout_seconds": 30})


def test_tasks_of_one_function_that_differ_in_time_stop_synth_and_are_named(tmp_path, monkeypatch):
    asl = json.loads(wiring.MACHINES["SyncUser"].read_text())
    asl["States"]["ProvisionUser"]["TimeoutSeconds"] += 30
    (edited := tmp_path / "sync_user.asl.json").write_text(json.dumps(asl))
    monkeypatch.setitem(wiring.MACHINES, "SyncUser", edited)
    with pytest.raises(SystemExit, match=r"differ in their TimeoutSeconds .*'ProvisionUser': 150"):
        wiring.function_timeouts()


def test_state_machines_are_standard_with_a_timeout(template):
    assert set(machines(template)) == set(wiring.MACHINES)
    for name, machine in machines(template).items():
        assert machine["StateMachineType"] == "STANDARD"
        assert ASLS[name]["TimeoutSeconds"] > 0
        assert machine["TracingConfiguration"] == {"Enabled": True}
        assert machine["LoggingConfiguration"]["IncludeExecutionData"] is False


def test_inlined_definitions_are_the_files_and_each_step_its_handler(template):
    functions = resources(template, "AWS::Lambda::Function")
    for name, machine in machines(template).items():
        assert machine["DefinitionString"] == wiring.MACHINES[name].read_text()
        for placeholder, arn in machine["DefinitionSubstitutions"].items():
            if placeholder.endswith("StateMachineArn"):  # the sweep runs the per-user machine
                child = placeholder.removesuffix("StateMachineArn")
                assert template["Resources"][arn["Ref"]]["Properties"]["StateMachineName"].endswith(f"-{child}")
                continue
            if placeholder == wiring.PLANS_BUCKET_PLACEHOLDER:  # where the sweep writes results
                assert arn["Ref"].startswith("SweepPlans")
                continue
            function = placeholder.removesuffix("FunctionArn")
            assert functions[arn["Fn::GetAtt"][0]]["Handler"] == wiring.STEP_FUNCTIONS[function]


def test_cdk_nag_has_no_unacknowledged_findings(cdk_out):
    report = json.loads((cdk_out / "validation-report.json").read_text())
    plugins = {p["pluginName"]: p for p in report["pluginReports"]}
    assert {"AwsSolutions", "Serverless"} <= set(plugins)
    for name in ("AwsSolutions", "Serverless"):
        plugin = plugins[name]
        assert plugin["violations"] == [], name
        assert plugin["conclusion"] == "success", name


def test_cfn_lint_is_clean(cdk_out):
    assert cfn_lint_errors(cdk_out / "ChatProvisioning.template.json") == ""


def test_checkov_finds_nothing_not_accepted_with_a_reason(cdk_out):
    assert checkov_failures(cdk_out / "ChatProvisioning.template.json") == []


@pytest.mark.parametrize("machine", list(wiring.MACHINES))
def test_asl_validator_passes(machine):
    run = subprocess.run([str(ROOT / "node_modules/.bin/asl-validator"), "--json-path",
                          str(wiring.MACHINES[machine])], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def test_no_wildcard_resource_outside_xray_and_log_delivery(template):
    for name, policy in resources(template, "AWS::IAM::Policy").items():
        for statement in policy["PolicyDocument"]["Statement"]:
            if statement["Resource"] == "*":
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                assert all(a.startswith(("xray:", "logs:")) for a in actions), (name, actions)


def test_tables_have_pitr_and_logs_expire(template):
    tables = resources(template, "AWS::DynamoDB::Table").values()
    assert len(tables) == 2  # the audit trail, the power-levels leases
    assert all(t["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] for t in tables)
    assert all("RetentionInDays" in g for g in resources(template, "AWS::Logs::LogGroup").values())


def test_alarms_cover_failed_throttled_aborted_for_each_machine(template):
    alarms = resources(template, "AWS::CloudWatch::Alarm").values()
    for name in wiring.MACHINES:
        names = {a["MetricName"] for a in alarms if name in json.dumps(a.get("Dimensions"))}
        assert {"ExecutionsFailed", "ExecutionThrottled", "ExecutionsAborted", "ExecutionsTimedOut"} <= names


def test_rules_start_the_workflow_and_audit_failures(template):
    rules = [r["EventPattern"] for r in resources(template, "AWS::Events::Rule").values() if "EventPattern" in r]
    assert wiring.cognito_event_pattern(POOL, {"Ref": "AWS::AccountId"}) in rules
    failure = next(p for p in rules if p["source"] == ["aws.states"])
    (schedule,) = [r for r in resources(template, "AWS::Events::Rule").values() if "ScheduleExpression" in r]
    assert schedule["ScheduleExpression"] == "rate(1 day)"
    assert failure["detail"]["status"] == FAILED_STATUSES
    for rule in resources(template, "AWS::Events::Rule").values():
        for target in rule["Targets"]:
            assert "DeadLetterConfig" in target and target["RetryPolicy"]["MaximumRetryAttempts"] > 0


def test_prod_pool_is_imported_with_invoke_permission(template):
    assert resources(template, "AWS::Cognito::UserPool") == {}
    (permission,) = [p for p in resources(template, "AWS::Lambda::Permission").values()
                     if p["Principal"] == "cognito-idp.amazonaws.com"]
    assert POOL in json.dumps(permission["SourceArn"])


def synth_in_process(context_update: dict) -> dict:
    """The test config with `context_update`, synthesized in this process (unvalidated: app.py
    validates it)."""
    context = project_context(sample_config())
    settings = {**context[CONTEXT_KEY], **context_update}
    # bundling-stacks=[]: skip the asset bundling, this synth looks at resources only
    app = App(context={**context, CONTEXT_KEY: settings, "aws:cdk:bundling-stacks": []})
    stack = cdk_app.build(app)
    return app.synth().get_stack_by_name(stack.stack_name).template


def test_config_says_none_with_a_value_because_the_cdk_drops_nulls_from_context():
    """jsii drops every null-valued key of a context map: `"synapse_concurrency": null` would
    leave the default (10) standing. Config spells "no limit" as "none", and a reserved name's
    missing owner as no key at all."""
    def reserved(template):
        return {name: f.get("ReservedConcurrentExecutions")
                for name, f in resources(template, "AWS::Lambda::Function").items()
                if f.get("ReservedConcurrentExecutions") not in (None, wiring.INSPECT_CONCURRENCY)}
    assert set(reserved(synth_in_process({"synapse_concurrency": None})).values()) == {10}  # null: gone
    unlimited = synth_in_process({"synapse_concurrency": "none",
                                  "reserved_display_names": [{"name": "Phenom Staff"}]})
    assert reserved(unlimited) == {}
    configs = [json.loads(f["Environment"]["Variables"]["CHAT_CONFIG"])
               for f in resources(unlimited, "AWS::Lambda::Function").values()
               if "CHAT_CONFIG" in f.get("Environment", {}).get("Variables", {})]
    assert configs and all(c["reserved_display_names"] == [{"name": "Phenom Staff", "owner": None}] for c in configs)


def test_dev_pool_gets_the_trigger_attached():
    template = synth_in_process({"user_pool": {"user_pool_id": "us-east-1_dev", "client_id": "abc", "create": True}})
    (pool,) = resources(template, "AWS::Cognito::UserPool").values()
    assert "PostConfirmation" in pool["LambdaConfig"]
    groups = {g["GroupName"] for g in resources(template, "AWS::Cognito::UserPoolGroup").values()}
    assert groups == {"staff", "analysts", "experiencers"}


SUBNETS, SG = ["subnet-0a1b2c3d4e5f60718", "subnet-0a1b2c3d4e5f60719"], "sg-0a1b2c3d4e5f60710"
KEY = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"


@pytest.fixture(scope="module")
def in_a_vpc() -> dict:
    """The template for a production-like config: a VPC with every endpoint the functions in it
    need, and a customer managed key on the bot's secret (one synth for the tests below)."""
    return synth_in_process({"admin_token_kms_key_arn": KEY, "network": {
        "vpc_id": "vpc-0a1b2c3d4e5f60711", "subnet_ids": SUBNETS, "security_group_ids": [SG],
        "availability_zones": ["us-east-1a", "us-east-1b"], "vpc_cidr": "10.0.0.0/16",
        "endpoints": list(INTERFACE_ENDPOINTS + GATEWAY_ENDPOINTS),
        "route_table_ids": ["rtb-0a1b2c3d4e5f60712", "rtb-0a1b2c3d4e5f60713"]}})


def test_vpc_placement_from_context_ids(in_a_vpc):
    functions = resources(in_a_vpc, "AWS::Lambda::Function")
    in_vpc = {f["Handler"] for f in functions.values() if "VpcConfig" in f}
    assert in_vpc == {h for s, h in wiring.FUNCTIONS.items() if s in wiring.CALLS_SYNAPSE}
    for f in functions.values():
        if "VpcConfig" in f:
            assert f["VpcConfig"] == {"SubnetIds": SUBNETS, "SecurityGroupIds": [SG]}


def test_the_vpc_endpoints_the_functions_need_when_asked(template, in_a_vpc):
    """Each AWS service the in-VPC functions call (test_each_function_may_make_its_own_calls_and_no_other)
    can be reached without a NAT gateway; an interface endpoint answers for the whole VPC, so it
    takes HTTPS from the whole VPC."""
    in_vpc = {a.split(":")[0] for n, st in role_statements(template).items()
              if n in wiring.CALLS_SYNAPSE for a in actions_of(st)} | {"xray"}
    assert in_vpc == set(INTERFACE_ENDPOINTS + GATEWAY_ENDPOINTS)
    endpoints = resources(in_a_vpc, "AWS::EC2::VPCEndpoint").values()
    services = {json.dumps(e["ServiceName"]).split(".")[-1].strip('"]}'): e for e in endpoints}
    assert set(services) == in_vpc
    for name in GATEWAY_ENDPOINTS:
        assert services[name]["VpcEndpointType"] == "Gateway"
        assert services[name]["RouteTableIds"] == ["rtb-0a1b2c3d4e5f60712", "rtb-0a1b2c3d4e5f60713"]
    for name in INTERFACE_ENDPOINTS:
        assert services[name]["PrivateDnsEnabled"] is True
    (group,) = resources(in_a_vpc, "AWS::EC2::SecurityGroup").values()
    assert [(r["CidrIp"], r["FromPort"]) for r in group["SecurityGroupIngress"]] == [("10.0.0.0/16", 443)]


def test_a_customer_managed_key_on_the_token_is_decrypted_through_secrets_manager_only(in_a_vpc):
    for name, statements in role_statements(in_a_vpc).items():
        decrypt = [s for s in statements if s["Action"] == "kms:Decrypt"]
        assert len(decrypt) == (name in wiring.CALLS_SYNAPSE), name
        if decrypt:
            assert decrypt[0]["Resource"] == KEY
            assert decrypt[0]["Condition"] == {
                "StringEquals": {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com"}}


def test_invalid_config_stops_synth_with_a_clear_message():
    with pytest.raises(SystemExit, match="room_id"):
        synth_in_process({"rooms": {"red_room": {"name": "The Red Room", "room_id": "#the-red-room"}},
                          "default_rooms": ["red_room"], "roles": {}})


def test_encryption_at_rest_and_in_transit(template):
    assert all(t["SSESpecification"]["SSEEnabled"] for t in resources(template, "AWS::DynamoDB::Table").values())
    assert all(q.get("SqsManagedSseEnabled") for q in resources(template, "AWS::SQS::Queue").values())
    for bucket in resources(template, "AWS::S3::Bucket").values():
        assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert bucket["PublicAccessBlockConfiguration"]["BlockPublicAcls"] is True
    denied = [s for p in resources(template, "AWS::SQS::QueuePolicy").values()
              for s in p["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    assert denied and all(s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in denied)


def test_every_queue_that_receives_failures_is_watched(template):
    alarms = json.dumps(resources(template, "AWS::CloudWatch::Alarm"))
    dlqs = [k for k in resources(template, "AWS::SQS::Queue") if "DLQ" in k or "Failed" in k]
    assert dlqs and all(k in alarms for k in dlqs)


def test_every_rule_target_keeps_what_it_could_not_deliver_or_run(template):
    """EventBridge invokes a Lambda target asynchronously: its rule's DLQ keeps what could not
    be delivered; a function error is Lambda's to retry, then its on-failure destination's."""
    alarms = json.dumps(resources(template, "AWS::CloudWatch::Alarm"))
    invoke_configs = {c["FunctionName"]["Ref"]: c
                      for c in resources(template, "AWS::Lambda::EventInvokeConfig").values()}
    lambda_targets = 0
    for rule in resources(template, "AWS::Events::Rule").values():
        for target in rule["Targets"]:
            assert target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0] in alarms
            assert target["RetryPolicy"]["MaximumRetryAttempts"] >= 1
            [kind] = target["Arn"]["Fn::GetAtt"][:1] if "Fn::GetAtt" in target["Arn"] else ["state machine"]
            if template["Resources"].get(kind, {}).get("Type") != "AWS::Lambda::Function":
                continue
            lambda_targets += 1
            config = invoke_configs[kind]
            assert config["MaximumRetryAttempts"] == 2 and 60 <= config["MaximumEventAgeInSeconds"] <= 21600
            assert config["DestinationConfig"]["OnFailure"]["Destination"]["Fn::GetAtt"][0] in alarms
    assert lambda_targets == 3  # the Cognito change, the custom event, the failure audit


# --- least privilege and who may start what (issue 9) --------------------------------------

# The calls each function makes (xray: tracing, granted with it, aside). A change here is a
# change of what a function may do: review it as one.


def role_statements(template) -> dict[str, list[dict]]:
    """Each function's name -> the statements of every policy attached to its role."""
    roles = {f["Role"]["Fn::GetAtt"][0]: f["Handler"].rsplit(".", 1)[1]
             for f in resources(template, "AWS::Lambda::Function").values()}
    names = {h.rsplit(".", 1)[1]: n for n, h in wiring.FUNCTIONS.items()}
    out: dict[str, list[dict]] = {names[h]: [] for h in roles.values()}
    for policy in resources(template, "AWS::IAM::Policy").values():
        for role in policy["Roles"]:
            if role["Ref"] in roles:
                out[names[roles[role["Ref"]]]] += policy["PolicyDocument"]["Statement"]
    return out


def actions_of(statements: list[dict]) -> set[str]:
    return {a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
            if s["Effect"] == "Allow" and not a.startswith("xray:")}


def test_each_function_may_make_its_own_calls_and_no_other(template):
    """Its role allows what stacks/calls.py declares for it: no more, and (for what CDK grants
    with an event source) no less."""
    assert {name: actions_of(st) for name, st in role_statements(template).items()} == {
        name: calls.actions(name) for name in wiring.FUNCTIONS}


def resources_allowed(statements: list[dict], action: str) -> list:
    return [s["Resource"] for s in statements
            if action in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])]


def test_the_token_audit_and_leases_are_reached_only_as_designed(template):
    statements = role_statements(template)
    with_token = {n for n, st in statements.items() if "secretsmanager:GetSecretValue" in actions_of(st)}
    assert with_token == wiring.CALLS_SYNAPSE  # the triggers never see it
    for name in with_token:
        (arn,) = resources_allowed(statements[name], "secretsmanager:GetSecretValue")
        assert f":secret:{sample_config().admin_token_secret_name}-??????" in json.dumps(arn)
    tables = {k: json.dumps(v) for k, v in resources(template, "AWS::DynamoDB::Table").items()}
    audit = next(k for k in tables if k.startswith("AuditTable"))
    locks = next(k for k in tables if k.startswith("LocksTable"))
    for name in ("SyncUserSteps", "RecordFailure"):  # append-only: no UpdateItem, DeleteItem, BatchWrite
        assert resources_allowed(statements[name], "dynamodb:PutItem") == [{"Fn::GetAtt": [audit, "Arn"]}]
    for name in ("SyncUserSteps", "PlanSweep"):  # the leases, never the audit trail
        assert resources_allowed(statements[name], "dynamodb:UpdateItem") == [{"Fn::GetAtt": [locks, "Arn"]}]


def test_functions_that_call_synapse_have_reserved_concurrency(template):
    functions = resources(template, "AWS::Lambda::Function").values()
    capped = {f["Handler"]: f.get("ReservedConcurrentExecutions") for f in functions}
    for step, handler in wiring.FUNCTIONS.items():
        assert capped[handler] == (None if step not in wiring.CALLS_SYNAPSE else wiring.INSPECT_CONCURRENCY
                                   if step in wiring.TOOLS else 10), step
    for task in (t for _, _, t in TASKS):  # a throttled step waits (minutes) instead of failing
        (throttled,) = [r for r in task["Retry"] if "Lambda.TooManyRequestsException" in r["ErrorEquals"]]
        assert throttled["MaxAttempts"] >= 20


def test_custom_events_only_on_the_stacks_bus_from_configured_senders(template):
    buses = resources(template, "AWS::Events::EventBus")
    (bus,) = buses
    rules = resources(template, "AWS::Events::Rule").values()
    custom = [r for r in rules if "EventPattern" in r and r["EventPattern"]["source"] == ["chat-provisioning"]]
    assert len(custom) == 1 and custom[0]["EventBusName"] == {"Ref": bus}
    assert custom[0]["EventPattern"]["account"] == [{"Ref": "AWS::AccountId"}]
    on_default_bus = [r for r in rules if "EventPattern" in r and "EventBusName" not in r]
    assert all(r["EventPattern"]["source"][0].startswith("aws.") for r in on_default_bus)  # nobody can send those
    (policy,) = resources(template, "AWS::Events::EventBusPolicy").values()
    # The test config names no sender (as Phenom's does not yet): the bus refuses everyone.
    assert policy["Statement"] | {"Sid": None} == {"Action": "events:PutEvents", "Effect": "Deny",
                                                   "Principal": {"AWS": "*"},
                                                   "Resource": {"Fn::GetAtt": [bus, "Arn"]}, "Sid": None}


def test_configured_senders_are_the_only_principals_not_denied():
    sender = "arn:aws:iam::111122223333:role/chat-operator"
    template = synth_in_process({"event_senders": [sender]})
    deny, allow = sorted(resources(template, "AWS::Events::EventBusPolicy").values(),
                         key=lambda p: p["Statement"]["Effect"])[::-1]
    assert deny["Statement"]["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": [sender]}}
    assert allow["Statement"]["Principal"] == {"AWS": sender}


def test_only_the_sweep_writes_its_plans(template):
    (policy,) = resources(template, "AWS::S3::BucketPolicy").values()
    (deny,) = [s for s in policy["PolicyDocument"]["Statement"] if s.get("Sid") == "OnlyTheSweepWritesPlans"]
    assert deny["Effect"] == "Deny" and set(deny["Action"]) == {"s3:PutObject", "s3:DeleteObject"}
    writers = [w["Fn::GetAtt"][0] for w in deny["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]]
    assert sorted(w.split("Role")[0].removesuffix("FunctionService") for w in writers) == ["PlanSweep", "SweepUsers"]


def test_a_failed_sweep_may_be_redriven(template):
    """Redriving the sweep redrives its map run's child executions (<machine>/<label>:<id>);
    StartExecution's {} (the schedule's input) is a sweep that applies, tested in the workflow
    tier."""
    role = machines(template)["SweepUsers"]["RoleArn"]["Fn::GetAtt"][0]
    statements = [st for policy in resources(template, "AWS::IAM::Policy").values()
                  if {"Ref": role} in policy["Roles"] for st in policy["PolicyDocument"]["Statement"]]
    [redrive] = resources_allowed(statements, "states:RedriveExecution")
    assert json.dumps(redrive).endswith('-SweepUsers/*:*"]]}')


def test_the_sweep_tolerates_every_failure_and_builds_each_input_from_a_sub():
    apply = ASLS["SweepUsers"]["States"]["ApplyPlan"]
    assert apply["ToleratedFailurePercentage"] == 100
    assert apply["ItemSelector"]["sub.$"] == "$$.Map.Item.Value.sub"
    (task,) = apply["ItemProcessor"]["States"].values()
    assert task["Parameters"]["Input"] == {"sub.$": "$.sub", "cause": "sweep"}


def test_an_http_synapse_needs_an_acknowledgment():
    with pytest.raises(SystemExit, match="allow_http_synapse"):
        synth_in_process({"synapse_url": "http://synapse.internal.example.test:8008", "allow_http_synapse": False})


# --- the operators' dashboard (issue 12) ------------------------------------------------

# What AWS publishes, as its guides name them: Step Functions' per state machine, SQS's per queue.
AWS_METRICS = {"AWS/States": ({"ExecutionsStarted", "ExecutionsSucceeded", "ExecutionsFailed", "ExecutionsTimedOut",
                               "ExecutionsAborted", "ExecutionThrottled"}, "StateMachineArn",
                              "AWS::StepFunctions::StateMachine"),
               "AWS/SQS": ({"ApproximateNumberOfMessagesVisible"}, "QueueName", "AWS::SQS::Queue")}


def dashboard_widgets(template) -> list[dict]:
    """The dashboard's widgets, its references to the stack's resources written as ref:<id>."""
    (board,) = resources(template, "AWS::CloudWatch::Dashboard").values()
    text = "".join(p if isinstance(p, str) else f"ref:{p['Ref']}" if "Ref" in p else f"ref:{p['Fn::GetAtt'][0]}"
                   for p in board["DashboardBody"]["Fn::Join"][1])
    return json.loads(text)["widgets"]


def published_by_the_code() -> set[str]:
    """The metrics some count() call in the Lambda package publishes."""
    source = "\n".join(p.read_text() for p in (ROOT / "lambdas" / "chat_provisioning").rglob("*.py"))
    return set(re.findall(r'count\(\s*"(\w+)"', source))


def test_the_dashboard_shows_what_is_published_and_nothing_else(template):
    """Each metric on the dashboard is one AWS publishes for a resource of this stack, or one
    the functions publish (telemetry.METRICS, each with its declared dimensions); each of
    those is on it; each alarm is on it."""
    assert published_by_the_code() == set(METRICS)  # declared, and published by some call
    kinds = {k: v["Type"] for k, v in template["Resources"].items()}
    shown = set()
    for widget in dashboard_widgets(template):
        for metric in widget["properties"].get("metrics", []):
            if "expression" in metric[-1]:
                for schema, name, where in re.findall(r"SEARCH\('\{([^}]*)\} MetricName=\"(\w+)\"([^']*)'",
                                                      metric[-1]["expression"]):
                    namespace, *dimensions = schema.split(",")
                    assert (namespace, set(dimensions)) == (NAMESPACE, {"service", *METRICS[name]}), metric
                    assert set(re.findall(r"(\w+)=", where)) <= set(dimensions), metric
                    shown.add(name)
                continue
            namespace, name, *pairs = metric[:-1] if isinstance(metric[-1], dict) else metric
            dimensions = dict(zip(pairs[::2], pairs[1::2], strict=True))
            if namespace == NAMESPACE:
                assert set(dimensions) == {"service", *METRICS[name]} and dimensions["service"] == wiring.SERVICE
                assert dimensions.get("cause", "signup") in get_args(Cause)
                shown.add(name)
            else:
                names, dimension, kind = AWS_METRICS[namespace]
                assert name in names and list(dimensions) == [dimension], metric
                assert kinds[dimensions[dimension].removeprefix("ref:")] == kind, metric
    assert shown == set(METRICS)
    (status,) = [w for w in dashboard_widgets(template) if w["type"] == "alarm"]
    alarms = {a.removeprefix("ref:") for a in status["properties"]["alarms"]}
    assert alarms == set(resources(template, "AWS::CloudWatch::Alarm"))
    assert "#dashboards/dashboard/ChatProvisioning-operations" in json.dumps(template["Outputs"]["DashboardUrl"])


def test_cdk_c_overrides_one_key_or_the_whole_config():
    """What `cdk synth -c ...` gives app.py: each -c a top-level string."""
    context_config = cdk_app.context_config
    shipped = {"server_name": "a.example", "sweep_schedule_enabled": True, "roles": {}}
    assert context_config({"chat-provisioning": shipped}) == shipped
    assert context_config({"chat-provisioning": shipped, "chat-provisioning.sweep_schedule_enabled": "false",
                           "chat-provisioning.sweep_schedule": "rate(1 hour)"}) == {
        **shipped, "sweep_schedule_enabled": False, "sweep_schedule": "rate(1 hour)"}
    assert context_config({"chat-provisioning": '{"server_name": "b.example"}'}) == {"server_name": "b.example"}
    assert context_config({"chat-provisioning": shipped, "chat-provisioning.admin_token_secret_name": "2024"})[
        "admin_token_secret_name"] == "2024"  # a string field stays a string


def test_the_operator_policies_are_what_the_readme_lists(template):
    """The stack's OperatorPolicy allows what README's "What an operator's role needs" lists
    (the workflow tests check the commands' calls against that list, signed with this policy);
    the day-one GroupImportPolicy, the one grant of roles an operator can make, stands apart."""
    def allowed(policy: dict) -> set[str]:
        return {a for s in policy["PolicyDocument"]["Statement"]
                for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    policies = resources(template, "AWS::IAM::ManagedPolicy")
    operator, importing = (next(p for name, p in policies.items() if name.startswith(prefix))
                           for prefix in ("OperatorPolicy", "GroupImportPolicy"))
    listed = (ROOT / "README.md").read_text().split("**What an operator's role needs:**")[1].split("\n\n")[0]
    assert allowed(operator) == set(re.findall(r"`([a-z0-9-]+:[A-Za-z]+)`", listed))
    assert allowed(importing) == {"cognito-idp:AdminAddUserToGroup"} and len(policies) == 2
    assert {"OperatorPolicyArn", "GroupImportPolicyArn"} <= set(template["Outputs"])


def test_a_new_pin_is_a_new_lambda_asset(monkeypatch):
    """The asset's pins live in pyproject.toml, outside lambdas/: they must still change the
    asset's hash, or a synth would reuse the asset built with the old ones."""
    from aws_cdk import Stack
    from aws_cdk import aws_lambda as lambda_

    from stacks import bundling

    def asset_key(pins: list[str]) -> str:
        monkeypatch.setattr(bundling, "asset_requirements", lambda: pins)
        stack = Stack(App(context={"aws:cdk:bundling-stacks": []}), "Assets")
        fn = lambda_.Function(stack, "F", runtime=bundling.RUNTIME, handler="h.h", code=bundling.lambda_code())
        return stack.resolve(fn.node.default_child.code)["s3Key"]
    assert asset_key(["httpx==0.28.1"]) != asset_key(["httpx==0.28.2"])
    assert asset_key(["httpx==0.28.1"]) == asset_key(["httpx==0.28.1"])
