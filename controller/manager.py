"""The controller process: wires informers, the work queue, workers, leader election and the HTTP port.

The manager only wires (controller-runtime's split): the work of a key is done by the routemap
reconciler (:mod:`.routemaps`) or the finalizer reconciler (:mod:`.finalizers`), every write goes
through the leader-gated :class:`~.writer.Writer`, and what the threads share sits in
:class:`~.state.SharedState`. Each gets its dependencies here; none imports the manager.

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
  the :class:`~.writer.Writer`, which refuses unless this process is the leader, so followers keep
  their caches warm and decide, but never write;
* the **HTTP thread** serves ``/healthz``, ``/readyz`` and ``/metrics`` (and, with an A/B/n port,
  the A/B/n read side);
* with ``abn_port``, the **A/B/n gRPC service** (:mod:`.abn`) answers from the versions every
  reconcile decides (:meth:`Controller.abn_versions`), on every replica, leader or not.

Shared state (the parsed routemaps, the index, what each routemap last applied) sits behind one
lock (:class:`~.state.SharedState`), held only for dictionary updates, never across an API call.

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
from typing import TYPE_CHECKING

from kubectl_iter8.boundedyaml import truncate
from kubectl_iter8.cluster import GROUP_LABEL
from kubectl_iter8.errors import Iter8Error, KubeError, UsageError
from kubectl_iter8.kube import CONFIGMAPS, GVR, JOBS, Kube, KubeOptions
from kubectl_iter8.registry import ResourceType, RouterRegistry
from kubectl_iter8.routemap import KIND_LABEL, ROUTEMAP_KIND, WATCH_LABEL, RouteMap, parse_routemap

from .abn.assignment import AppVersions
from .cache import Informer, Obj
from .config import Settings
from .errors import NotLeaderError, NotReadyError, PermanentError, TemporaryError
from .finalizers import FinalizerReconciler
from .http import HTTPServer, Metrics
from .leader import LeaderElector
from .plan import ResourceId, cached_view, resource_ids, routemap_view
from .queue import WorkQueue
from .rollouts import RolloutReconciler
from .routemaps import RouteMapReconciler, abn_versions
from .state import ROUTEMAP, Key, SharedState
from .testresults import TestResults
from .writer import ERROR_LIMIT, Writer

if TYPE_CHECKING:
    from kubectl_iter8.registry import TaskRegistry

    from .abn.runtime import AbnRuntime

log = logging.getLogger("kubectl_iter8.controller")


def _find(informers: Iterable[Informer], namespace: str, name: str) -> Obj | None:
    """An object from the first of ``informers`` that watches ``namespace`` and has it."""
    for informer in informers:
        if informer.namespace in (None, namespace):
            found = informer.get(namespace, name)
            if found is not None:
                return found
    return None


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
        tasks: TaskRegistry | None = None,
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
        self.state = SharedState(self._ids)
        self.writer = Writer(self.kube, is_leader=self.is_leader, metrics=self.metrics)
        self.finalizers = FinalizerReconciler(
            self.kube,
            self.writer,
            self.state,
            lookup=self.lookup,
            types=self.types,
            requeue_after=self.queue.add_after,
            retry_delay=settings.backoff_base,
        )
        self.routemaps = RouteMapReconciler(
            self.kube,
            self.writer,
            self.state,
            self.finalizers,
            routemap_object=self._routemap_object,
            lookup=self.lookup,
            type_table=self.type_table,
            routers=routers,
            template_kinds=settings.template_kinds,
            metrics=self.metrics,
            enqueue=self.queue.add,
            rollouts=self._rollouts(tasks) if settings.rollouts else None,
        )
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.informers: list[Informer] = []
        self.routemap_informers: list[Informer] = []
        self.type_informers: dict[str, list[Informer]] = {}
        namespaces: list[str | None] = (
            list(settings.namespaces) if settings.namespaces is not None else [None]
        )
        # Pod templates' digests tell a rollout that a candidate changed in place; 25,000 of them
        # are a few MB that only a controller running rollouts needs.
        view = functools.partial(cached_view, template_digest=settings.rollouts)
        for namespace in namespaces:
            informer = self._informer(
                CONFIGMAPS,
                namespace,
                f"{KIND_LABEL}={ROUTEMAP_KIND}",
                self._on_routemap,
                "routemaps",
                routemap_view,
            )
            self.routemap_informers.append(informer)
            for name, rtype in sorted(self.types.items()):
                gvr = GVR(rtype.group, rtype.version, rtype.resource)
                handler = self._resource_handler(name)
                informer = self._informer(gvr, namespace, f"{WATCH_LABEL}=true", handler, name, view)
                self.type_informers.setdefault(name, []).append(informer)
            if settings.rollouts:
                # A rollout hears at once that its analysis Job ended, instead of at its next poll.
                self._informer(JOBS, namespace, GROUP_LABEL, self._on_job, "jobs", cached_view)
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

    def _rollouts(self, tasks: TaskRegistry | None) -> RolloutReconciler:
        def requeue(namespace: str, name: str, delay: float) -> None:
            self.queue.add_after(Key(ROUTEMAP, namespace, name), delay)

        return RolloutReconciler(
            self.kube,
            self.writer,
            lookup=self.lookup,
            type_table=self.type_table,
            tasks=tasks,
            image=self.settings.analysis_image,
            metrics=self.metrics,
            requeue=requeue,
        )

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
        transform: Callable[[Obj], Obj] | None = None,
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
            transform=transform,
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
        # Iter8 v1.x's test results and their dashboards (testresults.py), under the A/B/n token.
        results = TestResults(s.abn_token)
        try:
            self.http = HTTPServer(
                s.http_address,
                s.http_port,
                metrics=self.metrics,
                healthy=self.healthy,
                ready=self.ready,
                routes={**(self.abn.routes() if self.abn else {}), **results.routes()},
                put_routes=results.put_routes(),
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

    def request_stop(self) -> None:
        """Make :meth:`serve_forever` return (a signal handler calls this; :meth:`stop` follows)."""
        self._stop.set()

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
        self.writer.stop()
        if self.routemaps.rollouts is not None:
            self.routemaps.rollouts.notifier.stop()
        if self.elector is not None and release:
            self.elector.release()
        if self.http is not None:
            self.http.stop()
        if self.abn is not None:
            self.abn.stop()
        for kube in self._kubes:
            kube.close()

    def serve_forever(self) -> None:
        """Block until :meth:`stop` or :meth:`request_stop` is called."""
        # With a timeout: a signal the kernel delivers to another thread does not interrupt a wait
        # without one, and Python runs its handler (request_stop) only in this thread.
        while not self._stop.wait(0.5):
            pass

    def is_leader(self) -> bool:
        return self.elector is None or self.elector.is_leader()

    def requeue_all(self) -> None:
        for namespace, name in self.state.routemap_keys():
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

    def _on_job(self, old: Obj | None, new: Obj | None) -> None:
        obj = new or old
        assert obj is not None
        if new is not None and not _finished(new):
            return  # a rollout reads its analysis when the Job has ended (or is gone)
        meta = obj["metadata"]
        group = (meta.get("labels") or {}).get(GROUP_LABEL, "")
        rollouts = self.routemaps.rollouts
        owner = rollouts.routemap_of(meta.get("namespace") or "", group) if rollouts is not None else None
        if owner is not None:
            # A verdict is waiting to move traffic: ahead of the periodic looks at other routemaps.
            self.queue.add(Key(ROUTEMAP, *owner), first=True)

    def _on_routemap(self, old: Obj | None, new: Obj | None) -> None:
        obj = new or old
        assert obj is not None
        meta = obj["metadata"]
        rkey = (meta.get("namespace") or "", meta["name"])
        # Parsed outside the lock: the spec is anyone's YAML, and every worker needs the lock.
        parsed: RouteMap | str | None = None
        if new is not None:
            try:
                parsed = parse_routemap(new)
            except UsageError as exc:
                parsed = truncate(str(exc), ERROR_LIMIT)
        touched = self.state.set_routemap(rkey, parsed)
        if parsed is None:
            self.writer.forget(str(meta.get("uid", "")), *rkey)
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
            for namespace, name in self.state.referencing(rid):
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
        for name in (app, f"{app}-routemap"):
            if self.state.has_routemap((namespace, name)):
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
        known, parsed = self.state.abn(key)
        if known is not None:
            return known
        if not isinstance(parsed, RouteMap):
            return AppVersions(())  # an invalid routemap routes nowhere new
        # Not reconciled yet (it just appeared): decide from the same caches the reconcile reads.
        return abn_versions(self.routemaps.plan(parsed), self._routemap_object(*key))

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
            self.routemaps.reconcile(key.namespace, key.name)
        else:
            self.finalizers.reconcile(key.kind, key.namespace, key.name)

    def _report_error(self, key: Key, message: str) -> None:
        if key.kind == ROUTEMAP:
            self.routemaps.report_error(key.namespace, key.name, message)


def _finished(job: Obj) -> bool:
    conditions = (job.get("status") or {}).get("conditions") or []
    return any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True" for c in conditions)
