"""The work of a routemap's key: plan from the caches, render, write the routing objects and status.

Level-based, as controller-runtime's reconcilers: every call reads the current routemap and the
cached resources, decides the whole routing (:func:`~.plan.plan`), and writes only what
differs from the live objects, so a repeated or late call changes nothing. In order:

1. the plan's available versions and weights (also what the A/B/n service may assign);
2. the router renders the routing objects (:func:`~.plan.desired_objects`); objects that
   exist and are not this routemap's make it fail before anything is written;
3. each changed object is server-side applied (forcing nothing when creating it, so an object
   someone created in the meantime is not taken over);
4. objects it applied before and no longer renders are deleted, then the status ConfigMap is
   written, and the finalizers of resources it no longer routes to may be released.

Writes go through the :class:`~.writer.Writer` (leader only); the caches, the queue and the
finalizer release are passed in, so nothing here reaches back to the manager.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

from kubectl_iter8.boundedyaml import truncate
from kubectl_iter8.errors import Iter8Error, KubeConflictError, KubeError, UsageError
from kubectl_iter8.kube import CONFIGMAPS, GVR, Kube
from kubectl_iter8.registry import ResourceType, RouterRegistry, RoutingKind, kind_name, kind_of
from kubectl_iter8.rollout import RolloutState
from kubectl_iter8.routemap import MANAGED_BY, RouteMap

from .abn.assignment import AppVersions
from .cache import Obj
from .errors import PermanentError, TemporaryError
from .finalizers import FinalizerReconciler, Lookup, is_deleting
from .http import Metrics
from .plan import FIELD_MANAGER, Plan, desired_objects, plan, up_to_date
from .reads import Reads
from .rollouts import RolloutReconciler
from .state import ROUTEMAP, Key, SharedState
from .status import read_status, status_name, status_object
from .writer import ERROR_LIMIT, Writer

log = logging.getLogger("kubectl_iter8.controller")

#: A routemap annotation whose value is mixed into every A/B/n assignment: changing it reassigns every user.
ABN_SEED_ANNOTATION = "iter8.tools/abn-seed"


def owned_by(live: Obj, cm: Obj) -> bool:
    """Whether ``live`` is one of the routemap ``cm``'s objects: labelled as the controller's and
    owned by that routemap (same uid). Anything else is someone else's, never written or deleted."""
    meta = live.get("metadata") or {}
    labels = meta.get("labels") or {}
    owners = {o.get("uid") for o in meta.get("ownerReferences") or []}
    managed = all(labels.get(k) == v for k, v in MANAGED_BY.items())
    return managed and cm["metadata"].get("uid") in owners


def abn_versions(decided: Plan, cm: Obj | None) -> AppVersions:
    """What users of the routemap may get: its available versions with weight > 0."""
    seed = str(((cm or {}).get("metadata", {}).get("annotations") or {}).get(ABN_SEED_ANNOTATION, ""))
    pairs = tuple(
        (i, float(v.weight)) for i, v in enumerate(decided.versions) if v.available and v.weight > 0
    )
    return AppVersions(pairs, seed)


