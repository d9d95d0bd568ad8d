"""The pure parts of the controller: the work queue, availability and weights, finalizer patches,
settings, metrics, and the routing-invariant checker itself (which must be able to fail)."""

from __future__ import annotations

import threading
import time

import pytest
from controller_helpers import TYPES, RouteListRouter, app_versions, routemap, routers
from kubectl_iter8.controller import finalizers
from kubectl_iter8.controller.config import Settings, load_config
from kubectl_iter8.controller.errors import PermanentError
from kubectl_iter8.controller.http import Metrics
from kubectl_iter8.controller.plan import DIGEST_ANNOTATION, cached_view, desired_objects, plan, up_to_date
from kubectl_iter8.controller.queue import WorkQueue
from routing_invariant import violations

from kubectl_iter8.errors import UsageError
from kubectl_iter8.routemap import RoutingState, parse_routemap
from kubectl_iter8.testing import AuditRecord, Event

# --- the work queue -------------------------------------------------------------------------------


def test_queue_deduplicates_waiting_keys() -> None:
    queue: WorkQueue[str] = WorkQueue()
    for key in ("a", "b", "a", "a"):
        queue.add(key)
    assert len(queue) == 2
    assert queue.get(0) == "a"
    assert queue.get(0) == "b"
    assert queue.get(0) is None


def test_a_key_in_flight_is_not_handed_out_twice_but_requeued_on_done() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a")
    assert queue.get(0) == "a"
    queue.add("a")  # changed while a worker holds it
    assert queue.get(0) is None
    queue.done("a")
    assert queue.get(0) == "a"
    queue.done("a")
    assert queue.get(0) is None


def test_a_key_added_first_goes_ahead_of_the_waiting_keys_even_when_it_waits_already() -> None:
    queue: WorkQueue[str] = WorkQueue()
    for key in ("a", "b", "c"):
        queue.add(key)
    queue.add("v", first=True)
    queue.add("c", first=True)  # waiting already: moved ahead, not queued twice
    assert [queue.get(0) for _ in range(5)] == ["c", "v", "a", "b", None]


def test_a_key_in_flight_added_first_is_requeued_first_on_done() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("v")
    assert queue.get(0) == "v"
    queue.add("a")
    queue.add("v", first=True)  # a verdict arrives while the worker still holds the key
    queue.done("v")
    assert [queue.get(0), queue.get(0)] == ["v", "a"]
    queue.done("v")
    queue.add("v")
    queue.add("b")
    assert queue.get(0) == "v"
    queue.add("v")
    queue.done("v")  # a plain add in flight goes to the back, as before
    assert [queue.get(0), queue.get(0)] == ["b", "v"]


def test_backoff_doubles_per_failure_is_capped_and_reset_by_forget() -> None:
    queue: WorkQueue[str] = WorkQueue(backoff_base=0.01, backoff_max=0.03)
    assert [queue.backoff("a") for _ in range(4)] == [0.01, 0.02, 0.03, 0.03]
    queue.forget("a")
    assert queue.backoff("a") == 0.01
    started = time.monotonic()
    assert queue.get(1) == "a"
    assert time.monotonic() - started < 0.5


def test_delayed_keys_wake_a_waiting_worker_and_shutdown_wakes_all() -> None:
    queue: WorkQueue[str] = WorkQueue()
    got: list[str | None] = []
    worker = threading.Thread(target=lambda: got.append(queue.get()))
    worker.start()
    queue.add_after("later", 0.05)
    worker.join(2)
    assert got == ["later"]
    waiters = [threading.Thread(target=lambda: got.append(queue.get())) for _ in range(3)]
    for w in waiters:
        w.start()
    queue.shutdown()
    for w in waiters:
        w.join(2)
    assert got == ["later", None, None, None]


# --- availability and weights ---------------------------------------------------------------------


def deploy(name: str, *, ready: bool = True, generation: int = 1, observed: int = 1, **meta: object) -> dict:
    return {
        "metadata": {"name": name, "namespace": "default", "generation": generation, **meta},
        "status": {
            "observedGeneration": observed,
            "conditions": [{"type": "Available", "status": "True" if ready else "False"}],
        },
    }


def svc(name: str, **meta: object) -> dict:
    return {"metadata": {"name": name, "namespace": "default", **meta}}


def rm(*names: str, weights=None):
    cm = routemap("app", app_versions(*names, weights=weights))
    cm["metadata"].update(namespace="default", uid="u-1")
    return parse_routemap(cm)


def lookup_from(objs: dict):
    return lambda kind, ns, name: objs.get((kind, name))


