"""A kubeconfig that skips TLS verification on purpose: kubectl stays quiet about it, and so do we.

The fake API server speaks plain HTTP, so this test runs its own small HTTPS server (a throw-away
self-signed certificate made with ``openssl``) that answers one Secret, and reads it through the
real ``kubectl iter8``.
"""

from __future__ import annotations

import base64
import json
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from kubectl_iter8.testing.common import self_signed_certificate

EXPERIMENT = "spec: [{run: [echo, hi]}]\n"
SECRET_PATH = "/api/v1/namespaces/default/secrets/tls"


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == SECRET_PATH:
            status, body = (
                200,
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": {"name": "tls", "namespace": "default", "annotations": {}},
                    "data": {"experiment.yaml": base64.b64encode(EXPERIMENT.encode()).decode()},
                },
            )
        else:
            status, body = 404, {"kind": "Status", "status": "Failure", "reason": "NotFound", "code": 404}
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def https_api(tmp_path: Path) -> Iterator[str]:
    """The URL of an HTTPS server with a self-signed certificate for 127.0.0.1."""
    cert, key = self_signed_certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_insecure_skip_tls_verify_prints_no_warning(kubectl, https_api: str, tmp_path: Path) -> None:
    config = tmp_path / "insecure.yaml"
    config.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: tls\n"
        f"clusters: [{{name: tls, cluster: {{server: '{https_api}', insecure-skip-tls-verify: true}}}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: tls, context: {cluster: tls, user: u}}]\n"
    )
    found = kubectl("report", "-g", "tls", "--kubeconfig", str(config))
    assert found.code == 0, found.err
    assert found.err == ""
    missing = kubectl("report", "-g", "nope", "--kubeconfig", str(config))
    assert missing.code == 1
    assert missing.err == 'error: experiment group "nope" not found in namespace "default"\n'


def test_a_verified_server_is_still_checked(kubectl, https_api: str, tmp_path: Path) -> None:
    config = tmp_path / "strict.yaml"
    config.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: tls\n"
        f"clusters: [{{name: tls, cluster: {{server: '{https_api}'}}}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: tls, context: {cluster: tls, user: u}}]\n"
    )
    refused = kubectl("report", "-g", "tls", "--kubeconfig", str(config))
    assert refused.code == 1
    assert refused.err == (
        f"error: cannot reach the Kubernetes API server at {https_api}: TLS certificate not trusted\n"
    )
