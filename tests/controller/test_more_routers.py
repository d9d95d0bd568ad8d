"""The controller with the real ``kserve-modelmesh`` and ``template`` routers, on the fake and a real server.

(istio and gateway-api have their own modules; together they cover every built-in router.)
"""

from __future__ import annotations

from typing import Any

import pytest
from controller_helpers import Harness, Kube, app_versions, create_version, routemap, wait_until
from routing_invariant import istio_destinations
from tiers import crds_dir

from kubectl_iter8.host import Iter8Hooks
from kubectl_iter8.routemap import RouteMap
from kubectl_iter8.testing import FakeKube


def load(kube: Kube, *names: str) -> None:
    kube.load_crds(*[crds_dir() / name for name in names])


def isvc(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": name, "labels": {"iter8.tools/watch": "true"}},
        "spec": {
            "predictor": {"model": {"modelFormat": {"name": "sklearn"}, "storageUri": f"s3://models/{name}"}}
        },
    }


def create_isvc(kube: Kube, name: str, *, ready: bool) -> None:
    """An InferenceService; KServe's controller is played by the fake's, or by a status written by hand."""
    if isinstance(kube, FakeKube):
        kube.controllers.inferenceservices = 0.0 if ready else "never"
    kube.create(isvc(name))
    if ready and not isinstance(kube, FakeKube):
        kube.mark_ready("inferenceservices", name)
    if ready:
        kube.wait_for("inferenceservices", name, is_ready)


def is_ready(obj: dict[str, Any]) -> bool:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def model_ids(obj: dict[str, Any]) -> dict[str, str]:
    """mm-vmodel-id -> "match" or "default", from a ModelMesh VirtualService."""
    out = {}
    for http in obj["spec"]["http"]:
        for entry in http["route"]:
            model = entry["headers"]["request"]["set"]["mm-vmodel-id"]
            out[model] = "match" if http.get("match") else (entry.get("weight", "default"))
    return out


def modelmesh_destinations(obj: dict[str, Any], routemap: RouteMap) -> set[int]:
    names = {version.resources[0].name: index for index, version in enumerate(routemap.spec.versions)}
    return {names.get(model, -1) for model, kind in model_ids(obj).items() if kind != 0}


@pytest.mark.parametrize(
    ("strategy", "before", "after"),
    [
        ("blue-green", {"m1": 100}, {"m1": 60, "m2": 40}),
        ("canary", {"m1": "default"}, {"m1": "default", "m2": "match"}),
    ],
)
def test_kserve_modelmesh_follows_inferenceservice_readiness(
    harness: Harness, kube: Kube, strategy: str, before: dict[str, object], after: dict[str, object]
) -> None:
    load(kube, "kserve-inferenceservices.yaml", "istio-crds.yaml")
    create_isvc(kube, "m1", ready=True)
    create_isvc(kube, "m2", ready=False)
    versions = [
        {"resources": [{"gvrShort": "isvc", "name": n}], "weight": w} for n, w in (("m1", 60), ("m2", 40))
    ]
    kube.create(routemap("app", versions, strategy=strategy, router="kserve-modelmesh", modelName="wisdom"))
    harness.destinations = modelmesh_destinations
    harness.start(router_registry=Iter8Hooks(env={"ITER8_NO_AUTOLOAD": "1"}).routers)

    def current() -> dict[str, str] | None:
        return (
            model_ids(kube.get("virtualservices", "app")) if kube.exists("virtualservices", "app") else None
        )

    wait_until(lambda: current() == before, what=f"the primary model only ({before})")
    kube.mark_ready("inferenceservices", "m2")
    wait_until(lambda: current() == after, what=f"both models ({after})")
    harness.check_invariant(at_least=2, destinations=modelmesh_destinations)


TEMPLATE = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: {{ name }}}
spec:
  hosts: [app]
  http:
  - route:
{%- for v in versions if v.weight > 0 %}
    - destination: {host: {{ v.resources[0].name }}}
      weight: {{ v.weight }}
{%- endfor %}
"""


def test_template_router_renders_only_ready_versions(harness: Harness, kube: Kube) -> None:
    load(kube, "istio-crds.yaml")
    create_version(kube, "v1")
    create_version(kube, "v2", ready=False)
    kube.create(
        routemap(
            "app", app_versions("v1", "v2", weights=[1, 3]), router="template", templates=[TEMPLATE.strip()]
        )
    )
    harness.destinations = istio_destinations
    harness.start(router_registry=Iter8Hooks(env={"ITER8_NO_AUTOLOAD": "1"}).routers)

    def weights() -> dict[str, int] | None:
        vs = kube.find("virtualservices", "app")
        if vs is None:
            return None
        route = vs["spec"]["http"][0]["route"]
        return {entry["destination"]["host"]: entry["weight"] for entry in route}

    wait_until(lambda: weights() is not None and set(weights() or {}) == {"v1"}, what="v1 only")
    kube.mark_ready("deployments", "v2")
    wait_until(lambda: set(weights() or {}) == {"v1", "v2"}, what="v1 and v2")
    harness.check_invariant(at_least=2, destinations=istio_destinations)
