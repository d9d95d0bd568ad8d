"""Leader election: two controllers against one API server never both write."""

from __future__ import annotations

import copy
import math
import threading
import time
from datetime import datetime, timedelta
from typing import Any

import pytest
from controller_helpers import Harness, Kube, app_versions, create_version, routemap, routes, wait_until
from kubectl_iter8.controller import manager
from kubectl_iter8.controller.leader import LeaderElector
from kubectl_iter8.controller.manager import Controller

Spec = dict[str, Any]


class LeaseLog:
    """The elector's API client, keeping each Lease write it made as (spec it read, spec it wrote).

    A replace carries the resourceVersion that was read, so the spec read is the one replaced.
    """

    def __init__(self, kube: Any) -> None:
        self._kube = kube
        self._read: Spec | None = None
        self.writes: list[tuple[Spec | None, Spec]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._kube, name)

    def find(self, *args: Any) -> Any:
        lease = self._kube.find(*args)
        self._read = copy.deepcopy((lease or {}).get("spec"))
        return lease

    def get(self, *args: Any) -> Any:
        lease = self._kube.get(*args)
        self._read = copy.deepcopy(lease.get("spec"))
        return lease

    def create(self, gvr: Any, obj: dict[str, Any], *args: Any) -> Any:
        result = self._kube.create(gvr, obj, *args)
        self.writes.append((None, copy.deepcopy(obj["spec"])))
        return result

    def replace(self, gvr: Any, obj: dict[str, Any], *args: Any) -> Any:
        result = self._kube.replace(gvr, obj, *args)
        self.writes.append((self._read, copy.deepcopy(obj["spec"])))
        return result


class RecordingElector(LeaderElector):
    """Keeps every change of its write fence with the time it was made (under the elector's lock,
    so in the order :meth:`is_leader` sees them), counts its attempts and logs its Lease writes."""

    def __init__(self, kube: Any, **kwargs: Any) -> None:
        self.fences: list[tuple[float, float]] = []
        self.attempts = 0
        self._attempts_lock = threading.Lock()
        self.lease_log = LeaseLog(kube)
        super().__init__(self.lease_log, **kwargs)

    @property
    def _leader_until(self) -> float:
        return self._fence

    @_leader_until.setter
    def _leader_until(self, value: float) -> None:
        self._fence = value
        self.fences.append((time.monotonic(), value))

    def try_acquire_or_renew(self) -> bool:
        try:
            return super().try_acquire_or_renew()
        finally:
            with self._attempts_lock:
                self.attempts += 1

    def terms(self) -> list[tuple[float, float]]:
        """When :meth:`is_leader` said yes: from each fence change to the fence or the next change."""
        changes = [at for at, _ in self.fences[1:]] + [math.inf]
        return [
            (at, min(until, after))
            for (at, until), after in zip(self.fences, changes, strict=True)
            if min(until, after) > at
        ]


