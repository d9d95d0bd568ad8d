"""Iter8 v1.x routemaps, unmodified: what Iter8's ``release`` chart (v1.1.2) writes, reconciled by the
controller on the fake and on a real control plane.

Each case renders the chart (``tests/iter8_release_chart.py``) for an app in the test's namespace,
creates its version objects and weight-config ConfigMaps and its routemap exactly as rendered, and
runs the controller. The routing object it writes must be what Iter8's controller would have written:
the routemap's Go routing template rendered over the weights Iter8 computes, here by this test's
own rule (the routemap's ``weight``, overridden by the annotation of a version's *first* resource,
0 when unavailable). The rendered objects must pass the real CRDs' schemas, and the harness checks
the routing invariant and the drain rule over the whole write history.

Iter8's Gateway API templates route to the candidate whatever its weight (the blue-green one drops
every ``weight`` when the candidate's is 0, and HTTPRoute's default weight is 1; the canary one
ignores the weights), so those cases start with both versions ready (docs/iter8-compat.md).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from controller_helpers import TYPES, Harness, Kube, wait_until
from iter8_release_chart import crd_errors, release
from kubectl_iter8.controller.plan import contains
from routing_invariant import istio_destinations
from test_gateway_api import gateway_destinations
from test_more_routers import modelmesh_destinations
from tiers import crds_dir

from kubectl_iter8 import gotemplate
from kubectl_iter8.host import Iter8Hooks
from kubectl_iter8.registry import kind_of
from kubectl_iter8.routemap import RouteMap
from kubectl_iter8.testing import FakeKube

Obj = dict[str, Any]


def kserve_destinations(obj: Obj, routemap: RouteMap) -> set[int]:
    """Versions a KServe (serverless) VirtualService of Iter8's chart sends traffic to: the ``split``
    route's weighted branches, and each per-version route (named after its InferenceService)."""
    names = {version.resources[0].name: index for index, version in enumerate(routemap.spec.versions)}
    found: set[int] = set()
    for http in obj["spec"]["http"]:
        if http.get("name") != "split":
            found.add(names.get(http.get("name", ""), -1))
            continue
        route = http["route"]
        for entry in route:
            if entry.get("weight", 100 if len(route) == 1 else 0) > 0:
                found.add(names.get(entry["headers"]["request"]["set"]["branch"], -1))
    return found


#: environment -> (resource of the routing object, CRD files, destinations, version kind)
ENVIRONMENTS: dict[str, tuple[str, tuple[str, ...], Callable[[Obj, RouteMap], set[int]], str]] = {
    "deployment-istio": ("virtualservices", ("istio-crds.yaml",), istio_destinations, "deployments"),
    "deployment-gtw": (
        "httproutes",
        ("gateway-api-v1.6.1-httproutes.yaml",),
        gateway_destinations,
        "deployments",
    ),
    "kserve-modelmesh-istio": (
        "virtualservices",
        ("istio-crds.yaml", "kserve-inferenceservices.yaml"),
        modelmesh_destinations,
        "inferenceservices",
    ),
    "kserve": (
        "virtualservices",
        ("istio-crds.yaml", "kserve-inferenceservices.yaml"),
        kserve_destinations,
        "inferenceservices",
    ),
}
SHORT = {"Service": "svc", "ConfigMap": "cm", "Deployment": "deploy", "InferenceService": "isvc"}
CASES = [
    ("deployment-istio", "blue-green"),
    ("deployment-istio", "canary"),
    ("deployment-istio", "mirror"),
    ("deployment-gtw", "blue-green"),
    ("deployment-gtw", "canary"),
    ("kserve-modelmesh-istio", "blue-green"),
    ("kserve-modelmesh-istio", "canary"),
    ("kserve", "blue-green"),
]


def iter8_output(template: str, weights: list[int]) -> Obj:
    """What Iter8's controller applied: the template over ``.Weights``, Go builtins, missingkey=zero."""
    text = gotemplate.render(template, {"Weights": weights}, functions="builtin", missing_key="zero")
    [doc] = [d for d in yaml.safe_load_all(text) if d]
    assert isinstance(doc, dict)
    return doc


