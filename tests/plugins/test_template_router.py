"""The template router: user Jinja2 templates in a sandbox, strict about undefined names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kubectl_iter8.plugins.common import RouteError
from kubectl_iter8.plugins.template import TemplateRouter

from kubectl_iter8.errors import UsageError
from kubectl_iter8.routemap import RouteMap, RouteMapSpec, RoutingState

#: An Istio VirtualService for all three strategies, written the way a user would (docs/routers.md).
VIRTUAL_SERVICE = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: {{ name }}
spec:
  hosts: [{{ values.host }}]
  http:
{%- macro destination(i) %}
    - destination: {host: {{ resource(i, "svc") }}, port: {number: {{ values.port }}}}
      headers: {response: {set: {app-version: {{ versions[i].name }}}}}
{%- endmacro %}
{%- if strategy == "canary" %}
{%- for i in candidates %}
  - match: {{ (versions[i].match or [{"headers": {"traffic": {"exact": "test"}}}]) | tojson }}
    route:
{{- destination(i) }}
{%- endfor %}
  - route:
{{- destination(0) }}
{%- elif strategy == "mirror" %}
  - route:
{{- destination(0) }}
{%- if candidates %}
    mirrors:
{%- for i in candidates %}
    - destination: {host: {{ resource(i, "svc") }}, port: {number: {{ values.port }}}}
      percentage: {value: {{ [versions[i].weight, 100] | min }}}
{%- endfor %}
{%- endif %}
{%- else %}
  - route:
{%- for i in weighted %}
{{- destination(i) }}
      weight: {{ versions[i].share }}
{%- endfor %}
{%- endif %}
"""

VERSIONS = [
    {"resources": [{"gvrShort": "svc", "name": "httpbin-0"}], "weight": 30},
    {
        "name": "candidate-1",
        "resources": [{"gvrShort": "svc", "name": "httpbin-1"}],
        "weight": 50,
        "match": [{"headers": {"x-canary": {"exact": "true"}}}],
    },
    {"resources": [{"gvrShort": "svc", "name": "httpbin-2"}], "weight": 40},
    {"resources": [{"gvrShort": "svc", "name": "httpbin-3"}], "weight": 20},
]
STATE = RoutingState(available=(True, True, False, True), weights=(30, 50, 0, 20))


def routemap(strategy: str = "blue-green", versions: list[dict[str, Any]] | None = None) -> RouteMap:
    spec = RouteMapSpec.model_validate(
        {"versions": versions or VERSIONS, "routing": {"router": "template", "strategy": strategy}}
    )
    return RouteMap(name="httpbin", namespace="shop", uid="uid-1", spec=spec, labels={"team": "a"})


def render(templates: list[Any], strategy: str = "blue-green", **values: Any) -> list[dict[str, Any]]:
    return TemplateRouter().render(routemap(strategy), STATE, {"templates": templates, "values": values})


@pytest.mark.parametrize("strategy", ["blue-green", "canary", "mirror"])
def test_golden(strategy, golden, assert_valid_crd) -> None:
    objects = render([{"gvrShort": "vs", "template": VIRTUAL_SERVICE}], strategy, host="httpbin", port=8080)
    golden(f"template-{strategy}", objects)
    for obj in objects:
        assert_valid_crd(obj)


def test_the_data_templates_see() -> None:
    template = (
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: data}\n"
        "data: {data: {{ {'name': name, 'namespace': namespace, 'labels': labels, 'strategy': strategy,"
        " 'weights': weights, 'available': available, 'shares': shares, 'weighted': weighted,"
        " 'candidates': candidates, 'versions': versions, 'values': values,"
        " 'pct': percentages([1, 2])} | tojson | tojson }}}\n"
    )
    import json

    (obj,) = render([template], "canary", extra=1)
    data = json.loads(obj["data"]["data"])
    assert data["name"] == "httpbin"
    assert data["namespace"] == "shop"
    assert data["labels"] == {"team": "a"}
    assert data["strategy"] == "canary"
    assert data["weights"] == [30, 50, 0, 20]
    assert data["available"] == [True, True, False, True]
    assert data["shares"] == [30, 50, 0, 20]
    assert data["weighted"] == [0, 1, 3]
    assert data["candidates"] == [1, 3]
    assert data["values"] == {"extra": 1}
    assert data["pct"] == [33, 67]
    assert data["versions"][1] == {
        "index": 1,
        "name": "candidate-1",
        "resources": [{"gvrShort": "svc", "name": "httpbin-1", "namespace": "shop"}],
        "weight": 50,
        "available": True,
        "serving": True,
        "share": 50,
        "match": [{"headers": {"x-canary": {"exact": "true"}}}],
        "configuredWeight": 50,
    }
    assert data["versions"][2]["serving"] is False


