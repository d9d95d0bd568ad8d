"""The controller process: informers, the work queue, workers, leader election and the HTTP port.

Concurrency model (threads, because the ``kubernetes`` client is synchronous and every piece of
work here is I/O on it; asyncio would only wrap the same blocking calls in executor threads):

* one **informer thread** per watched (resource type, namespace): routemap ConfigMaps
  (``iter8.tools/kind=routemap``) and every configured resource type (``iter8.tools/watch=true``);
  each has its own API connection, keeps its cache current and turns every change into queue keys:
  a routemap change queues the routemap; a resource change queues the resource (finalizer
  bookkeeping) and every routemap that references it (through an index kept here);
* ``workers`` **worker threads** take keys from the de-duplicating :class:`~.queue.WorkQueue` (one
  key is never processed by two workers at once) and reconcile them, reading only the caches;
* one **resync thread** queues every key each ``resync_period`` (level-based: missed events heal);
* one **elector thread** (with ``--leader-elect``) holds the Lease; every write goes through
  :meth:`Controller._write`, which refuses unless this process is the leader, so followers keep
  their caches warm and decide, but never write;
* the **HTTP thread** serves ``/healthz``, ``/readyz`` and ``/metrics`` (and, with an A/B/n port,
  the A/B/n read side);
* with ``abn_port``, the **A/B/n gRPC service** (:mod:`.abn`) answers from the versions every
  reconcile decides (:meth:`Controller.abn_versions`), on every replica, leader or not.

Shared state (the parsed routemaps, the index, what each routemap last applied) sits behind one
lock, held only for dictionary updates, never across an API call.

Feedback loops are avoided by construction: the controller watches neither the routing objects nor
its status ConfigMaps nor Events, and a finalizer patch on a resource queues reconciles that find
nothing to change, so they write nothing.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from kubectl_iter8.boundedyaml import truncate
from kubectl_iter8.errors import Iter8Error, KubeConflictError, KubeError, UsageError
from kubectl_iter8.kube import CONFIGMAPS, GVR, Kube, KubeOptions
from kubectl_iter8.registry import ResourceType, RouterRegistry, kind_name, kind_of
from kubectl_iter8.routemap import KIND_LABEL, ROUTEMAP_KIND, WATCH_LABEL, RouteMap, parse_routemap

from . import finalizers
from .abn.assignment import AppVersions
from .cache import Informer, Obj
from .config import Settings
from .errors import NotLeaderError, NotReadyError, PermanentError, TemporaryError
from .http import HTTPServer, Metrics
from .leader import LeaderElector
from .queue import WorkQueue
from .reconciler import (
    FIELD_MANAGER,
    MANAGED_BY,
    Plan,
    ResourceId,
    desired_objects,
    plan,
    resource_ids,
    up_to_date,
)
from .status import read_status, status_name, status_object

if TYPE_CHECKING:
    from .abn.runtime import AbnRuntime

log = logging.getLogger("kubectl_iter8.controller")
T = TypeVar("T")

ROUTEMAP = "routemap"
#: Longest error kept in memory, in the status ConfigMap or in an Event: a routemap's author
#: controls the text, and a huge one would be copied into every write.
ERROR_LIMIT = 1024


def owned_by(live: Obj, cm: Obj) -> bool:
    """Whether ``live`` is one of the routemap ``cm``'s objects: labelled as the controller's and
    owned by that routemap (same uid). Anything else is someone else's, never written or deleted."""
    meta = live.get("metadata") or {}
    labels = meta.get("labels") or {}
    owners = {o.get("uid") for o in meta.get("ownerReferences") or []}
    managed = all(labels.get(k) == v for k, v in MANAGED_BY.items())
    return managed and cm["metadata"].get("uid") in owners


#: A routemap annotation whose value is mixed into every A/B/n assignment: changing it reassigns every user.
ABN_SEED_ANNOTATION = "iter8.tools/abn-seed"


