"""The experiment Job reads the Secrets its tasks name, and nothing else (RBAC is real on the real tier)."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import Cluster

EXPERIMENT = """
spec:
- task: notify
  with:
    urlFrom: {secret: {name: hook, key: url}}
    auth: {bearerToken: {secret: {name: hook, key: token}}}
    payloadTemplate: '{"status": {{ summary.status | tojson }}}'
    retries: 0
"""


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[str, dict[str, object]]]]]:
    """A webhook receiver on 127.0.0.1: its URL and the (Authorization, body) of every POST."""
    received: list[tuple[str, dict[str, object]]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.headers.get("Authorization", ""), json.loads(body)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    finally:
        server.shutdown()
        server.server_close()


def test_the_job_reads_the_secrets_its_tasks_name_and_no_other(
    cluster: Cluster, kubectl, tmp_path: Path, receiver: tuple[str, list[tuple[str, dict[str, object]]]]
) -> None:
    url, received = receiver
    for name, literals in (("hook", [f"url={url}", "token=t0ken"]), ("other", ["token=s3cret"])):
        made = cluster.kubectl(
            "create", "secret", "generic", name, *(f"--from-literal={x}" for x in literals),
            "-n", cluster.namespace, "--dry-run=client", "-o", "yaml",
        )  # fmt: skip
        assert cluster.kubectl("apply", "-f", "-", stdin=made.stdout).returncode == 0
    (tmp_path / "exp.yaml").write_text(EXPERIMENT)
    launched = kubectl("launch", "-f", "exp.yaml", "-g", "hooked", "-n", cluster.namespace)
    assert launched.code == 0, launched.err
    waited = kubectl(
        "assert", "-g", "hooked", "-n", cluster.namespace, "-c", "completed,nofailure", "--timeout", "90s"
    )
    assert waited.code == 0, kubectl("log", "-g", "hooked", "-n", cluster.namespace).out
    assert received == [("Bearer t0ken", {"status": "running"})]
    logs = kubectl("log", "-g", "hooked", "-n", cluster.namespace).out
    assert "t0ken" not in logs
    assert url not in logs
    if cluster.real is not None:
        account = f"system:serviceaccount:{cluster.namespace}:hooked-iter8"
        for secret, allowed in (("hook", "yes"), ("other", "no")):
            answer = cluster.kubectl(
                "auth", "can-i", "get", f"secret/{secret}", "-n", cluster.namespace, f"--as={account}"
            )
            assert answer.stdout.strip() == allowed, (secret, answer.stdout, answer.stderr)
