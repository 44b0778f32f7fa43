"""Drift repair, the pure part: what Cognito says and what Synapse holds in, a plan out.

Events are best effort (no PostConfirmation for admin-created users, a failed trigger cannot
be re-fired, CloudTrail events can be lost), so a sweep compares both sides and plans, per
user, the fixes that bring Matrix back to the policy. Only the managed scope is considered:
configured rooms, users whose localpart is a Cognito sub, minus the allow-list. Whatever
cannot be decided from the data, or must not be decided by a sweep, is a typed finding,
never a guess: the sweep creates accounts for confirmed users only, never reactivates, and
holds itself when it would deactivate more than config allows."""

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from .config import ChatConfig
from .display_names import name_to_write
from .policy import (
    CognitoUser,
    Links,
    Standing,
    admin_levels,
    beyond_the_bot,
    beyond_the_bots_kick,
    default_level,
    desired_levels,
    desired_memberships,
    level_of,
    ours,
    split_groups,
    standing,
    thresholds_above,
    thresholds_beyond_the_bot,
    user_id_for,
)
from .subs import SUB

FixKind = Literal["adopt", "rename", "create", "join", "promote", "demote", "leave", "deactivate"]
# The fixes that take a privilege away: together they count against the sweep's cap.
REMOVALS: tuple[FixKind, ...] = ("leave", "demote", "deactivate")
# What a held plan still applies: ties, names and joins of accounts that exist. A wrong pool,
# which is what a hold is for, could turn a create or a promotion into a grant (its `staff`).
SAFE_WHEN_HELD: tuple[FixKind, ...] = ("adopt", "rename", "join")
FindingKind = Literal["invalid_sub", "unknown_group", "no_external_id", "room_missing", "deactivated_in_matrix",
                      "level_beyond_the_bot", "leave_beyond_the_bot", "member_without_group"]


@dataclass(frozen=True)
class MatrixSide:
    users: dict[str, bool]  # user ID -> deactivated
    names: dict[str, str | None]  # user ID -> its display name
    members: dict[str, frozenset[str]]  # configured room ID -> joined users; absent: no such room
    levels: dict[str, dict[str, Any]]  # configured room ID -> m.room.power_levels content
    # The links of the users whose links were read (one request each): those only in Matrix,
    # and for an adopting sweep (day one) every active user in scope.
    links: dict[str, Links] = field(default_factory=dict)


@dataclass(frozen=True)
class Fix:
    sub: str
    kind: FixKind
    room: str | None = None


@dataclass(frozen=True)
class Finding:
    """What a person must look at: who (a sub or a Matrix user), where, and what to do."""
    kind: FindingKind
    subject: str
    detail: str
    room: str | None = None


@dataclass(frozen=True)
class Proposal:
    """A Cognito group that what the user holds in Matrix now implies (day one: roles set by
    hand, which the first sweep would otherwise take away). Applied only by an operator."""
    sub: str
    group: str
    detail: str


@dataclass(frozen=True)
class Thresholds:
    """A leveled room that asks more for some act than the highest level a role gives there:
    its admins (Staff) lack a power only the bot has. `sweep --align-rooms` lowers `lower`."""
    room: str
    level: int  # the highest level a role gives in the room
    lower: dict[str, int]  # threshold ("ban", "events.m.room.power_levels") -> its level now
    beyond: tuple[str, ...]  # above the bot's level: only a room admin above the bot can lower them
    why: str | None = None  # why the bot cannot lower even `lower` (it may not change the levels)