def create_version(kube: Kube, doc: Obj, *, ready: bool) -> None:
    """One of the chart's version objects (a Deployment or an InferenceService), ready or held back."""
    name = doc["metadata"]["name"]
    if doc["kind"] == "InferenceService":
        create_isvc_doc(kube, doc, ready=ready)
        return
    if isinstance(kube, FakeKube):
        kube.controllers.deployments = 0.0 if ready else "never"
    elif not ready:
        kube.mark_unready("deployments", name)
    kube.create(doc)
    if ready:
        kube.wait_for("deployments", name, _available, timeout=30)


def create_isvc_doc(kube: Kube, doc: Obj, *, ready: bool) -> None:
    # test_more_routers.create_isvc builds its own object; the chart's is the one Iter8 users have.
    if isinstance(kube, FakeKube):
        kube.controllers.inferenceservices = 0.0 if ready else "never"
    kube.create(doc)
    if ready and not isinstance(kube, FakeKube):
        kube.mark_ready("inferenceservices", doc["metadata"]["name"])
    if ready:
        kube.wait_for("inferenceservices", doc["metadata"]["name"], _available, timeout=30)


def _available(obj: Obj) -> bool:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return any(c.get("type") in ("Available", "Ready") and c.get("status") == "True" for c in conditions)


def _same_routing(live: Obj | None, expected: Obj) -> bool:
    """``live`` is ``expected`` in its group and kind (a real server answers at the preferred
    version, same content), carrying every field it has; a VirtualService (no CRD defaults) nothing more."""
    if live is None or kind_of(live) != kind_of(expected) or not contains(live["spec"], expected["spec"]):
        return False
    return expected["kind"] != "VirtualService" or live["spec"] == expected["spec"]


