"""The rules, as pure functions: who is which Matrix user, which rooms and levels a set of
Cognito groups earns, and how a power-levels event changes. No AWS, no HTTP."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from .errors import LevelBeyondTheBot, PowerLevelForbidden
from .subs import normalise_sub

if TYPE_CHECKING:  # pydantic stays unloaded where only the rules are needed
    from .config import ChatConfig

@dataclass(frozen=True)
class Membership:
    room: str  # key in config.rooms
    room_id: str
    power_level: int | None  # None: leave the level alone (the room's default)


def user_id_for(sub: str, config: ChatConfig) -> str:
    return f"@{normalise_sub(sub)}:{config.server_name}"


Links = tuple[tuple[str, str], ...]  # a Matrix account's external ids: (auth_provider, external_id)


def links_of(user: dict[str, Any]) -> Links:
    """The links of a Matrix user, as the admin API's view of it lists them."""
    return tuple((str(e.get("auth_provider")), str(e.get("external_id"))) for e in user.get("external_ids") or [])


def ours(sub: str, links: Links, config: ChatConfig) -> bool:
    """Whether the Matrix account named after `sub`, with these links, is that Cognito user's:
    tied to it by config's provider, or, under the JWT rule (config.jwt_localpart_is_sub),
    linked to nothing at all. Another provider's link alone makes it someone else's."""
    return (config.auth_provider, sub) in links or (config.jwt_localpart_is_sub and not links)


# Only these users have an account to sync: a sign-up nobody confirmed gets nothing.
CONFIRMED = ("CONFIRMED", "EXTERNAL_PROVIDER")
Standing = Literal["absent", "disabled", "unconfirmed", "confirmed"]


@dataclass(frozen=True)
class CognitoUser:
    """What Cognito says of one user: the only authority on who may have an account."""
    sub: str
    enabled: bool
    groups: tuple[str, ...] = ()
    display_name: str | None = None
    status: str = "CONFIRMED"  # Cognito's UserStatus


def standing(user: CognitoUser | None) -> Standing:
    """Status decides first: a deleted or disabled user is deactivated whatever its groups or
    name; an enabled one is provisioned only once confirmed."""
    if user is None:
        return "absent"
    if not user.enabled:
        return "disabled"
    return "confirmed" if user.status in CONFIRMED else "unconfirmed"


