"""``kubectl iter8 controller manifests``: what it takes to run the controller in a cluster.

A ServiceAccount, a least-privilege Role (or ClusterRole with ``--cluster-scoped``) and its binding,
a Deployment running ``kubectl-iter8 controller serve`` from the project's image (see the
Dockerfile), and a Service for the HTTP port and the A/B/n gRPC port. The rules are derived from
the configured resource types, so adding a type to the configuration adds exactly the access it needs:

* every watched type: get, list, watch (the informers) and patch (the finalizer);
* ConfigMaps: get, list, watch (routemaps), create, patch, delete (the status ConfigMaps, and one
  written by a reconcile that raced with its routemap's deletion);
* Events: create, patch; Leases: get, create, update (leader election);
* the routing objects' kinds are rendered by router plugins and not known in advance: the
  built-in routers' kinds (Istio VirtualServices, Gateway API HTTPRoutes, KServe
  InferenceServices) get get, create, patch, delete (``route_resources`` for others).

A/B/n metrics go to SQLite on an ``emptyDir`` volume by default (it survives container restarts,
not the Pod's deletion), or to the store whose URL is the key ``url`` of ``abn_store_secret`` (a
``redis://`` URL with its password, passed as ``$ITER8_ABN_STORE``, never in the arguments).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from kubectl_iter8.registry import ResourceType
from kubectl_iter8.version import __version__

NAME = "iter8-controller"
IMAGE = f"ghcr.io/kubectl-iter8/kubectl-iter8:v{__version__}"
#: Kinds the built-in routers render: (API group, resource).
ROUTING_RESOURCES = (
    ("networking.istio.io", "virtualservices"),
    ("gateway.networking.k8s.io", "httproutes"),
    ("serving.kserve.io", "inferenceservices"),
)


VERB_ORDER = ("get", "list", "watch", "create", "update", "patch", "delete")


def _rules(types: Iterable[ResourceType], route_resources: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
    verbs: dict[tuple[str, str], set[str]] = {}

    def allow(group: str, resource: str, *wanted: str) -> None:
        verbs.setdefault((group, resource), set()).update(wanted)

    for rtype in types:
        allow(rtype.group, rtype.resource, "get", "list", "watch", "patch")
    allow("", "configmaps", "get", "list", "watch", "create", "patch", "delete")
    allow("", "events", "create", "patch")
    allow("coordination.k8s.io", "leases", "get", "create", "update")
    for group, resource in route_resources:
        allow(group, resource, "get", "create", "patch", "delete")
    # One rule per (group, verbs), so the Role reads like the list above.
    grouped: dict[tuple[str, tuple[str, ...]], list[str]] = {}
    for (group, resource), wanted in verbs.items():
        ordered = tuple(v for v in VERB_ORDER if v in wanted)
        grouped.setdefault((group, ordered), []).append(resource)
    return [
        {"apiGroups": [group], "resources": sorted(resources), "verbs": list(ordered)}
        for (group, ordered), resources in sorted(grouped.items())
    ]


def manifests(
    types: Iterable[ResourceType],
    *,
    namespace: str,
    cluster_scoped: bool = False,
    image: str = IMAGE,
    http_port: int = 8080,
    abn_port: int = 50051,
    abn_store_secret: str | None = None,
    route_resources: Sequence[tuple[str, str]] = ROUTING_RESOURCES,
) -> list[dict[str, Any]]:
    """The objects to ``kubectl apply``, in order."""
    labels = {"app.kubernetes.io/name": NAME, "app.kubernetes.io/managed-by": "iter8"}
    meta = {"name": NAME, "namespace": namespace, "labels": labels}
    role_kind = "ClusterRole" if cluster_scoped else "Role"
    role_meta = {"name": NAME, "labels": labels} if cluster_scoped else meta
    scope = ["--all-namespaces"] if cluster_scoped else ["--namespace", namespace]
    args = [
        "controller",
        "serve",
        *scope,
        "--leader-elect",
        "--lease-namespace",
        namespace,
        "--http-address",
        "0.0.0.0",
        "--http-port",
        str(http_port),
        "--log-format",
        "json",
    ]
    env: list[dict[str, Any]] = [
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
    ]
    ports = [{"name": "http", "containerPort": http_port}]
    service_ports = [{"name": "http", "port": http_port, "targetPort": "http"}]
    volumes: list[dict[str, Any]] = []
    mounts: list[dict[str, Any]] = []
    if abn_port:
        args += ["--abn-address", "0.0.0.0", "--abn-port", str(abn_port)]
        ports.append({"name": "grpc", "containerPort": abn_port})
        service_ports.append({"name": "grpc", "port": abn_port, "targetPort": "grpc"})
        if abn_store_secret:
            env.append(
                {
                    "name": "ITER8_ABN_STORE",
                    "valueFrom": {"secretKeyRef": {"name": abn_store_secret, "key": "url"}},
                }
            )
        else:
            args += ["--abn-store", "sqlite:/var/lib/iter8/abn.sqlite"]
            volumes.append({"name": "abn-data", "emptyDir": {}})
            mounts.append({"name": "abn-data", "mountPath": "/var/lib/iter8"})
    probe = {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 10}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": role_kind,
            "metadata": role_meta,
            "rules": _rules(types, route_resources),
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": f"{role_kind}Binding",
            "metadata": role_meta,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": NAME},
            "subjects": [{"kind": "ServiceAccount", "name": NAME, "namespace": namespace}],
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": meta,
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app.kubernetes.io/name": NAME}},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "serviceAccountName": NAME,
                        "terminationGracePeriodSeconds": 10,
                        "containers": [
                            {
                                "name": "controller",
                                "image": image,
                                "args": args,
                                "env": env,
                                "ports": ports,
                                **({"volumeMounts": mounts} if mounts else {}),
                                "livenessProbe": probe,
                                "readinessProbe": {**probe, "httpGet": {"path": "/readyz", "port": "http"}},
                                "resources": {
                                    "requests": {"cpu": "250m", "memory": "64Mi"},
                                    "limits": {"cpu": "500m", "memory": "256Mi"},
                                },
                                "securityContext": {
                                    "readOnlyRootFilesystem": True,
                                    "runAsNonRoot": True,
                                    "runAsUser": 1001,
                                    "allowPrivilegeEscalation": False,
                                    "capabilities": {"drop": ["ALL"]},
                                },
                            }
                        ],
                        **({"volumes": volumes} if volumes else {}),
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": meta,
            "spec": {
                "selector": {"app.kubernetes.io/name": NAME},
                "ports": service_ports,
            },
        },
    ]
