"""The local environment: start it, use it as Cognito, EventBridge and an operator would,
stop it. Its state (PIDs, ports, ARNs) lives in <state_dir>/state.json between commands."""

import asyncio
import functools
import json
import os
import random
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import jwt
from moto.events.models import EventPattern

from stacks import wiring
from chat_provisioning.audit import DynamoAuditStore
from chat_provisioning.aws import execution_arn
from chat_provisioning.config import ChatConfig, UserPool
from chat_provisioning.policy import level_of, user_id_for
from chat_provisioning.synapse import SynapseAdmin
from chat_provisioning.signup import SIGN_UP, signup_execution_name

from toolbox import operations
from toolbox.deployment import Deployment

from . import deploy, iam_check, synapse_server
from .aws_events import (LOCAL_OPERATOR, bus_event, cloudtrail_event, execution_status_change,
                         post_confirmation_event)

ROOT = Path(__file__).resolve().parent.parent
DONE = {"SUCCEEDED", *wiring.FAILED_STATUSES}


EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")


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
       retry_seconds: int | None = None) -> dict:
    """Start Synapse and moto, create the resources, write state.json; servers keep running.
    `handlers_synapse_url`: where the deployed handlers reach Synapse, when not directly (the
    reliability suite puts its fault proxy there); `retry_seconds`: see deploy.deploy."""
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
        config = config.model_copy(update={"user_pool": UserPool(user_pool_id=pool_id, client_id=client_id, create=False)})
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
        credentials, operator = deploy.enforce_iam(aws, endpoint, state_dir / "control",
                                                   set(resources["roles"].values()), resources["operator_policy_arn"])
        state = {
            "synapse_url": synapse["url"], "server_name": synapse["server_name"],
            "synapse_version": synapse["version"],
            "aws_endpoint_url": endpoint, "aws_credentials": credentials, "operator_credentials": operator,
            "sync_state_machine_arn": resources["sync_state_machine_arn"],
            "sweep_state_machine_arn": resources["sweep_state_machine_arn"],
            "plans_bucket": resources["plans_bucket"],
            "rooms": {k: r.model_dump() for k, r in config.rooms.items()},
            "admin_token_file": str(token_file), "user_pool_id": pool_id, "client_id": client_id,
            "audit_table": resources["audit_table"], "locks_table": resources["locks_table"],
            "functions": resources["functions"], "roles": resources["roles"], "retry_queue_url": resources["retry_queue_url"],
            "failed_events_url": resources["failed_events_url"],
            "event_bus": resources["event_bus"],
            "role_arn": resources["role_arn"], "jwt_private_key_file": synapse["jwt_private_key_file"],
            "pids": started,
            "state_dir": str(state_dir), "config": json.loads(config.model_dump_json()),
        }
    except BaseException:
        for pid in started.values():  # a half-started environment leaves nothing running
            synapse_server.stop(pid)
        raise
    (state_dir / "state.json").write_text(json.dumps(state, indent=1))
    return state


