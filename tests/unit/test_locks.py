"""Room leases on moto's DynamoDB, with a clock the test moves."""

import time

import boto3
import pytest
from moto import mock_aws

from chat_provisioning.adapters.room_locks import DynamoRoomLocks
from chat_provisioning.domain.deadline import RESERVE_SECONDS, Deadline
from chat_provisioning.domain.errors import LeaseLost, RoomBusy


class Clock:
    now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def locks():
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(TableName="locks", BillingMode="PAY_PER_REQUEST",
                            KeySchema=[{"AttributeName": "lock", "KeyType": "HASH"}],
                            AttributeDefinitions=[{"AttributeName": "lock", "AttributeType": "S"}])
        yield DynamoRoomLocks("locks", lambda: client, lease_seconds=10, wait_seconds=0.3, clock=Clock())


def test_a_held_room_is_busy_for_others(locks):
    with locks.hold("!r:x"):
        with pytest.raises(RoomBusy):
            with locks.hold("!r:x"):
                pass
        with locks.hold("!other:x"):  # per room
            pass
    with locks.hold("!r:x"):  # released
        pass


def test_a_crashed_holder_blocks_the_room_for_its_lease_only(locks):
    crashed = locks._acquire("!r:x")  # never released
    with pytest.raises(RoomBusy):
        locks._acquire("!r:x")
    locks.clock.now += 10.5
    with locks.hold("!r:x") as lease:
        assert lease.fence == crashed.fence + 1
        lease.check()
        with pytest.raises(LeaseLost):
            crashed.check()  # it wakes up late: it must not write


def test_a_holder_past_its_lease_must_not_write(locks):
    with locks.hold("!r:x") as lease:
        locks.clock.now += 11
        with pytest.raises(LeaseLost):
            lease.check()


def test_the_lease_wait_leaves_half_the_time_left_to_write(locks):
    """A step waits for a room's lease at most half its invocation's time left: the holder
    needs the rest for its write."""
    # A stopped clock: 0.2 s left however long the setup takes (under load, the lease taken
    # below once ate the time before the wait began, and the wait was 0.0 s).
    deadline = Deadline(clock=lambda: 0.0)
    deadline.start(remaining_ms=int((RESERVE_SECONDS + 0.2) * 1000))  # 0.2 s left
    waiting = DynamoRoomLocks("locks", locks.client, lease_seconds=10, wait_seconds=20, clock=locks.clock,
                              deadline=deadline)
    with locks.hold("!r:x"):
        started = time.monotonic()
        with pytest.raises(RoomBusy, match="stayed locked for 0.1s"):
            waiting._acquire("!r:x")
    assert time.monotonic() - started < 1  # not the 20 s wait_seconds
