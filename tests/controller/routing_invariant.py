"""The routing invariant, checked over the cluster's whole write history (fake or real).

**No routing object ever sends traffic to a version that was unavailable when it was written.**

:class:`History` records every committed change: on the fake, a store listener (called under the
store's lock, so nothing is missed and the order is the commit order); on a real server, a watch
per kind from the resourceVersion of a list, merged in resourceVersion order (which is etcd's
commit order), and the writes judged are those of the controller's ServiceAccount in the apiserver's
audit log. :func:`violations` replays it: for each write of a routing object (an object labelled
``iter8.tools/routemap`` that is not a status ConfigMap) made through the API, it takes the state of every object just before that write,
finds the routemap that owns the routing object, computes each version's availability from
scratch (deliberately *not* with the controller's code: exists with the watch label, not being
deleted, conditions True with a current observedGeneration) and checks every version the routing
object sends traffic to. One exception, the documented fallback: when no version is available,
the primary may carry the traffic (the routing object must point somewhere).

It also checks **the drain rule**: when a version's resource finally disappears (the finalizer
was released), no routing object alive at that moment may still send traffic to that version.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kubectl_iter8.kube import GVR
from kubectl_iter8.routemap import RouteMap, parse_routemap
from kubectl_iter8.testing import ApiError, AuditRecord, Event, FakeKube
from kubectl_iter8.testing.real import RealKube

Obj = dict[str, Any]
#: gvrShort -> (fake resource key, conditions that must be True)
TYPES: dict[str, tuple[str, tuple[str, ...]]] = {
    "deploy": ("deployments.apps", ("Available",)),
    "svc": ("services", ()),
    "cm": ("configmaps", ()),
    "isvc": ("inferenceservices.serving.kserve.io", ("Ready",)),
}
#: What a real server's history watches: the versions' kinds and the routing kinds.
WATCHED = ("deployments", "services", "configmaps", "inferenceservices", "virtualservices", "httproutes")


@dataclass
class History:
    """Every committed change of one cluster, in commit order (resourceVersion order)."""

    events: list[Event] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    #: How many watches of each kind have ended (see :meth:`sync`).
    _watches_ended: dict[str, int] = field(default_factory=dict)
    #: Where a real server's audit log stood when recording began.
    _audit_offset: int = 0

    @classmethod
    def attach(cls, kube: FakeKube | RealKube) -> History:
        """Record every change: a store listener on the fake, watches of :data:`WATCHED` on a real server."""
        history = cls()
        if isinstance(kube, FakeKube):
            with kube.store.lock:
                kube.store.listeners.append(history.events.append)
            return history
        history._audit_offset = kube.control_plane.audit_offset()
        for resource in WATCHED:
            try:
                gvr = kube.resource(resource)
            except ApiError:
                continue  # a kind whose CRD the test did not load
            items, rv = kube.api.list_versioned(gvr, kube.namespace)
            key = f"{gvr.resource}.{gvr.group}" if gvr.group else gvr.resource
            history.events += [
                Event(int(o["metadata"]["resourceVersion"]), "ADDED", key, None, o) for o in items
            ]
            history._watches_ended[key] = 0
            thread = threading.Thread(target=history._watch, args=(kube, gvr, key, rv), daemon=True)
            thread.start()
            history._threads.append(thread)
        return history

    def _watch(self, kube: RealKube, gvr: GVR, key: str, rv: str) -> None:
        while not self._stop.is_set():
            stream = kube.api.watch(gvr, kube.namespace, resource_version=rv, timeout_seconds=1)
            with contextlib.closing(stream):
                for event in stream:
                    obj = event["object"]
                    if event["type"] in ("ADDED", "MODIFIED", "DELETED"):
                        rv = obj["metadata"]["resourceVersion"]
                        self.events.append(Event(int(rv), event["type"], key, None, obj))
                    elif event["type"] == "BOOKMARK":
                        rv = obj["metadata"]["resourceVersion"]
                    else:
                        raise AssertionError(f"the history's watch of {key} failed: {obj}")
            self._watches_ended[key] = self._watches_ended.get(key, 0) + 1

    def sync(self) -> None:
        """Wait until the history holds every change made so far (a no-op on the fake).

        A watch that opened after this call, and then ended, was sent every change committed before
        it opened: so two more ended watches per kind are enough.
        """
        start = dict(self._watches_ended)
        deadline = time.monotonic() + 15
        while any(self._watches_ended.get(k, 0) < n + 2 for k, n in start.items()):
            if time.monotonic() > deadline:
                raise AssertionError("the history's watches did not catch up in 15 s")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop recording (a real server's watches end within their 1 s timeout)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(10)
        self.events.sort(key=lambda e: e.rv)

    def audit(self, kube: FakeKube | RealKube) -> list[AuditRecord]:
        """The writes the invariant judges: the fake's API writes; on a real server, the writes of any
        ServiceAccount (the controller's), from the apiserver's audit log."""
        if isinstance(kube, FakeKube):
            return kube.audit
        records = []
        for event in kube.control_plane.audit(self._audit_offset):
            ref, user = event.get("objectRef") or {}, (event.get("user") or {}).get("username", "")
            stored = event.get("responseObject") or {}
            if (
                ref.get("namespace") == kube.namespace
                and event.get("verb") in ("create", "update", "patch")
                and not ref.get("subresource")
                and user.startswith("system:serviceaccount:")
                and "resourceVersion" in (stored.get("metadata") or {})
            ):
                resource = f"{ref['resource']}.{ref['apiGroup']}" if ref.get("apiGroup") else ref["resource"]
                records.append(
                    AuditRecord(
                        event["verb"],
                        resource,
                        ref["namespace"],
                        ref["name"],
                        stored["metadata"]["resourceVersion"],
                        0.0,
                    )
                )
        return records


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
