"""Typed failures. The class name is the error name Step Functions sees, so the ASL's
Retry/ErrorEquals lists these names. A transient error's class says how it is retried
(`retry`, inherited by its subclasses): stacks/retries.py writes every Lambda Task's Retry
from these and AWS's own errors, and a test holds the ASL files to it."""

from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True)
class Retry:
    """A Step Functions retrier's timing: the first wait, the attempts, the longest wait."""
    interval_seconds: int
    max_attempts: int
    max_delay_seconds: int
    backoff_rate: float = 2.0


class ProvisioningError(Exception):
    """Base of every failure this package raises on purpose."""


class TransientError(ProvisioningError):
    """Worth retrying: the same call can succeed later."""
    retry: ClassVar[Retry]


class PermanentError(ProvisioningError):
    """Retrying cannot help: fix the input, the config or Synapse, then redrive."""


class SynapseUnavailable(TransientError):
    """Synapse did not answer (connection refused, timeout) or answered 5xx."""
    retry = Retry(interval_seconds=2, max_attempts=4, max_delay_seconds=30)


class SynapseRateLimited(TransientError):
    """429 M_LIMIT_EXCEEDED, still limited after waiting its retry_after_ms in-process."""
    retry = Retry(interval_seconds=5, max_attempts=5, max_delay_seconds=60)

    def __init__(self, message: str, retry_after_ms: int | None = None):
        super().__init__(message)
        self.retry_after_ms = retry_after_ms


class InvalidInput(PermanentError):
    """The event or execution input breaks the contract: missing sub, unknown group..."""


class UserDeactivated(PermanentError):
    """The Matrix user is deactivated; Synapse would still join it to rooms, so we refuse."""


class SynapseAuthFailed(PermanentError):
    """The bot token is missing, unknown or revoked, even after re-reading the secret."""


class SynapseAnswer(Exception):
    """What Synapse answered, kept for the callers that take one answer as success
    ("already in the room", "no such user")."""

    def __init__(self, message: str, status: int, errcode: str, error: str):
        super().__init__(message)
        self.status, self.errcode, self.error = status, errcode, error


class SynapseForbidden(SynapseAnswer, PermanentError):
    """403: the bot lacks the admin flag, or the power to invite or change levels."""


class RoomNotFound(PermanentError):
    """A configured room ID that Synapse does not know, or one the bot is not in."""


class PowerLevelForbidden(PermanentError):
    """The wanted level is above the bot's, or the user is the bot's peer: Synapse
    would refuse it, and a retry loop would not change that."""


class LevelBeyondTheBot(PowerLevelForbidden):
    """A level the bot cannot set: above its own, or of a user at its level or above (Matrix
    lets nobody change a peer's level). A finding for a person, not a failure: AssignRoles
    records it and goes on, and the sweep plans it as a finding, never as a fix."""


class SynapseRejected(SynapseAnswer, PermanentError):
    """Any other 4xx from Synapse, with its errcode."""


class RoomBusy(TransientError):
    """Another execution holds the room's power-levels lease; try again after it."""
    retry = Retry(interval_seconds=1, max_attempts=5, max_delay_seconds=20)


class LeaseLost(TransientError):
    """Our room lease expired or was taken over before the write: nothing was written."""
    retry = RoomBusy.retry


class PowerLevelWriteLost(TransientError):
    """Our power-levels write was overwritten before it could be read back, repeatedly:
    a writer outside the lease (a person in a client) raced us."""
    retry = RoomBusy.retry