def split_groups(groups: tuple[str, ...] | list[str], config: ChatConfig) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(the groups that grant something, the unknown ones). Ignored groups are neither. An
    unknown group grants nothing and stops nothing: it is a finding for a person to look at."""
    known = tuple(sorted(g for g in set(groups) if g in config.roles))
    unknown = tuple(sorted(g for g in set(groups) if g not in config.roles and g not in config.ignored_groups))
    return known, unknown


def desired_memberships(groups: tuple[str, ...] | list[str], config: ChatConfig) -> list[Membership]:
    """Default rooms for everyone, then each role's rooms; a room granted twice keeps the
    highest level. Ordered by config.rooms so that runs are repeatable. Groups that are not
    roles grant nothing."""
    levels: dict[str, int | None] = {room: None for room in config.default_rooms}
    for group in groups:
        for grant in config.roles.get(group, ()):
            old = levels.get(grant.room)
            if grant.power_level is None:
                levels.setdefault(grant.room, None)
            else:
                levels[grant.room] = max(grant.power_level, old or 0)
    return [Membership(key, config.rooms[key].room_id, levels[key])
            for key in config.rooms if key in levels]


def leveled_rooms(config: ChatConfig) -> list[str]:
    """The rooms (keys of config.rooms) where some role grants a level: whose levels of the
    users we manage are ours, in config's order. Other rooms' levels are not ours."""
    leveled = {g.room for grants in config.roles.values() for g in grants if g.power_level is not None}
    return [room for room in config.rooms if room in leveled]


def desired_levels(groups: tuple[str, ...] | list[str], config: ChatConfig) -> dict[str, int | None]:
    """For every leveled room: the level these groups earn there, or None (the room's default)."""
    earned = {m.room: m.power_level for m in desired_memberships(groups, config)}
    return {room: earned.get(room) for room in leveled_rooms(config)}


def default_level(content: dict[str, Any]) -> int:
    """The level of users an m.room.power_levels content does not list."""
    return int(content.get("users_default", 0))


def level_of(content: dict[str, Any], user_id: str) -> int:
    return int((content.get("users") or {}).get(user_id, default_level(content)))


def with_power_levels(content: dict[str, Any], levels: dict[str, int | None],
                      bot_user_id: str) -> tuple[dict[str, Any], dict[str, int | None]]:
    """The content with each user of `levels` at its level (with_power_level), and the users
    whose level that changes."""
    wanted, changed = content, {}
    for user_id, level in levels.items():
        new = with_power_level(wanted, user_id, level, bot_user_id)
        if new is not None:
            wanted, changed[user_id] = new, level
    return wanted, changed


# The Matrix spec's defaults of an m.room.power_levels event's keys, when the event leaves them out.
SPEC_DEFAULT_LEVELS = {"state_default": 50, "kick": 50}


def required_level(content: dict[str, Any], key: str) -> int:
    """The level an m.room.power_levels content asks for `key` ("kick", "state_default")."""
    return int(content.get(key, SPEC_DEFAULT_LEVELS[key]))


def levels_change_needs(content: dict[str, Any]) -> int:
    """The level an m.room.power_levels content asks of whoever sends the next one: who may
    change anyone's level or any threshold at all."""
    return int((content.get("events") or {}).get("m.room.power_levels", required_level(content, "state_default")))


def beyond_the_bot(content: dict[str, Any], user_id: str, level: int | None, bot_user_id: str) -> str | None:
    """Why the bot cannot put `user_id` at `level` (None: the room's default) in a room with
    these power levels, or None when it can. Matrix lets a user send the power-levels event only
    at the level the event asks for it, change another's level only while that level is below
    its own, and to no more than its own."""
    bot_level, current = level_of(content, bot_user_id), level_of(content, user_id)
    level = default_level(content) if level is None else level
    if level == current:
        return None
    if bot_level < (needed := levels_change_needs(content)):
        return f"the bot, at {bot_level}, may not change levels here: give it {needed} there"
    if level > bot_level:
        return (f"level {level} is above the bot's {bot_level}: raise the bot above {level} there, or lower the "
                "role's level")
    if level == bot_level:
        return (f"level {level} is the bot's own: Matrix would never let the bot take it back; give the role a "
                "level below the bot's")
    if current >= bot_level:
        return (f"at {current}, the bot's peer or above, the bot cannot change it: only the user can lower its own "
                "level (any client; a server admin can as the user), after `sweep --align-rooms` so that it "
                "loses no power")
    return None


def beyond_the_bots_kick(content: dict[str, Any], user_id: str, bot_user_id: str) -> str | None:
    """Why the bot cannot remove `user_id` from a room with these power levels, or None when it
    can: Matrix lets a user kick at the room's kick level, and only someone below itself."""
    bot_level, current = level_of(content, bot_user_id), level_of(content, user_id)
    if bot_level < required_level(content, "kick"):
        return f"the bot, at {bot_level}, may not remove members here: give it {required_level(content, 'kick')} there"
    if current >= bot_level:
        return (f"at {current}, the bot's peer or above, the bot cannot remove it: if the membership is right, put "
                "the user in the Cognito group that gives it; if not, a room admin above it must remove it")
    return None


def admin_levels(config: ChatConfig) -> dict[str, int]:
    """The rooms with an admin grant (config's RoleGrant.admin), each with its admins' level
    (the highest such grant): what `sweep --align-rooms` lowers their thresholds to."""
    levels: dict[str, int] = {}
    for grants in config.roles.values():
        for g in grants:
            if g.admin and g.power_level is not None:
                levels[g.room] = max(g.power_level, levels.get(g.room, 0))
    return levels


# The keys of an m.room.power_levels content that name the level an act needs (beside the
# per-event `events` and the `notifications` maps); `users` and `users_default` say who holds which.
THRESHOLDS = ("ban", "kick", "redact", "invite", "state_default", "events_default")


def thresholds_above(content: dict[str, Any], level: int, bot_user_id: str) -> tuple[dict[str, int], list[str]]:
    """The thresholds of this content above `level` ("ban", "events.m.room.power_levels",
    "notifications.room" -> their level) that the bot may lower, and those it may not: Matrix
    lets it change a threshold only from and to levels at or below its own."""
    bot_level = level_of(content, bot_user_id)
    found = {key: int(content[key]) for key in THRESHOLDS if key in content}
    for group in ("events", "notifications"):
        found |= {f"{group}.{name}": int(value) for name, value in (content.get(group) or {}).items()}
    above = {key: value for key, value in sorted(found.items()) if value > level}
    return ({k: v for k, v in above.items() if v <= bot_level}, [k for k, v in above.items() if v > bot_level])


def thresholds_beyond_the_bot(content: dict[str, Any], bot_user_id: str) -> str | None:
    """Why the bot may change none of this room's thresholds, or None when it may."""
    bot_level, needed = level_of(content, bot_user_id), levels_change_needs(content)
    return f"the bot, at {bot_level}, may not change this room's levels: give it {needed} there" \
        if bot_level < needed else None


def with_thresholds_at_most(content: dict[str, Any], level: int, bot_user_id: str,
                            ) -> tuple[dict[str, Any], dict[str, int]]:
    """The content with every threshold the bot may lower above `level` lowered to it, so that
    a role at `level` holds every power the room asks more for and the bot alone is above it;
    and what that changes (threshold -> `level`)."""
    lowered, _ = thresholds_above(content, level, bot_user_id)
    if not lowered:
        return content, {}
    if why := thresholds_beyond_the_bot(content, bot_user_id):
        raise LevelBeyondTheBot(why)
    wanted = {**content, **{key: level for key in lowered if "." not in key}}
    for group in ("events", "notifications"):
        if group in content:
            wanted[group] = {name: level if f"{group}.{name}" in lowered else value
                             for name, value in content[group].items()}
    return wanted, dict.fromkeys(lowered, level)


def with_power_level(content: dict[str, Any], user_id: str, level: int | None,
                     bot_user_id: str) -> dict[str, Any] | None:
    """The power-levels content with `user_id` at `level` (None: the room's default), or None
    when nothing changes.

    Keeps every other entry (the bot's above all: a PUT without it demotes the bot for good),
    and drops the user's entry when the level is the room default, because listing
    default-level users grows the event towards Synapse's 65,536-byte cap."""
    if user_id == bot_user_id:
        raise PowerLevelForbidden("refusing to change the provisioning bot's own level")
    if beyond := beyond_the_bot(content, user_id, level, bot_user_id):
        raise LevelBeyondTheBot(beyond)
    users = dict(content.get("users") or {})
    level = default_level(content) if level is None else level
    if level == default_level(content):
        users.pop(user_id, None)
    else:
        users[user_id] = level
    if users == (content.get("users") or {}):
        return None
    return {**content, "users": users}
