"""A moto server that executes Step Functions definitions and runs Lambda handlers in this
process instead of in Docker (there is no Docker here).

moto's only Docker call is the private `LambdaFunction._invoke_lambda`; we replace it with a
function that imports the handler named by the function's configuration, calls it with the
function's environment, and returns what the Lambda service would: the result, or the error
shape {"errorType", "errorMessage", "stackTrace"} whose errorType Step Functions matches
against Retry/ErrorEquals. It also adds Execution.RedriveCount to the context object, which
moto's lacks. moto is pinned exactly in pyproject.toml for these reasons.

For the reliability suite it can also fail an invocation as the Lambda service or a dependency
would: the JSON file named by LAMBDA_FAULTS_FILE maps a function name to
{"error": <errorType>, "times": n}; the next n invocations return that error unrun.

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

from moto.awslambda.models import LambdaFunction
from moto.core.config import default_user_config
from moto.server import ThreadedMotoServer
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

# os.environ is process-wide and Map iterations run on threads: one invocation at a time.
_invoke_lock = threading.Lock()


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


def injected_fault(function_name: str) -> str | None:
    path = os.environ.get("LAMBDA_FAULTS_FILE")
    if not path or not os.path.exists(path):
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


def invoke_in_process(self: LambdaFunction, event=None) -> tuple[str, bool, str]:
    if isinstance(event, (str, bytes)):
        event = json.loads(event or "{}")
    module_name, attr = self.handler.rsplit(".", 1)
    with _invoke_lock:
        if error := injected_fault(self.function_name):
            return json.dumps({"errorType": error, "errorMessage": "injected", "stackTrace": []}), True, ""
        saved = dict(os.environ)
        os.environ.update({k: str(v) for k, v in self.environment_vars.items()})
        os.environ["AWS_LAMBDA_FUNCTION_NAME"] = self.function_name
        try:
            handler = getattr(importlib.import_module(module_name), attr)
            result = handler(event if event is not None else {}, LambdaContext(self))
            return json.dumps(result), False, ""
        except Exception as e:  # what the Lambda runtime does with an unhandled exception
            return json.dumps({
                "errorType": type(e).__name__, "errorMessage": str(e),
                "stackTrace": traceback.format_tb(e.__traceback__)}), True, ""
        finally:
            os.environ.clear()
            os.environ.update(saved)


def with_redrive_count(get_environment):
    """Step Functions' context object has Execution.RedriveCount (0 until a redrive); moto's
    lacks it. A local redrive (env.redrive) is a new execution, so 0 is right here too."""
    def environment(self):
        env = get_environment(self)
        env.states.context_object.context_object_data["Execution"]["RedriveCount"] = 0
        return env
    return environment


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
    LambdaFunction._invoke_lambda = invoke_in_process
    ExecutionWorker._get_evaluation_environment = with_redrive_count(ExecutionWorker._get_evaluation_environment)
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
