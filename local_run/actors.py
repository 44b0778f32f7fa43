"""Who uses the local stack, each over the same environment (env.LocalEnv makes one of each):
Cognito and EventBridge as AWS would act (the trigger's event, a CloudTrail record, a rule's
delivery), the operator who starts, waits for and redrives executions, and the inspector who
reads what happened."""

import asyncio
import functools
import hashlib
import json
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any, Protocol

import jwt
from moto.events.models import EventPattern

from chat_provisioning.adapters.audit_table import DynamoAuditStore
from chat_provisioning.adapters.synapse import SynapseAdmin
from chat_provisioning.domain.config import ChatConfig
from chat_provisioning.domain.executions import FAILED_STATUSES, execution_arn
from chat_provisioning.domain.models import SYNC_EVENT
from chat_provisioning.domain.policy import level_of
from chat_provisioning.handlers.signup import SIGN_UP, signup_execution_name
from toolbox import operations
from toolbox.deployment import Deployment

from . import deploy, synapse_server
from .aws_events import LOCAL_OPERATOR, bus_event, cloudtrail_event, execution_status_change, post_confirmation_event
from .state import LocalState


class Env(Protocol):
    """What the actors use of the running local stack: env.LocalEnv, which makes one of each."""
    state: LocalState
    config: ChatConfig
    aws: dict[str, Any]
    token: str  # the bot's
    synapse: SynapseAdmin
    audit: DynamoAuditStore
    events: "EventBridge"
    operator: "Operator"
    inspector: "Inspector"

    def invoke(self, function: str, event: dict) -> dict: ...
    def invoke_by_name(self, physical_name: str, event: dict) -> tuple[object, bool]: ...
    def user_id(self, sub: str) -> str: ...


DONE = {"SUCCEEDED", *FAILED_STATUSES}
EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")


def email_of(sub: str) -> str:
    """A local user's email address: on a domain that is never delivered, and one the leak scan
    looks for in all the stack wrote (Inspector.leaks)."""
    return f"{sub[:8]}@example.invalid"


def username_of(sub: str) -> str:
    """A local user's username: not its sub, as in a pool where people sign in with a username,
    so that what must resolve a username to its sub (the sign-up trigger, a CloudTrail record
    without the sub, `user status <username>`) does so here too. 64 bits of the sub's hash:
    subs that share a prefix (typed by hand, or thousands seeded) get usernames of their own."""
    return f"user-{hashlib.sha256(sub.encode()).hexdigest()[:16]}"


@dataclass
class Cognito:
    """The user pool and its PostConfirmation trigger, and CloudTrail's records of admin calls."""
    env: Env

    def create_user(self, sub: str, groups=(), name: str | None = None, confirmed: bool = True) -> str:
        """A user in the local pool, as an admin creates one (no trigger fires), with its
        username (username_of) and an email, as a real pool's users have; `confirmed`: as it is
        once it has set its password (else FORCE_CHANGE_PASSWORD). moto picks its own sub and,
        unlike Cognito, lets us set it: the pool then holds the sub we name. Returns the username."""
        idp, pool, username = self.env.aws["cognito-idp"], self.env.state.user_pool_id, username_of(sub)
        idp.admin_create_user(UserPoolId=pool, Username=username, MessageAction="SUPPRESS")
        idp.admin_update_user_attributes(UserPoolId=pool, Username=username, UserAttributes=[
            {"Name": "sub", "Value": sub}, {"Name": "email", "Value": email_of(sub)},
            {"Name": "email_verified", "Value": "true"}] + ([{"Name": "name", "Value": name}] if name else []))
        if confirmed:
            idp.admin_set_user_password(UserPoolId=pool, Username=username, Password="Local-pass-1234!",
                                        Permanent=True)
        for g in groups:
            idp.admin_add_user_to_group(UserPoolId=pool, Username=username, GroupName=g)
        return username

    def signup(self, sub: str | None, groups: list[str], name: str | None,
               trigger_source: str = SIGN_UP, wait: bool = True) -> dict:
        """Create the confirmed user in the local pool with its groups, then invoke the real
        PostConfirmation handler with the event Cognito sends."""
        sub = sub or str(uuid.uuid4())
        idp, pool = self.env.aws["cognito-idp"], self.env.state.user_pool_id
        try:
            self.create_user(sub, groups, name)
        except idp.exceptions.UsernameExistsException:  # Cognito's retry of one sign-up
            for g in groups:
                idp.admin_add_user_to_group(UserPoolId=pool, Username=username_of(sub), GroupName=g)
        self.confirm(sub, name, trigger_source)
        if trigger_source != SIGN_UP:
            return {"sub": sub, "trigger_source": trigger_source, "started": False,
                    "executions": self.env.inspector.executions(sub)}
        arn = self.env.inspector.execution_arn(signup_execution_name(sub.lower()))
        return {"sub": sub, "username": username_of(sub), "email": email_of(sub),
                **(self.env.operator.wait(arn, queued=True) if wait else {"execution_arn": arn})}

    def confirm(self, sub: str, name: str | None = None, trigger_source: str = SIGN_UP) -> dict:
        """What Cognito does once a user in the pool confirms: invoke the PostConfirmation
        trigger with its event, which names the user by username."""
        attributes = {"sub": sub, "email": email_of(sub), "email_verified": "true",
                      "cognito:user_status": "CONFIRMED"} | ({"name": name} if name else {})
        return self.env.invoke("PostConfirmation", post_confirmation_event(
            self.env.state.user_pool_id, username_of(sub), attributes, trigger_source, self.env.state.client_id))

    def change(self, sub: str, event_name: str, group: str | None = None, wait: bool = True,
               name: str | None = None) -> dict:
        """Make the change in the local pool, then deliver CloudTrail's record of it (`group`
        for a group's calls, `name` for AdminUpdateUserAttributes)."""
        idp, pool = self.env.aws["cognito-idp"], self.env.state.user_pool_id
        call = {"AdminAddUserToGroup": idp.admin_add_user_to_group,
                "AdminRemoveUserFromGroup": idp.admin_remove_user_from_group,
                "AdminDisableUser": idp.admin_disable_user, "AdminEnableUser": idp.admin_enable_user,
                "AdminDeleteUser": idp.admin_delete_user,
                "AdminUpdateUserAttributes": idp.admin_update_user_attributes}[event_name]
        call(**{"UserPoolId": pool, "Username": username_of(sub), **({"GroupName": group} if group else {}),
                **({"UserAttributes": [{"Name": "name", "Value": name}]} if name is not None else {})})
        return self.env.events.deliver(cloudtrail_event(event_name, pool, sub, group), wait=wait)


