"""What the fake serves: the built-in resource table, CRD registration and the discovery documents.

kubectl and the ``kubernetes`` client find resources through discovery (``/api``, ``/apis``, one
``APIResourceList`` per group version) and kubectl checks ``fieldValidation`` support through the
OpenAPI v3 index. Both are generated here from one :class:`Registry`, which starts with the built-in
kinds a controller and its tests touch and grows whenever a ``CustomResourceDefinition`` is stored
(through ``kubectl apply``, the client or :meth:`FakeKube.load_crds`), for every served version.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Any

VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
#: Built-in resources with a ``/scale`` subresource (autoscaling/v1 Scale).
SCALABLE = frozenset({"deployments.apps", "replicasets.apps", "statefulsets.apps"})
#: Built-in resources that can only be created, and are answered, not stored (SelfSubjectAccessReview).
REVIEWS = frozenset({"selfsubjectaccessreviews.authorization.k8s.io"})


@dataclass(frozen=True)
class ResourceInfo:
    """One served resource (all of its versions share one storage, as with ``conversion: None``)."""

    group: str
    versions: tuple[str, ...]
    plural: str
    singular: str
    kind: str
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    #: Versions in which ``/status`` is a subresource (writes to the main resource keep status).
    status_versions: tuple[str, ...] = ()
    builtin: bool = True

    @property
    def key(self) -> str:
        """``configmaps`` or ``deployments.apps``: how the fake names a resource everywhere."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def preferred_version(self) -> str:
        return self.versions[0]

    def api_version(self, version: str | None = None) -> str:
        version = version or self.preferred_version
        return f"{self.group}/{version}" if self.group else version

    def has_status(self, version: str | None = None) -> bool:
        return (version or self.preferred_version) in self.status_versions


def _builtin(
    group: str,
    version: str,
    plural: str,
    kind: str,
    *,
    namespaced: bool = True,
    short: tuple[str, ...] = (),
    categories: tuple[str, ...] = (),
    status: bool = False,
) -> ResourceInfo:
    return ResourceInfo(
        group=group,
        versions=(version,),
        plural=plural,
        singular=kind.lower(),
        kind=kind,
        namespaced=namespaced,
        short_names=short,
        categories=categories,
        status_versions=(version,) if status else (),
    )


BUILTINS: tuple[ResourceInfo, ...] = (
    _builtin("", "v1", "namespaces", "Namespace", namespaced=False, short=("ns",), status=True),
    _builtin("", "v1", "pods", "Pod", short=("po",), categories=("all",), status=True),
    _builtin("", "v1", "services", "Service", short=("svc",), categories=("all",), status=True),
    _builtin("", "v1", "configmaps", "ConfigMap", short=("cm",)),
    _builtin("", "v1", "secrets", "Secret"),
    _builtin("", "v1", "serviceaccounts", "ServiceAccount", short=("sa",)),
    _builtin("", "v1", "events", "Event", short=("ev",)),
    _builtin("", "v1", "endpoints", "Endpoints", short=("ep",)),
    _builtin("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", short=("pvc",), status=True),
    _builtin("apps", "v1", "deployments", "Deployment", short=("deploy",), categories=("all",), status=True),
    _builtin("apps", "v1", "replicasets", "ReplicaSet", short=("rs",), categories=("all",), status=True),
    _builtin("apps", "v1", "statefulsets", "StatefulSet", short=("sts",), categories=("all",), status=True),
    _builtin("apps", "v1", "daemonsets", "DaemonSet", short=("ds",), categories=("all",), status=True),
    _builtin("batch", "v1", "jobs", "Job", categories=("all",), status=True),
    _builtin("batch", "v1", "cronjobs", "CronJob", short=("cj",), categories=("all",), status=True),
    _builtin("coordination.k8s.io", "v1", "leases", "Lease"),
    _builtin("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", short=("netpol",)),
    _builtin(
        "authorization.k8s.io", "v1", "selfsubjectaccessreviews", "SelfSubjectAccessReview", namespaced=False
    ),
    _builtin("events.k8s.io", "v1", "events", "Event", short=("ev",)),
    _builtin("rbac.authorization.k8s.io", "v1", "roles", "Role"),
    _builtin("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding"),
    _builtin("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", namespaced=False),
    _builtin(
        "rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", namespaced=False
    ),
    _builtin(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        namespaced=False,
        short=("crd", "crds"),
        categories=("api-extensions",),
        status=True,
    ),
)

