"""Built-in route plugins and resource types for the traffic controller.

Routers: ``istio`` (VirtualService), ``gateway-api`` (HTTPRoute), ``kserve-modelmesh`` (Istio in
front of ModelMesh) and ``template`` (user Jinja2 templates); see ``docs/routers.md``. Resource
types: ``deploy``, ``svc``, ``isvc``, ``cm``. Registered through the same hooks as any third-party
plugin's; the router modules (pydantic, Jinja2) are imported only when the hook runs.
"""

from __future__ import annotations

from kubectl_iter8.hookspecs import hookimpl
from kubectl_iter8.registry import ResourceTypeRegistry, RouterRegistry


@hookimpl
def iter8_register_routers(registry: RouterRegistry) -> None:
    from .gateway_api import GatewayApiRouter
    from .istio import IstioRouter
    from .kserve_modelmesh import KServeModelMeshRouter
    from .template import TemplateRouter

    for router in (IstioRouter(), GatewayApiRouter(), KServeModelMeshRouter(), TemplateRouter()):
        registry.register(router)


@hookimpl
def iter8_register_resource_types(registry: ResourceTypeRegistry) -> None:
    from .resource_types import BUILTIN_RESOURCE_TYPES

    for resource_type, aliases in BUILTIN_RESOURCE_TYPES:
        registry.add(resource_type.name, resource_type, aliases=aliases)
