"""Fuzzing routemaps: whatever a ConfigMap's author writes, the controller's read and render stay bounded.

The controller handles a routemap in two steps, both pure: :func:`parse_routemap` (the bounded YAML
loader and the model) and :func:`desired_objects` (the router's render, for ``template`` in the
sandbox). Generated routemaps mix the routemap vocabulary, every built-in router, Jinja2 built from
the expensive constructs a hostile author would try, random YAML and alias bombs. Each must give a
routemap or a one-line error of at most a KiB (what the status ConfigMap stores), in bounded time
and memory, and whatever renders is of a kind the router may write.
"""

from __future__ import annotations

import json
from typing import Any

import yaml
from fuzzing import FUZZ, bounded
from hypothesis import event, given
from hypothesis import strategies as st
from kubectl_iter8.controller.errors import PermanentError
from kubectl_iter8.controller.plan import desired_objects

from kubectl_iter8.errors import UsageError
from kubectl_iter8.host import Iter8Hooks
from kubectl_iter8.registry import kind_of
from kubectl_iter8.routemap import RoutingState, parse_routemap

JINJA = [
    "{{ ", " }}", "{% for i in range(", ") %}", "{% endfor %}", "{% set n = 9 %}", "n ** (n ** n)", "99999",
    "'x' * 100000", "routemap", ".versions", "[0]", "|join", "|tojson", "lipsum(1000)", "|indent(99999)",
    "'%99999999d' % 1", "__class__", ".mro()", "namespace()", "cycler", "values", "weights", "{{ range(9)|list }}",
    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
    "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: vs}\nspec: {hosts: [a]}\n",
    "---\n", "{% raw %}", "{% endraw %}", "{{ '{{' }}",
]  # fmt: skip
TEMPLATES = st.lists(st.sampled_from(JINJA), max_size=12).map("".join) | st.text(max_size=40)
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), st.text(max_size=30))
TREES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
)
NAMES = st.sampled_from(["app", "app-v2", "a.b", "x" * 253]) | st.text(min_size=1, max_size=20)
RESOURCES = st.fixed_dictionaries(
    {"gvrShort": st.sampled_from(["svc", "deploy", "isvc", "cm"]), "name": NAMES},
    optional={"namespace": NAMES},
)
VERSIONS = st.fixed_dictionaries(
    {"resources": st.lists(RESOURCES, min_size=1, max_size=3)},
    optional={
        "weight": st.integers(0, 2**40),
        "name": NAMES,
        "match": st.lists(
            st.dictionaries(st.sampled_from(["headers", "uri", "x"]), TREES, max_size=2), max_size=2
        ),
    },
)
COMMON = {
    "strategy": st.sampled_from(["blue-green", "canary", "mirror"]),
    "name": NAMES,
    "port": st.integers(-1, 70000),
}
ROUTING = st.one_of(
    st.fixed_dictionaries(
        {"router": st.just("istio"), "host": NAMES}, optional={**COMMON, "gateways": st.lists(NAMES)}
    ),
    st.fixed_dictionaries(
        {
            "router": st.just("gateway-api"),
            "parentRefs": st.lists(st.fixed_dictionaries({"name": NAMES}), max_size=3),
        },
        optional={**COMMON, "hostnames": st.lists(NAMES, max_size=3)},
    ),
    st.fixed_dictionaries({"router": st.just("kserve-modelmesh"), "modelName": NAMES}, optional=COMMON),
    st.fixed_dictionaries(
        {"router": st.just("template"), "templates": st.lists(TEMPLATES, min_size=1, max_size=3)},
        optional={**COMMON, "values": st.dictionaries(st.text(max_size=8), TREES, max_size=3)},
    ),
    st.dictionaries(st.sampled_from(["router", "strategy", "templates", "host", "x"]), TREES, max_size=4),
)
#: Mostly well-formed routemaps (which reach the routers), some with junk anywhere.
SPECS = (
    st.fixed_dictionaries({"versions": st.lists(VERSIONS, min_size=1, max_size=4), "routing": ROUTING})
    | TREES
)


@st.composite
def alias_bomb(draw: st.DrawFn) -> str:
    levels, fanout = draw(st.integers(1, 9)), draw(st.integers(2, 12))
    parts = ["a0: &a0 [v]"] + [
        f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * fanout)}]" for i in range(1, levels + 1)
    ]
    return f"versions: [{{resources: [{{gvrShort: svc, name: x}}]}}]\nrouting: {{router: istio, {', '.join(parts)}}}\n"


STR_SPECS = st.one_of(
    SPECS.map(lambda doc: yaml.safe_dump(doc, allow_unicode=True)),
    st.text(alphabet="&*[]{}:-,|>!%@ '\"\n\tabc01", max_size=300),
    alias_bomb(),
)


#: Every router a controller has: the built-in ones, found as plugins like any third party's.
ROUTERS = Iter8Hooks().routers


@FUZZ
@given(text=STR_SPECS, available=st.lists(st.booleans(), min_size=4, max_size=4))
def test_any_routemap_is_read_and_rendered_within_bounds_or_refused_in_a_short_line(
    text: str, available: list[bool]
) -> None:
    configmap = {"metadata": {"name": "fuzz", "namespace": "default", "uid": "u"}, "data": {"strSpec": text}}
    message = ""
    with bounded():
        try:
            routemap = parse_routemap(configmap)
            count = len(routemap.spec.versions)
            state = RoutingState(tuple(available[:count]), tuple(int(a) for a in available[:count]))
            objects = desired_objects(routemap, state, ROUTERS)
        except (UsageError, PermanentError) as exc:
            message, objects = str(exc), []
        size = len(json.dumps(objects))
    event("rendered objects" if objects else "refused" if message else "rendered nothing")
    assert len(message) <= 1024, message[:300]
    assert "\n" not in message.strip(), message[:300]
    assert size <= 1024 * 1024
    allowed = ROUTERS.declared_kinds() | {("networking.istio.io", "VirtualService")}
    assert all(kind_of(obj) in allowed for obj in objects)


def test_the_strategies_reach_the_renderers() -> None:
    # A fuzz test that never gets past the parser proves little: a hand-picked example of the
    # generated shape renders objects through the template router.
    spec: dict[str, Any] = {
        "versions": [{"resources": [{"gvrShort": "svc", "name": "a"}]}],
        "routing": {"router": "template", "templates": [next(j for j in JINJA if "VirtualService" in j)]},
    }
    cm = {
        "metadata": {"name": "fuzz", "namespace": "default", "uid": "u"},
        "data": {"strSpec": yaml.safe_dump(spec)},
    }
    objects = desired_objects(parse_routemap(cm), RoutingState((True,), (1,)), ROUTERS)
    assert [o["kind"] for o in objects] == ["VirtualService"]
