"""Kubernetes for tests: a fake API server, and a real control plane with a node stand-in.

Two tiers with the same test helpers (``create``, ``get``, ``patch``, ``wait_for``, ``mark_ready``, ...):

- :class:`FakeKube`, below: the project's own API server, in-process and fast, with fault injection.
- :class:`~kubectl_iter8.testing.controlplane.ControlPlane` (the real etcd, kube-apiserver and
  kube-controller-manager on loopback), :class:`~kubectl_iter8.testing.node.NodeStandIn` (plays the
  kubelet: binds pods, reports them ready, runs Job pods' commands as local processes with their
  ServiceAccount's token, serves their logs) and :class:`~kubectl_iter8.testing.real.RealKube` (one
  namespace of it with the helpers below). The pytest fixtures ``kube_control_plane`` and ``real_kube``
  (:mod:`kubectl_iter8.testing.pytest_plugin`) start them; ``docs/testing.md`` says where the
  binaries come from and what the real server showed the fake got wrong.

The fake speaks the Kubernetes REST protocol over plain HTTP on ``127.0.0.1`` and keeps everything in
memory; plugin authors can use it too (``pip install kubectl-iter8[testing]``)::

    from kubectl_iter8.testing import FakeKube

    with FakeKube() as kube:                            # a thread serving http://127.0.0.1:PORT
        kube.load_crds("istio-crds.yaml")               # real CRD manifests, all served versions
        kube.kubectl("apply", "-f", "vs.yaml", check=True)   # the real kubectl, KUBECONFIG set
        config.load_kube_config(config_file=str(kube.kubeconfig))  # the kubernetes client
        vs = kube.get("virtualservices", "reviews")     # helpers bypass HTTP
        kube.faults.fail_next("patch", "virtualservices", status=409)
        subprocess.run([...], env={**os.environ, **kube.env()})    # anything else

With pytest, ``pytest_plugins = ["kubectl_iter8.testing.pytest_plugin"]`` gives a ``fake_kube``
fixture: a fresh fake per test, with ``KUBECONFIG`` (and ``KUBECACHEDIR``) set to it; and
``real_kube``: a fresh namespace on the session's real control plane.

**What it serves.** ``/version`` (1.32, so gcloud's kubectl dispatcher always picks kubectl 1.32),
``/api`` and ``/apis`` discovery (with or without a trailing slash), an OpenAPI v3 stub that lets
``kubectl apply`` validate on the server, and these resources, plus every CRD stored at run time
(``kubectl apply -f crd.yaml`` or :meth:`FakeKube.load_crds`), in all served versions: namespaces,
pods (with ``/log``), services, configmaps, secrets, serviceaccounts, events, endpoints,
persistentvolumeclaims; apps/v1 deployments, replicasets, statefulsets, daemonsets (the first three
with ``/scale``); batch/v1 jobs and cronjobs; coordination.k8s.io/v1 leases; events.k8s.io/v1
events; rbac.authorization.k8s.io/v1 roles, rolebindings, clusterroles, clusterrolebindings;
apiextensions.k8s.io/v1 CRDs; authorization.k8s.io/v1 selfsubjectaccessreviews (``kubectl auth
can-i``, answered from the :meth:`FakeKube.forbid` rules).

**Semantics.** Create answers 201 and sets uid, resourceVersion (one global counter),
creationTimestamp and generation (custom resources and workload kinds only, bumped by spec changes
only); the namespace comes from the URL and must exist (404 otherwise; ``default``,
``kube-system``, ``kube-public`` and ``kube-node-lease`` always do); ``generateName``;
``dryRun=All``; Secret ``stringData``. PUT with a stale resourceVersion is a 409 ``Conflict``
worded like kube-apiserver's (custom resources need a resourceVersion on PUT, else 422), every
failure is a ``kind: Status`` body, and no-op writes keep their resourceVersion. PATCH accepts
merge, JSON, strategic merge and server-side apply (see :mod:`kubectl_iter8.testing.patching` for
how far each goes). ``/status`` is a subresource for built-ins that have one and CRDs that declare
it: it changes only status, and writes to the main resource leave status alone. Finalizers hold a
delete (``deletionTimestamp`` + ``deletionGracePeriodSeconds: 0``) until the last one is removed;
deleting an owner deletes its dependents recursively (``propagationPolicy=Orphan`` instead removes
their ownerReferences); deleting a namespace deletes its contents. Lists carry kind, apiVersion
and a resourceVersion and honour label and field selectors and ``limit``/``continue``. Watches
honour ``resourceVersion`` (events after it, replayed from a bounded history; too old -> a 410
``Expired`` ERROR event), ``timeoutSeconds``, selectors and ``sendInitialEvents`` with a bookmark,
and turn an object entering or leaving a selector into ADDED or DELETED. kubectl's protobuf bodies
are decoded for ``kubectl create namespace|configmap|secret generic|serviceaccount|role|
rolebinding|clusterrole|clusterrolebinding`` and ``kubectl auth can-i``.

**Stand-in controllers** (:class:`~kubectl_iter8.testing.controllers.Controllers`): Deployments
become Available and InferenceServices Ready immediately by default, after a delay, or never
(``kube.controllers.deployments = 2.0`` / ``"never"``), or by hand (:meth:`FakeKube.mark_ready`);
a created Job runs its first container's command as a local process with a kubeconfig for the
fake, gets a Pod whose log is served at ``pods/{name}/log``, and ends Complete or Failed.

**Test hooks.** Helpers that bypass HTTP but behave like API calls (``create``, ``apply``,
``get``, ``list``, ``update``, ``patch``, ``delete``, ``wait_for``, ``load_crds``);
:meth:`FakeKube.kubectl` runs the real kubectl against the fake; ``kube.faults``
(``fail_next(verb, resource, status=409|429|500, times=n)``, ``latency``,
``drop_watches(abort=False)``); :meth:`FakeKube.forbid` (403); ``kube.audit`` (every persisted
write: verb, resource, namespace, name, resourceVersion, time, subresource, source);
``kube.requests`` (every HTTP request); :meth:`FakeKube.wait_for_watches`;
:meth:`FakeKube.compact` (forces 410 for older resourceVersions); :meth:`FakeKube.reset`.

**What it does not do.** It does not authenticate (any token, or none, is accepted) and has no RBAC
beyond :meth:`FakeKube.forbid`; no admission, no schema validation or pruning of custom resources
(``fieldValidation`` is accepted and ignored; their CRD's defaults *are* applied, as the real server
does), no OpenAPI schemas (``kubectl explain`` fails), no version conversion beyond rewriting
``apiVersion``; protobuf request bodies only for the kinds listed above (``kubectl create
deployment|job|...`` get 415: use ``kubectl apply -f``); server-side printing (``kubectl get``
columns) only for the kinds :mod:`kubectl_iter8.testing.tables` knows, others show NAME and AGE; no
``managedFields`` and no apply conflicts; no foreground deletion (it behaves as background) and no
graceful pod termination; no ReplicaSets or Pods for Deployments, no scheduling, images, volumes,
exec, port-forward, attach or ``/proxy``; no CronJob schedules; no ``/scale`` for custom resources;
no TLS; no aggregated discovery (kubectl falls back to the per-group documents); no periodic watch
bookmarks. Garbage collection, namespace cleanup and finalizer completion happen synchronously
within the request that triggers them, and :meth:`FakeKube.reset` sends no watch events.
"""

from .apierrors import ApiError
from .controllers import Controllers
from .discovery import ResourceInfo
from .fake import FakeKube
from .faults import Faults
from .server import KUBE_VERSION, RequestRecord
from .store import AuditRecord, Event

__all__ = [
    "KUBE_VERSION",
    "ApiError",
    "AuditRecord",
    "Controllers",
    "Event",
    "FakeKube",
    "Faults",
    "RequestRecord",
    "ResourceInfo",
]
