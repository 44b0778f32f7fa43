"""In-memory fakes of the ports (chat_provisioning/ports.py), for the unit tier, and the test
config, for every tier. Each fake holds plain data a test sets and reads, records the calls made to it, and fails
on demand: `fake.fail("join", SynapseUnavailable("down"))` makes its next join raise. What the
fakes do that Synapse and Cognito also do is pinned by tests/integration/test_contracts.py,
which runs the same scenarios against the real adapters. `make lint` type-checks this file:
`runtime_of` builds a Runtime, whose fields are the Protocols."""

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from chat_provisioning.adapters import clients
from chat_provisioning.adapters.synapse import upsert_body
from chat_provisioning.domain.audit_trail import AuditRecords
from chat_provisioning.domain.config import ChatConfig
from chat_provisioning.domain.deadline import Deadline
from chat_provisioning.domain.errors import (
    LeaseLost,
    RoomBusy,
    RoomNotFound,
    SynapseForbidden,
    SynapseRejected,
    UserDeactivated,
)
from chat_provisioning.domain.executions import execution_arn
from chat_provisioning.domain.policy import CognitoUser, level_of, standing, with_power_levels, with_thresholds_at_most
from chat_provisioning.handlers import runtime
from chat_provisioning.handlers.runtime import Runtime
from chat_provisioning.handlers.signup import SignUpPorts
from chat_provisioning.ports import (
    AuditStore,
    ChatServer,
    Lease,
    ListedUser,
    PlanStore,
    RoomLocks,
    UserDirectory,
    UserRecord,
    Workflows,
)

SERVER = "chat.example.test"
POOL = "us-east-1_TestPool1"
BOT = f"@provisioner-bot:{SERVER}"
SUB = "0f9e8d7c-1234-4abc-8def-0123456789ab"  # a Cognito sub, as the tests' one user


def sample_config(**overrides: Any) -> ChatConfig:
    """A deployment's config with made-up values (not cdk.json's: editing that for a real
    deployment must break no test but the one that checks it, test_deploy_synth.py): four
    rooms, three roles, as the service has."""
    rooms = {key: {"name": name, "room_id": f"!{key}:{SERVER}"} for key, name in (
        ("red_room", "The Red Room"), ("staff", "Staff"), ("analysts", "Analysts"), ("experiencers", "Experiencers"))}
    return ChatConfig.model_validate({
        "server_name": SERVER, "synapse_url": "https://synapse.internal.example.test",
        "admin_token_secret_name": "test/bot-token", "bot_localpart": "provisioner-bot",
        "rooms": rooms, "default_rooms": ["red_room"],
        "roles": {"staff": [{"room": "staff", "power_level": 99, "admin": True}],
                  "analysts": [{"room": "analysts"}], "experiencers": [{"room": "experiencers"}]},
        "user_pool": {"user_pool_id": POOL, "client_id": "testclient"},
        **overrides})