@dataclass
class EventBridge:
    """PutEvents, and the delivery of events to the deployed rules' Lambda targets."""
    env: Env

    def put(self, source: str, detail_type: str, detail: dict, bus: str = "own",
            sender: str = LOCAL_OPERATOR, wait: bool = True) -> dict:
        """PutEvents as EventBridge answers it, then delivery to the deployed rules on that bus
        (moto's PutEvents cannot deliver to Lambda). The authorization is emulated from the
        same config as the stack: nobody may send an aws.* source; the stack's own bus takes
        events only from config.event_senders (its policy denies everyone else)."""
        if source.startswith("aws."):
            return {"accepted": False, "error": "NotAuthorizedForSourceException"}
        if bus == "own" and sender not in self.env.config.event_senders:
            return {"accepted": False, "error": "AccessDeniedException"}
        event = {**bus_event({"source": [source], "detail-type": [detail_type]}, detail),
                 "account": sender.split(":")[4]}
        return {"accepted": True, **self.deliver(event, self.env.state.event_bus if bus == "own" else "default", wait)}

    def send_sync_event(self, detail: dict, wait: bool = True) -> dict:
        """The documented 'Sync chat user' event, sent by the configured operator."""
        return self.put(SYNC_EVENT["source"], SYNC_EVENT["detail-type"], detail, wait=wait)

    def deliver(self, event: dict, bus: str | None = None, wait: bool = True) -> dict:
        """EventBridge's delivery of `event` on `bus` (by default: the default bus for an aws.*
        source, the stack's own otherwise) to the targets of every deployed rule whose pattern
        matches it (moto's matcher). Any event will do, one captured from a real account too."""
        events = self.env.aws["events"]
        bus = bus or ("default" if str(event.get("source")).startswith("aws.") else self.env.state.event_bus)
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
        aws, name = self.env.aws, function_arn.split(":")[6]
        config = aws["lambda"].get_function_event_invoke_config(FunctionName=name)
        attempts = 1 + config["MaximumRetryAttempts"]
        for _ in range(attempts):
            result, failed = self.env.invoke_by_name(name, event)
            if not failed:
                break
        else:
            destination = config["DestinationConfig"]["OnFailure"]["Destination"]
            aws["sqs"].send_message(
                QueueUrl=aws["sqs"].get_queue_url(QueueName=destination.split(":")[5])["QueueUrl"],
                MessageBody=json.dumps({  # Lambda's invocation record (AWS's documented shape)
                    "version": "1.0", "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
                    "requestContext": {"requestId": str(uuid.uuid4()), "functionArn": f"{function_arn}:$LATEST",
                                       "condition": "RetriesExhausted", "approximateInvokeCount": attempts},
                    "requestPayload": event,
                    "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
                    "responsePayload": result}))
            return {"started": False, "error": (result or {}).get("errorType"), "attempts": attempts,
                    "dead_lettered": True}
        result = result if isinstance(result, dict) else {}
        if not (result.get("started") and wait):
            return result
        return self.env.operator.wait(result["execution"])


