"""Routemaps are written by anyone who may create a ConfigMap: they must not be a way to write
arbitrary objects with the controller's rights, nor to crash or freeze it."""

from __future__ import annotations

import time
from typing import Any

import pytest
import yaml
from controller_helpers import (
    Harness,
    Kube,
    app_versions,
    create_version,
    deployment,
    routemap,
    routers,
    routes,
    wait_until,
)
from iter8_controller_test_plugin import RouteListRouter
from kubectl_iter8.controller.config import DEFAULT_TEMPLATE_KINDS, Settings, load_config
from kubectl_iter8.controller.manifests import guess_resource, manifests
from kubectl_iter8.controller.plan import desired_objects
from kubectl_iter8.plugins.template import TemplateRouter

from kubectl_iter8 import boundedyaml
from kubectl_iter8.errors import UsageError
from kubectl_iter8.registry import RouterRegistry
from kubectl_iter8.routemap import RoutingState, parse_routemap

#: 472 bytes that safe_load turns into 9**9 leaves (the 580-million-character lastError).
LAUGHS = "versions: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True)
)


def with_template_router() -> RouterRegistry:
    registry = routers()
    registry.register(TemplateRouter())
    return registry


def status_of(kube: Kube, name: str) -> dict[str, Any]:
    status = kube.find("configmaps", f"{name}-iter8-status")
    return {} if status is None else yaml.safe_load(status["data"]["status"]) or {}


def template_routemap(name: str, template: str) -> dict[str, Any]:
    return routemap(name, app_versions("v1"), router="template", templates=[template])


# --- the bounded YAML loader ---------------------------------------------------------------------


def test_bounded_yaml_refuses_alias_bombs_before_expanding_them() -> None:
    started = time.monotonic()
    with pytest.raises(boundedyaml.BoundedYAMLError, match="expands to more than 100000 nodes"):
        boundedyaml.load(LAUGHS)
    assert time.monotonic() - started < 1.0


@pytest.mark.parametrize(
    ("text", "limits", "message"),
    [
        ("a: " + "x" * 100, boundedyaml.Limits(max_bytes=50), "larger than 50 bytes"),
        ("a: &a 1\n" + "".join(f"b{i}: *a\n" for i in range(5)), boundedyaml.Limits(max_aliases=4), "4 YAML"),
        ("[" * 70 + "]" * 70, boundedyaml.DEFAULT_LIMITS, "deeper than 64"),
        ("a: &a [*a]", boundedyaml.DEFAULT_LIMITS, "recursive YAML alias"),
        ("a: [", boundedyaml.DEFAULT_LIMITS, "expected"),
        ("a: 1\n---\nb: 2", boundedyaml.DEFAULT_LIMITS, "single YAML document"),
    ],
)
def test_bounded_yaml_limits(text: str, limits: boundedyaml.Limits, message: str) -> None:
    with pytest.raises(boundedyaml.BoundedYAMLError, match=message) as caught:
        boundedyaml.load(text, limits)
    assert "\n" not in str(caught.value)


def test_bounded_yaml_loads_what_safe_load_loads() -> None:
    text = "a: &x {b: [1, 2.5, true, null, '3']}\nc: *x\nd: 2024-01-01\n"
    assert boundedyaml.load(text) == yaml.safe_load(text)
    assert list(boundedyaml.load_all("a: 1\n---\n---\nb: 2\n")) == list(
        yaml.safe_load_all("a: 1\n---\n---\nb: 2\n")
    )
    assert boundedyaml.load("") is None


def test_a_routemap_alias_bomb_is_a_short_parse_error() -> None:
    cm = routemap("app", app_versions("v1"))
    cm["metadata"]["namespace"] = "default"
    cm["data"]["strSpec"] = LAUGHS
    started = time.monotonic()
    with pytest.raises(UsageError, match="not valid YAML: YAML expands") as caught:
        parse_routemap(cm)
    assert time.monotonic() - started < 1.0
    assert len(str(caught.value)) < 300


