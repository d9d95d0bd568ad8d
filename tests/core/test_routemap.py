from __future__ import annotations

import pytest

from kubectl_iter8.errors import UsageError
from kubectl_iter8.routemap import parse_routemap

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
