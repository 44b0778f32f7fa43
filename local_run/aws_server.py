"""A moto server that executes Step Functions definitions and runs each Lambda function in
execution environments of its own (lambda_runtime.py) instead of in Docker (there is none here).

moto's only Docker call is the private `LambdaFunction._invoke_lambda`; we replace it with the
local Lambda service, which answers what the Lambda service would: the result, Lambda's error
shape {"errorType", "errorMessage", ...} whose errorType Step Functions matches against
Retry/ErrorEquals, a throttle (HTTP 429) beyond the reserved concurrency, Sandbox.Timedout past
the function's timeout. Gaps in moto's Step Functions are filled:
- error names as AWS reports them: a failed Invoke call is `Lambda.<its error code>` (moto
  says `Exception`), and a function timeout is `Lambda.Unknown` (moto would use the
  Sandbox.Timedout type);
- the context object's Execution.RedriveCount (moto has none); for a local redrive
  (env.redrive: a copy of the machine started at the failed state) Execution.Id and
  RedriveCount are the original execution's and its count, as on AWS, from
  control/redrives.json;
- the startExecution.sync:2 integration (the sweep's ApplyPlan): moto sends the ASL's
  Parameters to the Step Functions API with their ASL names (StateMachineArn) and reads the
  answer with AWS's (ExecutionArn), where the API's are camelCase both ways.
moto is pinned exactly in pyproject.toml for these reasons. Its Map ignores
ToleratedFailurePercentage (every failure is tolerated), which is what ours asks for anyway.

For the reliability and attack suites it can also fail an invocation as the Lambda service or
a dependency would, or hold one: in <state dir>/control, faults.json maps a function name to
{"error": <errorType>, "times": n} (the next n invocations return that error unrun), and a file
<function>.hold makes the next invocation of that function, once it has answered, rename it
<function>.held and wait until that file is gone before answering (a test changes something
between two states, as a concurrent actor would; the function's environment is free
meanwhile). A hold longer than the function's timeout is a timeout: the invocation answers
Sandbox.Timedout, as a function that ran that long would.

Run: python -m local_run.aws_server PORT STATE_DIR   (stops on SIGTERM)
"""

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

from botocore.exceptions import ClientError
from moto.awslambda.models import LambdaFunction
from moto.core.config import default_user_config
from moto.core.exceptions import JsonRESTError
from moto.server import ThreadedMotoServer
from moto.stepfunctions.parser.api import HistoryEventType, LambdaFunctionFailedEventDetails
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
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

from .lambda_runtime import FunctionConfig, LambdaService, Throttled

CONTROL_DIR = Path("/nonexistent")  # set by serve()
REGION = "us-east-1"
LAMBDA: LambdaService


class TooManyRequestsException(JsonRESTError):
    code = 429

    def __init__(self, message: str):
        super().__init__("TooManyRequestsException", message)


def injected_fault(function_name: str) -> str | None:
    path = CONTROL_DIR / "faults.json"
    if not path.exists():
        return None
    with open(path) as f:
        faults = json.load(f)
    fault = faults.get(function_name)
    if not fault or fault["times"] <= 0:
        return None
    fault["times"] -= 1
    with open(path, "w") as f:
        json.dump(faults, f)
    return fault["error"]


def held(function_name: str, seconds: float) -> bool:
    """Wait while a test holds this invocation; False if it is held longer than `seconds`."""
    held = CONTROL_DIR / f"{function_name}.held"
    try:
        (CONTROL_DIR / f"{function_name}.hold").rename(held)  # one invocation takes the hold
    except FileNotFoundError:
        return True
    deadline = time.monotonic() + seconds
    while held.exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def function_config(fn: LambdaFunction) -> FunctionConfig:
    return FunctionConfig(
        name=fn.function_name, arn=fn.function_arn, handler=fn.handler, runtime=fn.run_time,
        variables=tuple(sorted((k, str(v)) for k, v in fn.environment_vars.items())),
        timeout=int(fn.timeout), memory=int(fn.memory_size), role=fn.role,
        reserved_concurrency=None if fn.reserved_concurrency is None else int(fn.reserved_concurrency))


def invoke(self: LambdaFunction, event=None) -> tuple[str, bool, str]:
    if error := injected_fault(self.function_name):
        return json.dumps({"errorType": error, "errorMessage": "injected", "stackTrace": []}), True, ""
    config = function_config(self)
    payload = event if isinstance(event, (str, bytes)) else json.dumps(event if event is not None else {})
    began = time.monotonic()
    try:
        answer, error = LAMBDA.invoke(config, payload.encode() if isinstance(payload, str) else payload)
    except Throttled as e:
        raise TooManyRequestsException(str(e)) from None
    if not held(self.function_name, config.timeout - (time.monotonic() - began)):
        return json.dumps({"errorType": "Sandbox.Timedout", "errorMessage":
                           f"Task timed out after {config.timeout:.2f} seconds"}), True, ""
    return answer.decode(), error, ""


def with_aws_error_names(from_error):
    """A Lambda Task's errors as Step Functions names them on AWS."""
    def named(self, env, ex):
        if isinstance(ex, ClientError):  # the Invoke call failed: Lambda.<its error code>
            error, cause = f"Lambda.{ex.response['Error']['Code']}", ex.response["Error"]["Message"]
        elif isinstance(ex, LambdaFunctionErrorException) and '"Sandbox.Timedout"' in ex.payload:
            error, cause = "Lambda.Unknown", ex.payload  # a timeout has no exception type of its own
        else:
            return from_error(self, env, ex)
        return FailureEvent(env=env, error_name=CustomErrorName(error),
                            event_type=HistoryEventType.LambdaFunctionFailed,
                            event_details=EventDetails(lambdaFunctionFailedEventDetails=LambdaFunctionFailedEventDetails(
                                error=error, cause=cause)))
    return named


def with_redrive_context(get_environment):
    """Step Functions' context object has Execution.RedriveCount (0 until a redrive), and a
    redrive keeps Execution.Id; moto's has no count, and a local redrive is a new execution."""
    def environment(self):
        env = get_environment(self)
        execution = env.states.context_object.context_object_data["Execution"]
        path = CONTROL_DIR / "redrives.json"
        redrive = json.loads(path.read_text()).get(execution["Id"]) if path.exists() else None
        execution["RedriveCount"] = redrive["redrive_count"] if redrive else 0
        if redrive:
            execution["Id"] = redrive["execution"]
        return env
    return environment


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
    LAMBDA = LambdaService(state_dir / "lambda", endpoint, REGION,
                           lambda role: {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"})
    LambdaFunction._invoke_lambda = invoke
    StateTaskLambda._from_error = with_aws_error_names(StateTaskLambda._from_error)
    ExecutionWorker._get_evaluation_environment = with_redrive_context(ExecutionWorker._get_evaluation_environment)
    with_api_names(StateTaskServiceSfn)
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