@dataclass(frozen=True)
class Plan:
    fixes: tuple[Fix, ...]
    findings: tuple[Finding, ...]
    managed: int  # active Matrix users in scope: what the removal share is a share of
    proposals: tuple[Proposal, ...] = ()
    thresholds: tuple[Thresholds, ...] = ()
    # Users whose removals Cognito states by their status (disabled, not confirmed): not what an
    # emptied or wrong pool looks like (absent users, groups gone), so never held back.
    stated: frozenset[str] = frozenset()

    @property
    def users(self) -> tuple[str, ...]:
        """The subs to sync, each once: each user's own workflow makes all its fixes."""
        return tuple(sorted({f.sub for f in self.fixes}))

    @property
    def removals(self) -> int:
        """The removals the cap counts: those Cognito does not state by a user's status."""
        return sum(1 for f in self.fixes if f.kind in REMOVALS and f.sub not in self.stated)

    def to_apply(self, held: dict[str, Any] | None) -> tuple[str, ...]:
        """The users to sync: all of them, or for a held plan those whose fixes are all
        SAFE_WHEN_HELD and those Cognito disabled or holds unconfirmed (whose runs only remove)."""
        return tuple(u for u in self.users if u not in self.held_back(held))

    def held_back(self, held: dict[str, Any] | None) -> set[str]:
        if not held:
            return set()
        return {f.sub for f in self.fixes if f.kind not in SAFE_WHEN_HELD and f.sub not in self.stated}

    def summary(self) -> dict[str, Any]:
        return {"users_to_fix": len(self.users), "rooms_to_align": len(self.thresholds),
                "fixes": dict(sorted(Counter(f.kind for f in self.fixes).items())),
                "findings": dict(sorted(Counter(f.kind for f in self.findings).items()))}

    def report(self) -> dict[str, Any]:
        """The summary and every fix, finding, proposed group and room to align: what a sweep
        stores and prints."""
        return {"summary": self.summary(), "fixes": [vars(f) for f in self.fixes],
                "findings": [vars(f) for f in self.findings], "proposed_groups": [vars(p) for p in self.proposals],
                "thresholds": [{**vars(t), "beyond": list(t.beyond)} for t in self.thresholds]}

    def held(self, config: ChatConfig, approved: int | None = None) -> dict[str, Any] | None:
        """Why this plan's removals (leaves, demotions, deactivations) must not be applied
        without a person, or None. More than the count or the share of managed users allow
        (at least one is always allowed) is what an emptied or wrong user pool, or a renamed
        group, looks like."""
        removals = self.removals
        cap = min(config.sweep_max_removals, max(1, int(config.sweep_max_removal_share * self.managed)))
        if removals <= cap or (approved is not None and removals <= approved):
            return None
        held = {"removals": removals, "cap": cap, "managed_users": self.managed,
                "approve": f'check the plan, then start the sweep with {{"approve_removals": {removals}}}'}
        return {**held, "held_back": sorted(self.held_back(held))}


def in_scope(user_id: str, config: ChatConfig) -> str | None:
    """The sub a Matrix user ID stands for, if it is one this manages."""
    suffix = f":{config.server_name}"
    localpart = user_id[1:-len(suffix)] if user_id.endswith(suffix) else ""
    return localpart if SUB.match(localpart) and localpart not in config.unmanaged_subs else None


def matrix_only(cognito: Iterable[CognitoUser], users: dict[str, bool], config: ChatConfig) -> list[str]:
    """Active Matrix users named like a Cognito sub that Cognito does not know: the only
    users whose external ids the sweep has to fetch one by one."""
    known = {c.sub for c in cognito}
    return sorted(u for u, deactivated in users.items()
                  if not deactivated and (sub := in_scope(u, config)) and sub not in known)


