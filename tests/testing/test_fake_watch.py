"""Watches: kubectl get --watch, kubernetes.watch (sync and aio), resourceVersion, timeouts, 410 Gone."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
import urllib.request

import pytest
from kubernetes import client, config, watch
from kubernetes.aio import client as aio_client
from kubernetes.aio import config as aio_config
from kubernetes.aio import watch as aio_watch
from kubernetes.client.rest import ApiException

from kubectl_iter8.testing import FakeKube


def cm(name: str, **labels: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels}}


@pytest.fixture
def api(fake_kube):
    cfg = client.Configuration()
    config.load_kube_config(config_file=str(fake_kube.kubeconfig), client_configuration=cfg)
    with client.ApiClient(cfg) as api_client:
        yield api_client


def raw_lines(kube: FakeKube, path: str) -> tuple[str, list[dict]]:
    with urllib.request.urlopen(kube.url + path, timeout=10) as resp:
        return resp.headers["Content-Type"], [json.loads(line) for line in resp.read().splitlines()]


def test_kubectl_get_watch_sees_changes_and_ends_when_the_watch_drops(fake_kube):
    fake_kube.create(cm("first"))
    proc = subprocess.Popen(
        [
            *("kubectl", "get", "cm", "--watch", "--output-watch-events"),
            *("-o", "custom-columns=EVENT:.type,N:.object.metadata.name"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **fake_kube.env()},
    )
    try:
        fake_kube.wait_for_watches()
        fake_kube.create(cm("second"))
        fake_kube.patch("configmaps", "second", {"data": {"a": "1"}})
        fake_kube.delete("configmaps", "second")
        time.sleep(0.2)
        assert fake_kube.faults.drop_watches() == 1
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    lines = [line.split() for line in out.splitlines()]
    assert lines == [
        ["EVENT", "N"],
        ["ADDED", "first"],
        ["ADDED", "second"],
        ["MODIFIED", "second"],
        ["DELETED", "second"],
    ]
    assert proc.returncode == 0, err


def test_watch_from_resource_version_with_timeout(api, fake_kube):
    core = client.CoreV1Api(api)
    fake_kube.create(cm("before"))
    rv = core.list_namespaced_config_map("default").metadata.resource_version
    fake_kube.create(cm("w1"))
    fake_kube.patch("configmaps", "w1", {"data": {"k": "v"}})
    fake_kube.delete("configmaps", "w1")
    started = time.monotonic()
    events = [
        (e["type"], e["object"].metadata.name, e["object"].metadata.resource_version)
        for e in watch.Watch().stream(
            core.list_namespaced_config_map, "default", resource_version=rv, timeout_seconds=1
        )
    ]
    elapsed = time.monotonic() - started
    assert [e[:2] for e in events] == [("ADDED", "w1"), ("MODIFIED", "w1"), ("DELETED", "w1")]
    assert [int(e[2]) for e in events] == sorted(int(e[2]) for e in events)
    assert int(events[0][2]) > int(rv)
    assert 0.9 < elapsed < 5


def test_too_old_resource_version_is_410_gone(api, fake_kube):
    core = client.CoreV1Api(api)
    fake_kube.create(cm("a"))
    rv = core.list_namespaced_config_map("default").metadata.resource_version
    fake_kube.create(cm("b"))
    fake_kube.compact()
    with pytest.raises(ApiException) as err:
        list(
            watch.Watch().stream(
                core.list_namespaced_config_map, "default", resource_version=rv, timeout_seconds=1
            )
        )
    assert err.value.status == 410
    content_type, lines = raw_lines(
        fake_kube, f"/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={rv}"
    )
    assert content_type == "application/json"
    assert lines == [
        {
            "type": "ERROR",
            "object": {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Failure",
                "message": f"too old resource version: {rv} ({fake_kube.resource_version + 1})",
                "reason": "Expired",
                "code": 410,
            },
        }
    ]


def test_history_window_bounds_resource_versions():
    with FakeKube(history=3) as kube:
        first = kube.create(cm("a"))["metadata"]["resourceVersion"]
        for name in "bcd":
            kube.create(cm(name))
        with pytest.raises(Exception, match="too old resource version"):
            kube.store.events_since("configmaps", int(first) - 1)
        assert [e.new["metadata"]["name"] for e in kube.store.events_since("configmaps", int(first) + 1)] == [
            "c",
            "d",
        ]


def test_watch_without_resource_version_starts_with_current_objects(fake_kube):
    fake_kube.create(cm("x", app="a"))
    fake_kube.create(cm("y", app="b"))
    _, lines = raw_lines(
        fake_kube, "/api/v1/namespaces/default/configmaps?watch=1&labelSelector=app%3Da&timeoutSeconds=0.2"
    )
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in lines] == [("ADDED", "x")]


def test_send_initial_events_ends_with_a_bookmark(fake_kube):
    fake_kube.create(cm("x"))
    _, lines = raw_lines(
        fake_kube,
        "/api/v1/namespaces/default/configmaps?watch=1&sendInitialEvents=true&allowWatchBookmarks=true"
        "&resourceVersionMatch=NotOlderThan&timeoutSeconds=0.2",
    )
    assert [e["type"] for e in lines] == ["ADDED", "BOOKMARK"]
    assert lines[1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


def test_selector_transitions_become_added_and_deleted(api, fake_kube):
    core = client.CoreV1Api(api)
    rv = core.list_namespaced_config_map("default").metadata.resource_version
    fake_kube.create(cm("t"))
    fake_kube.patch("configmaps", "t", {"metadata": {"labels": {"watched": "yes"}}})
    fake_kube.patch("configmaps", "t", {"data": {"a": "1"}})
    fake_kube.patch("configmaps", "t", {"metadata": {"labels": {"watched": None}}})
    fake_kube.create(cm("other"))
    events = [
        (e["type"], e["object"].metadata.name)
        for e in watch.Watch().stream(
            core.list_namespaced_config_map,
            "default",
            resource_version=rv,
            label_selector="watched=yes",
            timeout_seconds=1,
        )
    ]
    assert events == [("ADDED", "t"), ("MODIFIED", "t"), ("DELETED", "t")]


def test_namespaced_watch_sees_objects_created_without_namespace_in_body(api, fake_kube):
    core = client.CoreV1Api(api)
    rv = core.list_namespaced_config_map("default").metadata.resource_version
    core.create_namespaced_config_map(
        "default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="nons"))
    )
    fake_kube.create(cm("elsewhere"), namespace="kube-system")
    events = [
        e["object"].metadata.name
        for e in watch.Watch().stream(
            core.list_namespaced_config_map, "default", resource_version=rv, timeout_seconds=1
        )
    ]
    assert events == ["nons"]


def test_aio_client_list_and_watch(fake_kube):
    async def scenario() -> list[tuple[str, str]]:
        cfg = aio_client.Configuration()
        await aio_config.load_kube_config(config_file=str(fake_kube.kubeconfig), client_configuration=cfg)
        async with aio_client.ApiClient(cfg) as api:
            core = aio_client.CoreV1Api(api)
            await core.create_namespaced_config_map(
                "default", {"metadata": {"name": "aio0", "labels": {"w": "y"}}}
            )
            listed = await core.list_namespaced_config_map("default", label_selector="w=y")
            assert [i.metadata.name for i in listed.items] == ["aio0"]
            rv = listed.metadata.resource_version
            await core.create_namespaced_config_map(
                "default", {"metadata": {"name": "aio1", "labels": {"w": "y"}}}
            )
            await core.create_namespaced_config_map("default", {"metadata": {"name": "aio2"}})
            events = []
            async with aio_watch.Watch() as w:
                async for event in w.stream(
                    core.list_namespaced_config_map,
                    "default",
                    label_selector="w=y",
                    resource_version=rv,
                    timeout_seconds=1,
                ):
                    events.append((event["type"], event["object"].metadata.name))
            return events

    assert asyncio.run(scenario()) == [("ADDED", "aio1")]


def test_watch_of_custom_resources_and_single_object(fake_kube):
    fake_kube.create(cm("one"))
    fake_kube.create(cm("two"))
    _, lines = raw_lines(
        fake_kube,
        "/api/v1/namespaces/default/configmaps?watch=true&fieldSelector=metadata.name%3Dtwo&timeoutSeconds=0.2",
    )
    assert [e["object"]["metadata"]["name"] for e in lines] == ["two"]
    _, lines = raw_lines(fake_kube, "/api/v1/watch/namespaces/default/configmaps/one?timeoutSeconds=0.2")
    assert [e["object"]["metadata"]["name"] for e in lines] == ["one"]
