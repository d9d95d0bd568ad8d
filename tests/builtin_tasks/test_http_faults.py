"""A misbehaving server: resets, truncated and invalid responses are counted, never fatal; a
connection whose first response is an error fails the run (initial errors not allowed).

The server here answers the first request on every connection properly (so the initial check
passes) and misbehaves on the second; the engine must count that request's error with its
reason, open a new connection and carry on until exactly ``numRequests`` have been sent.
"""

from __future__ import annotations

import socket
import socketserver
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar

import pytest
from kubectl_iter8.builtin_tasks.http.engine import InitialError, LoadEngine, LoadPlan
from kubectl_iter8.builtin_tasks.http.stats import RunStats
from kubectl_iter8.builtin_tasks.http.target import Target
from kubectl_iter8.builtin_tasks.http.workers import run_parallel

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


S = TypeVar("S", bound=socketserver.BaseServer)


@contextmanager
def serving(server: S) -> Iterator[S]:
    """``server`` answering on its own thread until the block ends."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def faulty() -> Iterator[_Server]:
    with serving(_Server(("127.0.0.1", 0), _Handler)) as server:
        yield server


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
    # Every connection answers once, then faults: the requests alternate, one good, one fault.
    assert count >= 8
    assert stats.statuses[200] + count == 20


BUSY = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy"


class _OneBadConnection(socketserver.ThreadingTCPServer):
    """Answers every request on the first connection with 200, on any later one with 503."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _AnswerHandler)
        self.lock = threading.Lock()
        self.connections = 0
        self.requests = 0


class _AnswerHandler(socketserver.BaseRequestHandler):
    server: _OneBadConnection

    def handle(self) -> None:
        sock: socket.socket = self.request
        with self.server.lock:
            self.server.connections += 1
            answer = OK if self.server.connections == 1 else BUSY
        buffer = b""
        while True:
            while b"\r\n\r\n" not in buffer:
                chunk = sock.recv(65536)
                if not chunk:
                    return
                buffer += chunk
            _, buffer = buffer.split(b"\r\n\r\n", 1)
            with self.server.lock:
                self.server.requests += 1
            sock.sendall(answer)


@pytest.fixture
def one_bad() -> Iterator[_OneBadConnection]:
    with serving(_OneBadConnection()) as server:
        yield server


def test_the_first_response_on_every_connection_is_checked(one_bad: _OneBadConnection) -> None:
    host, port = one_bad.server_address[:2]
    target = Target(url=f"http://{host}:{port}/")

    async def main() -> RunStats:
        return await LoadEngine(target, LoadPlan(connections=2, qps=0, num_requests=100_000)).run()

    # One connection answers 200 throughout; the other's first response (a request of the run,
    # not an extra one) is a 503: the run stops there, long before its 100 000 requests.
    with pytest.raises(InitialError, match="HTTP status 503"):
        run_async(main())
    assert one_bad.connections == 2
    assert one_bad.requests < 100_000


def test_a_failed_initial_check_in_one_worker_stops_the_others(one_bad: _OneBadConnection) -> None:
    host, port = one_bad.server_address[:2]
    started = time.monotonic()
    # A worker each on one connection: one gets the 200s, the other a 503 first. The first must
    # not run out its 30 s for a result that is thrown away.
    with pytest.raises(InitialError, match="HTTP status 503"):
        run_parallel(Target(url=f"http://{host}:{port}/"), LoadPlan(connections=2, qps=0, duration=30), 2)
    assert time.monotonic() - started < 15
