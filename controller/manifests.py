"""``kubectl iter8 controller manifests``: what it takes to run the controller in a cluster.

The Namespace it runs in (first, so ``kubectl apply -f -`` works on a fresh cluster; left out with
``--no-create-namespace``), a ServiceAccount, least-privilege RBAC, a Deployment running
``kubectl-iter8 controller serve`` from the project's image (see the Dockerfile), and a Service for
the HTTP port and the A/B/n gRPC port.

The controller watches the namespaces it is given (``--watch-namespace``, repeatable; by default
``default``, where apps go when no namespace is named), each through a Role and RoleBinding there;
its own namespace gets a Role for the leader-election Lease. With ``--cluster-scoped`` it watches
every namespace through one ClusterRole. The rules are derived from the configured resource types,
so adding a type to the configuration adds exactly the access it needs:

* every watched type: get, list, watch (the informers) and patch (the finalizer);
* ConfigMaps: get, list, watch (routemaps), create, patch, delete (the status ConfigMaps, and one
  written by a reconcile that raced with its routemap's deletion);
* Events: create, patch; Leases: get, create, update (leader election, in its own namespace);
* with ``--rollouts`` (progressive delivery, ``docs/progressive.md``): what launching an analysis
  experiment takes (Secrets, ServiceAccounts, Roles and RoleBindings: get, create, update, patch;
  Jobs: get, list, watch, create, delete; Pods: get, list), and ConfigMaps update (the promotion
  rewrites the routemap). Off by default: a controller that only routes never holds Secrets;
* the kinds the routers declare they write (Istio VirtualServices, Gateway API HTTPRoutes) and the
  configuration's ``templateKinds`` get get, create, patch, delete. Nothing else is writable: the
  controller's rights are what a routemap's author could borrow, and the controller itself refuses
  to touch an object it did not create. A kind's resource name is guessed as Kubernetes guesses it
  (lower case, plural: ``DestinationRule`` -> ``destinationrules``).

A NetworkPolicy (left out with ``network_policy=False``) admits traffic to the controller's pod on
its two ports only: the HTTP port from anywhere (probes, Prometheus, dashboards; the A/B/n reads
there take the shared token when one is set), the A/B/n gRPC port only from the watched namespaces
(any namespace with ``--all-namespaces``), where the apps that call it run.

The pod runs unprivileged under the "restricted" Pod Security Standard: not root, the runtime's
default seccomp profile, no capabilities, a read-only root filesystem; ``HOME`` and ``TMPDIR`` are
an ``emptyDir`` on ``/tmp``. A/B/n metrics go to SQLite on another ``emptyDir`` by default (it
survives container restarts, not the Pod's deletion), or to the store whose URL is the key ``url``
of ``abn_store_secret`` (a ``redis://`` URL with its password, passed as ``$ITER8_ABN_STORE``, never
in the arguments).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from kubectl_iter8.registry import ResourceType, RoutingKind
from kubectl_iter8.version import __version__

NAME = "iter8-controller"
IMAGE = f"ghcr.io/kubectl-iter8/kubectl-iter8:v{__version__}"
#: Where the controller watches apps unless told otherwise: where they go when no namespace is named.
DEFAULT_WATCH = ("default",)
#: The user the image runs as (see the Dockerfile).
UID = 1001
#: HOME and TMPDIR: the only writable folder besides the A/B/n store's.
SCRATCH_DIR = "/tmp"
#: Kinds the built-in routers render. InferenceServices are version resources (watched and
#: patched for the finalizer), never written as routing objects.
ROUTING_KINDS: tuple[RoutingKind, ...] = (
    ("networking.istio.io", "VirtualService"),
    ("gateway.networking.k8s.io", "HTTPRoute"),
)
#: The label every namespace carries (Kubernetes sets it), for the NetworkPolicy's namespaces.
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


def guess_resource(kind: str) -> str:
    """The resource (plural) of ``kind`` as Kubernetes guesses it without discovery."""
    lower = kind.lower()
    if lower.endswith("s"):
        return lower + "es"
    if lower.endswith("y") and lower[-2:-1] not in ("a", "e", "i", "o", "u"):
        return lower[:-1] + "ies"
    return lower + "s"


VERB_ORDER = ("get", "list", "watch", "create", "update", "patch", "delete")


def _rules(
    types: Iterable[ResourceType],
    route_resources: Sequence[tuple[str, str]],
    *,
    watch: bool,
    leases: bool,
    rollouts: bool = False,
) -> list[dict[str, Any]]:
    """The rules for watching a namespace's apps (``watch``), for leader election (``leases``), and
    for running rollouts' analyses and promotions there (``rollouts``)."""
    verbs: dict[tuple[str, str], set[str]] = {}

    def allow(group: str, resource: str, *wanted: str) -> None:
        verbs.setdefault((group, resource), set()).update(wanted)

    if watch:
        for rtype in types:
            allow(rtype.group, rtype.resource, "get", "list", "watch", "patch")
        allow("", "configmaps", "get", "list", "watch", "create", "patch", "delete")
        allow("", "events", "create", "patch")
        for group, resource in route_resources:
            allow(group, resource, "get", "create", "patch", "delete")
        if rollouts:
            # Launching an analysis as `launch -g` does, and RBAC lets nobody grant what they lack:
            # the experiment's Role may read and update its Secret, so the controller must too.
            allow("", "configmaps", "update")  # the promotion rewrites the routemap
            allow("", "secrets", "get", "create", "update", "patch")
            allow("", "serviceaccounts", "get", "create", "update", "patch")
            allow("", "pods", "get", "list")  # why an analysis Job failed
            allow("batch", "jobs", "get", "list", "watch", "create", "delete")
            for resource in ("roles", "rolebindings"):
                allow("rbac.authorization.k8s.io", resource, "get", "create", "update", "patch")
    if leases:
        allow("coordination.k8s.io", "leases", "get", "create", "update")
    # One rule per (group, verbs), so the Role reads like the list above.
    grouped: dict[tuple[str, tuple[str, ...]], list[str]] = {}
    for (group, resource), wanted in verbs.items():
        ordered = tuple(v for v in VERB_ORDER if v in wanted)
        grouped.setdefault((group, ordered), []).append(resource)
    return [
        {"apiGroups": [group], "resources": sorted(resources), "verbs": list(ordered)}
        for (group, ordered), resources in sorted(grouped.items())
    ]