def test_plan_weights_and_availability() -> None:
    objs = {
        ("svc", "v1"): svc("v1"),
        ("deploy", "v1"): deploy("v1"),
        ("svc", "v2"): svc("v2", annotations={"iter8.tools/weight": "30"}),
        ("deploy", "v2"): deploy("v2"),
        ("svc", "v3"): svc("v3"),
        ("deploy", "v3"): deploy("v3", generation=2, observed=1),  # a stale Available
    }
    decided = plan(rm("v1", "v2", "v3", weights=[None, 10, 50]), lookup_from(objs), TYPES)
    assert decided.state == RoutingState(available=(True, True, False), weights=(1, 30, 0))
    assert (
        decided.versions[2].reason
        == 'deploy "default/v3": its status is for generation 1, the object is at generation 2'
    )
    assert decided.unavailable_resources() == {("svc", "default", "v3"), ("deploy", "default", "v3")}


def test_the_cached_view_of_a_resource_plans_the_same_as_the_resource() -> None:
    deleting = {"deletionTimestamp": "2026-12-04T00:00:00Z", "finalizers": ["iter8.tools/finalizer"]}
    objs = {
        ("svc", "v1"): svc("v1", annotations={"iter8.tools/weight": "5"}, resourceVersion="7"),
        ("deploy", "v1"): {
            **deploy("v1"),
            "spec": {"template": {"spec": {"containers": [{"image": "x" * 1000}]}}},
        },
        ("svc", "v2"): svc("v2", **deleting),
        ("deploy", "v2"): deploy("v2", ready=False),
        ("svc", "v3"): svc("v3"),
        ("deploy", "v3"): deploy("v3", generation=2, observed=1),
    }
    views = {key: cached_view(obj) for key, obj in objs.items()}
    routemap = rm("v1", "v2", "v3", weights=[None, 10, 50])
    assert plan(routemap, lookup_from(views), TYPES) == plan(routemap, lookup_from(objs), TYPES)
    assert "spec" not in views[("deploy", "v1")]
    assert views[("svc", "v2")]["metadata"]["finalizers"] == ["iter8.tools/finalizer"]
    assert finalizers.remove_patch(views[("svc", "v2")]) == finalizers.remove_patch(objs[("svc", "v2")])


def test_plan_first_annotated_resource_wins_and_bad_annotations_are_ignored() -> None:
    objs = {
        ("svc", "v1"): svc("v1", annotations={"iter8.tools/weight": "not-a-number"}),
        ("deploy", "v1"): deploy("v1", annotations={"iter8.tools/weight": "7"}),
    }
    assert plan(rm("v1", weights=[3]), lookup_from(objs), TYPES).state.weights == (7,)


@pytest.mark.parametrize(
    ("objs", "reason"),
    [
        ({}, 'svc "default/v2" does not exist or is not labelled iter8.tools/watch=true'),
        ({("svc", "v2"): svc("v2", deletionTimestamp="2026-01-01T00:00:00Z")}, "being deleted"),
        (
            {("svc", "v2"): svc("v2"), ("deploy", "v2"): deploy("v2", ready=False)},
            "condition Available is False",
        ),
    ],
)
def test_plan_unavailable_versions_get_zero_and_all_zero_means_primary(objs, reason) -> None:
    decided = plan(rm("v2", "v2b"), lookup_from(objs), TYPES)
    assert decided.state.weights == (1, 0)  # nothing available: the primary takes everything
    assert decided.state.available == (False, False)
    assert reason in (decided.versions[0].reason or "")


def test_unknown_resource_type_makes_the_version_unavailable() -> None:
    cm = routemap("app", [{"resources": [{"gvrShort": "nosuch", "name": "x"}]}])
    cm["metadata"].update(namespace="default", uid="u")
    decided = plan(parse_routemap(cm), lookup_from({}), TYPES)
    assert "unknown resource type 'nosuch'" in (decided.versions[0].reason or "")


def test_desired_objects_are_owned_stamped_and_compared_by_digest() -> None:
    routemap_ = rm("v1", "v2")
    [obj] = desired_objects(routemap_, RoutingState((True, True), (1, 1)), routers())
    meta = obj["metadata"]
    assert meta["namespace"] == "default"
    assert meta["ownerReferences"][0]["uid"] == "u-1"
    assert meta["labels"]["iter8.tools/routemap"] == "app"
    live = {**obj, "metadata": {**meta, "resourceVersion": "5", "uid": "x"}}
    assert up_to_date(live, obj)
    [other] = desired_objects(routemap_, RoutingState((True, False), (1, 0)), routers())
    assert other["metadata"]["annotations"][DIGEST_ANNOTATION] != meta["annotations"][DIGEST_ANNOTATION]
    assert not up_to_date(live, other)
    edited = {**live, "data": {**live["data"], "host": "someone-else"}}
    assert not up_to_date(edited, obj)
    assert not up_to_date(None, obj)


