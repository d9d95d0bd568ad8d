"""``RealKube``: one test's namespace on the real control plane, with the test helpers ``FakeKube`` has.

A scenario written against :class:`~kubectl_iter8.testing.FakeKube` runs unchanged on the real
kube-apiserver through this class: the same ``create``/``apply``/``get``/``exists``/``list``/
``update``/``patch``/``delete``/``wait_for``/``load_crds``/``kubectl`` calls, with the test's
namespace as the default one and the same :class:`~kubectl_iter8.testing.ApiError` for failures.
The helpers go over HTTP as the admin (the real server has no back door), so they are slower than the
fake's and their writes are ordinary API writes.

Readiness is the node stand-in's and the real controllers': :meth:`RealKube.mark_unready` holds back
the readiness of a Deployment's pods (before or after it exists) and :meth:`RealKube.mark_ready`
releases it, after which the real ReplicaSet and Deployment controllers report the Deployment
Available. Kinds whose controller is not part of Kubernetes (KServe's InferenceService) get the status
their controller would write, written by hand through ``/status``.
"""

from __future__ import annotations

import builtins
import json
import subprocess
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..errors import KubeError
from ..kube import GVR, PATCH_TYPES, Kube, KubeOptions
from .apierrors import ApiError
from .common import ClusterHelpers
from .controllers import inferenceservice_status
from .controlplane import ControlPlane
from .node import NodeStandIn

Obj = dict[str, Any]


def _api_error(exc: KubeError) -> ApiError:
    return ApiError(getattr(exc, "status", None) or 500, type(exc).__name__, str(exc))