def _abn_versions(decided: Plan, cm: Obj | None) -> AppVersions:
    """What users of the routemap may get: its available versions with weight > 0."""
    seed = str(((cm or {}).get("metadata", {}).get("annotations") or {}).get(ABN_SEED_ANNOTATION, ""))
    pairs = tuple(
        (i, float(v.weight)) for i, v in enumerate(decided.versions) if v.available and v.weight > 0
    )
    return AppVersions(pairs, seed)


def _find(informers: Iterable[Informer], namespace: str, name: str) -> Obj | None:
    """An object from the first of ``informers`` that watches ``namespace`` and has it."""
    for informer in informers:
        if informer.namespace in (None, namespace):
            found = informer.get(namespace, name)
            if found is not None:
                return found
    return None


class Key(NamedTuple):
    """A unit of work: a routemap (``kind="routemap"``) or a watched resource (``kind`` = its type)."""

    kind: str
    namespace: str
    name: str


class TypeTable(Mapping[str, ResourceType]):
    """Resource types by canonical name that also answer for their aliases (``deployment`` -> ``deploy``)."""

    def __init__(self, types: Mapping[str, ResourceType], canonical: Callable[[str], str | None]) -> None:
        self._types = dict(types)
        self._canonical = canonical

    def __getitem__(self, key: str) -> ResourceType:
        name = key if key in self._types else self._canonical(key)
        if name is None or name not in self._types:
            raise KeyError(key)
        return self._types[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._types)

    def __len__(self) -> int:
        return len(self._types)


