"""Leader election: two controllers against one API server never both write."""

from __future__ import annotations

from controller_helpers import Harness, app_versions, create_version, routemap, routes, wait_until

from kubectl_iter8.testing import FakeKube


def test_only_the_leader_writes_and_a_follower_takes_over(harness: Harness, fake_kube: FakeKube) -> None:
    create_version(fake_kube, "v1")
    create_version(fake_kube, "v2", ready=False)
    fake_kube.create(routemap("app", app_versions("v1", "v2", weights=[90, 10])))
    a = harness.start(leader_elect=True, identity="a")
    wait_until(a.is_leader, what="a to lead")
    b = harness.start(leader_elect=True, identity="b")
    wait_until(lambda: routes(fake_kube) == {"v1": 90}, what="the primary routed")
    fake_kube.mark_ready("deployments", "v2")
    wait_until(lambda: routes(fake_kube) == {"v1": 90, "v2": 10}, what="v2 routed")
    assert not b.is_leader()
    assert b.write_log == []  # b decided everything too (warm caches) but wrote nothing
    assert b.metrics.reconciles  # ... it did reconcile
    lease = fake_kube.get("leases", "iter8-controller")
    assert lease["spec"]["holderIdentity"] == "a"

    # a dies without releasing the lease: b waits for it to expire, then takes over.
    harness.stop(a, release=False)
    a_last_write = max(end for _, end, _ in a.write_log)
    create_version(fake_kube, "v3")
    fake_kube.patch(
        "configmaps",
        "app",
        {"data": routemap("app", app_versions("v1", "v2", "v3", weights=[80, 10, 10]))["data"]},
    )
    wait_until(b.is_leader, what="b to lead")
    wait_until(lambda: routes(fake_kube) == {"v1": 80, "v2": 10, "v3": 10}, what="b to converge")
    assert fake_kube.get("leases", "iter8-controller")["spec"]["holderIdentity"] == "b"
    b_first_write = min(start for start, _, _ in b.write_log)
    assert a_last_write < b_first_write
    harness.check_invariant(at_least=3)


def test_a_clean_shutdown_hands_over_at_once(harness: Harness, fake_kube: FakeKube) -> None:
    a = harness.start(leader_elect=True, identity="a", lease_duration=30.0, renew_deadline=20.0)
    wait_until(a.is_leader, what="a to lead")
    b = harness.start(leader_elect=True, identity="b", lease_duration=30.0, renew_deadline=20.0)
    harness.stop(a)  # releases the lease
    wait_until(b.is_leader, timeout=3, what="b to lead long before the 30 s lease would expire")


def test_two_candidates_never_lead_at_once(harness: Harness, fake_kube: FakeKube) -> None:
    """Sampled over a few lease periods, with the lease taken over several times."""
    import time

    controllers = [harness.start(leader_elect=True, identity=name) for name in ("a", "b", "c")]
    deadline = time.monotonic() + 1.0
    leaders_seen = set()
    while time.monotonic() < deadline:
        leading = [c.settings.identity for c in controllers if c.is_leader()]
        assert len(leading) <= 1, leading
        leaders_seen.update(leading)
        time.sleep(0.01)
    assert len(leaders_seen) == 1
    current = next(c for c in controllers if c.is_leader())
    harness.stop(current, release=False)
    controllers.remove(current)
    wait_until(lambda: any(c.is_leader() for c in controllers), what="a new leader")
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        assert sum(c.is_leader() for c in controllers) <= 1
        time.sleep(0.01)
