"""A moto server that executes Step Functions definitions and runs Lambda handlers in this
process instead of in Docker (there is no Docker here).

moto's only Docker call is the private `LambdaFunction._invoke_lambda`; we replace it with a
function that imports the handler named by the function's configuration, calls it with the
function's environment, and returns what the Lambda service would: the result, or the error
shape {"errorType", "errorMessage", "stackTrace"} whose errorType Step Functions matches
against Retry/ErrorEquals. Three gaps in moto's Step Functions are filled:
- the context object's Execution.RedriveCount (moto has none); for a local redrive
  (env.redrive: a copy of the machine started at the failed state) Execution.Id and
  RedriveCount are the original execution's and its count, as on AWS, from the file named by
  LOCAL_REDRIVES_FILE;
- the startExecution.sync:2 integration (the sweep's ApplyPlan): moto sends the ASL's
  Parameters to the Step Functions API with their ASL names (StateMachineArn) and reads the
  answer with AWS's (ExecutionArn), where the API's are camelCase both ways.
moto is pinned exactly in pyproject.toml for these reasons. Its Map ignores
ToleratedFailurePercentage (every failure is tolerated), which is what ours asks for anyway.

For the reliability and attack suites it can also fail an invocation as the Lambda service or
a dependency would, or hold one: in the folder named by LAMBDA_CONTROL_DIR, faults.json maps
a function name to {"error": <errorType>, "times": n} (the next n invocations return that
error unrun), and a file <function>.hold makes the next invocation of that function, once it
has returned, rename it <function>.held and wait until that file is gone (a test changes
something between two states, as a concurrent actor would; other invocations go on).

Run: python -m local_run.aws_server PORT   (stops on SIGTERM)
"""

import importlib
import json
import os
import signal
import sys
import threading
import time
import traceback
import uuid
from collections.abc import MutableMapping
from pathlib import Path

from moto.awslambda.models import LambdaFunction
from moto.core.config import default_user_config
from moto.server import ThreadedMotoServer
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn import (
    StateTaskServiceSfn,
)
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

# The handlers share this process's module caches (runtime(), the boto3 clients): one
# invocation at a time.
_invoke_lock = threading.Lock()


class ThreadEnviron(MutableMapping):
    """os.environ as each thread sees it: the process's variables and, while the thread runs a
    function, that function's on top. Nothing is written to the process's environment, so a
    function sees no other function's variables, and no thread sees a variable vanish while it
    copies the environment (moto's Step Functions workers create boto3 clients, which read it,
    while functions run: swapping the variables in and out of os.environ failed 1 in ~40
    concurrent sign-ups with KeyError: 'CHAT_CONFIG')."""

    def __init__(self, base):
        self.base, self.local = base, threading.local()

    def _function(self) -> dict | None:
        return getattr(self.local, "variables", None)

    def __getitem__(self, key):
        variables = self._function()
        return variables[key] if variables is not None and key in variables else self.base[key]

    def __setitem__(self, key, value):
        variables = self._function()
        (variables if variables is not None else self.base)[key] = value

    def __delitem__(self, key):
        variables = self._function()
        del (variables if variables is not None and key in variables else self.base)[key]

    def __iter__(self):
        return iter({**self.base, **(self._function() or {})})

    def __len__(self):
        return len({**self.base, **(self._function() or {})})

    def copy(self) -> dict:
        return dict(self)


ENVIRON = ThreadEnviron(os.environ)


class LambdaContext:
    def __init__(self, fn: LambdaFunction):
        self.function_name = fn.function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = fn.function_arn
        self.memory_limit_in_mb = int(fn.memory_size)
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{fn.function_name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + int(fn.timeout)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


CONTROL_DIR = Path(os.environ.get("LAMBDA_CONTROL_DIR", "/nonexistent"))
HOLD_SECONDS = 120


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


def held(function_name: str) -> None:
    held = CONTROL_DIR / f"{function_name}.held"
    try:
        (CONTROL_DIR / f"{function_name}.hold").rename(held)  # one invocation takes the hold
    except FileNotFoundError:
        return
    deadline = time.monotonic() + HOLD_SECONDS
    while held.exists() and time.monotonic() < deadline:
        time.sleep(0.05)


def invoke_in_process(self: LambdaFunction, event=None) -> tuple[str, bool, str]:
    try:
        return run_handler(self, event)
    finally:
        held(self.function_name)  # outside the lock: other functions run meanwhile


def run_handler(self: LambdaFunction, event=None) -> tuple[str, bool, str]:
    if isinstance(event, (str, bytes)):
        event = json.loads(event or "{}")
    module_name, attr = self.handler.rsplit(".", 1)
    with _invoke_lock:
        if error := injected_fault(self.function_name):
            return json.dumps({"errorType": error, "errorMessage": "injected", "stackTrace": []}), True, ""
        ENVIRON.local.variables = {**{k: str(v) for k, v in self.environment_vars.items()},
                                   "AWS_LAMBDA_FUNCTION_NAME": self.function_name}
        try:
            handler = getattr(importlib.import_module(module_name), attr)
            result = handler(event if event is not None else {}, LambdaContext(self))
            return json.dumps(result), False, ""
        except Exception as e:  # what the Lambda runtime does with an unhandled exception
            return json.dumps({
                "errorType": type(e).__name__, "errorMessage": str(e),
                "stackTrace": traceback.format_tb(e.__traceback__)}), True, ""
        finally:
            ENVIRON.local.variables = None


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


def serve(port: int) -> None:
    # Seen by moto's Step Functions interpreter, which calls Lambda through this server.
    os.environ["MOTO_PORT"] = str(port)
    # Handlers running here talk to this server for DynamoDB, Secrets Manager, SQS...
    os.environ["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{port}"
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    os.environ["POWERTOOLS_TRACE_DISABLED"] = "true"  # no X-Ray daemon here
    default_user_config["stepfunctions"]["execute_state_machine"] = True
    os.environ = ENVIRON  # os.getenv reads it too
    LambdaFunction._invoke_lambda = invoke_in_process
    ExecutionWorker._get_evaluation_environment = with_redrive_context(ExecutionWorker._get_evaluation_environment)
    with_api_names(StateTaskServiceSfn)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    print(f"moto listening on 127.0.0.1:{port}", flush=True)
    stopped.wait()
    server.stop()


if __name__ == "__main__":
    serve(int(sys.argv[1]))