# --- kinds a router may write --------------------------------------------------------------------


def rendered(template: str, template_kinds: Any = DEFAULT_TEMPLATE_KINDS) -> list[dict[str, Any]]:
    cm = template_routemap("app", template)
    cm["metadata"].update(namespace="default", uid="u1")
    return desired_objects(
        parse_routemap(cm), RoutingState((True,), (1,)), with_template_router(), template_kinds
    )


def test_the_template_router_writes_only_the_configured_kinds() -> None:
    deployment_ = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: payments}\n"
    with pytest.raises(Exception, match=r"rendered a Deployment.apps; it may write only: HTTPRoute"):
        rendered(deployment_)
    vs = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: app}\n"
    assert [o["kind"] for o in rendered(vs)] == ["VirtualService"]
    cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\n"
    with pytest.raises(Exception, match=r"rendered a ConfigMap; it may write only"):
        rendered(cm)
    assert [o["kind"] for o in rendered(cm, (("", "ConfigMap"),))] == ["ConfigMap"]


def test_a_router_writes_only_the_kinds_it_declares() -> None:
    class Undeclared(RouteListRouter):
        name = "undeclared"
        kinds = ()

    registry = routers()
    registry.register(Undeclared())
    assert registry.kinds("test") == {("", "ConfigMap")}
    assert registry.kinds("template") == frozenset()  # not registered: nothing
    cm = routemap("app", app_versions("v1"), router="undeclared")
    cm["metadata"].update(namespace="default", uid="u1")
    with pytest.raises(Exception, match="rendered a ConfigMap; it may write only: nothing"):
        desired_objects(parse_routemap(cm), RoutingState((True,), (1,)), registry)


def test_template_kinds_come_from_the_configuration_file(tmp_path: Any) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("templateKinds: [HTTPRoute.gateway.networking.k8s.io, ConfigMap]\n")
    settings = load_config(path, Settings())
    assert settings.template_kinds == (("gateway.networking.k8s.io", "HTTPRoute"), ("", "ConfigMap"))
    assert Settings().template_kinds == DEFAULT_TEMPLATE_KINDS
    path.write_text("templateKinds: [httproutes]\n")
    with pytest.raises(UsageError, match="expected Kind.group"):
        load_config(path, Settings())


def test_rbac_grants_writes_only_on_routing_kinds_and_configmaps() -> None:
    from controller_helpers import TYPES

    docs = manifests(TYPES.values(), namespace="iter8-system", watch_namespaces=["default"])
    rules = [
        r for d in docs if d["kind"] == "Role" and d["metadata"]["namespace"] == "default" for r in d["rules"]
    ]
    writable = {res for r in rules if {"create", "delete"} & set(r["verbs"]) for res in r["resources"]}
    assert writable == {"configmaps", "events", "virtualservices", "httproutes"}
    isvc = next(r for r in rules if "inferenceservices" in r["resources"])
    assert isvc["verbs"] == ["get", "list", "watch", "patch"]  # a version resource: the finalizer only


def test_template_kinds_of_the_configuration_are_what_the_manifests_let_the_controller_write(
    cli, tmp_path: Any
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        "templateKinds: [DestinationRule.networking.istio.io, HTTPRoute.gateway.networking.k8s.io]\n"
    )
    out = cli("controller", "manifests", "-w", "shop", "--config", str(config))
    assert out.code == 0, out.err
    role = next(
        d for d in yaml.safe_load_all(out.out) if d["kind"] == "Role" and d["metadata"]["namespace"] == "shop"
    )
    writable = {
        (group, res)
        for r in role["rules"]
        if "create" in r["verbs"]
        for group in r["apiGroups"]
        for res in r["resources"]
    }
    assert writable == {
        ("", "configmaps"),
        ("", "events"),
        ("networking.istio.io", "destinationrules"),
        ("networking.istio.io", "virtualservices"),  # the istio and kserve-modelmesh routers declare it
        ("gateway.networking.k8s.io", "httproutes"),
    }