class RouteMapReconciler:
    """Brings one routemap's routing objects and status in line with the caches."""

    def __init__(
        self,
        kube: Kube,
        writer: Writer,
        state: SharedState,
        finalizers: FinalizerReconciler,
        *,
        routemap_object: Callable[[str, str], Obj | None],
        lookup: Lookup,
        type_table: Mapping[str, ResourceType],
        routers: RouterRegistry,
        template_kinds: tuple[RoutingKind, ...],
        metrics: Metrics,
        enqueue: Callable[[Key], None],
        rollouts: RolloutReconciler | None = None,
    ) -> None:
        self.kube = kube
        self.writer = writer
        self.state = state
        self.finalizers = finalizers
        self.routemap_object = routemap_object
        self.lookup = lookup
        self.type_table = type_table
        self.routers = routers
        self.template_kinds = template_kinds
        self.metrics = metrics
        self.enqueue = enqueue
        self.rollouts = rollouts

    def plan(self, routemap: RouteMap, weights: list[int] | None = None) -> Plan:
        return plan(routemap, self.lookup, self.type_table, weights)

    def reconcile(self, namespace: str, name: str) -> None:
        # While a routemap is being reconciled, no finalizer it guards is released: its plan may
        # predate a deletion, and a write that still routes to the version may be on its way.
        with self.state.reconciling((namespace, name)):
            self._reconcile(namespace, name)

    def _reconcile(
        self, namespace: str, name: str, *, again: bool = True, reads: Reads | None = None
    ) -> None:
        key = (namespace, name)
        reads = reads or Reads(self.kube)
        cm = self.routemap_object(namespace, name)
        if cm is None:
            self.metrics.set_weights(namespace, name, None)
            self.metrics.set_rollout(namespace, name, None)
            self.state.set_abn(key, None)
            return  # its routing objects and status go with it (ownerReferences)
        parsed = self.state.routemap(key)
        if not isinstance(parsed, RouteMap):
            self.state.set_abn(key, None)
            message = parsed if isinstance(parsed, str) else "not parsed yet"
            if self.writer.is_leader():
                self.writer.event(cm, "InvalidRouteMap", message, warning=True)
                self.write_status(cm, None, None, None, message)
            raise PermanentError(message)
        routemap = parsed
        rollout: tuple[Obj | None, RolloutState] | None = None
        weights = None
        if routemap.spec.rollout is None:
            self.metrics.set_rollout(namespace, name, None)
        elif self.rollouts is None:
            message = "it has a rollout policy, but rollouts are off (controller serve --rollouts)"
            if self.writer.is_leader():
                self.writer.event(cm, "RolloutsOff", message, warning=True)
                self.write_status(cm, routemap, None, None, message)
            raise PermanentError(message)
        else:
            rollout = self.rollouts.load(cm, reads)
            weights = self.rollouts.weights(routemap, rollout[1])
        decided = self.plan(routemap, weights)
        log.debug("routemap %s/%s: %s", namespace, name, decided)
        self.state.set_abn(key, abn_versions(decided, cm))
        if not self.writer.is_leader():
            return
        try:
            objects = desired_objects(
                routemap, decided.state, self.routers, self.template_kinds, self.type_table
            )
            targets = [(self._gvr_of(obj), obj) for obj in objects]
        except PermanentError as exc:
            self.writer.event(cm, "RenderFailed", str(exc), warning=True)
            self.write_status(cm, routemap, decided, None, str(exc))
            raise
        lives = [reads.find(gvr, obj["metadata"]["name"], namespace) for gvr, obj in targets]
        foreign = [
            f"{kind_name(kind_of(obj))} {obj['metadata']['name']!r}"
            for (_, obj), live in zip(targets, lives, strict=True)
            if live is not None and not owned_by(live, cm)
        ]
        if foreign:
            # Checked before the first write, so a routemap never half-applies: the controller
            # writes with its own rights and must not become a way to take over others' objects.
            self._conflict(
                cm, routemap, decided, f"{', '.join(foreign)} already exist and are not this routemap's"
            )
        # Before writing, forget "drained" for every resource this write may route to again, so a
        # failure half-way cannot leave a stale promise behind.
        before = self.state.keep_drained(key, decided.unavailable_resources())
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
                reads.wrote(gvr, self.writer.write(f"apply {obj['kind']}/{meta['name']}", write))
            except KubeConflictError as exc:
                what = f"{kind_name(kind_of(obj))} {meta['name']!r}"
                self._conflict(cm, routemap, decided, f"{what} was created meanwhile by someone else ({exc})")
            changed.append((gvr, obj["kind"], meta["name"]))
        if changed and not self._still_exists(cm):
            # The routemap was deleted while this reconcile ran: what it just wrote may have been
            # re-created after the garbage collector handled the owner, so remove it.
            for gvr, _, obj_name in changed:
                self.writer.write(
                    f"delete {gvr.resource}/{obj_name}",
                    functools.partial(self.kube.delete, gvr, obj_name, namespace),
                )
            return
        self.state.set_drained(key, decided.unavailable_resources())
        self.metrics.set_weights(namespace, name, {v.name: v.weight for v in decided.versions})
        if changed:
            text = ", ".join(
                f"{v.name}={v.weight}" + ("" if v.available else " (unavailable)") for v in decided.versions
            )
            written = ", ".join(f"{kind}/{obj_name}" for _, kind, obj_name in changed)
            self.writer.event(cm, "RoutingApplied", f"applied {written}: weights {text}")
        applied = [
            {"apiVersion": o["apiVersion"], "kind": o["kind"], "name": o["metadata"]["name"]} for o in objects
        ]
        # One read of the status serves both: only this controller writes it. When it already
        # records exactly these objects (every resync), there is nothing to prune or write, and
        # parsing it would be a tenth of the reconcile.
        live = self._status_live(cm, reads)
        if not up_to_date(live, status_object(cm, routemap, decided, applied, None)):
            previous = read_status(live)
            self._prune(cm, applied, previous)
            self.write_status(cm, routemap, decided, applied, None, live=(live, previous), reads=reads)
        if (
            rollout is not None
            and self.rollouts is not None
            and self.rollouts.reconcile(cm, routemap, decided, *rollout, reads=reads, launch_now=again)
        ):
            if again:
                # The rollout asks for another weight: apply it now rather than after a trip
                # through the queue (behind every other routemap's reconcile).
                self._reconcile(namespace, name, again=False, reads=reads)
                return
            self.enqueue(Key(ROUTEMAP, namespace, name))
        for rid in sorted(decided.unavailable_resources()):
            resource = self.lookup(*rid)
            if resource is not None and is_deleting(resource):
                self.finalizers.release_if_drained(rid, resource, reconciling=key)
            elif resource is None and rid not in (before or frozenset()):
                self.enqueue(Key(*rid))  # newly drained and not watched: it may carry our finalizer

    def _conflict(self, cm: Obj, routemap: RouteMap, decided: Plan, why: str) -> NoReturn:
        message = truncate(f"not written: {why}", ERROR_LIMIT)
        self.writer.event(cm, "RoutingConflict", message, warning=True)
        self.write_status(cm, routemap, decided, None, message)
        raise PermanentError(message)

    def _status_live(self, cm: Obj, reads: Reads | None = None) -> Obj | None:
        meta = cm["metadata"]
        return (reads or Reads(self.kube)).find(
            CONFIGMAPS, status_name(meta["name"]), meta.get("namespace") or ""
        )

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
        for entry in previous:
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
                self.writer.write(
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

    def report_error(self, namespace: str, name: str, message: str) -> None:
        """A reconcile failed unexpectedly: say so in an Event and the status (leader only)."""
        if not self.writer.is_leader():
            return
        cm = self.routemap_object(namespace, name)
        if cm is None:
            return
        try:
            self.writer.event(cm, "ReconcileFailed", message, warning=True)
            parsed = self.state.routemap((namespace, name))
            routemap = parsed if isinstance(parsed, RouteMap) else None
            decided = self.plan(routemap) if routemap is not None else None
            self.write_status(cm, routemap, decided, None, message)
        except (Iter8Error, KubeError, TemporaryError) as exc:
            log.debug("could not report the failure: %s", exc)

    def write_status(
        self,
        cm: Obj,
        routemap: RouteMap | None,
        decided: Plan | None,
        objects: list[dict[str, str]] | None,
        error: str | None,
        *,
        live: tuple[Obj | None, dict[str, Any]] | None = None,
        reads: Reads | None = None,
    ) -> None:
        """Apply the routemap's status ConfigMap if its content changed (see :mod:`.status`).

        :param live: the live status ConfigMap and its parsed status, when the caller has read them.
        :param reads: where the reconcile keeps what it wrote.
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
        written = self.writer.write(
            f"status {meta['name']}",
            lambda: self.kube.apply_server_side(CONFIGMAPS, desired, namespace, field_manager=FIELD_MANAGER),
        )
        if reads is not None:
            reads.wrote(CONFIGMAPS, written)
        if current is None and not self._still_exists(cm):  # raced with the routemap's deletion
            self.writer.write(
                f"delete configmaps/{desired['metadata']['name']}",
                functools.partial(self.kube.delete, CONFIGMAPS, desired["metadata"]["name"], namespace),
            )
