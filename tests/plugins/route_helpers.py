"""Helpers for the route plugin tests: the real CRDs' schemas, the built-in route plugin.

``crd_schema(kind)`` turns the ``openAPIV3Schema`` of a served version in the ``crds`` tier (see tiers.py) into a
JSON Schema the ``jsonschema`` package checks: Kubernetes' ``x-kubernetes-*`` extensions are dropped
(``x-kubernetes-int-or-string`` becomes "integer or string", ``x-kubernetes-preserve-unknown-fields``
allows any field), ``nullable`` allows null, and every other object with ``properties`` refuses
unknown fields, as the API server's strict field validation does. CEL rules
(``x-kubernetes-validations``) are not evaluated; the tests check the few that matter by hand.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import yaml
from tiers import crds_dir

from kubectl_iter8.routemap import RouteMap, RouteMapSpec

ROUTES_DIR = Path(__file__).resolve().parents[2] / "plugins"


def route_hooks() -> Any:
    """A fresh plugin host (no third-party plugins) with the built-in route plugin registered."""
    from kubectl_iter8.host import Iter8Hooks

    return Iter8Hooks(env={"ITER8_NO_AUTOLOAD": "1"})


GOLDEN = Path(__file__).resolve().parent / "golden"

#: kind -> (CRD file, served version)
CRD_FILES = {
    ("networking.istio.io", "VirtualService"): "istio-crds.yaml",
    ("gateway.networking.k8s.io", "HTTPRoute"): "gateway-api-v1.6.1-httproutes.yaml",
    ("serving.kserve.io", "InferenceService"): "kserve-inferenceservices.yaml",
}


def _structural_to_json_schema(node: Any) -> Any:
    if isinstance(node, list):
        return [_structural_to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key.startswith("x-kubernetes-") or key in {"nullable", "description", "default", "example"}:
            continue
        if key in {"properties", "patternProperties", "definitions"}:
            out[key] = {name: _structural_to_json_schema(sub) for name, sub in value.items()}
        else:
            out[key] = _structural_to_json_schema(value)
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not node.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


@functools.cache
def crd_schema(api_version: str, kind: str) -> dict[str, Any]:
    """The JSON Schema of ``kind`` at ``api_version`` from the real CRD (the test skips without the CRDs)."""
    group, _, version = api_version.rpartition("/")
    path = crds_dir() / CRD_FILES[(group, kind)]
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    for doc in yaml.load_all(path.read_text(), Loader=loader):
        if not doc or doc["spec"]["names"]["kind"] != kind or doc["spec"]["group"] != group:
            continue
        for served in doc["spec"]["versions"]:
            if served["name"] == version and served.get("served"):
                schema = _structural_to_json_schema(served["schema"]["openAPIV3Schema"])
                assert isinstance(schema, dict)
                # The API server always allows these at the root, whether the schema lists them or not.
                implicit = {
                    "apiVersion": {"type": "string"},
                    "kind": {"type": "string"},
                    "metadata": {"type": "object"},
                }
                schema["properties"] = {**implicit, **schema.get("properties", {})}
                return schema
        raise AssertionError(f"{path.name}: {kind} is not served at {version}")
    raise AssertionError(f"{path.name} defines no {kind}")


def crd_errors(obj: dict[str, Any]) -> list[str]:
    """Every way ``obj`` breaks its CRD's schema, as ``path: message`` lines (empty when valid)."""
    import jsonschema

    schema = crd_schema(obj["apiVersion"], obj["kind"])
    validator = jsonschema.Draft7Validator(schema)
    return [
        "/".join(str(p) for p in error.absolute_path) + f": {error.message}"
        for error in sorted(validator.iter_errors(obj), key=lambda e: list(map(str, e.absolute_path)))
    ]


def routemap(spec: str | dict[str, Any], name: str = "httpbin", namespace: str = "shop") -> RouteMap:
    raw = yaml.safe_load(spec) if isinstance(spec, str) else spec
    return RouteMap(name=name, namespace=namespace, uid="uid-1", spec=RouteMapSpec.model_validate(raw))