@pytest.mark.parametrize(
    ("kind", "resource"),
    [("VirtualService", "virtualservices"), ("Gateway", "gateways"), ("Ingress", "ingresses"),
     ("NetworkPolicy", "networkpolicies"), ("Key", "keys")],
)  # fmt: skip
def test_resource_names_are_guessed_as_kubernetes_guesses_them(kind: str, resource: str) -> None:
    assert guess_resource(kind) == resource


def test_the_network_policy_opens_the_grpc_port_to_the_watched_namespaces_only(cli) -> None:
    def policy(*args: str) -> dict[str, Any]:
        out = cli("controller", "manifests", *args)
        assert out.code == 0, out.err
        return next(d for d in yaml.safe_load_all(out.out) if d["kind"] == "NetworkPolicy")

    spec = policy("-n", "iter8-system", "-w", "shop", "-w", "payments", "--http-port", "9090")["spec"]
    assert spec["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "iter8-controller"}}
    assert spec["policyTypes"] == ["Ingress"]
    http, grpc = spec["ingress"]
    assert http == {"ports": [{"protocol": "TCP", "port": 9090}]}
    assert grpc["ports"] == [{"protocol": "TCP", "port": 50051}]
    assert grpc["from"] == [
        {"namespaceSelector": {"matchExpressions": [
            {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["shop", "payments"]}
        ]}}
    ]  # fmt: skip
    assert policy("-A")["spec"]["ingress"][1]["from"] == [{"namespaceSelector": {}}]
    assert len(policy("--abn-port", "0")["spec"]["ingress"]) == 1
    out = cli("controller", "manifests", "--no-network-policy")
    assert "NetworkPolicy" not in [d["kind"] for d in yaml.safe_load_all(out.out)]


# --- the controller, on both tiers ---------------------------------------------------------------


def test_a_routemap_cannot_overwrite_a_deployment(harness: Harness, kube: Kube) -> None:
    create_version(kube, "v1")
    kube.create(deployment("payments"))
    hostile = (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: payments}\n"
        "spec: {template: {spec: {containers: [{name: app, image: evil/image}]}}}\n"
    )
    kube.create(template_routemap("evil", hostile))
    kube.create(routemap("app", app_versions("v1")))
    harness.start(router_registry=with_template_router())
    wait_until(lambda: routes(kube) == {"v1": 1}, what="the good routemap")
    wait_until(lambda: status_of(kube, "evil").get("lastError"), what="the evil routemap's error")
    assert "may write only" in status_of(kube, "evil")["lastError"]
    live = kube.get("deployments", "payments")
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "example/app"
    assert not live["metadata"].get("ownerReferences")
    kube.delete("configmaps", "evil")
    time.sleep(0.5)
    assert kube.exists("deployments", "payments")


def test_a_template_allowed_a_kind_still_cannot_take_over_an_object(harness: Harness, kube: Kube) -> None:
    create_version(kube, "v1")
    kube.create(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}, "data": {"k": "v"}}
    )
    hostile = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {k: evil}\n"
    kube.create(template_routemap("evil", hostile))
    harness.start(router_registry=with_template_router(), template_kinds=(("", "ConfigMap"),))
    wait_until(lambda: status_of(kube, "evil").get("lastError"), what="the evil routemap's error")
    assert "ConfigMap 'settings' already exist" in status_of(kube, "evil")["lastError"]
    live = kube.get("configmaps", "settings")
    assert live["data"] == {"k": "v"}
    assert not live["metadata"].get("ownerReferences")


