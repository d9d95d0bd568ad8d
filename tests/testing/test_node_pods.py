"""The node stand-in's long-running pods: commands run on request, readiness from their probes, and
processes stopped when their pod is deleted or the stand-in stops (on the real control plane).

A pod annotated ``testing.iter8.tools/run: "true"`` has its command run, as a Deployment's pod that
serves the sample app. Its process listens on 127.0.0.1 (``hostPort`` says so), which is where the
stand-in probes it.
"""

from __future__ import annotations

import http.server
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kubectl_iter8.testing.controlplane import free_port
from kubectl_iter8.testing.node import RUN_ANNOTATION, NodeStandIn, _probe_once, _probe_port
from kubectl_iter8.testing.pytest_plugin import ControlPlaneWithNode
from kubectl_iter8.testing.real import RealKube

Obj = dict[str, Any]

#: Serves 200 on /healthz once a file ``go`` exists in its folder, 503 while a file ``sick`` exists;
#: writes ``terminated`` on SIGTERM before it exits.
SERVER = """
import http.server, os, signal, sys, time
def stop(*_):
    open("terminated", "w").close()
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
while not os.path.exists("go"):
    time.sleep(0.02)
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(503 if os.path.exists("sick") else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""


def pod(name: str, command: list[str], port: int, probe: Obj | None, **spec: Any) -> Obj:
    container: Obj = {
        "name": "app",
        "image": "example/app",
        "command": command,
        "ports": [{"name": "http", "containerPort": port, "hostPort": port}],
    }
    if probe is not None:
        container["readinessProbe"] = probe
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "annotations": {RUN_ANNOTATION: "true"}},
        "spec": {"containers": [container], **spec},
    }


def condition(obj: Obj, kind: str) -> str | None:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == kind:
            return str(c.get("status"))
    return None


def is_ready(obj: Obj) -> bool:
    return condition(obj, "Ready") == "True"


def is_unready_while_running(obj: Obj) -> bool:
    return (obj.get("status") or {}).get("phase") == "Running" and condition(obj, "Ready") == "False"


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True


def wait(predicate: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def folder(real: RealKube, name: str, node: NodeStandIn | None = None) -> Path:
    """Where the stand-in runs the pod's process (its working directory)."""
    return (node or real.node).workdir / real.namespace / name


def test_a_run_pod_is_ready_only_while_its_http_probe_passes(real_kube: RealKube) -> None:
    port = free_port()
    probe = {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 10, "failureThreshold": 2}
    real_kube.create(pod("web", [sys.executable, "-c", SERVER, str(port)], port, probe))
    real_kube.wait_for("pods", "web", is_unready_while_running, timeout=15)
    time.sleep(0.5)  # several probe periods: nothing answers yet, so it stays unready
    assert is_unready_while_running(real_kube.get("pods", "web"))

    (folder(real_kube, "web") / "go").touch()
    real_kube.wait_for("pods", "web", is_ready, timeout=10)
    (folder(real_kube, "web") / "sick").touch()
    real_kube.wait_for("pods", "web", is_unready_while_running, timeout=10)
    (folder(real_kube, "web") / "sick").unlink()
    ready = real_kube.wait_for("pods", "web", is_ready, timeout=10)
    assert ready["status"]["containerStatuses"][0]["state"].keys() == {"running"}


def test_a_run_pod_with_a_tcp_probe_keeps_running_until_deleted_then_its_process_is_stopped(
    real_kube: RealKube,
) -> None:
    port = free_port()
    command = ["kubectl-iter8", "sample-app", "--port", str(port)]
    probe = {"tcpSocket": {"port": port}}
    real_kube.create(pod("app", command, port, probe, terminationGracePeriodSeconds=3))
    real_kube.wait_for("pods", "app", is_ready, timeout=20)
    assert listening(port)
    time.sleep(1.0)
    running = real_kube.get("pods", "app")
    assert running["status"]["phase"] == "Running", "a Deployment's pod does not finish"
    assert is_ready(running)

    real_kube.delete("pods", "app")
    wait(lambda: not real_kube.exists("pods", "app"), "the pod to be gone")
    assert not listening(port), "the process was stopped before the pod was removed"


def test_a_deleted_pods_process_gets_sigterm_before_sigkill(real_kube: RealKube) -> None:
    port = free_port()
    real_kube.create(pod("graceful", [sys.executable, "-c", SERVER, str(port)], port, None))
    folder(real_kube, "graceful").mkdir(parents=True, exist_ok=True)
    (folder(real_kube, "graceful") / "go").touch()
    real_kube.wait_for("pods", "graceful", is_ready, timeout=15)
    wait(lambda: listening(port), "the server to listen")
    real_kube.delete("pods", "graceful")
    wait(lambda: not real_kube.exists("pods", "graceful"), "the pod to be gone")
    assert (folder(real_kube, "graceful") / "terminated").exists(), "SIGTERM first, as a kubelet does"


@pytest.fixture
def second_node(
    kube_control_plane: ControlPlaneWithNode, real_kube: RealKube, tmp_path: Path
) -> Iterator[NodeStandIn]:
    """A stand-in of its own (its pods name it in ``nodeName``), for a test that stops it."""
    node = NodeStandIn(kube_control_plane.control_plane, name="iter8-node-test-stop", workdir=tmp_path)
    node.start()
    try:
        yield node
    finally:
        node.stop()
        # No kubelet is left to finish the deletion of its pods.
        real_kube.kubectl(
            "delete", "pods", "--field-selector", f"spec.nodeName={node.name}", "--grace-period=0", "--force"
        )
        real_kube.kubectl("delete", "node", node.name, "--wait=false")


def test_stopping_the_stand_in_stops_its_processes(real_kube: RealKube, second_node: NodeStandIn) -> None:
    port = free_port()
    command = ["kubectl-iter8", "sample-app", "--port", str(port)]
    real_kube.create(pod("app", command, port, {"tcpSocket": {"port": port}}, nodeName=second_node.name))
    real_kube.wait_for("pods", "app", is_ready, timeout=20)
    assert listening(port)
    started = time.monotonic()
    second_node.stop()
    assert not listening(port)
    assert time.monotonic() - started < second_node.grace_limit, "SIGTERM ended it: no wait for SIGKILL"


# --- the probe itself (no cluster) -----------------------------------------------------------------


def test_a_probe_port_is_a_number_or_the_name_of_a_declared_port() -> None:
    container = {"ports": [{"name": "http", "containerPort": 8080}]}
    assert _probe_port(9090, container) == 9090
    assert _probe_port("9090", container) == 9090
    assert _probe_port("http", container) == 8080
    assert _probe_port("grpc", container) is None


@pytest.mark.parametrize(("status", "passes"), [(200, True), (302, True), (404, False), (503, False)])
def test_an_http_probe_passes_on_200_to_399(status: int, passes: bool) -> None:
    class Answer(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status if self.path == "/healthz" else 500)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        probe = {"httpGet": {"path": "/healthz", "port": port}}
        assert _probe_once(probe, {}, 1.0) is passes
        assert _probe_once({"tcpSocket": {"port": port}}, {}, 1.0)
    finally:
        server.shutdown()
        server.server_close()
    assert not _probe_once({"tcpSocket": {"port": port}}, {}, 1.0), "nothing listens any more"
    assert not _probe_once({"httpGet": {"path": "/healthz", "port": port}}, {}, 1.0)
