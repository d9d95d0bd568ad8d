"""A route plugin for the controller tests: renders a ConfigMap that lists where traffic goes.

Used in-process by the tests (``conftest.routers()``) and, through ``ITER8_PLUGINS``, by
``kubectl iter8 controller serve`` run as a separate process. Its output is what
:func:`routing_invariant.routed_versions` reads.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict

from kubectl_iter8 import hookimpl
from kubectl_iter8.registry import RouterRegistry
from kubectl_iter8.routemap import RouteMap, RoutingState


class RouteListConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    host: str = "app"
    #: The routing ConfigMap's name (default ``<routemap>-routing``).
    object_name: str | None = None


class RouteListRouter:
    """Renders one ConfigMap ``<routemap>-routing`` whose ``data.routes`` lists where traffic goes."""

    name = "test"
    kinds = (("", "ConfigMap"),)
    Config = RouteListConfig

    def render(self, routemap: RouteMap, state: RoutingState, config: BaseModel) -> list[dict[str, Any]]:
        assert isinstance(config, RouteListConfig)
        assert routemap.spec.routing is not None
        strategy = routemap.spec.routing.strategy
        routes: list[dict[str, Any]] = []
        weights = state.weights
        for index, version in enumerate(routemap.spec.versions):
            weight = weights[index]
            if weight <= 0:
                continue
            if strategy == "blue-green":
                routes.append({"version": index, "name": version.label, "weight": weight})
            elif index == 0:
                routes.append({"version": 0, "name": version.label, "default": True})
            elif strategy == "canary":
                match = version.match or [{"headers": {"traffic": {"exact": "test"}}}]
                routes.append({"version": index, "name": version.label, "match": match})
            else:
                routes.append({"version": index, "name": version.label, "mirror": weight})
        return [
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": config.object_name or f"{routemap.name}-routing"},
                "data": {"host": config.host, "routes": json.dumps(routes, sort_keys=True)},
            }
        ]


@hookimpl
def iter8_register_routers(registry: RouterRegistry) -> None:
    registry.register(RouteListRouter())