@pytest.mark.parametrize(("environment", "strategy"), CASES)
def test_iter8_release_chart_routemaps_route_as_iter8s_controller_did(
    harness: Harness, kube: Kube, environment: str, strategy: str
) -> None:
    resource, crd_files, destinations, version_kind = ENVIRONMENTS[environment]
    kube.load_crds(*[crds_dir() / name for name in crd_files])
    docs = release(environment, strategy, kube.namespace)
    [routemap_cm] = [
        d for d in docs if (d["metadata"].get("labels") or {}).get("iter8.tools/kind") == "routemap"
    ]
    spec = yaml.safe_load(routemap_cm["data"]["strSpec"])
    [(template_name, routing_template)] = spec["routingTemplates"].items()
    template = routing_template["template"]
    configured = [v.get("weight") or 1 for v in spec["versions"]]
    versions = [d for d in docs if d["kind"] in ("Deployment", "InferenceService")]
    # Iter8's Gateway API templates route to the candidate whatever its weight (module docstring).
    gated = environment != "deployment-gtw"

    # This test's own model of Iter8's controller: which objects exist, which versions are ready,
    # which first resources carry a weight annotation.
    created: set[tuple[str, str]] = set()
    ready = {0: True, 1: not gated}
    annotated: dict[int, int] = {}

    def iter8_weights() -> list[int]:
        weights = []
        for index, version in enumerate(spec["versions"]):
            up = ready[index] and all((r["gvrShort"], r["name"]) in created for r in version["resources"])
            weights.append(annotated.get(index, version.get("weight") or 1) if up else 0)
        return weights if any(weights) else [1, *weights[1:]]

    for doc in docs:
        labels = doc["metadata"].get("labels") or {}
        if (doc["kind"] == "Service" and labels.get("iter8.tools/watch")) or (
            doc["kind"] == "ConfigMap" and doc["metadata"]["name"].endswith("-weight-config")
        ):
            kube.create(doc)
            created.add((SHORT[doc["kind"]], doc["metadata"]["name"]))
    create_version(kube, versions[0], ready=True)
    create_version(kube, versions[1], ready=not gated)
    created |= {(SHORT[v["kind"]], v["metadata"]["name"]) for v in versions}
    created_routemap = kube.create(routemap_cm)
    harness.destinations = destinations
    harness.start(router_registry=Iter8Hooks(env={"ITER8_NO_AUTOLOAD": "1"}).routers)

    rendered = iter8_output(template, configured)
    app = rendered["metadata"]["name"]

    def live() -> Obj | None:
        return kube.get(resource, app) if kube.exists(resource, app) else None

    def status() -> Obj | None:
        found = kube.exists("configmaps", "app-routemap-iter8-status")
        text = kube.get("configmaps", "app-routemap-iter8-status")["data"]["status"] if found else "null"
        loaded: Obj | None = yaml.safe_load(text)
        return loaded

    def routes_as_iter8() -> None:
        weights = iter8_weights()
        expected = iter8_output(template, weights)
        assert crd_errors(expected) == [], f"Iter8's own rendering breaks the CRD: {crd_errors(expected)}"
        wait_until(
            lambda: _same_routing(live(), expected),
            what=f"Iter8's {template_name} rendering over {weights}, have {live()}; status {status()}",
        )

    if gated:
        routes_as_iter8()
        kube.mark_ready(version_kind, versions[1]["metadata"]["name"])
        ready[1] = True
    routes_as_iter8()

    written = live()
    assert written is not None
    assert written["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "iter8"
    assert [o["uid"] for o in written["metadata"]["ownerReferences"]] == [created_routemap["metadata"]["uid"]]
    # The status is written after the routing objects.
    recorded = wait_until(lambda: (status() or {}).get("routingObjects") and status(), what="the status")
    assert recorded["routingObjects"] == [
        {"apiVersion": rendered["apiVersion"], "kind": rendered["kind"], "name": app}
    ]
    assert recorded["lastError"] is None

    # Iter8's weights: the annotation of a version's first resource counts, its weight-config's does not.
    weight_config = f"{versions[1]['metadata']['name']}-weight-config"
    if kube.exists("configmaps", weight_config):
        kube.patch("configmaps", weight_config, _annotate(5))
    first = spec["versions"][0]["resources"][0]
    kube.patch(_resource_of(first["gvrShort"]), first["name"], _annotate(40))
    annotated[0] = 40
    routes_as_iter8()

    if gated:
        # Deleting the candidate drains it first (the harness checks the drain rule at the end).
        kube.delete(version_kind, versions[1]["metadata"]["name"])
        wait_until(lambda: not kube.exists(version_kind, versions[1]["metadata"]["name"]), what="drained")
        ready[1] = False
        routes_as_iter8()


def _annotate(weight: int) -> Obj:
    return {"metadata": {"annotations": {"iter8.tools/weight": str(weight)}}}


def _resource_of(gvr_short: str) -> str:
    return {"svc": "services", "isvc": "inferenceservices", "deploy": "deployments"}[gvr_short]


def test_a_routemap_cannot_make_the_controller_write_other_kinds_or_take_over_objects(
    harness: Harness, kube: Kube
) -> None:
    """What a routemap's routing templates render passes the routers' gate: a Deployment is refused
    (nothing written, RenderFailed), and a VirtualService someone else owns is left alone."""
    kube.load_crds(crds_dir() / "istio-crds.yaml")
    docs = release("deployment-istio", "blue-green", kube.namespace)
    [routemap_cm] = [d for d in docs if d["metadata"]["name"] == "app-routemap"]
    spec = yaml.safe_load(routemap_cm["data"]["strSpec"])
    deployment = (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: sneaky}\n"
        "spec: {replicas: {{ index .Weights 0 }}, selector: {matchLabels: {a: b}},"
        " template: {metadata: {labels: {a: b}}, spec: {containers: [{name: c, image: x}]}}}\n"
    )
    sneaky = {**spec, "routingTemplates": {"evil": {"gvrShort": "deploy", "template": deployment}}}
    kube.create({**routemap_cm, "data": {"strSpec": yaml.safe_dump(sneaky)}})
    theirs = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "app"},
        "spec": {"hosts": ["theirs"]},
    }
    kube.create(theirs)
    other = {**routemap_cm, "metadata": {**routemap_cm["metadata"], "name": "other-routemap"}}
    kube.create(other)
    harness.destinations = istio_destinations
    harness.start()

    def last_error(name: str) -> str:
        found = kube.find("configmaps", f"{name}-iter8-status")
        if found is None:
            return ""
        status = yaml.safe_load(found["data"]["status"])
        return str(status.get("lastError") or "")

    wait_until(lambda: "may write only" in last_error("app-routemap"), what="the Deployment refused")
    wait_until(lambda: "not this routemap's" in last_error("other-routemap"), what="the conflict")
    assert not kube.exists("deployments", "sneaky")
    assert kube.get("virtualservices", "app")["spec"] == {"hosts": ["theirs"]}
    wait_until(
        lambda: {"RenderFailed", "RoutingConflict"} <= {e.get("reason") for e in kube.list("events")},
        what="the RenderFailed and RoutingConflict events",
    )


