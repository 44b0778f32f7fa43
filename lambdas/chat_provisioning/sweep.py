"""Drift repair, the pure part: what Cognito says and what Synapse holds in, a plan out.

Events are best effort (no PostConfirmation for admin-created users, a failed trigger cannot
be re-fired, CloudTrail events can be lost), so a sweep compares both sides and plans, per
user, the fixes that bring Matrix back to the policy. Only the managed scope is considered:
configured rooms, users whose localpart is a Cognito sub, minus the allow-list. Whatever
cannot be decided from the data is a typed finding, never a guess."""

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from .config import ChatConfig
from .errors import InvalidInput
from .policy import (SUB, check_groups, default_level, desired_levels, desired_memberships, level_of,
                     user_id_for)

FixKind = Literal["create", "join", "promote", "demote", "deactivate", "reactivate"]
FindingKind = Literal["invalid_sub", "unknown_group", "no_external_id", "room_missing"]


@dataclass(frozen=True)
class CognitoUser:
    sub: str
    enabled: bool
    groups: tuple[str, ...] = ()
    display_name: str | None = None


@dataclass(frozen=True)
class MatrixSide:
    users: dict[str, bool]  # user ID -> deactivated
    members: dict[str, frozenset[str]]  # configured room ID -> joined users; absent: no such room
    levels: dict[str, dict]  # configured room ID -> m.room.power_levels content
    # Cognito external ids of the users that exist only in Matrix (fetched for those alone).
    external_ids: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Fix:
    sub: str
    kind: FixKind
    room: str | None = None


@dataclass(frozen=True)
class Finding:
    kind: FindingKind
    subject: str
    detail: str


@dataclass(frozen=True)
class Plan:
    fixes: tuple[Fix, ...]
    findings: tuple[Finding, ...]
    requests: dict[str, dict]  # sub -> {"workflow": ProvisionUser|SyncUser, "input": {...}}

    def summary(self) -> dict:
        return {"users_to_fix": len(self.requests),
                "fixes": dict(sorted(Counter(f.kind for f in self.fixes).items())),
                "findings": dict(sorted(Counter(f.kind for f in self.findings).items()))}

    def report(self) -> dict:
        """The summary and every fix and finding: what a sweep stores and prints."""
        return {"summary": self.summary(), "fixes": [vars(f) for f in self.fixes],
                "findings": [vars(f) for f in self.findings]}


def matrix_only(cognito: Iterable[CognitoUser], users: dict[str, bool], config: ChatConfig) -> list[str]:
    """Active Matrix users named like a Cognito sub that Cognito does not know: the only
    users whose external ids the sweep has to fetch one by one."""
    known = {c.sub for c in cognito} | set(config.unmanaged_subs)
    suffix = f":{config.server_name}"
    localparts = {u: u[1:-len(suffix)] for u, deactivated in users.items()
                  if not deactivated and u.endswith(suffix)}
    return sorted(u for u, localpart in localparts.items() if SUB.match(localpart) and localpart not in known)


def plan(cognito: Iterable[CognitoUser], matrix: MatrixSide, config: ChatConfig) -> Plan:
    cognito = list(cognito)
    fixes: list[Fix] = []
    findings = [Finding("room_missing", room.room_id, f"configured room {key!r} is not in Synapse")
                for key, room in config.rooms.items() if room.room_id not in matrix.members]
    requests: dict[str, dict] = {}

    for user in cognito:
        try:
            user_id = user_id_for(user.sub, config)
            check_groups(user.groups, config)
        except InvalidInput as e:
            kind = "invalid_sub" if not SUB.match(str(user.sub)) else "unknown_group"
            findings.append(Finding(kind, str(user.sub), str(e)))
            continue
        if user.sub in config.unmanaged_subs:
            continue
        found = user_fixes(user, user_id, matrix, config)
        fixes += found
        if found:
            requests[user.sub] = request_for(user, found)

    for user_id in matrix_only(cognito, matrix.users, config):
        sub = user_id[1:].split(":", 1)[0]
        if sub in matrix.external_ids.get(user_id, ()):
            fix = Fix(sub, "deactivate")
            fixes.append(fix)
            requests[sub] = request_for(CognitoUser(sub, enabled=False), [fix])
        else:
            findings.append(Finding("no_external_id", user_id,
                                    "named like a Cognito sub that Cognito does not know, and not "
                                    "tied to it by external_ids: left alone"))
    return Plan(tuple(fixes), tuple(findings), requests)


def user_fixes(user: CognitoUser, user_id: str, matrix: MatrixSide, config: ChatConfig) -> list[Fix]:
    deactivated = matrix.users.get(user_id)
    if not user.enabled:
        return [Fix(user.sub, "deactivate")] if deactivated is False else []
    if deactivated is None:
        return [Fix(user.sub, "create")]
    if deactivated:
        return [Fix(user.sub, "reactivate")]
    fixes = [Fix(user.sub, "join", m.room_id) for m in desired_memberships(user.groups, config)
             if m.room_id in matrix.members and user_id not in matrix.members[m.room_id]]
    for room, level in desired_levels(user.groups, config).items():
        room_id = config.rooms[room].room_id
        if room_id not in matrix.levels or (level is None and user_id not in matrix.members[room_id]):
            continue
        content = matrix.levels[room_id]
        current = level_of(content, user_id)
        wanted = default_level(content) if level is None else level
        if current != wanted:
            fixes.append(Fix(user.sub, "promote" if current < wanted else "demote", room_id))
    return fixes


def request_for(user: CognitoUser, fixes: list[Fix]) -> dict:
    """The per-user workflow that applies these fixes, and its input."""
    if fixes[0].kind == "create":
        body = {"sub": user.sub, "groups": list(user.groups)}
        if user.display_name:
            body["display_name"] = user.display_name
        return {"workflow": "ProvisionUser", "input": body}
    return {"workflow": "SyncUser", "input": {"sub": user.sub, "cause": "sweep",
                                              "reactivate": fixes[0].kind == "reactivate"}}