@contextmanager
def running(state_dir: Path, config: ChatConfig, **up_options) -> Iterator["LocalEnv"]:
    """`up`, the environment, and `down` whatever happens: for tests and benchmarks. When the
    block ends without an error, every AWS call the functions made must be one their roles
    allow, resource included, and one the table of calls lists (docs/local-run.md), and
    nothing the stack wrote may hold the bot's token or an email address (LocalEnv.leaks)."""
    down(state_dir)  # what an interrupted run left
    up(state_dir, config, **up_options)
    try:
        local = LocalEnv.load(state_dir)
        yield local
        problems = iam_check.unallowed_calls(local.state, local.aws)
        problems += [f"not in docs/local-run.md: {c}" for c in iam_check.unlisted_calls(local.state)]
        problems += [f"written {n} times: {what}" for what, n in local.leaks().items()
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


@dataclass
class LocalEnv:
    state: dict

    @classmethod
    def load(cls, state_dir: Path) -> "LocalEnv":
        path = state_dir / "state.json"
        if not path.exists():
            raise SystemExit(f"no {path}: run `chat-provisioning local up` first")
        return cls(json.loads(path.read_text()))

    def __post_init__(self):
        self.aws = deploy.clients(self.state["aws_endpoint_url"], self.state["aws_credentials"])
        self.config = ChatConfig.model_validate(self.state["config"])
        self.token = Path(self.state["admin_token_file"]).read_text().strip()  # the bot's (a canary)
        self.synapse = SynapseAdmin(self.state["synapse_url"], lambda refresh=False: self.token,
                                    self.config.bot_user_id)
        self.audit = DynamoAuditStore(self.state["audit_table"], lambda: self.aws["dynamodb"])

    def role_credentials(self, function: str) -> dict:
        """The AWS_* variables of the function's role, as its execution environments get them."""
        path = Path(self.state["state_dir"]) / "control" / "role-credentials.json"
        return json.loads(path.read_text())[self.state["roles"][function]]

    def user_id(self, sub: str) -> str:
        return user_id_for(sub, self.config)

    def admin(self, method: str, path: str, **kw) -> httpx.Response:
        """A request to Synapse with the bot's token, for what the adapter has no call for."""
        return httpx.request(method, self.state["synapse_url"] + path,
                             headers={"Authorization": f"Bearer {self.token}"}, **kw)

    def cognito_user(self, sub: str, groups=(), name: str | None = None, sub_attribute: str | None = None,
                     confirmed: bool = True) -> None:
        """A user in the local pool, as an admin creates one (no trigger fires); `confirmed`: as
        it is once it has set its password (else FORCE_CHANGE_PASSWORD). moto picks its own sub
        and, unlike Cognito, lets us set it: the pool then holds the sub we name (a pool whose
        usernames are subs, like one that signs in by email)."""
        idp, pool = self.aws["cognito-idp"], self.state["user_pool_id"]
        idp.admin_create_user(UserPoolId=pool, Username=sub, MessageAction="SUPPRESS")
        idp.admin_update_user_attributes(UserPoolId=pool, Username=sub, UserAttributes=[
            {"Name": "sub", "Value": sub_attribute or sub}] + ([{"Name": "name", "Value": name}] if name else []))
        if confirmed:
            idp.admin_set_user_password(UserPoolId=pool, Username=sub, Password="Local-pass-1234!", Permanent=True)
        for g in groups:
            idp.admin_add_user_to_group(UserPoolId=pool, Username=sub, GroupName=g)

    # --- as Cognito and EventBridge would -------------------------------------------------
    def signup(self, sub: str | None, groups: list[str], name: str | None,
               trigger_source: str = SIGN_UP, wait: bool = True) -> dict:
        """Create the confirmed user in the local pool with its groups, then invoke the real
        PostConfirmation handler with the event Cognito sends."""
        sub = sub or str(uuid.uuid4())
        idp, pool = self.aws["cognito-idp"], self.state["user_pool_id"]
        try:
            self.cognito_user(sub, groups, name)
        except idp.exceptions.UsernameExistsException:  # Cognito's retry of one sign-up
            for g in groups:
                idp.admin_add_user_to_group(UserPoolId=pool, Username=sub, GroupName=g)
        self.confirm(sub, name, trigger_source)
        if trigger_source != SIGN_UP:
            return {"sub": sub, "trigger_source": trigger_source, "started": False,
                    "executions": self.executions(sub)}
        arn = self.execution_arn(signup_execution_name(sub.lower()))
        return {"sub": sub, **(self.wait(arn, queued=True) if wait else {"execution_arn": arn})}

    def confirm(self, sub: str, name: str | None = None, trigger_source: str = SIGN_UP) -> dict:
        """What Cognito does once a user in the pool confirms: invoke the PostConfirmation
        trigger with its event."""
        attributes = {"sub": sub, "email": f"{sub[:8]}@example.invalid", "email_verified": "true",
                      "cognito:user_status": "CONFIRMED"} | ({"name": name} if name else {})
        return self.invoke("PostConfirmation", post_confirmation_event(
            self.state["user_pool_id"], sub, attributes, trigger_source, self.state["client_id"]))

    def put_events(self, source: str, detail_type: str, detail: dict, bus: str = "own",
                   sender: str = LOCAL_OPERATOR, wait: bool = True) -> dict:
        """PutEvents as EventBridge answers it, then delivery to the deployed rules on that bus
        (moto's PutEvents cannot deliver to Lambda). The authorization is emulated from the
        same config as the stack: nobody may send an aws.* source; the stack's own bus takes
        events only from config.event_senders (its policy denies everyone else)."""
        if source.startswith("aws."):
            return {"accepted": False, "error": "NotAuthorizedForSourceException"}
        if bus == "own" and sender not in self.config.event_senders:
            return {"accepted": False, "error": "AccessDeniedException"}
        event = {**bus_event({"source": [source], "detail-type": [detail_type]}, detail),
                 "account": sender.split(":")[4]}
        return {"accepted": True, **self.deliver(event, self.state["event_bus"] if bus == "own" else "default", wait)}

    def cognito_change(self, sub: str, event_name: str, group: str | None = None,
                       wait: bool = True) -> dict:
        """Make the change in the local pool, then deliver CloudTrail's record of it."""
        idp, pool = self.aws["cognito-idp"], self.state["user_pool_id"]
        call = {"AdminAddUserToGroup": idp.admin_add_user_to_group,
                "AdminRemoveUserFromGroup": idp.admin_remove_user_from_group,
                "AdminDisableUser": idp.admin_disable_user, "AdminEnableUser": idp.admin_enable_user,
                "AdminDeleteUser": idp.admin_delete_user}[event_name]
        call(**{"UserPoolId": pool, "Username": sub, **({"GroupName": group} if group else {})})
        return self.deliver(cloudtrail_event(event_name, pool, sub, group), wait=wait)

    def start(self, sub: str, workflow_input: dict | None = None, wait: bool = True) -> dict:
        """StartExecution as an operator (the console) or anyone with states:StartExecution."""
        arn = self.aws["stepfunctions"].start_execution(
            stateMachineArn=self.state["sync_state_machine_arn"], name=f"manual-{uuid.uuid4()}",
            input=json.dumps(workflow_input if workflow_input is not None else {"sub": sub}))["executionArn"]
        return self.wait(arn) if wait else {"execution_arn": arn}

    def send_sync_event(self, detail: dict, wait: bool = True) -> dict:
        """The documented 'Sync chat user' event, sent by the configured operator."""
        return self.put_events(wiring.SYNC_EVENT_PATTERN["source"][0],
                               wiring.SYNC_EVENT_PATTERN["detail-type"][0], detail, wait=wait)

    def deliver(self, event: dict, bus: str | None = None, wait: bool = True) -> dict:
        """EventBridge's delivery of `event` on `bus` (by default: the default bus for an aws.*
        source, the stack's own otherwise) to the targets of every deployed rule whose pattern
        matches it (moto's matcher). Any event will do, one captured from a real account too."""
        events = self.aws["events"]
        bus = bus or ("default" if str(event.get("source")).startswith("aws.") else self.state["event_bus"])
        delivered = [self._invoke_async(target["Arn"], event, wait)
                     for rule in events.list_rules(EventBusName=bus)["Rules"]
                     if rule.get("EventPattern") and EventPattern.load(rule["EventPattern"]).matches_event(event)
                     for target in events.list_targets_by_rule(Rule=rule["Name"], EventBusName=bus)["Targets"]]
        if not delivered:
            return {"matched": False}
        return {"matched": True, **delivered[0]} if len(delivered) == 1 else {"matched": True, "deliveries": delivered}

    def _invoke_async(self, function_arn: str, event: dict, wait: bool) -> dict:
        """A rule's Lambda target invoked as EventBridge invokes it, asynchronously: Lambda tries
        it 1 + MaximumRetryAttempts times (at once here, minutes apart on AWS), then sends its
        record, the event with the error, to the function's on-failure destination."""
        name = function_arn.split(":")[6]
        config = self.aws["lambda"].get_function_event_invoke_config(FunctionName=name)
        for attempt in range(1 + config["MaximumRetryAttempts"]):
            result, failed = self._invoke(name, event)
            if not failed:
                break
        else:
            destination = config["DestinationConfig"]["OnFailure"]["Destination"]
            self.aws["sqs"].send_message(
                QueueUrl=self.aws["sqs"].get_queue_url(QueueName=destination.split(":")[5])["QueueUrl"],
                MessageBody=json.dumps({  # Lambda's invocation record (AWS's documented shape)
                    "version": "1.0", "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
                    "requestContext": {"requestId": str(uuid.uuid4()), "functionArn": f"{function_arn}:$LATEST",
                                       "condition": "RetriesExhausted", "approximateInvokeCount": attempt + 1},
                    "requestPayload": event,
                    "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
                    "responsePayload": result}))
            return {"started": False, "error": (result or {}).get("errorType"), "attempts": attempt + 1,
                    "dead_lettered": True}
        result = result if isinstance(result, dict) else {}
        if not (result.get("started") and wait):
            return result
        return self.wait(result["execution"])

    def sweep(self, dry_run: bool = False, approve_deactivations: int | None = None) -> dict:
        """The deployed SweepUsers state machine, run by moto to the end (its Distributed Map
        included); then each user's workflow it started, and its failure audit. A sweep that
        applies is started with {}, as the schedule starts it."""
        request = ({"dry_run": True} if dry_run else {}) | (
            {"approve_deactivations": approve_deactivations} if approve_deactivations is not None else {})
        arn = self.aws["stepfunctions"].start_execution(
            stateMachineArn=self.state["sweep_state_machine_arn"], name=f"sweep-{uuid.uuid4()}",
            input=json.dumps(request))["executionArn"]
        return self.sweep_result(arn)

    def sweep_result(self, arn: str) -> dict:
        """The operator's report of the sweep (toolbox), with each user's workflow it ran waited
        for here, which delivers the failure audit of those that failed (see wait)."""
        result, _ = operations.sweep_report(self.deployment, arn, progress=lambda line: None)
        if result["status"] != "SUCCEEDED":
            return self.wait(arn)
        return {**result, "executions": {sub: self.wait(run["execution_arn"])
                                         for sub, run in result.pop("workflows").items()}}

    @functools.cached_property
    def deployment(self) -> Deployment:
        """The local stack as an operator's command finds any deployment (toolbox), signed as
        the local operator (the stack's OperatorPolicy)."""
        return Deployment.local(Path(self.state["state_dir"]), deploy.STACK)

    def s3_json(self, bucket: str, key: str):
        return json.loads(self.aws["s3"].get_object(Bucket=bucket, Key=key)["Body"].read())

    @contextmanager
    def holding(self, function: str, timeout: float = 60) -> Iterator[Callable[[], None]]:
        """The next invocation of `function` returns only once this block has ended (see
        aws_server.py); the block calls the function it is given to wait for that moment."""
        control = Path(self.state["state_dir"]) / "control"
        name = self.state["functions"][function]
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

    def kick(self, sub: str, room: str) -> dict:
        """A Matrix admin removes the user from a configured room by hand: drift no event reports."""
        room_id = self.state["rooms"][room]["room_id"]
        self.synapse.kick(room_id, self.user_id(sub), reason="removed by hand")
        return {"sub": sub, "room": room, "kicked": True}

    # --- as an operator would ---------------------------------------------------------------
    def wait(self, arn: str, timeout: float = 300, queued: bool = False) -> dict:
        """Wait for the execution; deliver its status change to the failure audit, as the
        deployed EventBridge rule would (moto routes no EventBridge events). `queued`: a
        sign-up's, which may not exist yet (its start was queued: RetryStart makes it)."""
        sfn = self.aws["stepfunctions"]
        deadline = time.monotonic() + timeout

        def described() -> dict:
            try:
                return sfn.describe_execution(executionArn=arn)
            except sfn.exceptions.ExecutionDoesNotExist:
                if not queued:
                    raise
                return {"status": "NOT YET STARTED"}
        while (d := described())["status"] not in DONE:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{arn} still {d['status']} after {timeout}s")
            time.sleep(0.2)
        result = {"execution_arn": arn, "status": d["status"]}
        if d["status"] != "SUCCEEDED":
            result.update(self.invoke("RecordFailure", execution_status_change(d)))
            result["error"] = d.get("error")
        return result

    def redrive(self, arn: str) -> dict:
        """Step Functions' RedriveExecution (emulated by aws_server.py), and its end."""
        failed_state = operations.failed_state(self.history(arn))
        self.aws["stepfunctions"].redrive_execution(executionArn=arn)
        return {"redriven": arn, "from_state": failed_state, **self.wait(arn)}

    def history(self, arn: str) -> list[dict]:
        """Any execution's (the administrator reads them all: the redrives' runs too)."""
        return operations.history(self.aws["stepfunctions"], arn)

    def synapse_requests(self) -> list[tuple[str, float]]:
        return synapse_server.requests_served(Path(self.state["state_dir"]) / "synapse")

    def states_entered(self, arn: str) -> list[str]:
        """The states its last attempt entered: since its last redrive, if it had one."""
        events = self.history(arn)
        redriven = [i for i, e in enumerate(events) if e["type"] == "ExecutionRedriven"]
        return [e["stateEnteredEventDetails"]["name"] for e in events[(redriven or [0])[-1]:]
                if "stateEnteredEventDetails" in e]

    def executions(self, sub: str) -> list[dict]:
        sfn, out = self.aws["stepfunctions"], []
        for machine in sfn.list_state_machines()["stateMachines"]:
            for e in sfn.list_executions(stateMachineArn=machine["stateMachineArn"])["executions"]:
                d = sfn.describe_execution(executionArn=e["executionArn"])
                if sub.lower() in e["name"] or f'"{sub.lower()}"' in (d.get("input") or ""):
                    out.append({"name": e["name"], "status": e["status"],
                                "start": e["startDate"].isoformat(timespec="seconds")})
        return sorted(out, key=lambda e: e["start"])

    def execution_arn(self, name: str) -> str:
        return execution_arn(self.state["sync_state_machine_arn"], name)

    def status(self, sub: str) -> dict:
        """The user as Synapse sees it, its audit trail and its executions."""
        user_id = self.user_id(sub)
        names = {r["room_id"]: r["name"] for r in self.state["rooms"].values()}
        try:
            joined = self.synapse.joined_rooms(user_id)
        except Exception as e:  # noqa: BLE001 - status reports, it does not fix
            joined, error = [], f"{type(e).__name__}: {e}"
        else:
            error = None
        rooms = []
        for room_id in joined:
            levels = self.synapse.power_levels(room_id) if room_id in names else {}
            rooms.append({"room": names.get(room_id, room_id), "power_level": level_of(levels, user_id)})
        return {"user_id": user_id, "rooms": rooms, "synapse_error": error,
                "audit": self.audit.trail(sub.lower()), "executions": self.executions(sub)}

    def rooms(self, sub: str) -> set[tuple[str, int]]:
        """(room name, power level) for each room Synapse has the user in."""
        return {(r["room"], r["power_level"]) for r in self.status(sub)["rooms"]}

    def login(self, sub: str) -> dict:
        """Sign in as the mobile app does: a Cognito-shaped ID token, org.matrix.login.jwt,
        through matrix-nio; then list the joined rooms as the client sees them."""
        from nio import AsyncClient, JoinedRoomsResponse, LoginResponse, RoomGetStateEventResponse

        pool, client_id = self.state["user_pool_id"], self.state["client_id"]
        now = int(time.time())
        token = jwt.encode({
            "sub": sub.lower(), "aud": client_id, "token_use": "id", "iat": now, "auth_time": now,
            "exp": now + 300, "iss": f"https://cognito-idp.us-east-1.amazonaws.com/{pool}",
            "cognito:username": sub.lower()},
            Path(self.state["jwt_private_key_file"]).read_text(), algorithm="RS256")

        async def run() -> dict:
            client = AsyncClient(self.state["synapse_url"])
            try:
                login = await client.login_raw({"type": "org.matrix.login.jwt", "token": token})
                if not isinstance(login, LoginResponse):
                    return {"logged_in": False, "error": str(login)}
                rooms = await client.joined_rooms()
                out = []
                for room_id in rooms.rooms if isinstance(rooms, JoinedRoomsResponse) else []:
                    name = await client.room_get_state_event(room_id, "m.room.name")
                    out.append({"room_id": room_id, "name": name.content.get("name")
                                if isinstance(name, RoomGetStateEventResponse) else None})
                await client.logout()
                return {"logged_in": True, "user_id": login.user_id, "rooms": out}
            finally:
                await client.close()

        return asyncio.run(run())

    def leaks(self) -> dict[str, int]:
        """How often the bot's token and email addresses (every sign-up event carries one)
        appear in all the stack wrote."""
        written = self.everything_written()
        return {"bytes_scanned": len(written), "bot_token": written.count(self.token),
                "emails": len(EMAIL.findall(written))}

    def everything_written(self) -> str:
        """All this stack wrote: the functions' logs (and moto's), executions and their
        histories, the tables, the sweep's plans; what a scan for secrets and personal data
        must read."""
        state_dir = Path(self.state["state_dir"])
        logs = [state_dir / "aws.log", *sorted((state_dir / "lambda").glob("*.log"))]
        sfn, parts = self.aws["stepfunctions"], [p.read_text() for p in logs]
        for machine in sfn.list_state_machines()["stateMachines"]:
            for e in sfn.list_executions(stateMachineArn=machine["stateMachineArn"])["executions"]:
                parts.append(json.dumps(sfn.describe_execution(executionArn=e["executionArn"]), default=str))
                parts.append(json.dumps(self.history(e["executionArn"]), default=str))
        for table in (self.state["audit_table"], self.state["locks_table"]):
            parts.append(json.dumps(self.aws["dynamodb"].scan(TableName=table)["Items"]))
        s3, bucket = self.aws["s3"], self.state["plans_bucket"]
        for obj in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
            parts.append(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read().decode())
        return "\n".join(parts)

    def fail_lambda(self, function: str, error: str, times: int = 1) -> None:
        """The next `times` invocations of `function` fail with `error`, unrun (aws_server.py)."""
        path = Path(self.state["state_dir"]) / "control" / "faults.json"
        faults = json.loads(path.read_text()) if path.exists() else {}
        faults[self.state["functions"][function]] = {"error": error, "times": times}
        write_atomically(path, json.dumps(faults))

    def invoke(self, function: str, event: dict) -> dict:
        """Invoke a deployed function (in its own execution environments, lambda_runtime.py)."""
        payload, failed = self._invoke(self.state["functions"][function], event)
        if failed:
            raise FunctionError(function, payload)
        return payload if isinstance(payload, dict) else {}

    def _invoke(self, physical_name: str, event: dict) -> tuple[object, bool]:
        """Its answer, and whether it is Lambda's error shape."""
        r = self.aws["lambda"].invoke(FunctionName=physical_name, Payload=json.dumps(event).encode())
        return json.loads(r["Payload"].read() or "null"), bool(r.get("FunctionError"))


class FunctionError(RuntimeError):
    """A function answered with Lambda's error shape."""

    def __init__(self, function: str, payload: dict):
        super().__init__(f"{function} failed: {payload}")
        self.error_type = (payload or {}).get("errorType")


def down(state_dir: Path) -> dict:
    path = state_dir / "state.json"
    if not path.exists():
        return {"stopped": []}
    state = json.loads(path.read_text())
    for pid in state["pids"].values():
        synapse_server.stop(pid)
    path.unlink()
    return {"stopped": sorted(state["pids"])}


def stop_synapse(state_dir: Path) -> None:
    """An outage, for the demo and the tests."""
    state = json.loads((state_dir / "state.json").read_text())
    synapse_server.stop(state["pids"]["synapse"])


def start_synapse(state_dir: Path) -> None:
    path = state_dir / "state.json"
    state = json.loads(path.read_text())
    state["pids"]["synapse"] = synapse_server.start_again(Path(state["state_dir"]) / "synapse",
                                                          state["synapse_url"])
    path.write_text(json.dumps(state, indent=1))
