"""Istio VirtualService pieces that two routers share (``istio``, ``kserve-modelmesh``).

A helper beside the routers, as :mod:`.common` is, so that the routers stay independent of each
other (the import contracts check it): the ``http`` routes for each strategy, the response header
naming the version, and the VirtualService object around them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from kubectl_iter8.routemap import RouteMap, RoutingState, Strategy

from .common import (
    DEFAULT_MATCH_HEADER,
    RouterConfig,
    blue_green_shares,
    metadata,
    mirror_percent,
    serving_candidates,
)

IstioApiVersion = Literal["networking.istio.io/v1", "networking.istio.io/v1beta1"]


def default_match() -> list[dict[str, Any]]:
    name, value = DEFAULT_MATCH_HEADER
    return [{"headers": {name: {"exact": value}}}]


def response_header(config: RouterConfig, label: str) -> dict[str, Any]:
    return {"response": {"set": {config.version_header: label}}}


def http_routes(
    routemap: RouteMap,
    state: RoutingState,
    strategy: Strategy,
    destination: Callable[[int], dict[str, Any]],
    mirror_target: Callable[[int], dict[str, Any]] | None,
    mirror_percentage: float | None,
) -> list[dict[str, Any]]:
    """The ``http`` section of a VirtualService for ``strategy``.

    :param destination: a version's route destination (``destination`` and ``headers``, no weight).
    :param mirror_target: a version's mirror ``Destination``; None when the router cannot mirror.
    """
    versions = routemap.spec.versions
    if strategy == "blue-green":
        return [{"route": [{**destination(i), "weight": share} for i, share in blue_green_shares(state)]}]
    if strategy == "canary":
        routes: list[dict[str, Any]] = [
            {"match": [dict(m) for m in versions[i].match or default_match()], "route": [destination(i)]}
            for i in serving_candidates(state)
        ]
        return [*routes, {"route": [destination(0)]}]
    if mirror_target is None:
        raise AssertionError("the caller refuses the mirror strategy")
    route: dict[str, Any] = {"route": [destination(0)]}
    mirrored = serving_candidates(state)
    if len(mirrored) == 1:
        route["mirror"] = mirror_target(mirrored[0])
        route["mirrorPercentage"] = {"value": mirror_percent(state, mirrored[0], mirror_percentage)}
    elif mirrored:
        route["mirrors"] = [
            {
                "destination": mirror_target(i),
                "percentage": {"value": mirror_percent(state, i, mirror_percentage)},
            }
            for i in mirrored
        ]
    return [route]


def virtual_service(
    api_version: str, name: str, hosts: list[str], gateways: list[str], http: list[dict[str, Any]]
) -> dict[str, Any]:
    spec: dict[str, Any] = {"hosts": hosts}
    if gateways:
        spec["gateways"] = list(gateways)
    spec["http"] = http
    return {"apiVersion": api_version, "kind": "VirtualService", "metadata": metadata(name), "spec": spec}