def _rbac(
    types: list[ResourceType],
    route_resources: Sequence[tuple[str, str]],
    *,
    namespace: str,
    watch_namespaces: Sequence[str] | None,
    labels: dict[str, str],
    rollouts: bool,
) -> list[dict[str, Any]]:
    """A ClusterRole and its binding (``watch_namespaces`` None), or a Role and binding per namespace."""

    def rules(*, watch: bool, leases: bool) -> list[dict[str, Any]]:
        return _rules(types, route_resources, watch=watch, leases=leases, rollouts=rollouts)

    subjects = [{"kind": "ServiceAccount", "name": NAME, "namespace": namespace}]
    api = "rbac.authorization.k8s.io"
    if watch_namespaces is None:
        meta = {"name": NAME, "labels": labels}
        return [
            {"apiVersion": f"{api}/v1", "kind": "ClusterRole", "metadata": meta,
             "rules": rules(watch=True, leases=True)},
            {"apiVersion": f"{api}/v1", "kind": "ClusterRoleBinding", "metadata": meta,
             "roleRef": {"apiGroup": api, "kind": "ClusterRole", "name": NAME}, "subjects": subjects},
        ]  # fmt: skip
    objects: list[dict[str, Any]] = []
    others = [ns for ns in watch_namespaces if ns != namespace]
    for ns in [namespace, *others]:
        meta = {"name": NAME, "namespace": ns, "labels": labels}
        objects += [
            {"apiVersion": f"{api}/v1", "kind": "Role", "metadata": meta,
             "rules": rules(watch=ns in watch_namespaces, leases=ns == namespace)},
            {"apiVersion": f"{api}/v1", "kind": "RoleBinding", "metadata": meta,
             "roleRef": {"apiGroup": api, "kind": "Role", "name": NAME}, "subjects": subjects},
        ]  # fmt: skip
    return objects


