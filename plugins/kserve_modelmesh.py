"""The ``kserve-modelmesh`` router: an Istio VirtualService in front of KServe ModelMesh.

ModelMesh serves every model behind one Service (``modelmesh-serving``, gRPC port 8033) and picks the
model from the ``mm-vmodel-id`` request header. Each version is a ModelMesh InferenceService; all
destinations are the serving Service, each setting ``mm-vmodel-id`` to its version's first ``isvc``
resource name, plus the response header ``app-version: <version>``.

* blue-green: one route splitting traffic between the serving versions (percentages adding up to 100);
* canary: one route per serving candidate with its ``match`` (default: header ``traffic: test``), then
  a default route to the primary;
* mirror: not supported (Istio cannot set a header on mirrored requests, so the copy would reach
  the primary's model).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, Field

from kubectl_iter8.routemap import RouteMap, RoutingState

from .common import (
    RouteError,
    RouterConfig,
    backend_name,
    check_state,
    object_name,
    strategy_of,
    validate_config,
)
from .virtualservice import IstioApiVersion, http_routes, response_header, virtual_service

#: The request header ModelMesh selects the model (version) with.
MODEL_HEADER = "mm-vmodel-id"


class KServeModelMeshConfig(RouterConfig):
    """The ``routing`` options of the ``kserve-modelmesh`` router."""

    #: The model name clients use; the default host is ``<modelName>.<routemap namespace>``.
    model_name: str = Field(alias="modelName", min_length=1)
    #: The host clients address; ``<modelName>.<namespace>`` and its ``.svc.cluster.local`` form when unset.
    host: str | None = Field(default=None, min_length=1)
    #: The ModelMesh serving Service, as an Istio host (a short name resolves in the routemap's namespace).
    serving_service: str = Field(default="modelmesh-serving", alias="servingService", min_length=1)
    #: The serving Service's port (ModelMesh's gRPC port).
    port: int = Field(default=8033, ge=1, le=65535)
    #: Istio Gateways the routes apply to; Istio's default (mesh) when empty.
    gateways: list[str] = Field(default_factory=list)
    #: The VirtualService API version (``networking.istio.io/v1`` needs Istio 1.22 or later).
    api_version: IstioApiVersion = Field(default="networking.istio.io/v1", alias="apiVersion")


class KServeModelMeshRouter:
    """Routes to model versions served by ModelMesh, through an Istio VirtualService."""

    name = "kserve-modelmesh"
    #: What it writes (the controller refuses anything else).
    kinds = (("networking.istio.io", "VirtualService"),)
    Config: type[BaseModel] = KServeModelMeshConfig

    def render(
        self, routemap: RouteMap, state: RoutingState, config: BaseModel | Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        cfg = validate_config(KServeModelMeshConfig, config, self.name)
        check_state(routemap, state)
        strategy = strategy_of(routemap)
        if strategy == "mirror":
            raise RouteError(
                f'routemap "{routemap.namespace}/{routemap.name}": router {self.name} does not support '
                "the mirror strategy (use blue-green or canary)"
            )

        def destination(index: int) -> dict[str, Any]:
            model, _ = backend_name(routemap, index, "isvc")
            return {
                "destination": {"host": cfg.serving_service, "port": {"number": cfg.port}},
                "headers": {
                    "request": {"set": {MODEL_HEADER: model}},
                    **response_header(cfg, routemap.spec.versions[index].label),
                },
            }

        http = http_routes(routemap, state, strategy, destination, None, None)
        if cfg.host is not None:
            hosts = [cfg.host]
        elif routemap.namespace:
            short = f"{cfg.model_name}.{routemap.namespace}"
            hosts = [short, f"{short}.svc.cluster.local"]
        else:
            hosts = [cfg.model_name]
        return [virtual_service(cfg.api_version, object_name(routemap, cfg), hosts, cfg.gateways, http)]
