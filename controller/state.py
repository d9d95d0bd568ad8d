"""What the controller's threads share: the parsed routemaps and what each reconcile decided.

The informer threads write it (a routemap changed: parse it, index the resources it references),
the workers read and update it (what a routemap last drained, what the A/B/n service may assign,
which routemaps are being reconciled), and the A/B/n threads read it. One lock guards all of it,
held only for dictionary updates, never across an API call; every access goes through a method
here, so no caller can forget the lock.

A unit of work is a :class:`Key`: a routemap (``kind="routemap"``) or a watched resource (``kind`` =
its resource type's name), as the queue holds them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NamedTuple

from kubectl_iter8.routemap import RouteMap

from .abn.assignment import AppVersions
from .plan import ResourceId

ROUTEMAP = "routemap"
#: A routemap by (namespace, name).
RouteMapKey = tuple[str, str]


class Key(NamedTuple):
    """A unit of work: a routemap (``kind="routemap"``) or a watched resource (``kind`` = its type)."""

    kind: str
    namespace: str
    name: str


class SharedState:
    """The routemaps (parsed, or why one does not parse) and the decisions about them."""

    def __init__(self, ids_of: Callable[[RouteMap], list[ResourceId]]) -> None:
        self._ids_of = ids_of
        self._lock = threading.Lock()
        self._routemaps: dict[RouteMapKey, RouteMap | str] = {}
        #: Which routemaps reference each resource.
        self._refs: dict[ResourceId, set[RouteMapKey]] = {}
        #: Per routemap: the resources its last applied routing sends no traffic to.
        self._drained: dict[RouteMapKey, frozenset[ResourceId]] = {}
        self._in_flight: set[RouteMapKey] = set()
        #: Per routemap: (version number, weight) of its available versions with weight > 0, as
        #: the last reconcile decided (what the A/B/n service assigns users among).
        self._abn: dict[RouteMapKey, AppVersions] = {}

    # --- routemaps (informer threads) ----------------------------------------------------------

    def set_routemap(self, key: RouteMapKey, parsed: RouteMap | str | None) -> set[ResourceId]:
        """Record the routemap ``key`` as ``parsed`` (None: deleted); returns the resources it
        referenced before, whose finalizers may now be released."""
        touched: set[ResourceId] = set()
        with self._lock:
            previous = self._routemaps.pop(key, None)
            if isinstance(previous, RouteMap):
                for rid in self._ids_of(previous):
                    touched.add(rid)
                    self._refs.get(rid, set()).discard(key)
            if parsed is not None:
                self._routemaps[key] = parsed
                if isinstance(parsed, RouteMap):
                    for rid in self._ids_of(parsed):
                        self._refs.setdefault(rid, set()).add(key)
            else:
                self._drained.pop(key, None)
        return touched

    def routemap(self, key: RouteMapKey) -> RouteMap | str | None:
        """The parsed routemap, why it does not parse, or None when unknown."""
        with self._lock:
            return self._routemaps.get(key)

    def routemap_keys(self) -> list[RouteMapKey]:
        with self._lock:
            return list(self._routemaps)

    def has_routemap(self, key: RouteMapKey) -> bool:
        with self._lock:
            return key in self._routemaps

    def referencing(self, rid: ResourceId) -> list[RouteMapKey]:
        """The routemaps that reference the resource ``rid``."""
        with self._lock:
            return list(self._refs.get(rid, ()))

    # --- decisions (workers) -------------------------------------------------------------------

    @contextmanager
    def reconciling(self, key: RouteMapKey) -> Iterator[None]:
        """Mark the routemap as being reconciled: no finalizer it guards is released meanwhile."""
        with self._lock:
            self._in_flight.add(key)
        try:
            yield
        finally:
            with self._lock:
                self._in_flight.discard(key)

    def keep_drained(self, key: RouteMapKey, still: frozenset[ResourceId]) -> frozenset[ResourceId] | None:
        """Forget "drained" for every resource not in ``still`` (before a write that may route to
        them again); returns what was drained before."""
        with self._lock:
            before = self._drained.get(key)
            if before is not None:
                self._drained[key] = before & still
            return before

    def set_drained(self, key: RouteMapKey, drained: frozenset[ResourceId]) -> None:
        with self._lock:
            self._drained[key] = drained

    def release_blockers(
        self, rid: ResourceId, reconciling: RouteMapKey | None
    ) -> tuple[list[RouteMapKey], list[RouteMapKey]]:
        """What keeps the finalizer of ``rid``: the routemaps that still route to it, and those
        being reconciled now (other than ``reconciling``, the caller's own)."""
        with self._lock:
            referencing = list(self._refs.get(rid, ()))
            undrained = [r for r in referencing if rid not in self._drained.get(r, frozenset())]
            busy = [r for r in referencing if r in self._in_flight and r != reconciling]
        return undrained, busy

    def set_abn(self, key: RouteMapKey, versions: AppVersions | None) -> None:
        with self._lock:
            if versions is None:
                self._abn.pop(key, None)
            else:
                self._abn[key] = versions

    def abn(self, key: RouteMapKey) -> tuple[AppVersions | None, RouteMap | str | None]:
        """What the last reconcile decided for A/B/n, and the parsed routemap (one lock, one view)."""
        with self._lock:
            return self._abn.get(key), self._routemaps.get(key)
