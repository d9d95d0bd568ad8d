"""What one reconcile of a routemap read from the API server and wrote to it.

A rollout that moves the weight has its routemap reconciled a second time at once (see
:mod:`.routemaps`): the routing objects, the status and the rollout's state were read or written a
moment before, by this controller, which is their only writer. :class:`Reads` hands the second pass
those answers instead of asking the server again (about a third of a rollout step's requests).
It lives for one reconcile only: the next one reads the server afresh, so anything someone else
changed in between is seen then, as every level-based reconcile sees it.
"""

from __future__ import annotations

from kubectl_iter8.kube import GVR, Kube

from .cache import Obj


class Reads:
    def __init__(self, kube: Kube) -> None:
        self.kube = kube
        self._known: dict[tuple[str, str, str, str], Obj | None] = {}

    def find(self, gvr: GVR, name: str, namespace: str) -> Obj | None:
        """The object as last read or written in this reconcile, else as the server has it now."""
        key = (gvr.group, gvr.resource, namespace, name)
        if key not in self._known:
            self._known[key] = self.kube.find(gvr, name, namespace)
        return self._known[key]

    def wrote(self, gvr: GVR, obj: Obj) -> Obj:
        """Remember the server's answer to a write (the object as it now is); returns it."""
        meta = obj["metadata"]
        self._known[(gvr.group, gvr.resource, meta.get("namespace") or "", meta["name"])] = obj
        return obj

    def forget(self, gvr: GVR, name: str, namespace: str) -> None:
        """The object was deleted or is unknown: read it from the server next time."""
        self._known.pop((gvr.group, gvr.resource, namespace, name), None)
