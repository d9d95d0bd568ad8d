"""The status ConfigMap ``<routemap>-iter8-status``: what a user reads to know what the controller did.

Pure functions: :func:`status_object` builds the object to apply (owned by the routemap, labelled
``iter8.tools/kind: routemap-status`` so that neither the routemap informer nor the ``cm`` resource
type ever sees it, stamped with a digest so an unchanged status is never written again), and
:func:`read_status` reads one back (the manager uses its ``routingObjects`` to find routing
objects a routemap no longer renders, across restarts).

Why not the routemap itself: it is the user's object (``kubectl apply`` would fight over it), and
writing it would wake the routemap informer, a feedback loop.
"""

from __future__ import annotations

from typing import Any

from kubectl_iter8.routemap import KIND_LABEL, MANAGED_BY, RouteMap

from .plan import Plan, stamp

Obj = dict[str, Any]
STATUS_SUFFIX = "-iter8-status"
STATUS_KIND = "routemap-status"


def status_name(routemap_name: str) -> str:
    return routemap_name + STATUS_SUFFIX


def dumper(yaml: Any) -> Any:
    """libyaml's safe dumper where PyYAML has it (several times faster)."""
    return getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def read_status(live: Obj | None) -> dict[str, Any]:
    """The status stored in a live status ConfigMap (empty when absent or unreadable)."""
    from kubectl_iter8 import boundedyaml

    if live is None:
        return {}
    try:
        # Bounded: anyone who may edit routemaps may edit this ConfigMap too.
        status = boundedyaml.load((live.get("data") or {}).get("status") or "")
    except boundedyaml.BoundedYAMLError:
        return {}
    return status if isinstance(status, dict) else {}


def status_object(
    cm: Obj,
    routemap: RouteMap | None,
    decided: Plan | None,
    objects: list[dict[str, str]] | None,
    error: str | None,
    previous: dict[str, Any] | None = None,
) -> Obj:
    """The status ConfigMap for the routemap ConfigMap ``cm``.

    :param objects: the routing objects applied; None keeps ``previous``'s (a failure report).
    """
    import yaml

    meta = cm["metadata"]
    status: dict[str, Any] = {
        "routemap": meta["name"],
        "observedResourceVersion": meta.get("resourceVersion"),
    }
    if routemap is not None and routemap.spec.routing is not None:
        status["router"] = routemap.spec.routing.router
        status["strategy"] = routemap.spec.routing.strategy
    if decided is not None:
        status["versions"] = [
            {
                "name": v.name,
                "available": v.available,
                "weight": v.weight,
                **({"reason": v.reason} if v.reason else {}),
            }
            for v in decided.versions
        ]
    if objects is None and previous and "routingObjects" in previous:
        objects = previous["routingObjects"]
    if objects is not None:
        status["routingObjects"] = objects
    status["lastError"] = error
    owner = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": meta["name"],
        "uid": meta.get("uid", ""),
        "controller": True,
        "blockOwnerDeletion": True,
    }
    return stamp(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": status_name(meta["name"]),
                "labels": {KIND_LABEL: STATUS_KIND, **MANAGED_BY},
            },
            "data": {"status": yaml.dump(status, Dumper=dumper(yaml), sort_keys=False)},
        },
        meta.get("namespace") or "",
        owner,
    )
