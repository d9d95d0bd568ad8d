"""The cluster under test: the project's fake API server, or a real cluster when ITER8_TEST_KUBECONFIG is set.

On the fake, the Jobs that ``launch`` creates run as local processes (the fake's stand-in for a
kubelet), so ``kubectl-iter8`` must be on PATH for them. On a real cluster (``tests/e2e/run-kind.sh``),
the Job runs the image named by ``ITER8_IMAGE``; tests that need the fake's hooks are skipped.
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
      containers: [{{name: app, image: {image}}}]
"""


@dataclass
class Cluster:
    namespace: str
    fake: FakeKube | None

    def require_fake(self) -> FakeKube:
        if self.fake is None:
            pytest.skip("needs the fake API server's test hooks")
        return self.fake

    def kubectl(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["kubectl", *args], input=stdin, capture_output=True, text=True, check=False, timeout=60
        )

    def deploy(self, name: str, *, ready: bool = True) -> None:
        """A Deployment that becomes Available (or never does: an image that cannot be pulled)."""
        image = "registry.k8s.io/pause:3.9" if ready else "127.0.0.1:1/no/such-image:0"
        applied = self.kubectl(
            "apply", "-f", "-", stdin=DEPLOYMENT.format(name=name, namespace=self.namespace, image=image)
        )
        assert applied.returncode == 0, applied.stderr


@pytest.fixture
def cluster(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cluster]:
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    real = os.environ.get("ITER8_TEST_KUBECONFIG")
    if not real:
        fake: FakeKube = request.getfixturevalue("fake_kube")
        # The Job processes import the test plugins from the tests folder, like the CLI under test.
        monkeypatch.setenv(
            "PYTHONPATH", os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")]))
        )
        yield Cluster("default", fake)
        return
    monkeypatch.setenv("KUBECONFIG", real)
    namespace = f"iter8-test-{uuid.uuid4().hex[:8]}"
    subprocess.run(["kubectl", "create", "namespace", namespace], check=True, capture_output=True)
    try:
        yield Cluster(namespace, None)
    finally:
        subprocess.run(
            ["kubectl", "delete", "namespace", namespace, "--wait=false"], check=False, capture_output=True
        )
