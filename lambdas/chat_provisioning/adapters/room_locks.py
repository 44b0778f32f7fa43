"""Per-room leases in DynamoDB, so that power-level read-modify-writes to one room are
serialised across executions and Lambda instances (two unguarded writers lose an update:
both PUTs return 200). A lease expires on its own, so a crashed holder blocks the room for
at most `lease_seconds`; each acquisition increments the room's fence, and the holder checks
fence and expiry right before it writes, so a holder that stalled past its lease writes
nothing. The DynamoDB adapter of ports.RoomLocks."""

import random
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from botocore.exceptions import ClientError

from ..domain.deadline import LEASE_SECONDS, LEASE_WAIT_SECONDS, Deadline
from ..domain.errors import LeaseLost, RoomBusy
from .clients import Client


def _conditional_failed(e: ClientError) -> bool:
    return bool(e.response["Error"]["Code"] == "ConditionalCheckFailedException")


@dataclass
class Lease:
    locks: "DynamoRoomLocks"
    room_id: str
    owner: str
    fence: int

    def check(self) -> None:
        """Still ours, with time left to write: extend it, or raise LeaseLost."""
        now = self.locks.clock()
        try:
            self.locks.client().update_item(
                TableName=self.locks.table, Key={"lock": {"S": self.room_id}},
                UpdateExpression="SET expires_at = :e",
                ConditionExpression="#o = :o AND fence = :f AND expires_at > :now",
                ExpressionAttributeNames={"#o": "owner"},
                ExpressionAttributeValues={":o": {"S": self.owner}, ":f": {"N": str(self.fence)},
                                           ":now": {"N": str(now)},
                                           ":e": {"N": str(now + self.locks.lease_seconds)}})
        except ClientError as e:
            if _conditional_failed(e):
                raise LeaseLost(f"lease on {self.room_id} (fence {self.fence}) is no longer ours") from None
            raise


class DynamoRoomLocks:
    def __init__(self, table: str, client: Client, lease_seconds: float = LEASE_SECONDS,
                 wait_seconds: float = LEASE_WAIT_SECONDS, clock: Callable[[], float] = time.time,
                 deadline: Deadline | None = None):
        self.table = table
        self.client = client
        self.lease_seconds = lease_seconds
        self.wait_seconds = wait_seconds
        self.clock = clock
        self.deadline = deadline or Deadline()

    @contextmanager
    def hold(self, room_id: str) -> Iterator[Lease]:
        lease = self._acquire(room_id)
        try:
            yield lease
        finally:
            self._release(lease)

    def _acquire(self, room_id: str) -> Lease:
        owner = str(uuid.uuid4())
        # Wait at most half the invocation's time left: the holder needs the rest to write.
        waiting = min(self.wait_seconds, self.deadline.left() / 2)
        deadline = time.monotonic() + waiting
        pause = 0.05
        while True:
            now = self.clock()
            try:
                item = self.client().update_item(
                    TableName=self.table, Key={"lock": {"S": room_id}},
                    UpdateExpression="SET #o = :o, expires_at = :e ADD fence :one",
                    ConditionExpression="attribute_not_exists(#l) OR expires_at < :now",
                    ExpressionAttributeNames={"#o": "owner", "#l": "lock"},
                    ExpressionAttributeValues={":o": {"S": owner}, ":one": {"N": "1"},
                                               ":now": {"N": str(now)},
                                               ":e": {"N": str(now + self.lease_seconds)}},
                    ReturnValues="ALL_NEW")["Attributes"]
                return Lease(self, room_id, owner, int(item["fence"]["N"]))
            except ClientError as e:
                if not _conditional_failed(e):
                    raise
            if time.monotonic() > deadline:
                raise RoomBusy(f"power levels of {room_id} stayed locked for {waiting:.1f}s")
            # Backoff with jitter: many waiters neither wake in lockstep nor hammer the table.
            time.sleep(random.uniform(pause / 2, pause))
            pause = min(pause * 1.5, 1.0)

    def _release(self, lease: Lease) -> None:
        """Expire it now; the item (and its fence) stays, one per room."""
        try:
            self.client().update_item(
                TableName=self.table, Key={"lock": {"S": lease.room_id}},
                UpdateExpression="SET expires_at = :zero",
                ConditionExpression="#o = :o AND fence = :f",
                ExpressionAttributeNames={"#o": "owner"},
                ExpressionAttributeValues={":o": {"S": lease.owner}, ":f": {"N": str(lease.fence)},
                                           ":zero": {"N": "0"}})
        except ClientError as e:
            if not _conditional_failed(e):  # taken over after expiry: theirs now, leave it
                raise
