"""When a Kubernetes object counts as ready: the rule the ``ready`` task and the controller share.

An object is ready when it is not being deleted and every wanted condition (type matched
case-insensitively) has status ``True`` in a status that is current: when the object has a
``metadata.generation``, ``status.observedGeneration`` (and a condition's own
``observedGeneration``, where it has one) must have caught up with it, so a stale ``Available``
from before the last change does not count (``kubectl wait``'s logic). With no wanted conditions,
existing is enough. Pure: the caller fetched the object.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def readiness(obj: dict[str, Any], wanted: Sequence[str]) -> str | None:
    """None when ``obj`` is ready; otherwise why not, in a few words."""
    meta = obj.get("metadata", {})
    if meta.get("deletionTimestamp"):
        return "it is being deleted"
    if not wanted:
        return None
    status = obj.get("status") or {}
    generation = meta.get("generation")
    observed = status.get("observedGeneration")
    if generation is not None and observed is None:
        return "no status reported yet"
    if generation is not None and observed < generation:
        return f"its status is for generation {observed}, the object is at generation {generation}"
    conditions = {str(c.get("type", "")).lower(): c for c in status.get("conditions") or []}
    for name in wanted:
        condition = conditions.get(name.lower())
        if condition is None:
            return f"condition {name} is not reported yet"
        if str(condition.get("status", "")).lower() != "true":
            reason = f" ({condition['reason']})" if condition.get("reason") else ""
            return f"condition {name} is {condition.get('status')}{reason}"
        cond_generation = condition.get("observedGeneration")
        if generation is not None and cond_generation is not None and cond_generation < generation:
            return f"condition {name} is for generation {cond_generation}, the object at {generation}"
    return None
