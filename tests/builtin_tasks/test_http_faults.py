"""A misbehaving server: resets, truncated and invalid responses are counted, never fatal.

The server here answers the first request on every connection properly (so the pre-flight
passes) and misbehaves on the second; the engine must count that request's error with its
reason, open a new connection and carry on until exactly ``numRequests`` have been sent.
"""

from __future__ import annotations

import socket
import socketserver
import struct
import threading
from collections.abc import Iterator

import pytest
from kubectl_iter8.builtin_tasks.http.engine import LoadEngine, LoadPlan
from kubectl_iter8.builtin_tasks.http.stats import RunStats
from kubectl_iter8.builtin_tasks.http.target import Target

from kubectl_iter8.aio import run_async

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        sock: socket.socket = self.request
        buffer = b""
        answered = 0
        while True:
            while b"\r\n\r\n" not in buffer:
                chunk = sock.recv(65536)
                if not chunk:
                    return
                buffer += chunk
            _, buffer = buffer.split(b"\r\n\r\n", 1)
            if answered == 0:
                sock.sendall(OK)
                answered += 1
                continue
            mode = self.server.mode
            if mode == "reset":
                # Close now, before socketserver's orderly shutdown: with SO_LINGER 0, a bare RST.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.close()
            elif mode == "truncate":
                sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten..")
            elif mode == "garbage":
                sock.sendall(b"SPDY/9 what\r\n\r\n")
            return


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    mode = ""


@pytest.fixture
def faulty() -> Iterator[_Server]:
    server = _Server(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def load(server: _Server, mode: str, qps: float = 0) -> RunStats:
    server.mode = mode
    host, port = server.server_address[:2]

    async def main() -> RunStats:
        plan = LoadPlan(connections=2, qps=qps, num_requests=20)
        return await LoadEngine(Target(url=f"http://{host}:{port}/"), plan).run()

    return run_async(main())


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("reset", "connection reset"),
        ("truncate", "connection closed by server"),
        ("garbage", "invalid HTTP response"),
    ],
)
@pytest.mark.parametrize("qps", [0, 500])
def test_faults_are_counted_with_their_reason(faulty: _Server, mode: str, reason: str, qps: float) -> None:
    stats = load(faulty, mode, qps)
    assert stats.requests == 20
    assert set(stats.statuses) == {200}
    assert len(stats.errors) == 1
    (got, count), *_ = stats.errors.items()
    assert got.startswith(reason)
    # After the pre-flight, every connection alternates: one good answer, one fault.
    assert count >= 8
    assert stats.statuses[200] + count == 20
