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
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from kubectl_iter8 import sample_app
from kubectl_iter8.sample_app import _CLOSE_ENOUGH, SampleApp, _Request, running


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


def test_a_delay_waits_at_least_the_requested_time(app: SampleApp) -> None:
    started = time.perf_counter()
    assert get(app, "/delay/40")[0] == 200
    elapsed = time.perf_counter() - started
    # How late the answer comes depends on the machine's load (the benchmarks measure it); a tenfold
    # wait would be a unit slip, not load. Exact timing is checked on a fake clock below.
    assert 0.040 - _CLOSE_ENOUGH <= elapsed < 0.4


class _Loop:
    """Keeps the timers the app arms, for the test to fire by hand."""

    def __init__(self) -> None:
        self.timers: list[tuple[float, Callable[..., None], tuple[Any, ...]]] = []

    def call_later(self, delay: float, callback: Callable[..., None], *args: Any) -> None:
        self.timers.append((delay, callback, args))


class _Conn:
    peer = "127.0.0.1"

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def fill(self, slot: list[bytes | None], data: bytes, keep_alive: bool) -> None:
        self.sent.append(data)


@pytest.mark.parametrize(
    ("arrives", "path", "due"),
    [
        (0.20, "/get", 0.20),  # outside a stall window: at once
        (0.20, "/delay/40", 0.24),
        (0.31, "/get", 0.45),  # inside the window [0.30, 0.45): held until it ends
        (0.58, "/delay/40", 0.75),  # the delay ends inside the next window: held until it ends
    ],
)
def test_a_response_is_sent_when_due_never_before(monkeypatch, arrives: float, path: str, due: float) -> None:
    now = [1000.0]
    monkeypatch.setattr(sample_app, "time", SimpleNamespace(perf_counter=lambda: now[0]))
    app = SampleApp(stall_every=0.3, stall_for=0.15)
    loop = _Loop()
    app._loop = loop  # type: ignore[assignment]
    conn = _Conn()
    request = _Request()
    request.url = path.encode()
    now[0] = 1000.0 + arrives
    app.handle(conn, [None], request, "GET", True)  # type: ignore[arg-type]
    if due == arrives:
        assert (len(conn.sent), loop.timers) == (1, [])
        return
    assert conn.sent == []
    ((delay, callback, args),) = loop.timers
    assert delay == pytest.approx(due - arrives)
    # Loop timers may fire early (uvloop's tick in whole milliseconds): the app waits again for the rest.
    loop.timers.clear()
    now[0] = 1000.0 + due - 0.001
    callback(*args)
    assert conn.sent == []
    ((delay, callback, args),) = loop.timers
    assert delay == pytest.approx(0.001)
    loop.timers.clear()
    now[0] = 1000.0 + due
    callback(*args)
    assert (len(conn.sent), loop.timers) == (1, [])
    assert conn.sent[0].startswith(b"HTTP/1.1 200 OK\r\n")


def test_a_stall_holds_every_response_until_it_ends() -> None:
    every, stall = 0.3, 0.15
    with running(stall_every=every, stall_for=stall) as app:
        # The request must leave inside a stall window; when a busy machine makes the sleep
        # overshoot it, wait for the next window.
        for _ in range(20):
            sent = time.perf_counter()
            window, into = divmod(sent - app._epoch, every)
            if into < stall:
                break
            time.sleep(every - into + 0.01)
        else:
            pytest.fail("never managed to send inside a stall window")
        assert get(app, "/get")[0] == 200
        received = time.perf_counter()
    # Handled in the window or after it, the answer cannot leave before the window ends.
    assert received >= app._epoch + window * every + stall - _CLOSE_ENOUGH


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
