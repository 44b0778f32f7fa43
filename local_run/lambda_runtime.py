"""Lambda's execution environments, locally: each deployed function runs in worker processes of
its own, started with exactly that function's configuration, as AWS runs it.

An execution environment is one worker process running AWS's runtime interface client
(`awslambdaric`, what AWS's Python images run) on the function's handler, and the Runtime API
it polls (next / response / error, each environment its own, as on AWS). The worker gets the
function's environment variables, Lambda's own (AWS_LAMBDA_FUNCTION_NAME...), and the
credentials of the function's role; nothing of this process's environment but PATH. Between
invocations it stays warm; a new one is started when none is idle (a cold start, its init
duration in the REPORT line of <log_dir>/<function>.log, as Lambda logs it).

As the Lambda service answers:
- at most the function's reserved concurrency at once; one invocation more is throttled
  (TooManyRequestsException, HTTP 429; Step Functions reports Lambda.TooManyRequestsException).
  Without a reservation AWS has the account's pool (1,000): here at most UNRESERVED_LOCAL run
  at once and any more wait for one to finish;
- an invocation that outlives the function's timeout (or an init longer than INIT_SECONDS) kills
  its worker and answers errorType Sandbox.Timedout, "Task timed out after N seconds";
- an unhandled exception answers Lambda's error shape with its real type (the runtime
  interface client builds it), an init failure its Runtime.* type;
- the REPORT line's Duration runs from the hand-over to the answer; a cold start's Init
  Duration, from the process's start to its first poll, is reported apart.
A file <control dir>/cold-start (make bench) stops every idle environment at the next
invocation: every function then starts cold (one at work then stays; the bench runs alone).

Local only: AWS_ENDPOINT_URL points the SDK at moto, and LOCAL_CALLS_FILE, where the worker
records each AWS call it makes (lambda_worker.py). The code run is this checkout's `lambdas/`,
on this machine's Python, in an environment of the asset's packages and what Lambda's runtime
provides, nothing else (.lambda-venv, `make install`, stacks/asset_pins.py): not the asset's own
wheels, which are built for arm64."""

import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TASK_ROOT = ROOT / "lambdas"
WORKER = Path(__file__).resolve().parent / "lambda_worker.py"
PYTHON = ROOT / ".lambda-venv" / "bin" / "python"
UNRESERVED_LOCAL = 10
INIT_SECONDS = 10  # Lambda's limit on an on-demand function's init phase
RUNTIME_API = "/2018-06-01/runtime"


def target(function_name: str, event: bytes | str) -> str:
    """What a test's fault or hold names: the step in the payload of a function that serves
    several (its Task's `step`), else the function."""
    try:
        step = json.loads(event).get("step")
    except (ValueError, AttributeError):
        step = None
    return step if isinstance(step, str) else function_name


def reports(log: Path, offset: int = 0) -> list[dict[str, str]]:
    """The REPORT lines a function's log holds past byte `offset` (ExecutionEnvironment._report
    writes them), each as its fields: {"Duration": "12.00 ms", "Init Duration": ..., ...}."""
    lines = log.read_bytes()[offset:].decode(errors="replace").splitlines() if log.exists() else []
    return [dict(field.split(": ", 1) for field in line.split("\t")[1:] if ": " in field)
            for line in lines if line.startswith("REPORT ")]


def number(field: str) -> float:
    """A REPORT field's figure: "12.00 ms" -> 12.0."""
    return float(field.split()[0])


class RuntimeAPIServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        """A worker killed mid-poll (a timeout, a stop) resets its connection: that is no error."""
        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            super().handle_error(request, client_address)


class Throttled(Exception):
    """The function runs its reserved concurrency already."""


@dataclass(frozen=True)
class FunctionConfig:
    """What Lambda starts an execution environment with; a change means new environments."""
    name: str
    arn: str
    handler: str
    runtime: str
    variables: tuple[tuple[str, str], ...]
    timeout: int
    memory: int
    role: str
    reserved_concurrency: int | None
    task_root: Path = TASK_ROOT  # where its handler's module is (the bench's baseline has its own)


@dataclass
class Invocation:
    request_id: str
    event: bytes
    timeout: int
    dispatched: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    deadline: float = 0.0  # epoch seconds, set when the worker takes it
    taken: float = 0.0  # monotonic, when the worker took it: Duration runs from here, as on AWS
    answer: bytes = b""
    error: bool = False

    def finish(self, answer: bytes, error: bool) -> None:
        if not self.done.is_set():
            self.answer, self.error = answer, error
            self.done.set()