def test_router_problems_are_permanent_errors() -> None:
    cm = routemap("app", app_versions("v1"), router="nosuch")
    cm["metadata"].update(namespace="default", uid="u")
    with pytest.raises(PermanentError, match="unknown router 'nosuch'"):
        desired_objects(parse_routemap(cm), RoutingState((True,), (1,)), routers())
    cm = routemap("app", app_versions("v1"), host=3, extra=1)
    cm["metadata"].update(namespace="default", uid="u")
    with pytest.raises(
        PermanentError,
        match=r"^router test: routing\.host: input should be a valid string \(got 3\); routing\.extra: unknown field$",
    ):
        desired_objects(parse_routemap(cm), RoutingState((True,), (1,)), routers())


def test_a_router_that_raises_is_reported_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object) -> list:
        raise KeyError("weights")

    monkeypatch.setattr(RouteListRouter, "render", boom)
    with pytest.raises(PermanentError, match="router 'test' failed: KeyError"):
        desired_objects(rm("v1"), RoutingState((True,), (1,)), routers())


# --- finalizers -----------------------------------------------------------------------------------


def test_finalizer_patches_are_idempotent() -> None:
    live = {"metadata": {"name": "x", "resourceVersion": "4", "finalizers": ["other"]}}
    patch = finalizers.add_patch(live)
    assert patch == {"metadata": {"finalizers": ["other", "iter8.tools/finalizer"], "resourceVersion": "4"}}
    added = {"metadata": {**live["metadata"], "finalizers": patch["metadata"]["finalizers"]}}
    assert finalizers.add_patch(added) is None
    assert finalizers.remove_patch(live) is None
    assert finalizers.remove_patch(added) == {"metadata": {"finalizers": ["other"], "resourceVersion": "4"}}
    only = {"metadata": {"finalizers": ["iter8.tools/finalizer"] * 2, "resourceVersion": "5"}}
    assert finalizers.remove_patch(only) == {"metadata": {"finalizers": None, "resourceVersion": "5"}}
    deleting = {"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"}}
    assert finalizers.add_patch(deleting) is None


# --- settings and metrics -------------------------------------------------------------------------


def test_config_file_adds_resource_types(tmp_path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "resourceTypes:\n"
        "  ksvc: {Group: serving.knative.dev, Version: v1, Resource: services, conditions: [Ready]}\n"
        "  old: {group: x.io, version: v1, resource: things, kind: Thing, conditions: [{name: Ready, status: 'True'}]}\n"
        "defaultResync: 2m\nworkers: 3\n"
    )
    settings = load_config(path, Settings())
    assert settings.resync_period == 120
    assert settings.workers == 3
    ksvc, old = settings.extra_resource_types
    assert (ksvc.name, ksvc.group, ksvc.resource, ksvc.conditions) == (
        "ksvc",
        "serving.knative.dev",
        "services",
        ("Ready",),
    )
    assert (old.kind, old.conditions) == ("Thing", ("Ready",))
    path.write_text("resourceTypes: {bad: {group: x}}\n")
    with pytest.raises(UsageError, match="resourceTypes.bad: version and resource are required"):
        load_config(path, Settings())
    path.write_text("nosuch: 1\n")
    with pytest.raises(UsageError, match="unknown keys nosuch"):
        load_config(path, Settings())
    with pytest.raises(UsageError, match="renew deadline"):
        Settings(leader_elect=True, lease_duration=1, renew_deadline=2)


def test_metrics_text_format() -> None:
    metrics = Metrics()
    metrics.reconciled("success", 0.02)
    metrics.reconciled("error", 3.0)
    metrics.set_weights("default", "app", {"v1": 90, "v2": 10})
    metrics.set_weights("default", "gone", {"v1": 1})
    metrics.set_weights("default", "gone", None)
    metrics.set_rollout("default", "app", "Progressing")
    metrics.set_rollout("default", "gone", "Promoted")
    metrics.set_rollout("default", "gone", None)
    metrics.rollout_transition("RolloutStep")
    metrics.rollout_transition("RolloutStep")
    metrics.queue_depth = lambda: 4
    text = metrics.render()
    assert 'iter8_controller_reconciles_total{result="success"} 1' in text
    assert 'iter8_controller_reconcile_duration_seconds_bucket{le="0.025"} 1' in text
    assert 'iter8_controller_reconcile_duration_seconds_bucket{le="+Inf"} 2' in text
    assert "iter8_controller_reconcile_duration_seconds_count 2" in text
    assert 'iter8_controller_applied_weight{namespace="default",routemap="app",version="v2"} 10' in text
    assert "gone" not in text
    assert "iter8_controller_queue_depth 4" in text
    assert 'iter8_controller_rollout_phase{namespace="default",phase="Progressing",routemap="app"} 1' in text
    assert 'iter8_controller_rollout_transitions_total{reason="RolloutStep"} 2' in text
    assert "# TYPE iter8_controller_reconcile_duration_seconds histogram" in text


