"""The routing invariant, checked over the fake API server's whole write history.

**No routing object ever sends traffic to a version that was unavailable when it was written.**

:class:`History` records every committed change of the fake (a store listener, called under the
store's lock, so nothing is missed and the order is the commit order). :func:`violations` replays
it: for each write of a routing object (an object labelled ``iter8.tools/routemap`` that is not a
status ConfigMap) made through the API, it takes the state of every object just before that write,
finds the routemap that owns the routing object, computes each version's availability from
scratch (deliberately *not* with the controller's code: exists with the watch label, not being
deleted, conditions True with a current observedGeneration) and checks every version the routing
object sends traffic to. One exception, the documented fallback: when no version is available,
the primary may carry the traffic (the routing object must point somewhere).

It also checks **the drain rule**: when a version's resource finally disappears (the finalizer
was released), no routing object alive at that moment may still send traffic to that version.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kubectl_iter8.routemap import RouteMap, parse_routemap
from kubectl_iter8.testing import AuditRecord, Event, FakeKube

Obj = dict[str, Any]
#: gvrShort -> (fake resource key, conditions that must be True)
TYPES: dict[str, tuple[str, tuple[str, ...]]] = {
    "deploy": ("deployments.apps", ("Available",)),
    "svc": ("services", ()),
    "cm": ("configmaps", ()),
    "isvc": ("inferenceservices.serving.kserve.io", ("Ready",)),
}


@dataclass
class History:
    """Every committed change of one fake, in commit order."""

    events: list[Event] = field(default_factory=list)

    @classmethod
    def attach(cls, kube: FakeKube) -> History:
        history = cls()
        with kube.store.lock:
            kube.store.listeners.append(history.events.append)
        return history


def routed_versions(obj: Obj, routemap: RouteMap) -> set[int]:
    """Versions the test router's routing ConfigMap sends traffic to (weights, matches, mirrors)."""
    routes = json.loads((obj.get("data") or {}).get("routes") or "[]")
    return {
        int(r["version"])
        for r in routes
        if r.get("weight", 0) > 0 or r.get("match") or r.get("mirror", 0) > 0 or r.get("default")
    }


def istio_destinations(obj: Obj, routemap: RouteMap) -> set[int]:
    """Versions an Istio VirtualService sends traffic to: weighted (or only) routes, and mirrors.

    A destination host names a version through the version's first ``svc`` resource (short name
    or ``name.namespace.svc...``); a host that names no version is a violation of its own (-1).
    """
    hosts: dict[str, int] = {}
    for index, version in enumerate(routemap.spec.versions):
        for ref in version.resources:
            if ref.gvr_short in ("svc", "service"):
                namespace = ref.namespace or routemap.namespace
                hosts.setdefault(ref.name, index)
                hosts.setdefault(f"{ref.name}.{namespace}.svc.cluster.local", index)
                break
    found: set[int] = set()

    def add(destination: Obj) -> None:
        found.add(hosts.get(str(destination.get("host")), -1))

    for http in (obj.get("spec") or {}).get("http") or []:
        route = http.get("route") or []
        for entry in route:
            if entry.get("weight", 100 if len(route) == 1 else 0) > 0:
                add(entry["destination"])
        if http.get("mirror") and (http.get("mirrorPercentage") or {}).get("value", 100) > 0:
            add(http["mirror"])
        for mirror in http.get("mirrors") or []:
            if (mirror.get("percentage") or {}).get("value", 100) > 0:
                add(mirror["destination"])
    return found


def _ready(obj: Obj | None, conditions: Iterable[str]) -> bool:
    if obj is None:
        return False
    meta = obj["metadata"]
    if (meta.get("labels") or {}).get("iter8.tools/watch") != "true" or meta.get("deletionTimestamp"):
        return False
    wanted = list(conditions)
    if not wanted:
        return True
    status = obj.get("status") or {}
    generation = meta.get("generation")
    if generation is not None and (status.get("observedGeneration") or 0) < generation:
        return False
    found = {str(c.get("type")).lower(): c for c in status.get("conditions") or []}
    return all(str((found.get(w.lower()) or {}).get("status")).lower() == "true" for w in wanted)


