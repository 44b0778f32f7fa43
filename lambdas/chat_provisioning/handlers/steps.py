"""The Tasks of statemachines/sync_user.asl.json, one handler each, and the sweep's PlanSweep.
Every step is idempotent: run twice, the second run changes nothing in Synapse or the audit
table."""

import hashlib
from collections.abc import Callable
from typing import Any, Protocol, cast

from aws_lambda_powertools.utilities.typing import LambdaContext

from ..adapters.telemetry import count, errors_counted, logger
from ..domain.audit_trail import execution_name
from ..domain.display_names import name_to_write
from ..domain.errors import InvalidInput, LevelBeyondTheBot, RoomNotFound, UserDeactivated
from ..domain.models import Action, Run, StartRequest, StepEvent, Sub, SweepEvent, SweepRequest, WorkflowState, parse
from ..domain.policy import (
    Standing,
    admin_levels,
    beyond_the_bots_kick,
    desired_levels,
    desired_memberships,
    leveled_rooms,
    links_of,
    ours,
    split_groups,
    standing,
    user_id_for,
)
from ..domain.sweep_plan import plan
from ..ports import UserRecord
from .matrix_reads import read_matrix
from .runtime import Runtime, runtime

Step = Callable[[Any, Runtime, Run], WorkflowState]  # (the state as `reads` parses it, ...)


class Handler(Protocol):
    """A step's Lambda handler; `rt` is for tests (a Runtime of fakes)."""
    step: Step  # the step alone, for tests that share one Runtime
    state: str  # the Task state it serves, as the ASL names it

    def __call__(self, event: dict[str, Any], context: LambdaContext, rt: Runtime | None = None) -> dict[str, Any]: ...


def step(reads: type[Sub] = WorkflowState) -> Callable[[Step], Handler]:
    """Make `fn(state, rt, run)` a handler of the payload {"execution", "redrive", "workflow"}
    (built by the Task's Parameters): `workflow` is parsed strictly as `reads`, the run comes
    from the context object. Typed errors propagate: their names drive the ASL's Retry. `rt`
    is the function's Runtime (built at cold start) unless a test passes one of fakes."""

    def wrap(fn: Step) -> Handler:
        step_name = "".join(word.title() for word in fn.__name__.split("_"))  # as the ASL names it
        @logger.inject_lambda_context(correlation_id_path="execution", clear_state=True)
        def handler(event: dict[str, Any], context: LambdaContext, rt: Runtime | None = None) -> dict[str, Any]:
            logger.append_keys(step=fn.__name__)
            payload = parse(StepEvent, event)
            state = parse(reads, payload.workflow)
            logger.append_keys(sub=state.sub)
            run = Run(execution=payload.execution, redrive=payload.redrive)
            rt = rt or runtime()
            rt.deadline.start(context.get_remaining_time_in_millis())
            with errors_counted(step_name):
                result = fn(state, rt, run)
            done = result.actions[len(getattr(state, "actions", ())):]
            logger.info("step done", extra={"actions": [a.model_dump() for a in done]})
            return result.model_dump(mode="json", exclude_none=True)

        handler.__name__ = fn.__name__
        typed = cast(Handler, handler)
        typed.step, typed.state = fn, step_name
        return typed
    return wrap


@step(reads=StartRequest)
def read_cognito_user(request: StartRequest, rt: Runtime, run: Run) -> WorkflowState:
    """The only state that reads execution input, `{"sub", "cause"}`, strictly. Then Cognito
    now: **status first**: gone or disabled goes to `DeactivateUser` whatever the groups or name;
    enabled but not confirmed (`UNCONFIRMED`, `FORCE_CHANGE_PASSWORD`, `RESET_REQUIRED`...) gets
    no account, and one that exists keeps no group's grant (`AssignRoles` with no groups);
    confirmed (`CONFIRMED`, `EXTERNAL_PROVIDER`) goes on (unknown groups are audited findings
    and grant nothing). This read routes the run; **it is the basis of no grant**: events can be
    late, doubled or out of order, so each step that writes a grant reads Cognito again right
    before it (`granted_now`), and records `cognito_changed_since_read` when the answer differs.
    Allow-listed users (`unmanaged_subs`) are an audited no-op.

    Idempotent: a read."""
    base = {"sub": request.sub, "cause": request.cause}
    if request.sub in rt.config.unmanaged_subs:
        return WorkflowState(**base, cognito="unmanaged").did(Action(
            step="ReadCognitoUser", action="sync", outcome="skipped:unmanaged"))
    user = rt.directory.user(request.sub)
    status = standing(user)
    if user is None or status != "confirmed":
        state = WorkflowState(**base, cognito=status)
        # Not confirmed: no account is made, and one that exists keeps no group's grant.
        return state.did(Action(step="ReadCognitoUser", action="sync", outcome="unconfirmed:no_grants")) \
            if status == "unconfirmed" else state
    known, unknown = split_groups(user.groups, rt.config)
    if unknown:
        count("UnknownGroups", len(unknown))
    return WorkflowState(**base, cognito=status, groups=known).did(*(
        Action(step="ReadCognitoUser", action="finding", outcome=f"unknown_group:{g}"[:128]) for g in unknown))


