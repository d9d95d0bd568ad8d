"""The built-in route plugin registers its routers and resource types through the hooks, cheaply."""

from __future__ import annotations

import json
import subprocess
import sys

from pydantic import BaseModel
from route_helpers import ROUTES_DIR, route_hooks

from kubectl_iter8.registry import ResourceType

ROUTERS = ["gateway-api", "istio", "kserve-modelmesh", "template"]


def test_routers_register_through_the_hook() -> None:
    hooks = route_hooks()
    assert set(ROUTERS) <= set(hooks.routers.names())
    for name in ROUTERS:
        router = hooks.routers.get(name)
        assert hooks.routers.owner(name) == "kubectl_iter8.plugins"
        assert callable(router.render)
        assert router.name == name
        assert issubclass(router.Config, BaseModel)
        assert router.Config.model_config.get("extra") == "forbid"


def test_resource_types_with_their_readiness_conditions() -> None:
    types = route_hooks().resource_types
    assert types.get("deploy") == ResourceType(
        "deploy", "apps", "v1", "deployments", "Deployment", ("Available",)
    )
    assert types.get("svc") == ResourceType("svc", "", "v1", "services", "Service", ())
    assert types.get("isvc") == ResourceType(
        "isvc", "serving.kserve.io", "v1beta1", "inferenceservices", "InferenceService", ("Ready",)
    )
    assert types.get("cm") == ResourceType("cm", "", "v1", "configmaps", "ConfigMap", ())
    assert types.get("deployment") is types.get("deploy")
    assert types.get("service") is types.get("svc")
    assert types.owner("deploy") == "kubectl_iter8.plugins"


def test_importing_the_plugin_module_stays_cheap() -> None:
    """``kubectl iter8`` imports every built-in plugin module on start: no pydantic, Jinja2 or YAML."""
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('iter8_routes_probe', {str(ROUTES_DIR / '__init__.py')!r})\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(module)\n"
        "print([m for m in ('pydantic', 'jinja2', 'yaml') if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"


def test_kubectl_iter8_plugins_lists_routers_and_resource_types(kubectl) -> None:
    outcome = kubectl("plugins", "-o", "json")
    assert outcome.code == 0, outcome.err
    listed = {p["name"]: p for p in json.loads(outcome.out)["plugins"]}
    routes = listed["kubectl_iter8.plugins"]
    assert routes["routers"] == ROUTERS
    assert routes["resource_types"] == ["cm", "deploy", "isvc", "svc"]
    assert routes["hooks"] == ["iter8_register_resource_types", "iter8_register_routers"]
