"""The ``istio`` router: one Istio VirtualService per routemap.

* blue-green: one HTTP route splitting traffic between the serving versions, weights as whole
  percentages that add up to 100;
* canary: one HTTP route per serving candidate with its ``match`` (default: header
  ``traffic: test``), then a default route to the primary;
* mirror: all traffic to the primary; each serving candidate receives a copy of a share of the
  requests (``mirror`` + ``mirrorPercentage`` with one candidate, ``mirrors`` with several).

Every destination sets the response header ``app-version: <version>``. A version's destination is
its first ``svc`` resource (short name in the routemap's namespace, the FQDN elsewhere) at ``port``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, Field

from kubectl_iter8.routemap import RouteMap, RoutingState

from .common import (
    RouterConfig,
    backend_name,
    check_state,
    object_name,
    service_host,
    strategy_of,
    validate_config,
)
from .virtualservice import IstioApiVersion, http_routes, response_header, virtual_service


class IstioConfig(RouterConfig):
    """The ``routing`` options of the ``istio`` router."""

    #: The host clients address (the VirtualService's first host).
    host: str = Field(min_length=1)
    #: More hosts the VirtualService applies to, after ``host``.
    hosts: list[str] = Field(default_factory=list)
    #: Istio Gateways (``namespace/name`` or ``mesh``) the routes apply to; the mesh when empty.
    gateways: list[str] = Field(default_factory=list)
    #: The Service port of every version's destination; left out (Istio picks the only port) when unset.
    port: int | None = Field(default=None, ge=1, le=65535)
    #: Mirror strategy: the percentage of requests copied to each candidate; its weight (max 100) when unset.
    mirror_percentage: float | None = Field(default=None, alias="mirrorPercentage", ge=0, le=100)
    #: The VirtualService API version (``networking.istio.io/v1`` needs Istio 1.22 or later).
    api_version: IstioApiVersion = Field(default="networking.istio.io/v1", alias="apiVersion")


class IstioRouter:
    """Routes to each version's Service through an Istio VirtualService."""

    name = "istio"
    #: What it writes (the controller refuses anything else).
    kinds = (("networking.istio.io", "VirtualService"),)
    Config: type[BaseModel] = IstioConfig

    def render(
        self, routemap: RouteMap, state: RoutingState, config: BaseModel | Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        cfg = validate_config(IstioConfig, config, self.name)
        check_state(routemap, state)

        def target(index: int) -> dict[str, Any]:
            host = service_host(*backend_name(routemap, index, "svc"))
            return {"host": host} if cfg.port is None else {"host": host, "port": {"number": cfg.port}}

        def destination(index: int) -> dict[str, Any]:
            label = routemap.spec.versions[index].label
            return {"destination": target(index), "headers": response_header(cfg, label)}

        http = http_routes(routemap, state, strategy_of(routemap), destination, target, cfg.mirror_percentage)
        hosts = [cfg.host, *(h for h in cfg.hosts if h != cfg.host)]
        return [virtual_service(cfg.api_version, object_name(routemap, cfg), hosts, cfg.gateways, http)]
