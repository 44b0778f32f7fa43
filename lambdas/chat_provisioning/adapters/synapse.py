"""The one Synapse adapter (ports.ChatServer): every admin-API call the workflow makes, and the
mapping of every failure to a typed error (errors.py) whose name the ASL's Retry/ErrorEquals
lists. httpx is loaded by the first request, not by the import: the functions that share the
Runtime but never call Synapse (the triggers) never load it."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

if TYPE_CHECKING:
    import httpx

from ..domain.deadline import Deadline
from ..domain.errors import (
    InvalidInput,
    PowerLevelForbidden,
    PowerLevelWriteLost,
    RoomNotFound,
    SynapseAuthFailed,
    SynapseForbidden,
    SynapseRateLimited,
    SynapseRejected,
    SynapseUnavailable,
    UserDeactivated,
)
from ..domain.policy import with_power_levels, with_thresholds_at_most
from ..ports import Lease, ListedUser, UserRecord

# Waiting out a 429 in-process is cheaper than a Step Functions retry, up to a point: past
# this the step fails with SynapseRateLimited and the ASL's backoff takes over.
MAX_INLINE_WAIT_MS = 5_000
INLINE_RATE_LIMIT_RETRIES = 2
# A request is not started with less time left than this (Deadline): it could not finish.
MIN_REQUEST_SECONDS = 1.0
Changed = TypeVar("Changed", dict[str, int | None], dict[str, int])  # what a power-levels rewrite changed


class SynapseAdmin:
    """`token` returns the bot's access token; `token(refresh=True)` must re-read it from its
    store (a rotated secret), which happens once when Synapse answers 401."""

    def __init__(self, base_url: str, token: Callable[..., str], bot_user_id: str,
                 timeout: float = 10.0, transport: httpx.BaseTransport | None = None,
                 deadline: Deadline | None = None):
        self._token = token
        self.bot_user_id = bot_user_id
        self._timeout = timeout
        self._deadline = deadline or Deadline()
        self._base_url, self._transport = base_url, transport

    @functools.cached_property
    def _http(self) -> httpx.Client:
        """Made at first use: the triggers share the Runtime and never call Synapse."""
        import httpx
        return httpx.Client(base_url=self._base_url, timeout=self._timeout, transport=self._transport)

    def upsert_user(self, user_id: str, displayname: str | None, external_id: str,
                    auth_provider: str) -> UserRecord:
        """Create the user tied to its sub, or update it, keeping every link it has.

        Synapse's PUT replaces the user's whole `external_ids` list, so an existing user is read
        first and our tie added to what it holds (an SSO login's `oidc-...` link survives); a PUT
        that would change nothing is not sent. A legacy account (the old Lambda's, a JWT
        login's: no tie) that gets our tie here is `adopted`. A deactivated account is not
        written: it gets our tie only once Cognito's enable reactivates it (steps.provision_user),
        never while a Matrix admin's ban stands."""
        ours = {"auth_provider": auth_provider, "external_id": external_id}
        existing = self.user(user_id)
        try:
            return self._upsert(user_id, existing, displayname, ours)
        except SynapseRejected as e:
            if existing is not None or e.errcode != "M_USER_IN_USE":
                raise
            # The user was made between our read and our create (its first JWT login, or a
            # timed-out attempt Synapse still served): read what it holds now and merge again.
            return self._upsert(user_id, self.user(user_id), displayname, ours)

    def _upsert(self, user_id: str, existing: dict[str, Any] | None, displayname: str | None,
                ours: dict[str, str]) -> UserRecord:
        body = upsert_body(existing, displayname, ours)
        if body is None:
            return UserRecord(user_id, created=False, deactivated=bool(existing and existing.get("deactivated")),
                              changed=False, displayname=(existing or {}).get("displayname"))
        written = self._call("PUT", _user_path(user_id), json=body)
        return UserRecord(user_id, created=written.status_code == 201,
                          deactivated=bool(written.json().get("deactivated")),
                          adopted=existing is not None and "external_ids" in body,
                          displayname=written.json().get("displayname"))

    def user(self, user_id: str) -> dict[str, Any] | None:
        """The admin API's view of the user (deactivated, external_ids...), or None."""
        r = self._unless_missing("GET", _user_path(user_id))
        return r.json() if r is not None else None

    def require_active(self, user_id: str) -> None:
        if self._call("GET", _user_path(user_id)).json().get("deactivated"):
            raise UserDeactivated(f"{user_id} is deactivated in Synapse; reactivate it first")

    def join(self, room_id: str, user_id: str) -> bool:
        """Join `user_id` to `room_id`; False when it was already in the room. Synapse answers
        that case 403 in invite-only rooms, which is success here."""
        try:
            self._call("POST", f"/_synapse/admin/v1/join/{_segment(room_id)}", json={"user_id": user_id})
        except SynapseForbidden as e:
            if "already in the room" in e.error:
                return False
            raise
        return True

    def set_power_levels(self, room_id: str, levels: dict[str, int | None],
                         lease: Lease | None = None) -> dict[str, int | None]:
        """Put each user in `levels` at its level with one write to the room's power levels;
        returns the users whose level changed. Without a lease this is a plain read-modify-write,
        which loses updates when two run at once (see _rewrite_power_levels)."""
        return self._rewrite_power_levels(room_id, lambda c: with_power_levels(c, levels, self.bot_user_id), lease)

    def lower_thresholds(self, room_id: str, level: int, lease: Lease) -> dict[str, int]:
        """Every threshold of the room above `level` that the bot may lower, lowered to it, with
        one write (policy.with_thresholds_at_most); returns what changed."""
        return self._rewrite_power_levels(room_id, lambda c: with_thresholds_at_most(c, level, self.bot_user_id),
                                          lease)

    def _rewrite_power_levels(self, room_id: str, rewrite: Callable[[dict[str, Any]], tuple[dict[str, Any], Changed]],
                              lease: Lease | None) -> Changed:
        """`rewrite` (content -> the content wanted, what it changes) applied with one PUT.

        With a `lease` (ports.Lease): the lease is checked right before the PUT, and the write
        is read back; a write that did not stick (a writer outside the lease, e.g. a person in
        a client) is redone, up to twice, then PowerLevelWriteLost."""
        path = f"/_matrix/client/v3/rooms/{_segment(room_id)}/state/m.room.power_levels"
        for _ in range(3 if lease else 1):
            current = self.power_levels(room_id)
            wanted, changed = rewrite(current)
            if not changed:
                return changed
            bot = self.bot_user_id
            if (current.get("users") or {}).get(bot) != (wanted.get("users") or {}).get(bot):
                # The rewrites keep the bot's entry; this guards the invariant at the wire.
                raise PowerLevelForbidden("refusing a power-levels PUT that changes the bot's entry")
            if lease is None:
                self._call("PUT", path, json=wanted)
                return changed
            lease.check()
            self._call("PUT", path, json=wanted)
            if not rewrite(self.power_levels(room_id))[1]:
                return changed
        raise PowerLevelWriteLost(f"power levels of {room_id} were overwritten three times in a row")

    def reactivate(self, user_id: str) -> None:
        self._call("PUT", _user_path(user_id), json={"deactivated": False})

    def deactivate(self, user_id: str, erase: bool) -> bool:
        """Logs the user out everywhere and removes it from its rooms; repeating it is a 200.
        False when Synapse has no such user (nothing to deactivate)."""
        return self._unless_missing("POST", f"/_synapse/admin/v1/deactivate/{_segment(user_id)}",
                                    json={"erase": erase}) is not None

    def log_out(self, user_id: str) -> int:
        """Ends every session of the user: deletes each of its devices, and with it the device's
        access token. The number ended; a user Synapse lacks has none."""
        path = f"/_synapse/admin/v2/users/{_segment(user_id)}"
        r = self._unless_missing("GET", f"{path}/devices")
        devices = [d["device_id"] for d in r.json()["devices"]] if r is not None else []
        if devices:
            self._call("POST", f"{path}/delete_devices", json={"devices": devices})
        return len(devices)

    def kick(self, room_id: str, user_id: str, reason: str) -> None:
        self._call("POST", f"/_matrix/client/v3/rooms/{_segment(room_id)}/kick",
                   json={"user_id": user_id, "reason": reason})

    def list_users(self, page_size: int = 1000) -> dict[str, ListedUser]:
        """Every local user (deactivated ones too), in pages of `page_size`."""
        users, token = {}, "0"
        while token is not None:
            page = self._call("GET", "/_synapse/admin/v2/users", params={
                "from": token, "limit": page_size, "deactivated": "true", "guests": "false"}).json()
            users.update({u["name"]: ListedUser(bool(u["deactivated"]), u.get("displayname")) for u in page["users"]})
            token = page.get("next_token")
        return users

    def room_members(self, room_id: str) -> frozenset[str] | None:
        """The room's joined members; None when Synapse does not know the room."""
        r = self._unless_missing("GET", f"/_synapse/admin/v1/rooms/{_segment(room_id)}/members")
        return frozenset(r.json()["members"]) if r is not None else None

    def joined_rooms(self, user_id: str) -> list[str]:
        path = f"/_synapse/admin/v1/users/{_segment(user_id)}/joined_rooms"
        rooms: list[str] = self._call("GET", path).json()["joined_rooms"]
        return rooms

    def power_levels(self, room_id: str) -> dict[str, Any]:
        path = f"/_matrix/client/v3/rooms/{_segment(room_id)}/state/m.room.power_levels"
        content: dict[str, Any] = self._call("GET", path).json()
        return content

    def _unless_missing(self, method: str, path: str, json: dict[str, Any] | None = None) -> httpx.Response | None:
        """The answer, or None when Synapse says the user or room does not exist (404 M_NOT_FOUND)."""
        try:
            return self._call(method, path, json=json)
        except SynapseRejected as e:
            if (e.status, e.errcode) != (404, "M_NOT_FOUND"):
                raise
            return None

    def _call(self, method: str, path: str, json: dict[str, Any] | None = None,
              params: dict[str, Any] | None = None) -> httpx.Response:
        import httpx  # loaded already by _http, on the first request
        refreshed = False
        rate_limited = 0
        while True:
            token = self._token(refresh=refreshed)  # may call Secrets Manager: before the time is read
            left = self._deadline.left()
            if left < MIN_REQUEST_SECONDS:
                raise SynapseUnavailable(f"{method} {_safe(path)}: not started, {left:.1f}s left in this invocation")
            try:
                # Connect and read each within half the time left: the request ends in time.
                r = self._http.request(method, path, json=json, params=params, timeout=min(self._timeout, left / 2),
                                       headers={"Authorization": f"Bearer {token}"})
            except httpx.TransportError as e:  # refused, reset, timeout: all worth a retry
                raise SynapseUnavailable(f"{method} {_safe(path)}: {type(e).__name__}") from None
            if r.status_code < 400:
                return r
            errcode, error = _error_of(r)
            where = f"{method} {_safe(path)}: {r.status_code} {errcode}"
            if r.status_code == 401 and not refreshed:
                refreshed = True  # the secret may have been rotated: read it again, once
                continue
            if r.status_code == 429:
                wait = _retry_after_ms(r)
                if (rate_limited < INLINE_RATE_LIMIT_RETRIES and wait <= MAX_INLINE_WAIT_MS
                        and wait / 1000 + MIN_REQUEST_SECONDS < self._deadline.left()):
                    rate_limited += 1
                    time.sleep(wait / 1000)
                    continue
                raise SynapseRateLimited(f"{where} (retry_after_ms={wait})", retry_after_ms=wait)
            if r.status_code >= 500:
                raise SynapseUnavailable(f"{where} {error}")
            if r.status_code == 401:
                raise SynapseAuthFailed(f"{where}: the bot token in the secret is not accepted")
            if r.status_code == 400 and errcode == "M_INVALID_USERNAME":
                raise InvalidInput(f"{where} {error}")
            if r.status_code == 403 and "not in room" in error:
                raise RoomNotFound(f"{where}: the bot is not in this room ({error})")
            if r.status_code == 403:
                raise SynapseForbidden(f"{where} {error}", r.status_code, errcode, error)
            if r.status_code == 404 and "/join/" in path and errcode != "M_NOT_FOUND":
                raise RoomNotFound(f"{where} {error}")
            raise SynapseRejected(f"{where} {error}", r.status_code, errcode, error)


def upsert_body(existing: dict[str, Any] | None, displayname: str | None,
                ours: dict[str, str]) -> dict[str, Any] | None:
    """What to PUT for the user (the admin API's view of it, or None: not there yet), or None
    when nothing is to be written: it holds our tie and the name, or it is deactivated (no tie
    to a banned account). Synapse's PUT replaces the whole `external_ids` list: ours is added
    to the links it has."""
    links = [{"auth_provider": e["auth_provider"], "external_id": e["external_id"]}
             for e in (existing or {}).get("external_ids") or []]
    body: dict[str, Any] = {} if ours in links else {"external_ids": links + [ours]}
    if displayname and displayname != (existing or {}).get("displayname"):
        body["displayname"] = displayname
    if existing is not None and (not body or existing.get("deactivated")):
        return None
    return body


def _user_path(user_id: str) -> str:
    return f"/_synapse/admin/v2/users/{_segment(user_id)}"


def _segment(value: str) -> str:
    """One URL path segment: every reserved character quoted, "/" included, so that no user or
    room ID can reach another path."""
    return quote(value, safe="")


def _error_of(r: httpx.Response) -> tuple[str, str]:
    try:
        body = r.json()
        return str(body.get("errcode", "")), str(body.get("error", ""))[:300]
    except ValueError:
        return "", r.text[:300]


def _retry_after_ms(r: httpx.Response) -> int:
    try:
        return int(r.json().get("retry_after_ms", 1000))
    except (ValueError, TypeError, AttributeError):
        return 1000


def _safe(path: str) -> str:
    """Paths carry user and room IDs, never tokens; keep messages short."""
    return path[:160]
