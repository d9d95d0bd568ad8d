"""The bundled sample app: its routes, and ``kubectl iter8 sample-app`` as a user runs it."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubectl_iter8.sample_app import SampleApp, running


@pytest.fixture(scope="module")
def app() -> Iterator[SampleApp]:
    with running() as server:
        yield server


def get(
    app: SampleApp, path: str, method: str = "GET", body: bytes | None = None
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection(app.host, app.port, timeout=5)
    try:
        conn.request(method, path, body=body, headers={"X-Probe": "1"})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def test_get_echoes_the_request(app: SampleApp) -> None:
    status, headers, body = get(app, "/get?x=1")
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    doc = json.loads(body)
    assert doc["args"] == {"x": "1"}
    assert doc["headers"]["X-Probe"] == "1"
    assert doc["url"] == f"{app.url}/get?x=1"


def test_anything_echoes_method_and_body(app: SampleApp) -> None:
    status, _, body = get(app, "/anything/a", "POST", b"payload")
    assert status == 200
    doc = json.loads(body)
    assert (doc["method"], doc["data"]) == ("POST", "payload")


@pytest.mark.parametrize("code", [200, 204, 418, 503])
def test_status(app: SampleApp, code: int) -> None:
    assert get(app, f"/status/{code}")[0] == code


def test_bytes_and_bad_arguments(app: SampleApp) -> None:
    assert get(app, "/bytes/1234")[2] == b"x" * 1234
    assert get(app, "/bytes/-1")[0] == 400
    assert get(app, "/status/99")[0] == 400
    assert get(app, "/delay/999999")[0] == 400
    assert get(app, "/nothing")[0] == 404
    assert get(app, "/")[0] == 200


def test_delay_is_precise(app: SampleApp) -> None:
    started = time.perf_counter()
    assert get(app, "/delay/40")[0] == 200
    assert 0.040 <= time.perf_counter() - started < 0.055


def test_a_stall_holds_every_response_until_it_ends() -> None:
    with running(stall_every=0.3, stall_for=0.15) as app:
        # Start just after a stall window opens; the answer waits for the window to end.
        epoch = app._epoch
        wait = 0.3 - ((time.perf_counter() - epoch) % 0.3) + 0.01
        time.sleep(wait)
        started = time.perf_counter()
        assert get(app, "/get")[0] == 200
        assert 0.12 <= time.perf_counter() - started < 0.2


def test_pipelined_requests_are_answered_in_order(app: SampleApp) -> None:
    with socket.create_connection((app.host, app.port), timeout=5) as sock:
        sock.sendall(b"GET /delay/30 HTTP/1.1\r\nHost: x\r\n\r\nGET /status/201 HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while data.count(b"HTTP/1.1") < 2:
            data += sock.recv(65536)
    assert data.index(b"200 OK") < data.index(b"201 Created")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_the_command_serves_until_interrupted(stop: signal.Signals) -> None:
    port = _free_port()
    kubectl = shutil.which("kubectl")
    assert kubectl is not None
    env_path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    proc = subprocess.Popen(
        [kubectl, "iter8", "sample-app", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PATH": env_path},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.strip() == f"sample app listening on http://127.0.0.1:{port} (Ctrl-C to stop)"
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", "/get")
        assert conn.getresponse().status == 200
        conn.close()
        proc.send_signal(stop)
        _, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "Traceback" not in err


def test_a_taken_port_is_one_clear_line(cli) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        outcome = cli("sample-app", "--port", str(port))
    assert outcome.code == 1
    assert outcome.err == f"error: cannot listen on 127.0.0.1:{port}: address already in use\n"
