"""The controller with the real ``gateway-api`` router and HTTPRoute CRD, on the fake and a real API server."""

from __future__ import annotations

from typing import Any

import pytest
from controller_helpers import Harness, Kube, app_versions, create_version, routemap, wait_until
from tiers import crds_dir

from kubectl_iter8.host import Iter8Hooks
from kubectl_iter8.routemap import RouteMap


@pytest.fixture
def gateway(kube: Kube) -> Kube:
    kube.load_crds(crds_dir() / "gateway-api-v1.6.1-httproutes.yaml")
    return kube


EVERY_PATH = {"path": {"type": "PathPrefix", "value": "/"}}


def _backends(obj: dict[str, Any]) -> list[tuple[str, object]]:
    """(Service name, weight / "match" / "default" / "mirror:P") for every backend the route sends to."""
    out: list[tuple[str, object]] = []
    for rule in (obj.get("spec") or {}).get("rules") or []:
        refs = rule.get("backendRefs") or []
        # The API server defaults a rule's matches to every path: that is no match.
        matched = any(m != EVERY_PATH for m in rule.get("matches") or [])
        for ref in refs:
            kind = ref.get("weight", 1) if len(refs) > 1 else ("match" if matched else "default")
            out.append((ref["name"], kind))
        for flt in rule.get("filters") or []:
            if flt.get("type") == "RequestMirror":
                mirror = flt["requestMirror"]
                out.append((mirror["backendRef"]["name"], f"mirror:{mirror.get('percent', 100)}"))
    return out


def gateway_destinations(obj: dict[str, Any], routemap: RouteMap) -> set[int]:
    """Versions an HTTPRoute sends traffic to (weighted > 0, matched, default or mirrored); -1 for a stranger."""
    services = {
        ref.name: index
        for index, version in enumerate(routemap.spec.versions)
        for ref in version.resources
        if ref.gvr_short == "svc"
    }
    return {services.get(name, -1) for name, kind in _backends(obj) if kind != 0 and kind != "mirror:0"}


def routes(kube: Kube) -> dict[str, object] | None:
    route = kube.find("httproutes", "app")
    return None if route is None else dict(_backends(route))


EXPECTED = {
    "blue-green": ({"v1": "default"}, {"v1": 75, "v2": 25}),
    "canary": ({"v1": "default"}, {"v1": "default", "v2": "match"}),
    "mirror": ({"v1": "default"}, {"v1": "default", "v2": "mirror:25"}),
}


@pytest.mark.parametrize("strategy", ["blue-green", "canary", "mirror"])
def test_gateway_api_rollout_and_drain(harness: Harness, gateway: Kube, strategy: str) -> None:
    hooks = Iter8Hooks(env={"ITER8_NO_AUTOLOAD": "1"})
    create_version(gateway, "v1")
    create_version(gateway, "v2", ready=False)
    gateway.create(
        routemap(
            "app",
            app_versions("v1", "v2", weights=[75, 25]),
            strategy=strategy,
            router="gateway-api",
            parentRefs=[{"name": "gw"}],
            port=8080,
        )
    )
    harness.destinations = gateway_destinations
    harness.start(router_registry=hooks.routers)
    before, after = EXPECTED[strategy]
    wait_until(lambda: routes(gateway) == before, what=f"{before}, have {routes(gateway)}")
    gateway.mark_ready("deployments", "v2")
    wait_until(lambda: routes(gateway) == after, what=f"{after}, have {routes(gateway)}")
    wait_until(
        lambda: (
            "iter8.tools/finalizer" in (gateway.get("deployments", "v2")["metadata"].get("finalizers") or [])
        ),
        what="finalizer",
    )
    gateway.delete("deployments", "v2")
    wait_until(lambda: not gateway.exists("deployments", "v2"), what="v2 drained and deleted")
    assert routes(gateway) == before
    harness.check_invariant(at_least=3, destinations=gateway_destinations)
