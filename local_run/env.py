"""The local environment: start it (`up`), use it (LocalEnv, through the roles in actors.py),
stop it (`down`). Its state (PIDs, ports, ARNs: state.py) lives in <state_dir>/state.json
between commands."""

import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from chat_provisioning.adapters.audit_table import DynamoAuditStore
from chat_provisioning.adapters.synapse import SynapseAdmin
from chat_provisioning.domain.config import ChatConfig, UserPool
from chat_provisioning.domain.policy import user_id_for
from chat_provisioning.handlers.steps import SYNC_USER_STEPS

from . import actors, deploy, iam_check, synapse_server
from .aws_events import LOCAL_OPERATOR
from .state import LocalState

ROOT = Path(__file__).resolve().parent.parent


def write_atomically(path: Path, text: str) -> None:
    """The control files are read by the moto server while we write them: never half-written."""
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(text)
    os.replace(partial, path)


PORTS = Path(tempfile.gettempdir()) / "chat-provisioning-ports"


def free_port() -> int:
    """A free port below the kernel's ephemeral range, reserved by a file no other local run
    will pick. A port that bind(0) finds free is drawn from the ephemeral range, which every
    outgoing connection draws from too: with several stacks starting at once, one was taken
    before Synapse could bind it (1 start in ~60 under `make test`)."""
    range_file = Path("/proc/sys/net/ipv4/ip_local_port_range")
    ephemeral = int(range_file.read_text().split()[0]) if range_file.exists() else 32768
    PORTS.mkdir(exist_ok=True)
    for reservation in PORTS.iterdir():  # those of runs long gone
        try:
            if time.time() - reservation.stat().st_mtime > 86400:
                reservation.unlink()
        except FileNotFoundError:  # another run removed it first
            pass
    for _ in range(1000):
        port = random.randrange(10000, ephemeral)
        try:
            os.close(os.open(PORTS / str(port), os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:  # someone else's
                continue
        return port
    raise RuntimeError(f"no free port below {ephemeral}")


def up(state_dir: Path, config: ChatConfig, handlers_synapse_url: str | None = None,
       retry_seconds: int | None = None) -> LocalState:
    """Start Synapse and moto, create the resources, write state.json; servers keep running.
    `handlers_synapse_url`: where the deployed handlers reach Synapse, when not directly (the
    reliability suite puts its fault proxy there); `retry_seconds`: see deploy.deploy."""
    state_dir = state_dir.resolve()  # state.json is read by commands run from anywhere
    if (state_dir / "state.json").exists():
        raise SystemExit(f"{state_dir}/state.json exists: run `local down` first")
    state_dir.mkdir(parents=True, exist_ok=True)
    for fresh in ("synapse", "control", "lambda", "cdk.out"):  # each `up` starts from nothing
        shutil.rmtree(state_dir / fresh, ignore_errors=True)
    (state_dir / "control").mkdir()
    aws_port, synapse_port = free_port(), free_port()
    with open(state_dir / "aws.log", "wb") as log:
        aws_proc = subprocess.Popen([sys.executable, "-m", "local_run.aws_server", str(aws_port), str(state_dir)],
                                    cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    started = {"aws": aws_proc.pid}
    try:
        endpoint = f"http://127.0.0.1:{aws_port}"
        _wait_for_port(aws_port, aws_proc)
        aws = deploy.clients(endpoint)
        pool_id, client_id = deploy.create_user_pool(aws, config)
        # The local config: the same model, with what only exists locally (server, pool, rooms).
        config = config.model_copy(update={"user_pool": UserPool(user_pool_id=pool_id, client_id=client_id,
                                                                 create=False)})
        synapse = synapse_server.start(state_dir / "synapse", synapse_port, config)
        started["synapse"] = synapse["pid"]
        token, rooms = synapse_server.bootstrap(state_dir / "synapse", synapse["url"],
                                                synapse["shared_secret"], synapse["server_name"], config)
        config = ChatConfig.model_validate({**config.model_dump(), "server_name": synapse["server_name"],
                                            "synapse_url": synapse["url"], "rooms": rooms,
                                            "allow_http_synapse": True,  # loopback
                                            "event_senders": [LOCAL_OPERATOR],
                                            # short, so that a hung Synapse shows within seconds
                                            "synapse_timeout_seconds": 3.0})
        token_file = state_dir / "admin-token"
        token_file.write_text(token)
        token_file.chmod(0o600)
        handlers_config = config.model_copy(update={"synapse_url": handlers_synapse_url or config.synapse_url})
        resources = deploy.deploy(aws, handlers_config, token, state_dir / "cdk.out", retry_seconds)
        credentials, operator, importer = deploy.enforce_iam(aws, endpoint, state_dir / "control",
                                                             set(resources["roles"].values()), resources["policies"])
        state = LocalState(
            state_dir=state_dir, pids=started, synapse_url=synapse["url"], synapse_version=synapse["version"],
            admin_token_file=token_file, jwt_private_key_file=synapse["jwt_private_key_file"],
            aws_endpoint_url=endpoint, aws_credentials=credentials, operator_credentials=operator,
            importer_credentials=importer, config=config,
            sync_state_machine_arn=resources["sync_state_machine_arn"],
            sweep_state_machine_arn=resources["sweep_state_machine_arn"], plans_bucket=resources["plans_bucket"],
            audit_table=resources["audit_table"], locks_table=resources["locks_table"],
            failed_events_url=resources["failed_events_url"], event_bus=resources["event_bus"],
            functions=resources["functions"], roles=resources["roles"])
    except BaseException:
        for pid in started.values():  # a half-started environment leaves nothing running
            synapse_server.stop(pid)
        raise
    state.save()
    return state


@contextmanager
def running(state_dir: Path, config: ChatConfig, **up_options) -> Iterator["LocalEnv"]:
    """`up`, the environment, and `down` whatever happens: for tests and benchmarks. When the
    block ends without an error, every AWS call the functions made must be one their roles
    allow, resource included, and one stacks/calls.py declares for the function, and
    nothing the stack wrote may hold the bot's token or an email address (Inspector.leaks)."""
    down(state_dir)  # what an interrupted run left
    up(state_dir, config, **up_options)
    try:
        local = LocalEnv.load(state_dir)
        yield local
        seen = iam_check.calls_seen(local.state)
        problems = iam_check.unallowed_calls(seen, local.state.roles, local.aws)
        problems += [f"not declared in stacks/calls.py: {c}" for c in iam_check.undeclared_calls(seen)]
        problems += [f"written {n} times: {what}" for what, n in local.inspector.leaks().items()
                     if what != "bytes_scanned" and n]
        if problems:
            raise AssertionError("what the stack did:\n" + "\n".join(problems))
    finally:
        down(state_dir)


def _wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the moto server exited; see aws.log")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port} after {timeout}s")


class LocalEnv:
    """The running local stack, over its typed state: its AWS clients (the administrator's),
    the bot's Synapse adapter, the deployed functions. Who uses it, each a role of its own
    (actors.py): `cognito` and `events` stand in for Cognito and EventBridge, `operator` starts,
    waits for and redrives executions and runs the sweep, `inspector` reads what happened."""

    def __init__(self, state: LocalState):
        self.state = state
        self.config = state.config
        self.aws = deploy.clients(state.aws_endpoint_url, state.aws_credentials)
        self.token = state.admin_token_file.read_text().strip()  # the bot's (a canary)
        self.synapse = SynapseAdmin(state.synapse_url, lambda refresh=False: self.token, self.config.bot_user_id)
        self.audit = DynamoAuditStore(state.audit_table, lambda: self.aws["dynamodb"])
        self.cognito = actors.Cognito(self)
        self.events = actors.EventBridge(self)
        self.operator = actors.Operator(self)
        self.inspector = actors.Inspector(self)

    @classmethod
    def load(cls, state_dir: Path) -> "LocalEnv":
        return cls(LocalState.load(state_dir))

    def role_credentials(self, function: str) -> dict:
        """The AWS_* variables of the function's role, as its execution environments get them."""
        path = self.state.state_dir / "control" / "role-credentials.json"
        return json.loads(path.read_text())[self.state.roles[function]]

    def user_id(self, sub: str) -> str:
        return user_id_for(sub, self.config)

    def admin(self, method: str, path: str, **kw) -> httpx.Response:
        """A request to Synapse with the bot's token, for what the adapter has no call for."""
        return synapse_server.loopback.request(method, self.state.synapse_url + path,
                             headers={"Authorization": f"Bearer {self.token}"}, **kw)

    def account_made_elsewhere(self, user_id: str, rooms: tuple[str, ...] = (), levels: dict[str, int] | None = None,
                               links: tuple[tuple[str, str], ...] = ()) -> dict:
        """An account this stack did not make, through the admin API as its maker did: the old
        trigger's (no link, The Red Room), one linked to an SSO provider (`links`), one set to a
        level by hand (`levels`: room key -> level)."""
        self.admin("PUT", f"/_synapse/admin/v2/users/{user_id}", json={"external_ids": [
            {"auth_provider": p, "external_id": e} for p, e in links]}).raise_for_status()
        for room in rooms:
            self.synapse.join(self.config.rooms[room].room_id, user_id)
        for room, level in (levels or {}).items():
            self.set_level_by_hand(self.config.rooms[room].room_id, user_id, level)
        return {"user_id": user_id, "rooms": list(rooms), "levels": levels or {}, "links": [list(x) for x in links]}

    def set_level_by_hand(self, room_id: str, user_id: str, level: int) -> None:
        """A room admin's edit in a client: any level, the bot's own included (which the
        adapter refuses to grant: it could never be taken back)."""
        levels = self.synapse.power_levels(room_id)
        self.admin("PUT", f"/_matrix/client/v3/rooms/{room_id}/state/m.room.power_levels",
                   json={**levels, "users": {**levels["users"], user_id: level}}).raise_for_status()

    def lower_own_level(self, sub: str, room: str, level: int) -> dict:
        """The user lowers its own level, as anyone may in any client: what a Staff member set
        to the bot's level by hand must do, since the bot can never change a peer's. Signed in
        as the user with Synapse's admin API ("login as a user"), as a server admin could."""
        user_id, room_id = self.user_id(sub), self.config.rooms[room].room_id
        token = self.admin("POST", f"/_synapse/admin/v1/users/{user_id}/login", json={}).json()["access_token"]
        levels = self.synapse.power_levels(room_id)
        synapse_server.loopback.put(
            f"{self.state.synapse_url}/_matrix/client/v3/rooms/{room_id}/state/m.room.power_levels",
            headers={"Authorization": f"Bearer {token}"},
            json={**levels, "users": {**levels["users"], user_id: level}}).raise_for_status()
        return {"sub": sub, "room": room, "level": level}

    def kick(self, sub: str, room: str) -> dict:
        """A Matrix admin removes the user from a configured room by hand: drift no event reports."""
        self.synapse.kick(self.config.rooms[room].room_id, self.user_id(sub), reason="removed by hand")
        return {"sub": sub, "room": room, "kicked": True}

    # --- the deployed functions, in their own execution environments (lambda_runtime.py) ----
    def invoke(self, function: str, event: dict) -> dict:
        """Invoke a deployed function, as its caller does (synchronously); a SyncUser step, as
        its Task does: the function that serves it, with the step named."""
        if function in SYNC_USER_STEPS:
            event, function = {"step": function, **event}, "SyncUserSteps"
        payload, failed = self.invoke_by_name(self.state.functions[function], event)
        if failed:
            raise FunctionError(function, payload)
        return payload if isinstance(payload, dict) else {}

    def invoke_by_name(self, physical_name: str, event: dict) -> tuple[object, bool]:
        """Its answer, and whether it is Lambda's error shape."""
        r = self.aws["lambda"].invoke(FunctionName=physical_name, Payload=json.dumps(event).encode())
        return json.loads(r["Payload"].read() or "null"), bool(r.get("FunctionError"))

    def invoked_as(self, name: str) -> str:
        """How a fault or a hold names a function (wiring's name) or a SyncUser step: what
        lambda_runtime.target reads from an invocation."""
        if name in SYNC_USER_STEPS:
            return name
        if name == "SyncUserSteps":  # its invocations name their step: name that
            raise ValueError(f"name a step of SyncUser, one of {sorted(SYNC_USER_STEPS)}, not its function")
        return self.state.functions[name]

    def fail_lambda(self, function: str, error: str, times: int = 1) -> None:
        """The next `times` invocations of `function` (or of a SyncUser step) fail with `error`,
        unrun (aws_server.py)."""
        path = self.state.state_dir / "control" / "faults.json"
        faults = json.loads(path.read_text()) if path.exists() else {}
        faults[self.invoked_as(function)] = {"error": error, "times": times}
        write_atomically(path, json.dumps(faults))

    def cold_start(self) -> None:
        """Every function's next invocation starts a new environment (lambda_runtime.py)."""
        write_atomically(self.state.state_dir / "control" / "cold-start", "")

    @contextmanager
    def timeouts_named(self, error: str) -> Iterator[None]:
        """Step Functions names a function's timeout `error` while in this block (aws_server.py)."""
        path = self.state.state_dir / "control" / "timeout-error"
        write_atomically(path, error)
        try:
            yield
        finally:
            path.unlink(missing_ok=True)

    @contextmanager
    def holding(self, function: str, timeout: float = 60) -> Iterator[Callable[[], None]]:
        """The next invocation of `function` (or of a SyncUser step) returns only once this block
        has ended (see aws_server.py); the block calls the function it is given to wait for
        that moment."""
        control = self.state.state_dir / "control"
        name = self.invoked_as(function)
        hold, held = control / f"{name}.hold", control / f"{name}.held"
        hold.touch()

        def reached() -> None:
            deadline = time.monotonic() + timeout
            while not held.exists():
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{function} was not invoked within {timeout}s")
                time.sleep(0.05)
        try:
            yield reached
        finally:
            hold.unlink(missing_ok=True)  # never taken
            held.unlink(missing_ok=True)  # taken: the invocation returns


class FunctionError(RuntimeError):
    """A function answered with Lambda's error shape."""

    def __init__(self, function: str, payload: dict):
        super().__init__(f"{function} failed: {payload}")
        self.error_type = (payload or {}).get("errorType")


def pids(state_dir: Path) -> dict[str, int]:
    """What `up` started, read alone: a state.json of an older shape, or one `up` left half
    right, must still be stopped."""
    return json.loads((state_dir / "state.json").read_text())["pids"]


def down(state_dir: Path) -> dict:
    path = state_dir / "state.json"
    if not path.exists():
        return {"stopped": []}
    started = pids(state_dir)
    for pid in started.values():
        synapse_server.stop(pid)
    path.unlink()
    return {"stopped": sorted(started)}


def stop_synapse(state_dir: Path) -> None:
    """An outage, for the demo and the tests."""
    synapse_server.stop(pids(state_dir)["synapse"])


def start_synapse(state_dir: Path) -> None:
    state = LocalState.load(state_dir)
    pid = synapse_server.start_again(state_dir / "synapse", state.synapse_url)
    state.model_copy(update={"pids": state.pids | {"synapse": pid}}).save()
