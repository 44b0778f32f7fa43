"""A moto server that executes Step Functions definitions and runs each Lambda function in
execution environments of its own (lambda_runtime.py) instead of in Docker (there is none here).

moto's only Docker call is the private `LambdaFunction._invoke_lambda`; we replace it with the
local Lambda service, which answers what the Lambda service would: the result, Lambda's error
shape {"errorType", "errorMessage", ...} whose errorType Step Functions matches against
Retry/ErrorEquals, a throttle (HTTP 429) beyond the reserved concurrency, Sandbox.Timedout past
the function's timeout. Gaps in moto's Step Functions are filled:
- IAM: moto checks a call's action against resource "*" (but S3's), which no least-privilege
  statement matches: it gets the ARN the call names (iam_check.resource_of; a CloudFormation
  form's stack, the function a Lambda path names); Lambda's Invoke is checked as IAM names it,
  lambda:InvokeFunction;
  a GET has its signature checked over its empty body (moto uses its headers); a refusal of
  a JSON-protocol call is that protocol's AccessDeniedException (moto answers IAM's XML);
  each function's environment gets its role's credentials (assumed in moto), and moto's
  interpreter, which signs with a key no identity has, signs as the local administrator
  (deploy.enforce_iam): the state machines' roles are not what authorises its calls here;
- CloudFormation's state machines go to the backend that executes them (moto's CloudFormation
  writes to the one that does not);
- error names as AWS reports them: a failed Invoke call is `Lambda.<its error code>` (moto
  says `Exception`), and a function timeout is `Lambda.Unknown` as AWS's guide says, or
  `Sandbox.Timedout` as executions have been reported to record it (a test picks which);
- RedriveExecution (moto has none), emulated: the failed state's recorded input is run by a copy
  of the machine that starts at that state, as an execution of its own
  (<name>-redrive-<n>); meanwhile the redriven execution
  reports what that run does, as on AWS: its status (RUNNING, then the run's), its stop date,
  output or error, its redriveCount and redriveDate, and its history goes on with the run's
  events; in the run, the context object's Execution.Id is the redriven execution's and
  Execution.RedriveCount its count (0 in any execution not redriven);
- the startExecution.sync:2 integration (the sweep's ApplyPlan): moto sends the ASL's
  Parameters to the Step Functions API with their ASL names (StateMachineArn) and reads the
  answer with AWS's (ExecutionArn), where the API's are camelCase both ways.
moto is pinned exactly in pyproject.toml for these reasons. Its Map ignores
ToleratedFailurePercentage (every failure is tolerated), which is what ours asks for anyway.

For the reliability and attack suites it can also fail an invocation as the Lambda service or
a dependency would, or hold one: in <state dir>/control, faults.json maps a function's name (or
a SyncUser step's: lambda_runtime.target) to {"error": <errorType>, "times": n} (the next n
invocations return that error unrun); a file <name>.hold holds the next invocation's answer
(lambda_runtime.py) while a test changes something between two states, as a concurrent actor
would.

Run: python -m local_run.aws_server PORT STATE_DIR   (stops on SIGTERM)
"""

import functools
import json
import logging
import os
import re
import signal
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote

