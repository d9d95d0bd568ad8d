"""The controller on the fake and a real API server: rollouts, deletions, weights, restarts and faults.

Every scenario ends with the routing invariant checked over the fake's whole write history.
"""

from __future__ import annotations

import json
import threading

import pytest
from controller_helpers import (
    Harness,
    Kube,
    app_versions,
    create_version,
    deployment,
    routemap,
    routes,
    service,
    wait_until,
)

from kubectl_iter8.testing import FakeKube


def setup_app(
    kube: Kube, *names: str, weights: list[int | None] | None = None, strategy: str = "blue-green"
) -> None:
    for name in names:
        kube.create(service(name))
        kube.create(deployment(name))
    kube.create(routemap("app", app_versions(*names, weights=weights), strategy=strategy))


EXPECTED = {
    "blue-green": ({"v1": 1}, {"v1": 90, "v2": 10}),
    "canary": ({"v1": "default"}, {"v1": "default", "v2": "match"}),
    "mirror": ({"v1": "default"}, {"v1": "default", "v2": "mirror:10"}),
}


@pytest.mark.parametrize("strategy", ["blue-green", "canary", "mirror"])
def test_candidate_gets_traffic_only_once_ready(harness: Harness, kube: Kube, strategy: str) -> None:
    create_version(kube, "v1")
    create_version(kube, "v2", ready=False)
    kube.create(routemap("app", app_versions("v1", "v2", weights=[90, 10]), strategy=strategy))
    harness.start()
    before, after = EXPECTED[strategy]
    if strategy == "blue-green":
        before = {"v1": 90}
    wait_until(lambda: routes(kube) == before, what=f"routes {before}")
    kube.mark_ready("deployments", "v2")
    wait_until(lambda: routes(kube) == after, what=f"routes {after}, have {routes(kube)}")
    harness.check_invariant(at_least=2)


def ready_app(
    harness: Harness, kube: Kube, weights: list[int | None] | None = None, strategy: str = "blue-green"
):
    create_version(kube, "v1")
    create_version(kube, "v2")
    kube.create(routemap("app", app_versions("v1", "v2", weights=weights or [90, 10]), strategy=strategy))
    ctl = harness.start()
    wait_until(
        lambda: routes(kube) == {"v1": (weights or [90, 10])[0], "v2": (weights or [90, 10])[1]},
        what="both versions routed",
    )
    return ctl


def has_finalizer(obj: dict) -> bool:
    return "iter8.tools/finalizer" in (obj["metadata"].get("finalizers") or [])


def test_deleting_a_candidate_drains_it_before_it_disappears(harness: Harness, kube: Kube) -> None:
    ready_app(harness, kube)
    wait_until(lambda: has_finalizer(kube.get("deployments", "v2")), what="the finalizer on v2")
    wait_until(lambda: has_finalizer(kube.get("services", "v2")), what="the finalizer on svc v2")
    if isinstance(kube, FakeKube):
        kube.faults.fail_next("patch", "deployments", status=409, times=2)  # the finalizer removal retries
    kube.delete("deployments", "v2")
    wait_until(lambda: not kube.exists("deployments", "v2"), what="v2 to be deleted")
    assert routes(kube) == {"v1": 90}
    # The routing write without v2 came before the deletion completed.
    harness.history.sync()
    events = harness.history.events
    removed = next(
        e.rv
        for e in events
        if e.type == "DELETED" and e.resource == "deployments.apps" and e.new["metadata"]["name"] == "v2"
    )
    last_routing = max(
        e.rv for e in events if e.type != "DELETED" and e.new["metadata"]["name"] == "app-routing"
    )
    assert last_routing < removed
    harness.check_invariant(at_least=2)


def test_unreferenced_resources_are_released_at_once(harness: Harness, kube: Kube) -> None:
    harness.start()
    create_version(kube, "lonely")
    wait_until(lambda: has_finalizer(kube.get("deployments", "lonely")), what="the finalizer")
    kube.delete("deployments", "lonely")
    wait_until(lambda: not kube.exists("deployments", "lonely"), what="the deletion to complete")


def test_weight_annotation_overrides_the_routemap(harness: Harness, kube: Kube) -> None:
    ready_app(harness, kube)
    kube.patch("services", "v2", {"metadata": {"annotations": {"iter8.tools/weight": "50"}}})
    wait_until(lambda: routes(kube) == {"v1": 90, "v2": 50}, what="weight 50 for v2")
    kube.patch("deployments", "v1", {"metadata": {"annotations": {"iter8.tools/weight": "0"}}})
    wait_until(lambda: routes(kube) == {"v2": 50}, what="v1 weighted out")
    harness.check_invariant(at_least=3)