_VERSION_RE = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")


def version_priority(version: str) -> tuple[int, int, int]:
    """Sort key putting versions in Kubernetes' order: v2 > v1 > v1beta2 > v1beta1 > v1alpha1 > other."""
    m = _VERSION_RE.match(version)
    if not m:
        return (3, 0, 0)
    stability = {"": 0, "beta": 1, "alpha": 2}[m.group(2) or ""]
    return (stability, -int(m.group(1)), -int(m.group(3) or 0))


def crd_to_resource(crd: dict[str, Any]) -> ResourceInfo:
    """The :class:`ResourceInfo` a ``CustomResourceDefinition`` (apiextensions.k8s.io/v1) declares."""
    spec = crd["spec"]
    names = spec["names"]
    served = [v for v in spec.get("versions", []) if v.get("served", True)]
    versions = sorted((v["name"] for v in served), key=version_priority)
    return ResourceInfo(
        group=spec["group"],
        versions=tuple(versions),
        plural=names["plural"],
        singular=names.get("singular") or names["kind"].lower(),
        kind=names["kind"],
        namespaced=spec.get("scope", "Namespaced") == "Namespaced",
        short_names=tuple(names.get("shortNames") or ()),
        categories=tuple(names.get("categories") or ()),
        status_versions=tuple(
            v["name"] for v in served if "status" in ((v.get("subresources") or {}) if v else {})
        ),
        builtin=False,
    )


