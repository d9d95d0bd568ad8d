"""The pure plan of a routemap: from the caches to the routing objects it should have.

No API, no clock: :func:`plan` reads a routemap and the cached objects of its resources and decides,
per version, whether it is available and which weight it gets; :func:`desired_objects` asks the
router plugin to render and stamps each object with the namespace, the owner reference and a
digest of what was rendered; :func:`up_to_date` says whether a live object already is what was
rendered, so a resync of an unchanged routemap writes nothing. The routemap reconciler
(:mod:`.routemaps`) does the writing; tests call these directly.

**Availability.** A version is available when every one of its resources has a known type, is in
the cache (it exists *and* carries ``iter8.tools/watch: "true"``), is not being deleted, and meets
its type's readiness rule (:func:`kubectl_iter8.readiness.readiness`: conditions True with a
current observedGeneration).

**Weights.** The annotation ``iter8.tools/weight`` on any of the version's resources wins over the
routemap's ``weight``; when several resources carry one, the first in the routemap's order wins
(Iter8 looked only at the first resource; any is friendlier to ``kubectl annotate``). Without
either the weight is 1. An unavailable version gets 0; when every weight is 0 the primary
(version 0) gets 1, so the routing objects always send traffic somewhere. The rules live in
:mod:`kubectl_iter8.routemap` (:func:`~kubectl_iter8.routemap.desired_weight`,
:func:`~kubectl_iter8.routemap.routed_weights`), shared with ``kubectl iter8 release``.

**Iter8 v1.x routemaps** (``routingTemplates`` instead of ``routing``) follow Iter8's weight rule
(:func:`~kubectl_iter8.routemap.iter8_desired_weight`: the annotation of a version's *first*
resource only) and are rendered by :mod:`.routing_templates`, then gated like a router's output:
only ``templateKinds``, stamped the same way.

**Router options** are validated here, once (:func:`kubectl_iter8.validation.router_config`), and
the router renders from the validated model.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from kubectl_iter8.boundedyaml import truncate
from kubectl_iter8.errors import Iter8Error
from kubectl_iter8.readiness import readiness
from kubectl_iter8.registry import ResourceType, RouterRegistry, RoutingKind, kind_name, kind_of
from kubectl_iter8.routemap import (
    MANAGED_BY,
    WATCH_LABEL,
    RouteMap,
    RoutingState,
    desired_weight,
    iter8_desired_weight,
    routed_weights,
)
from kubectl_iter8.validation import router_config

from .config import DEFAULT_TEMPLATE_KINDS
from .errors import PermanentError

Obj = dict[str, Any]
#: (resource type name, namespace, name)
ResourceId = tuple[str, str, str]
Lookup = Callable[[str, str, str], Obj | None]

FIELD_MANAGER = "iter8-controller"
#: Digest of the rendered object, so an unchanged rendering is recognised without a write.
DIGEST_ANNOTATION = "iter8.tools/applied-digest"
ROUTEMAP_LABEL = "iter8.tools/routemap"


@dataclass(frozen=True)
class VersionPlan:
    """What the controller decided for one version."""

    name: str
    available: bool
    weight: int
    #: Why the version is unavailable (None when available).
    reason: str | None
    resources: tuple[ResourceId, ...]


@dataclass(frozen=True)
class Plan:
    versions: tuple[VersionPlan, ...]

    @property
    def state(self) -> RoutingState:
        return RoutingState(
            available=tuple(v.available for v in self.versions),
            weights=tuple(v.weight for v in self.versions),
        )

    def unavailable_resources(self) -> frozenset[ResourceId]:
        return frozenset(r for v in self.versions if not v.available for r in v.resources)


def resource_ids(routemap: RouteMap, types: Mapping[str, ResourceType]) -> list[tuple[ResourceId, ...]]:
    """Per version, the resources it is made of: the type by its canonical name (``types`` may
    answer for aliases too), the namespace defaulted to the routemap's."""

    def kind(short: str) -> str:
        rtype = types.get(short)
        return rtype.name if rtype is not None else short

    return [
        tuple(
            (kind(ref.gvr_short), ref.namespace or routemap.namespace, ref.name) for ref in version.resources
        )
        for version in routemap.spec.versions
    ]


