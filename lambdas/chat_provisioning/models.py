"""What flows through the workflow. Execution input and output carry the Cognito sub, the
groups and the display name only: extra fields (an email, a token) are rejected, not carried."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .config import Frozen
from .errors import InvalidInput
from .policy import normalise_sub


class ProvisionRequest(Frozen):
    """The execution input: what the Cognito trigger, EventBridge or an operator sends."""
    sub: str
    groups: tuple[str, ...] = ()
    display_name: str | None = Field(default=None, max_length=256)

    @field_validator("sub")
    @classmethod
    def valid_sub(cls, value: str) -> str:
        try:
            return normalise_sub(value)
        except InvalidInput as e:
            raise ValueError(str(e)) from None

    @field_validator("groups")
    @classmethod
    def sorted_groups(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        # Sorted and unique: the same sign-up always gives the same execution input, which
        # is what makes StartExecution with the same name idempotent.
        return tuple(sorted(set(value)))


class Action(Frozen):
    """One thing a step did (or found done): one audit item each."""
    step: str
    action: str  # create_user, update_user, join, set_power_level
    room: str | None = None  # room ID
    outcome: str  # created, updated, joined, already_joined, set:100, unchanged


class WorkflowState(ProvisionRequest):
    """The state between steps: the request plus what the steps found and did.
    `execution` is stamped by the first step and kept, so a redriven run audits under
    the execution that began it."""
    execution: str | None = None
    user_id: str | None = None
    actions: tuple[Action, ...] = ()
    # Role sync (statemachines/sync_user.asl.json): the Cognito event that started it, whether
    # it may reactivate a deactivated Matrix user (only an enable does), and what Cognito says
    # of the user now (events arrive late, twice, out of order: the current state decides).
    cause: str | None = Field(default=None, max_length=64)
    reactivate: bool = False
    cognito: Literal["enabled", "disabled", "absent", "unmanaged"] | None = None
    # The configured rooms the user is in, as JoinRooms left it (spares AssignRoles a read).
    joined: tuple[str, ...] | None = None
    # The run this step belongs to ("<execution id>#<redrive count>", set by each step from
    # its context, never passed on), and the run in which ProvisionUser saw the user active:
    # later steps of that run skip the check; a redriven run checks again, since the user
    # may have been deactivated since.
    run: str | None = Field(default=None, exclude=True)
    active_in_run: str | None = None

    def did(self, *actions: Action) -> "WorkflowState":
        return self.model_copy(update={"actions": self.actions + actions})


class StepEvent(Frozen):
    """The Lambda payload each Task builds with Parameters: the state and the context."""
    execution: str
    redrive: int = 0  # $$.Execution.RedriveCount: a redrive keeps the execution id
    workflow: dict


class SweepEvent(Frozen):
    """The PlanSweep Task's payload: the execution (the sweep's id) and whether to apply."""
    execution: str
    dry_run: bool = False


class Loose(BaseModel):
    """AWS event shapes: the fields we read are checked, the rest is AWS's business."""
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)


class SignUpRequest(Loose):
    userAttributes: dict[str, str]


class PostConfirmationEvent(Loose):
    """The parts of Cognito's PostConfirmation event the trigger reads."""
    triggerSource: str
    userPoolId: str
    userName: str
    request: SignUpRequest


class BusEvent(Loose):
    """An EventBridge event: its id, detail-type and detail."""
    id: str
    detail_type: str = Field(alias="detail-type")
    detail: dict


class ExecutionStatus(Loose):
    """The detail of 'Step Functions Execution Status Change'."""
    executionArn: str
    status: str
    input: str | None = None
    error: str | None = None
    cause: str | None = None
    redriveCount: int = 0


class RetryJob(Loose):
    """A sign-up whose start failed, as the trigger queued it."""
    user_pool_id: str
    user_name: str
    sub: str
    display_name: str | None = None


def parse(model: type[BaseModel], data: object):
    """Validate into `model`, turning pydantic's error into the typed InvalidInput."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(map(str, err['loc'])) or 'event'}: {err['msg']}"
                             for err in e.errors(include_input=False, include_url=False))
        raise InvalidInput(f"{model.__name__}: {problems}") from None