@dataclass
class Registry:
    """The resources currently served, by ``(group, plural)``; thread-safe."""

    _by_key: dict[tuple[str, str], ResourceInfo] = field(default_factory=dict)
    _lock: threading.RLock = field(default_factory=threading.RLock)
    #: Bumped on every change, so OpenAPI hashes (and kubectl's cache) change with the CRDs.
    revision: int = 0

    def __post_init__(self) -> None:
        for info in BUILTINS:
            self._by_key[(info.group, info.plural)] = info

    def add(self, info: ResourceInfo) -> None:
        with self._lock:
            self._by_key[(info.group, info.plural)] = info
            self.revision += 1

    def remove(self, group: str, plural: str) -> None:
        with self._lock:
            info = self._by_key.get((group, plural))
            if info is not None and not info.builtin:
                del self._by_key[(group, plural)]
                self.revision += 1

    def reset(self) -> None:
        """Forget every CRD-defined resource."""
        with self._lock:
            for key, info in list(self._by_key.items()):
                if not info.builtin:
                    del self._by_key[key]
            self.revision += 1

    def all(self) -> list[ResourceInfo]:
        with self._lock:
            return list(self._by_key.values())

    def get(self, group: str, plural: str) -> ResourceInfo | None:
        with self._lock:
            return self._by_key.get((group, plural))

    def lookup(self, group: str, version: str, plural: str) -> ResourceInfo | None:
        """The resource served at ``/apis/{group}/{version}/{plural}``, if any."""
        info = self.get(group, plural)
        return info if info is not None and version in info.versions else None

    def for_kind(self, api_version: str, kind: str) -> ResourceInfo | None:
        group, _, version = api_version.rpartition("/")
        with self._lock:
            for info in self._by_key.values():
                if info.group == group and info.kind == kind and version in info.versions:
                    return info
        return None

    def resolve(self, name: str) -> ResourceInfo:
        """Find a resource by plural, singular, kind or short name, optionally ``.group``-qualified.

        This is what the test helpers accept: ``"deployments"``, ``"deploy"``, ``"Deployment"``,
        ``"deployments.apps"``, ``"vs"``, ``"virtualservices.networking.istio.io"``. Built-in
        resources win over CRDs for an unqualified name, and the core group over other groups.
        """
        with self._lock:
            candidates = sorted(self._by_key.values(), key=lambda i: (not i.builtin, i.group != "", i.group))
            for info in candidates:
                if name in (info.key, f"{info.kind}.{info.group}", f"{info.singular}.{info.group}"):
                    return info
            for info in candidates:
                if name == info.plural or name == info.singular or name == info.kind:
                    return info
                if name.lower() in info.short_names:
                    return info
        raise KeyError(f"the fake serves no resource called {name!r}")

    # --- discovery documents -------------------------------------------------------------------

    def group_versions(self) -> dict[str, list[str]]:
        """Served versions of each group (``""`` is the core group), preferred version first."""
        out: dict[str, set[str]] = {}
        for info in self.all():
            out.setdefault(info.group, set()).update(info.versions)
        return {g: sorted(vs, key=version_priority) for g, vs in out.items()}

    def api_versions(self) -> dict[str, Any]:
        return {
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}],
        }

    def _group_doc(self, group: str, versions: list[str]) -> dict[str, Any]:
        gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        return {"name": group, "versions": gvs, "preferredVersion": gvs[0]}

    def api_group_list(self) -> dict[str, Any]:
        groups = [self._group_doc(g, vs) for g, vs in sorted(self.group_versions().items()) if g]
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}

    def api_group(self, group: str) -> dict[str, Any] | None:
        versions = self.group_versions().get(group)
        if not group or not versions:
            return None
        return {"kind": "APIGroup", "apiVersion": "v1", **self._group_doc(group, versions)}

    def api_resource_list(self, group: str, version: str) -> dict[str, Any] | None:
        infos = [i for i in self.all() if i.group == group and version in i.versions]
        if not infos:
            return None
        resources: list[dict[str, Any]] = []
        for info in sorted(infos, key=lambda i: i.plural):
            entry: dict[str, Any] = {
                "name": info.plural,
                "singularName": info.singular,
                "namespaced": info.namespaced,
                "kind": info.kind,
                "verbs": ["create"] if info.key in REVIEWS else VERBS,
            }
            if info.short_names:
                entry["shortNames"] = list(info.short_names)
            if info.categories:
                entry["categories"] = list(info.categories)
            resources.append(entry)
            if info.has_status(version):
                resources.append(
                    {
                        "name": f"{info.plural}/status",
                        "singularName": "",
                        "namespaced": info.namespaced,
                        "kind": info.kind,
                        "verbs": ["get", "patch", "update"],
                    }
                )
            if info.key in SCALABLE:
                resources.append(
                    {
                        "name": f"{info.plural}/scale",
                        "singularName": "",
                        "namespaced": True,
                        "group": "autoscaling",
                        "version": "v1",
                        "kind": "Scale",
                        "verbs": ["get", "patch", "update"],
                    }
                )
            if info.key == "pods":
                resources.append(
                    {
                        "name": "pods/log",
                        "singularName": "",
                        "namespaced": True,
                        "kind": "Pod",
                        "verbs": ["get"],
                    }
                )
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version,
            "resources": resources,
        }

    # --- OpenAPI v3 stub ----------------------------------------------------------------------

    @staticmethod
    def openapi_path(group: str, version: str) -> str:
        return f"api/{version}" if not group else f"apis/{group}/{version}"

    def openapi_index(self) -> dict[str, Any]:
        """``/openapi/v3``: one entry per group version, hashed by registry revision."""
        paths: dict[str, Any] = {}
        for group, versions in self.group_versions().items():
            for version in versions:
                path = self.openapi_path(group, version)
                paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash=R{self.revision:08d}"}
        return {"paths": paths}

    def openapi_document(self, group: str, version: str) -> dict[str, Any] | None:
        """A minimal OpenAPI v3 document for one group version.

        It declares, for each kind, a PATCH operation that accepts the ``fieldValidation`` query
        parameter. That is all kubectl looks for before it leaves validation to the server (so
        ``kubectl apply`` works without ``--validate=false``). Schemas are not published.
        """
        infos = [i for i in self.all() if i.group == group and version in i.versions]
        if not infos:
            return None
        prefix = "/api/v1" if not group else f"/apis/{group}/{version}"
        paths: dict[str, Any] = {}
        for info in infos:
            middle = "/namespaces/{namespace}" if info.namespaced else ""
            gvk = {"group": group, "version": version, "kind": info.kind}
            paths[f"{prefix}{middle}/{info.plural}/{{name}}"] = {
                "patch": {
                    "operationId": f"patch{info.kind}",
                    "x-kubernetes-action": "patch",
                    "x-kubernetes-group-version-kind": gvk,
                    "parameters": [
                        {"name": "fieldValidation", "in": "query", "schema": {"type": "string"}},
                        {"name": "dryRun", "in": "query", "schema": {"type": "string"}},
                        {"name": "fieldManager", "in": "query", "schema": {"type": "string"}},
                    ],
                    "responses": {"200": {"description": "OK"}},
                }
            }
        return {
            "openapi": "3.0.0",
            "info": {"title": "Kubernetes (kubectl_iter8.testing fake)", "version": "v1.32.0"},
            "paths": paths,
            "components": {"schemas": {}},
        }
