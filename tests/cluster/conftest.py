"""The cluster under test: every test here runs on the fake API server and on a real control plane.

``fake``: the project's fake API server; a Job's command runs as a local process (the fake's stand-in
for a kubelet). ``real``: a namespace of its own on the session's real kube-apiserver and
kube-controller-manager, whose Jobs' pods the node stand-in runs as local processes with their own
ServiceAccount's token (so RBAC is the real one), or, when ``ITER8_TEST_KUBECONFIG`` is set, a real
cluster (``tests/e2e/run-kind.sh``) whose Jobs run the image named by ``ITER8_IMAGE``. Tests that need
the fake's hooks (fault injection, statuses written by hand) are marked ``fake_only``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kubectl_iter8.testing import FakeKube
from kubectl_iter8.testing.real import RealKube

TESTS = Path(__file__).resolve().parent.parent
DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers: [{{name: app, image: registry.k8s.io/pause:3.9}}]
"""


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "cluster" in metafunc.fixturenames:
        fake_only = metafunc.definition.get_closest_marker("fake_only") is not None
        metafunc.parametrize("cluster", ["fake"] if fake_only else ["fake", "real"], indirect=True)


@dataclass
class Cluster:
    namespace: str
    fake: FakeKube | None = None
    real: RealKube | None = None

    def require_fake(self) -> FakeKube:
        assert self.fake is not None, "mark the test fake_only"
        return self.fake

    def kubectl(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["kubectl", *args], input=stdin, capture_output=True, text=True, check=False, timeout=60
        )

    def deploy(self, name: str, *, ready: bool = True) -> None:
        """A Deployment that becomes Available, or (``ready=False``) not until :meth:`make_ready`."""
        if not ready:
            if self.fake is not None:
                self.fake.controllers.deployments = "never"
            elif self.real is not None:
                self.real.node.hold(self.namespace, f"{name}-")
            else:
                pytest.skip("readiness cannot be held back on an external cluster")
        applied = self.kubectl(
            "apply", "-f", "-", stdin=DEPLOYMENT.format(name=name, namespace=self.namespace)
        )
        assert applied.returncode == 0, applied.stderr

    def make_ready(self, name: str) -> None:
        """Let a Deployment made with ``ready=False`` become Available."""
        if self.fake is not None:
            self.fake.mark_ready("deployments", name)
        elif self.real is not None:
            self.real.node.release(self.namespace, f"{name}-")


@pytest.fixture
def cluster(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cluster]:
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    # Job processes (on the fake or the node stand-in) import the test plugins from the tests folder.
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")]))
    )
    if request.param == "fake":
        yield Cluster("default", fake=request.getfixturevalue("fake_kube"))
        return
    external = os.environ.get("ITER8_TEST_KUBECONFIG")
    if not external:
        real: RealKube = request.getfixturevalue("real_kube")
        yield Cluster(real.namespace, real=real)
        return
    monkeypatch.setenv("KUBECONFIG", external)
    namespace = f"iter8-test-{uuid.uuid4().hex[:8]}"
    subprocess.run(["kubectl", "create", "namespace", namespace], check=True, capture_output=True)
    try:
        yield Cluster(namespace)
    finally:
        subprocess.run(
            ["kubectl", "delete", "namespace", namespace, "--wait=false"], check=False, capture_output=True
        )
