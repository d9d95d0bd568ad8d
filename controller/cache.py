"""Informers: a local, always-current copy of one resource type, filled by list + watch.

Concurrency model: each :class:`Informer` owns one thread (started by the manager) that lists the
objects matching its label selector, then watches from the list's resourceVersion, applying every
event to its store and telling the manager through ``on_change(old, new)`` (``new`` is None for a
deletion). Readers (reconcile workers on other threads) call :meth:`Informer.get` /
:meth:`Informer.items`, which copy nothing: stored objects are replaced, never changed in place,
so a reader can hold one while the thread stores a newer one. A lock guards the dict itself.

Failure handling, so that the cache converges whatever the API server does:

* the server ends the watch (timeout, restart): watch again from the last resourceVersion seen
  (bookmarks advance it), without relisting;
* the watch answers 410 Gone (an ERROR event, or an HTTP 410): the history is gone, relist and
  diff the new list against the store, so deletions missed meanwhile become ``on_change(obj, None)``;
* the resource is not served (404: a CRD that is not installed) or not allowed (403): the cache
  counts as synced and empty, and listing is retried with back-off until it works;
* the connection breaks or the server answers 429/5xx: wait (exponential back-off, capped, reset by
  the next successful list or watch) and try again, from the same resourceVersion.

:meth:`Informer.stop` closes the open watch stream from the caller's thread, so the informer thread
ends at once instead of at the watch timeout.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from kubectl_iter8.errors import KubeError, KubeForbiddenError, KubeGoneError, KubeNotFoundError
from kubectl_iter8.kube import GVR, Kube, WatchStream, status_error

Obj = dict[str, Any]
ObjKey = tuple[str, str]
OnChange = Callable[[Obj | None, Obj | None], None]

log = logging.getLogger("kubectl_iter8.controller")


def obj_key(obj: Obj) -> ObjKey:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


class Informer:
    """List + watch of one resource (in one namespace, or all) with a label selector."""

    def __init__(
        self,
        kube: Kube,
        gvr: GVR,
        namespace: str | None,
        *,
        label_selector: str,
        on_change: OnChange,
        watch_timeout: int = 300,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        forbidden_grace: float = 0.0,
        transform: Callable[[Obj], Obj] | None = None,
        name: str = "",
    ) -> None:
        """:param transform: what of each object to keep (client-go's transform): the cache and the
        handlers see only its result."""
        self.kube = kube
        self.gvr = gvr
        self.namespace = namespace
        self.label_selector = label_selector
        self.on_change = on_change
        self.watch_timeout = watch_timeout
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.forbidden_grace = forbidden_grace
        self.transform = transform
        self.name = name or gvr.resource
        self._lock = threading.Lock()
        self._store: dict[ObjKey, Obj] = {}
        self._stream: WatchStream | None = None
        self._stop = threading.Event()
        #: Set once the first list has been stored (``/readyz``).
        self.synced = threading.Event()
        #: The last resourceVersion seen (list, event or bookmark).
        self.resource_version = ""
        #: How many times the informer listed (1 + one per 410 or unrecoverable watch).
        self.lists = 0
        #: How many watch requests it made.
        self.watches = 0

    # --- reading -------------------------------------------------------------------------------

    def get(self, namespace: str, name: str) -> Obj | None:
        with self._lock:
            return self._store.get((namespace, name))

    def items(self) -> list[Obj]:
        with self._lock:
            return list(self._store.values())

    # --- the thread ----------------------------------------------------------------------------

    def run(self) -> None:
        """List, then watch until :meth:`stop`; never raises."""
        failures = 0
        must_list = True
        forbidden_since: float | None = None
        while not self._stop.is_set():
            try:
                if must_list:
                    self._list()
                    must_list = False
                gone = self._watch()
                failures = 0
                if gone:
                    log.info("%s: watch history expired (410), relisting", self.name)
                    must_list = True
            except KubeError as exc:
                if self._stop.is_set():
                    break
                if isinstance(exc, KubeGoneError):
                    must_list = True
                if isinstance(exc, KubeForbiddenError):
                    forbidden_since = forbidden_since or time.monotonic()
                    final = time.monotonic() - forbidden_since >= self.forbidden_grace
                else:
                    final = isinstance(exc, KubeNotFoundError)
                if final and must_list and not self._store:
                    # The API is not served (a CRD not installed) or not allowed (RBAC, still after
                    # the grace period): an empty cache is what can be known; it makes the versions
                    # using this type unavailable and must not hold back the routemaps that do not use it.
                    self.synced.set()
                delay = min(self.backoff_base * (2**failures), self.backoff_max)
                failures += 1
                level = logging.WARNING if failures == 1 or delay < self.backoff_max else logging.DEBUG
                log.log(level, "%s: %s; retrying in %.1f s", self.name, exc, delay)
                self._stop.wait(delay)
            except Exception:
                if self._stop.is_set():
                    break
                log.exception("%s: unexpected failure; relisting", self.name)
                must_list = True
                self._stop.wait(self.backoff_max)

    def stop(self) -> None:
        """End :meth:`run` soon (thread-safe)."""
        self._stop.set()
        stream = self._stream
        if stream is not None:
            stream.close()

    def _list(self) -> None:
        items, rv = self.kube.list_versioned(
            self.gvr, self.namespace, label_selector=self.label_selector, transform=self.transform
        )
        self.lists += 1
        fresh = {obj_key(o): o for o in items}
        with self._lock:
            old_store = self._store
            self._store = fresh
            self.resource_version = rv
        for key, gone in old_store.items():
            if key not in fresh:
                self.on_change(gone, None)
        for key, new in fresh.items():
            old = old_store.get(key)
            if old is None or _rv(old) != _rv(new):
                self.on_change(old, new)
        self.synced.set()

    def _watch(self) -> bool:
        """One watch request; True when it ended with 410 Gone (relist needed)."""
        stream = self.kube.watch(
            self.gvr,
            self.namespace,
            label_selector=self.label_selector,
            resource_version=self.resource_version,
            timeout_seconds=self.watch_timeout,
        )
        self.watches += 1
        self._stream = stream
        if self._stop.is_set():
            stream.close()
        try:
            for event in stream:
                kind = event.get("type")
                obj: Obj = event.get("object") or {}
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        return True
                    raise status_error(obj, f"watch of {self.gvr.resource}")
                rv = _rv(obj)
                if kind == "BOOKMARK":
                    if rv:
                        self.resource_version = rv
                    continue
                obj.setdefault("apiVersion", self.gvr.api_version)
                if self.transform is not None:
                    obj = self.transform(obj)
                key = obj_key(obj)
                with self._lock:
                    old = self._store.get(key)
                    if kind == "DELETED":
                        self._store.pop(key, None)
                    else:
                        self._store[key] = obj
                    if rv:
                        self.resource_version = rv
                self.on_change(old, None if kind == "DELETED" else obj)
        finally:
            self._stream = None
        return False


def _rv(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")
