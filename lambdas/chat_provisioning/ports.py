"""What the steps, the triggers and InspectUser talk to, one Protocol each. The adapters
implement them against the real services (adapters/), tests/fakes.py in memory;
handlers/runtime.Runtime holds one of each. The domain and the standard library only: the
sign-up trigger loads this on Cognito's clock (handlers/signup.py)."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

if TYPE_CHECKING:
    from .domain.models import Action
    from .domain.policy import CognitoUser


class ListedUser(NamedTuple):
    """A Matrix user as the sweep's paged read lists it."""
    deactivated: bool
    displayname: str | None


@dataclass(frozen=True)
class UserRecord:
    """A Matrix user as an upsert left it."""
    user_id: str
    created: bool
    deactivated: bool
    adopted: bool = False  # an existing account (no tie of ours) that got our tie
    changed: bool = True  # False: it held all we had to write, and nothing was sent
    displayname: str | None = None  # the name it shows now


class Lease(Protocol):
    def check(self) -> None:
        """Still held, with time left to write, or LeaseLost."""


class ChatServer(Protocol):
    """Synapse's admin API, as the workflow uses it. Failures are the typed errors of errors.py."""
    bot_user_id: str

    def upsert_user(self, user_id: str, displayname: str | None, external_id: str,
                    auth_provider: str) -> UserRecord: ...
    def user(self, user_id: str) -> dict[str, Any] | None: ...
    def require_active(self, user_id: str) -> None: ...
    def join(self, room_id: str, user_id: str) -> bool: ...
    def set_power_levels(self, room_id: str, levels: dict[str, int | None],
                         lease: Lease | None = None) -> dict[str, int | None]: ...
    def lower_thresholds(self, room_id: str, level: int, lease: Lease) -> dict[str, int]: ...
    def reactivate(self, user_id: str) -> None: ...
    def deactivate(self, user_id: str, erase: bool) -> bool: ...
    def log_out(self, user_id: str) -> int: ...
    def kick(self, room_id: str, user_id: str, reason: str) -> None: ...
    def list_users(self) -> dict[str, ListedUser]: ...
    def room_members(self, room_id: str) -> frozenset[str] | None: ...
    def joined_rooms(self, user_id: str) -> list[str]: ...
    def power_levels(self, room_id: str) -> dict[str, Any]: ...


class UserDirectory(Protocol):
    """The user pool: the only authority on who a user is."""
    user_pool_id: str

    def user(self, sub: str, groups: bool = True) -> CognitoUser | None: ...
    def all_users(self) -> list[CognitoUser]: ...
    def sub_of_username(self, username: str) -> str | None: ...


class Workflows(Protocol):
    """The SyncUser state machine: starting a user's run, and reading where a run stopped."""
    def start_sync(self, sub: str, cause: str, name: str) -> str: ...
    def last_state_entered(self, execution_arn: str) -> str | None: ...


class RetryQueue(Protocol):
    """Where a sign-up whose start failed waits for handlers/starts.retry_start."""
    def send(self, job: dict[str, str]) -> None: ...


class PlanStore(Protocol):
    """The sweeps' plans, read by the Distributed Map and by operators."""
    bucket: str

    def put(self, key: str, document: object) -> None: ...


class AuditStore(Protocol):
    def record_actions(self, sub: str, user_id: str | None, execution: str,
                       actions: tuple[Action, ...], cause: str | None = None) -> int: ...
    def record_failure(self, sub: str | None, execution: str, attempt: int, status: str,
                       failed_state: str | None, error: str | None, cause: str | None,
                       event: str | None = None) -> bool: ...
    def deactivated_by_workflow(self, sub: str, execution: str | None = None) -> bool: ...


class RoomLocks(Protocol):
    """One writer of a room's power levels at a time (adapters/room_locks.py)."""
    def hold(self, room_id: str) -> AbstractContextManager[Lease]: ...