def granted_now(rt: Runtime, state: WorkflowState, step: str) -> tuple[Standing, tuple[str, ...], list[Action]]:
    """What Cognito grants the user at this moment: its standing and, when confirmed, its groups
    that are roles; and a finding when that differs from what the run started from. Every grant
    a step writes rests on this read, taken right before the write (after any wait), never on
    what an earlier state or attempt carried: a run delayed or redriven after Cognito took
    something back grants nothing."""
    user = rt.directory.user(state.sub)
    status = standing(user)
    groups = split_groups(user.groups, rt.config)[0] if user is not None and status == "confirmed" else ()
    changed = (status, groups) != (state.cognito, state.groups)
    return status, groups, [Action(step=step, action="finding",
                                   outcome="cognito_changed_since_read")] if changed else []


@step()
def provision_user(state: WorkflowState, rt: Runtime, run: Run) -> WorkflowState:
    """Reads the user in Cognito again (a user no longer confirmed gets no account:
    `skipped:cognito_<standing>`; the display name is this read's, control characters out, cut
    to Synapse's 256, and a neutral one in place of a name that poses, audited `display_name`
    `replaced:<why>`: see "Display names"), then reads the Matrix user, then
    `PUT /_synapse/admin/v2/users/@<sub>:<server>` with what changes: the display name, and
    `external_ids` = the links the account has plus our tie (Synapse's PUT replaces the whole
    list: an SSO link is kept); nothing at all when the account is as wanted. An account made
    elsewhere (the old trigger, a JWT login) is adopted: audited `adopted`. A user deactivated
    in Matrix stays so (`UserDeactivated`) unless the cause is Cognito's own `AdminEnableUser`,
    the audit trail shows this workflow deactivated it (a Matrix admin's ban is never undone),
    **and** that read of Cognito has the user enabled and confirmed (a redrive may come days
    later).

    Idempotent: 201 and 200 are both success."""
    user_id = user_id_for(state.sub, rt.config)
    now = rt.directory.user(state.sub, groups=False)
    status = standing(now)
    if now is None or status != "confirmed":
        return state.model_copy(update={"cognito": status}).did(Action(
            step="ProvisionUser", action="create_user", outcome=f"skipped:cognito_{status}"))
    def upsert(name: str | None) -> UserRecord:
        return rt.synapse.upsert_user(user_id, name, external_id=state.sub, auth_provider=rt.config.auth_provider)

    name, posing = name_to_write(state.sub, now.display_name, None, rt.config)
    user = upsert(name)
    done = Action(step="ProvisionUser", action="create_user" if user.created else "update_user",
                  outcome="created" if user.created else "adopted" if user.adopted
                  else "updated" if user.changed else "unchanged")
    if user.deactivated:
        if state.cause != "AdminEnableUser" or not rt.audit.deactivated_by_workflow(state.sub, run.execution):
            raise UserDeactivated(f"{user_id} is deactivated in Synapse; only Cognito's enable of a user "
                                  f"this workflow deactivated reactivates (cause {state.cause})")
        done = Action(step="ProvisionUser", action="reactivate_user", outcome="reactivated")
        # On record before the act, under the key RecordAudit gives it: a run that reactivates
        # and then fails still leaves the trail saying so, and a Matrix admin's later ban is never
        # taken for ours (audit.deactivated_by_workflow).
        rt.audit.record_actions(state.sub, user_id, run.execution, state.actions + (done,), state.cause)
        rt.synapse.reactivate(user_id)
        user = upsert(name)  # not written while it was deactivated
    if now.display_name is None:  # the name set in Matrix stays, unless it poses
        name, posing = name_to_write(state.sub, None, user.displayname, rt.config)
        if posing:
            upsert(name)
    # Why the name written is the neutral one (never the name: no more personal data than needed).
    renamed = (Action(step="ProvisionUser", action="display_name", outcome=f"replaced:{posing}"),) if posing else ()
    return state.model_copy(update={"user_id": user_id, "active_in_run": run.id}).did(done, *renamed)


