"""The Tasks of statemachines/provision_user.asl.json and sync_user.asl.json, one handler
each. Every step is idempotent: run twice, the second run changes nothing in Synapse or the
audit table."""

import json
import os
from collections.abc import Callable

from aws_lambda_powertools.metrics import MetricUnit

from . import sweeper
from .audit import execution_name
from .errors import UserDeactivated
from .models import Action, StepEvent, SweepEvent, WorkflowState, parse
from .policy import check_groups, desired_levels, desired_memberships, display_name_of, user_id_for
from .runtime import Runtime, aws_client, logger, metrics, runtime, tracer


def step(fn: Callable[[WorkflowState, Runtime], WorkflowState]):
    """Parse {"execution", "redrive", "workflow"} (built by the Task's Parameters), run the step,
    return the new state. Typed errors propagate: their names drive the ASL's Retry."""

    @logger.inject_lambda_context(correlation_id_path="execution", clear_state=True)
    @tracer.capture_lambda_handler(capture_response=False)
    @metrics.log_metrics
    def handler(event: dict, context) -> dict:
        logger.append_keys(step=fn.__name__)
        event = parse(StepEvent, event)
        state = parse(WorkflowState, event.workflow)
        logger.append_keys(sub=state.sub)
        state = state.model_copy(update={"execution": state.execution or event.execution,
                                         "run": f"{event.execution}#{event.redrive}"})
        result = fn(state, runtime())
        logger.info("step done", extra={"actions": [a.model_dump() for a in result.actions[len(state.actions):]]})
        return result.model_dump(mode="json", exclude_none=True)

    handler.__name__ = fn.__name__
    handler.step = fn  # the step without its Lambda shell, for tests that share one Runtime
    return handler


@step
def provision_user(state: WorkflowState, rt: Runtime) -> WorkflowState:
    user_id = user_id_for(state.sub, rt.config)
    check_groups(state.groups, rt.config)  # bad input fails here, before any write
    user = rt.synapse.upsert_user(user_id, state.display_name, external_id=state.sub,
                                  auth_provider=rt.config.auth_provider)
    done = Action(step="ProvisionUser", action="create_user" if user.created else "update_user",
                  outcome="created" if user.created else "updated")
    if user.deactivated:
        if not state.reactivate:  # only a Cognito enable brings a deactivated user back
            raise UserDeactivated(f"{user_id} is deactivated in Synapse; not provisioning it")
        rt.synapse.reactivate(user_id)
        done = Action(step="ProvisionUser", action="reactivate_user", outcome="reactivated")
    return state.model_copy(update={"user_id": user_id, "active_in_run": state.run}).did(done)


@step
def join_rooms(state: WorkflowState, rt: Runtime) -> WorkflowState:
    """Joins the rooms the groups earn. A user created in this run is in no room; for any
    other, one read of its rooms spares a join (a 403 "already in the room") per room."""
    user_id = user_id_for(state.sub, rt.config)
    if state.run is None or state.active_in_run != state.run:
        rt.synapse.require_active(user_id)  # Synapse joins deactivated users; we do not
    joined = set() if created_in_this_run(state) else set(rt.synapse.joined_rooms(user_id))
    actions = []
    for m in desired_memberships(state.groups, rt.config):
        done = m.room_id not in joined and rt.synapse.join(m.room_id, user_id)
        joined.add(m.room_id)
        actions.append(Action(step="JoinRooms", action="join", room=m.room_id,
                              outcome="joined" if done else "already_joined"))
    configured = {r.room_id for r in rt.config.rooms.values()}
    return state.model_copy(update={"joined": tuple(sorted(joined & configured))}).did(*actions)


def created_in_this_run(state: WorkflowState) -> bool:
    return any(a.step == "ProvisionUser" and a.outcome == "created" for a in state.actions)


@step
def assign_roles(state: WorkflowState, rt: Runtime) -> WorkflowState:
    """Every level a role grants, and (for a user that existed before this run) the demotion
    to the room default where no role grants one any more; one write per room, under the
    room's lease (locks.py). Optionally leaves rooms no group earns now."""
    user_id = user_id_for(state.sub, rt.config)
    created_now = created_in_this_run(state)
    joined = set(state.joined) if state.joined is not None else set(rt.synapse.joined_rooms(user_id))
    actions = []
    for room, level in desired_levels(state.groups, rt.config).items():
        room_id = rt.config.rooms[room].room_id
        if level is None and room_id not in joined:
            continue  # nothing to demote where the user is not
        with rt.locks.hold(room_id) as lease:
            changed = rt.synapse.set_power_levels(room_id, {user_id: level}, lease)
        actions.append(Action(step="AssignRoles", action="set_power_level", room=room_id,
                              outcome=f"set:{'default' if level is None else level}"
                              if changed else "unchanged"))
    if rt.config.leave_rooms_on_role_removal and not created_now:
        earned = {m.room_id for m in desired_memberships(state.groups, rt.config)}
        for room in rt.config.rooms.values():
            if room.room_id in joined and room.room_id not in earned:
                rt.synapse.kick(room.room_id, user_id, reason="no Cognito group grants this room")
                actions.append(Action(step="AssignRoles", action="leave", room=room.room_id, outcome="left"))
    return state.did(*actions)