def test_applied_weights_render_again_only_when_they_change() -> None:
    metrics = Metrics()
    metrics.set_weights("default", "app", {"v1": 90, "v2": 10})
    first = metrics.render()
    metrics.set_weights("default", "app", {"v1": 90, "v2": 10})  # a resync: the same weights
    assert metrics._weight_text is not None
    assert metrics.render() == first
    metrics.set_weights("default", "app", {"v1": 50, "v2": 50})
    assert metrics._weight_text is None
    assert (
        'iter8_controller_applied_weight{namespace="default",routemap="app",version="v2"} 50'
        in metrics.render()
    )
    metrics.set_weights("default", "app", None)
    assert "routemap=" not in metrics.render()


# --- the invariant checker can fail -----------------------------------------------------------------


def _history(candidate_ready: bool, routed: list[int], *, second_write_after_deletion: bool = False):
    import json

    cm = routemap("app", app_versions("v1", "v2"))
    cm["metadata"].update(namespace="default", uid="rm-uid", resourceVersion="1")
    objs = [
        ("configmaps", cm),
        (
            "services",
            {"metadata": {"name": "v1", "namespace": "default", "labels": {"iter8.tools/watch": "true"}}},
        ),
        (
            "services",
            {"metadata": {"name": "v2", "namespace": "default", "labels": {"iter8.tools/watch": "true"}}},
        ),
        (
            "deployments.apps",
            {
                **deploy("v1"),
                "metadata": {**deploy("v1")["metadata"], "labels": {"iter8.tools/watch": "true"}},
            },
        ),
        (
            "deployments.apps",
            {
                **deploy("v2", ready=candidate_ready),
                "metadata": {**deploy("v2")["metadata"], "labels": {"iter8.tools/watch": "true"}},
            },
        ),
    ]
    events = [Event(rv, "ADDED", res, None, obj) for rv, (res, obj) in enumerate(objs, start=1)]
    routing = {
        "metadata": {
            "name": "app-routing",
            "namespace": "default",
            "labels": {"iter8.tools/routemap": "app"},
            "ownerReferences": [{"uid": "rm-uid"}],
        },
        "data": {"routes": json.dumps([{"version": i, "weight": 1} for i in routed])},
    }
    rv = len(events) + 1
    events.append(Event(rv, "ADDED", "configmaps", None, routing))
    audit = [AuditRecord("create", "configmaps", "default", "app-routing", str(rv), 0.0)]
    if second_write_after_deletion:
        deleting = {**objs[4][1], "metadata": {**objs[4][1]["metadata"], "deletionTimestamp": "now"}}
        events.append(Event(rv + 1, "MODIFIED", "deployments.apps", objs[4][1], deleting))
        events.append(Event(rv + 2, "MODIFIED", "configmaps", routing, routing))
        audit.append(AuditRecord("patch", "configmaps", "default", "app-routing", str(rv + 2), 0.0))
    return audit, events


def test_the_invariant_checker_accepts_a_good_history() -> None:
    assert violations(*_history(True, [0, 1])) == (1, [])
    assert violations(*_history(False, [0])) == (1, [])


def test_the_invariant_checker_catches_traffic_to_an_unready_version() -> None:
    checked, problems = violations(*_history(False, [0, 1]))
    assert checked == 1
    assert problems == [
        "rv 6: None default/app-routing: sends traffic to version 1, unavailable at that moment"
    ]


def test_the_invariant_checker_catches_traffic_to_a_deleting_version() -> None:
    checked, problems = violations(*_history(True, [0, 1], second_write_after_deletion=True))
    assert checked == 2
    assert len(problems) == 1
    assert "rv 8" in problems[0]


def test_the_invariant_checker_allows_the_primary_only_when_nothing_is_available() -> None:
    audit, events = _history(False, [0])
    # make the primary unready too: still fine, it is the documented fallback
    events[3] = Event(4, "ADDED", "deployments.apps", None, {**events[3].new, "status": {}})
    assert violations(audit, events) == (1, [])
    audit, events = _history(False, [1])
    events[3] = Event(4, "ADDED", "deployments.apps", None, {**events[3].new, "status": {}})
    assert violations(audit, events)[1]


def test_the_invariant_checker_catches_a_deletion_that_was_not_drained() -> None:
    audit, events = _history(True, [0, 1])
    candidate = events[4].new
    events.append(Event(7, "DELETED", "deployments.apps", candidate, candidate))
    _, problems = violations(audit, events)
    assert problems == [
        "rv 7: deployments.apps default/v2 deleted while app-routing still sends traffic to version 1"
    ]
    audit, events = _history(True, [0])  # routed away first: fine
    events.append(Event(7, "DELETED", "deployments.apps", events[4].new, events[4].new))
    assert violations(audit, events) == (1, [])