@step()
def join_rooms(state: WorkflowState, rt: Runtime, run: Run) -> WorkflowState:
    """Reads the groups from Cognito again (not confirmed now: no join,
    `skipped:cognito_<standing>`), checks the user is active (Synapse would join a deactivated
    one; skipped when `ProvisionUser` saw it active in the same run, not after a redrive), then
    joins the default rooms and each group's rooms **by room ID**. A user created in this run is
    in no room; for any other, one read of its rooms spares a join per room.

    Idempotent: "already in the room" (403 in invite-only rooms) is success."""
    if state.cognito != "confirmed":  # ProvisionUser found Cognito changed, and made no account
        return state.did(Action(step="JoinRooms", action="join", outcome=f"skipped:cognito_{state.cognito}"))
    status, groups, changed = granted_now(rt, state, "JoinRooms")
    if status != "confirmed":
        return state.did(*changed, Action(step="JoinRooms", action="join", outcome=f"skipped:cognito_{status}"))
    user_id = user_id_for(state.sub, rt.config)
    if state.active_in_run != run.id:
        rt.synapse.require_active(user_id)  # Synapse joins deactivated users; we do not
    joined = set() if created_in_this_run(state) else set(rt.synapse.joined_rooms(user_id))
    actions = []
    for m in desired_memberships(groups, rt.config):
        done = m.room_id not in joined and rt.synapse.join(m.room_id, user_id)
        joined.add(m.room_id)
        actions.append(Action(step="JoinRooms", action="join", room=m.room_id,
                              outcome="joined" if done else "already_joined"))
    return state.did(*changed, *actions)


def created_in_this_run(state: WorkflowState) -> bool:
    return any(a.step == "ProvisionUser" and a.outcome == "created" for a in state.actions)