@step
def read_cognito_user(state: WorkflowState, rt: Runtime) -> WorkflowState:
    """What Cognito says of the user now: its groups, and whether it is enabled, disabled or
    gone. Events can be late, doubled or out of order; only this read decides."""
    if state.sub in rt.config.unmanaged_subs:
        return state.model_copy(update={"cognito": "unmanaged"}).did(Action(
            step="ReadCognitoUser", action="sync", outcome="skipped:unmanaged"))
    idp, pool = aws_client("cognito-idp"), rt.config.user_pool.user_pool_id
    users = idp.list_users(UserPoolId=pool, Filter=f'sub = "{state.sub}"', Limit=2)["Users"]
    if not users:
        return state.model_copy(update={"cognito": "absent", "groups": ()})
    user = users[0]
    groups = tuple(sorted(g["GroupName"] for page in idp.get_paginator("admin_list_groups_for_user")
                          .paginate(UserPoolId=pool, Username=user["Username"]) for g in page["Groups"]))
    check_groups(groups, rt.config)  # an unknown group fails here, before any write
    return state.model_copy(update={
        "cognito": "enabled" if user.get("Enabled", True) else "disabled", "groups": groups,
        "display_name": display_name_of({a["Name"]: a["Value"] for a in user.get("Attributes", [])})})


@step
def deactivate_user(state: WorkflowState, rt: Runtime) -> WorkflowState:
    """Cognito disabled or deleted the user: deactivate it in Matrix (erase, if configured,
    for a deleted one). Synapse removes it from its rooms."""
    user_id = user_id_for(state.sub, rt.config)
    erase = state.cognito == "absent" and rt.config.erase_deleted_users
    done = rt.synapse.deactivate(user_id, erase=erase)
    return state.model_copy(update={"user_id": user_id}).did(Action(
        step="DeactivateUser", action="deactivate_user",
        outcome=("erased" if erase else "deactivated") if done else "skipped:no_matrix_user"))


@step
def record_audit(state: WorkflowState, rt: Runtime) -> WorkflowState:
    new = rt.audit.record_actions(state.sub, state.user_id, state.execution, state.actions, state.cause)
    metrics.add_metric(name="UsersProvisioned", unit=MetricUnit.Count, value=1)
    logger.info("audit recorded", extra={"new_items": new, "items": len(state.actions)})
    return state


@logger.inject_lambda_context(correlation_id_path="execution", clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def plan_sweep(event: dict, context) -> dict:
    """The sweep's first step (statemachines/sweep_users.asl.json): plan, store the plan in S3
    (the plan, and one request per drifted user for the Distributed Map), return the summary."""
    request = parse(SweepEvent, event)
    rt = runtime()
    the_plan = sweeper.sweep(aws_client("cognito-idp"), rt.synapse, rt.config)
    sweep_id = execution_name(request.execution)
    bucket, prefix = os.environ["PLANS_BUCKET"], f"sweeps/{sweep_id}"
    report = the_plan.report()
    summary = report["summary"]
    s3 = aws_client("s3")
    s3.put_object(Bucket=bucket, Key=f"{prefix}/plan.json", ContentType="application/json",
                  Body=json.dumps(report).encode())
    s3.put_object(Bucket=bucket, Key=f"{prefix}/requests.json", ContentType="application/json",
                  Body=json.dumps(list(the_plan.requests.values())).encode())
    metrics.add_metric(name="SweepUsersToFix", unit=MetricUnit.Count, value=summary["users_to_fix"])
    metrics.add_metric(name="SweepFindings", unit=MetricUnit.Count, value=len(the_plan.findings))
    logger.info("sweep planned", extra={"summary": summary, "dry_run": request.dry_run})
    return {"sweep_id": sweep_id, "dry_run": request.dry_run, "summary": summary,
            "users_to_fix": summary["users_to_fix"], "bucket": bucket,
            "plan_key": f"{prefix}/plan.json", "requests_key": f"{prefix}/requests.json",
            "results_prefix": f"{prefix}/results", "max_concurrency": rt.config.sweep_max_concurrency}
