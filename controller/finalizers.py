"""The ``iter8.tools/finalizer`` finalizer: pure, idempotent helpers (kopf's ``block_deletion``).

The controller adds the finalizer to every watched resource it sees alive, so that deleting one
sets a ``deletionTimestamp`` and waits instead of removing the object at once. The version the
resource belongs to then counts as unavailable, the routemaps that reference it are reconciled,
and only once routing objects without that version have been applied for *every* such routemap
is the finalizer removed and the deletion completed: traffic is moved off before the pods go.

The helpers compute the patch to send and return None when there is nothing to do, so calling
them twice never writes twice. The patch carries the object's resourceVersion: a concurrent
change answers 409 and the work is retried from a fresh cache, instead of overwriting someone
else's finalizer list.
"""

from __future__ import annotations

from typing import Any

from kubectl_iter8.routemap import FINALIZER


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