@step()
def assign_roles(state: WorkflowState, rt: Runtime, run: Run) -> WorkflowState:
    """In every room where a role grants a level, **member or not** (a level outlives a
    membership: the next invite would bring it back): takes the room's lease
    (`adapters/room_locks.py`), then reads the user's groups from Cognito (after the wait: a run
    delayed by the lease, throttled or redriven after a group was removed grants nothing), then
    sets the level they earn (staff: 99 in Staff) or the room's default; one write per room;
    keeps the bot's own entry, lists no default-level user. A user not confirmed, disabled or
    deleted keeps no level (the run reaches it after `DeactivateUser` too: deactivation leaves
    power levels as they were). A user created in this run whose first read earns no level
    there is skipped unless the room's levels already list it. Then, on a read of Cognito after
    the levels: with `leave_rooms_on_role_removal`, leaves the rooms no group earns; and a user
    Cognito holds unconfirmed (an admin's password reset, a temporary password) loses every
    session (its devices deleted, `log_out`) and every role's room whatever the flag, until it
    confirms again.

    Idempotent: an unchanged level writes nothing; no device left, no session to end."""
    user_id = user_id_for(state.sub, rt.config)
    actions: list[Action] = []

    reads: list[tuple[Standing, tuple[str, ...]]] = []  # this invocation's reads of Cognito, newest last

    def cognito_now() -> tuple[Standing, tuple[str, ...]]:
        status, groups, changed = granted_now(rt, state, "AssignRoles")
        actions.extend(a for a in changed if a not in actions)
        reads.append((status, groups))
        return status, groups

    def finding(room_id: str, outcome: str) -> None:
        """Matrix will never let the bot make this change: a finding for a person (audited,
        alarmed, in `user status`), not a failure that every redrive and sweep repeats."""
        count("LevelsBeyondTheBot")
        actions.append(Action(step="AssignRoles", action="finding", room=room_id, outcome=outcome))

    beyond: set[str] = set()  # rooms where the bot cannot change the user's level
    created_now = created_in_this_run(state)
    first_read = desired_levels(state.groups, rt.config)
    for room in leveled_rooms(rt.config):
        room_id = rt.config.rooms[room].room_id
        if (created_now and first_read[room] is None
                and user_id not in (rt.synapse.power_levels(room_id).get("users") or {})):
            continue  # a new account, listed nowhere, that its first read earns nothing here: no lease needed
        try:
            with rt.locks.hold(room_id) as lease:
                level = desired_levels(cognito_now()[1], rt.config)[room]
                changed = rt.synapse.set_power_levels(room_id, {user_id: level}, lease)
        except LevelBeyondTheBot:
            beyond.add(room_id)
            finding(room_id, "level_beyond_the_bot")
            continue
        except RoomNotFound:  # gone, or the bot left it: the sweep's room_missing, not every run's failure
            actions.append(Action(step="AssignRoles", action="finding", room=room_id, outcome="room_missing"))
            continue
        if changed or level is not None:  # the trail names every level held; a default kept is no news
            actions.append(Action(step="AssignRoles", action="set_power_level", room=room_id,
                                  outcome=f"set:{'default' if level is None else level}"
                                  if changed else "unchanged"))
    # A user Cognito does not know has no account of ours in a room: deactivated (Synapse took it
    # out), or someone else's and left alone (DeactivateUser).
    if created_now or state.cognito == "absent":
        return state.did(*actions)
    # Removals only from here: the read taken inside the last room's lease is fresh enough.
    status, groups = reads[-1] if reads else cognito_now()
    if status == "unconfirmed" and (ended := rt.synapse.log_out(user_id)):
        actions.append(Action(step="AssignRoles", action="log_out", outcome=f"ended:{ended}"))
    if rt.config.leave_rooms_on_role_removal or status == "unconfirmed":
        earned = {m.room_id for m in desired_memberships(groups, rt.config)}
        joined = set(rt.synapse.joined_rooms(user_id))
        for configured in rt.config.rooms.values():
            if configured.room_id not in joined or configured.room_id in earned | beyond:
                continue
            # Matrix lets the bot kick only below its level, at the room's kick level.
            if beyond_the_bots_kick(rt.synapse.power_levels(configured.room_id), user_id, rt.synapse.bot_user_id):
                finding(configured.room_id, "leave_beyond_the_bot")
                continue
            rt.synapse.kick(configured.room_id, user_id, reason="no Cognito group grants this room")
            actions.append(Action(step="AssignRoles", action="leave", room=configured.room_id, outcome="left"))
    return state.did(*actions)


@step()
def deactivate_user(state: WorkflowState, rt: Runtime, run: Run) -> WorkflowState:
    """Reads the Matrix user, then deactivates it (Synapse ends every session and takes it out
    of its rooms), then `AssignRoles` takes back its levels. A deleted Cognito user's account
    only if it is that user's (`policy.ours`): tied to the sub by `external_ids`, or, under
    `jwt_localpart_is_sub` (Phenom's JWT login names accounts after the sub and links them to
    nothing), linked to no provider at all; one linked to another provider only is someone
    else's; erased only when CloudTrail's `AdminDeleteUser` started the run and
    `erase_deleted_users` is on (never by a sweep or an event). A user Synapse lacks, or one
    already deactivated (by someone else: an enable must not undo that), is an audited no-op.

    Idempotent: the read; Synapse answers a repeat 200."""
    user_id = user_id_for(state.sub, rt.config)
    user = rt.synapse.user(user_id)
    absent = state.cognito == "absent"
    if user is None:
        outcome = "skipped:no_matrix_user"
    elif absent and not ours(state.sub, links_of(user), rt.config):
        outcome = "skipped:not_tied_to_cognito"  # another provider's: someone else's
    elif user.get("deactivated"):
        outcome = "already_deactivated"  # not by us: a later enable must not undo it
    else:
        erase = absent and rt.config.erase_deleted_users and state.cause == "AdminDeleteUser"
        done = rt.synapse.deactivate(user_id, erase=erase)
        outcome = ("erased" if erase else "deactivated") if done else "skipped:no_matrix_user"
    return state.model_copy(update={"user_id": user_id}).did(Action(
        step="DeactivateUser", action="deactivate_user", outcome=outcome))


@step()
def record_audit(state: WorkflowState, rt: Runtime, run: Run) -> WorkflowState:
    """One DynamoDB item per action and finding (user, action, room, outcome, execution, time,
    cause).

    Idempotent: keys derive from the execution and the action's index; conditional puts."""
    new = rt.audit.record_actions(state.sub, state.user_id, run.execution, state.actions, state.cause)
    count("UsersSynced", cause=state.cause)
    logger.info("audit recorded", extra={"new_items": new, "items": len(state.actions)})
    return state


