"""The istio, gateway-api and kserve-modelmesh routers: golden files per strategy, the real CRDs' schemas,
and who gets traffic when versions come and go."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from kubectl_iter8.plugins.common import RouteError, percentages, validate_config
from kubectl_iter8.plugins.gateway_api import GatewayApiRouter
from kubectl_iter8.plugins.istio import IstioConfig, IstioRouter
from kubectl_iter8.plugins.kserve_modelmesh import KServeModelMeshRouter

from kubectl_iter8.errors import UsageError
from kubectl_iter8.routemap import RouteMap, RouteMapSpec, RoutingState
from kubectl_iter8.validation import router_config

STRATEGIES = ("blue-green", "canary", "mirror")

#: Four versions: a primary, a candidate with its own match, one that is not ready, one without a match.
ISTIO_VERSIONS = """
- resources: [{gvrShort: svc, name: httpbin-0}, {gvrShort: deploy, name: httpbin-0}]
  weight: 30
- name: candidate-1
  resources: [{gvrShort: deploy, name: httpbin-1}, {gvrShort: svc, name: httpbin-1}]
  weight: 50
  match: [{headers: {x-canary: {exact: "true"}}}, {uri: {prefix: /beta}}]
- resources: [{gvrShort: svc, name: httpbin-2}, {gvrShort: deploy, name: httpbin-2}]
  weight: 40
  match: [{headers: {x-canary: {exact: "two"}}}]
- resources: [{gvrShort: svc, name: httpbin-3, namespace: lab}]
  weight: 20
"""
GATEWAY_VERSIONS = """
- resources: [{gvrShort: svc, name: httpbin-0}, {gvrShort: deploy, name: httpbin-0}]
  weight: 30
- name: candidate-1
  resources: [{gvrShort: deploy, name: httpbin-1}, {gvrShort: svc, name: httpbin-1}]
  weight: 50
  match: [{headers: [{name: x-canary, value: "true"}]}, {path: {type: PathPrefix, value: /beta}}]
- resources: [{gvrShort: svc, name: httpbin-2}, {gvrShort: deploy, name: httpbin-2}]
  weight: 40
  match: [{headers: [{name: x-canary, value: two}]}]
- resources: [{gvrShort: svc, name: httpbin-3, namespace: lab}]
  weight: 20
"""
MODELMESH_VERSIONS = """
- resources: [{gvrShort: isvc, name: wisdom-0}]
  weight: 30
- name: candidate-1
  resources: [{gvrShort: isvc, name: wisdom-1}]
  weight: 50
  match: [{headers: {x-canary: {exact: "true"}}}]
- resources: [{gvrShort: isvc, name: wisdom-2}]
  weight: 40
- resources: [{gvrShort: isvc, name: wisdom-3}]
  weight: 20
