"""What kubectl_iter8.kube gained for the controller, against the fake: versioned lists, watch
streams (events, 410, closing from another thread), server-side apply, discovery and Events."""

from __future__ import annotations

import threading
import time

import pytest

from kubectl_iter8.errors import KubeForbiddenError, UsageError
from kubectl_iter8.kube import CONFIGMAPS, DEPLOYMENTS, GVR, Kube
from kubectl_iter8.testing import FakeKube


@pytest.fixture
def client(fake_kube: FakeKube):
    with Kube() as api:
        yield api


def cm(name: str, **data: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": {"w": "1"}},
        "data": data,
    }


def test_list_versioned_and_watch_from_it(client: Kube, fake_kube: FakeKube) -> None:
    fake_kube.create(cm("a"))
    fake_kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}})
    fake_kube.create(cm("b"), namespace="other")
    items, rv = client.list_versioned(CONFIGMAPS, None, label_selector="w=1")
    assert sorted(i["metadata"]["name"] for i in items) == ["a", "b"]
    assert items[0]["kind"] == "ConfigMap"
    stream = client.watch(CONFIGMAPS, "default", label_selector="w=1", resource_version=rv, timeout_seconds=5)
    fake_kube.create(cm("c"))
    fake_kube.create(cm("unlabelled") | {"metadata": {"name": "unlabelled"}})
    fake_kube.delete("configmaps", "a")
    seen = []
    for event in stream:
        seen.append((event["type"], event["object"]["metadata"]["name"]))
        if len(seen) == 2:
            stream.close()
    assert seen == [("ADDED", "c"), ("DELETED", "a")]


def test_lists_come_in_pages_each_item_transformed_as_its_page_arrives(
    client: Kube, fake_kube: FakeKube
) -> None:
    for index in range(7):
        fake_kube.create(cm(f"c{index}", big="x" * 1000))
    seen: list[str] = []

    def slim(obj: dict) -> dict:
        seen.append(obj["metadata"]["name"])
        return {"metadata": {"name": obj["metadata"]["name"]}}

    _, first = client.list_versioned(CONFIGMAPS, "default", page_size=3)
    before = len(fake_kube.requests)
    items, rv = client.list_versioned(
        CONFIGMAPS, "default", label_selector="w=1", page_size=3, transform=slim
    )
    assert [i["metadata"]["name"] for i in items] == [f"c{index}" for index in range(7)]
    assert all("data" not in i for i in items)
    assert seen == [f"c{index}" for index in range(7)]
    base = "/api/v1/namespaces/default/configmaps?labelSelector=w%3D1&limit=3"
    assert [r.path for r in fake_kube.requests[before:]] == [base, f"{base}&continue=3", f"{base}&continue=6"]
    assert rv == first


def test_a_compacted_history_is_a_410_error_event(client: Kube, fake_kube: FakeKube) -> None:
    _, rv = client.list_versioned(CONFIGMAPS, "default")
    fake_kube.create(cm("a"))
    fake_kube.compact()
    events = list(client.watch(CONFIGMAPS, "default", resource_version=rv, timeout_seconds=2))
    assert [(e["type"], e["object"]["code"]) for e in events] == [("ERROR", 410)]


def test_closing_a_watch_from_another_thread_ends_it_at_once(client: Kube) -> None:
    stream = client.watch(CONFIGMAPS, "default", timeout_seconds=60)
    threading.Timer(0.2, stream.close).start()
    started = time.monotonic()
    assert list(stream) == []
    assert time.monotonic() - started < 5


def test_watch_errors_are_kube_errors(client: Kube, fake_kube: FakeKube) -> None:
    fake_kube.forbid("watch", "configmaps")
    with pytest.raises(KubeForbiddenError):
        client.watch(CONFIGMAPS, "default")


def test_server_side_apply_creates_then_updates(client: Kube, fake_kube: FakeKube) -> None:
    created = client.apply_server_side(
        CONFIGMAPS, cm("x", a="1"), "default", field_manager="iter8-controller"
    )
    assert created["data"] == {"a": "1"}
    client.apply_server_side(CONFIGMAPS, cm("x", a="2"), "default", field_manager="iter8-controller")
    assert fake_kube.get("configmaps", "x")["data"] == {"a": "2"}
    patches = [r for r in fake_kube.requests if r.method == "PATCH"]
    assert all("fieldManager=iter8-controller" in r.path and "force=true" in r.path for r in patches)


def test_resource_for_uses_discovery(client: Kube, fake_kube: FakeKube) -> None:
    assert client.resource_for("apps/v1", "Deployment") == DEPLOYMENTS
    assert client.resource_for("v1", "ConfigMap") == CONFIGMAPS
    assert client.resource_for("v1", "Namespace") == GVR("", "v1", "namespaces", namespaced=False)
    with pytest.raises(UsageError, match="does not serve kind 'VirtualService'"):
        client.resource_for("networking.istio.io/v1", "VirtualService")


def test_record_event(client: Kube, fake_kube: FakeKube) -> None:
    target = fake_kube.create(cm("rm"))
    client.record_event(target, reason="RoutingApplied", message="weights v1=1")
    [event] = fake_kube.list("events", "default")
    assert event["involvedObject"]["name"] == "rm"
    assert event["involvedObject"]["uid"] == target["metadata"]["uid"]
    assert (event["reason"], event["type"], event["source"]["component"]) == (
        "RoutingApplied",
        "Normal",
        "iter8-controller",
    )