def test_an_object_created_by_someone_else_after_the_check_is_not_taken_over(
    harness: Harness, kube: Kube, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The race the ownership check cannot see: "late" does not exist when the controller looks,
    # and someone else creates it before the controller's first write.
    from kubectl_iter8.kube import Kube as Client

    looked = Client.find

    def find(self: Client, gvr: Any, name: str, namespace: str | None = None) -> Any:
        found = looked(self, gvr, name, namespace)
        if name == "late" and not kube.exists("configmaps", "late"):
            kube.create(
                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "late"}, "data": {"k": "v"}}
            )
        return found

    monkeypatch.setattr(Client, "find", find)
    create_version(kube, "v1")
    kube.create(
        template_routemap(
            "racer", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: late}\ndata: {k: mine}\n"
        )
    )
    harness.start(router_registry=with_template_router(), template_kinds=(("", "ConfigMap"),))
    wait_until(
        lambda: any(
            "'late' was created meanwhile" in e["message"] for e in kube.list("events", kube.namespace)
        ),
        what="the RoutingConflict event",
    )
    wait_until(lambda: status_of(kube, "racer").get("lastError"), what="the racing routemap's error")
    live = kube.get("configmaps", "late")
    assert live["data"] == {"k": "v"}
    assert not live["metadata"].get("ownerReferences")


def test_hostile_routemaps_fail_alone_with_short_errors(harness: Harness, kube: Kube) -> None:
    create_version(kube, "v1")
    bomb = routemap("bomb", [])
    bomb["data"]["strSpec"] = LAUGHS
    kube.create(bomb)
    kube.create(template_routemap("power", "{% set n = 9 %}{{ n ** (n ** n) }}"))
    kube.create(
        template_routemap(
            "loops", "{% for i in range(9999) %}{% for j in range(9999) %}{% endfor %}{% endfor %}"
        )
    )
    kube.create(template_routemap("file", "x"))
    spec = yaml.safe_load(kube.get("configmaps", "file")["data"]["strSpec"])
    spec["routing"]["templates"] = [{"file": "/dev/zero"}]
    kube.patch("configmaps", "file", {"data": {"strSpec": yaml.safe_dump(spec)}})
    kube.create(routemap("app", app_versions("v1")))
    harness.start(router_registry=with_template_router())
    wait_until(lambda: routes(kube) == {"v1": 1}, what="the good routemap")
    expected = {
        "bomb": "YAML expands to more than",
        "power": "a power above",
        "loops": "rendering took longer than",
        "file": "file is not supported",
    }
    for name, message in expected.items():
        wait_until(
            lambda name=name: status_of(kube, name).get("lastError"), timeout=20, what=f"{name}'s error"
        )
        error = status_of(kube, name)["lastError"]
        assert message in error, error
        assert len(error) <= 1024
    for event in kube.list("events", kube.namespace):
        assert len(event["message"]) <= 1024


def test_long_routemap_errors_are_cut_to_a_kibibyte() -> None:
    cm = routemap("app", [{"resources": []} for _ in range(2000)])
    cm["metadata"]["namespace"] = "default"
    with pytest.raises(UsageError) as caught:
        parse_routemap(cm)
    assert len(str(caught.value)) <= 1024
    assert str(caught.value).endswith("(truncated)")
    assert boundedyaml.truncate("x" * 5000, 100) == "x" * 85 + "... (truncated)"


@pytest.mark.fake_only
def test_routemaps_are_parsed_outside_the_controller_lock(
    harness: Harness, kube: Kube, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kubectl_iter8.controller import manager

    ctl = harness.start()
    held: list[bool] = []

    def parse(cm: dict[str, Any]) -> Any:
        held.append(ctl.state._lock.locked())
        return parse_routemap(cm)

    monkeypatch.setattr(manager, "parse_routemap", parse)
    create_version(kube, "v1")
    kube.create(routemap("app", app_versions("v1")))
    wait_until(lambda: routes(kube) == {"v1": 1}, what="the routemap")
    assert held
    assert not any(held)
