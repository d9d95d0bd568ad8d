"""Iter8's Helm charts (copied under ``builtin_tasks/iter8_templates/charts/``), rendered as Helm renders
them but by the project's Go template engine, with no Helm: what Iter8 users have in their clusters.

``render_chart`` gives a chart template's YAML documents; ``release`` gives everything Iter8's
``release`` chart (v1.1.2) writes for an application (Deployments or InferenceServices, Services, the
weight-config ConfigMaps, the routemap with its ``routingTemplates``); ``crd_errors`` checks an object
against its real CRD's schema (the route plugin tests' check, shared).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import yaml

TESTS = Path(__file__).resolve().parent
CHARTS = TESTS / "builtin_tasks" / "iter8_templates" / "charts"

#: Two versions of an app, as the values of Iter8's tutorials give them (the candidate: weight 30,
#: and Gateway API canary matches).
DEPLOYMENT_VERSIONS = [
    {
        "metadata": {"labels": {"app.kubernetes.io/version": "v1"}},
        "image": "kennethreitz/httpbin",
        "port": 80,
    },
    {
        "metadata": {"labels": {"app.kubernetes.io/version": "v2"}},
        "image": "kennethreitz/httpbin",
        "port": 80,
        "weight": 30,
        "matches": [{"headers": [{"name": "traffic", "value": "test"}]}],
    },
]
MODEL_VERSIONS = [
    {"metadata": {"name": "wisdom-0"}, "modelFormat": "sklearn", "storageUri": "gs://models/v1"},
    {
        "metadata": {"name": "wisdom-1"},
        "modelFormat": "sklearn",
        "storageUri": "gs://models/v2",
        "weight": 30,
    },
]


def render_chart(
    chart: str, main: str, values: dict[str, Any], *, namespace: str = "default"
) -> list[dict[str, Any]]:
    """A Helm chart's ``main`` template with the chart's defined templates (``_*.tpl``), as Helm
    renders it for release ``app`` in ``namespace``; the YAML documents it gives."""
    from kubectl_iter8 import gotemplate

    folder = CHARTS / chart
    library = [path.read_text() for path in sorted((folder / "templates").glob("_*.tpl"))]
    merged = {**yaml.safe_load((folder / "values.yaml").read_text()), **values}
    data = {"Values": merged, "Release": {"Name": "app", "Namespace": namespace, "Revision": 1}}
    text = gotemplate.parse(main, name=chart, library=library).execute(data)
    return [doc for doc in yaml.safe_load_all(text) if doc]


def release(environment: str, strategy: str, namespace: str, name: str = "app") -> list[dict[str, Any]]:
    """What Iter8's ``release`` chart writes for ``environment`` (``deployment-istio``,
    ``deployment-gtw``, ``kserve``, ``kserve-modelmesh-istio``) and ``strategy``, app ``name`` in
    ``namespace``, with the two tutorial versions above."""
    versions = MODEL_VERSIONS if environment.startswith("kserve") else DEPLOYMENT_VERSIONS
    application = {
        "metadata": {"name": name, "namespace": namespace},
        "strategy": strategy,
        "versions": versions,
    }
    main = (CHARTS / "release" / "templates" / "release.yaml").read_text()
    return render_chart(
        "release", main, {"environment": environment, "application": application}, namespace=namespace
    )


def _route_helpers() -> Any:
    spec = importlib.util.spec_from_file_location("route_helpers", TESTS / "plugins" / "route_helpers.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def crd_errors(obj: dict[str, Any]) -> list[str]:
    """Every way ``obj`` breaks its real CRD's schema (``tests/plugins/route_helpers.py``); skips the
    ``crds`` tier when the CRD files are missing."""
    errors: list[str] = _route_helpers().crd_errors(obj)
    return errors