def violations(
    audit: list[AuditRecord],
    events: list[Event],
    destinations: Callable[[Obj, RouteMap], set[int]] = routed_versions,
    types: Mapping[str, tuple[str, tuple[str, ...]]] = TYPES,
) -> tuple[int, list[str]]:
    """(routing writes checked, one message per violation)."""
    by_rv = {e.rv: e for e in events}
    writes = {
        int(a.resource_version)
        for a in audit
        if a.source == "api" and a.verb in ("create", "update", "patch") and a.subresource is None
    }
    state: dict[tuple[str, str, str], Obj] = {}
    #: The last known version of every routemap by uid, deleted ones included: a write that races
    #: with the routemap's deletion is still checked against the versions it routed to.
    routemaps: dict[str, Obj] = {}
    checked = 0
    problems: list[str] = []
    for rv in sorted(by_rv):
        event = by_rv[rv]
        obj = event.new
        meta = obj["metadata"]
        labels = meta.get("labels") or {}
        is_routing = (
            "iter8.tools/routemap" in labels
            and labels.get("iter8.tools/kind") != "routemap-status"
            and event.type != "DELETED"
        )
        if rv in writes and is_routing:
            checked += 1
            problems += _check(rv, obj, state, routemaps, destinations, types)
        key = (event.resource, meta.get("namespace") or "", meta["name"])
        if event.type == "DELETED":
            problems += _check_drained(rv, key, state, routemaps, destinations, types)
        if event.resource == "configmaps" and labels.get("iter8.tools/kind") == "routemap":
            routemaps[meta["uid"]] = obj
        if event.type == "DELETED":
            state.pop(key, None)
        else:
            state[key] = obj
    return checked, problems


def _availability(
    routemap: RouteMap,
    state: Mapping[tuple[str, str, str], Obj],
    types: Mapping[str, tuple[str, tuple[str, ...]]],
) -> list[bool]:
    available = []
    for version in routemap.spec.versions:
        ok = True
        for ref in version.resources:
            resource, conditions = types[ref.gvr_short]
            found = state.get((resource, ref.namespace or routemap.namespace, ref.name))
            ok = ok and _ready(found, conditions)
        available.append(ok)
    return available


def _check_drained(
    rv: int,
    gone: tuple[str, str, str],
    state: Mapping[tuple[str, str, str], Obj],
    routemaps: Mapping[str, Obj],
    destinations: Callable[[Obj, RouteMap], set[int]],
    types: Mapping[str, tuple[str, tuple[str, ...]]],
) -> list[str]:
    """The drain rule: when a version's resource finally disappears, no live routing object may
    still send traffic to that version (the finalizer's promise). Same fallback exception."""
    problems = []
    for obj in state.values():
        labels = obj["metadata"].get("labels") or {}
        if "iter8.tools/routemap" not in labels or labels.get("iter8.tools/kind") == "routemap-status":
            continue
        owners = [o.get("uid") for o in obj["metadata"].get("ownerReferences") or []]
        routemap_obj = next((routemaps[uid] for uid in owners if uid in routemaps), None)
        if routemap_obj is None:
            continue
        routemap = parse_routemap(routemap_obj)
        available = _availability(routemap, state, types)
        for index in destinations(obj, routemap):
            if not 0 <= index < len(routemap.spec.versions) or (index == 0 and not any(available)):
                continue
            for ref in routemap.spec.versions[index].resources:
                resource, _ = types[ref.gvr_short]
                if (resource, ref.namespace or routemap.namespace, ref.name) == gone:
                    problems.append(
                        f"rv {rv}: {gone[0]} {gone[1]}/{gone[2]} deleted while "
                        f"{obj['metadata']['name']} still sends traffic to version {index}"
                    )
    return problems


def _check(
    rv: int,
    obj: Obj,
    state: Mapping[tuple[str, str, str], Obj],
    routemaps: Mapping[str, Obj],
    destinations: Callable[[Obj, RouteMap], set[int]],
    types: Mapping[str, tuple[str, tuple[str, ...]]],
) -> list[str]:
    meta = obj["metadata"]
    what = f"rv {rv}: {obj.get('kind')} {meta.get('namespace')}/{meta['name']}"
    owners = {o.get("uid") for o in meta.get("ownerReferences") or []}
    routemap_obj = next((routemaps[uid] for uid in owners if uid in routemaps), None)
    if routemap_obj is None:
        return [f"{what}: not owned by any routemap ever seen"]
    routemap = parse_routemap(routemap_obj)
    available = _availability(routemap, state, types)
    problems = []
    for index in sorted(destinations(obj, routemap)):
        if not 0 <= index < len(available):
            problems.append(f"{what}: sends traffic to version {index}, which the routemap does not have")
        elif not available[index] and not (index == 0 and not any(available)):
            problems.append(f"{what}: sends traffic to version {index}, unavailable at that moment")
    return problems