def plan(cognito: Iterable[CognitoUser], matrix: MatrixSide, config: ChatConfig) -> Plan:
    cognito = list(cognito)
    fixes: list[Fix] = []
    proposals: list[Proposal] = []
    findings = [Finding("room_missing", room.room_id, f"configured room {key!r} is not in Synapse", room=room.room_id)
                for key, room in config.rooms.items() if room.room_id not in matrix.members]

    for user in cognito:
        if not SUB.match(str(user.sub)):
            findings.append(Finding("invalid_sub", str(user.sub), "a Cognito sub that cannot be a Matrix localpart"))
            continue
        if user.sub in config.unmanaged_subs:
            continue
        user_id, status = user_id_for(user.sub, config), standing(user)
        unknown = split_groups(user.groups, config)[1]
        if unknown and status == "confirmed":
            findings.append(Finding("unknown_group", user.sub, f"groups that are not roles: {list(unknown)}"))
        if status == "confirmed" and matrix.users.get(user_id) is True:
            findings.append(Finding("deactivated_in_matrix", user.sub, "enabled in Cognito, deactivated in "
                                    "Matrix: a sweep never reactivates (a Matrix admin may have banned it)"))
        user_fixes, user_findings = fixes_of(user, status, user_id, matrix, config)
        fixes += user_fixes
        findings += user_findings
        if status == "confirmed" and matrix.users.get(user_id) is False:
            granted = split_groups(user.groups, config)[0]
            proposals += [Proposal(user.sub, group, detail) for group, detail in implied_groups(user_id, matrix, config)
                          if group not in granted]

    known = {c.sub for c in cognito}
    stranger_fixes, stranger_findings = levels_of_strangers_to_cognito(known, matrix, config)
    fixes += stranger_fixes
    findings += stranger_findings
    for user_id in matrix_only(cognito, matrix.users, config):
        sub, links = in_scope(user_id, config), matrix.links.get(user_id)
        if sub and links is not None and ours(sub, links, config):  # links not read: nothing is known
            fixes.append(Fix(sub, "deactivate"))
        else:
            findings.append(Finding("no_external_id", user_id,
                                    "named like a Cognito sub that Cognito does not know, and not that "
                                    "user's (not tied to it; linked to another provider, or to none without "
                                    "jwt_localpart_is_sub): left alone"))
    managed = sum(1 for u, deactivated in matrix.users.items() if not deactivated and in_scope(u, config))
    stated = frozenset(c.sub for c in cognito if standing(c) in ("disabled", "unconfirmed"))
    return Plan(tuple(fixes), tuple(findings), managed, tuple(proposals), rooms_to_align(matrix, config), stated)


def rooms_to_align(matrix: MatrixSide, config: ChatConfig) -> tuple[Thresholds, ...]:
    """The leveled rooms whose thresholds ask more than their highest role level."""
    aligned = []
    for room, level in admin_levels(config).items():
        room_id = config.rooms[room].room_id
        if room_id in matrix.levels:
            content = matrix.levels[room_id]
            lower, beyond = thresholds_above(content, level, config.bot_user_id)
            why = thresholds_beyond_the_bot(content, config.bot_user_id) if lower else None
            if lower or beyond:
                aligned.append(Thresholds(room_id, level, lower, tuple(beyond), why))
    return tuple(aligned)


def implied_groups(user_id: str, matrix: MatrixSide, config: ChatConfig) -> list[tuple[str, str]]:
    """The roles whose every grant the user holds in Matrix now (a member of each of the role's
    rooms, at its level or above), each with what shows it. A role that grants nothing beyond
    everyone's rooms and levels is implied by nothing."""
    implied = []
    for group, grants in config.roles.items():
        if not any(g.room not in config.default_rooms or g.power_level for g in grants):
            continue
        held = []
        for grant in grants:
            room = config.rooms[grant.room]
            if user_id not in matrix.members.get(room.room_id, ()):
                break
            level = level_of(matrix.levels.get(room.room_id, {}), user_id)
            if grant.power_level is not None and level < grant.power_level:
                break
            held.append(f"in {room.name}" + (f" at {level}" if grant.power_level is not None else ""))
        else:
            implied.append((group, ", ".join(held)))
    return implied


