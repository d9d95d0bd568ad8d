"""The controller with the real ``istio`` router and the real Istio CRDs, on the fake and a real API server."""

from __future__ import annotations

import pytest
from controller_helpers import Harness, Kube, app_versions, create_version, routemap, wait_until
from routing_invariant import istio_destinations
from tiers import crds_dir

from kubectl_iter8.host import Iter8Hooks


@pytest.fixture
def istio(kube: Kube) -> Kube:
    kube.load_crds(crds_dir() / "istio-crds.yaml")
    return kube


def hosts(kube: Kube) -> dict[str, object] | None:
    """Destination host -> weight / "match" / "default" / "mirror" of the VirtualService ``app``."""
    vs = kube.find("virtualservices", "app")
    if vs is None:
        return None
    out: dict[str, object] = {}
    for http in vs["spec"]["http"]:
        for entry in http["route"]:
            host = entry["destination"]["host"]
            out[host] = entry.get("weight", "match" if http.get("match") else "default")
        if "mirror" in http:
            # float(): the API server writes 25.0 back as 25.
            out[http["mirror"]["host"]] = f"mirror:{float(http['mirrorPercentage']['value'])}"
    return out


EXPECTED = {
    "blue-green": ({"v1": 100}, {"v1": 75, "v2": 25}),
    "canary": ({"v1": "default"}, {"v1": "default", "v2": "match"}),
    "mirror": ({"v1": "default"}, {"v1": "default", "v2": "mirror:25.0"}),
}


@pytest.mark.parametrize("strategy", ["blue-green", "canary", "mirror"])
def test_istio_rollout_and_drain(harness: Harness, istio: Kube, strategy: str) -> None:
    hooks = Iter8Hooks(env={"ITER8_NO_AUTOLOAD": "1"})
    if "istio" not in hooks.routers:
        pytest.skip("the istio router is not registered")
    create_version(istio, "v1")
    create_version(istio, "v2", ready=False)
    istio.create(
        routemap(
            "app", app_versions("v1", "v2", weights=[75, 25]), strategy=strategy, router="istio", host="app"
        )
    )
    harness.destinations = istio_destinations
    harness.start(router_registry=hooks.routers)
    before, after = EXPECTED[strategy]
    wait_until(lambda: hosts(istio) == before, what=f"{before}, have {hosts(istio)}")
    istio.mark_ready("deployments", "v2")
    wait_until(lambda: hosts(istio) == after, what=f"{after}, have {hosts(istio)}")
    wait_until(
        lambda: (
            "iter8.tools/finalizer" in (istio.get("deployments", "v2")["metadata"].get("finalizers") or [])
        ),
        what="finalizer",
    )
    istio.delete("deployments", "v2")
    wait_until(lambda: not istio.exists("deployments", "v2"), what="v2 drained and deleted")
    assert hosts(istio) == before
    vs = istio.get("virtualservices", "app")
    assert vs["metadata"]["ownerReferences"][0]["name"] == "app"
    harness.check_invariant(at_least=3, destinations=istio_destinations)
    istio.delete("configmaps", "app")
    # Garbage-collected with the routemap (a reconcile racing with the deletion cleans up after itself).
    wait_until(lambda: not istio.exists("virtualservices", "app"), what="the VirtualService to go")