class Fake:
    """Calls recorded in order as (method, args...); failures injected per method, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self._failures: dict[str, list[Exception]] = {}

    def fail(self, method: str, *errors: Exception) -> None:
        self._failures.setdefault(method, []).extend(errors)

    def _call(self, method: str, *args: Any) -> None:
        self.calls.append((method, *args))
        if self._failures.get(method):
            raise self._failures[method].pop(0)

    def called(self, method: str) -> list[tuple[Any, ...]]:
        return [c[1:] for c in self.calls if c[0] == method]


class FakeChatServer(Fake):
    """Synapse's users and rooms. A room is its members and its power-levels content."""

    def __init__(self, rooms: list[str], bot_user_id: str = BOT) -> None:
        super().__init__()
        self.bot_user_id = bot_user_id
        self.users: dict[str, dict[str, Any]] = {}
        self.sessions: dict[str, set[str]] = {}  # user -> its devices, each a session
        self.members: dict[str, set[str]] = {r: {bot_user_id} for r in rooms}
        self.levels: dict[str, dict[str, Any]] = {r: {"users": {bot_user_id: 100}, "users_default": 0} for r in rooms}

    def upsert_user(self, user_id: str, displayname: str | None, external_id: str,
                    auth_provider: str) -> UserRecord:
        """As the adapter does it (synapse.upsert_body): our tie added to the links the user
        has, nothing else changed; nothing written to a deactivated user."""
        self._call("upsert_user", user_id)
        existing = self.users.get(user_id)
        body = upsert_body(copy.deepcopy(existing), displayname, {"auth_provider": auth_provider,
                                                                   "external_id": external_id})
        if body is None:
            return UserRecord(user_id, created=False, deactivated=bool(existing and existing["deactivated"]),
                              changed=False, displayname=existing["displayname"] if existing else None)
        user = self.users.setdefault(user_id, {"name": user_id, "deactivated": False, "displayname": None,
                                               "external_ids": []})
        user.update(body)
        return UserRecord(user_id, created=existing is None, deactivated=user["deactivated"],
                          adopted=existing is not None and "external_ids" in body, displayname=user["displayname"])

    def add_user(self, user_id: str, links: tuple[tuple[str, str], ...] = (),
                 displayname: str | None = None) -> None:
        """An account this workflow did not make (the old Lambda's, a JWT or SSO login's)."""
        self.users[user_id] = {"name": user_id, "deactivated": False, "displayname": displayname,
                               "external_ids": [{"auth_provider": p, "external_id": e} for p, e in links]}

    def user(self, user_id: str) -> dict[str, Any] | None:
        self._call("user", user_id)
        return copy.deepcopy(self.users.get(user_id))

    def require_active(self, user_id: str) -> None:
        self._call("require_active", user_id)
        if user_id not in self.users:
            raise SynapseRejected(f"GET {user_id}: 404", 404, "M_NOT_FOUND", "User not found")
        if self.users[user_id]["deactivated"]:
            raise UserDeactivated(f"{user_id} is deactivated in Synapse; reactivate it first")

    def join(self, room_id: str, user_id: str) -> bool:
        self._call("join", room_id, user_id)
        if room_id not in self.members:
            raise RoomNotFound(f"no room {room_id}")
        joined = user_id not in self.members[room_id]
        self.members[room_id].add(user_id)
        return joined

    def set_power_levels(self, room_id: str, levels: dict[str, int | None],
                         lease: Lease | None = None) -> dict[str, int | None]:
        self._call("set_power_levels", room_id, levels)
        wanted, changed = with_power_levels(self.power_levels(room_id), levels, self.bot_user_id)
        if changed:
            if lease is not None:
                lease.check()
            self.levels[room_id] = wanted
        return changed

    def lower_thresholds(self, room_id: str, level: int, lease: Lease) -> dict[str, int]:
        self._call("lower_thresholds", room_id, level)
        wanted, changed = with_thresholds_at_most(self.power_levels(room_id), level, self.bot_user_id)
        if changed:
            lease.check()
            self.levels[room_id] = wanted
        return changed

    def reactivate(self, user_id: str) -> None:
        self._call("reactivate", user_id)
        self.users[user_id]["deactivated"] = False

    def deactivate(self, user_id: str, erase: bool) -> bool:
        self._call("deactivate", user_id, erase)
        if user_id not in self.users:
            return False
        self.users[user_id]["deactivated"] = True
        self.sessions.pop(user_id, None)  # and logs it out
        for members in self.members.values():
            members.discard(user_id)  # Synapse makes a deactivated user leave its rooms
        return True

    def log_out(self, user_id: str) -> int:
        self._call("log_out", user_id)
        return len(self.sessions.pop(user_id, set()))

    def kick(self, room_id: str, user_id: str, reason: str) -> None:
        self._call("kick", room_id, user_id)
        if user_id not in self.members[room_id]:
            raise SynapseForbidden(f"kick {user_id}: 403", 403, "M_FORBIDDEN", "The target user is not in the room")
        levels = self.levels[room_id]
        if level_of(levels, user_id) >= level_of(levels, self.bot_user_id):
            raise SynapseForbidden(f"kick {user_id}: 403", 403, "M_FORBIDDEN",
                                   "You cannot kick user whose power level is greater than or equal to yours")
        self.members[room_id].discard(user_id)

    def list_users(self) -> dict[str, ListedUser]:
        self._call("list_users")
        return {u: ListedUser(bool(v["deactivated"]), v["displayname"]) for u, v in self.users.items()}

    def room_members(self, room_id: str) -> frozenset[str] | None:
        self._call("room_members", room_id)
        return frozenset(self.members[room_id]) if room_id in self.members else None

    def joined_rooms(self, user_id: str) -> list[str]:
        self._call("joined_rooms", user_id)
        return sorted(r for r, members in self.members.items() if user_id in members)

    def power_levels(self, room_id: str) -> dict[str, Any]:
        self._call("power_levels", room_id)
        if room_id not in self.levels:
            raise RoomNotFound(f"no room {room_id}")
        return copy.deepcopy(self.levels[room_id])


class FakeDirectory(Fake):
    """The user pool: users by sub, and the username each signs in with."""

    def __init__(self, user_pool_id: str = POOL) -> None:
        super().__init__()
        self.user_pool_id = user_pool_id
        self.users: dict[str, CognitoUser] = {}
        self.usernames: dict[str, str] = {}

    def add(self, sub: str, groups: tuple[str, ...] = (), enabled: bool = True, status: str = "CONFIRMED",
            display_name: str | None = None, username: str | None = None) -> CognitoUser:
        self.users[sub] = CognitoUser(sub, enabled, tuple(sorted(groups)), display_name, status)
        self.usernames[username or sub] = sub
        return self.users[sub]

    def user(self, sub: str, groups: bool = True) -> CognitoUser | None:
        self._call("user", sub, groups)
        found = self.users.get(sub)
        if found is None or (groups and standing(found) == "confirmed"):
            return found
        return replace(found, groups=())  # as Cognito's adapter: groups of a confirmed user only

    def all_users(self) -> list[CognitoUser]:
        self._call("all_users")
        return list(self.users.values())

    def sub_of_username(self, username: str) -> str | None:
        self._call("sub_of_username", username)
        sub = self.usernames.get(username)
        return sub if sub in self.users else None


