"""Deployment configuration: one model, read from cdk.json context by the stack (validated at
synth), passed to every Lambda as one environment variable, and reused by the local run."""

import json
import re
from typing import Annotated, Literal, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from .errors import InvalidInput
from .subs import normalise_sub

# Room version 10 IDs: "!opaque:server". The server part is required: without it the ID is
# ambiguous (and room version 12 IDs, which lack it, are not what production runs).
ROOM_ID = re.compile(r"^![A-Za-z0-9._~=+/-]+:[A-Za-z0-9.-]+(:[0-9]+)?$")
LOCALPART = re.compile(r"^[a-z0-9._=/+-]+$")
CONFIG_ENV = "CHAT_CONFIG"
# Lambda caps a function's whole environment at 4 KB; the other variables (names, ARNs, a queue
# URL) take well under 1 KB of it.
CONFIG_ENV_BYTES = 3072
CONTEXT_KEY = "chat-provisioning"


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def matching(pattern: re.Pattern[str], what: str) -> AfterValidator:
    """A string that `pattern` matches, or an error that says what it should be."""
    def check(value: str) -> str:
        if not pattern.match(value):
            raise ValueError(f"{value!r} is not {what}")
        return value
    return AfterValidator(check)


class Room(Frozen):
    name: str
    room_id: Annotated[str, matching(ROOM_ID, "a full room ID like '!opaque:server.name'")]


class RoleGrant(Frozen):
    room: str
    # None: membership only, at the room's default level. Below the bot's (bot_power_level).
    power_level: int | None = Field(default=None, ge=0)
    # This level is the room's admins' (Phenom's Staff): `sweep --align-rooms` lowers every
    # threshold of the room above it to it, so that they hold every power the bot has.
    admin: bool = False

    @model_validator(mode="after")
    def admin_has_a_level(self) -> "RoleGrant":
        if self.admin and self.power_level is None:
            raise ValueError(f"an admin grant in {self.room!r} needs a power_level")
        return self


class ReservedName(Frozen):
    name: str = Field(min_length=1)
    # The Cognito sub that may show it (a Staff member's own name); none: nobody. (A key, not a
    # null: the CDK drops null values from context maps.)
    owner: str | None = None

    @field_validator("name")
    @classmethod
    def has_a_letter(cls, value: str) -> str:
        if not any(c.isalnum() for c in value):  # names are compared by their letters and digits
            raise ValueError(f"{value!r} has no letter or digit: it would reserve every name without one")
        return value

    @field_validator("owner")
    @classmethod
    def a_sub(cls, value: str | None) -> str | None:
        try:
            return None if value is None else normalise_sub(value)  # as every sub is read
        except InvalidInput:
            raise ValueError(f"{value!r} is not a Cognito sub (a UUID)") from None


class UserPool(Frozen):
    user_pool_id: str = Field(pattern=r"^[a-z]{2}-[a-z]+-[0-9]_[A-Za-z0-9]+$")
    client_id: str = Field(pattern=r"^[a-z0-9]{1,128}$")
    # True: the stack creates its own pool with the trigger attached (dev, demo).
    # False: the pool above is imported (prod); see README, "Deploying".
    create: bool = False


# What the functions in the VPC call besides Synapse: the services of config's network.endpoints.
InterfaceEndpoint = Literal["secretsmanager", "cognito-idp", "xray"]
GatewayEndpoint = Literal["dynamodb", "s3"]
INTERFACE_ENDPOINTS: tuple[str, ...] = get_args(InterfaceEndpoint)
GATEWAY_ENDPOINTS: tuple[str, ...] = get_args(GatewayEndpoint)