def _network_policy(
    meta: dict[str, Any], watched: Sequence[str] | None, *, http_port: int, abn_port: int
) -> dict[str, Any]:
    """Ingress to the controller's pod: HTTP from anywhere, gRPC from the watched namespaces."""
    ingress: list[dict[str, Any]] = [{"ports": [{"protocol": "TCP", "port": http_port}]}]
    if abn_port:
        selector: dict[str, Any] = (
            {}
            if watched is None
            else {
                "matchExpressions": [{"key": NAMESPACE_NAME_LABEL, "operator": "In", "values": list(watched)}]
            }
        )
        ingress.append(
            {"ports": [{"protocol": "TCP", "port": abn_port}], "from": [{"namespaceSelector": selector}]}
        )
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": meta,
        "spec": {
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": NAME}},
            "policyTypes": ["Ingress"],
            "ingress": ingress,
        },
    }


def manifests(
    types: Iterable[ResourceType],
    *,
    namespace: str,
    watch_namespaces: Sequence[str] = DEFAULT_WATCH,
    cluster_scoped: bool = False,
    create_namespace: bool = True,
    network_policy: bool = True,
    image: str = IMAGE,
    http_port: int = 8080,
    abn_port: int = 50051,
    abn_store_secret: str | None = None,
    routing_kinds: Iterable[RoutingKind] = ROUTING_KINDS,
    rollouts: bool = False,
) -> list[dict[str, Any]]:
    """The objects to ``kubectl apply``, in order.

    :param watch_namespaces: where the apps are (ignored with ``cluster_scoped``: every namespace).
    :param routing_kinds: what the routers may write (the declared kinds and ``templateKinds``).
    :param rollouts: grant what running rollouts takes (analysis experiments, the promotion).
    """
    kinds = list(types)
    route_resources = sorted({(group, guess_resource(kind)) for group, kind in routing_kinds})
    labels = {"app.kubernetes.io/name": NAME, "app.kubernetes.io/managed-by": "iter8"}
    meta = {"name": NAME, "namespace": namespace, "labels": labels}
    watched = None if cluster_scoped else list(dict.fromkeys(watch_namespaces))
    scope = ["--all-namespaces"] if watched is None else [a for ns in watched for a in ("--namespace", ns)]
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
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "HOME", "value": SCRATCH_DIR},
        {"name": "TMPDIR", "value": SCRATCH_DIR},
    ]
    ports = [{"name": "http", "containerPort": http_port}]
    service_ports = [{"name": "http", "port": http_port, "targetPort": "http"}]
    volumes: list[dict[str, Any]] = [{"name": "scratch", "emptyDir": {}}]
    mounts: list[dict[str, Any]] = [{"name": "scratch", "mountPath": SCRATCH_DIR}]
    if rollouts:
        args += ["--rollouts", "--analysis-image", image]
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
    own = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
    head: list[dict[str, Any]] = [own] if create_namespace else []
    return [
        *head,
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta},
        *_rbac(
            kinds,
            route_resources,
            namespace=namespace,
            watch_namespaces=watched,
            labels=labels,
            rollouts=rollouts,
        ),
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
                        "securityContext": {
                            "runAsNonRoot": True,
                            "runAsUser": UID,
                            "seccompProfile": {"type": "RuntimeDefault"},
                        },
                        "containers": [
                            {
                                "name": "controller",
                                "image": image,
                                "args": args,
                                "env": env,
                                "ports": ports,
                                "volumeMounts": mounts,
                                "livenessProbe": probe,
                                "readinessProbe": {**probe, "httpGet": {"path": "/readyz", "port": "http"}},
                                "resources": {
                                    "requests": {"cpu": "250m", "memory": "64Mi"},
                                    "limits": {"cpu": "500m", "memory": "256Mi"},
                                },
                                "securityContext": {
                                    "readOnlyRootFilesystem": True,
                                    "allowPrivilegeEscalation": False,
                                    "capabilities": {"drop": ["ALL"]},
                                },
                            }
                        ],
                        "volumes": volumes,
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
        *([_network_policy(meta, watched, http_port=http_port, abn_port=abn_port)] if network_policy else []),
    ]