# --- the render gate and Iter8's weights, without a cluster ---------------------------------------------


def chart_routemap(
    environment: str = "deployment-istio", strategy: str = "blue-green", **changes: Any
) -> Obj:
    """The chart's routemap ConfigMap in namespace ``shop``; ``changes`` replace keys of its strSpec."""
    [cm] = [d for d in release(environment, strategy, "shop") if d["metadata"]["name"] == "app-routemap"]
    spec = {**yaml.safe_load(cm["data"]["strSpec"]), **changes}
    return {**cm, "metadata": {**cm["metadata"], "uid": "uid-1"}, "data": {"strSpec": yaml.safe_dump(spec)}}


def objects(cm: Obj, weights: tuple[int, ...] = (50, 30), **kwargs: Any) -> list[Obj]:
    from kubectl_iter8.controller.plan import desired_objects

    from kubectl_iter8.registry import RouterRegistry
    from kubectl_iter8.routemap import RoutingState, parse_routemap

    state = RoutingState(tuple(w > 0 for w in weights), weights)
    return desired_objects(parse_routemap(cm), state, RouterRegistry(), **{"types": TYPES, **kwargs})


def one_template(text: str, gvr_short: str = "vs") -> dict[str, Any]:
    return {"t": {"gvrShort": gvr_short, "template": text}}


VS = "apiVersion: networking.istio.io/v1beta1\nkind: VirtualService\nmetadata: {name: app}\n"


def test_the_render_is_the_go_template_over_the_weights_stamped_like_a_routers() -> None:
    cm = chart_routemap()
    [obj] = objects(cm, (50, 30))
    template = yaml.safe_load(cm["data"]["strSpec"])["routingTemplates"]["blue-green"]["template"]
    expected = iter8_output(template, [50, 30])
    assert obj["spec"] == expected["spec"]
    assert obj["metadata"]["namespace"] == "shop"
    assert obj["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    assert obj["metadata"]["labels"] == {
        "app.kubernetes.io/managed-by": "iter8",
        "iter8.tools/routemap": "app-routemap",
    }


def test_templates_see_iter8s_routemap_fields() -> None:
    text = VS + (
        "spec: {hosts: ['{{ .Name }}.{{ .Namespace }}', '{{ (index (index .Versions 1).Resources 0).Name }}',"
        " 'w{{ (index .Versions 1).Weight }}', '{{ index .Weights 1 }}', '{{ .GetName }}']}"
    )
    [obj] = objects(chart_routemap(routingTemplates=one_template(text)), (50, 0))
    assert obj["spec"]["hosts"] == ["app-routemap.shop", "app-1", "w30", "0", "app-routemap"]


