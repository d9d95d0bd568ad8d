"""The controller's HTTP port against hostile or careless clients, over real sockets on 127.0.0.1.

A half-sent request once held its thread for as long as the client liked (200 of them held 202
threads for more than 15 s), and every client that went away mid-response logged two tracebacks.
"""

from __future__ import annotations

import logging
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubectl_iter8.controller.http import MAX_HEAD, HTTPServer, Metrics, Route
from test_serve import free_port, http_get

from kubectl_iter8.testing import FakeKube

HERE = Path(__file__).resolve().parent
BIG = "x" * (8 << 20)


def serve(**kwargs: object) -> HTTPServer:
    routes: dict[str, Route] = {
        "/big": lambda _q, _h: (200, BIG, "text/plain"),
        "/echo": lambda q, h: (
            200,
            f"{q.get('a')} {h.get('x-test')} {h.get('authorization')}\n",
            "text/plain",
        ),
    }
    server = HTTPServer(
        "127.0.0.1", 0, metrics=Metrics(), healthy=lambda: True, ready=lambda: True, routes=routes, **kwargs
    )  # type: ignore[arg-type]
    server.start()
    return server


@pytest.fixture
def server() -> Iterator[HTTPServer]:
    s = serve(head_timeout=1.0)
    yield s
    s.stop()


def half_sent(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # no blank line: the head never ends
    return sock


def closed_by_server(sock: socket.socket) -> bool:
    try:
        return sock.recv(1024) == b""
    except ConnectionResetError:
        return True


def test_half_sent_requests_are_dropped_in_time_while_healthz_answers(server: HTTPServer) -> None:
    before = threading.active_count()
    socks = [half_sent(server.port) for _ in range(50)]
    try:
        started = time.monotonic()
        assert http_get(server.port, "/healthz") == (200, "ok\n")
        assert time.monotonic() - started < 0.5
        assert threading.active_count() >= before + 50  # they are being served, each on a thread
        assert all(closed_by_server(s) for s in socks)  # recv waits for the server to close
        assert time.monotonic() - started < 2.5  # head_timeout is 1 s
    finally:
        for s in socks:
            s.close()
    deadline = time.monotonic() + 2
    while threading.active_count() > before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert threading.active_count() <= before


def test_a_client_sending_a_byte_at_a_time_cannot_renew_its_deadline(server: HTTPServer) -> None:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    started = time.monotonic()
    with sock:
        try:
            for byte in b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 100:
                sock.send(bytes([byte]))
                time.sleep(0.1)
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert closed_by_server(sock)
    assert time.monotonic() - started < 2.0


def test_connections_beyond_the_cap_are_answered_503_at_once() -> None:
    server = serve(head_timeout=5.0, max_connections=4)
    try:
        socks = [half_sent(server.port) for _ in range(4)]
        time.sleep(0.2)  # all four accepted
        started = time.monotonic()
        status, body = http_get(server.port, "/healthz")
        assert (status, body) == (503, "too many connections\n")
        assert time.monotonic() - started < 0.5
        for s in socks:
            s.close()
        deadline = time.monotonic() + 3
        while http_get(server.port, "/healthz")[0] != 200:
            assert time.monotonic() < deadline, "slots not given back"
            time.sleep(0.02)
    finally:
        server.stop()


def test_a_head_beyond_the_limit_is_refused(server: HTTPServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nX-Big: " + b"a" * MAX_HEAD + b"\r\n\r\n")
        answer = sock.recv(1024)
    assert answer.startswith(b"HTTP/1.0 431 "), answer
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"GET /" + b"a" * MAX_HEAD + b" HTTP/1.1\r\n\r\n")
        answer = sock.recv(1024)
    assert answer.startswith(b"HTTP/1.0 431 "), answer
    assert http_get(server.port, "/healthz") == (200, "ok\n")


def test_routes_get_the_query_and_the_headers(server: HTTPServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"GET /echo?a=1&a=2 HTTP/1.1\r\nX-Test: yes\r\nAuthorization: Bearer t\r\n\r\n")
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    assert answer.endswith(b"\r\n\r\n1 yes Bearer t\n"), answer


def abort(sock: socket.socket) -> None:
    """Close with a reset (SO_LINGER 0), as a client that crashed or gave up does."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def test_a_client_gone_mid_response_is_at_most_a_debug_line(
    server: HTTPServer, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    with caplog.at_level(logging.DEBUG, logger="kubectl_iter8.controller"):
        for _ in range(5):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.sendall(b"GET /big HTTP/1.1\r\n\r\n")
            assert sock.recv(1024).startswith(b"HTTP/1.0 200")
            abort(sock)  # 8 MiB do not fit the buffers: the server is still writing
        deadline = time.monotonic() + 5
        while len(caplog.records) < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert http_get(server.port, "/healthz") == (200, "ok\n")
    records = [r for r in caplog.records if r.name == "kubectl_iter8.controller"]
    assert len(records) == 5, [r.getMessage() for r in records]  # one per client
    assert all(r.levelno == logging.DEBUG and r.exc_info is None for r in records)
    assert all("went away" in r.getMessage() for r in records)
    assert "Traceback" not in capfd.readouterr().err


def test_serve_logs_no_traceback_for_clients_that_go_away(fake_kube: FakeKube, tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, **fake_kube.env(), "XDG_STATE_HOME": str(tmp_path / "state")}
    log = tmp_path / "serve.log"
    with log.open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "kubectl_iter8", "controller", "serve", "--namespace", "default",
             "--http-port", str(port), "--abn-port", "0"],
            env=env, stdout=subprocess.DEVNULL, stderr=stderr, cwd=tmp_path,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 30
            while http_get(port, "/healthz")[0] != 200:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
            for index in range(200):
                sock = socket.create_connection(("127.0.0.1", port), timeout=5)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
                path = "/metrics" if index % 2 else "/abnValues?application=default/none"
                sock.sendall(f"GET {path} HTTP/1.1\r\n\r\n".encode())
                abort(sock)
            for _ in range(20):  # and some that never finish their request
                sock = socket.create_connection(("127.0.0.1", port), timeout=5)
                sock.sendall(b"GET /metrics HTTP/1.1\r\n")
                abort(sock)
            assert http_get(port, "/healthz") == (200, "ok\n")
        finally:
            proc.terminate()
            assert proc.wait(15) == 0, log.read_text()
    text = log.read_text()
    assert "Traceback" not in text, text
    assert "Exception" not in text, text
    assert not (tmp_path / "iter8-abn.sqlite").exists()
    assert (tmp_path / "state" / "kubectl-iter8" / "abn.sqlite").exists()