class FakeWorkflows(Fake):
    """SyncUser: the executions started, by name (a name starts one execution, as in Step
    Functions), and the state each stopped at, as a test sets it."""
    MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:test-SyncUser"

    def __init__(self) -> None:
        super().__init__()
        self.started: dict[str, dict[str, str]] = {}
        self.stopped_at: dict[str, str | None] = {}

    def start_sync(self, sub: str, cause: str, name: str) -> str:
        self._call("start_sync", sub, cause, name)
        self.started.setdefault(name, {"sub": sub, "cause": cause})
        return execution_arn(self.MACHINE, name)

    def last_state_entered(self, execution_arn: str) -> str | None:
        self._call("last_state_entered", execution_arn)
        return self.stopped_at.get(execution_arn)


class FakeRetryQueue(Fake):
    def __init__(self) -> None:
        super().__init__()
        self.sent: list[dict[str, str]] = []

    def send(self, job: dict[str, str]) -> None:
        self._call("send", job)
        self.sent.append(job)


class FakePlanStore(Fake):
    def __init__(self) -> None:
        super().__init__()
        self.bucket = "test-plans"
        self.documents: dict[str, object] = {}

    def put(self, key: str, document: object) -> None:
        self._call("put", key)
        self.documents[key] = copy.deepcopy(document)


class FakeAuditStore(Fake, AuditRecords):
    """The audit table: items by (sub, sk), each written once (a repeat is a no-op)."""

    def __init__(self) -> None:
        super().__init__()
        self.stored: dict[tuple[str, str], dict[str, str]] = {}

    def insert(self, item: dict[str, str]) -> bool:
        self._call("insert", item["sub"], item["sk"])
        key = (item["sub"], item["sk"])
        if key in self.stored:
            return False
        self.stored[key] = item
        return True

    def items(self, sub: str) -> list[dict[str, str]]:
        self._call("items", sub)
        return [i for (s, _), i in self.stored.items() if s == sub]


class FakeLease:
    def __init__(self, locks: "FakeRoomLocks", room_id: str) -> None:
        self.locks, self.room_id = locks, room_id

    def check(self) -> None:
        self.locks._call("check", self.room_id)
        if self.room_id not in self.locks.held:
            raise LeaseLost(f"lease on {self.room_id} is no longer ours")


class FakeRoomLocks(Fake):
    """Leases per room; a room held is busy for every other holder (RoomBusy at once, where
    the real locks wait first). `fail("check", LeaseLost(...))` takes a lease away."""

    def __init__(self) -> None:
        super().__init__()
        self.held: set[str] = set()

    @contextmanager
    def hold(self, room_id: str) -> Iterator[Lease]:
        self._call("hold", room_id)
        if room_id in self.held:
            raise RoomBusy(f"power levels of {room_id} are locked")
        self.held.add(room_id)
        try:
            yield FakeLease(self, room_id)
        finally:
            self.held.discard(room_id)


def runtime_of(config: ChatConfig | None = None, *, synapse: ChatServer | None = None,
               directory: UserDirectory | None = None, workflows: Workflows | None = None,
               plans: PlanStore | None = None, audit: AuditStore | None = None,
               locks: RoomLocks | None = None) -> Runtime:
    """A Runtime of fakes (typed: the type checker holds each fake to its Protocol here), with
    any port given in place of its fake."""
    config = config or sample_config()
    return Runtime(
        config=config,
        synapse=synapse or FakeChatServer([r.room_id for r in config.rooms.values()], config.bot_user_id),
        directory=directory or FakeDirectory(config.user_pool.user_pool_id),
        workflows=workflows or FakeWorkflows(), plans=plans or FakePlanStore(),
        audit=audit or FakeAuditStore(), locks=locks or FakeRoomLocks(), deadline=Deadline())


def signup_ports_of(rt: Runtime) -> SignUpPorts:
    """The sign-up trigger's ports (it builds no Runtime): the Runtime's pool and executions,
    and a queue of its own."""
    return SignUpPorts(rt.directory, rt.workflows, FakeRetryQueue())


@contextmanager
def fresh_clients() -> Iterator[None]:
    """A function's AWS clients and cached token dropped on entry and exit, so that those made
    inside come from the environment as it is then (moto, a role's credentials) and outlive
    it nowhere."""
    def drop() -> None:
        clients.aws_session.cache_clear()
        clients.aws_client.cache_clear()
        runtime.SECRETS.clear()
    drop()
    try:
        yield
    finally:
        drop()
