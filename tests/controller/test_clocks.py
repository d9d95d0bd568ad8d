"""The work queue and leader election on clocks the test moves: back-off and Lease expiry without
sleeping (the threaded behaviour on real time is in test_units.py and test_leader.py)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from kubectl_iter8.controller.leader import LeaderElector
from kubectl_iter8.controller.queue import WorkQueue

from kubectl_iter8.kube import LEASES, Kube, KubeOptions
from kubectl_iter8.testing import FakeKube


class Clock:
    """Monotonic seconds and a wall clock that move only when told."""

    def __init__(self) -> None:
        self.seconds = 1000.0
        self.wall = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)

    def monotonic(self) -> float:
        return self.seconds

    def now(self) -> datetime:
        return self.wall

    def advance(self, seconds: float) -> None:
        self.seconds += seconds
        self.wall += timedelta(seconds=seconds)


def test_delayed_keys_come_due_when_the_clock_says_so() -> None:
    clock = Clock()
    queue: WorkQueue[str] = WorkQueue(backoff_base=1.0, backoff_max=8.0, clock=clock.monotonic)
    assert queue.backoff("a") == 1.0
    queue.add_after("b", 30.0)
    assert queue.get(timeout=0) is None
    clock.advance(1.0)
    assert queue.get(timeout=0) == "a"
    queue.done("a")
    assert [queue.backoff("a") for _ in range(4)] == [2.0, 4.0, 8.0, 8.0]
    clock.advance(29.0)
    assert queue.get(timeout=0) == "a"  # due since 8 s: the earlier due time first
    assert queue.get(timeout=0) == "b"


@pytest.fixture
def client(fake_kube: FakeKube) -> Iterator[Kube]:
    with Kube(KubeOptions(kubeconfig=str(fake_kube.kubeconfig))) as kube:
        yield kube


def elector(client: Kube, clock: Clock, identity: str) -> LeaderElector:
    return LeaderElector(
        client,
        namespace="default",
        name="lease",
        identity=identity,
        lease_duration=15.0,
        renew_deadline=10.0,
        retry_period=2.0,
        monotonic=clock.monotonic,
        now=clock.now,
    )


def test_a_key_delayed_again_waits_once_for_the_earliest_time() -> None:
    clock = Clock()
    queue: WorkQueue[str] = WorkQueue(clock=clock.monotonic)
    for delay in (30.0, 5.0, 60.0, 5.0):
        queue.add_after("rollout", delay)
    clock.advance(4.9)
    assert queue.get(timeout=0) is None
    clock.advance(0.1)
    assert queue.get(timeout=0) == "rollout"
    queue.done("rollout")
    clock.advance(100)
    assert queue.get(timeout=0) is None, "the later delays were folded into the earliest"


def test_leadership_ends_at_the_renew_deadline_and_a_lease_expires_by_its_times(client: Kube) -> None:
    clock = Clock()
    a, b = elector(client, clock, "a"), elector(client, clock, "b")
    assert a.try_acquire_or_renew()
    assert not b.try_acquire_or_renew()
    clock.advance(9.9)
    assert a.is_leader()
    clock.advance(0.2)
    assert not a.is_leader()  # not renewed within the deadline: a stops writing at once
    assert not b.try_acquire_or_renew()  # but the Lease (renewed 10.1 s ago, 15 s) still holds
    clock.advance(5.0)
    assert b.try_acquire_or_renew()
    lease = client.get(LEASES, "lease", "default")
    assert lease["spec"]["holderIdentity"] == "b"
    assert lease["spec"]["leaseTransitions"] == 1
    assert lease["spec"]["renewTime"] == "2026-12-04T12:00:15.100000Z"
