"""Settings of the traffic controller: one dataclass, filled from flags and an optional YAML file.

Every timing is a field so that tests can run the real controller with short periods (a resync
every second, leases of two seconds) and production keeps Iter8's calm defaults. The YAML file
(``--config``) may add resource types the plugins did not register and override a few settings::

    resourceTypes:                     # Iter8's spelling (Group/Version/Resource) is accepted too
      ksvc: {group: serving.knative.dev, version: v1, resource: services, kind: Service,
             conditions: [Ready]}
    defaultResync: 5m
    workers: 4
    templateKinds: [VirtualService.networking.istio.io, HTTPRoute.gateway.networking.k8s.io]

``templateKinds`` are the only kinds the ``template`` router (and routemaps' Iter8
``routingTemplates``) may write (kubectl's ``Kind.group``, ``Kind`` for the core group): the
operator decides, not the routemap's author, because the controller writes with its own rights.

Iter8 v1.x's controller configuration (the ``config.yaml`` its ``controller`` chart wrote) loads as
it is: ``resourceTypes`` in its spelling (``Group``/``Version``/``Resource``, no ``Kind``: the kind
is looked up for the resources Iter8's charts named, else guessed), and its deployment settings
(``image``, ``replicas``, ``resources``, ``logLevel``, ``clusterScoped``), which describe the
Deployment, not the process: accepted and left to ``controller manifests``. A second short name
for a resource already listed (Iter8's ``service`` beside ``svc``) is not watched twice.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from kubectl_iter8.cluster import DEFAULT_IMAGE
from kubectl_iter8.errors import UsageError
from kubectl_iter8.registry import ResourceType, RoutingKind

from .abn.limits import Limits

#: What the ``template`` router may write unless configured: the built-in routers' kinds.
DEFAULT_TEMPLATE_KINDS: tuple[RoutingKind, ...] = (
    ("networking.istio.io", "VirtualService"),
    ("gateway.networking.k8s.io", "HTTPRoute"),
)


@dataclass(frozen=True)
class Settings:
    """How the controller runs."""

    #: Namespaces to watch; ``None`` watches every namespace (cluster-scoped install).
    namespaces: tuple[str, ...] | None = ("default",)
    #: Seconds between two full resyncs (every routemap is reconciled again, level-based).
    resync_period: float = 900.0
    #: Reconciles that may run at once (different routemaps; one routemap is never reconciled twice at once).
    workers: int = 2
    #: Address and port of /healthz, /readyz and /metrics (port 0: any free port).
    http_address: str = "127.0.0.1"
    http_port: int = 8080
    #: Whether to take part in leader election; without it this process always writes.
    leader_elect: bool = False
    #: The Lease used for election, and where it lives.
    lease_name: str = "iter8-controller"
    lease_namespace: str = "default"
    #: Who this process is in the Lease (``holderIdentity``): ``$POD_NAME`` in a cluster.
    identity: str = field(
        default_factory=lambda: os.environ.get("POD_NAME") or f"{socket.gethostname()}-{os.getpid()}"
    )
    #: A Lease not renewed for this long may be taken over by another candidate.
    lease_duration: float = 15.0
    #: The leader stops writing when it could not renew for this long (must be below lease_duration).
    renew_deadline: float = 10.0
    #: Seconds between two attempts to acquire or renew the Lease.
    retry_period: float = 2.0
    #: Whether routemaps' rollout policies are run (needs the RBAC of ``controller manifests --rollouts``).
    rollouts: bool = False
    #: The image of the Jobs that run rollouts' analysis experiments.
    analysis_image: str = DEFAULT_IMAGE
    #: Per-key back-off after failed reconciles: first delay, doubled per failure up to the maximum.
    backoff_base: float = 0.5
    backoff_max: float = 60.0
    #: Server-side timeout of each watch request; the informer re-watches from its resourceVersion.
    watch_timeout: int = 300
    #: Back-off of an informer whose list or watch failed: first delay, doubled up to the maximum.
    watch_backoff_base: float = 0.5
    watch_backoff_max: float = 30.0
    #: How long a list answered 403 is retried before its type counts as synced and empty: RBAC
    #: granted with the install may take a moment to apply, and an empty cache makes versions unavailable.
    forbidden_grace: float = 5.0
    #: Retries (with these delays) of one API request before the reconcile fails and is requeued.
    request_retry_delays: tuple[float, ...] = (0.1, 0.3)
    #: Resource types from the configuration file, on top of those registered by plugins.
    extra_resource_types: tuple[ResourceType, ...] = ()
    #: The kinds the ``template`` router may render (configuration file: ``templateKinds``).
    template_kinds: tuple[RoutingKind, ...] = DEFAULT_TEMPLATE_KINDS
    #: ``text`` or ``json`` log lines.
    log_format: str = "text"
    #: Port of the A/B/n gRPC service (None: not served; 0: any free port).
    abn_port: int | None = None
    abn_address: str = "127.0.0.1"
    #: Where A/B/n metric values are kept: ``sqlite:<path>`` or ``redis://...`` (see abn.store_url);
    #: None: SQLite in the state folder (:func:`.abn.store_url.default_sqlite_file`).
    abn_store: str | None = None
    #: The A/B/n service's caps (metric names, user records per application).
    abn_limits: Limits = field(default_factory=Limits)
    #: The shared token A/B/n calls and reads must carry (None: none); never shown.
    abn_token: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.leader_elect and self.renew_deadline >= self.lease_duration:
            raise UsageError("the renew deadline must be shorter than the lease duration")
        if self.workers < 1:
            raise UsageError("workers must be at least 1")


_TYPE_KEYS = {"group": "group", "version": "version", "resource": "resource", "kind": "kind"}
#: Keys of Iter8's controller configuration that describe its Deployment (its chart's values).
ITER8_DEPLOYMENT_KEYS = frozenset({"image", "replicas", "resources", "logLevel", "clusterScoped"})
#: The kinds of the resources Iter8's charts and tutorials named, for types given without ``kind``.
KNOWN_KINDS = {
    ("", "services"): "Service",
    ("", "configmaps"): "ConfigMap",
    ("", "secrets"): "Secret",
    ("", "pods"): "Pod",
    ("apps", "deployments"): "Deployment",
    ("apps", "statefulsets"): "StatefulSet",
    ("apps", "replicasets"): "ReplicaSet",
    ("apps", "daemonsets"): "DaemonSet",
    ("batch", "jobs"): "Job",
    ("serving.kserve.io", "inferenceservices"): "InferenceService",
    ("serving.knative.dev", "services"): "Service",
    ("networking.istio.io", "virtualservices"): "VirtualService",
    ("networking.istio.io", "destinationrules"): "DestinationRule",
    ("networking.istio.io", "serviceentries"): "ServiceEntry",
    ("gateway.networking.k8s.io", "httproutes"): "HTTPRoute",
    ("gateway.networking.k8s.io", "grpcroutes"): "GRPCRoute",
    ("litmuschaos.io", "chaosengines"): "ChaosEngine",
}


def _resource_type(name: str, raw: Any) -> ResourceType:
    if not isinstance(raw, dict):
        raise UsageError(f"resourceTypes.{name}: expected a mapping")
    values = {str(k).lower(): v for k, v in raw.items()}
    unknown = sorted(set(values) - {*_TYPE_KEYS, "conditions"})
    if unknown:
        raise UsageError(f"resourceTypes.{name}: unknown keys {', '.join(unknown)}")
    if not values.get("resource") or not values.get("version"):
        raise UsageError(f"resourceTypes.{name}: version and resource are required")
    conditions = values.get("conditions") or []
    if not isinstance(conditions, list):
        raise UsageError(f"resourceTypes.{name}.conditions: expected a list of condition types")
    # Iter8 v0.14 spelled a condition as {name, status}; keep the name.
    names = tuple(str(c.get("name") if isinstance(c, dict) else c) for c in conditions)
    resource = str(values["resource"])
    group = str(values.get("group") or "")
    kind = str(values.get("kind") or KNOWN_KINDS.get((group, resource)) or resource.rstrip("s").capitalize())
    return ResourceType(name, group, str(values["version"]), resource, kind, names)


def _distinct(types: list[ResourceType]) -> tuple[ResourceType, ...]:
    """``types`` without a second name for a resource already listed: two informers of one kind
    would each decide about the same objects' finalizers (Iter8's chart lists ``svc`` and
    ``service``; ``service`` stays a name for ``svc`` through the built-in aliases)."""
    seen: set[tuple[str, str]] = set()
    out = []
    for rtype in types:
        if (rtype.group, rtype.resource) not in seen:
            seen.add((rtype.group, rtype.resource))
            out.append(rtype)
    return tuple(out)


def parse_kind(text: str) -> RoutingKind:
    """``Kind.group`` (or ``Kind``) as (group, kind)."""
    kind, _, group = text.strip().partition(".")
    if not kind or not kind[0].isupper():
        raise UsageError(
            f"templateKinds: {text!r}: expected Kind.group (e.g. HTTPRoute.gateway.networking.k8s.io)"
        )
    return group, kind


def load_config(path: str | Path, settings: Settings) -> Settings:
    """``settings`` with what the YAML file at ``path`` adds or overrides.

    :raises UsageError: naming the file and the key when the file is malformed.
    """
    from kubectl_iter8 import boundedyaml
    from kubectl_iter8.durations import parse_duration

    try:
        raw = boundedyaml.load(Path(path).read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise UsageError(f"--config: {path}: {exc.strerror}") from None
    except boundedyaml.BoundedYAMLError as exc:
        raise UsageError(f"--config: {path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise UsageError(f"--config: {path}: expected a mapping")
    known = {
        "resourceTypes",
        "defaultResync",
        "workers",
        "logFormat",
        "templateKinds",
        *ITER8_DEPLOYMENT_KEYS,
    }
    unknown = sorted(set(raw) - known)
    if unknown:
        raise UsageError(f"--config: {path}: unknown keys {', '.join(unknown)}")
    changes: dict[str, Any] = {}
    types = raw.get("resourceTypes") or {}
    if not isinstance(types, dict):
        raise UsageError(f"--config: {path}: resourceTypes must map short names to types")
    changes["extra_resource_types"] = _distinct([_resource_type(str(k), v) for k, v in types.items()])
    if "defaultResync" in raw:
        changes["resync_period"] = parse_duration(str(raw["defaultResync"]))
    if "workers" in raw:
        changes["workers"] = int(raw["workers"])
    if "templateKinds" in raw:
        kinds = raw["templateKinds"] or []
        if not isinstance(kinds, list):
            raise UsageError(f"--config: {path}: templateKinds must be a list of Kind.group")
        changes["template_kinds"] = tuple(parse_kind(str(k)) for k in kinds)
    if "logFormat" in raw:
        changes["log_format"] = str(raw["logFormat"])
    return replace(settings, **changes)