class Network(Frozen):
    vpc_id: str | None = Field(default=None, pattern=r"^vpc-[0-9a-f]{8,17}$")
    subnet_ids: tuple[Annotated[str, Field(pattern=r"^subnet-[0-9a-f]{8,17}$")], ...] = ()
    security_group_ids: tuple[Annotated[str, Field(pattern=r"^sg-[0-9a-f]{8,17}$")], ...] = ()
    availability_zones: tuple[str, ...] = ()
    # The VPC endpoints the stack creates for the functions in the VPC (subnets without a NAT
    # gateway), each named: interface endpoints (private DNS, for the whole VPC: HTTPS from
    # vpc_cidr) and gateway endpoints on route_table_ids (one per subnet). Leave out a service
    # the VPC already has an endpoint for, and Cognito if the pool has a domain (README).
    endpoints: tuple[InterfaceEndpoint | GatewayEndpoint, ...] = ()
    vpc_cidr: str | None = Field(default=None, pattern=r"^[0-9.]+/[0-9]{1,2}$")
    route_table_ids: tuple[Annotated[str, Field(pattern=r"^rtb-[0-9a-f]{8,17}$")], ...] = ()

    @model_validator(mode="after")
    def complete(self) -> "Network":
        if self.vpc_id and not (self.subnet_ids and self.security_group_ids):
            raise ValueError("network.vpc_id needs subnet_ids and security_group_ids")
        if self.vpc_id and len(self.availability_zones) != len(self.subnet_ids):
            raise ValueError("network.availability_zones must name one zone per subnet")
        if self.endpoints and not self.vpc_id:
            raise ValueError("network.endpoints needs vpc_id")
        if set(self.endpoints) & set(INTERFACE_ENDPOINTS) and not self.vpc_cidr:
            raise ValueError("network.endpoints: an interface endpoint needs vpc_cidr (who may reach it)")
        if set(self.endpoints) & set(GATEWAY_ENDPOINTS) and len(self.route_table_ids) != len(self.subnet_ids):
            raise ValueError("network.endpoints: a gateway endpoint needs route_table_ids, one per subnet")
        return self


# An IAM role or user that may put custom events on the stack's bus.
PRINCIPAL_ARN = r"^arn:aws[a-z-]*:iam::[0-9]{12}:(role|user)/[A-Za-z0-9+=,.@_/-]+$"