"""
#: Version 2 is not available: the controller gave it weight 0.
STATE = RoutingState(available=(True, True, False, True), weights=(30, 50, 0, 20))

ROUTERS: dict[str, tuple[Any, str, str]] = {
    "istio": (
        IstioRouter(),
        ISTIO_VERSIONS,
        "{host: httpbin.example.com, hosts: [httpbin], port: 8080, gateways: [mesh, shop/gw]}",
    ),
    "gateway-api": (
        GatewayApiRouter(),
        GATEWAY_VERSIONS,
        "{parentRefs: [{name: gw, namespace: infra, sectionName: http}], hostnames: [httpbin.example.com], port: 8080}",
    ),
    "kserve-modelmesh": (
        KServeModelMeshRouter(),
        MODELMESH_VERSIONS,
        "{modelName: wisdom, gateways: [mm-gateway, mesh]}",
    ),
}


def scenario(
    router_name: str, strategy: str, state: RoutingState = STATE, **extra: Any
) -> tuple[Any, RouteMap, RoutingState]:
    router, versions, options = ROUTERS[router_name]
    routing = {"router": router_name, "strategy": strategy, **yaml.safe_load(options), **extra}
    spec = RouteMapSpec.model_validate({"versions": yaml.safe_load(versions), "routing": routing})
    return router, RouteMap(name="httpbin", namespace="shop", uid="uid-1", spec=spec), state


def render(
    router_name: str, strategy: str, state: RoutingState = STATE, **extra: Any
) -> list[dict[str, Any]]:
    router, rm, st = scenario(router_name, strategy, state, **extra)
    assert rm.spec.routing is not None
    config = router.Config.model_validate(rm.spec.routing.options())
    return router.render(rm, st, config)


CASES = [(r, s) for r in ROUTERS for s in STRATEGIES if (r, s) != ("kserve-modelmesh", "mirror")]


@pytest.mark.parametrize(("router_name", "strategy"), CASES)
def test_golden(router_name, strategy, golden, assert_valid_crd) -> None:
    objects = render(router_name, strategy)
    golden(f"{router_name}-{strategy}", objects)
    for obj in objects:
        assert_valid_crd(obj)


# --- who receives traffic ---------------------------------------------------------------------------


def destinations(vs: dict[str, Any]) -> list[list[tuple[str, int | None]]]:
    return [
        [(d["destination"]["host"], d.get("weight")) for d in route["route"]] for route in vs["spec"]["http"]
    ]


def test_istio_blue_green_splits_between_the_serving_versions_only() -> None:
    (vs,) = render("istio", "blue-green")
    assert destinations(vs) == [
        [("httpbin-0", 30), ("httpbin-1", 50), ("httpbin-3.lab.svc.cluster.local", 20)]
    ]
    assert vs["spec"]["http"][0]["route"][1]["headers"] == {
        "response": {"set": {"app-version": "candidate-1"}}
    }


def test_weights_become_percentages_that_add_up_to_100() -> None:
    state = RoutingState(available=(True, True, True, True), weights=(1, 1, 1, 0))
    (vs,) = render("istio", "blue-green", state)
    assert destinations(vs) == [[("httpbin-0", 34), ("httpbin-1", 33), ("httpbin-2", 33)]]
    assert percentages([2, 1]) == [67, 33]
    assert percentages([5]) == [100]


@pytest.mark.parametrize("router_name", ["istio", "gateway-api", "kserve-modelmesh"])
def test_when_nothing_serves_the_primary_takes_everything(router_name, assert_valid_crd) -> None:
    state = RoutingState(available=(False, False, False, False), weights=(1, 0, 0, 0))
    (bg,) = render(router_name, "blue-green", state)
    (canary,) = render(router_name, "canary", state)
    for obj in (bg, canary):
        assert_valid_crd(obj)
    rules = bg["spec"].get("http") or bg["spec"]["rules"]
    assert len(rules) == 1
    refs = rules[0].get("route") or rules[0]["backendRefs"]
    assert len(refs) == 1
    assert refs[0]["weight"] == 100
    assert len(canary["spec"].get("http") or canary["spec"]["rules"]) == 1


def test_the_primary_leaves_the_split_when_its_weight_is_0() -> None:
    state = RoutingState(available=(True, True, False, False), weights=(0, 10, 0, 0))
    (vs,) = render("istio", "blue-green", state)
    assert destinations(vs) == [[("httpbin-1", 100)]]
    # ...but stays the default route of a canary
    (canary,) = render("istio", "canary", state)
    assert destinations(canary) == [[("httpbin-1", None)], [("httpbin-0", None)]]


def test_an_available_candidate_with_weight_0_gets_no_canary_route_nor_mirror() -> None:
    state = RoutingState(available=(True, True, True, True), weights=(30, 0, 0, 0))
    (canary,) = render("istio", "canary", state)
    assert destinations(canary) == [[("httpbin-0", None)]]
    (mirror,) = render("istio", "mirror", state)
    assert set(mirror["spec"]["http"][0]) == {"route"}


def test_istio_canary_routes_come_before_the_default_route() -> None:
    (vs,) = render("istio", "canary")
    http = vs["spec"]["http"]
    assert [route.get("match") for route in http] == [
        [{"headers": {"x-canary": {"exact": "true"}}}, {"uri": {"prefix": "/beta"}}],
        [{"headers": {"traffic": {"exact": "test"}}}],
        None,
    ]
    assert destinations(vs)[-1] == [("httpbin-0", None)]


def test_istio_mirror_with_one_candidate_uses_mirror_and_mirror_percentage(assert_valid_crd) -> None:
    state = RoutingState(available=(True, False, False, True), weights=(100, 0, 0, 20))
    (vs,) = render("istio", "mirror", state)
    assert_valid_crd(vs)
    (route,) = vs["spec"]["http"]
    assert route["mirror"] == {"host": "httpbin-3.lab.svc.cluster.local", "port": {"number": 8080}}
    assert route["mirrorPercentage"] == {"value": 20.0}
    assert destinations(vs) == [[("httpbin-0", None)]]


def test_mirror_percentage_option_overrides_the_weights() -> None:
    (vs,) = render("istio", "mirror", mirrorPercentage=12.5)
    assert [m["percentage"] for m in vs["spec"]["http"][0]["mirrors"]] == [{"value": 12.5}, {"value": 12.5}]
    (route,) = render("gateway-api", "mirror", mirrorPercentage=5)
    assert [f["requestMirror"]["percent"] for f in route["spec"]["rules"][0]["filters"]] == [5, 5]


def test_mirror_percent_is_capped_at_100() -> None:
    state = RoutingState(available=(True, True, False, False), weights=(1, 250, 0, 0))
    (vs,) = render("istio", "mirror", state)
    assert vs["spec"]["http"][0]["mirrorPercentage"] == {"value": 100.0}


def test_gateway_api_backend_refs_carry_the_version_header_and_cross_namespace_refs() -> None:
    (route,) = render("gateway-api", "blue-green")
    refs = route["spec"]["rules"][0]["backendRefs"]
    assert [(r["name"], r.get("namespace"), r["port"], r["weight"]) for r in refs] == [
        ("httpbin-0", None, 8080, 30),
        ("httpbin-1", None, 8080, 50),
        ("httpbin-3", "lab", 8080, 20),
    ]
    assert refs[1]["filters"] == [
        {
            "type": "ResponseHeaderModifier",
            "responseHeaderModifier": {"set": [{"name": "app-version", "value": "candidate-1"}]},
        }
    ]


def test_gateway_api_service_backends_always_have_a_port() -> None:
    # The CRD's CEL rule "Must have port for Service reference", which the schema check does not run.
    for strategy in STRATEGIES:
        (route,) = render("gateway-api", strategy)
        for rule in route["spec"]["rules"]:
            refs = rule["backendRefs"] + [f["requestMirror"]["backendRef"] for f in rule.get("filters", [])]
            assert all(isinstance(ref["port"], int) for ref in refs)


def test_gateway_api_refuses_more_rules_than_the_crd_allows(make_routemap) -> None:
    versions = [{"resources": [{"gvrShort": "svc", "name": f"v{i}"}]} for i in range(17)]
    rm = make_routemap({"versions": versions, "routing": {"router": "gateway-api", "strategy": "canary"}})
    state = RoutingState(available=(True,) * 17, weights=(1,) * 17)
    with pytest.raises(RouteError, match="17 HTTPRoute rules .* exceed Gateway API's 16"):
        GatewayApiRouter().render(rm, state, {"parentRefs": [{"name": "gw"}]})


def test_modelmesh_selects_the_model_with_mm_vmodel_id() -> None:
    (vs,) = render("kserve-modelmesh", "blue-green")
    assert vs["spec"]["hosts"] == ["wisdom.shop", "wisdom.shop.svc.cluster.local"]
    route = vs["spec"]["http"][0]["route"]
    assert [(d["destination"], d["headers"]["request"]["set"], d["weight"]) for d in route] == [
        ({"host": "modelmesh-serving", "port": {"number": 8033}}, {"mm-vmodel-id": "wisdom-0"}, 30),
        ({"host": "modelmesh-serving", "port": {"number": 8033}}, {"mm-vmodel-id": "wisdom-1"}, 50),
        ({"host": "modelmesh-serving", "port": {"number": 8033}}, {"mm-vmodel-id": "wisdom-3"}, 20),
    ]
    assert route[1]["headers"]["response"] == {"set": {"app-version": "candidate-1"}}


def test_modelmesh_refuses_the_mirror_strategy() -> None:
    with pytest.raises(RouteError, match="router kserve-modelmesh does not support the mirror strategy"):
        render("kserve-modelmesh", "mirror")


def test_name_and_header_options(assert_valid_crd) -> None:
    (vs,) = render(
        "istio",
        "blue-green",
        name="httpbin-vs",
        versionHeader="x-served-by",
        apiVersion="networking.istio.io/v1beta1",
    )
    assert_valid_crd(vs)
    assert vs["apiVersion"] == "networking.istio.io/v1beta1"
    assert vs["metadata"] == {"name": "httpbin-vs", "labels": {"app.kubernetes.io/managed-by": "iter8"}}
    assert vs["spec"]["http"][0]["route"][0]["headers"] == {"response": {"set": {"x-served-by": "httpbin-0"}}}


def test_a_version_without_the_backend_resource_is_an_error(make_routemap) -> None:
    rm = make_routemap(
        "versions: [{resources: [{gvrShort: svc, name: a}]}, {resources: [{gvrShort: deploy, name: b}]}]\n"
        "routing: {router: istio, host: a}"
    )
    state = RoutingState(available=(True, True), weights=(1, 1))
    with pytest.raises(
        RouteError, match=r'routemap "shop/httpbin": version 1 \(b\) has no svc resource to route to'
    ):
        IstioRouter().render(rm, state, {"host": "a"})
    # not serving: never looked at
    assert IstioRouter().render(rm, RoutingState((True, False), (1, 0)), {"host": "a"})


def test_a_state_that_does_not_match_the_versions_is_refused(make_routemap) -> None:
    rm = make_routemap("versions: [{resources: [{gvrShort: svc, name: a}]}]")
    with pytest.raises(RouteError, match="routing state has 2 weights and 2 availabilities for 1 versions"):
        IstioRouter().render(rm, RoutingState((True, True), (1, 1)), {"host": "a"})


# --- bad config -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("router", "options", "message"),
    [
        (IstioRouter(), {}, "router istio: routing.host: required field is missing"),
        (IstioRouter(), {"host": "a", "hots": ["b"]}, "router istio: routing.hots: unknown field"),
        (
            IstioRouter(),
            {"host": "a", "port": 0},
            "router istio: routing.port: input should be greater than or equal to 1 (got 0)",
        ),
        (
            IstioRouter(),
            {"host": "a", "mirrorPercentage": 101},
            "routing.mirrorPercentage: input should be less than or equal to 100",
        ),
        (
            IstioRouter(),
            {"host": "a", "versionHeader": "bad header"},
            "routing.versionHeader: string should match pattern",
        ),
        (
            IstioRouter(),
            {"host": "a", "apiVersion": "v2"},
            "routing.apiVersion: input should be 'networking.istio.io/v1' or",
        ),
        (GatewayApiRouter(), {}, "router gateway-api: routing.parentRefs: required field is missing"),
        (GatewayApiRouter(), {"parentRefs": []}, "routing.parentRefs: list should have at least 1 item"),
        (
            GatewayApiRouter(),
            {"parentRefs": [{"nam": "gw"}]},
            "routing.parentRefs[0].name: required field is missing; routing.parentRefs[0].nam: unknown field",
        ),
        (
            GatewayApiRouter(),
            {"parentRefs": [{"name": "gw"}], "mirrorPercentage": 2.5},
            "routing.mirrorPercentage: input should be a valid integer",
        ),
        (
            KServeModelMeshRouter(),
            {"host": "x"},
            "router kserve-modelmesh: routing.modelName: required field is missing",
        ),
    ],
)
def test_bad_config_names_the_field(router, options, message, make_routemap) -> None:
    rm = make_routemap("versions: [{resources: [{gvrShort: svc, name: a}]}]")
    with pytest.raises(
        UsageError,
        match=message.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(").replace(")", r"\)"),
    ) as info:
        router.render(rm, RoutingState((True,), (1,)), options)
    assert "\n" not in str(info.value)
    assert isinstance(info.value, RouteError)


def test_routers_render_from_the_config_validated_once(make_routemap) -> None:
    # The controller validates routing options (kubectl_iter8.validation.router_config) and hands
    # the router the model: it is used as it is, not validated again.
    config = router_config(IstioRouter.Config, {"host": "a"}, "istio")
    assert validate_config(IstioConfig, config, "istio") is config
    rm = make_routemap("versions: [{resources: [{gvrShort: svc, name: a}]}]")
    (vs,) = IstioRouter().render(rm, RoutingState((True,), (1,)), config)
    assert vs["spec"]["hosts"] == ["a"]
