"""The object store: API semantics of every write, resourceVersions, the watch bus and the audit log.

This is where the fake behaves like kube-apiserver plus etcd: one global resourceVersion counter,
server-set metadata (uid, resourceVersion, creationTimestamp, generation), optimistic concurrency
(409 on a stale resourceVersion), generateName, dry runs, the status subresource, finalizers and
deletionTimestamp, namespace lifecycle, ownerReference garbage collection, Secret ``stringData``,
and CRD registration when a ``CustomResourceDefinition`` is written.

Every committed change becomes one :class:`Event` that goes to the bounded history (which is what
makes a too-old watch resourceVersion a 410), to live watch subscriptions, to listeners (the stand-in
controllers) and, as an :class:`AuditRecord`, to the audit log. All state sits behind one re-entrant
lock, because the HTTP server's event loop and the test thread (through the helpers) both write.
"""

from __future__ import annotations

import base64
import builtins
import copy
import itertools
import random
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from . import apierrors
from .apierrors import ApiError
from .defaulting import apply_defaults, integral_numbers, version_schema
from .discovery import Registry, ResourceInfo, crd_to_resource
from .patching import (
    APPLY_PATCH,
    JSON_PATCH,
    MERGE_PATCH,
    STRATEGIC_MERGE_PATCH,
    apply_conflicts,
    apply_patch,
    json_patch,
    merge_patch,
    strategic_merge,
)
from .selectors import Predicate

Obj = dict[str, Any]

DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
#: The fake has no certificate authority: the published ``kube-root-ca.crt`` says so.
ROOT_CA_PLACEHOLDER = (
    "-----BEGIN CERTIFICATE-----\n(the fake API server has no CA)\n-----END CERTIFICATE-----\n"
)
_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"
_SUBDOMAIN_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
#: Built-in kinds that keep metadata.generation (bumped when ``spec`` changes); custom resources
#: always do (bumped when anything but metadata and status changes), other built-ins never do.
GENERATION_RESOURCES = frozenset(
    {
        "deployments.apps",
        "replicasets.apps",
        "statefulsets.apps",
        "daemonsets.apps",
        "jobs.batch",
        "cronjobs.batch",
        "customresourcedefinitions.apiextensions.k8s.io",
    }
)