def test_all_weights_zero_sends_everything_to_the_primary(harness: Harness, kube: Kube) -> None:
    create_version(kube, "v1")
    create_version(kube, "v2")
    kube.create(routemap("app", app_versions("v1", "v2", weights=[0, 0])))
    harness.start()
    wait_until(lambda: routes(kube) == {"v1": 1}, what="the primary to take everything")


def test_unready_candidate_loses_traffic(harness: Harness, kube: Kube) -> None:
    ready_app(harness, kube)
    kube.mark_unready("deployments", "v2")
    wait_until(lambda: routes(kube) == {"v1": 90}, what="v2 out of the routes")
    harness.check_invariant(at_least=2)


def test_deleted_routemap_takes_its_routing_objects_with_it(harness: Harness, kube: Kube) -> None:
    ctl = ready_app(harness, kube)
    wait_until(lambda: kube.exists("configmaps", "app-iter8-status"), what="the status")
    kube.delete("configmaps", "app")
    # Garbage-collected at once; a reconcile racing with the deletion removes what it re-created.
    wait_until(lambda: not kube.exists("configmaps", "app-routing"), what="routing objects gone")
    wait_until(lambda: not kube.exists("configmaps", "app-iter8-status"), what="status gone")
    # The controller has seen the deletion (a reconcile in flight finishes first: one key, one worker).
    wait_until(lambda: not ctl.metrics.weights, what="the controller to forget the routemap")
    assert not kube.exists("configmaps", "app-routing")
    # The deployments are no longer referenced: deleting one completes at once.
    kube.delete("deployments", "v2")
    wait_until(lambda: not kube.exists("deployments", "v2"), what="v2 to be deleted")
    harness.check_invariant()


def test_status_and_events_tell_the_user_what_was_applied(harness: Harness, kube: Kube) -> None:
    import yaml

    create_version(kube, "v1")
    create_version(kube, "v2", ready=False)
    kube.create(routemap("app", app_versions("v1", "v2", weights=[90, 10])))
    harness.start()

    def status() -> dict:
        if not kube.exists("configmaps", "app-iter8-status"):
            return {}
        return yaml.safe_load(kube.get("configmaps", "app-iter8-status")["data"]["status"])

    wait_until(lambda: status().get("versions"), what="the status")
    got = status()
    assert got["router"] == "test"
    assert got["lastError"] is None
    assert got["routingObjects"] == [{"apiVersion": "v1", "kind": "ConfigMap", "name": "app-routing"}]
    assert got["versions"][0] == {"name": "v1", "available": True, "weight": 90}
    assert got["versions"][1]["available"] is False
    assert got["versions"][1]["weight"] == 0
    assert "Available" in got["versions"][1]["reason"] or "status" in got["versions"][1]["reason"]
    # Events are sent by a thread of their own, after the status.
    applied = wait_until(
        lambda: [e for e in kube.list("events", kube.namespace) if e["reason"] == "RoutingApplied"],
        what="the RoutingApplied event",
    )
    assert applied[0]["involvedObject"]["name"] == "app"
    assert "v1=90" in applied[0]["message"]


def test_a_noop_resync_writes_nothing(harness: Harness, kube: Kube) -> None:
    ctl = ready_app(harness, kube)
    wait_until(lambda: kube.exists("configmaps", "app-iter8-status"), what="the status")
    wait_until(lambda: has_finalizer(kube.get("deployments", "v2")), what="the finalizers")

    def cluster_writes() -> int:
        if isinstance(kube, FakeKube):
            return len(kube.audit)
        harness.history.sync()
        return len(harness.history.events)

    def writes_during_three_reconciles() -> tuple[int, int]:
        before, writes = cluster_writes(), len(harness.writes[id(ctl)])
        reconciles = sum(ctl.metrics.reconciles.values())
        wait_until(lambda: sum(ctl.metrics.reconciles.values()) > reconciles + 2, what="three reconciles")
        return cluster_writes() - before, len(harness.writes[id(ctl)]) - writes

    # The first reconciles' writes may still be under way on a busy machine: wait until three
    # reconciles in a row wrote nothing (a controller that writes on every resync never gets there),
    # then the next three must write nothing either.
    wait_until(lambda: writes_during_three_reconciles() == (0, 0), timeout=30, what="a quiet resync")
    assert writes_during_three_reconciles() == (0, 0)