class RealKube(ClusterHelpers):
    """One namespace of a real control plane (see the module docstring)."""

    context = "real"
    poll_interval = 0.05

    def __init__(
        self, control_plane: ControlPlane, node: NodeStandIn, namespace: str, kubeconfig: Path
    ) -> None:
        self.control_plane = control_plane
        self.node = node
        self.namespace = namespace
        #: An admin kubeconfig whose context namespace is :attr:`namespace`.
        self.kubeconfig = kubeconfig
        self.api = Kube(KubeOptions(kubeconfig=str(kubeconfig)))
        self._resources: dict[str, GVR] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        self.api.close()

    def env(self) -> dict[str, str]:
        return {**self.control_plane.env(), "KUBECONFIG": str(self.kubeconfig)}

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = False, timeout: float = 60.0
    ) -> subprocess.CompletedProcess[str]:
        """Run the real ``kubectl ARGS`` as the admin, in this namespace by default."""
        return self.control_plane.kubectl(
            "--kubeconfig", str(self.kubeconfig), *args, input=input, check=check, timeout=timeout
        )

    # --- resources -------------------------------------------------------------------------------

    def resource(self, name: str) -> GVR:
        """Resolve ``deployments``, ``deploy``, ``Deployment``, ``vs``, ``plural.group`` by discovery."""
        key = name.lower()
        with self._lock:
            if key not in self._resources:
                self._discover()
            found = self._resources.get(key)
        if found is None:
            raise ApiError(404, "NotFound", f'the server doesn\'t have a resource type "{name}"')
        return found

    def _discover(self) -> None:
        groups = [("", "v1")]
        for group in self.api.request("GET", "/apis").get("groups") or []:
            groups.append((group["name"], group["preferredVersion"]["version"]))
        for group, version in groups:
            path = f"/apis/{group}/{version}" if group else "/api/v1"
            for res in self.api.request("GET", path).get("resources") or []:
                if "/" in res["name"]:
                    continue
                gvr = GVR(
                    group, version, res["name"], bool(res.get("namespaced")), res.get("singularName", "")
                )
                names = [
                    res["name"],
                    res.get("singularName", ""),
                    res.get("kind", ""),
                    *(res.get("shortNames") or []),
                ]
                if group:
                    names += [f"{res['name']}.{group}", f"{res.get('kind', '')}.{group}"]
                for alias in filter(None, names):
                    self._resources.setdefault(alias.lower(), gvr)

    def _for_obj(self, obj: Obj) -> GVR:
        group = str(obj.get("apiVersion", "")).rpartition("/")[0]
        kind = str(obj.get("kind", ""))
        return self.resource(f"{kind}.{group}" if group else kind)

    def _ns(self, gvr: GVR, namespace: str | None, obj: Obj | None = None) -> str | None:
        if not gvr.namespaced:
            return None
        return namespace or ((obj or {}).get("metadata") or {}).get("namespace") or self.namespace

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            return self.api.request(method, path, **kwargs)
        except KubeError as exc:
            raise _api_error(exc) from None

    # --- the helpers FakeKube has ----------------------------------------------------------------

    def create(self, obj: Obj, namespace: str | None = None) -> Obj:
        gvr = self._for_obj(obj)
        result: Obj = self._call("POST", gvr.path(self._ns(gvr, namespace, obj)), body=obj)
        return result

    def apply(self, obj: Obj, namespace: str | None = None, *, field_manager: str = "test") -> Obj:
        """Server-side apply ``obj`` (forcing conflicts, as the test owns the cluster)."""
        gvr = self._for_obj(obj)
        result: Obj = self._call(
            "PATCH",
            gvr.path(self._ns(gvr, namespace, obj), obj["metadata"]["name"]),
            query={"fieldManager": field_manager, "force": "true"},
            body=json.dumps(obj),
            content_type=PATCH_TYPES["apply"],
        )
        return result

    def get(self, resource: str, name: str, namespace: str | None = None) -> Obj:
        gvr = self.resource(resource)
        result: Obj = self._call("GET", gvr.path(self._ns(gvr, namespace), name))
        return result

    def list(
        self,
        resource: str,
        namespace: str | None = None,
        *,
        labels: str | None = None,
        fields: str | None = None,
    ) -> builtins.list[Obj]:
        """Objects of ``resource`` (all namespaces unless ``namespace``), filtered by selector strings."""
        gvr = self.resource(resource)
        query = {k: v for k, v in (("labelSelector", labels), ("fieldSelector", fields)) if v}
        items: builtins.list[Obj] = (
            self._call("GET", gvr.path(namespace if gvr.namespaced else None), query=query).get("items") or []
        )
        return items

    def update(self, obj: Obj, *, status: bool = False) -> Obj:
        gvr = self._for_obj(obj)
        path = gvr.path(self._ns(gvr, None, obj), obj["metadata"]["name"], "status" if status else None)
        result: Obj = self._call("PUT", path, body=obj)
        return result

    def patch(
        self,
        resource: str,
        name: str,
        patch: Any,
        namespace: str | None = None,
        *,
        type: str = "merge",
        status: bool = False,
    ) -> Obj:
        gvr = self.resource(resource)
        path = gvr.path(self._ns(gvr, namespace), name, "status" if status else None)
        query = {"fieldManager": "test", "force": "true"} if type == "apply" else None
        body = json.dumps(patch) if type == "apply" else patch
        result: Obj = self._call("PATCH", path, query=query, body=body, content_type=PATCH_TYPES[type])
        return result

    def delete(
        self, resource: str, name: str, namespace: str | None = None, *, propagation: str | None = None
    ) -> Obj:
        """DELETE; returns the server's answer (the object, with deletionTimestamp if finalizers keep it)."""
        gvr = self.resource(resource)
        body = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": propagation or "Background"}
        result: Obj = self._call("DELETE", gvr.path(self._ns(gvr, namespace), name), body=body)
        return result

    def load_crds(self, *paths: str | Path | Iterable[str | Path]) -> builtins.list[str]:
        """Create (or update) the CRDs in YAML files or directories, once per control plane; returns names."""
        names = self.control_plane.load_crds(*paths)
        with self._lock:
            self._resources.clear()  # the next lookup sees the new kinds
        return names

    # --- readiness -------------------------------------------------------------------------------

    def mark_ready(self, resource: str, name: str, namespace: str | None = None) -> None:
        """Let ``name`` become ready: its pods (a Deployment), or its status (a kind without a controller)."""
        self._set_ready(resource, name, namespace, ready=True)

    def mark_unready(self, resource: str, name: str, namespace: str | None = None) -> None:
        """Hold back ``name``'s readiness (a Deployment may not exist yet: its pods will start unready)."""
        self._set_ready(resource, name, namespace, ready=False)

    def _set_ready(self, resource: str, name: str, namespace: str | None, *, ready: bool) -> None:
        gvr = self.resource(resource)
        ns = self._ns(gvr, namespace) or ""
        if gvr.resource == "deployments":
            (self.node.release if ready else self.node.hold)(ns, f"{name}-")
        elif gvr.resource == "inferenceservices":
            obj = self.get(resource, name, ns)
            self.patch(resource, name, {"status": inferenceservice_status(obj, ready)}, ns, status=True)
        else:
            raise ValueError(f"no readiness status for {resource}")

    def logs(self, pod: str, namespace: str | None = None) -> str:
        """What the process run for a Job's pod has printed so far."""
        return self.node.logs(namespace or self.namespace, pod)
