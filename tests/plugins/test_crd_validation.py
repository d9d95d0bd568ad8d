"""The CRD schema check catches what the API server would refuse; rendered objects apply with kubectl."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml
from kubectl_iter8.controller.plan import contains
from route_helpers import GOLDEN, crd_errors
from tiers import CRDS, crds_dir

VIRTUAL_SERVICE: dict[str, Any] = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "VirtualService",
    "metadata": {"name": "vs"},
    "spec": {"hosts": ["a"], "http": [{"route": [{"destination": {"host": "a"}, "weight": 100}]}]},
}
HTTP_ROUTE: dict[str, Any] = {
    "apiVersion": "gateway.networking.k8s.io/v1",
    "kind": "HTTPRoute",
    "metadata": {"name": "r"},
    "spec": {"parentRefs": [{"name": "gw"}], "rules": [{"backendRefs": [{"name": "a", "port": 80}]}]},
}
ISVC: dict[str, Any] = {
    "apiVersion": "serving.kserve.io/v1beta1",
    "kind": "InferenceService",
    "metadata": {"name": "m"},
    "spec": {
        "predictor": {
            "model": {
                "modelFormat": {"name": "sklearn"},
                "storageUri": "gs://bucket/model",
                "resources": {"limits": {"cpu": 1, "memory": "2Gi"}},
            }
        }
    },
}


def changed(obj: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    *parents, last = path.split(".")
    node: Any = out
    for key in parents:
        node = node[int(key)] if key.isdigit() else node[key]
    node[int(last) if last.isdigit() else last] = value
    return out


def test_valid_objects_pass() -> None:
    assert crd_errors(VIRTUAL_SERVICE) == []
    assert crd_errors(HTTP_ROUTE) == []
    assert crd_errors(ISVC) == []  # int-or-string quantities: both forms


@pytest.mark.parametrize(
    ("obj", "path", "value", "error"),
    [
        (VIRTUAL_SERVICE, "spec.http.0.route.0.destination", {"hots": "a"}, "'host' is a required property"),
        (VIRTUAL_SERVICE, "spec.http.0.route.0.weight", "10", "'10' is not of type 'integer'"),
        (VIRTUAL_SERVICE, "spec.http.0.mirrorPercent", {"value": 5}, "is not of type 'integer'"),
        (VIRTUAL_SERVICE, "spec.http.0.retires", {}, "Additional properties are not allowed ('retires'"),
        (
            HTTP_ROUTE,
            "spec.rules.0.filters",
            [{"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "b"}, "percent": 150}}],
            "150 is greater than the maximum of 100",
        ),
        (
            HTTP_ROUTE,
            "spec.rules.0.backendRefs.0.filters",
            [{"type": "AddHeader"}],
            "'AddHeader' is not one of",
        ),
        (
            HTTP_ROUTE,
            "spec.rules.0.matches",
            [{"headers": [{"name": "bad name", "value": "x"}]}],
            "does not match",
        ),
        (
            ISVC,
            "spec.predictor.model.resources.limits.cpu",
            [1],
            "is not valid under any of the given schemas",
        ),
    ],
)
def test_what_the_schema_check_refuses(obj, path, value, error) -> None:
    errors = crd_errors(changed(obj, path, value))
    assert any(error in line for line in errors), errors


def test_rendered_objects_apply_to_the_fake_api_server_with_kubectl(fake_kube) -> None:
    crds_dir()
    fake_kube.load_crds(CRDS / "istio-crds.yaml", CRDS / "gateway-api-v1.6.1-httproutes.yaml")
    fake_kube.kubectl("create", "namespace", "shop", check=True)
    applied = 0
    for path in sorted(GOLDEN.glob("*.yaml")):
        documents = list(yaml.safe_load_all(path.read_text()))
        for i, obj in enumerate(documents):
            obj = copy.deepcopy(obj)
            obj["metadata"]["name"] = f"{path.stem}-{i}"
            result = fake_kube.kubectl("apply", "-n", "shop", "-f", "-", input=yaml.safe_dump(obj))
            assert result.returncode == 0, f"{path.name}: {result.stderr}"
            resource = {
                "VirtualService": "virtualservices.networking.istio.io",
                "HTTPRoute": "httproutes.gateway.networking.k8s.io",
            }[obj["kind"]]
            stored = fake_kube.get(resource, obj["metadata"]["name"], "shop")
            # The server adds the CRD's defaults (as the real one does); everything rendered is kept.
            assert contains(stored["spec"], obj["spec"]), (stored["spec"], obj["spec"])
            applied += 1
    assert applied >= 11
