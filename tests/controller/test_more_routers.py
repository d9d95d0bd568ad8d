"""The controller with the real ``kserve-modelmesh`` and ``template`` routers, on the fake API server.

(istio and gateway-api have their own modules; together they cover every built-in router.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from controller_helpers import Harness, app_versions, create_version, routemap, wait_until
from routing_invariant import istio_destinations

from kubectl_iter8.host import Iter8Hooks
from kubectl_iter8.routemap import RouteMap
from kubectl_iter8.testing import FakeKube

SHARED = Path(__file__).resolve().parents[3] / "shared" / "crds"


def load(kube: FakeKube, *names: str) -> FakeKube:
    paths = [SHARED / name for name in names]
    if not all(path.exists() for path in paths):
        pytest.skip(f"the shared CRDs are not at {SHARED}")
    kube.load_crds(*paths)
    return kube


def isvc(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": name, "labels": {"iter8.tools/watch": "true"}},
        "spec": {
            "predictor": {"model": {"modelFormat": {"name": "sklearn"}, "storageUri": f"s3://models/{name}"}}
        },
    }


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
    harness: Harness, fake_kube: FakeKube, strategy: str, before: dict[str, object], after: dict[str, object]
) -> None:
    kube = load(fake_kube, "kserve-inferenceservices.yaml", "istio-crds.yaml")
    kube.controllers.inferenceservices = 0.0
    kube.create(isvc("m1"))
    kube.wait_for("inferenceservices", "m1", is_ready)
    kube.controllers.inferenceservices = "never"
    kube.create(isvc("m2"))
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


def test_template_router_renders_only_ready_versions(harness: Harness, fake_kube: FakeKube) -> None:
    kube = load(fake_kube, "istio-crds.yaml")
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
        if not kube.exists("virtualservices", "app"):
            return None
        route = kube.get("virtualservices", "app")["spec"]["http"][0]["route"]
        return {entry["destination"]["host"]: entry["weight"] for entry in route}

    wait_until(lambda: weights() is not None and set(weights() or {}) == {"v1"}, what="v1 only")
    kube.mark_ready("deployments", "v2")
    wait_until(lambda: set(weights() or {}) == {"v1", "v2"}, what="v1 and v2")
    harness.check_invariant(at_least=2, destinations=istio_destinations)