class Controller:
    """The traffic controller; :meth:`start` and :meth:`stop` it (tests run it in-process).

    :param resource_types: the watchable kinds by canonical name; ``canonical`` maps an alias a
        routemap may use (``deployment``) to one of those names, or returns None.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        routers: RouterRegistry,
        resource_types: Mapping[str, ResourceType],
        kube_options: KubeOptions | None = None,
        canonical: Callable[[str], str | None] = lambda name: None,
    ) -> None:
        self.settings = settings
        self.routers = routers
        self.types: dict[str, ResourceType] = dict(resource_types)
        for extra in settings.extra_resource_types:
            self.types[extra.name] = extra  # the configuration file wins over plugins
        self.type_table = TypeTable(self.types, canonical)
        self.kube_options = kube_options or KubeOptions()
        self.metrics = Metrics()
        self.queue: WorkQueue[Key] = WorkQueue(
            backoff_base=settings.backoff_base, backoff_max=settings.backoff_max
        )
        self._kubes: list[Kube] = []
        self.kube = self._new_kube()
        self._lock = threading.Lock()
        #: Parsed routemaps (or why one does not parse), by (namespace, name).
        self._routemaps: dict[tuple[str, str], RouteMap | str] = {}
        self._refs: dict[ResourceId, set[tuple[str, str]]] = {}
        self._drained: dict[tuple[str, str], frozenset[ResourceId]] = {}
        self._in_flight: set[tuple[str, str]] = set()
        self._last_event: dict[tuple[str, str, str], tuple[str, str]] = {}
        #: Per routemap: (version number, weight) of its available versions with weight > 0, as
        #: the last reconcile decided (what the A/B/n service assigns users among).
        self._abn: dict[tuple[str, str], AppVersions] = {}
        #: Every write this process made: (start, end, what) wall-clock times, for tests and debugging.
        self.write_log: list[tuple[float, float, str]] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.informers: list[Informer] = []
        self.routemap_informers: list[Informer] = []
        self.type_informers: dict[str, list[Informer]] = {}
        namespaces: list[str | None] = (
            list(settings.namespaces) if settings.namespaces is not None else [None]
        )
        for namespace in namespaces:
            informer = self._informer(
                CONFIGMAPS, namespace, f"{KIND_LABEL}={ROUTEMAP_KIND}", self._on_routemap, "routemaps"
            )
            self.routemap_informers.append(informer)
            for name, rtype in sorted(self.types.items()):
                gvr = GVR(rtype.group, rtype.version, rtype.resource)
                handler = self._resource_handler(name)
                informer = self._informer(gvr, namespace, f"{WATCH_LABEL}=true", handler, name)
                self.type_informers.setdefault(name, []).append(informer)
        self.elector: LeaderElector | None = None
        if settings.leader_elect:
            self.elector = LeaderElector(
                self._new_kube(),
                namespace=settings.lease_namespace,
                name=settings.lease_name,
                identity=settings.identity,
                lease_duration=settings.lease_duration,
                renew_deadline=settings.renew_deadline,
                retry_period=settings.retry_period,
                on_started_leading=self.requeue_all,
            )
        self.metrics.queue_depth = lambda: self.queue.depth
        self.metrics.is_leader = self.is_leader
        self.metrics.watch_restarts = lambda: sum(max(0, i.watches - 1) for i in self.informers)
        self.http: HTTPServer | None = None
        self.abn: AbnRuntime | None = None

    # --- construction helpers ------------------------------------------------------------------

    def _new_kube(self) -> Kube:
        kube = Kube(self.kube_options)
        kube.retry_delays = self.settings.request_retry_delays
        self._kubes.append(kube)
        return kube

    def _informer(
        self,
        gvr: GVR,
        namespace: str | None,
        selector: str,
        handler: Callable[[Obj | None, Obj | None], None],
        name: str,
    ) -> Informer:
        informer = Informer(
            self._new_kube(),
            gvr,
            namespace,
            label_selector=selector,
            on_change=handler,
            watch_timeout=self.settings.watch_timeout,
            backoff_base=self.settings.watch_backoff_base,
            backoff_max=self.settings.watch_backoff_max,
            forbidden_grace=self.settings.forbidden_grace,
            name=f"{name}@{namespace or '*'}",
        )
        self.informers.append(informer)
        return informer

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Start every thread and return (does not wait for the caches: see :meth:`wait_synced`)."""
        s = self.settings
        if s.abn_port is not None:
            from .abn.runtime import AbnRuntime

            self.abn = AbnRuntime(s, versions_for=self.abn_versions, known=self.knows_application)
            self.metrics.collectors.append(self.abn.collect)
        try:
            self.http = HTTPServer(
                s.http_address,
                s.http_port,
                metrics=self.metrics,
                healthy=self.healthy,
                ready=self.ready,
                routes=self.abn.routes() if self.abn else None,
            )
        except OSError as exc:
            if self.abn is not None:
                self.abn.stop()
            raise UsageError(
                f"--http-port: cannot listen on {s.http_address}:{s.http_port}: {exc.strerror}"
            ) from None
        self.http.start()
        for informer in self.informers:
            self._spawn(informer.run, f"informer-{informer.name}")
        if self.elector is not None:
            self._spawn(self.elector.run, "leader-elector")
        for index in range(s.workers):
            self._spawn(self._work, f"worker-{index}")
        self._spawn(self._resync, "resync")

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=f"iter8-{name}", daemon=True)
        thread.start()
        self._threads.append(thread)

    def wait_synced(self, timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        return all(i.synced.wait(max(0.0, deadline - time.monotonic())) for i in self.informers)

    def healthy(self) -> bool:
        return not self._stop.is_set() and all(t.is_alive() for t in self._threads)

    def ready(self) -> bool:
        return self.healthy() and all(i.synced.is_set() for i in self.informers)

    def stop(self, *, release: bool = True) -> None:
        """Stop every thread; ``release=False`` keeps the Lease, as a killed process would."""
        self._stop.set()
        for informer in self.informers:
            informer.stop()
        if self.elector is not None:
            self.elector.stop()
        self.queue.shutdown()
        for thread in self._threads:
            thread.join(10)
        if self.elector is not None and release:
            self.elector.release()
        if self.http is not None:
            self.http.stop()
        if self.abn is not None:
            self.abn.stop()
        for kube in self._kubes:
            kube.close()

    def serve_forever(self) -> None:
        """Block until :meth:`stop` is called (e.g. by a signal handler)."""
        self._stop.wait()

    # --- leadership and writes -----------------------------------------------------------------

    def is_leader(self) -> bool:
        return self.elector is None or self.elector.is_leader()

    def _write(self, what: str, call: Callable[[], T]) -> T:
        """Make one write, only as the leader; record it."""
        if not self.is_leader():
            raise NotLeaderError("not the leader")
        started = time.time()
        result = call()
        self.write_log.append((started, time.time(), what))
        self.metrics.wrote(what.split(" ", 1)[0])
        return result

    def requeue_all(self) -> None:
        with self._lock:
            routemaps = list(self._routemaps)
        for namespace, name in routemaps:
            self.queue.add(Key(ROUTEMAP, namespace, name))
        for kind, informers in self.type_informers.items():
            for informer in informers:
                for obj in informer.items():
                    meta = obj["metadata"]
                    self.queue.add(Key(kind, meta.get("namespace") or "", meta["name"]))

    def _resync(self) -> None:
        while not self._stop.wait(self.settings.resync_period):
            self.requeue_all()

    # --- events from the informers -------------------------------------------------------------

    def _on_routemap(self, old: Obj | None, new: Obj | None) -> None:
        obj = new or old
        assert obj is not None
        meta = obj["metadata"]
        rkey = (meta.get("namespace") or "", meta["name"])
        touched: set[ResourceId] = set()
        # Parsed outside the lock: the spec is anyone's YAML, and every worker needs the lock.
        parsed: RouteMap | str | None = None
        if new is not None:
            try:
                parsed = parse_routemap(new)
            except UsageError as exc:
                parsed = truncate(str(exc), ERROR_LIMIT)
        with self._lock:
            previous = self._routemaps.pop(rkey, None)
            if isinstance(previous, RouteMap):
                for rid in self._ids(previous):
                    touched.add(rid)
                    self._refs.get(rid, set()).discard(rkey)
            if parsed is not None:
                self._routemaps[rkey] = parsed
                if isinstance(parsed, RouteMap):
                    for rid in self._ids(parsed):
                        self._refs.setdefault(rid, set()).add(rkey)
            else:
                self._drained.pop(rkey, None)
                self._last_event.pop((str(meta.get("uid", "")), *rkey), None)
        self.queue.add(Key(ROUTEMAP, *rkey))
        for kind, namespace, name in touched:  # a resource no longer referenced may be held by our finalizer
            self.queue.add(Key(kind, namespace, name))

    def _ids(self, routemap: RouteMap) -> list[ResourceId]:
        return [rid for rids in resource_ids(routemap, self.type_table) for rid in rids]

    def _resource_handler(self, kind: str) -> Callable[[Obj | None, Obj | None], None]:
        def handle(old: Obj | None, new: Obj | None) -> None:
            obj = new or old
            assert obj is not None
            meta = obj["metadata"]
            rid = (kind, meta.get("namespace") or "", meta["name"])
            self.queue.add(Key(*rid))
            with self._lock:
                routemaps = list(self._refs.get(rid, ()))
            for namespace, name in routemaps:
                self.queue.add(Key(ROUTEMAP, namespace, name))

        return handle

    def lookup(self, kind: str, namespace: str, name: str) -> Obj | None:
        """A watched resource from the cache (None when absent or of an unknown type)."""
        return _find(self.type_informers.get(kind, ()), namespace, name)

    def _routemap_object(self, namespace: str, name: str) -> Obj | None:
        return _find(self.routemap_informers, namespace, name)

    # --- A/B/n ---------------------------------------------------------------------------------

    def _routemap_for(self, application: str) -> tuple[str, str] | None:
        """The routemap of ``namespace/app``: named ``app`` or ``app-routemap`` (Iter8's rule)."""
        namespace, _, app = application.partition("/")
        with self._lock:
            for name in (app, f"{app}-routemap"):
                if (namespace, name) in self._routemaps:
                    return namespace, name
        return None

    def knows_application(self, application: str) -> bool:
        return self._routemap_for(application) is not None

    def abn_versions(self, application: str) -> AppVersions | None:
        """``(version number, weight)`` of the versions of ``namespace/app`` that users may get
        (available, weight > 0); None when no routemap of that name is watched.

        :raises NotReadyError: while the caches are not synced (the answer would be a guess).
        """
        if not self.ready():
            raise NotReadyError("the controller's caches are not synced yet")
        key = self._routemap_for(application)
        if key is None:
            return None
        with self._lock:
            known = self._abn.get(key)
            parsed = self._routemaps.get(key)
        if known is not None:
            return known
        if not isinstance(parsed, RouteMap):
            return AppVersions(())  # an invalid routemap routes nowhere new
        # Not reconciled yet (it just appeared): decide from the same caches the reconcile reads.
        return _abn_versions(plan(parsed, self.lookup, self.type_table), self._routemap_object(*key))

    # --- the workers ---------------------------------------------------------------------------

    def _work(self) -> None:
        # controller-runtime's rule: no reconcile before every cache has listed once, or a version
        # whose resources are not listed yet would look unavailable.
        for informer in self.informers:
            while not informer.synced.wait(0.1):
                if self._stop.is_set():
                    return
        while True:
            key = self.queue.get()
            if key is None:
                return
            started = time.monotonic()
            result = "success"
            try:
                self.reconcile(key)
                self.queue.forget(key)
            except NotLeaderError:
                result = "not_leader"  # requeued in full when this process becomes the leader
                self.queue.forget(key)
            except PermanentError as exc:
                result = "permanent_error"
                log.warning("%s %s/%s: %s", key.kind, key.namespace, key.name, exc)
                self.queue.forget(key)
            except (TemporaryError, KubeError, Iter8Error) as exc:
                result = "error"
                delay = getattr(exc, "delay", None)
                if delay is not None:
                    self.queue.add_after(key, delay)
                else:
                    delay = self.queue.backoff(key)
                log.warning("%s %s/%s: %s; retrying in %.1f s", key.kind, key.namespace, key.name, exc, delay)
                self._report_error(key, str(exc))
            except Exception as exc:
                result = "error"
                delay = self.queue.backoff(key)
                log.exception(
                    "%s %s/%s: unexpected failure; retrying in %.1f s",
                    key.kind,
                    key.namespace,
                    key.name,
                    delay,
                )
                self._report_error(key, f"{type(exc).__name__}: {exc}")
            finally:
                self.queue.done(key)
                self.metrics.reconciled(result, time.monotonic() - started)

    def reconcile(self, key: Key) -> None:
        """Bring one routemap (or one resource's finalizer) in line with the cache. Level-based."""
        if key.kind == ROUTEMAP:
            self.reconcile_routemap(key.namespace, key.name)
        else:
            self.reconcile_resource(key.kind, key.namespace, key.name)

    def reconcile_routemap(self, namespace: str, name: str) -> None:
        key = (namespace, name)
        # While a routemap is being reconciled, no finalizer it guards is released: its plan may
        # predate a deletion, and a write that still routes to the version may be on its way.
        with self._lock:
            self._in_flight.add(key)
        try:
            self._reconcile_routemap(namespace, name)
        finally:
            with self._lock:
                self._in_flight.discard(key)

    def _reconcile_routemap(self, namespace: str, name: str) -> None:
        cm = self._routemap_object(namespace, name)
        if cm is None:
            self.metrics.set_weights(namespace, name, None)
            with self._lock:
                self._abn.pop((namespace, name), None)
            return  # its routing objects and status go with it (ownerReferences)
        with self._lock:
            parsed = self._routemaps.get((namespace, name))
        if not isinstance(parsed, RouteMap):
            with self._lock:
                self._abn.pop((namespace, name), None)
            message = parsed if isinstance(parsed, str) else "not parsed yet"
            if self.is_leader():
                self._event(cm, "InvalidRouteMap", message, warning=True)
                self._write_status(cm, None, None, None, message)
            raise PermanentError(message)
        routemap = parsed
        decided = plan(routemap, self.lookup, self.type_table)
        log.debug("routemap %s/%s: %s", namespace, name, decided)
        with self._lock:
            self._abn[(namespace, name)] = _abn_versions(decided, cm)
        if not self.is_leader():
            return
        try:
            objects = desired_objects(routemap, decided.state, self.routers, self.settings.template_kinds)
            targets = [(self._gvr_of(obj), obj) for obj in objects]
        except PermanentError as exc:
            self._event(cm, "RenderFailed", str(exc), warning=True)
            self._write_status(cm, routemap, decided, None, str(exc))
            raise
        lives = [self.kube.find(gvr, obj["metadata"]["name"], namespace) for gvr, obj in targets]
        foreign = [
            f"{kind_name(kind_of(obj))} {obj['metadata']['name']!r}"
            for (_, obj), live in zip(targets, lives, strict=True)
            if live is not None and not owned_by(live, cm)
        ]
        if foreign:
            # Checked before the first write, so a routemap never half-applies: the controller
            # writes with its own rights and must not become a way to take over others' objects.
            message = f"not written: {', '.join(foreign)} already exist and are not this routemap's"
            self._event(cm, "RoutingConflict", truncate(message, ERROR_LIMIT), warning=True)
            self._write_status(cm, routemap, decided, None, message)
            raise PermanentError(truncate(message, ERROR_LIMIT))
        with self._lock:
            # Before writing, forget "drained" for every resource this write may route to again,
            # so a failure half-way cannot leave a stale promise behind.
            before = self._drained.get((namespace, name))
            if before is not None:
                self._drained[(namespace, name)] = before & decided.unavailable_resources()
        changed: list[tuple[GVR, str, str]] = []
        for (gvr, obj), live in zip(targets, lives, strict=True):
            meta = obj["metadata"]
            if up_to_date(live, obj):
                continue
            # Creating, nothing is forced: should someone else create the object between the
            # check above and this write, a field they set differently is a conflict, not a takeover.
            write = functools.partial(
                self.kube.apply_server_side,
                gvr, obj, namespace, field_manager=FIELD_MANAGER, force=live is not None,
            )  # fmt: skip
            try:
                self._write(f"apply {obj['kind']}/{meta['name']}", write)
            except KubeConflictError as exc:
                what = f"{kind_name(kind_of(obj))} {meta['name']!r}"
                message = f"not written: {what} was created meanwhile by someone else ({exc})"
                self._event(cm, "RoutingConflict", truncate(message, ERROR_LIMIT), warning=True)
                self._write_status(cm, routemap, decided, None, message)
                raise PermanentError(truncate(message, ERROR_LIMIT)) from None
            changed.append((gvr, obj["kind"], meta["name"]))
        if changed and not self._still_exists(cm):
            # The routemap was deleted while this reconcile ran: what it just wrote may have been
            # re-created after the garbage collector handled the owner, so remove it.
            for gvr, _, obj_name in changed:
                self._write(
                    f"delete {gvr.resource}/{obj_name}",
                    functools.partial(self.kube.delete, gvr, obj_name, namespace),
                )
            return
        with self._lock:
            self._drained[(namespace, name)] = decided.unavailable_resources()
        weights = {v.name: v.weight for v in decided.versions}
        self.metrics.set_weights(namespace, name, weights)
        if changed:
            text = ", ".join(
                f"{v.name}={v.weight}" + ("" if v.available else " (unavailable)") for v in decided.versions
            )
            written = ", ".join(f"{kind}/{obj_name}" for _, kind, obj_name in changed)
            self._event(cm, "RoutingApplied", f"applied {written}: weights {text}")
        applied = [
            {"apiVersion": o["apiVersion"], "kind": o["kind"], "name": o["metadata"]["name"]} for o in objects
        ]
        # One read of the status serves both: only this controller writes it.
        live = self._status_live(cm)
        previous = read_status(live)
        self._prune(cm, applied, previous)
        self._write_status(cm, routemap, decided, applied, None, live=(live, previous))
        for rid in sorted(decided.unavailable_resources()):
            resource = self.lookup(*rid)
            if resource is not None and finalizers.is_deleting(resource):
                self._release_if_drained(rid, resource, reconciling=(namespace, name))
            elif resource is None and rid not in (before or frozenset()):
                self.queue.add(Key(*rid))  # newly drained and not watched: it may carry our finalizer

    def _status_live(self, cm: Obj) -> Obj | None:
        meta = cm["metadata"]
        return self.kube.find(CONFIGMAPS, status_name(meta["name"]), meta.get("namespace") or "")

    def _prune(self, cm: Obj, applied: list[dict[str, str]], status: dict[str, Any]) -> None:
        """Delete routing objects this routemap had applied before and no longer renders.

        What was applied is read back from the status ConfigMap (so it survives restarts), and an
        object is deleted only if the routemap still owns it. The new objects are applied first,
        so there is no moment without routing.
        """
        meta = cm["metadata"]
        namespace = meta.get("namespace") or ""
        previous = status.get("routingObjects")
        if not isinstance(previous, list):
            return
        keep = {(o["apiVersion"], o["kind"], o["name"]) for o in applied}
        for entry in previous or []:
            if not isinstance(entry, dict):
                continue
            ident = (str(entry.get("apiVersion")), str(entry.get("kind")), str(entry.get("name")))
            if ident in keep:
                continue
            try:
                gvr = self.kube.resource_for(ident[0], ident[1])
            except UsageError:
                continue  # its API is gone, and so is the object
            obj = self.kube.find(gvr, ident[2], namespace)
            if obj is not None and owned_by(obj, cm):
                self._write(
                    f"delete {gvr.resource}/{ident[2]}",
                    functools.partial(self.kube.delete, gvr, ident[2], namespace),
                )

    def _still_exists(self, cm: Obj) -> bool:
        """Whether the routemap ConfigMap still exists on the server (not just in the cache)."""
        meta = cm["metadata"]
        live = self.kube.find(CONFIGMAPS, meta["name"], meta.get("namespace"))
        return live is not None and live["metadata"].get("uid") == meta.get("uid")

    def _gvr_of(self, obj: Obj) -> GVR:
        try:
            return self.kube.resource_for(str(obj["apiVersion"]), str(obj["kind"]))
        except UsageError as exc:
            raise PermanentError(str(exc)) from None

    def reconcile_resource(self, kind: str, namespace: str, name: str) -> None:
        """Add the finalizer to a live resource; release it from a deleting one once drained."""
        obj = self.lookup(kind, namespace, name)
        if not self.is_leader():
            return
        if obj is None:
            self._release_unwatched(kind, namespace, name)
            return
        if finalizers.is_deleting(obj):
            self._release_if_drained((kind, namespace, name), obj)
            return
        patch = finalizers.add_patch(obj)
        if patch is not None:
            self._patch_finalizers(kind, obj, patch, "add-finalizer")

    def _release_unwatched(self, kind: str, namespace: str, name: str) -> None:
        """A resource that left the cache without being deleted (its watch label was removed) still
        carries our finalizer: release it like a deletion, once no routing sends traffic to it."""
        rtype = self.types.get(kind)
        if rtype is None:
            return
        live = self.kube.find(GVR(rtype.group, rtype.version, rtype.resource), name, namespace)
        if live is None or not finalizers.has_finalizer(live):
            return
        if ((live.get("metadata") or {}).get("labels") or {}).get(WATCH_LABEL) == "true":
            return  # the cache has not caught up yet; its event will come
        self._release_if_drained((kind, namespace, name), live)

    def _release_if_drained(
        self, rid: ResourceId, obj: Obj, *, reconciling: tuple[str, str] | None = None
    ) -> None:
        """Remove the finalizer once every routemap that references ``rid`` applied routing without
        it and none of them is being reconciled (except ``reconciling``, the caller's own)."""
        if not finalizers.has_finalizer(obj):
            return
        with self._lock:
            referencing = list(self._refs.get(rid, ()))
            undrained = [r for r in referencing if rid not in self._drained.get(r, frozenset())]
            busy = [r for r in referencing if r in self._in_flight and r != reconciling]
        if undrained:
            return  # those routemaps are queued (the deletion changed the resource) and release it later
        if busy:
            # Drained everywhere, but a reconcile is running: look again shortly (two routemaps that
            # finish together would otherwise each wait for the other).
            self.queue.add_after(Key(*rid), self.settings.backoff_base)
            return
        patch = finalizers.remove_patch(obj)
        assert patch is not None
        self._patch_finalizers(rid[0], obj, patch, "remove-finalizer")
        log.info("%s %s/%s: traffic drained, finalizer removed", *rid)

    def _patch_finalizers(self, kind: str, obj: Obj, patch: Obj, what: str) -> None:
        rtype = self.types[kind]
        gvr = GVR(rtype.group, rtype.version, rtype.resource)
        meta = obj["metadata"]
        try:
            self._write(
                f"{what} {kind}/{meta['name']}",
                lambda: self.kube.patch(gvr, meta["name"], patch, meta.get("namespace"), kind="merge"),
            )
        except KubeConflictError as exc:
            raise TemporaryError(f"{kind} {meta['name']} changed meanwhile; retrying") from exc

    # --- status and Events ---------------------------------------------------------------------

    def _event(self, involved: Obj, reason: str, message: str, *, warning: bool = False) -> None:
        """Record an Event, unless the same one was the last for this object (no event storms)."""
        meta = involved["metadata"]
        message = truncate(message, ERROR_LIMIT)
        ident = (str(meta.get("uid", "")), meta.get("namespace") or "", meta["name"])
        if self._last_event.get(ident) == (reason, message):
            return
        try:
            self._write(
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

    def _report_error(self, key: Key, message: str) -> None:
        if key.kind != ROUTEMAP or not self.is_leader():
            return
        cm = self._routemap_object(key.namespace, key.name)
        if cm is None:
            return
        try:
            self._event(cm, "ReconcileFailed", message, warning=True)
            with self._lock:
                parsed = self._routemaps.get((key.namespace, key.name))
            routemap = parsed if isinstance(parsed, RouteMap) else None
            decided = plan(routemap, self.lookup, self.type_table) if routemap is not None else None
            self._write_status(cm, routemap, decided, None, message)
        except (Iter8Error, KubeError, TemporaryError) as exc:
            log.debug("could not report the failure: %s", exc)

    def _write_status(
        self,
        cm: Obj,
        routemap: RouteMap | None,
        decided: Plan | None,
        objects: list[dict[str, str]] | None,
        error: str | None,
        *,
        live: tuple[Obj | None, dict[str, Any]] | None = None,
    ) -> None:
        """Apply the routemap's status ConfigMap if its content changed (see :mod:`.status`).

        :param live: the live status ConfigMap and its parsed status, when the caller has read them.
        """
        meta = cm["metadata"]
        namespace = meta.get("namespace") or ""
        if live is None:
            found = self._status_live(cm)
            live = (found, read_status(found))
        current, previous = live
        if current is not None and not owned_by(current, cm):
            log.warning(
                "routemap %s/%s: its status ConfigMap name is taken; not written", namespace, meta["name"]
            )
            return
        error = truncate(error, ERROR_LIMIT) if error is not None else None
        desired = status_object(cm, routemap, decided, objects, error, previous)
        if up_to_date(current, desired):
            return
        self._write(
            f"status {meta['name']}",
            lambda: self.kube.apply_server_side(CONFIGMAPS, desired, namespace, field_manager=FIELD_MANAGER),
        )
        if current is None and not self._still_exists(cm):  # raced with the routemap's deletion
            self._write(
                f"delete configmaps/{desired['metadata']['name']}",
                functools.partial(self.kube.delete, CONFIGMAPS, desired["metadata"]["name"], namespace),
            )