def _availability(rid: ResourceId, obj: Obj | None, types: Mapping[str, ResourceType]) -> str | None:
    kind, namespace, name = rid
    where = f'{kind} "{namespace}/{name}"'
    rtype = types.get(kind)
    if rtype is None:
        return f"{where}: unknown resource type {kind!r}"
    if obj is None:
        return f"{where} does not exist or is not labelled {WATCH_LABEL}=true"
    why = readiness(obj, list(rtype.conditions))
    return None if why is None else f"{where}: {why}"


#: What the controller reads of a watched resource; its informers keep nothing else (client-go's
#: transform), so 50,000 cached Deployments cost their metadata and conditions, not their specs:
#: readiness (deletion, generation, conditions), the weight annotation, the watch label, and the
#: finalizer bookkeeping (finalizers, resourceVersion for the patch's precondition).
CACHED_METADATA = (
    "name", "namespace", "uid", "resourceVersion", "generation", "labels", "annotations",
    "finalizers", "deletionTimestamp",
)  # fmt: skip
#: The key of a cached view holding a digest of the object's ``spec.template`` (pods' specs).
TEMPLATE_DIGEST = "iter8TemplateDigest"
CACHED_STATUS = ("observedGeneration", "conditions")
#: Of each condition, what readiness reads (not its message and timestamps).
CACHED_CONDITION = ("type", "status", "reason", "observedGeneration")


def routemap_view(cm: Obj) -> Obj:
    """A routemap ConfigMap without its ``managedFields``: on a real server they are often larger
    than the routemap, and nothing here reads them."""
    meta = {k: v for k, v in (cm.get("metadata") or {}).items() if k != "managedFields"}
    return {**cm, "metadata": meta}


def cached_view(obj: Obj, *, template_digest: bool = False) -> Obj:
    """``obj`` with only what the plan and the finalizers read (see :data:`CACHED_METADATA`), and
    with ``template_digest`` (a controller that runs rollouts) a digest of its pod template."""
    meta = obj.get("metadata") or {}
    status = obj.get("status") or {}
    view: Obj = {
        "apiVersion": obj.get("apiVersion"),
        "kind": obj.get("kind"),
        "metadata": {k: meta[k] for k in CACHED_METADATA if k in meta},
    }
    if isinstance(status, dict):
        kept = {k: status[k] for k in CACHED_STATUS if k in status}
        if isinstance(kept.get("conditions"), list):
            kept["conditions"] = [
                {k: c[k] for k in CACHED_CONDITION if k in c} if isinstance(c, dict) else c
                for c in kept["conditions"]
            ]
        view["status"] = kept
    spec = obj.get("spec") if template_digest else None
    template = spec.get("template") if isinstance(spec, dict) else None
    if isinstance(template, dict):
        # What tells a rollout that a version changed in place (a new image): the pod template's
        # digest, not the generation, which scaling changes too.
        view[TEMPLATE_DIGEST] = digest(template)
    return view


def plan(
    routemap: RouteMap,
    lookup: Lookup,
    types: Mapping[str, ResourceType],
    weights: Sequence[int] | None = None,
) -> Plan:
    """Availability and weights of every version, from the cache only.

    :param weights: the desired weights, when a rollout decides them instead of the routemap and
        the annotations (availability still decides what is routed).
    """
    all_rids = resource_ids(routemap, types)
    # Routemaps written as Iter8 v1.x wrote them get Iter8's weights (docs/iter8-compat.md).
    weigh = desired_weight if routemap.spec.routing_templates is None else iter8_desired_weight
    reasons: list[str | None] = []
    desired: list[int] = []
    for version, rids in zip(routemap.spec.versions, all_rids, strict=True):
        objs = [lookup(*rid) for rid in rids]
        reasons.append(
            next(
                (why for rid, obj in zip(rids, objs, strict=True) if (why := _availability(rid, obj, types))),
                None,
            )
        )
        desired.append(weigh(version, objs)[0])
    routed = routed_weights(desired if weights is None else weights, [reason is None for reason in reasons])
    return Plan(
        tuple(
            VersionPlan(version.label, reason is None, weight, reason, rids)
            for version, rids, reason, weight in zip(
                routemap.spec.versions, all_rids, reasons, routed, strict=True
            )
        )
    )