class ExecutionEnvironment:
    def __init__(self, config: FunctionConfig, credentials: dict, services: dict, log):
        self.config, self.log, self.services = config, log, services
        self.pending: queue.Queue[Invocation | None] = queue.Queue()
        self.current: Invocation | None = None
        self.init_seconds: float | None = None  # measured once, reported with the first invocation
        self.reported_init = False
        self.started = time.monotonic()
        self.stopped = False
        self.server = RuntimeAPIServer(("127.0.0.1", 0), self._api())
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        variables = dict(config.variables) | {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "en_US.UTF-8", "TZ": ":UTC",
            "LAMBDA_TASK_ROOT": str(config.task_root), "_HANDLER": config.handler,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{config.runtime}",
            "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{self.server.server_address[1]}",
            "AWS_LAMBDA_FUNCTION_NAME": config.name, "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(config.memory),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{config.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": str(uuid.uuid4()),
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_REGION": services["region"], "AWS_DEFAULT_REGION": services["region"],
            **credentials,
            "AWS_ENDPOINT_URL": services["endpoint"],
            "LOCAL_CALLS_FILE": str(services["calls_dir"] / f"{config.name}.jsonl"),
        }
        if not PYTHON.exists():
            raise RuntimeError(f"no {PYTHON}: run `make install`")
        self.process = subprocess.Popen([str(PYTHON), str(WORKER), config.handler], cwd=config.task_root,
                                        env=variables, stdout=log, stderr=subprocess.STDOUT)

    def _api(self):
        environment = self

        class RuntimeAPI(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _reply(self, status: int, body: bytes = b"", headers: dict | None = None):
                try:
                    self.send_response(status)
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):  # its worker was killed meanwhile
                    self.close_connection = True

            def do_GET(self):
                if self.path != f"{RUNTIME_API}/invocation/next":
                    return self._reply(404)
                if environment.init_seconds is None:
                    environment.init_seconds = time.monotonic() - environment.started
                inv = environment.pending.get()
                if inv is None:  # stopped: its worker is gone
                    self.close_connection = True
                    return
                inv.deadline = time.time() + inv.timeout
                inv.taken = time.monotonic()
                inv.dispatched.set()
                self._reply(200, inv.event, {
                    "Content-Type": "application/json",
                    "Lambda-Runtime-Aws-Request-Id": inv.request_id,
                    "Lambda-Runtime-Deadline-Ms": str(int(inv.deadline * 1000)),
                    "Lambda-Runtime-Invoked-Function-Arn": environment.config.arn,
                    "Lambda-Runtime-Trace-Id": f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]}"})

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                parts = self.path.removeprefix(RUNTIME_API).strip("/").split("/")
                inv = environment.current
                if parts == ["init", "error"]:
                    if inv:
                        inv.finish(body, error=True)
                elif len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
                    if inv is None or parts[1] != inv.request_id:
                        return self._reply(400, b'{"errorType":"InvalidRequestID"}')
                    environment.held(inv)
                    inv.finish(body, error=parts[2] == "error")
                else:
                    return self._reply(404)
                self._reply(202, b'{"status":"OK"}')
        return RuntimeAPI

    def held(self, inv: Invocation) -> None:
        """A test's hold: with <control dir>/<name>.hold present (name: target()), the next
        invocation's answer is taken only once the test removes <name>.held (the file renamed):
        the function is still running meanwhile, so a hold past its timeout is a timeout."""
        control, name = self.services["control_dir"], target(self.config.name, inv.event)
        held = control / f"{name}.held"
        try:
            (control / f"{name}.hold").rename(held)  # one invocation takes the hold
        except FileNotFoundError:
            return
        while held.exists() and not self.stopped:
            time.sleep(0.05)

    def invoke(self, event: bytes) -> tuple[bytes, bool]:
        inv = Invocation(str(uuid.uuid4()), event, self.config.timeout)
        self.current = inv
        self.pending.put(inv)
        began = time.monotonic()
        cold = not self.reported_init
        # A cold worker has INIT_SECONDS to start polling; the timeout runs from the hand-over.
        take_by = began + (INIT_SECONDS if cold else inv.timeout)
        while not inv.done.wait(0.05):
            if not inv.dispatched.is_set() and time.monotonic() > take_by:
                self.stop()
                return self._timed_out(inv, INIT_SECONDS if cold else inv.timeout), True
            if inv.dispatched.is_set() and time.time() > inv.deadline:
                self.stop()
                return self._timed_out(inv, inv.timeout), True
            if not self.alive:  # finish() keeps an answer posted before the exit
                inv.finish(json.dumps({"errorType": "Runtime.ExitError", "errorMessage":
                                       f"RequestId: {inv.request_id} Error: Runtime exited with error: "
                                       f"exit status {self.process.returncode}"}).encode(), error=True)
        # From the hand-over (or the start, for an init that failed): the init is reported apart.
        self._report(inv, time.monotonic() - (inv.taken or began), cold)
        self.current = None
        return inv.answer, inv.error

    def _timed_out(self, inv: Invocation, seconds: int) -> bytes:
        self._report(inv, seconds, cold=not self.reported_init, status="timeout")
        return json.dumps({"errorType": "Sandbox.Timedout", "errorMessage":
                           f"RequestId: {inv.request_id} Error: Task timed out after {seconds:.2f} seconds"}).encode()

    def _report(self, inv: Invocation, seconds: float, cold: bool, status: str = "") -> None:
        init = f"\tInit Duration: {self.init_seconds * 1000:.2f} ms" if cold and self.init_seconds else ""
        self.reported_init = True
        line = (f"REPORT RequestId: {inv.request_id}\tDuration: {seconds * 1000:.2f} ms\t"
                f"Memory Size: {self.config.memory} MB\tMax Memory Used: {self._max_memory_mb()} MB{init}"
                + (f"\tStatus: {status}" if status else "") + "\n")
        self.log.write(line.encode())

    def _max_memory_mb(self) -> int:
        """The worker's peak resident memory (Linux's VmHWM), as Lambda reports it per environment."""
        try:
            status = Path(f"/proc/{self.process.pid}/status").read_text()
        except OSError:  # killed (a timeout): its peak is gone with it
            return 0
        return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) // 1024

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        if self.alive:
            self.process.kill()
        self.process.wait()
        self.pending.put(None)  # frees a poll still waiting
        self.server.shutdown()
        self.server.server_close()


