"""Helpers of the controller tests: resource types, fast settings, object builders, the harness.

The controller runs in the test process (its threads against the fake API server or a real
kube-apiserver, over real HTTP and real watch streams) with short timings. A separate module rather than conftest.py, so that
``from controller_helpers import ...`` can never pick up another directory's conftest.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import yaml
from iter8_controller_test_plugin import RouteListRouter
from kubectl_iter8.controller.config import Settings
from kubectl_iter8.controller.manager import Controller
from routing_invariant import History, routed_versions, violations

from kubectl_iter8.kube import KubeOptions
from kubectl_iter8.registry import ResourceType, RouterRegistry, TaskRegistry
from kubectl_iter8.testing import FakeKube
from kubectl_iter8.testing.controlplane import free_port
from kubectl_iter8.testing.node import RUN_ANNOTATION
from kubectl_iter8.testing.real import RealKube

#: Either tier's cluster: both have the same test helpers.
Kube = FakeKube | RealKube

TYPES = {
    "deploy": ResourceType("deploy", "apps", "v1", "deployments", "Deployment", ("Available",)),
    "svc": ResourceType("svc", "", "v1", "services", "Service"),
    "cm": ResourceType("cm", "", "v1", "configmaps", "ConfigMap"),
    "isvc": ResourceType(
        "isvc", "serving.kserve.io", "v1beta1", "inferenceservices", "InferenceService", ("Ready",)
    ),
}

RBAC_KINDS = {"ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"}
FAST = Settings(
    namespaces=("default",),
    resync_period=1.0,
    workers=2,
    http_port=0,
    lease_namespace="default",
    lease_duration=1.5,
    renew_deadline=1.0,
    retry_period=0.2,
    backoff_base=0.05,
    backoff_max=0.5,
    watch_timeout=5,
    watch_backoff_base=0.05,
    watch_backoff_max=0.5,
    forbidden_grace=1.0,
    request_retry_delays=(0.05,),
)


def routers() -> RouterRegistry:
    registry = RouterRegistry()
    registry.current_plugin = "tests"
    registry.register(RouteListRouter())
    return registry


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "the condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def deployment(name: str, **annotations: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "labels": {"iter8.tools/watch": "true", "app": name},
            **({"annotations": annotations} if annotations else {}),
        },
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "example/app"}]},
            },
        },
    }


def is_available(obj: dict[str, Any]) -> bool:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Available" and c.get("status") == "True" for c in conditions)


def create_version(kube: Kube, name: str, *, ready: bool = True, **annotations: str) -> None:
    """A Service and a Deployment named ``name``; waits until the Deployment is Available if ``ready``."""
    kube.create(service(name))
    if isinstance(kube, FakeKube):
        kube.controllers.deployments = 0.0 if ready else "never"
    elif not ready:
        kube.mark_unready("deployments", name)
    kube.create(deployment(name, **annotations))
    if ready:
        kube.wait_for("deployments", name, is_available, timeout=30)


def sample_app_deployment(name: str, port: int, *flags: str) -> dict[str, Any]:
    """:func:`deployment` whose pod runs ``kubectl-iter8 sample-app --port PORT FLAGS``: the node stand-in
    runs it as a local process (the annotation asks it to) listening on 127.0.0.1:PORT, which
    ``hostPort`` declares, and reports it Ready once its readiness probe connects. A TCP probe, so
    that probes are not among the requests the app counts (its ``--error-rate`` spreads over them)."""
    obj = deployment(name)
    template = obj["spec"]["template"]
    template["metadata"]["annotations"] = {RUN_ANNOTATION: "true"}
    template["spec"]["containers"] = [
        {
            "name": "app",
            "image": "example/app",
            "command": ["kubectl-iter8", "sample-app", "--port", str(port), *flags],
            "ports": [{"name": "http", "containerPort": port, "hostPort": port}],
            "readinessProbe": {"tcpSocket": {"port": "http"}, "periodSeconds": 1},
        }
    ]
    template["spec"]["terminationGracePeriodSeconds"] = 2
    return obj


def create_app_version(kube: RealKube, name: str, *flags: str) -> str:
    """A Service and a Deployment named ``name`` whose pod serves the sample app (see
    :func:`sample_app_deployment`, on a free port); waits until the Deployment is Available and
    returns the app's URL, ``http://127.0.0.1:PORT`` (the pod's own IP is never routed)."""
    port = free_port()
    kube.create(service(name))
    kube.create(sample_app_deployment(name, port, *flags))
    kube.wait_for("deployments", name, is_available, timeout=30)
    return f"http://127.0.0.1:{port}"


def service(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "labels": {"iter8.tools/watch": "true"}},
        "spec": {"selector": {"app": name}, "ports": [{"port": 80}]},
    }


def routemap(
    name: str,
    versions: list[dict[str, Any]],
    *,
    strategy: str = "blue-green",
    router: str = "test",
    **options: Any,
) -> dict[str, Any]:
    spec = {"versions": versions, "routing": {"router": router, "strategy": strategy, **options}}
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": {"iter8.tools/kind": "routemap"}},
        "data": {"strSpec": yaml.safe_dump(spec)},
    }


def app_versions(*names: str, weights: list[int | None] | None = None) -> list[dict[str, Any]]:
    out = []
    for index, name in enumerate(names):
        version: dict[str, Any] = {
            "resources": [{"gvrShort": "svc", "name": name}, {"gvrShort": "deploy", "name": name}]
        }
        if weights is not None and weights[index] is not None:
            version["weight"] = weights[index]
        out.append(version)
    return out


def routes(kube: Kube, name: str = "app") -> dict[str, int | str] | None:
    """Version name -> weight (or "match"/"mirror:N"/"default") of the routing ConfigMap, or None."""
    routing = kube.find("configmaps", f"{name}-routing")
    if routing is None:
        return None
    data = routing["data"]
    out: dict[str, int | str] = {}
    for r in json.loads(data["routes"]):
        if "weight" in r:
            out[r["name"]] = r["weight"]
        elif "match" in r:
            out[r["name"]] = "match"
        elif "mirror" in r:
            out[r["name"]] = f"mirror:{r['mirror']}"
        else:
            out[r["name"]] = "default"
    return out


class Harness:
    """Starts controllers against one cluster and stops them; checks the invariant at the end."""

    def __init__(self, kube: Kube) -> None:
        self.kube = kube
        # On a real server the history starts with the first controller, when the test's CRDs are
        # served (a list then gives the state before); the fake's must see every change from the start.
        self._recording = isinstance(kube, FakeKube)
        self.history = History.attach(kube) if self._recording else History()
        self.controllers: list[Controller] = []
        #: How the final invariant check reads the routing objects (the test router's by default).
        self.destinations: Any = routed_versions
        #: Per controller started here: every write it made, (start, end, what) in wall-clock time.
        self.writes: dict[int, list[tuple[float, float, str]]] = {}
        self._identity: KubeOptions | None = None
        #: Whether the controller's RBAC (on a real server) grants what rollouts take (``--rollouts``).
        self.rollouts = False

    def start(
        self,
        *,
        router_registry: RouterRegistry | None = None,
        tasks: TaskRegistry | None = None,
        **changes: Any,
    ) -> Controller:
        if not self._recording:
            self.history, self._recording = History.attach(self.kube), True
        settings = replace(FAST, namespaces=(self.kube.namespace,), lease_namespace=self.kube.namespace)
        settings = replace(settings, **changes)
        ctl = Controller(
            settings,
            routers=router_registry or routers(),
            resource_types=TYPES,
            kube_options=self.controller_identity(),
            tasks=tasks,
        )
        log: list[tuple[float, float, str]] = self.writes.setdefault(id(ctl), [])
        ctl.writer.observers.append(lambda start, end, what: log.append((start, end, what)))
        ctl.start()
        self.controllers.append(ctl)
        assert ctl.wait_synced(10)
        return ctl

    def controller_identity(self) -> KubeOptions | None:
        """On a real server, the controller acts as the ServiceAccount of its own ``controller
        manifests`` (a TokenRequest token), so its RBAC is what users install; the fake has no RBAC."""
        kube = self.kube
        if isinstance(kube, FakeKube):
            return None
        if self._identity is None:
            manifests = subprocess.run(
                ["kubectl-iter8", "controller", "manifests", "-n", kube.namespace, "-w", kube.namespace,
                 "--abn-port", "0", *(["--rollouts"] if self.rollouts else [])],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            rbac = [d for d in yaml.safe_load_all(manifests.stdout) if d and d["kind"] in RBAC_KINDS]
            assert rbac, manifests.stdout
            kube.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(rbac), check=True)
            account = next(d["metadata"]["name"] for d in rbac if d["kind"] == "ServiceAccount")
            path = kube.kubeconfig.with_name("controller-kubeconfig")
            token = kube.control_plane.token(kube.namespace, account)
            kube.control_plane.kubeconfig_for(token, path, namespace=kube.namespace)
            self._identity = KubeOptions(kubeconfig=str(path))
        return self._identity

    def stop(self, ctl: Controller, *, release: bool = True) -> None:
        if ctl in self.controllers:
            self.controllers.remove(ctl)
            ctl.stop(release=release)

    def check_invariant(self, *, at_least: int = 1, destinations: Any = routed_versions) -> int:
        self.history.sync()
        checked, problems = violations(self.history.audit(self.kube), list(self.history.events), destinations)
        assert not problems, "\n".join(problems)
        assert checked >= at_least, f"only {checked} routing writes were checked"
        return checked

    def close(self) -> None:
        for ctl in list(self.controllers):
            self.stop(ctl)