@dataclass
class Operator:
    """The redriver: starts an execution from the console, waits for its end, redrives it, runs
    the sweep. Its waits deliver each failed execution's status change to the failure audit, as
    the deployed rule would (moto routes no EventBridge events)."""
    env: Env

    @functools.cached_property
    def deployment(self) -> Deployment:
        """The local stack as an operator's command finds any deployment (toolbox), signed as
        the local operator (the stack's OperatorPolicy)."""
        state = self.env.state
        return Deployment.find(deploy.STACK, deploy.REGION, None, state.aws_endpoint_url, state.operator_credentials)

    def start(self, sub: str, workflow_input: dict | None = None, wait: bool = True) -> dict:
        """StartExecution as an operator (the console) or anyone with states:StartExecution."""
        arn = self.env.aws["stepfunctions"].start_execution(
            stateMachineArn=self.env.state.sync_state_machine_arn, name=f"manual-{uuid.uuid4()}",
            input=json.dumps(workflow_input if workflow_input is not None else {"sub": sub}))["executionArn"]
        return self.wait(arn) if wait else {"execution_arn": arn}

    def wait(self, arn: str, timeout: float = 300, queued: bool = False) -> dict:
        """Wait for the execution, then deliver its failure to the audit. `queued`: a sign-up's,
        which may not exist yet (its start was queued: RetryStart makes it)."""
        sfn = self.env.aws["stepfunctions"]
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
            result.update(self.env.invoke("RecordFailure", execution_status_change(d)))
            result["error"] = d.get("error")
        return result

    def redrive(self, arn: str) -> dict:
        """Step Functions' RedriveExecution (emulated by aws_server.py), and its end."""
        failed_state = operations.failed_state(self.env.inspector.history(arn))
        self.env.aws["stepfunctions"].redrive_execution(executionArn=arn)
        return {"redriven": arn, "from_state": failed_state, **self.wait(arn)}

    def sweep(self, dry_run: bool = False, approve_removals: int | None = None, adopt: bool = False,
              align_rooms: bool = False) -> dict:
        """The deployed SweepUsers state machine, run by moto to the end (its Distributed Map
        included); then each user's workflow it started, and its failure audit. A sweep that
        applies is started with {}, as the schedule starts it."""
        request = operations.sweep_request(dry_run, approve_removals, adopt, align_rooms)
        arn = self.env.aws["stepfunctions"].start_execution(
            stateMachineArn=self.env.state.sweep_state_machine_arn, name=f"sweep-{uuid.uuid4()}",
            input=json.dumps(request))["executionArn"]
        return self.sweep_result(arn)

    def sweep_result(self, arn: str) -> dict:
        """The operator's report of the sweep (toolbox), with each user's workflow it ran waited
        for here, which delivers the failure audit of those that failed."""
        result, _ = operations.sweep_report(self.deployment, arn, progress=lambda line: None)
        if result["status"] != "SUCCEEDED":
            return self.wait(arn)
        return {**result, "executions": {sub: self.wait(run["execution_arn"])
                                         for sub, run in result.pop("workflows").items()}}


