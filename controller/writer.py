"""Every write the controller makes goes through one :class:`Writer`: only the leader writes.

With ``--leader-elect`` several replicas run the same reconciles on warm caches, and only the one
holding the Lease may change the cluster; a write attempted by a follower raises
:class:`~.errors.NotLeaderError` (the key is requeued in full when this process becomes the
leader). The writer also counts writes for ``/metrics``, tells its observers (tests keep their own
log of what was written when), and records Events without repeating the last one of an object (no
event storms from a routemap that keeps failing the same way).

Events are sent by a thread of their own, in order, as client-go's event broadcaster sends them: a
reconcile worker does not wait for them, so the routing of the next key is not held up by a
courtesy. The queue is bounded (:data:`EVENT_BACKLOG`); when it is full, Events are dropped with one
warning. :meth:`Writer.stop` sends what is queued (for at most a few seconds) and ends the thread.
"""

from __future__ import annotations

import collections
import functools
import logging
import threading
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
#: The most Events waiting to be sent; more are dropped (the API server is not keeping up).
EVENT_BACKLOG = 10_000
#: How long :meth:`Writer.stop` keeps sending the queued Events.
EVENT_FLUSH = 5.0


class Writer:
    """Leader-gated writes and Events."""

    def __init__(self, kube: Kube, *, is_leader: Callable[[], bool], metrics: Metrics) -> None:
        self.kube = kube
        self.is_leader = is_leader
        self.metrics = metrics
        self.observers: list[WriteObserver] = []
        self._last_event: dict[tuple[str, str, str], tuple[str, str]] = {}
        self._events: collections.deque[tuple[tuple[str, str, str], Obj, str, str, str]] = collections.deque()
        self._events_ready = threading.Condition()
        self._sender: threading.Thread | None = None
        self._stopping = False
        self._dropping = False
        self._flush_deadline = float("inf")

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
        """Queue an Event on the routemap ConfigMap ``involved``, unless the same one was the last
        for it. Only the leader records Events (:class:`~.errors.NotLeaderError` otherwise); a
        failure to send is logged, never raised (an Event is a courtesy, not the work)."""
        if not self.is_leader():
            raise NotLeaderError("not the leader")
        meta = involved["metadata"]
        message = truncate(message, ERROR_LIMIT)
        ident = (str(meta.get("uid", "")), meta.get("namespace") or "", meta["name"])
        with self._events_ready:
            if self._last_event.get(ident) == (reason, message):
                return
            if len(self._events) >= EVENT_BACKLOG:
                if not self._dropping:
                    log.warning("more than %d Events waiting to be sent: dropping Events", EVENT_BACKLOG)
                    self._dropping = True
                return
            self._last_event[ident] = (reason, message)
            obj = {**involved, "apiVersion": "v1", "kind": "ConfigMap"}
            self._events.append((ident, obj, reason, message, "Warning" if warning else "Normal"))
            if self._sender is None:
                self._sender = threading.Thread(target=self._send_events, name="iter8-events", daemon=True)
                self._sender.start()
            self._events_ready.notify()

    def _send_events(self) -> None:
        while True:
            with self._events_ready:
                while not self._events and not self._stopping:
                    self._events_ready.wait()
                if not self._events or time.monotonic() > self._flush_deadline:
                    return
                ident, obj, reason, message, kind = self._events.popleft()
                self._dropping = False
            try:
                send = functools.partial(
                    self.kube.record_event, obj, reason=reason, message=message, type=kind
                )
                self.write(f"event {reason}", send)
            except (KubeError, NotLeaderError) as exc:
                if isinstance(exc, KubeError):
                    log.warning("could not record an event: %s", exc)
                with self._events_ready:
                    # Not sent: the same Event may be tried again by the next reconcile.
                    if self._last_event.get(ident) == (reason, message):
                        del self._last_event[ident]

    def stop(self) -> None:
        """Send the queued Events (for at most :data:`EVENT_FLUSH` s), then end the sender."""
        with self._events_ready:
            self._stopping = True
            self._flush_deadline = time.monotonic() + EVENT_FLUSH
            self._events_ready.notify()
            sender = self._sender
        if sender is not None:
            sender.join(EVENT_FLUSH + 1)

    def forget(self, uid: str, namespace: str, name: str) -> None:
        """The object is gone: its last Event no longer needs remembering."""
        with self._events_ready:
            self._last_event.pop((uid, namespace, name), None)