@pytest.fixture
def recording(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(manager, "LeaderElector", RecordingElector)


def elector(ctl: Controller) -> RecordingElector:
    assert isinstance(ctl.elector, RecordingElector)
    return ctl.elector


def renewed(spec: Spec) -> datetime:
    return datetime.strptime(spec["renewTime"], "%Y-%m-%dT%H:%M:%S.%fZ")


def test_only_the_leader_writes_and_a_follower_takes_over(harness: Harness, kube: Kube) -> None:
    create_version(kube, "v1")
    create_version(kube, "v2", ready=False)
    kube.create(routemap("app", app_versions("v1", "v2", weights=[90, 10])))
    a = harness.start(leader_elect=True, identity="a")
    wait_until(a.is_leader, what="a to lead")
    b = harness.start(leader_elect=True, identity="b")
    wait_until(lambda: routes(kube) == {"v1": 90}, what="the primary routed")
    kube.mark_ready("deployments", "v2")
    wait_until(lambda: routes(kube) == {"v1": 90, "v2": 10}, what="v2 routed")
    assert not b.is_leader()
    assert harness.writes[id(b)] == []  # b decided everything too (warm caches) but wrote nothing
    assert b.metrics.reconciles  # ... it did reconcile
    lease = kube.get("leases", "iter8-controller")
    assert lease["spec"]["holderIdentity"] == "a"

    # a dies without releasing the lease: b waits for it to expire, then takes over.
    harness.stop(a, release=False)
    a_last_write = max(end for _, end, _ in harness.writes[id(a)])
    create_version(kube, "v3")
    kube.patch(
        "configmaps",
        "app",
        {"data": routemap("app", app_versions("v1", "v2", "v3", weights=[80, 10, 10]))["data"]},
    )
    wait_until(b.is_leader, what="b to lead")
    wait_until(lambda: routes(kube) == {"v1": 80, "v2": 10, "v3": 10}, what="b to converge")
    assert kube.get("leases", "iter8-controller")["spec"]["holderIdentity"] == "b"
    b_first_write = min(start for start, _, _ in harness.writes[id(b)])
    assert a_last_write < b_first_write
    harness.check_invariant(at_least=3)


def test_a_clean_shutdown_hands_over_at_once(harness: Harness, recording: None) -> None:
    a = harness.start(leader_elect=True, identity="a", lease_duration=30.0, renew_deadline=20.0)
    wait_until(a.is_leader, what="a to lead")
    b = harness.start(leader_elect=True, identity="b", lease_duration=30.0, renew_deadline=20.0)
    harness.stop(a)  # releases the lease
    # Well before the 30 s lease could expire, however slow the machine.
    wait_until(b.is_leader, timeout=20, what="b to lead")
    (before, _), *_ = [(old, new) for old, new in elector(b).lease_log.writes if new["holderIdentity"] == "b"]
    assert before is not None
    assert before["holderIdentity"] == ""  # b took a released lease, not an expired one


def test_two_candidates_never_lead_at_once(harness: Harness, recording: None) -> None:
    """The lease is taken over twice; each elector's own record of when it led is compared."""
    controllers = [harness.start(leader_elect=True, identity=name) for name in ("a", "b", "c")]
    everyone = list(controllers)
    leaders: list[str] = []
    while True:
        leader = wait_until(
            lambda: next((c for c in controllers if c.is_leader()), None), what="a new leader"
        )
        leaders.append(leader.settings.identity)
        if len(controllers) == 1:
            break
        # Let every follower try to take the live lease a few times before the leader dies
        # (without releasing it).
        followers = [elector(c) for c in controllers if c is not leader]
        wanted = [f.attempts + 3 for f in followers]
        wait_until(
            lambda: all(f.attempts >= n for f, n in zip(followers, wanted, strict=True)),  # noqa: B023
            what="the followers to try",
        )
        harness.stop(leader, release=False)
        controllers.remove(leader)
    for ctl in list(controllers):
        harness.stop(ctl)
    assert sorted(leaders) == ["a", "b", "c"]

    # No two electors ever said "leader" at overlapping times, by their own clocks and records.
    terms = sorted(
        (start, end, ctl.settings.identity) for ctl in everyone for start, end in elector(ctl).terms()
    )
    assert {name for _, _, name in terms} == {"a", "b", "c"}
    for i, (start, _, name) in enumerate(terms):
        for earlier_start, earlier_end, other in terms[:i]:
            assert other == name or earlier_end <= start, (other, earlier_start, earlier_end, name, start)

    # A candidate took a held lease only once it had expired: not renewed for its whole duration.
    # (A holder may empty it at any time: a release.)
    takeovers = 0
    for ctl in everyone:
        for before, after in elector(ctl).lease_log.writes:
            held, taker = (before or {}).get("holderIdentity"), after["holderIdentity"]
            if held and taker and taker != held:
                takeovers += 1
                expired = renewed(before) + timedelta(seconds=before["leaseDurationSeconds"])
                assert renewed(after) >= expired, (before, after)
    assert takeovers >= 2