@pytest.mark.parametrize(
    ("templates", "message"),
    [
        (one_template("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n", "deploy"),
         "routingTemplates.t rendered a Deployment.apps; it may write only: HTTPRoute.gateway.networking.k8s.io, VirtualService.networking.istio.io"),
        (one_template(VS, "httproute"),
         "routingTemplates.t rendered a VirtualService.networking.istio.io; its gvrShort httproute is httproutes.gateway.networking.k8s.io"),
        (one_template(VS, "nope"), "routingTemplates.t: unknown gvrShort 'nope'"),
        (one_template(VS + "spec: {w: {{ index .Weights 7 }}}"),
         "routingTemplates.t: template: t:4:13: executing \"t\" at <index .Weights 7>: error calling index: index out of range: 7"),
        (one_template("apiVersion: v1\nkind: [\n"), "routingTemplates.t did not render valid YAML"),
        # A field the routemap struct lacks is Go's error, whatever missingkey says (it is for maps).
        (one_template(VS + "spec: {x: '{{ .Nope }}'}"), "can't evaluate field Nope in type *controllers.routemap"),
        (one_template("kind: VirtualService\n"), "routingTemplates.t rendered an object without apiVersion, metadata.name"),
        ({"a": {"gvrShort": "vs", "template": VS}, "b": {"gvrShort": "vs", "template": VS}},
         "routingTemplates.b renders VirtualService.networking.istio.io 'app', as routingTemplates.a does"),
        (one_template("{{ range 100000000 }}x{{ end }}"), "routingTemplates.t: template: t:"),
    ],
)  # fmt: skip
def test_what_a_routemap_may_not_render_fails_it_permanently(templates: dict[str, Any], message: str) -> None:
    from kubectl_iter8.controller.errors import PermanentError

    with pytest.raises(PermanentError) as caught:
        objects(chart_routemap(routingTemplates=templates))
    assert message in str(caught.value)
    assert len(str(caught.value)) <= 1024


def test_template_kinds_configure_what_routing_templates_may_write() -> None:
    text = "apiVersion: networking.istio.io/v1beta1\nkind: DestinationRule\nmetadata: {name: app}\n"
    cm = chart_routemap(routingTemplates=one_template(text, "dr"))
    [obj] = objects(cm, template_kinds=(("networking.istio.io", "DestinationRule"),))
    assert obj["kind"] == "DestinationRule"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"routing": {"router": "istio"}}, "give routing or routingTemplates, not both"),
        ({"routingTemplates": one_template("{{ if }}")}, "routingTemplates.t.template: template: t:1: missing value for if"),
        ({"routingTemplates": one_template("{{ quote .x }}")}, 'routingTemplates.t.template: template: t:1: function "quote" not defined'),
        ({"routingTemplates": {"t": {"gvrShort": "vs", "template": "x", "file": "/etc/passwd"}}}, "file"),
    ],
)  # fmt: skip
def test_malformed_routing_templates_are_refused_when_the_routemap_is_read(
    changes: dict[str, Any], message: str
) -> None:
    from kubectl_iter8.errors import UsageError
    from kubectl_iter8.routemap import parse_routemap

    with pytest.raises(UsageError) as caught:
        parse_routemap(chart_routemap(**changes))
    assert message in str(caught.value)


def _plan_weights(cm: Obj, annotations: dict[str, dict[str, str]]) -> tuple[int, ...]:
    from controller_helpers import TYPES
    from kubectl_iter8.controller.plan import plan

    from kubectl_iter8.routemap import parse_routemap

    def lookup(kind: str, namespace: str, name: str) -> Obj:
        meta: Obj = {"name": name, "namespace": namespace, "labels": {"iter8.tools/watch": "true"}}
        if name in annotations.get(kind, {}):
            meta["annotations"] = {"iter8.tools/weight": annotations[kind][name]}
        if kind == "deploy":
            status = {"conditions": [{"type": "Available", "status": "True"}]}
            return {"metadata": {**meta, "generation": 1}, "status": {**status, "observedGeneration": 1}}
        return {"metadata": meta}

    return plan(parse_routemap(cm), lookup, TYPES).state.weights


@pytest.mark.parametrize(
    ("annotations", "weights"),
    [
        ({}, (50, 30)),
        ({"cm": {"app-1-weight-config": "5"}}, (50, 30)),  # not the first resource: Iter8 ignored it
        ({"deploy": {"app-1": "5"}}, (50, 30)),
        ({"svc": {"app-1": "5"}}, (50, 5)),
        ({"svc": {"app-1": "0", "app-0": "0"}}, (1, 0)),  # all zero: the primary gets 1
        ({"svc": {"app-1": "+5"}}, (50, 30)),  # Go's ParseUint refuses a sign, a space, a fraction
        ({"svc": {"app-1": " 5"}}, (50, 30)),
        ({"svc": {"app-1": "5.0"}}, (50, 30)),
        ({"svc": {"app-1": "4294967296"}}, (50, 30)),  # beyond uint32
    ],
)
def test_iter8s_weight_rule_for_routemaps_with_routing_templates(
    annotations: dict[str, dict[str, str]], weights: tuple[int, ...]
) -> None:
    assert _plan_weights(chart_routemap(), annotations) == weights


