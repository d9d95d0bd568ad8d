"""The ``gateway-api`` router: one Gateway API HTTPRoute (``gateway.networking.k8s.io/v1``) per routemap.

* blue-green: one rule whose backendRefs are the serving versions, weights as whole percentages
  that add up to 100;
* canary: one rule per serving candidate with its ``match`` (a list of HTTPRouteMatch; default:
  header ``traffic: test``), then a rule without matches to the primary. Gateway API orders rules
  by match precedence, not position: a rule with header matches wins over the catch-all one;
* mirror: one rule to the primary with a ``RequestMirror`` filter (``percent``) per serving candidate.

Every backendRef carries a ``ResponseHeaderModifier`` filter setting ``app-version: <version>``. A
version's backend is its first ``svc`` resource (with ``namespace`` when it is not the routemap's,
which needs a ReferenceGrant there) at ``port``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from kubectl_iter8.routemap import RouteMap, RoutingState

from .common import (
    DEFAULT_MATCH_HEADER,
    RouteError,
    RouterConfig,
    backend_name,
    blue_green_shares,
    check_state,
    metadata,
    mirror_percent,
    object_name,
    serving_candidates,
    strategy_of,
    validate_config,
)

API_VERSION = "gateway.networking.k8s.io/v1"
#: The HTTPRoute CRD allows at most 16 rules.
MAX_RULES = 16


class ParentRef(BaseModel):
    """A Gateway (or, for mesh routing, a Service) the HTTPRoute attaches to."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    group: str | None = None
    kind: str | None = None
    name: str = Field(min_length=1, max_length=253)
    namespace: str | None = Field(default=None, min_length=1, max_length=63)
    section_name: str | None = Field(default=None, alias="sectionName", min_length=1, max_length=253)
    port: int | None = Field(default=None, ge=1, le=65535)


class GatewayApiConfig(RouterConfig):
    """The ``routing`` options of the ``gateway-api`` router."""

    #: What the route attaches to: Gateways, or the app's Service for mesh (GAMMA) routing.
    parent_refs: list[ParentRef] = Field(alias="parentRefs", min_length=1, max_length=32)
    #: Host names the route matches; any when empty.
    hostnames: list[str] = Field(default_factory=list, max_length=16)
    #: The Service port of every version's backend (Gateway API requires one for Services).
    port: int = Field(default=80, ge=1, le=65535)
    #: Mirror strategy: the percentage of requests copied to each candidate; its weight (max 100) when unset.
    mirror_percentage: int | None = Field(default=None, alias="mirrorPercentage", ge=0, le=100)


def default_matches() -> list[dict[str, Any]]:
    name, value = DEFAULT_MATCH_HEADER
    return [{"headers": [{"type": "Exact", "name": name, "value": value}]}]


class GatewayApiRouter:
    """Routes to each version's Service through a Gateway API HTTPRoute."""

    name = "gateway-api"
    #: What it writes (the controller refuses anything else).
    kinds = (("gateway.networking.k8s.io", "HTTPRoute"),)
    Config: type[BaseModel] = GatewayApiConfig

    def render(
        self, routemap: RouteMap, state: RoutingState, config: BaseModel | Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        cfg = validate_config(GatewayApiConfig, config, self.name)
        check_state(routemap, state)
        versions = routemap.spec.versions

        def ref(index: int) -> dict[str, Any]:
            name, namespace = backend_name(routemap, index, "svc")
            out: dict[str, Any] = {"name": name}
            if namespace is not None:
                out["namespace"] = namespace
            out["port"] = cfg.port
            return out

        def backend(index: int, weight: int | None = None) -> dict[str, Any]:
            out = ref(index)
            if weight is not None:
                out["weight"] = weight
            header = {"name": cfg.version_header, "value": versions[index].label}
            out["filters"] = [{"type": "ResponseHeaderModifier", "responseHeaderModifier": {"set": [header]}}]
            return out

        strategy = strategy_of(routemap)
        rules: list[dict[str, Any]]
        if strategy == "blue-green":
            rules = [{"backendRefs": [backend(i, share) for i, share in blue_green_shares(state)]}]
        elif strategy == "canary":
            rules = [
                {
                    "matches": [dict(m) for m in versions[i].match or default_matches()],
                    "backendRefs": [backend(i)],
                }
                for i in serving_candidates(state)
            ]
            rules.append({"backendRefs": [backend(0)]})
        else:
            rule: dict[str, Any] = {"backendRefs": [backend(0)]}
            mirrors = [
                {
                    "type": "RequestMirror",
                    "requestMirror": {
                        "backendRef": ref(i),
                        "percent": round(mirror_percent(state, i, cfg.mirror_percentage)),
                    },
                }
                for i in serving_candidates(state)
            ]
            if mirrors:
                rule["filters"] = mirrors
            rules = [rule]
        if len(rules) > MAX_RULES:
            raise RouteError(
                f'routemap "{routemap.namespace}/{routemap.name}": {len(rules)} HTTPRoute rules '
                f"(one per serving candidate and one default) exceed Gateway API's {MAX_RULES}"
            )
        spec: dict[str, Any] = {
            "parentRefs": [p.model_dump(by_alias=True, exclude_none=True) for p in cfg.parent_refs]
        }
        if cfg.hostnames:
            spec["hostnames"] = list(cfg.hostnames)
        spec["rules"] = rules
        name = object_name(routemap, cfg)
        return [{"apiVersion": API_VERSION, "kind": "HTTPRoute", "metadata": metadata(name), "spec": spec}]
