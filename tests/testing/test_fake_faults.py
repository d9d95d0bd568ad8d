"""Fault injection, 403 denials, the audit log, the request log and reset()."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from kubectl_iter8.testing import AuditRecord


@pytest.fixture
def core(fake_kube):
    cfg = client.Configuration()
    config.load_kube_config(config_file=str(fake_kube.kubeconfig), client_configuration=cfg)
    cfg.retries = 0  # urllib3 would retry 429/500 on its own otherwise
    with client.ApiClient(cfg) as api:
        yield client.CoreV1Api(api)


def cm(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}}


@pytest.mark.parametrize(
    ("code", "reason"), [(409, "Conflict"), (429, "TooManyRequests"), (500, "InternalError")]
)
def test_fail_next_answers_the_status_then_recovers(core, fake_kube, code, reason):
    fake_kube.create(cm("x"))
    fake_kube.faults.fail_next("patch", "configmaps", status=code, times=2)
    for _ in range(2):
        with pytest.raises(ApiException) as err:
            core.patch_namespaced_config_map("x", "default", {"data": {"a": "1"}})
        assert err.value.status == code
        assert json.loads(err.value.body)["reason"] == reason
    if code == 429:
        assert err.value.headers["Retry-After"] == "1"
    assert core.patch_namespaced_config_map("x", "default", {"data": {"a": "1"}}).data == {"a": "1"}
    # Other verbs and resources were never affected.
    assert fake_kube.get("configmaps", "x")["data"] == {"a": "1"}


def test_fail_next_matches_verb_resource_namespace_and_name(core, fake_kube):
    fake_kube.create(cm("a"))
    fake_kube.create(cm("b"))
    fake_kube.faults.fail_next("get", "cm", status=500, name="b", times=None)
    assert core.read_namespaced_config_map("a", "default").metadata.name == "a"
    for _ in range(3):
        with pytest.raises(ApiException):
            core.read_namespaced_config_map("b", "default")
    assert len(core.list_namespaced_config_map("default").items) == 2
    fake_kube.faults.reset()
    assert core.read_namespaced_config_map("b", "default").metadata.name == "b"
    with pytest.raises(ValueError, match="unknown verb"):
        fake_kube.faults.fail_next("fetch")


def test_failed_writes_change_nothing_and_are_not_audited(core, fake_kube):
    fake_kube.faults.fail_next("create", status=500)
    with pytest.raises(ApiException):
        core.create_namespaced_config_map("default", {"metadata": {"name": "nope"}})
    assert not fake_kube.exists("configmaps", "nope")
    assert fake_kube.audit == []


def test_latency_slows_every_request(core, fake_kube):
    fake_kube.faults.latency = 0.2
    started = time.monotonic()
    core.list_namespaced_config_map("default")
    assert time.monotonic() - started >= 0.2


def test_forbid_answers_403_like_rbac(core, fake_kube):
    fake_kube.forbid("list", "secrets", namespace="default")
    proc = fake_kube.kubectl("get", "secrets")
    assert proc.returncode == 1
    assert "Error from server (Forbidden)" in proc.stderr
    assert 'cannot list resource "secrets" in API group "" in the namespace "default"' in proc.stderr
    with pytest.raises(ApiException) as err:
        core.list_namespaced_secret("default")
    assert err.value.status == 403
    assert core.list_namespaced_secret("kube-system").items == []


def test_drop_watches_ends_client_streams(fake_kube):
    from kubernetes.aio import client as aio_client
    from kubernetes.aio import config as aio_config
    from kubernetes.aio import watch as aio_watch

    async def scenario() -> list[str]:
        cfg = aio_client.Configuration()
        await aio_config.load_kube_config(config_file=str(fake_kube.kubeconfig), client_configuration=cfg)
        seen: list[str] = []
        async with aio_client.ApiClient(cfg) as api:
            core = aio_client.CoreV1Api(api)

            async def consume() -> None:
                async with aio_watch.Watch() as w:
                    async for event in w.stream(
                        core.list_namespaced_config_map, "default", timeout_seconds=30
                    ):
                        seen.append(event["object"].metadata.name)

            task = asyncio.create_task(consume())
            while not fake_kube.open_watches:
                await asyncio.sleep(0.02)
            fake_kube.create(cm("live"))
            await asyncio.sleep(0.1)
            assert fake_kube.faults.drop_watches() == 1
            await asyncio.wait_for(task, 5)
        return seen

    assert asyncio.run(scenario()) == ["live"]


def test_audit_log_records_every_write(fake_kube):
    proc = fake_kube.kubectl("apply", "-f", "-", input=json.dumps(cm("audited")))
    assert proc.returncode == 0, proc.stderr
    fake_kube.kubectl("label", "cm", "audited", "x=y")
    fake_kube.kubectl("label", "cm", "audited", "x=y", "--overwrite")  # no-op: not a write
    fake_kube.patch("configmaps", "audited", {"data": {"k": "v"}})
    fake_kube.kubectl("delete", "cm", "audited")
    records = fake_kube.audit
    assert all(isinstance(r, AuditRecord) for r in records)
    assert [(r.verb, r.resource, r.namespace, r.name, r.source) for r in records] == [
        ("create", "configmaps", "default", "audited", "api"),
        ("patch", "configmaps", "default", "audited", "api"),
        ("patch", "configmaps", "default", "audited", "test"),
        ("delete", "configmaps", "default", "audited", "api"),
    ]
    versions = [int(r.resource_version) for r in records]
    assert versions == sorted(versions)
    assert len(set(versions)) == 4
    assert all(r.time > 0 for r in records)
    assert any(r.method == "DELETE" and r.status == 200 for r in fake_kube.requests)


def test_reset_keeps_crds_unless_asked(fake_kube):
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wd"]},
            "versions": [{"name": "v1", "served": True, "storage": True, "subresources": {"status": {}}}],
        },
    }
    fake_kube.create(crd)
    fake_kube.create({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}})
    fake_kube.create(cm("gone"))
    fake_kube.faults.latency = 1.0
    fake_kube.reset()
    assert fake_kube.faults.latency == 0
    assert fake_kube.list("configmaps") == []
    assert fake_kube.list("widgets") == []
    assert fake_kube.kubectl("get", "wd", "-o", "name").returncode == 0
    assert fake_kube.exists("namespaces", "default")
    fake_kube.reset(keep_crds=False)
    with pytest.raises(KeyError):
        fake_kube.resource("widgets")


def test_abortive_watch_drop_is_a_connection_error(core, fake_kube):
    from kubernetes import watch

    def later() -> None:
        fake_kube.wait_for_watches()
        fake_kube.create(cm("seen"))
        fake_kube.faults.drop_watches(abort=True)

    thread = threading.Thread(target=later)
    thread.start()
    seen: list[str] = []

    def consume() -> None:
        for event in watch.Watch().stream(core.list_namespaced_config_map, "default", timeout_seconds=10):
            seen.append(event["object"].metadata.name)

    with pytest.raises(Exception, match="Response ended prematurely"):
        consume()
    thread.join()
    assert seen == ["seen"]