def fixes_of(user: CognitoUser, status: Standing, user_id: str, matrix: MatrixSide,
             config: ChatConfig) -> tuple[list[Fix], list[Finding]]:
    """One user's fixes, and the changes it needs that the bot can never make (findings)."""
    deactivated = matrix.users.get(user_id)
    if status == "confirmed" and deactivated is None:
        return [Fix(user.sub, "create")], []
    if status == "confirmed" and deactivated:
        return [], []  # a sweep never reactivates (plan's deactivated_in_matrix finding)
    fixes = [Fix(user.sub, "deactivate")] if status == "disabled" and deactivated is False else []
    # A user not confirmed keeps no group's grant, and gains nothing; its levels go, member or not.
    known = split_groups(user.groups, config)[0] if status == "confirmed" else ()
    links = matrix.links.get(user_id)
    if status == "confirmed" and links is not None and (config.auth_provider, user.sub) not in links:
        fixes.append(Fix(user.sub, "adopt"))
    name = name_to_write(user.sub, user.display_name, matrix.names.get(user_id), config)[0]
    if status == "confirmed" and name is not None and matrix.names.get(user_id) != name:
        fixes.append(Fix(user.sub, "rename"))  # changed in Cognito without an event we saw, or posing
    joins = [m.room_id for m in desired_memberships(known, config)
             if status == "confirmed" and m.room_id in matrix.members and user_id not in matrix.members[m.room_id]]
    fixes += [Fix(user.sub, "join", room_id) for room_id in joins]
    level_fixes, findings, beyond = levels_of(user.sub, user_id, known, matrix, config)
    fixes += level_fixes
    if deactivated is False and status != "disabled":  # Synapse took a deactivated user out of its rooms
        earned = {m.room_id for m in desired_memberships(known, config)}
        for configured in config.rooms.values():
            room_id = configured.room_id
            if user_id not in matrix.members.get(room_id, ()) or room_id in earned | beyond:
                continue
            why = beyond_the_bots_kick(matrix.levels.get(room_id, {}), user_id, config.bot_user_id)
            # A user not confirmed (a password reset) keeps no role's room, whatever the flag.
            if not config.leave_rooms_on_role_removal and status == "confirmed":
                findings.append(Finding("member_without_group", user.sub, room=room_id, detail=(
                    f"{configured.name}: no Cognito group gives this room; remove the user by hand, or turn "
                    "leave_rooms_on_role_removal on")))
            elif why:
                findings.append(Finding("leave_beyond_the_bot", user.sub, room=room_id, detail=(
                    f"{configured.name}: no Cognito group gives this room; {why}")))
            else:
                fixes.append(Fix(user.sub, "leave", room_id))
    return fixes, findings


def levels_of(sub: str, user_id: str, groups: tuple[str, ...], matrix: MatrixSide,
              config: ChatConfig) -> tuple[list[Fix], list[Finding], set[str]]:
    """The level fixes that put the user where `groups` earn in every leveled room, member or
    not (a level outlives a membership), the findings for those Matrix never lets the bot make,
    and the rooms of those."""
    fixes, findings, beyond = [], [], set()
    for room, level in desired_levels(groups, config).items():
        room_id = config.rooms[room].room_id
        if room_id not in matrix.levels:
            continue
        content = matrix.levels[room_id]
        current = level_of(content, user_id)
        wanted = default_level(content) if level is None else level
        if why := beyond_the_bot(content, user_id, level, config.bot_user_id):
            findings.append(Finding("level_beyond_the_bot", sub, room=room_id, detail=(
                f"{config.rooms[room].name}: Cognito's groups give {wanted}, the user is at {current}; {why}")))
            beyond.add(room_id)
        elif current != wanted:
            fixes.append(Fix(sub, "promote" if current < wanted else "demote", room_id))
    return fixes, findings, beyond


def levels_of_strangers_to_cognito(known: set[str], matrix: MatrixSide, config: ChatConfig,
                                   ) -> tuple[list[Fix], list[Finding]]:
    """The levels held in leveled rooms by users named after a sub Cognito does not know (deleted,
    an account of the old trigger's, an entry set before any account): no role grants them."""
    fixes, findings = [], []
    listed = {u for content in matrix.levels.values() for u in content.get("users") or {}}
    for user_id in sorted(listed):
        sub = in_scope(user_id, config)
        if sub and sub not in known:
            level_fixes, level_findings, _ = levels_of(sub, user_id, (), matrix, config)
            fixes += level_fixes
            findings += level_findings
    return fixes, findings
