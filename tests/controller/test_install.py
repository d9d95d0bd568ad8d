"""The controller as users install it, on the real control plane: ``controller manifests | kubectl apply``.

The node stand-in runs the controller's pod (the Deployment's own args, the image's entrypoint
``kubectl-iter8``) as a local process with its ServiceAccount's token, so the install's RBAC, election
Lease and namespaces are exactly what a cluster gets. Real tier only: the fake runs no Deployment's pods.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from controller_helpers import app_versions, create_version, routemap, wait_until
from test_istio import hosts
from test_serve import free_port, http_get

from kubectl_iter8.testing.real import RealKube


def runs_controller_or_job(pod: dict[str, Any]) -> bool:
    meta = pod["metadata"]
    if (meta.get("labels") or {}).get("app.kubernetes.io/name") == "iter8-controller":
        return True
    return any(ref.get("kind") == "Job" for ref in meta.get("ownerReferences") or [])


def test_the_installed_controller_rolls_out_a_candidate(
    real_kube: RealKube, monkeypatch: pytest.MonkeyPatch
) -> None:
    kube = real_kube
    system = f"{kube.namespace}-system"
    port = free_port()
    manifests = subprocess.run(
        ["kubectl-iter8", "controller", "manifests", "-n", system, "-w", kube.namespace,
         "--abn-port", "0", "--http-port", str(port)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    image = next(
        d["spec"]["template"]["spec"]["containers"][0]["image"]
        for d in yaml.safe_load_all(manifests.stdout)
        if d["kind"] == "Deployment"
    )
    monkeypatch.setattr(kube.node, "runs", runs_controller_or_job)
    monkeypatch.setitem(kube.node.entrypoints, image, ["kubectl-iter8"])
    monkeypatch.setitem(
        kube.node.env, "PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    )
    try:
        kube.kubectl("apply", "-f", "-", input=manifests.stdout, check=True)
        kube.wait_for("deployments", "iter8-controller", _available, system, timeout=30)
        wait_until(lambda: http_get(port, "/readyz")[0] == 200, timeout=30, what="the controller to be ready")
        lease = kube.wait_for(
            "leases", "iter8-controller", lambda o: bool(o["spec"].get("holderIdentity")), system
        )
        assert lease["spec"]["holderIdentity"].startswith("iter8-controller-")  # $POD_NAME, from the fieldRef

        create_version(kube, "v1")
        create_version(kube, "v2", ready=False)
        kube.create(routemap("app", app_versions("v1", "v2", weights=[90, 10]), router="istio", host="app"))
        wait_until(lambda: hosts(kube) == {"v1": 100}, timeout=30, what="the VirtualService with v1 only")
        kube.mark_ready("deployments", "v2")
        wait_until(lambda: hosts(kube) == {"v1": 90, "v2": 10}, timeout=30, what="v2 in the VirtualService")
        assert "iter8_controller_is_leader 1" in http_get(port, "/metrics")[1]
    finally:
        kube.kubectl("delete", "namespace", system, "--wait=false")


def _available(obj: dict[str, Any]) -> bool:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Available" and c.get("status") == "True" for c in conditions)
