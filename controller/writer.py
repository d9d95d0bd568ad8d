"""Every write the controller makes goes through one :class:`Writer`: only the leader writes.

With ``--leader-elect`` several replicas run the same reconciles on warm caches, and only the one
holding the Lease may change the cluster; a write attempted by a follower raises
:class:`~.errors.NotLeaderError` (the key is requeued in full when this process becomes the
leader). The writer also counts writes for ``/metrics``, tells its observers (tests keep their own
log of what was written when), and records Events without repeating the last one of an object (no
event storms from a routemap that keeps failing the same way).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from kubectl_iter8.boundedyaml import truncate
from kubectl_iter8.errors import KubeError
from kubectl_iter8.kube import Kube

from .cache import Obj
from .errors import NotLeaderError
from .http import Metrics

log = logging.getLogger("kubectl_iter8.controller")
T = TypeVar("T")

#: Longest error kept in memory, in the status ConfigMap or in an Event: a routemap's author
#: controls the text, and a huge one would be copied into every write.
ERROR_LIMIT = 1024
#: Told of every write: (start, end, what), wall-clock times.
WriteObserver = Callable[[float, float, str], None]


class Writer:
    """Leader-gated writes and Events."""

    def __init__(self, kube: Kube, *, is_leader: Callable[[], bool], metrics: Metrics) -> None:
        self.kube = kube
        self.is_leader = is_leader
        self.metrics = metrics
        self.observers: list[WriteObserver] = []
        self._last_event: dict[tuple[str, str, str], tuple[str, str]] = {}

    def write(self, what: str, call: Callable[[], T]) -> T:
        """Make one write (``what``: its verb, then what it writes), only as the leader."""
        if not self.is_leader():
            raise NotLeaderError("not the leader")
        started = time.time()
        result = call()
        ended = time.time()
        for observer in self.observers:
            observer(started, ended, what)
        self.metrics.wrote(what.split(" ", 1)[0])
        return result

    def event(self, involved: Obj, reason: str, message: str, *, warning: bool = False) -> None:
        """Record an Event on the routemap ConfigMap ``involved``, unless the same one was the last
        for it; a failure is logged, never raised (an Event is a courtesy, not the work)."""
        meta = involved["metadata"]
        message = truncate(message, ERROR_LIMIT)
        ident = (str(meta.get("uid", "")), meta.get("namespace") or "", meta["name"])
        if self._last_event.get(ident) == (reason, message):
            return
        try:
            self.write(
                f"event {reason}",
                lambda: self.kube.record_event(
                    {**involved, "apiVersion": "v1", "kind": "ConfigMap"},
                    reason=reason,
                    message=message,
                    type="Warning" if warning else "Normal",
                ),
            )
        except KubeError as exc:
            log.warning("could not record an event: %s", exc)
            return
        self._last_event[ident] = (reason, message)

    def forget(self, uid: str, namespace: str, name: str) -> None:
        """The object is gone: its last Event no longer needs remembering."""
        self._last_event.pop((uid, namespace, name), None)
