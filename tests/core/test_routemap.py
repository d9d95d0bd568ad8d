from __future__ import annotations

import pytest

from kubectl_iter8.errors import UsageError
from kubectl_iter8.routemap import WEIGHT_ANNOTATION, desired_weight, parse_routemap, routed_weights

SPEC = """
versions:
- resources: [{gvrShort: svc, name: httpbin-0}, {gvrShort: deploy, name: httpbin-0}]
  weight: 90
- name: candidate
  resources: [{gvrShort: deploy, name: httpbin-1, namespace: shop}]
  match: [{headers: {x-canary: {exact: "true"}}}]
routing: {router: istio, strategy: canary, host: httpbin, gateways: [mesh]}
"""


def configmap(spec: str | None) -> dict:
    data = {} if spec is None else {"strSpec": spec}
    return {"metadata": {"name": "httpbin", "namespace": "shop", "uid": "u1"}, "data": data}


def test_parses_an_iter8_shaped_routemap() -> None:
    routemap = parse_routemap(configmap(SPEC))
    first, second = routemap.spec.versions
    assert (first.weight, first.label, first.resources[1].gvr_short) == (90, "httpbin-0", "deploy")
    assert (second.weight, second.label, second.resources[0].namespace) == (None, "candidate", "shop")
    assert routemap.spec.routing is not None
    assert routemap.spec.routing.strategy == "canary"
    assert routemap.spec.routing.options() == {"host": "httpbin", "gateways": ["mesh"]}
    assert routemap.owner_reference()["uid"] == "u1"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (None, 'routemap "shop/httpbin": data.strSpec is missing'),
        ("versions: [", 'routemap "shop/httpbin": data.strSpec is not valid YAML'),
        ("versions: []", "versions: list should have at least 1 item"),
        (
            "versions: [{resources: [{gvrShort: svc}]}]",
            "versions[0].resources[0].name: required field is missing",
        ),
        (
            "versions: [{resources: [{gvrShort: svc, name: a}], weight: -1}]",
            "versions[0].weight: input should be greater",
        ),
        (
            "versions: [{resources: [{gvrShort: svc, name: a}]}]\nrouting: {router: x, strategy: dark}",
            "routing.strategy",
        ),
    ],
)
def test_malformed_routemaps_name_the_field(spec: str | None, message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_routemap(configmap(spec))


def annotated(weight: str | None) -> dict:
    return {"metadata": {"annotations": {} if weight is None else {WEIGHT_ANNOTATION: weight}}}


def test_the_weight_annotation_wins_over_the_routemap_weight_over_the_default() -> None:
    first, second = parse_routemap(configmap(SPEC)).spec.versions
    # the first resource that carries a valid annotation wins; missing objects are skipped
    assert desired_weight(first, [None, annotated("bad"), annotated("7"), annotated("3")]) == (
        7,
        "annotation",
    )
    assert desired_weight(first, [annotated("-1"), None]) == (90, "routemap")
    assert desired_weight(second, [annotated(None)]) == (1, "default")


@pytest.mark.parametrize(
    ("desired", "available", "routed"),
    [
        ((90, 10), (True, True), (90, 10)),
        ((90, 10), (False, True), (0, 10)),
        ((90, 10), (False, False), (1, 0)),  # nothing serves: the primary carries everything
        ((0, 0), (True, True), (1, 0)),
        ((), (), ()),
    ],
)
def test_routed_weights(
    desired: tuple[int, ...], available: tuple[bool, ...], routed: tuple[int, ...]
) -> None:
    assert routed_weights(desired, available) == routed