@dataclass
class Inspector:
    """Reads what happened: executions and their histories, the user in Synapse, what the stack
    wrote (for the scan for the token and emails), what Synapse served."""
    env: Env

    def history(self, arn: str) -> list[dict]:
        """Any execution's (the administrator reads them all: the redrives' runs too)."""
        return operations.history(self.env.aws["stepfunctions"], arn)

    def failed_attempts(self, arn: str) -> list[dict]:
        """The Lambda failures in its history (each retried or final)."""
        return [e for e in self.history(arn) if e["type"] == "LambdaFunctionFailed"]

    def states_entered(self, arn: str) -> list[str]:
        """The states its last attempt entered: since its last redrive, if it had one."""
        events = self.history(arn)
        redriven = [i for i, e in enumerate(events) if e["type"] == "ExecutionRedriven"]
        return [e["stateEnteredEventDetails"]["name"] for e in events[(redriven or [0])[-1]:]
                if "stateEnteredEventDetails" in e]

    def executions(self, sub: str) -> list[dict]:
        sfn, out = self.env.aws["stepfunctions"], []
        for machine in sfn.list_state_machines()["stateMachines"]:
            for e in sfn.list_executions(stateMachineArn=machine["stateMachineArn"])["executions"]:
                d = sfn.describe_execution(executionArn=e["executionArn"])
                if sub.lower() in e["name"] or f'"{sub.lower()}"' in (d.get("input") or ""):
                    out.append({"name": e["name"], "status": e["status"],
                                "start": e["startDate"].isoformat(timespec="seconds")})
        return sorted(out, key=lambda e: e["start"])

    def execution_arn(self, name: str) -> str:
        return execution_arn(self.env.state.sync_state_machine_arn, name)

    def status(self, sub: str) -> dict:
        """The user as Synapse sees it, its audit trail and its executions."""
        user_id, synapse = self.env.user_id(sub), self.env.synapse
        names = {r.room_id: r.name for r in self.env.config.rooms.values()}
        try:
            joined = synapse.joined_rooms(user_id)
        except Exception as e:  # noqa: BLE001 - status reports, it does not fix
            joined, error = [], f"{type(e).__name__}: {e}"
        else:
            error = None
        rooms = []
        for room_id in joined:
            levels = synapse.power_levels(room_id) if room_id in names else {}
            rooms.append({"room": names.get(room_id, room_id), "power_level": level_of(levels, user_id)})
        return {"user_id": user_id, "rooms": rooms, "synapse_error": error,
                "audit": self.env.audit.trail(sub.lower()), "executions": self.executions(sub)}

    def rooms(self, sub: str) -> set[tuple[str, int]]:
        """(room name, power level) for each room Synapse has the user in."""
        return {(r["room"], r["power_level"]) for r in self.status(sub)["rooms"]}

    def id_token(self, sub: str) -> str:
        """A Cognito-shaped ID token for `sub`, valid for 5 minutes, as the mobile app holds one."""
        state, now = self.env.state, int(time.time())
        return jwt.encode({
            "sub": sub.lower(), "aud": state.client_id, "token_use": "id", "iat": now, "auth_time": now,
            "exp": now + 300, "iss": f"https://cognito-idp.us-east-1.amazonaws.com/{state.user_pool_id}",
            "cognito:username": username_of(sub)},
            state.jwt_private_key_file.read_text(), algorithm="RS256")

    def session(self, sub: str) -> str | None:
        """Sign in with an ID token (org.matrix.login.jwt) and keep the session: its access
        token, or None when Synapse refuses the login."""
        r = synapse_server.loopback.post(f"{self.env.state.synapse_url}/_matrix/client/v3/login",
                       json={"type": "org.matrix.login.jwt", "token": self.id_token(sub)})
        return r.json()["access_token"] if r.status_code == 200 else None

    def answers(self, access_token: str) -> bool:
        """Whether Synapse still takes the session's access token (whoami)."""
        return synapse_server.loopback.get(f"{self.env.state.synapse_url}/_matrix/client/v3/account/whoami",
                         headers={"Authorization": f"Bearer {access_token}"}).status_code == 200

    def login(self, sub: str) -> dict:
        """Sign in as the mobile app does: a Cognito-shaped ID token, org.matrix.login.jwt,
        through matrix-nio; then list the joined rooms as the client sees them."""
        from nio import AsyncClient, JoinedRoomsResponse, LoginResponse, RoomGetStateEventResponse

        state = self.env.state
        token = self.id_token(sub)

        async def run() -> dict:
            client = AsyncClient(state.synapse_url)
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

    def synapse_requests(self) -> list[tuple[str, float]]:
        return synapse_server.requests_served(self.env.state.state_dir / "synapse")

    def s3_json(self, bucket: str, key: str):
        return json.loads(self.env.aws["s3"].get_object(Bucket=bucket, Key=key)["Body"].read())

    def leaks(self, written: str | None = None) -> dict[str, int]:
        """How often the bot's token and email addresses (every sign-up event carries one)
        appear in all the stack wrote (`written`: everything_written's, when read already)."""
        written = self.everything_written() if written is None else written
        return {"bytes_scanned": len(written), "bot_token": written.count(self.env.token),
                "emails": len(EMAIL.findall(written))}

    def everything_written(self) -> str:
        """All this stack wrote: the functions' logs (and moto's), executions and their
        histories, the tables, the sweep's plans; what a scan for secrets and personal data
        must read."""
        state, aws = self.env.state, self.env.aws
        logs = [state.state_dir / "aws.log", *sorted((state.state_dir / "lambda").glob("*.log"))]
        sfn, parts = aws["stepfunctions"], [p.read_text() for p in logs]
        for machine in sfn.list_state_machines()["stateMachines"]:
            for e in sfn.list_executions(stateMachineArn=machine["stateMachineArn"])["executions"]:
                parts.append(json.dumps(sfn.describe_execution(executionArn=e["executionArn"]), default=str))
                parts.append(json.dumps(self.history(e["executionArn"]), default=str))
        for table in (state.audit_table, state.locks_table):
            parts.append(json.dumps(aws["dynamodb"].scan(TableName=table)["Items"]))
        s3, bucket = aws["s3"], state.plans_bucket
        for obj in s3.list_objects_v2(Bucket=bucket).get("Contents", []):  # keys too: a name may be data
            parts += [obj["Key"], s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read().decode()]
        return "\n".join(parts)
