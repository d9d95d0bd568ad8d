"""The Kubernetes access layer against the fake API server: generic CRUD, retries, and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kubectl_iter8.errors import (
    KubeConflictError,
    KubeForbiddenError,
    KubeNotFoundError,
    KubeUnreachableError,
    UsageError,
)
from kubectl_iter8.kube import DEPLOYMENTS, GVR, SECRETS, Kube, KubeOptions
from kubectl_iter8.testing import FakeKube

CONFIGMAPS = GVR("", "v1", "configmaps")


@pytest.fixture
def kube(fake_kube: FakeKube) -> Kube:
    with Kube() as client:
        yield client


def configmap(name: str, **data: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": {"app": "x"}},
        "data": data,
    }


def test_crud_on_any_resource(kube: Kube, fake_kube: FakeKube) -> None:
    created = kube.create(CONFIGMAPS, configmap("one", a="1"))
    assert created["metadata"]["namespace"] == "default"
    assert kube.get(CONFIGMAPS, "one")["data"] == {"a": "1"}
    kube.create(CONFIGMAPS, {**configmap("two"), "metadata": {"name": "two"}})
    assert [o["metadata"]["name"] for o in kube.list(CONFIGMAPS, label_selector="app=x")] == ["one"]
    patched = kube.patch(CONFIGMAPS, "one", {"data": {"b": "2"}})
    assert patched["data"] == {"a": "1", "b": "2"}
    assert kube.patch(CONFIGMAPS, "one", [{"op": "remove", "path": "/data/a"}], kind="json")["data"] == {
        "b": "2"
    }
    assert kube.delete(CONFIGMAPS, "one") is True
    assert kube.delete(CONFIGMAPS, "one") is False
    assert kube.find(CONFIGMAPS, "one") is None
    assert not fake_kube.exists("configmaps", "one")


def test_apply_creates_then_replaces(kube: Kube) -> None:
    kube.apply(CONFIGMAPS, configmap("cfg", a="1"))
    kube.apply(CONFIGMAPS, configmap("cfg", a="2"))
    assert kube.get(CONFIGMAPS, "cfg")["data"] == {"a": "2"}


def test_update_retries_when_someone_else_wrote_first(kube: Kube, fake_kube: FakeKube) -> None:
    kube.create(CONFIGMAPS, configmap("race", n="0"))
    calls = 0

    def bump(obj: dict) -> dict:
        nonlocal calls
        calls += 1
        if calls == 1:  # another writer changes the object between our read and our write
            fake_kube.patch("configmaps", "race", {"data": {"other": "yes"}})
        obj["data"]["n"] = str(int(obj["data"]["n"]) + 1)
        return obj

    result = kube.update(CONFIGMAPS, "race", bump)
    assert calls == 2
    assert result["data"] == {"n": "1", "other": "yes"}


@pytest.mark.parametrize("status", [429, 500, 503])
def test_transient_answers_are_retried(kube: Kube, fake_kube: FakeKube, status: int) -> None:
    kube.create(CONFIGMAPS, configmap("flaky"))
    fake_kube.faults.fail_next("get", "configmaps", status=status, times=2)
    assert kube.get(CONFIGMAPS, "flaky")["metadata"]["name"] == "flaky"


def test_errors_are_one_line_and_typed(kube: Kube, fake_kube: FakeKube) -> None:
    with pytest.raises(KubeNotFoundError) as missing:
        kube.get(SECRETS, "x", "default")
    assert str(missing.value) == 'secret "x" not found in namespace "default"'
    with pytest.raises(KubeNotFoundError) as no_ns:
        kube.create(CONFIGMAPS, configmap("a"), "nosuchns")
    assert str(no_ns.value) == 'namespace "nosuchns" not found'
    kube.create(CONFIGMAPS, configmap("dup"))
    with pytest.raises(KubeConflictError) as dup:
        kube.create(CONFIGMAPS, configmap("dup"))
    assert str(dup.value) == 'configmap "dup" already exists in namespace "default"'
    fake_kube.forbid("list", "deployments")
    with pytest.raises(KubeForbiddenError, match="^forbidden: "):
        kube.list(DEPLOYMENTS)
    fake_kube.faults.fail_next("get", "configmaps", status=500, times=10)
    with pytest.raises(Exception, match='the API server refused the request for configmap "dup"'):
        kube.get(CONFIGMAPS, "dup")


def test_namespace_and_context_come_from_the_kubeconfig(fake_kube: FakeKube, tmp_path: Path) -> None:
    config = yaml.safe_load(Path(fake_kube.kubeconfig).read_text())
    context = dict(config["contexts"][0])
    config["contexts"].append({"name": "other", "context": {**context["context"], "namespace": "team-a"}})
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    with Kube(KubeOptions(kubeconfig=str(path))) as kube:
        assert kube.namespace == "default"
    with Kube(KubeOptions(kubeconfig=str(path), context="other")) as kube:
        assert kube.namespace == "team-a"
    with Kube(KubeOptions(kubeconfig=str(path), context="other", namespace="flag")) as kube:
        assert kube.namespace == "flag"
    with pytest.raises(UsageError, match="kubeconfig: .*nope"):
        Kube(KubeOptions(kubeconfig=str(path), context="nope"))
    with pytest.raises(UsageError, match="--kubeconfig: .*missing.yaml: no such file"):
        Kube(KubeOptions(kubeconfig=str(tmp_path / "missing.yaml")))


def test_a_server_that_does_not_answer(tmp_path: Path) -> None:
    path = tmp_path / "dead"
    path.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: d\nclusters: [{name: d, cluster: {server: 'http://127.0.0.1:9'}}]\n"
        "users: [{name: u, user: {token: t}}]\ncontexts: [{name: d, context: {cluster: d, user: u}}]\n"
    )
    with Kube(KubeOptions(kubeconfig=str(path))) as kube, pytest.raises(KubeUnreachableError) as info:
        kube.get(SECRETS, "x")
    assert (
        str(info.value) == "cannot reach the Kubernetes API server at http://127.0.0.1:9: connection refused"
    )


def counting_auth(kube: Kube, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the times the kubeconfig loader is asked for the Authorization header."""
    calls: list[int] = []
    ask = kube.api.update_params_for_auth

    def counted(*args: object, **kwargs: object) -> None:
        calls.append(1)
        ask(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(kube.api, "update_params_for_auth", counted)
    return calls


def test_the_token_is_asked_for_once_a_second_not_per_request(
    kube: Kube, monkeypatch: pytest.MonkeyPatch
) -> None:
    kube.create(CONFIGMAPS, configmap("often"))
    calls = counting_auth(kube, monkeypatch)
    kube._auth_cache = None
    for _ in range(50):
        kube.get(CONFIGMAPS, "often")
    assert len(calls) == 1
    monkeypatch.setattr("kubectl_iter8.kube.AUTH_REFRESH", 0.0)
    kube.get(CONFIGMAPS, "often")
    assert len(calls) == 2


def test_a_401_asks_for_a_fresh_token_once(
    kube: Kube, fake_kube: FakeKube, monkeypatch: pytest.MonkeyPatch
) -> None:
    kube.create(CONFIGMAPS, configmap("expiring"))
    kube.get(CONFIGMAPS, "expiring")
    calls = counting_auth(kube, monkeypatch)
    fake_kube.faults.fail_next("get", "configmaps", status=401)
    assert kube.get(CONFIGMAPS, "expiring")["metadata"]["name"] == "expiring"
    assert len(calls) == 1, "the remembered token was refused: a fresh one was asked for"
    fake_kube.faults.fail_next("get", "configmaps", status=401, times=2)
    with pytest.raises(Exception, match="401|nauthorized"):
        kube.get(CONFIGMAPS, "expiring")
