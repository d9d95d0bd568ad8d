"""The ``iter8.tools/finalizer`` finalizer: pure, idempotent helpers (kopf's ``block_deletion``).

The controller adds the finalizer to every watched resource it sees alive, so that deleting one
sets a ``deletionTimestamp`` and waits instead of removing the object at once. The version the
resource belongs to then counts as unavailable, the routemaps that reference it are reconciled,
and only once routing objects without that version have been applied for *every* such routemap
is the finalizer removed and the deletion completed: traffic is moved off before the pods go.

The helpers compute the patch to send and return None when there is nothing to do, so calling
them twice never writes twice. The patch carries the object's resourceVersion: a concurrent
change answers 409 and the work is retried from a fresh cache, instead of overwriting someone
else's finalizer list. :class:`FinalizerReconciler` is the work a resource's key does with them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from kubectl_iter8.errors import KubeConflictError
from kubectl_iter8.kube import GVR, Kube
from kubectl_iter8.registry import ResourceType
from kubectl_iter8.routemap import FINALIZER, WATCH_LABEL

from .cache import Obj
from .errors import TemporaryError
from .plan import ResourceId
from .state import Key, RouteMapKey, SharedState
from .writer import Writer

log = logging.getLogger("kubectl_iter8.controller")
#: A watched resource from the caches: (kind, namespace, name) -> the object, or None.
Lookup = Callable[[str, str, str], "Obj | None"]


def has_finalizer(obj: dict[str, Any]) -> bool:
    return FINALIZER in ((obj.get("metadata") or {}).get("finalizers") or [])


def is_deleting(obj: dict[str, Any]) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


def add_patch(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The merge patch that adds the finalizer to a live object; None when present or deleting."""
    meta = obj.get("metadata") or {}
    if has_finalizer(obj) or is_deleting(obj):
        return None
    finalizers = [*(meta.get("finalizers") or []), FINALIZER]
    return {"metadata": {"finalizers": finalizers, "resourceVersion": meta.get("resourceVersion")}}


def remove_patch(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The merge patch that removes every occurrence of the finalizer; None when absent."""
    meta = obj.get("metadata") or {}
    if not has_finalizer(obj):
        return None
    finalizers = [f for f in meta.get("finalizers") or [] if f != FINALIZER]
    return {"metadata": {"finalizers": finalizers or None, "resourceVersion": meta.get("resourceVersion")}}


class FinalizerReconciler:
    """Adds the finalizer to every live watched resource and releases it from a deleting (or
    no-longer-watched) one once no routemap routes to it; reads the caches, writes as the leader."""

    def __init__(
        self,
        kube: Kube,
        writer: Writer,
        state: SharedState,
        *,
        lookup: Lookup,
        types: Mapping[str, ResourceType],
        requeue_after: Callable[[Key, float], None],
        retry_delay: float,
    ) -> None:
        self.kube = kube
        self.writer = writer
        self.state = state
        self.lookup = lookup
        self.types = types
        self.requeue_after = requeue_after
        self.retry_delay = retry_delay

    def reconcile(self, kind: str, namespace: str, name: str) -> None:
        """Add the finalizer to a live resource; release it from a deleting one once drained."""
        obj = self.lookup(kind, namespace, name)
        if not self.writer.is_leader():
            return
        if obj is None:
            self._release_unwatched(kind, namespace, name)
            return
        if is_deleting(obj):
            self.release_if_drained((kind, namespace, name), obj)
            return
        patch = add_patch(obj)
        if patch is not None:
            self._patch(kind, obj, patch, "add-finalizer")

    def _release_unwatched(self, kind: str, namespace: str, name: str) -> None:
        """A resource that left the cache without being deleted (its watch label was removed) still
        carries our finalizer: release it like a deletion, once no routing sends traffic to it."""
        rtype = self.types.get(kind)
        if rtype is None:
            return
        live = self.kube.find(GVR(rtype.group, rtype.version, rtype.resource), name, namespace)
        if live is None or not has_finalizer(live):
            return
        if ((live.get("metadata") or {}).get("labels") or {}).get(WATCH_LABEL) == "true":
            return  # the cache has not caught up yet; its event will come
        self.release_if_drained((kind, namespace, name), live)

    def release_if_drained(
        self, rid: ResourceId, obj: Obj, *, reconciling: RouteMapKey | None = None
    ) -> None:
        """Remove the finalizer once every routemap that references ``rid`` applied routing without
        it and none of them is being reconciled (except ``reconciling``, the caller's own)."""
        if not has_finalizer(obj):
            return
        undrained, busy = self.state.release_blockers(rid, reconciling)
        if undrained:
            return  # those routemaps are queued (the deletion changed the resource) and release it later
        if busy:
            # Drained everywhere, but a reconcile is running: look again shortly (two routemaps that
            # finish together would otherwise each wait for the other).
            self.requeue_after(Key(*rid), self.retry_delay)
            return
        patch = remove_patch(obj)
        assert patch is not None
        self._patch(rid[0], obj, patch, "remove-finalizer")
        log.info("%s %s/%s: traffic drained, finalizer removed", *rid)

    def _patch(self, kind: str, obj: Obj, patch: Obj, what: str) -> None:
        rtype = self.types[kind]
        gvr = GVR(rtype.group, rtype.version, rtype.resource)
        meta = obj["metadata"]
        try:
            self.writer.write(
                f"{what} {kind}/{meta['name']}",
                lambda: self.kube.patch(gvr, meta["name"], patch, meta.get("namespace"), kind="merge"),
            )
        except KubeConflictError as exc:
            raise TemporaryError(f"{kind} {meta['name']} changed meanwhile; retrying") from exc