def now_iso() -> str:
    """The current time as Kubernetes writes timestamps (RFC 3339, seconds, ``Z``)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Event:
    """One committed change: ``type`` is ADDED, MODIFIED or DELETED; ``old`` is None for ADDED.

    ``old`` and ``new`` are the stored objects themselves: treat them as read-only.
    """

    rv: int
    type: str
    resource: str
    old: Obj | None
    new: Obj


@dataclass(frozen=True)
class AuditRecord:
    """One persisted write, for invariant checks in tests.

    ``verb`` is create, update, patch or delete (a delete that only sets deletionTimestamp is
    recorded as delete too, and so is the final removal); ``source`` is ``api`` (an HTTP client),
    ``test`` (a :class:`FakeKube` helper), ``controller`` (a stand-in controller) or ``gc`` (garbage
    collection, finalizer completion and namespace cleanup).
    """

    verb: str
    resource: str
    namespace: str | None
    name: str
    resource_version: str
    time: float
    subresource: str | None = None
    source: str = "api"


@dataclass
class _Subscription:
    resource: str
    deliver: Callable[[Event], None]


@dataclass
class Store:
    """All objects of the fake, by resource key then ``(namespace, name)``."""

    registry: Registry
    history_size: int = 1000
    lock: threading.RLock = field(default_factory=threading.RLock)
    objects: dict[str, dict[tuple[str, str], Obj]] = field(default_factory=dict)
    rv: int = 0
    compacted_rv: int = 0
    history: deque[Event] = field(default_factory=deque)
    audit: list[AuditRecord] = field(default_factory=list)
    listeners: list[Callable[[Event], None]] = field(default_factory=list)
    _subs: dict[int, _Subscription] = field(default_factory=dict)
    _sub_ids: Iterator[int] = field(default_factory=itertools.count)
    _uids: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    _orphan_uids: set[str] = field(default_factory=set)
    _applied: dict[tuple[str, str], Obj] = field(default_factory=dict)
    #: uid -> the field manager of the object's last write (the ownership model of apply conflicts).
    _writers: dict[str, str] = field(default_factory=dict)
    #: resource -> (resourceVersion, its objects sorted): the pages of one list read one sort.
    _sorted: dict[str, tuple[int, builtins.list[tuple[tuple[str, str], Obj]]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._seed()

    def _seed(self) -> None:
        ns_info = self.registry.get("", "namespaces")
        assert ns_info is not None
        for name in DEFAULT_NAMESPACES:
            self.create(ns_info, None, {"metadata": {"name": name}}, source="test", audit=False)

    # --- reading -----------------------------------------------------------------------------

    def _table(self, info: ResourceInfo) -> dict[tuple[str, str], Obj]:
        return self.objects.setdefault(info.key, {})

    def find(self, info: ResourceInfo, namespace: str | None, name: str) -> Obj | None:
        """The stored object (not a copy; hold the lock), or None."""
        return self._table(info).get((namespace or "", name))

    def get(self, info: ResourceInfo, namespace: str | None, name: str) -> Obj:
        with self.lock:
            obj = self.find(info, namespace, name)
            if obj is None:
                raise apierrors.not_found(info.group, info.plural, name)
            return copy.deepcopy(obj)

    def list(
        self,
        info: ResourceInfo,
        namespace: str | None,
        labels: Predicate | None = None,
        fields: Predicate | None = None,
    ) -> tuple[builtins.list[Obj], int]:
        """Matching objects sorted by namespace and name, and the list's resourceVersion."""
        items, rv, _ = self.page(info, namespace, labels, fields)
        return items, rv

    def page(
        self,
        info: ResourceInfo,
        namespace: str | None,
        labels: Predicate | None = None,
        fields: Predicate | None = None,
        *,
        start: int = 0,
        limit: int = 0,
    ) -> tuple[builtins.list[Obj], int, int]:
        """Matching objects ``start`` to ``start + limit`` (all with ``limit`` 0), the list's
        resourceVersion and how many match after them; only the page is copied, so reading
        50,000 objects in pages of 500 costs one copy of each, as on a real server."""
        with self.lock:
            cached = self._sorted.get(info.key)
            if cached is None or cached[0] != self.rv:
                cached = (self.rv, sorted(self._table(info).items()))
                self._sorted[info.key] = cached
            matching = [
                obj
                for (ns, _), obj in cached[1]
                if (namespace is None or ns == namespace)
                and (labels is None or labels(obj))
                and (fields is None or fields(obj))
            ]
            end = start + limit if limit > 0 else len(matching)
            return [copy.deepcopy(obj) for obj in matching[start:end]], self.rv, max(0, len(matching) - end)

    # --- watch bus ---------------------------------------------------------------------------

    def subscribe(self, resource: str, deliver: Callable[[Event], None]) -> int:
        """Deliver every future event of ``resource`` (call under the lock to avoid a gap)."""
        with self.lock:
            sub_id = next(self._sub_ids)
            self._subs[sub_id] = _Subscription(resource, deliver)
            return sub_id

    def unsubscribe(self, sub_id: int) -> None:
        with self.lock:
            self._subs.pop(sub_id, None)

    def events_since(self, resource: str, rv: int) -> builtins.list[Event]:
        """Events of ``resource`` after ``rv``; a 410 Gone if the history no longer reaches back."""
        with self.lock:
            if rv < self.compacted_rv:
                raise apierrors.gone(f"too old resource version: {rv} ({self.compacted_rv + 1})")
            return [e for e in self.history if e.rv > rv and e.resource == resource]

    def compact(self) -> None:
        """Forget the whole event history: watching from any earlier resourceVersion gets 410."""
        with self.lock:
            self.history.clear()
            self.compacted_rv = self.rv

    # --- committing --------------------------------------------------------------------------

    def _commit(
        self,
        info: ResourceInfo,
        old: Obj | None,
        new: Obj,
        *,
        verb: str,
        subresource: str | None,
        source: str,
        audit: bool = True,
        remove: bool = False,
    ) -> Obj:
        self.rv += 1
        meta = new["metadata"]
        meta["resourceVersion"] = str(self.rv)
        ns = meta.get("namespace") or ""
        table = self._table(info)
        if remove:
            table.pop((ns, meta["name"]), None)
            self._uids.pop(meta.get("uid", ""), None)
        else:
            table[(ns, meta["name"])] = new
            self._uids[meta["uid"]] = (info.key, ns, meta["name"])
        kind = "DELETED" if remove else ("ADDED" if old is None else "MODIFIED")
        # Stored objects are never changed in place (every write stores a new dict), so events can
        # share them; whoever wants to modify one copies it first.
        event = Event(self.rv, kind, info.key, old, new)
        self.history.append(event)
        while len(self.history) > max(self.history_size, 0):
            self.compacted_rv = self.history.popleft().rv
        if audit:
            self.audit.append(
                AuditRecord(
                    verb, info.key, ns or None, meta["name"], str(self.rv), time.time(), subresource, source
                )
            )
        for sub in list(self._subs.values()):
            if sub.resource == info.key:
                sub.deliver(event)
        for listener in list(self.listeners):
            listener(event)
        return copy.deepcopy(new)

    # --- validation and defaulting -----------------------------------------------------------

    def _check_namespace(self, info: ResourceInfo, namespace: str | None, *, creating: bool) -> None:
        if not info.namespaced:
            return
        if not namespace:
            raise apierrors.bad_request(
                "the server could not find the requested resource (namespace is required)"
            )
        ns_info = self.registry.get("", "namespaces")
        assert ns_info is not None
        ns_obj = self.find(ns_info, None, namespace)
        if ns_obj is None:
            raise apierrors.not_found("", "namespaces", namespace)
        if creating and ns_obj["metadata"].get("deletionTimestamp"):
            raise ApiError(
                403,
                "Forbidden",
                f'{info.plural} "" is forbidden: unable to create new content in namespace {namespace} '
                "because it is being terminated",
            )

    def _normalize(self, info: ResourceInfo, namespace: str | None, body: Obj, version: str | None) -> Obj:
        if not isinstance(body, dict):
            raise apierrors.bad_request("the request body must be a JSON object")
        obj = copy.deepcopy(body)
        if obj.get("kind") not in (None, "", info.kind):
            raise apierrors.bad_request(
                f"the API version in the data ({obj.get('apiVersion')}) does not match the expected API "
                f"version ({info.api_version(version)}) or the kind {obj.get('kind')!r} is not {info.kind!r}"
            )
        api_version = obj.get("apiVersion") or info.api_version(version)
        if (
            api_version.rpartition("/")[0] != info.group
            or api_version.rpartition("/")[2] not in info.versions
        ):
            api_version = info.api_version(version)
        obj["apiVersion"] = api_version
        obj["kind"] = info.kind
        meta = obj.get("metadata")
        if not isinstance(meta, dict):
            meta = obj["metadata"] = {}
        if info.namespaced:
            if meta.get("namespace") and meta["namespace"] != namespace:
                raise apierrors.bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        if info.key == "secrets":
            string_data = obj.pop("stringData", None) or {}
            data = obj.setdefault("data", {}) or {}
            for key, value in string_data.items():
                data[key] = base64.b64encode(str(value).encode()).decode()
            obj["data"] = data
            obj.setdefault("type", "Opaque")
        for key in [k for k, v in meta.items() if v is None]:
            del meta[key]
        return obj

    def _validate_name(self, info: ResourceInfo, name: str) -> None:
        pattern = _LABEL_RE if info.key in ("namespaces", "services") else _SUBDOMAIN_RE
        limit = 63 if info.key in ("namespaces", "services") else 253
        if not pattern.match(name) or len(name) > limit:
            what = "RFC 1123 label" if pattern is _LABEL_RE else "RFC 1123 subdomain"
            raise apierrors.invalid(
                info.kind,
                info.group,
                name,
                "metadata.name",
                "Invalid value",
                f'"{name}": a lowercase {what} must consist of lower case alphanumeric characters, '
                "'-' or '.', and must start and end with an alphanumeric character",
            )

    def _default(self, info: ResourceInfo, obj: Obj) -> None:
        """Defaulting a real API server (and its admission) does, for the kinds that need it."""
        meta = obj["metadata"]
        if not info.builtin:
            crd_info = self.registry.get("apiextensions.k8s.io", "customresourcedefinitions")
            crd = self.find(crd_info, None, f"{info.plural}.{info.group}") if crd_info else None
            schema = version_schema(crd, obj["apiVersion"].rpartition("/")[2]) if crd else None
            if schema is not None:
                apply_defaults(obj, schema)
            for key in [k for k in obj if k not in ("apiVersion", "kind", "metadata")]:
                obj[key] = integral_numbers(obj[key])
        elif info.key == "namespaces":
            obj["status"] = {"phase": "Terminating" if meta.get("deletionTimestamp") else "Active"}
            meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta["name"]
        elif info.key == "pods":
            obj.setdefault("status", {}).setdefault("phase", "Pending")
        elif info.key == "deployments.apps":
            spec = obj.setdefault("spec", {})
            spec.setdefault("replicas", 1)
        elif info.key == "jobs.batch":
            spec = obj.setdefault("spec", {})
            spec.setdefault("backoffLimit", 6)
            spec.setdefault("completions", 1)
            spec.setdefault("parallelism", 1)
            uid = meta["uid"]
            if not spec.get("selector"):
                spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
            labels = spec.setdefault("template", {}).setdefault("metadata", {}).setdefault("labels", {})
            labels.setdefault("batch.kubernetes.io/controller-uid", uid)
            labels.setdefault("batch.kubernetes.io/job-name", meta["name"])
            labels.setdefault("controller-uid", uid)
            labels.setdefault("job-name", meta["name"])
        elif info.key == "customresourcedefinitions.apiextensions.k8s.io":
            spec = obj.get("spec") or {}
            served = [v["name"] for v in spec.get("versions", []) if v.get("storage")]
            obj["status"] = {
                "acceptedNames": spec.get("names", {}),
                "storedVersions": served,
                "conditions": [
                    {"type": t, "status": "True", "reason": r, "lastTransitionTime": now_iso(), "message": m}
                    for t, r, m in (
                        ("NamesAccepted", "NoConflicts", "no conflicts found"),
                        ("Established", "InitialNamesAccepted", "the initial names have been accepted"),
                    )
                ],
            }

    def _check_crd(self, obj: Obj) -> ResourceInfo:
        name = obj["metadata"].get("name", "")
        try:
            info = crd_to_resource(obj)
        except (KeyError, TypeError) as exc:
            raise apierrors.invalid(
                "CustomResourceDefinition", "apiextensions.k8s.io", name, f"spec.{exc}", "Required value"
            ) from None
        if name != f"{info.plural}.{info.group}":
            raise apierrors.invalid(
                "CustomResourceDefinition",
                "apiextensions.k8s.io",
                name,
                "metadata.name",
                "Invalid value",
                f'"{name}": must be spec.names.plural+"."+spec.group',
            )
        if not info.versions:
            raise apierrors.invalid(
                "CustomResourceDefinition", "apiextensions.k8s.io", name, "spec.versions", "Required value"
            )
        existing = self.registry.get(info.group, info.plural)
        if existing is not None and existing.builtin:
            raise apierrors.invalid(
                "CustomResourceDefinition",
                "apiextensions.k8s.io",
                name,
                "spec.group",
                "Forbidden",
                "built-in",
            )
        return info

    @staticmethod
    def _tracks_generation(info: ResourceInfo) -> bool:
        return not info.builtin or info.key in GENERATION_RESOURCES

    @staticmethod
    def _spec_part(info: ResourceInfo, obj: Obj) -> Any:
        if info.builtin:
            return obj.get("spec")
        return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}

    # --- writes ------------------------------------------------------------------------------

    def create(
        self,
        info: ResourceInfo,
        namespace: str | None,
        body: Obj,
        *,
        version: str | None = None,
        dry_run: bool = False,
        field_manager: str | None = None,
        source: str = "api",
        audit: bool = True,
    ) -> Obj:
        """POST: create an object; 409 AlreadyExists, 404 for a missing namespace, 422 without a name."""
        with self.lock:
            obj = self._normalize(info, namespace, body, version)
            self._check_namespace(info, namespace, creating=True)
            meta = obj["metadata"]
            if not meta.get("name") and meta.get("generateName"):
                for _ in range(100):
                    candidate = meta["generateName"] + "".join(random.choices(_NAME_CHARS, k=5))
                    if self.find(info, namespace, candidate) is None:
                        meta["name"] = candidate
                        break
            if not meta.get("name"):
                raise apierrors.invalid(
                    info.kind,
                    info.group,
                    "",
                    "metadata.name",
                    "Required value",
                    "name or generateName is required",
                )
            self._validate_name(info, meta["name"])
            if self.find(info, namespace, meta["name"]) is not None:
                raise apierrors.already_exists(info.group, info.plural, meta["name"])
            crd = (
                self._check_crd(obj) if info.key == "customresourcedefinitions.apiextensions.k8s.io" else None
            )
            for key in (
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "resourceVersion",
                "managedFields",
            ):
                meta.pop(key, None)
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = now_iso()
            if self._tracks_generation(info):
                meta["generation"] = 1
            if info.has_status(version) and info.key != "namespaces":
                obj.pop("status", None)
            self._default(info, obj)
            if dry_run:
                return obj
            created = self._commit(
                info, None, obj, verb="create", subresource=None, source=source, audit=audit
            )
            self._writers[created["metadata"]["uid"]] = field_manager or "unknown"
            if crd is not None:
                self.registry.add(crd)
            return created

    def update(
        self,
        info: ResourceInfo,
        namespace: str | None,
        name: str,
        body: Obj,
        *,
        subresource: str | None = None,
        version: str | None = None,
        dry_run: bool = False,
        field_manager: str | None = None,
        source: str = "api",
        verb: str = "update",
    ) -> Obj:
        """PUT (main resource or ``/status``): 409 Conflict when ``metadata.resourceVersion`` is stale."""
        with self.lock:
            current = self.find(info, namespace, name)
            if current is None:
                raise apierrors.not_found(info.group, info.plural, name)
            obj = self._normalize(info, namespace, body, version)
            meta = obj["metadata"]
            if meta.get("name", name) != name:
                raise apierrors.bad_request(
                    f"the name of the object ({meta.get('name')}) does not match the name on the URL ({name})"
                )
            wanted_rv = meta.get("resourceVersion")
            if not wanted_rv and not info.builtin:
                raise apierrors.invalid(
                    info.kind,
                    info.group,
                    name,
                    "metadata.resourceVersion",
                    "Invalid value",
                    "0x0: must be specified for an update",
                )
            if wanted_rv and wanted_rv != current["metadata"]["resourceVersion"]:
                raise apierrors.conflict(info.group, info.plural, name)
            if meta.get("uid") and meta["uid"] != current["metadata"]["uid"]:
                raise apierrors.conflict(
                    info.group,
                    info.plural,
                    name,
                    f"Precondition failed: UID in precondition: {meta['uid']}, "
                    f"UID in object meta: {current['metadata']['uid']}",
                )
            if not dry_run:
                self._writers[current["metadata"]["uid"]] = field_manager or "unknown"
            return self._replace(info, current, obj, subresource, dry_run=dry_run, source=source, verb=verb)

    def _replace(
        self,
        info: ResourceInfo,
        current: Obj,
        obj: Obj,
        subresource: str | None,
        *,
        dry_run: bool,
        source: str,
        verb: str,
    ) -> Obj:
        old_meta = current["metadata"]
        if subresource == "status":
            new = _renew(current)
            if "status" in obj:
                new["status"] = obj["status"]
            else:
                new.pop("status", None)
        elif subresource is not None:
            raise apierrors.not_found(info.group, f"{info.plural}/{subresource}", old_meta["name"])
        else:
            new = obj
            meta = new["metadata"]
            for key in (
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
            ):
                if key in old_meta:
                    meta[key] = old_meta[key]
                else:
                    meta.pop(key, None)
            if info.has_status() or info.key == "namespaces":
                if "status" in current:
                    new["status"] = copy.deepcopy(current["status"])
                else:
                    new.pop("status", None)
            if old_meta.get("deletionTimestamp"):
                # Once deleting, finalizers may only be removed, never added.
                kept = [f for f in meta.get("finalizers") or [] if f in (old_meta.get("finalizers") or [])]
                if kept:
                    meta["finalizers"] = kept
                else:
                    meta.pop("finalizers", None)
            if info.key == "jobs.batch" or not info.builtin:
                self._default(info, new)
            if self._tracks_generation(info) and self._spec_part(info, new) != self._spec_part(info, current):
                meta["generation"] = int(old_meta.get("generation", 1)) + 1
        new["metadata"]["resourceVersion"] = old_meta["resourceVersion"]
        if new == current:
            return copy.deepcopy(current)  # a no-op write keeps its resourceVersion and sends no event
        crd = None
        if info.key == "customresourcedefinitions.apiextensions.k8s.io" and subresource is None:
            crd = self._check_crd(new)
            self._default(info, new)
        if dry_run:
            return new
        namespace = old_meta.get("namespace")
        if new["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers"):
            self._commit(info, current, new, verb=verb, subresource=subresource, source=source)
            return self._remove(info, namespace, new["metadata"]["name"], source="gc")
        result = self._commit(info, current, new, verb=verb, subresource=subresource, source=source)
        if crd is not None:
            self.registry.add(crd)
        return result

    def patch(
        self,
        info: ResourceInfo,
        namespace: str | None,
        name: str,
        content_type: str,
        patch: Any,
        *,
        subresource: str | None = None,
        version: str | None = None,
        dry_run: bool = False,
        field_manager: str | None = None,
        force: bool = False,
        source: str = "api",
    ) -> tuple[Obj, bool]:
        """PATCH of any flavour; returns the object and whether it was created (server-side apply)."""
        with self.lock:
            current = self.find(info, namespace, name)
            manager = field_manager or "unknown"
            if content_type == APPLY_PATCH:
                if not isinstance(patch, dict):
                    raise apierrors.bad_request("an applied configuration must be an object")
                if (patch.get("metadata") or {}).get("name", name) != name:
                    raise apierrors.bad_request(
                        f"the name of the object ({patch['metadata']['name']}) does not match the URL's"
                    )
                if current is None:
                    if subresource is not None:
                        raise apierrors.not_found(info.group, info.plural, name)
                    body = {**patch, "metadata": {**(patch.get("metadata") or {}), "name": name}}
                    created = self.create(
                        info,
                        namespace,
                        body,
                        version=version,
                        dry_run=dry_run,
                        field_manager=manager,
                        source=source,
                    )
                    if not dry_run:
                        self._applied[(created["metadata"]["uid"], manager)] = copy.deepcopy(patch)
                    return created, True
                previous = self._applied.get((current["metadata"]["uid"], manager))
                # kubectl moves what its client-side apply set to its server-side manager first.
                owners = (manager, f"{manager}-client-side-apply")
                unowned = self._writers.get(current["metadata"]["uid"]) not in owners
                conflicts = apply_conflicts(current, patch, previous) if unowned and not force else []
                if conflicts:
                    raise apierrors.apply_conflict(info.group, info.plural, name, conflicts)
                patched = apply_patch(current, patch, previous, builtin=info.builtin)
            else:
                if current is None:
                    raise apierrors.not_found(info.group, info.plural, name)
                if content_type == MERGE_PATCH:
                    patched = merge_patch(current, patch)
                elif content_type == JSON_PATCH:
                    patched = json_patch(current, patch)
                elif content_type == STRATEGIC_MERGE_PATCH:
                    if not info.builtin:
                        raise ApiError(
                            415,
                            "UnsupportedMediaType",
                            "the body of the request was in an unknown format - "
                            f"accepted media types include: {JSON_PATCH}, {MERGE_PATCH}, {APPLY_PATCH}",
                        )
                    patched = strategic_merge(current, patch)
                else:
                    raise ApiError(415, "UnsupportedMediaType", f"unsupported patch type {content_type!r}")
            if not isinstance(patched, dict):
                raise apierrors.bad_request("the patch did not produce an object")
            patched["metadata"] = dict(patched.get("metadata") or {})  # may be shared with the live object
            patched_rv = patched["metadata"].get("resourceVersion")
            if patched_rv and patched_rv != current["metadata"]["resourceVersion"]:
                raise apierrors.conflict(info.group, info.plural, name)
            patched["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            patched["metadata"]["name"] = name
            obj = self._normalize(info, namespace, patched, version)
            result = self._replace(
                info, current, obj, subresource, dry_run=dry_run, source=source, verb="patch"
            )
            if not dry_run:
                if content_type == APPLY_PATCH:
                    self._applied[(current["metadata"]["uid"], manager)] = copy.deepcopy(patch)
                self._writers[current["metadata"]["uid"]] = manager
            return result, False

    def delete(
        self,
        info: ResourceInfo,
        namespace: str | None,
        name: str,
        *,
        propagation: str | None = None,
        preconditions: dict[str, Any] | None = None,
        dry_run: bool = False,
        source: str = "api",
    ) -> tuple[Obj, bool]:
        """DELETE; returns the object and whether it is gone (False: finalizers keep it, deleting)."""
        with self.lock:
            current = self.find(info, namespace, name)
            if current is None:
                raise apierrors.not_found(info.group, info.plural, name)
            meta = current["metadata"]
            pre = preconditions or {}
            if pre.get("uid") and pre["uid"] != meta["uid"]:
                raise apierrors.conflict(
                    info.group,
                    info.plural,
                    name,
                    f"Precondition failed: UID in precondition: {pre['uid']}, "
                    f"UID in object meta: {meta['uid']}",
                )
            if pre.get("resourceVersion") and pre["resourceVersion"] != meta["resourceVersion"]:
                raise apierrors.conflict(info.group, info.plural, name)
            if propagation == "Orphan":
                self._orphan_uids.add(meta["uid"])
            if dry_run:
                return copy.deepcopy(current), not meta.get("finalizers")
            if info.key == "namespaces":
                if name in ("default", "kube-system", "kube-public"):
                    raise ApiError(
                        403,
                        "Forbidden",
                        f'namespaces "{name}" is forbidden: this namespace may not be deleted',
                        details={"name": name, "kind": "namespaces"},
                    )
                return self._delete_namespace(current, source=source)
            if meta.get("finalizers"):
                if meta.get("deletionTimestamp"):
                    return copy.deepcopy(current), False
                new = _renew(current)
                new["metadata"]["deletionTimestamp"] = now_iso()
                new["metadata"]["deletionGracePeriodSeconds"] = 0
                if "generation" in meta:
                    new["metadata"]["generation"] = int(meta["generation"]) + 1
                return self._commit(info, current, new, verb="delete", subresource=None, source=source), False
            return self._remove(info, namespace, name, source=source), True

    def _remove(self, info: ResourceInfo, namespace: str | None, name: str, *, source: str) -> Obj:
        current = self.find(info, namespace, name)
        assert current is not None
        gone = self._commit(
            info, current, _renew(current), verb="delete", subresource=None, source=source, remove=True
        )
        uid = gone["metadata"]["uid"]
        self._applied = {k: v for k, v in self._applied.items() if k[0] != uid}
        self._writers.pop(uid, None)
        self._collect_dependents(uid, orphan=uid in self._orphan_uids)
        self._orphan_uids.discard(uid)
        if info.key == "customresourcedefinitions.apiextensions.k8s.io":
            spec = gone.get("spec") or {}
            cr_info = self.registry.get(spec.get("group", ""), (spec.get("names") or {}).get("plural", ""))
            if cr_info is not None and not cr_info.builtin:
                for ns, cr_name in list(self._table(cr_info)):
                    self._remove(cr_info, ns or None, cr_name, source="gc")
                self.registry.remove(cr_info.group, cr_info.plural)
                self.objects.pop(cr_info.key, None)
        if namespace:
            self._finish_namespace(namespace)
        return gone

    def _collect_dependents(self, owner_uid: str, *, orphan: bool) -> None:
        """Background garbage collection of the owner's dependents (or orphaning them)."""
        for resource, table in list(self.objects.items()):
            info = self.registry.get(*_split_key(resource))
            if info is None:
                continue
            for (ns, dep_name), dep in list(table.items()):
                refs = dep["metadata"].get("ownerReferences") or []
                if not any(r.get("uid") == owner_uid for r in refs):
                    continue
                remaining = [r for r in refs if r.get("uid") != owner_uid]
                if orphan or any(self._uids.get(r.get("uid", "")) for r in remaining):
                    new = copy.deepcopy(dep)
                    if remaining:
                        new["metadata"]["ownerReferences"] = remaining
                    else:
                        new["metadata"].pop("ownerReferences", None)
                    self._commit(info, dep, new, verb="update", subresource=None, source="gc")
                elif self.find(info, ns or None, dep_name) is not None:
                    self.delete(info, ns or None, dep_name, source="gc")

    def _delete_namespace(self, ns_obj: Obj, *, source: str) -> tuple[Obj, bool]:
        ns_info = self.registry.get("", "namespaces")
        assert ns_info is not None
        name = ns_obj["metadata"]["name"]
        if not ns_obj["metadata"].get("deletionTimestamp"):
            new = copy.deepcopy(ns_obj)
            new["metadata"]["deletionTimestamp"] = now_iso()
            new["metadata"]["deletionGracePeriodSeconds"] = 0
            new["status"] = {"phase": "Terminating"}
            ns_obj = self._commit(ns_info, ns_obj, new, verb="delete", subresource=None, source=source)
        for resource in list(self.objects):
            info = self.registry.get(*_split_key(resource))
            if info is None or not info.namespaced:
                continue
            for ns, obj_name in list(self._table(info)):
                if ns == name and self.find(info, ns, obj_name) is not None:
                    self.delete(info, ns, obj_name, source="gc")
        self._finish_namespace(name)
        if self.find(ns_info, None, name) is None:
            return ns_obj, True
        return self.get(ns_info, None, name), False

    def _finish_namespace(self, namespace: str) -> None:
        ns_info = self.registry.get("", "namespaces")
        assert ns_info is not None
        ns_obj = self.find(ns_info, None, namespace)
        if ns_obj is None or not ns_obj["metadata"].get("deletionTimestamp"):
            return
        for resource, table in self.objects.items():
            if resource != "namespaces" and any(ns == namespace for ns, _ in table):
                return
        self._remove(ns_info, None, namespace, source="gc")

    def reset(self, *, keep_crds: bool) -> None:
        """Drop every object (and the history and audit log); keep CRDs and their registrations if asked."""
        with self.lock:
            crd_key = "customresourcedefinitions.apiextensions.k8s.io"
            crds = self.objects.get(crd_key, {}) if keep_crds else {}
            self.objects = {crd_key: crds} if crds else {}
            if not keep_crds:
                self.registry.reset()
            self._uids = {o["metadata"]["uid"]: (crd_key, "", n) for (_, n), o in crds.items()}
            self._applied.clear()
            self._writers.clear()
            self._orphan_uids.clear()
            self.history.clear()
            self.compacted_rv = self.rv
            self.audit.clear()
            self._seed()
            self.audit.clear()


def _split_key(resource: str) -> tuple[str, str]:
    plural, _, group = resource.partition(".")
    return group, plural


def _renew(obj: Obj) -> Obj:
    """A copy to write back: a new top level and metadata, sharing the rest (never changed in place)."""
    return {**obj, "metadata": dict(obj["metadata"])}