def digest(obj: Obj) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def desired_objects(
    routemap: RouteMap,
    state: RoutingState,
    routers: RouterRegistry,
    template_kinds: tuple[RoutingKind, ...] = DEFAULT_TEMPLATE_KINDS,
    types: Mapping[str, ResourceType] | None = None,
) -> list[Obj]:
    """The routing objects the routemap's router (or its Iter8 ``routingTemplates``) renders, ready to apply.

    :param template_kinds: what a router that declares ``kinds = None`` (``template``), and
        routing templates, may render.
    :param types: the resource types, by which a routing template's ``gvrShort`` is resolved.
    :raises PermanentError: no ``routing``-less routemap raises (it renders nothing); an unknown
        router, an invalid router config, a rendering that fails or is malformed, or an object of
        a kind the router may not write does.
    """
    owner = routemap.owner_reference()
    if routemap.spec.routing_templates is not None:
        from .routing_templates import render

        rendered_by = render(routemap, state, frozenset(template_kinds), types or {})
        return [
            stamp(obj, routemap.namespace, owner, who=f"routingTemplates.{name}") for name, obj in rendered_by
        ]
    routing = routemap.spec.routing
    if routing is None:
        return []
    try:
        router = routers.get(routing.router)
    except Iter8Error as exc:
        raise PermanentError(str(exc)) from None
    try:
        config: BaseModel = router_config(router.Config, routing.options(), routing.router)
    except Iter8Error as exc:
        raise PermanentError(truncate(str(exc))) from None
    try:
        rendered = router.render(routemap, state, config)
    except Iter8Error as exc:
        raise PermanentError(truncate(f"router {routing.router!r}: {exc}")) from None
    except Exception as exc:
        message = f"router {routing.router!r} failed: {type(exc).__name__}: {exc}"
        raise PermanentError(truncate(message)) from exc
    declared = routers.kinds(routing.router)
    allowed = frozenset(template_kinds) if declared is None else declared
    for obj in rendered:
        if isinstance(obj, dict) and kind_of(obj) not in allowed:
            may = ", ".join(sorted(kind_name(k) for k in allowed)) or "nothing"
            raise PermanentError(
                f"router {routing.router!r} rendered a {kind_name(kind_of(obj))}; it may write only: {may}"
            )
    return [stamp(obj, routemap.namespace, owner, who=f"router {routing.router!r}") for obj in rendered]


def stamp(obj: Obj, namespace: str, owner: Obj, *, who: str = "the controller") -> Obj:
    """``obj`` in ``namespace``, owned by ``owner`` (the routemap), labelled, with its digest annotation."""
    if not isinstance(obj, dict) or not obj.get("apiVersion") or not obj.get("kind"):
        raise PermanentError(f"{who} rendered an object without apiVersion or kind")
    out = copy.deepcopy(obj)
    meta = out.setdefault("metadata", {})
    if not meta.get("name"):
        raise PermanentError(f"{who} rendered a {out['kind']} without metadata.name")
    meta["namespace"] = namespace
    meta["ownerReferences"] = [owner]
    meta["labels"] = {**(meta.get("labels") or {}), **MANAGED_BY, ROUTEMAP_LABEL: str(owner.get("name", ""))}
    annotations = dict(meta.get("annotations") or {})
    annotations.pop(DIGEST_ANNOTATION, None)
    meta["annotations"] = annotations
    annotations[DIGEST_ANNOTATION] = digest(out)
    return out


def contains(live: Any, desired: Any) -> bool:
    """Whether every field of ``desired`` has the same value in ``live`` (lists compared item by item)."""
    if isinstance(desired, dict):
        return isinstance(live, dict) and all(k in live and contains(live[k], v) for k, v in desired.items())
    if isinstance(desired, list):
        return (
            isinstance(live, list)
            and len(live) == len(desired)
            and all(contains(a, b) for a, b in zip(live, desired, strict=True))
        )
    return bool(live == desired)


def up_to_date(live: Obj | None, desired: Obj) -> bool:
    """True when applying ``desired`` would change nothing: same digest and every field in place.

    The digest catches fields a new rendering *drops* (server-side apply removes them, a subset
    check cannot see it); the subset check catches someone else having edited the object.
    """
    if live is None:
        return False
    live_digest = ((live.get("metadata") or {}).get("annotations") or {}).get(DIGEST_ANNOTATION)
    desired_digest = desired["metadata"]["annotations"][DIGEST_ANNOTATION]
    return bool(live_digest == desired_digest) and contains(live, desired)
