"""The steps' time budgets, and the time an invocation has left. Lambda ends a function at its
timeout with no error of ours (Step Functions sees `Lambda.Unknown`); a step that watches its
deadline stops first, with a typed error the ASL retries, having kept what it did (every step
is idempotent, so the next attempt goes on from there)."""

import math
import time
from collections.abc import Callable

# Kept back from Lambda's remaining time: to raise, log and answer before the timeout.
RESERVE_SECONDS = 2.0
# A room's lease (adapters/room_locks.py): how long it holds unless renewed, and how long a step
# waits for it at most (and at most half its time left). stacks/wiring.longest_unsplit_seconds
# holds each step's function time to fit the wait and a guarded write.
LEASE_SECONDS = 10.0
LEASE_WAIT_SECONDS = 20.0


class Deadline:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._at = math.inf  # no invocation (a script, a test): no deadline

    def start(self, remaining_ms: int) -> None:
        """At each invocation's start, from the Lambda context's remaining time."""
        self._at = self._clock() + remaining_ms / 1000 - RESERVE_SECONDS

    def left(self) -> float:
        return self._at - self._clock()