import boto3
from botocore.exceptions import ClientError
from moto.awslambda.models import LambdaFunction
from moto.cloudformation.models import cloudformation_backends
from moto.core.authorization import ActionAuthenticatorMixin
from moto.core.config import default_user_config
from moto.core.exceptions import JsonRESTError
from moto.core.responses import ActionResult
from moto.iam.access_control import IAMPolicyStatement, IAMRequest, IAMRequestBase
from moto.moto_server.werkzeug_app import DomainDispatcherApplication
from moto.secretsmanager.models import secretsmanager_backends
from moto.server import ThreadedMotoServer
from moto.stepfunctions import models as stepfunctions_models
from moto.stepfunctions.parser.api import ExecutionStatus, HistoryEventType, LambdaFunctionFailedEventDetails
from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import FailureEvent
from moto.stepfunctions.parser.asl.component.state.exec.state_task.lambda_eval_utils import (
    LambdaFunctionErrorException,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn import (
    StateTaskServiceSfn,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task_lambda import StateTaskLambda
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.parser.asl.utils import boto_client
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker
from moto.stepfunctions.parser.models import StepFunctionsParserBackend, stepfunctions_parser_backends
from moto.stepfunctions.responses import StepFunctionResponse

from chat_provisioning.domain.executions import FAILED_STATUSES, execution_arn, newest_state_entered

from .deploy import ACCOUNT, REGION
from .iam_check import iam_match, resource_of
from .lambda_runtime import FunctionConfig, LambdaService, Throttled, target

CONTROL_DIR = Path("/nonexistent")  # set by serve()
LAMBDA: LambdaService
_faults_lock = threading.Lock()  # invocations run at once; each injected fault is taken once
_redrives_lock = threading.RLock()  # reentrant: an execution may start in the caller's thread
REDRIVES: dict[str, dict] = {}  # each emulated redrive's run -> the execution it redrives, its count


class TooManyRequestsException(JsonRESTError):
    code = 429

    def __init__(self, message: str):
        super().__init__("TooManyRequestsException", message)


def injected_fault(function_name: str) -> str | None:
    path = CONTROL_DIR / "faults.json"
    with _faults_lock:
        if not path.exists():
            return None
        faults = json.loads(path.read_text())
        fault = faults.get(function_name)
        if not fault or fault["times"] <= 0:
            return None
        fault["times"] -= 1
        partial = path.with_name(".faults.json.server")
        partial.write_text(json.dumps(faults))
        os.replace(partial, path)  # the tests read and write it too
        return fault["error"]


def function_config(fn: LambdaFunction) -> FunctionConfig:
    return FunctionConfig(
        name=fn.function_name, arn=fn.function_arn, handler=fn.handler, runtime=fn.run_time,
        variables=tuple(sorted((k, str(v)) for k, v in fn.environment_vars.items())),
        timeout=int(fn.timeout), memory=int(fn.memory_size), role=fn.role,
        reserved_concurrency=None if fn.reserved_concurrency is None else int(fn.reserved_concurrency))


def invoke(self: LambdaFunction, event=None) -> tuple[str, bool, str]:
    payload = event if isinstance(event, (str, bytes)) else json.dumps(event if event is not None else {})
    if error := injected_fault(target(self.function_name, payload)):
        return json.dumps({"errorType": error, "errorMessage": "injected", "stackTrace": []}), True, ""
    try:
        answer, error = LAMBDA.invoke(function_config(self), payload.encode() if isinstance(payload, str) else payload)
    except Throttled as e:
        raise TooManyRequestsException(str(e)) from None
    return answer.decode(), error, ""


def with_aws_error_names(from_error):
    """A Lambda Task's errors as Step Functions names them on AWS."""
    def named(self, env, ex):
        if isinstance(ex, ClientError):  # the Invoke call failed: Lambda.<its error code>
            error, cause = f"Lambda.{ex.response['Error']['Code']}", ex.response["Error"]["Message"]
        elif isinstance(ex, LambdaFunctionErrorException) and '"Sandbox.Timedout"' in ex.payload:
            error, cause = timeout_error_name(), ex.payload  # a timeout has no exception type of its own
        else:
            return from_error(self, env, ex)
        return FailureEvent(env=env, error_name=CustomErrorName(error),
                            event_type=HistoryEventType.LambdaFunctionFailed,
                            event_details=EventDetails(lambdaFunctionFailedEventDetails=LambdaFunctionFailedEventDetails(
                                error=error, cause=cause)))
    return named


def timeout_error_name() -> str:
    """What Step Functions names a function's timeout: Lambda.Unknown, as AWS's guide says, or
    Sandbox.Timedout, as executions have been reported to record it (<control>/timeout-error)."""
    path = CONTROL_DIR / "timeout-error"
    return path.read_text().strip() if path.exists() else "Lambda.Unknown"


@functools.cache  # written once, by the deploy, before any execution runs
def admin_credentials() -> dict:
    return json.loads((CONTROL_DIR / "admin-credentials.json").read_text())


def role_credentials(role_arn: str) -> dict:
    """The function's role, assumed (deploy.enforce_iam): what Lambda gives an environment."""
    return json.loads((CONTROL_DIR / "role-credentials.json").read_text())[role_arn]


def once_per(key_of):
    """A function whose answer depends on key_of(*its arguments) alone, made once per key and
    kept: what moto makes again at every call (below) though the answer never changes."""
    def wrap(make):
        made: dict = {}
        lock = threading.Lock()

        @functools.wraps(make)
        def kept(*args, **kwargs):
            key = key_of(*args, **kwargs)
            with lock:
                if key not in made:
                    made[key] = make(*args, **kwargs)
                return made[key]
        return kept
    return wrap


class SignedAsAdmin:
    """boto3 for moto's Step Functions interpreter, which signs with a key no identity has.
    It asks for a new client at every Task, and making one is costly; one per service and
    endpoint serves them all (boto3's clients are thread-safe)."""
    @staticmethod
    @once_per(lambda *, service_name, region_name, endpoint_url=None, **_: (service_name, region_name, endpoint_url))
    def client(**kwargs):
        return boto3.client(**{**kwargs, **admin_credentials()})


def with_call_resources(authorize):
    """moto checks every call but S3's against the resource "*", which no statement that names
    an ARN matches (a least-privilege role could do nothing): check it against the ARN the call
    acts on, as IAM does."""
    def secret_arn(secret_id: str) -> str:
        secret = secretsmanager_backends[ACCOUNT][REGION].secrets.get(secret_id)
        return secret.arn if secret else f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{secret_id}"

    def stack_arn(name: str) -> str:
        stack = next((s for s in cloudformation_backends[ACCOUNT][REGION].stacks.values() if s.name == name), None)
        return stack.stack_id if stack else f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{name}/*"

    def authorized(self, resource: str = "*") -> None:
        if resource == "*":
            params = self.body
            try:
                params = json.loads(params or "{}") if isinstance(params, (str, bytes)) else params
            except ValueError:
                params = None
            if params == {} and self.querystring:  # a query-protocol form (CloudFormation): moto parsed it
                params = {k: v[0] for k, v in self.querystring.items()}
            if invoked := re.fullmatch(r"/2015-03-31/functions/([^/]+)/invocations", self.path or ""):
                params = {"FunctionName": unquote(invoked[1])}  # Lambda names the function in the path
            if isinstance(params, dict):
                resource = resource_of(params, secret_arn, stack_arn)
        authorize(self, resource)
    return authorized


def with_empty_bodies(create_request):
    """moto checks a signature over `body or data`: a GET's empty body is checked over its
    headers instead and refused (SignatureDoesNotMatch). A form POST's `data` is its body."""
    def request(self):
        aws_request = create_request(self)
        if self._method in ("GET", "HEAD", "DELETE") and self._body == b"":
            aws_request.data = b""
        return aws_request
    return request


# IAM's action names where moto takes the API operation's: Lambda's Invoke is lambda:InvokeFunction.
IAM_ACTIONS = {"lambda:Invoke": "lambda:InvokeFunction"}


def with_iam_action_names(init):
    def named(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self._action = IAM_ACTIONS.get(self._action, self._action)
    return named


def with_json_denials(raise_denied):
    """A refused call to a JSON-protocol service (DynamoDB, Cognito, Step Functions...) answers
    AccessDeniedException in that protocol, as AWS does; moto answers IAM's XML, which the SDK
    reads as a bare 403."""
    def denied(self) -> None:
        if "json" in (self._headers.get("Content-Type") or ""):
            raise JsonRESTError("AccessDeniedException",
                                f"User: {self._access_key.arn} is not authorized to perform: {self._action}")
        raise_denied(self)
    return denied


REDRIVABLE = set(FAILED_STATUSES)


class ExecutionNotRedrivable(JsonRESTError):
    code = 400

    def __init__(self, message: str):
        super().__init__("ExecutionNotRedrivable", message)


def redrive_execution(self) -> ActionResult:
    """StepFunctionResponse's RedriveExecution (see the module's docstring). One redrive at a
    time: a second request for the same execution finds it RUNNING and is refused, as on AWS."""
    arn = self._get_param("executionArn")
    backend = stepfunctions_parser_backends[self.current_account][self.region]
    with _redrives_lock:
        execution = backend.describe_execution(arn)
        failed_state = newest_state_entered(backend.get_execution_history(arn)["events"])
        if execution.status not in REDRIVABLE or failed_state is None:
            raise ExecutionNotRedrivable(f"Execution {arn} is {execution.status}"
                                         + ("" if failed_state else " and entered no state"))
        definition = json.loads(execution.state_machine.definition) | {"StartAt": failed_state["name"]}
        copy_name = f"{execution.state_machine.name}-from-{failed_state['name']}"
        copy = next((m for m in backend.state_machines if m.name == copy_name), None)
        if copy:
            backend.update_state_machine(copy.arn, definition=json.dumps(definition))
        else:
            copy = backend.create_state_machine(name=copy_name, definition=json.dumps(definition),
                                                roleArn=execution.role_arn)
        count = getattr(execution, "redrive_count", 0) + 1
        run_name = f"{execution.name}-redrive-{count}"
        run_arn = execution_arn(copy.arn, run_name)
        REDRIVES[run_arn] = {"execution": arn, "redrive_count": count}  # before the run reads its context
        try:
            run = backend.start_execution(copy.arn, name=run_name, execution_input=failed_state["input"])
        except Exception:
            del REDRIVES[run_arn]
            raise
        execution.redrive_count, execution.redrive_date = count, datetime.now(UTC)
        execution.exec_status, execution.stop_date = ExecutionStatus.RUNNING, None
        execution.error = execution.cause = execution.output = None
    threading.Thread(target=_report_as, args=(run, execution), daemon=True).start()
    return ActionResult({"redriveDate": execution.redrive_date})


def _report_as(run, execution) -> None:
    """The redriven execution reports its redrive's end, as on AWS."""
    while run.status == ExecutionStatus.RUNNING:
        time.sleep(0.05)
    execution.output, execution.error, execution.cause = run.output, run.error, run.cause
    execution.stop_date, execution.exec_status = run.stop_date, run.exec_status


def with_redrive_fields(describe):
    """DescribeExecution's redriveCount, redriveDate and redriveStatus (not emulated: AWS's
    NOT_REDRIVABLE for an execution whose end is more than 14 days old)."""
    def described(self) -> ActionResult:
        result = describe(self)
        execution = self.stepfunction_backend.describe_execution(self._get_param("executionArn"))
        return ActionResult({**result.result, "redriveCount": getattr(execution, "redrive_count", 0),
                             "redriveStatus": "REDRIVABLE" if execution.status in REDRIVABLE else "NOT_REDRIVABLE",
                             **({"redriveDate": execution.redrive_date} if hasattr(execution, "redrive_date") else {})})
    return described


def with_redrive_context(get_environment):
    """Step Functions' context object has Execution.RedriveCount (0 until a redrive), and a
    redrive keeps Execution.Id; moto's has no count, and the emulated redrive runs as an
    execution of its own."""
    def environment(self):
        env = get_environment(self)
        execution = env.states.context_object.context_object_data["Execution"]
        with _redrives_lock:
            redrive = REDRIVES.get(execution["Id"])
        execution["RedriveCount"] = redrive["redrive_count"] if redrive else 0
        if redrive:
            execution["Id"] = redrive["execution"]
        return env
    return environment


def with_redrive_history(get_history):
    """A redriven execution's history goes on with each redrive's events, as on AWS: an
    ExecutionRedriven event, then the run's (each emulated redrive runs as an execution of
    its own, whose ExecutionStarted that event stands for)."""
    def history(self, execution_arn: str):
        output = get_history(self, execution_arn)
        with _redrives_lock:
            runs = sorted((v["redrive_count"], r) for r, v in REDRIVES.items() if v["execution"] == execution_arn)
        events = list(output["events"])
        for count, run in runs:
            offset = len(events)
            run_events = get_history(self, run)["events"]
            if not run_events:  # started, its first event not written yet
                continue
            started, *rest = run_events
            events.append({"id": started["id"] + offset, "previousEventId": offset,
                           "timestamp": started["timestamp"], "type": "ExecutionRedriven",
                           "executionRedrivenEventDetails": {"redriveCount": count}})
            events += [{**e, "id": e["id"] + offset, "previousEventId": e.get("previousEventId", 0) + offset}
                       for e in rest]
        return {**output, "events": events}
    return history


def with_api_names(service_class):
    """The startExecution.sync:2 integration with the Step Functions API's own parameter and
    answer names (moto's LocalStack-derived code leaves the conversion out)."""
    normalise = service_class._normalise_parameters

    def parameters(self, parameters, boto_service_name=None, service_action_name=None):
        normalise(self, parameters, boto_service_name, service_action_name)
        for key in list(parameters):
            parameters[key[0].lower() + key[1:]] = parameters.pop(key)

    def response(self, response, boto_service_name=None, service_action_name=None):
        if isinstance(response, dict):
            for key in list(response):
                response[key[0].upper() + key[1:]] = response.pop(key)
    service_class._normalise_parameters, service_class._normalise_response = parameters, response


def serve(port: int, state_dir: Path) -> None:
    global CONTROL_DIR, LAMBDA
    CONTROL_DIR = state_dir / "control"
    endpoint = f"http://127.0.0.1:{port}"
    # Seen by moto's Step Functions interpreter, which calls Lambda through this server.
    os.environ["MOTO_PORT"] = str(port)
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    default_user_config["stepfunctions"]["execute_state_machine"] = True
    # CloudFormation creates state machines where the executing backend looks for them.
    stepfunctions_models.stepfunctions_backends = stepfunctions_parser_backends
    LAMBDA = LambdaService(state_dir / "lambda", CONTROL_DIR, endpoint, REGION, role_credentials)
    boto_client.boto3 = SignedAsAdmin
    IAMPolicyStatement._match = staticmethod(iam_match)
    IAMRequestBase._create_aws_request = with_empty_bodies(IAMRequestBase._create_aws_request)
    IAMRequestBase.__init__ = with_iam_action_names(IAMRequestBase.__init__)
    IAMRequest._raise_access_denied = with_json_denials(IAMRequest._raise_access_denied)
    ActionAuthenticatorMixin._authenticate_and_authorize_normal_action = with_call_resources(
        ActionAuthenticatorMixin._authenticate_and_authorize_normal_action)
    LambdaFunction._invoke_lambda = invoke
    StateTaskLambda._from_error = with_aws_error_names(StateTaskLambda._from_error)
    ExecutionWorker._get_evaluation_environment = with_redrive_context(ExecutionWorker._get_evaluation_environment)
    # moto parses a state machine's ASL again at every execution (antlr, costly); the program it
    # makes holds no execution's state (each runs in an environment of its own).
    ExecutionWorker._get_evaluation_entrypoint = once_per(
        lambda worker: worker._evaluation_details.state_machine_details.definition)(
        ExecutionWorker._get_evaluation_entrypoint)
    with_api_names(StateTaskServiceSfn)
    StepFunctionResponse.redrive_execution = redrive_execution
    StepFunctionResponse.describe_execution = with_redrive_fields(StepFunctionResponse.describe_execution)
    StepFunctionsParserBackend.get_execution_history = with_redrive_history(
        StepFunctionsParserBackend.get_execution_history)
    # moto finds a request's service by listing its package's folders and trying its URL patterns,
    # hundreds, at every request, under the lock every request takes; a host's never changes.
    DomainDispatcherApplication.get_backend_for_host = once_per(lambda app, host: host)(
        DomainDispatcherApplication.get_backend_for_host)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request: errors only
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    print(f"moto listening on 127.0.0.1:{port}", flush=True)
    stopped.wait()
    LAMBDA.stop()
    server.stop()


if __name__ == "__main__":
    serve(int(sys.argv[1]), Path(sys.argv[2]))