def test_routemaps_without_routing_templates_keep_this_projects_rule() -> None:
    cm = chart_routemap(routingTemplates=None, routing={"router": "istio", "host": "app"})
    assert _plan_weights(cm, {"cm": {"app-1-weight-config": "5"}}) == (50, 5)


# --- Iter8's controller configuration ---------------------------------------------------------------------

#: The ``config.yaml`` Iter8's ``controller`` chart (v1.1) wrote: its values without metrics and abn.
ITER8_CONTROLLER_CONFIG = """
image: iter8/iter8:1.1
replicas: 1
defaultResync: 15m
resourceTypes:
  svc: {Group: "", Version: v1, Resource: services}
  service: {Group: "", Version: v1, Resource: services}
  cm: {Group: "", Version: v1, Resource: configmaps}
  deploy: {Group: apps, Version: v1, Resource: deployments, conditions: [Available]}
  isvc: {Group: serving.kserve.io, Version: v1beta1, Resource: inferenceservices, conditions: [Ready]}
  vs: {Group: networking.istio.io, Version: v1beta1, Resource: virtualservices}
  httproute: {Group: gateway.networking.k8s.io, Version: v1beta1, Resource: httproutes}
  ksvc: {Group: serving.knative.dev, Version: v1, Resource: services, conditions: [Ready]}
logLevel: info
resources:
  requests: {memory: 64Mi, cpu: 250m}
  limits: {memory: 128Mi, cpu: 500m}
"""


def test_iter8s_controller_configuration_loads_as_it_is(tmp_path: Path) -> None:
    from kubectl_iter8.controller.config import Settings, load_config

    from kubectl_iter8.registry import ResourceType

    path = tmp_path / "config.yaml"
    path.write_text(ITER8_CONTROLLER_CONFIG)
    settings = load_config(path, Settings())
    assert settings.resync_period == 900
    assert {t.name: t for t in settings.extra_resource_types} == {
        "svc": ResourceType("svc", "", "v1", "services", "Service"),
        "cm": ResourceType("cm", "", "v1", "configmaps", "ConfigMap"),
        "deploy": ResourceType("deploy", "apps", "v1", "deployments", "Deployment", ("Available",)),
        "isvc": ResourceType("isvc", "serving.kserve.io", "v1beta1", "inferenceservices", "InferenceService", ("Ready",)),
        "vs": ResourceType("vs", "networking.istio.io", "v1beta1", "virtualservices", "VirtualService"),
        "httproute": ResourceType("httproute", "gateway.networking.k8s.io", "v1beta1", "httproutes", "HTTPRoute"),
        "ksvc": ResourceType("ksvc", "serving.knative.dev", "v1", "services", "Service", ("Ready",)),
    }  # fmt: skip


def test_a_bad_iter8_resource_type_is_one_line_naming_it(tmp_path: Path, cli: Any) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("resourceTypes:\n  ksvc: {Group: serving.knative.dev, Resource: services}\n")
    outcome = cli("controller", "manifests", "--config", str(path))
    assert outcome.code == 2
    assert outcome.err.strip() == "error: resourceTypes.ksvc: version and resource are required"


def test_manifests_from_iter8s_configuration_grant_its_types(tmp_path: Path, cli: Any) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(ITER8_CONTROLLER_CONFIG)
    outcome = cli("controller", "manifests", "--config", str(path))
    assert outcome.code == 0, outcome.err
    [role] = [
        d
        for d in yaml.safe_load_all(outcome.out)
        if d and d["kind"] == "Role" and d["metadata"]["namespace"] == "default"
    ]
    watched = {
        (group, resource)
        for rule in role["rules"]
        if "watch" in rule["verbs"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    assert {
        ("serving.knative.dev", "services"),
        ("networking.istio.io", "virtualservices"),
        ("apps", "deployments"),
    } <= watched
