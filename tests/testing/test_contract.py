"""The fake against the real kube-apiserver: the same requests, the same answers.

Each check here runs on both tiers. Where the real server was seen to behave differently from the fake
(docs/testing.md lists the differences), the check pins the real behaviour, so the fake cannot drift
from it again unnoticed.
"""

from __future__ import annotations

import pytest
from tiers import crds_dir

from kubectl_iter8.testing import ApiError, FakeKube
from kubectl_iter8.testing.real import RealKube

Kube = FakeKube | RealKube


@pytest.fixture(params=["fake", "real"])
def kube(request: pytest.FixtureRequest) -> Kube:
    backend: Kube = request.getfixturevalue(f"{request.param}_kube")
    return backend


def httproute(name: str, **rule: object) -> dict[str, object]:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": name},
        "spec": {
            "parentRefs": [{"name": "gw"}],
            "rules": [{"backendRefs": [{"name": "v1", "port": 80}], **rule}],
        },
    }


def test_custom_resources_get_their_crd_defaults_on_every_write(kube: Kube) -> None:
    kube.load_crds(crds_dir() / "gateway-api-v1.6.1-httproutes.yaml")
    created = kube.create(httproute("r"))
    rule = created["spec"]["rules"][0]
    assert rule["matches"] == [{"path": {"type": "PathPrefix", "value": "/"}}]
    assert rule["backendRefs"][0] == {"name": "v1", "port": 80, "group": "", "kind": "Service", "weight": 1}
    assert created["spec"]["parentRefs"][0]["kind"] == "Gateway"
    patched = kube.patch(
        "httproutes",
        "r",
        {
            "spec": {
                "rules": [
                    {
                        "backendRefs": [{"name": "v2", "port": 80}],
                        "matches": [{"headers": [{"name": "x", "value": "1"}]}],
                    }
                ]
            }
        },
    )
    match = patched["spec"]["rules"][0]["matches"][0]
    assert match["path"] == {"type": "PathPrefix", "value": "/"}
    assert match["headers"] == [{"name": "x", "value": "1", "type": "Exact"}]
    assert patched["metadata"]["generation"] == 2


def test_integral_floats_come_back_as_integers(kube: Kube) -> None:
    kube.load_crds(crds_dir() / "istio-crds.yaml")
    vs = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "vs"},
        "spec": {
            "hosts": ["app"],
            "http": [
                {
                    "route": [{"destination": {"host": "app"}}],
                    "mirror": {"host": "v2"},
                    "mirrorPercentage": {"value": 25.0},
                }
            ],
        },
    }
    stored = kube.create(vs)
    value = stored["spec"]["http"][0]["mirrorPercentage"]["value"]
    assert (value, type(value)) == (25, int)
    vs["metadata"]["name"] = "vs2"
    vs["spec"]["http"][0]["mirrorPercentage"]["value"] = 12.5  # type: ignore[index]
    assert kube.create(vs)["spec"]["http"][0]["mirrorPercentage"]["value"] == 12.5


def test_a_stale_update_conflicts_and_a_finalizer_holds_a_delete(kube: Kube) -> None:
    cm = kube.create(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "finalizers": ["x.io/hold"]}}
    )
    kube.patch("configmaps", "c", {"data": {"a": "1"}})
    with pytest.raises(ApiError) as conflict:
        kube.update({**cm, "data": {"a": "2"}})
    assert conflict.value.code == 409
    deleting = kube.delete("configmaps", "c")
    assert deleting["metadata"]["deletionTimestamp"]
    assert kube.exists("configmaps", "c")
    kube.patch("configmaps", "c", {"metadata": {"finalizers": None}})
    assert not kube.exists("configmaps", "c")


def test_label_selectors_and_not_found(kube: Kube) -> None:
    for name, tier in (("a", "web"), ("b", "db"), ("c", None)):
        labels = {"app": "x", **({"tier": tier} if tier else {})}
        kube.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels}})

    def names(selector: str) -> list[str]:
        return sorted(o["metadata"]["name"] for o in kube.list("configmaps", kube.namespace, labels=selector))

    assert names("app=x,tier in (web,db)") == ["a", "b"]
    assert names("app=x,!tier") == ["c"]
    with pytest.raises(ApiError) as missing:
        kube.get("configmaps", "nope")
    assert missing.value.code == 404


def test_a_server_side_apply_takes_over_a_field_someone_else_set_only_when_forced(kube: Kube) -> None:
    from kubectl_iter8.errors import KubeConflictError
    from kubectl_iter8.kube import CONFIGMAPS, KubeOptions
    from kubectl_iter8.kube import Kube as Client

    kube.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "v"}})
    applied = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c"},
        "data": {"k": "mine", "n": "1"},
    }
    with Client(KubeOptions(kubeconfig=str(kube.kubeconfig))) as client:
        with pytest.raises(KubeConflictError, match=r"Apply failed with 1 conflict: .*\.data\.k"):
            client.apply_server_side(CONFIGMAPS, applied, kube.namespace, field_manager="m", force=False)
        assert kube.get("configmaps", "c")["data"] == {"k": "v"}
        same = {**applied, "data": {"k": "v", "n": "1"}}
        assert client.apply_server_side(CONFIGMAPS, same, kube.namespace, field_manager="m", force=False)[
            "data"
        ] == {
            "k": "v",
            "n": "1",
        }
        forced = client.apply_server_side(CONFIGMAPS, applied, kube.namespace, field_manager="m", force=True)
        assert forced["data"] == {"k": "mine", "n": "1"}
