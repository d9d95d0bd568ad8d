"""What the built-in route plugins share: config validation, who receives traffic, backends, weights.

Every helper here is pure. The traffic rules all routers follow (Iter8 v1.1's templates):

* a version *serves* when it is available and its weight is above 0; the primary (index 0) also
  serves when its weight is above 0 although it is unavailable, because the controller gives it the
  traffic when nothing is available (:class:`~kubectl_iter8.routemap.RoutingState`);
* a candidate that does not serve never appears as a weighted destination, a match route or a
  mirror target.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from kubectl_iter8.errors import UsageError
from kubectl_iter8.routemap import MANAGED_BY, RouteMap, RoutingState, Strategy
from kubectl_iter8.validation import router_config

#: The response header that names the version which served a request (Iter8's).
VERSION_HEADER = "app-version"
#: The canary match of a candidate that has none (Iter8's): requests with header ``traffic: test``.
DEFAULT_MATCH_HEADER = ("traffic", "test")
#: HTTP header names as Gateway API accepts them (RFC 7230 tokens).
HEADER_NAME_PATTERN = r"^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$"

C = TypeVar("C", bound=BaseModel)


class RouteError(UsageError):
    """A routemap cannot be rendered: bad router options, or versions the router cannot route to."""


class RouterConfig(BaseModel):
    """Options every built-in router (but ``template``) accepts."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    #: The name of the rendered routing object; the routemap's name when unset.
    name: str | None = Field(default=None, min_length=1, max_length=253)
    #: The response header that names the version which served the request.
    version_header: str = Field(
        default=VERSION_HEADER,
        alias="versionHeader",
        min_length=1,
        max_length=256,
        pattern=HEADER_NAME_PATTERN,
    )


def validate_config(model: type[C], options: Mapping[str, Any] | BaseModel, router: str) -> C:
    """The config a router's ``render`` was given, as ``model``.

    The controller hands routers the model it validated (:func:`kubectl_iter8.validation.router_config`),
    which is returned as it is; a mapping (a direct call, a test) is validated by the same function.

    :raises RouteError: one line naming each bad field, as ``routing.<field>``.
    """
    return router_config(model, options, router, error=RouteError)


def strategy_of(routemap: RouteMap) -> Strategy:
    routing = routemap.spec.routing
    return routing.strategy if routing is not None else "blue-green"


def check_state(routemap: RouteMap, state: RoutingState) -> None:
    """Refuse a state that does not describe the routemap's versions (a controller bug)."""
    count = len(routemap.spec.versions)
    if len(state.weights) != count or len(state.available) != count:
        raise RouteError(
            f'routemap "{routemap.namespace}/{routemap.name}": routing state has '
            f"{len(state.weights)} weights and {len(state.available)} availabilities for {count} versions"
        )


def serves(state: RoutingState, index: int) -> bool:
    """Whether version ``index`` may receive traffic (see the module docstring)."""
    if state.weights[index] <= 0:
        return False
    return index == 0 or state.available[index]


def weighted_versions(state: RoutingState) -> list[int]:
    """Blue-green: the versions that get a share, in order; the primary alone when none would."""
    serving = [i for i in range(len(state.weights)) if serves(state, i)]
    return serving or [0]


def blue_green_shares(state: RoutingState) -> list[tuple[int, int]]:
    """Blue-green: ``(version, whole percentage)`` of each version that gets a share, in order.

    The primary may be chosen with weight 0 (nothing serves): it then takes everything.
    """
    chosen = weighted_versions(state)
    return list(zip(chosen, percentages([max(state.weights[i], 1) for i in chosen]), strict=True))


def serving_candidates(state: RoutingState) -> list[int]:
    """Canary and mirror: the candidates (index >= 1) that get a match route or a mirror."""
    return [i for i in range(1, len(state.weights)) if serves(state, i)]


def percentages(weights: Sequence[int]) -> list[int]:
    """Relative weights as whole percentages that add up to exactly 100 (largest remainder).

    Ties in the remainders go to the earlier version, so the result is deterministic.
    """
    total = sum(weights)
    if total <= 0:
        raise ValueError("weights must add up to more than 0")
    exact = [w * 100 / total for w in weights]
    shares = [int(x) for x in exact]
    by_remainder = sorted(range(len(weights)), key=lambda i: (-(exact[i] - shares[i]), i))
    for i in by_remainder[: 100 - sum(shares)]:
        shares[i] += 1
    return shares


def mirror_percent(state: RoutingState, index: int, option: float | None) -> float:
    """The share of requests mirrored to candidate ``index``: the option, else its weight (max 100)."""
    if option is not None:
        return option
    return float(min(state.weights[index], 100))


def backend_name(routemap: RouteMap, index: int, gvr_short: str) -> tuple[str, str | None]:
    """Name and namespace (None when it is the routemap's) of version ``index``'s first ``gvr_short``.

    :raises RouteError: when the version has no resource of that type.
    """
    version = routemap.spec.versions[index]
    for ref in version.resources:
        if ref.gvr_short == gvr_short:
            namespace = ref.namespace if ref.namespace and ref.namespace != routemap.namespace else None
            return ref.name, namespace
    raise RouteError(
        f'routemap "{routemap.namespace}/{routemap.name}": version {index} ({version.label}) has no '
        f"{gvr_short} resource to route to"
    )


def service_host(name: str, namespace: str | None) -> str:
    """An Istio destination host: the short name in the routemap's namespace, else the FQDN."""
    return name if namespace is None else f"{name}.{namespace}.svc.cluster.local"


def object_name(routemap: RouteMap, config: RouterConfig) -> str:
    return config.name or routemap.name


def metadata(name: str) -> dict[str, Any]:
    """Rendered objects' metadata: the controller adds the namespace and the owner reference."""
    return {"name": name, "labels": dict(MANAGED_BY)}