class LambdaService:
    """The functions' execution environments, by function name."""

    def __init__(self, log_dir: Path, control_dir: Path, endpoint: str, region: str, credentials_for):
        self.log_dir = log_dir
        self.services = {"endpoint": endpoint, "region": region, "calls_dir": log_dir / "calls",
                         "control_dir": control_dir}
        self.services["calls_dir"].mkdir(parents=True, exist_ok=True)
        self.credentials_for = credentials_for  # role ARN -> the AWS_* credential variables
        self.lock = threading.Condition()
        self.idle: dict[str, list[ExecutionEnvironment]] = {}
        self.busy: dict[str, int] = {}
        self.logs: dict[str, object] = {}

    def invoke(self, config: FunctionConfig, event: bytes) -> tuple[bytes, bool]:
        try:  # <control dir>/cold-start, the bench's: every function starts cold from here on
            (self.services["control_dir"] / "cold-start").unlink()
            self.stop()
        except FileNotFoundError:
            pass
        env = self._take(config)
        try:
            if env is None:
                env = ExecutionEnvironment(config, self.credentials_for(config.role), self.services,
                                           self._log(config.name))
            return env.invoke(event)
        finally:
            with self.lock:
                self.busy[config.name] -= 1
                keep = env is not None and env.alive and env.config == config
                if keep:
                    self.idle.setdefault(config.name, []).append(env)
                self.lock.notify_all()
            if env is not None and not keep:
                env.stop()  # outside the lock: stopping waits for the process and the API

    def _take(self, config: FunctionConfig) -> ExecutionEnvironment | None:
        """An idle environment of this configuration, or None to start one; throttles as Lambda
        does beyond a reservation, waits beyond the local cap otherwise."""
        stale: list[ExecutionEnvironment] = []
        try:
            with self.lock:
                while True:
                    idle = self.idle.setdefault(config.name, [])
                    for env in [e for e in idle if e.config != config or not e.alive]:
                        idle.remove(env)
                        stale.append(env)
                    busy = self.busy.get(config.name, 0)
                    limit = config.reserved_concurrency if config.reserved_concurrency is not None else UNRESERVED_LOCAL
                    if idle or busy < limit:
                        self.busy[config.name] = busy + 1
                        return idle.pop() if idle else None
                    if config.reserved_concurrency is not None:
                        raise Throttled(f"Rate Exceeded. Reserved concurrency {limit} of {config.name} in use.")
                    self.lock.wait()
        finally:
            for env in stale:  # outside the lock
                env.stop()

    def _log(self, name: str):
        with self.lock:
            if name not in self.logs:
                self.logs[name] = open(self.log_dir / f"{name}.log", "ab", buffering=0)
            return self.logs[name]

    def stop(self) -> None:
        with self.lock:
            for envs in self.idle.values():
                for env in envs:
                    env.stop()
            self.idle.clear()