def test_broken_routemaps_do_not_stop_the_others(harness: Harness, kube: Kube) -> None:
    import yaml

    create_version(kube, "v1")
    kube.create(routemap("unknown-router", app_versions("v1"), router="nosuch"))
    bad = routemap("bad-spec", [])
    bad["data"]["strSpec"] = "versions: [{resources: []}]"
    kube.create(bad)
    kube.create(routemap("bad-options", app_versions("v1"), nosuchoption=1))
    kube.create(routemap("app", app_versions("v1")))
    harness.start()
    wait_until(lambda: routes(kube) == {"v1": 1}, what="the good routemap")
    for name, expected in [
        ("unknown-router", "unknown router"),
        ("bad-spec", "versions"),
        ("bad-options", "nosuchoption"),
    ]:
        wait_until(lambda name=name: kube.exists("configmaps", f"{name}-iter8-status"), what=f"{name} status")
        status = yaml.safe_load(kube.get("configmaps", f"{name}-iter8-status")["data"]["status"])
        assert expected in status["lastError"], status

    def warnings() -> set[str]:
        events = kube.list("events", kube.namespace)
        return {e["involvedObject"]["name"] for e in events if e["type"] == "Warning"}

    expected_warnings = {"unknown-router", "bad-spec", "bad-options"}
    wait_until(lambda: warnings() >= expected_warnings, what="the warning events")
    assert warnings() == expected_warnings


def test_restart_mid_rollout_converges(harness: Harness, kube: Kube) -> None:
    create_version(kube, "v1")
    create_version(kube, "v2", ready=False)
    kube.create(routemap("app", app_versions("v1", "v2", weights=[90, 10])))
    ctl = harness.start()
    wait_until(lambda: routes(kube) == {"v1": 90}, what="the primary only")
    harness.stop(ctl, release=False)  # killed: no clean-up
    kube.mark_ready("deployments", "v2")
    create_version(kube, "v3")
    kube.patch(
        "configmaps",
        "app",
        {"data": routemap("app", app_versions("v1", "v2", "v3", weights=[80, 10, 10]))["data"]},
    )
    harness.start()
    wait_until(lambda: routes(kube) == {"v1": 80, "v2": 10, "v3": 10}, what="convergence after the restart")
    harness.check_invariant(at_least=2)


@pytest.mark.fake_only
def test_dropped_watches_410_and_error_answers_are_survived(harness: Harness, kube: Kube) -> None:
    create_version(kube, "v1")
    create_version(kube, "v2", ready=False)
    kube.create(routemap("app", app_versions("v1", "v2", weights=[90, 10])))
    ctl = harness.start()
    wait_until(lambda: routes(kube) == {"v1": 90}, what="the primary only")
    lists_before = sum(i.lists for i in ctl.informers)
    # Watches cut (cleanly and by a broken connection), history compacted: re-watch, relist on 410.
    kube.faults.drop_watches(abort=True)
    kube.compact()
    kube.faults.drop_watches()
    # Every write of the next reconciles fails once per kind of error.
    for status in (409, 429, 500):
        kube.faults.fail_next("patch", "configmaps", status=status, times=1)
    kube.faults.fail_next("list", "deployments", status=500, times=2)
    kube.mark_ready("deployments", "v2")
    wait_until(lambda: routes(kube) == {"v1": 90, "v2": 10}, timeout=15, what="v2 routed despite faults")
    wait_until(lambda: sum(i.lists for i in ctl.informers) > lists_before, what="a relist after 410")
    assert ctl.metrics.reconciles.get("error", 0) >= 1
    harness.check_invariant(at_least=2)


@pytest.mark.fake_only
def test_all_namespaces_and_resources_in_other_namespaces(harness: Harness, kube: Kube) -> None:
    for ns in ("team", "shared"):
        kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    create_version(kube, "v1")
    kube.create(service("v1"), namespace="team")
    kube.controllers.deployments = 0.0
    kube.create(deployment("v1"), namespace="team")
    kube.create(service("v2"), namespace="shared")
    versions = [
        {"resources": [{"gvrShort": "svc", "name": "v1"}, {"gvrShort": "deploy", "name": "v1"}], "weight": 3},
        {"resources": [{"gvrShort": "svc", "name": "v2", "namespace": "shared"}], "weight": 1},
    ]
    kube.create(routemap("app", versions), namespace="team")
    ctl = harness.start(namespaces=None)
    wait_until(lambda: kube.exists("configmaps", "app-routing", "team"), what="routing in team")
    wait_until(
        lambda: "v2" in kube.get("configmaps", "app-routing", "team")["data"]["routes"],
        what="both versions",
    )
    assert not kube.exists("configmaps", "app-routing", "default")
    assert ctl.informers[0].namespace is None