class ChatConfig(Frozen):
    server_name: str = Field(pattern=r"^[A-Za-z0-9.-]+(:[0-9]+)?$")
    synapse_url: str = Field(pattern=r"^https?://[^/]+$")
    # An http:// synapse_url sends the bot's admin token in clear: refused unless this says
    # the network is trusted (Phenom: Cloud Map inside the VPC). Synth warns while it is set.
    allow_http_synapse: bool = False
    admin_token_secret_name: str
    # The customer managed key that encrypts that secret, if not Secrets Manager's own: its
    # readers need kms:Decrypt on it (through Secrets Manager only).
    admin_token_kms_key_arn: str | None = Field(
        default=None, pattern=r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[0-9a-f-]{36}$")
    bot_localpart: Annotated[str, matching(LOCALPART, "a valid Matrix localpart")]
    # The bot's level in the configured rooms. Matrix lets nobody change the level of a peer
    # (a user at its own level or above): every role's level must be below it, or the bot could
    # grant it and never take it back.
    bot_power_level: int = Field(default=100, ge=1)
    # Names no user may show, nor anything confusable with them (display_names.py), except
    # their owner if one is named. The bot's localpart is always reserved; add its display name.
    reserved_display_names: tuple[ReservedName, ...] = ()
    auth_provider: str = "cognito"
    # Synapse's JWT login (jwt_config, subject_claim `sub`) makes an account named after the
    # Cognito sub and links it to nothing: such an account, with no external id at all, is that
    # Cognito user's (adopted while it is confirmed, deactivated when it is disabled or deleted).
    # One with another provider's link and not ours is someone else's, and never touched.
    jwt_localpart_is_sub: bool = True
    rooms: dict[str, Room]
    default_rooms: tuple[str, ...]
    roles: dict[str, tuple[RoleGrant, ...]]
    # Cognito groups that exist in the pool but mean nothing to chat; any other group
    # that is not in `roles` is an error, so a typo in a group name cannot pass silently.
    ignored_groups: tuple[str, ...] = ()
    # Cognito subs whose Matrix users this never changes (an allow-list: accounts managed by hand).
    unmanaged_subs: tuple[str, ...] = ()
    # When a group is removed: demote in its rooms (always), and also leave them (this flag).
    leave_rooms_on_role_removal: bool = False
    # When the Cognito user is deleted: deactivate the Matrix user (always), and also erase
    # its messages and profile for new joiners (this flag; Synapse's "erase").
    erase_deleted_users: bool = False
    # The reconciliation sweep: when (an EventBridge schedule expression), and how many
    # per-user workflows it runs at once (Synapse is single-threaded; at most half of
    # synapse_concurrency, so that sign-ups and events find room while it runs).
    sweep_schedule: str = Field(default="rate(1 day)", pattern=r"^(rate|cron)\(.+\)$")
    # False: the schedule's rule is deployed disabled (going live: plan, import, then enable).
    sweep_schedule_enabled: bool = True
    sweep_max_concurrency: int = Field(default=5, ge=1, le=100)
    # A sweep that would remove more (leaves, demotions, deactivations together) than this
    # count, or than this share of the managed Matrix users, is held and alarms (an emptied or
    # wrong pool, a renamed group look like that): it syncs only the users whose fixes are ties,
    # renames and joins, and an operator approves the rest with {"approve_removals": N}.
    sweep_max_removals: int = Field(default=20, ge=0)
    sweep_max_removal_share: float = Field(default=0.05, ge=0, le=1)
    # Reserved concurrency of each function that calls Synapse (single-threaded): an event
    # flood waits in Step Functions' retries instead of meeting Synapse at once. One function
    # serves every step of every run, so at most this many steps are at work at once, waits for a
    # room's lease included. "none": no limit (not null: the CDK drops null values from
    # context, and the default would stand).
    synapse_concurrency: Annotated[int, Field(ge=2, le=1000)] | Literal["none"] = 10
    # IAM principals (role or user ARNs) allowed to put 'Sync chat user' events on the stack's
    # own bus; the bus policy denies everyone else. Empty: nobody.
    event_senders: tuple[Annotated[str, Field(pattern=PRINCIPAL_ARN)], ...] = ()
    user_pool: UserPool
    network: Network = Network()
    synapse_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    # Values chat-services.md does not state and this config assumes; synth warns on each.
    unconfirmed: tuple[str, ...] = ()

    @field_validator("unmanaged_subs")
    @classmethod
    def lowercase_subs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(s.strip().lower() for s in value)  # as policy.normalise_sub makes them

    @model_validator(mode="after")
    def consistent(self) -> "ChatConfig":
        referenced = [("default_rooms", r) for r in self.default_rooms] + [
            (f"roles.{group}", g.room) for group, gs in self.roles.items() for g in gs]
        unknown = [f"{where}: {room!r}" for where, room in referenced if room not in self.rooms]
        if unknown:
            raise ValueError(f"rooms named that are not keys of `rooms` ({sorted(self.rooms)}): {unknown}")
        foreign = [r.room_id for r in self.rooms.values()
                   if r.room_id.split(":", 1)[1] != self.server_name]
        if foreign:
            raise ValueError(f"room IDs not on server_name {self.server_name!r}: {foreign}")
        irrevocable = sorted(f"{group} ({g.room}: {g.power_level})" for group, gs in self.roles.items() for g in gs
                             if g.power_level is not None and g.power_level >= self.bot_power_level)
        if irrevocable:
            raise ValueError(f"roles at the bot's level ({self.bot_power_level}) or above: {irrevocable}. Matrix "
                             "lets nobody change a peer's level, so the bot could never take these back: give each "
                             "a level below the bot's, and lower the rooms' thresholds to it (`chat-provisioning "
                             "sweep --align-rooms`)")
        if self.synapse_concurrency != "none" and 2 * self.sweep_max_concurrency > self.synapse_concurrency:
            raise ValueError(f"sweep_max_concurrency {self.sweep_max_concurrency} is over half of synapse_concurrency "
                             f"{self.synapse_concurrency}: every step of every run shares those, and a sweep would "
                             "leave sign-ups and events too little room. Lower the one or raise the other")
        both = sorted(set(self.roles) & set(self.ignored_groups))
        if both:
            raise ValueError(f"groups both in roles and ignored_groups: {both}")
        if self.synapse_url.startswith("http://") and not self.allow_http_synapse:
            raise ValueError(f"synapse_url {self.synapse_url!r} is http: the bot's admin token would "
                             "cross the network in clear. Use https, or set allow_http_synapse: true "
                             "for a network you trust")
        return self

    @model_validator(mode="after")
    def fits_a_functions_environment(self) -> "ChatConfig":
        size = len(self.to_env().encode())
        if size > CONFIG_ENV_BYTES:
            raise ValueError(f"the config the functions get ({CONFIG_ENV}) is {size} bytes, over {CONFIG_ENV_BYTES}: "
                             "Lambda caps a function's whole environment at 4 KB. Shorten reserved_display_names, "
                             "rooms or roles")
        return self

    @property
    def bot_user_id(self) -> str:
        return f"@{self.bot_localpart}:{self.server_name}"

    def to_env(self) -> str:
        """What the Lambdas need, compact: the env var space of a function is 4 KB."""
        return self.model_dump_json(exclude={"network", "unconfirmed", "event_senders"})

    @classmethod
    def from_cdk_json(cls, path: str = "cdk.json") -> "ChatConfig":
        with open(path) as f:
            return cls.model_validate(json.load(f)["context"][CONTEXT_KEY])
