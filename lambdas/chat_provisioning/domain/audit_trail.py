"""The audit trail: what it records and how it is read, over the two primitives a store provides
(adapters/audit_table.py in DynamoDB, tests/fakes.py in memory). One item per action, keyed so
that a retried or redriven step writes the same keys again and the store's conditional insert
turns the repeat into a no-op."""

from abc import ABC, abstractmethod
from datetime import UTC, datetime
from typing import Any

from .models import Action

# The actions that change whether a Matrix user is active, as RecordAudit writes them.
STATUS_CHANGES = {("deactivate_user", "deactivated"), ("deactivate_user", "erased"),
                  ("reactivate_user", "reactivated")}


def execution_name(execution_arn: str) -> str:
    return execution_arn.rsplit(":", 1)[-1]


class AuditRecords(ABC):
    """What the trail records and how it is read, over two primitives a store provides:
    `insert` (an item of strings, once: False when its key exists) and `items` (a user's)."""

    @abstractmethod
    def insert(self, item: dict[str, str]) -> bool: ...

    @abstractmethod
    def items(self, sub: str) -> list[dict[str, str]]: ...

    def put(self, item: dict[str, Any]) -> bool:
        """The item, stamped, its values strings and its empty ones left out."""
        now = datetime.now(UTC).isoformat(timespec="milliseconds")
        return self.insert({**{k: str(v) for k, v in item.items() if v is not None}, "time": now})

    def trail(self, sub: str) -> list[dict[str, str]]:
        """The user's items, oldest first."""
        return sorted(self.items(sub), key=lambda i: (i["time"], i["sk"]))

    def record_actions(self, sub: str, user_id: str | None, execution: str,
                       actions: tuple[Action, ...], cause: str | None = None) -> int:
        """One item per action, with the event that caused the run (`event`: a Cognito API
        name for a role sync); returns how many were new."""
        run = execution_name(execution)
        return sum(self.put({
            "sub": sub, "sk": f"{run}#{i:03d}", "user_id": user_id, "step": a.step,
            "action": a.action, "room": a.room, "outcome": a.outcome, "execution": execution,
            "event": cause,
        }) for i, a in enumerate(actions))

    def record_failure(self, sub: str | None, execution: str, attempt: int, status: str,
                       failed_state: str | None, error: str | None, cause: str | None,
                       event: str | None = None) -> bool:
        """The audit item for an execution that did not succeed. `attempt` (the redrive
        count) keeps each failed attempt of one execution as its own item."""
        return self.put({
            # an execution whose input had no valid sub is still recorded, under its name
            "sub": sub or f"unknown:{execution_name(execution)}",
            "sk": f"{execution_name(execution)}#failed#{attempt}", "step": failed_state,
            "action": "execution", "outcome": status.lower(), "error": error,
            "cause": (cause or "")[:1000], "execution": execution, "event": event,
        })

    def deactivated_by_workflow(self, sub: str, execution: str | None = None) -> bool:
        """Whether the last change of the user's Matrix status on record is a deactivation made
        by this workflow (because Cognito disabled or deleted the user): the only deactivation a
        Cognito enable may undo. A Matrix admin's deactivation is not on record ("already
        deactivated" when we came), so it is never undone. The reactivation `execution` put on
        record before its act (steps.provision_user) counts as that deactivation still: its own
        retry or redrive goes on."""
        changes = [i for i in self.trail(sub) if (i.get("action"), i.get("outcome")) in STATUS_CHANGES]
        if not changes:
            return False
        last = changes[-1]
        return last["outcome"] == "deactivated" or (
            last["outcome"] == "reactivated" and last.get("execution") == execution)