def test_routing_objects_no_longer_rendered_are_deleted(harness: Harness, kube: Kube) -> None:
    import yaml

    def last_error() -> str | None:
        return yaml.safe_load(kube.get("configmaps", "app-iter8-status")["data"]["status"])["lastError"]

    ready_app(harness, kube)
    wait_until(lambda: kube.exists("configmaps", "app-iter8-status"), what="the status")
    kube.create(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "renamed"}, "data": {"user": "x"}}
    )
    changed = routemap("app", app_versions("v1", "v2", weights=[90, 10]), object_name="renamed")
    kube.patch("configmaps", "app", {"data": changed["data"]})
    # Someone else's object is never taken over: the routemap fails, its old routing stays.
    wait_until(lambda: "ConfigMap 'renamed'" in (last_error() or ""), what="the conflict in the status")
    renamed = kube.get("configmaps", "renamed")
    assert renamed["data"] == {"user": "x"}
    assert not renamed["metadata"].get("ownerReferences")
    assert "app.kubernetes.io/managed-by" not in (renamed["metadata"].get("labels") or {})
    assert routes(kube) == {"v1": 90, "v2": 10}
    conflicts = wait_until(
        lambda: [e for e in kube.list("events", kube.namespace) if e["reason"] == "RoutingConflict"],
        what="the RoutingConflict event",
    )
    assert conflicts[0]["involvedObject"]["name"] == "app"
    # A name nobody uses is applied, and the routemap's previous object, which it owns, is deleted.
    changed = routemap("app", app_versions("v1", "v2", weights=[90, 10]), object_name="third")
    kube.patch("configmaps", "app", {"data": changed["data"]})
    wait_until(lambda: kube.exists("configmaps", "third"), what="the third routing object")
    wait_until(lambda: routes(kube) is None, what="the old routing object to go")
    wait_until(lambda: last_error() is None, what="the error to clear")
    assert kube.get("configmaps", "renamed")["data"] == {"user": "x"}


def test_a_resource_shared_by_two_routemaps_is_drained_from_both(harness: Harness, kube: Kube) -> None:
    create_version(kube, "v1")
    create_version(kube, "v2")
    for name in ("a", "b"):
        kube.create(routemap(name, app_versions("v1", "v2", weights=[1, 1])))
    harness.start()
    for name in ("a", "b"):
        wait_until(lambda name=name: routes(kube, name) == {"v1": 1, "v2": 1}, what=f"{name} routes")
    wait_until(lambda: has_finalizer(kube.get("deployments", "v2")), what="the finalizer")
    kube.delete("deployments", "v2")
    wait_until(lambda: not kube.exists("deployments", "v2"), what="v2 deleted")
    assert routes(kube, "a") == routes(kube, "b") == {"v1": 1}
    # (the harness checks the drain rule over the whole history at the end)


def test_a_resource_that_stops_being_watched_is_drained_and_released(harness: Harness, kube: Kube) -> None:
    ready_app(harness, kube)
    wait_until(lambda: has_finalizer(kube.get("deployments", "v2")), what="the finalizer")
    kube.patch("deployments", "v2", {"metadata": {"labels": {"iter8.tools/watch": None}}})
    wait_until(lambda: routes(kube) == {"v1": 90}, what="v2 out of the routes")
    wait_until(lambda: not has_finalizer(kube.get("deployments", "v2")), what="the finalizer released")
    kube.delete("deployments", "v2")
    assert not kube.exists("deployments", "v2")


@pytest.mark.fake_only
def test_a_type_that_cannot_be_listed_does_not_hold_back_the_others(harness: Harness, kube: Kube) -> None:
    create_version(kube, "v1")
    kube.create(routemap("app", [{"resources": [{"gvrShort": "deploy", "name": "v1"}]}]))
    kube.forbid("list", "services")  # as a Role without services would
    ctl = harness.start()
    wait_until(lambda: routes(kube) == {"v1": 1}, what="routing without the services cache")
    assert ctl.ready()


@pytest.mark.fake_only
def test_permissions_that_apply_late_do_not_take_traffic_off_a_version(harness: Harness, kube: Kube) -> None:
    create_version(kube, "v1")
    create_version(kube, "v2")
    kube.create(routemap("app", app_versions("v1", "v2", weights=[90, 10])))
    # As right after an install: for a moment the new RoleBinding does not apply yet.
    kube.forbid("list", "services")
    threading.Timer(0.5, kube.faults.reset).start()
    harness.start(forbidden_grace=5.0)
    wait_until(lambda: routes(kube) == {"v1": 90, "v2": 10}, what="both versions routed")
    written = [
        json.loads(e.new["data"]["routes"])
        for e in harness.history.events
        if e.new["metadata"]["name"] == "app-routing" and e.type != "DELETED"
    ]
    assert written
    assert all({r["name"] for r in routes_} == {"v1", "v2"} for routes_ in written), written