def test_several_documents_and_empty_output() -> None:
    two = "{% for i in weighted %}---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: w-{{ i }}}\n{% endfor %}"
    empty = "{% if strategy == 'mirror' %}apiVersion: v1{% endif %}\n---\n"
    objects = render([two, empty])
    assert [o["metadata"]["name"] for o in objects] == ["w-0", "w-1", "w-3"]


def test_templates_are_inline_only_and_no_file_is_read(tmp_path: Path) -> None:
    # A routemap's author must not make the controller read its own files (/dev/zero, its
    # token), nor learn from the error which files exist.
    path = tmp_path / "vs.yaml.j2"
    path.write_text(VIRTUAL_SERVICE)
    for spec in ({"file": str(path)}, {"file": "/dev/zero"}, {"file": str(tmp_path / "missing.j2")}):
        with pytest.raises(RouteError, match=r"routing.templates\[0\]: file is not supported") as caught:
            render([spec], host="h", port=80)
        assert "No such file" not in str(caught.value)


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{ nope }}", r"templates\[1\]: UndefinedError: 'nope' is undefined"),
        ("{{ versions[0].nope }}", r"UndefinedError: 'dict object' has no attribute 'nope'"),
        ("{{ ''.__class__.__mro__ }}", r"templates\[1\]: SecurityError: access to attribute '__class__'"),
        (
            "{{ resource(0, 'isvc') }}",
            r"version 0 \(httpbin-0\) has no isvc resource to route to \(router template, templates\[1\]\)",
        ),
        ("- a\n- b\n", r"templates\[1\] rendered a list, not a Kubernetes object"),
        ("kind: X\nmetadata: {}\n", r"templates\[1\] rendered an object without apiVersion, metadata.name"),
        ("a: [\n", r"templates\[1\] did not render valid YAML"),
    ],
)
def test_render_errors_name_the_template(template, message) -> None:
    with pytest.raises(RouteError, match=message) as info:
        render(["apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ok}\n", template])
    assert str(info.value).startswith('routemap "shop/httpbin": ')
    assert "\n" not in str(info.value)


def test_the_gvr_short_promises_the_kind() -> None:
    with pytest.raises(
        RouteError, match=r"templates\[0\] rendered a ConfigMap, but its gvrShort vs is a VirtualService"
    ):
        render([{"gvrShort": "vs", "template": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"}])
    # unknown short names are not checked
    assert render(
        [{"gvrShort": "ksvc", "template": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"}]
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "router template: routing.templates: required field is missing"),
        ({"templates": []}, "routing.templates: list should have at least 1 item"),
        (
            {"templates": ["{% if %}"]},
            r"routing.templates\[0\].template: template syntax error on line 1: Expected an expression",
        ),
        ({"templates": [{"template": "x", "gvr": "vs"}]}, r"routing.templates\[0\].gvr: unknown field"),
        ({"templates": ["x"], "name": "n"}, "routing.name: unknown field"),
    ],
)
def test_bad_config_names_the_field(options, message) -> None:
    with pytest.raises(UsageError, match=message):
        TemplateRouter().render(routemap(), STATE, options)


def test_the_example_in_the_docs_renders(assert_valid_crd) -> None:
    import re

    import yaml

    docs = (Path(__file__).resolve().parents[2] / "docs" / "routers.md").read_text()
    block = next(b for b in re.findall(r"```yaml\n(.*?)```", docs, re.S) if "router: template" in b)
    routing = yaml.safe_load(block)["routing"]
    options = {k: v for k, v in routing.items() if k not in {"router", "strategy"}}
    for strategy in ("blue-green", "canary"):
        (vs,) = TemplateRouter().render(routemap(strategy), STATE, options)
        assert_valid_crd(vs)
        assert len(vs["spec"]["http"]) == (3 if strategy == "canary" else 1)
