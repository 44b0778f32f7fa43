"""The four Tasks of statemachines/provision_user.asl.json, one handler each. Every step is
idempotent: run twice, the second run changes nothing in Synapse or the audit table."""

from collections.abc import Callable

from aws_lambda_powertools.metrics import MetricUnit

from .models import Action, StepEvent, WorkflowState, parse
from .policy import check_groups, desired_memberships, user_id_for
from .runtime import Runtime, logger, metrics, runtime, tracer
from .errors import UserDeactivated


def step(fn: Callable[[WorkflowState, Runtime], WorkflowState]):
    """Parse {"execution", "workflow"} (built by the Task's Parameters), run the step,
    return the new state. Typed errors propagate: their names drive the ASL's Retry."""

    @logger.inject_lambda_context(correlation_id_path="execution", clear_state=True)
    @tracer.capture_lambda_handler(capture_response=False)
    @metrics.log_metrics
    def handler(event: dict, context) -> dict:
        logger.append_keys(step=fn.__name__)
        event = parse(StepEvent, event)
        state = parse(WorkflowState, event.workflow)
        logger.append_keys(sub=state.sub)
        if state.execution is None:
            state = state.model_copy(update={"execution": event.execution})
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
    if user.deactivated:
        raise UserDeactivated(f"{user_id} is deactivated in Synapse; not provisioning it")
    return state.model_copy(update={"user_id": user_id}).did(Action(
        step="ProvisionUser", action="create_user" if user.created else "update_user",
        outcome="created" if user.created else "updated"))


@step
def join_rooms(state: WorkflowState, rt: Runtime) -> WorkflowState:
    user_id = user_id_for(state.sub, rt.config)
    memberships = desired_memberships(state.groups, rt.config)
    rt.synapse.require_active(user_id)  # Synapse joins deactivated users; we do not
    return state.did(*(
        Action(step="JoinRooms", action="join", room=m.room_id,
               outcome="joined" if rt.synapse.join(m.room_id, user_id) else "already_joined")
        for m in memberships))


@step
def assign_roles(state: WorkflowState, rt: Runtime) -> WorkflowState:
    """One power-levels write per room, under the room's lease (see locks.py)."""
    user_id = user_id_for(state.sub, rt.config)
    actions = []
    for m in desired_memberships(state.groups, rt.config):
        if m.power_level is None:
            continue
        with rt.locks.hold(m.room_id) as lease:
            changed = rt.synapse.set_power_levels(m.room_id, {user_id: m.power_level}, lease)
        actions.append(Action(step="AssignRoles", action="set_power_level", room=m.room_id,
                              outcome=f"set:{m.power_level}" if changed else "unchanged"))
    return state.did(*actions)


@step
def record_audit(state: WorkflowState, rt: Runtime) -> WorkflowState:
    new = rt.audit.record_actions(state.sub, state.user_id, state.execution, state.actions)
    metrics.add_metric(name="UsersProvisioned", unit=MetricUnit.Count, value=1)
    logger.info("audit recorded", extra={"new_items": new, "items": len(state.actions)})
    return state