# One function serves every step of SyncUser (stacks/wiring.py): one cold start on a sign-up's
# path to The Red Room instead of three. Its Tasks name their step with the context object.
SYNC_USER_STEPS = {h.state: h for h in (
    read_cognito_user, provision_user, join_rooms, assign_roles, deactivate_user, record_audit)}


def sync_user_step(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """The handler of the SyncUser steps' function: the step its Task state names (Parameters
    `"step.$": "$$.State.Name"`, which no execution input can set)."""
    name = event.get("step") if isinstance(event, dict) else None
    if not isinstance(name, str) or name not in SYNC_USER_STEPS:
        count("StepErrors", step="SyncUserSteps", error="InvalidInput")  # as a step's refusal is
        logger.clear_state()  # no step ran: the keys of the last invocation are not this one's
        logger.error("not a step of SyncUser: nothing run")
        raise InvalidInput(f"StepEvent: step: not a step of SyncUser: {str(name)[:64]!r}")
    return SYNC_USER_STEPS[name](event, context)


@logger.inject_lambda_context(correlation_id_path="execution", clear_state=True)
def plan_sweep(event: dict[str, Any], context: LambdaContext, rt: Runtime | None = None) -> dict[str, Any]:
    """The sweep's first step (statemachines/sweep_users.asl.json): plan, store the plan in S3
    (the report, and the subs to sync for the Distributed Map), and say whether to apply it:
    not on a dry run, not when nothing drifted; when it would remove more than the cap allows
    and no operator approved that many, only its users whose fixes all add."""
    sweep = parse(SweepEvent, event)
    request = parse(SweepRequest, sweep.request)
    rt = rt or runtime()
    rt.deadline.start(context.get_remaining_time_in_millis())
    with errors_counted("PlanSweep"):
        aligned = align_rooms(rt) if request.align_rooms and not request.dry_run else {}
        users = rt.directory.all_users()
        the_plan = plan(users, read_matrix(rt.synapse, rt.config, users, adopt=request.adopt), rt.config)
    held = the_plan.held(rt.config, request.approve_removals)
    to_apply = the_plan.to_apply(held)
    sweep_id = execution_name(sweep.execution)
    prefix = f"sweeps/{sweep_id}"
    report = {**the_plan.report(), "held": held, "to_apply": list(to_apply), "aligned": aligned}
    rt.plans.put(f"{prefix}/plan.json", report)
    rt.plans.put(f"{prefix}/requests.json", [{"sub": s} for s in to_apply])
    summary = report["summary"]
    count("SweepUsersToFix", summary["users_to_fix"])
    count("SweepFindings", len(the_plan.findings))
    count("SweepsHeld", 1 if held and not request.dry_run else 0)  # a dry run holds nothing back
    outcome = ("dry_run" if request.dry_run else "held" if held
               else "in_step" if not the_plan.users else "apply")
    logger.info("sweep planned", extra={"summary": summary, "outcome": outcome, "held": held})
    # A held plan still applies what only adds (Plan.to_apply); its removals wait for a person.
    apply = outcome in ("apply", "held") and bool(to_apply)
    return {"sweep_id": sweep_id, "outcome": outcome, "apply": apply, "summary": summary,
            "held": held, "bucket": rt.plans.bucket, "plan_key": f"{prefix}/plan.json",
            "requests_key": f"{prefix}/requests.json",
            "max_concurrency": rt.config.sweep_max_concurrency,
            # names the users' executions sweep-<tag>-<sub>: unique per sweep, within 80 characters
            "tag": hashlib.sha256(sweep.execution.encode()).hexdigest()[:12]}


def align_rooms(rt: Runtime) -> dict[str, dict[str, int]]:
    """Each leveled room's thresholds lowered to the highest level a role gives there, under the
    room's lease (one writer of a room's power levels at a time); room ID -> what changed. A
    room the bot cannot change stays in the plan's `thresholds`, with why."""
    aligned = {}
    for room, level in admin_levels(rt.config).items():
        room_id = rt.config.rooms[room].room_id
        try:
            with rt.locks.hold(room_id) as lease:
                changed = rt.synapse.lower_thresholds(room_id, level, lease)
        except (LevelBeyondTheBot, RoomNotFound):
            continue
        if changed:
            aligned[room_id] = changed
    return aligned
