"""A small httpbin-like HTTP server: the target of the quickstart, the tests and the benchmarks.

Routes (any method; ``HEAD`` gets the headers only)::

    /                 a short text page listing the routes
    /get              JSON echo of the request: args, headers, url, origin
    /anything[/...]   the same plus the method and the body
    /post             the /anything echo for a POST (Iter8's tutorials post there); 405 otherwise
    /status/{code}    an empty response with that status (100-599)
    /delay/{ms}       the /get echo after ``ms`` milliseconds (at most 60000)
    /bytes/{n}        ``n`` bytes of application/octet-stream (at most 10 MiB)

It is written on asyncio protocols with the httptools (llhttp) request parser, and runs on uvloop
when installed, so one core serves tens of thousands of small responses per second: the server
should not be what a load test measures. Delays are timed on ``perf_counter``; a loop timer that
fires early (uvloop's timers tick in whole milliseconds) is simply re-armed for the rest, so
``/delay/20`` takes 20 ms plus the process's wake-up latency (about 0.1-0.5 ms on a quiet machine),
without ever spinning the CPU.

``error_rate`` and ``extra_delay`` make it a bad version to roll out: that fraction of the requests
(evenly spread, so a test of N requests sees exactly ``floor(N * rate)``) answer 500 whatever the
route, and every response is sent ``extra_delay`` seconds later.

``stall_every``/``stall_for`` freeze all responses periodically, like a garbage-collection pause or
a stopped process: a response that would be sent inside ``[k*every, k*every + for)`` (counted from
start-up) waits until the window ends. This is what coordinated-omission tests need.

Pipelined requests are answered in order, each connection keeping its own queue.
"""

from __future__ import annotations

import asyncio
import collections
import json
import ssl as ssl_module
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http import HTTPStatus
from threading import Event, Thread
from typing import Any, cast
from urllib.parse import parse_qsl, urlsplit

from httptools import HttpParserError, HttpRequestParser

MAX_DELAY_MS = 60_000
MAX_BYTES = 10 * 1024 * 1024
_INDEX = (
    b"kubectl-iter8 sample app\n\nGET /get  /anything  POST /post  /status/{code}  /delay/{ms}  /bytes/{n}\n"
)
_BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
#: A response due within this many seconds is sent now rather than re-arming a timer.
_CLOSE_ENOUGH = 0.0002


def _reason(code: int) -> str:
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return "Unknown"


class _Request:
    __slots__ = ("body", "headers", "url")

    def __init__(self) -> None:
        self.url = b""
        self.headers: list[tuple[str, str]] = []
        self.body: list[bytes] = []


class _Connection(asyncio.Protocol):
    """One client connection: parse requests, queue their responses in order."""

    def __init__(self, app: SampleApp) -> None:
        self.app = app
        self.transport: asyncio.Transport | None = None
        self.parser = HttpRequestParser(self)
        self.request = _Request()
        #: Responses in request order; None until ready.
        self.slots: collections.deque[list[bytes | None]] = collections.deque()
        self.peer = "127.0.0.1"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        if peer:
            self.peer = str(peer[0])
        self.app.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.app.connections.discard(self)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except HttpParserError:
            if self.transport is not None:
                self.transport.write(_BAD_REQUEST)
                self.transport.close()

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.request = _Request()

    def on_url(self, url: bytes) -> None:
        self.request.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.request.headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_body(self, body: bytes) -> None:
        self.request.body.append(body)

    def on_message_complete(self) -> None:
        slot: list[bytes | None] = [None]
        self.slots.append(slot)
        self.app.handle(self, slot, self.request, self.parser.get_method().decode("ascii"),
                        self.parser.should_keep_alive())  # fmt: skip

    def fill(self, slot: list[bytes | None], data: bytes, keep_alive: bool) -> None:
        slot[0] = data
        transport = self.transport
        if transport is None:
            return
        while self.slots and self.slots[0][0] is not None:
            ready = self.slots.popleft()[0]
            assert ready is not None
            transport.write(ready)
        if not keep_alive and not self.slots:
            transport.close()


class SampleApp:
    """The server; :meth:`start` binds it, :meth:`close` stops it."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8080,
        *,
        stall_every: float = 0.0,
        stall_for: float = 0.0,
        error_rate: float = 0.0,
        extra_delay: float = 0.0,
        ssl: ssl_module.SSLContext | None = None,
        keep_requests: int = 0,
    ) -> None:
        self.host = host
        self.port = port
        self.error_rate = error_rate
        self.extra_delay = extra_delay
        self.stall_every = stall_every
        self.stall_for = stall_for
        #: Serve HTTPS with this context (a client certificate is asked for if it says so).
        self.ssl = ssl
        #: Requests answered so far (tests use it to check exact counts).
        self.requests = 0
        #: The last ``keep_requests`` requests as ``(method, target, headers, body)``, for tests.
        self.recent: collections.deque[tuple[str, str, dict[str, str], bytes]] = collections.deque(
            maxlen=keep_requests or None
        )
        self._keep = keep_requests > 0
        self.connections: set[_Connection] = set()
        self._server: asyncio.Server | None = None
        self._epoch = time.perf_counter()
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.ssl else 'http'}://{host}:{self.port}"

    async def start(self) -> None:
        """Bind and listen; ``port=0`` picks a free port (then :attr:`port` tells which)."""
        self._loop = asyncio.get_running_loop()
        self._server = await self._loop.create_server(
            lambda: _Connection(self), self.host, self.port, ssl=self.ssl
        )
        self.port = int(self._server.sockets[0].getsockname()[1])
        self._epoch = time.perf_counter()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for conn in list(self.connections):
                if conn.transport is not None:
                    conn.transport.close()
            await self._server.wait_closed()
            self._server = None

    # ---- routing -------------------------------------------------------------------------

    def handle(
        self, conn: _Connection, slot: list[bytes | None], request: _Request, method: str, keep_alive: bool
    ) -> None:
        self.requests += 1
        target = request.url.decode("latin-1")
        if self._keep:
            self.recent.append((method, target, dict(request.headers), b"".join(request.body)))
        parts = urlsplit(target)
        path = parts.path
        delay = 0.0
        if path == "/get":
            status, ctype, body = 200, "application/json", self._echo(conn, request, parts, None)
        elif path == "/anything" or path.startswith("/anything/"):
            status, ctype, body = 200, "application/json", self._echo(conn, request, parts, method)
        elif path == "/post":
            if method == "POST":
                status, ctype, body = 200, "application/json", self._echo(conn, request, parts, method)
            else:
                status, ctype, body = 405, "text/plain", b"method not allowed\n"
        elif path.startswith("/status/"):
            code = _int(path[8:])
            status, ctype, body = (code, "text/plain", b"") if 100 <= code <= 599 else _bad("bad status code")
        elif path.startswith("/delay/"):
            ms = _int(path[7:])
            if 0 <= ms <= MAX_DELAY_MS:
                delay = ms / 1000
                status, ctype, body = 200, "application/json", self._echo(conn, request, parts, None)
            else:
                status, ctype, body = _bad(f"delay must be 0 to {MAX_DELAY_MS} ms")
        elif path.startswith("/bytes/"):
            n = _int(path[7:])
            if 0 <= n <= MAX_BYTES:
                status, ctype, body = 200, "application/octet-stream", b"x" * n
            else:
                status, ctype, body = _bad(f"size must be 0 to {MAX_BYTES} bytes")
        elif path == "/":
            status, ctype, body = 200, "text/plain", _INDEX
        else:
            status, ctype, body = 404, "text/plain", b"not found\n"
        if self.error_rate and int(self.requests * self.error_rate) > int(
            (self.requests - 1) * self.error_rate
        ):
            status, ctype, body = 500, "text/plain", b"injected failure\n"
        delay += self.extra_delay
        head = (
            f"HTTP/1.1 {status} {_reason(status)}\r\nServer: iter8-sample-app\r\n"
            f"Content-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
            + ("" if keep_alive else "Connection: close\r\n")
            + "\r\n"
        ).encode("latin-1")
        data = head if method == "HEAD" else head + body
        send_at = time.perf_counter() + delay
        if self.stall_every > 0:
            into = (send_at - self._epoch) % self.stall_every
            if into < self.stall_for:
                send_at += self.stall_for - into
        self._at(send_at, conn, slot, data, keep_alive)

    def _at(
        self, when: float, conn: _Connection, slot: list[bytes | None], data: bytes, keep_alive: bool
    ) -> None:
        assert self._loop is not None
        left = when - time.perf_counter()
        if left > _CLOSE_ENOUGH:
            self._loop.call_later(left, self._at, when, conn, slot, data, keep_alive)
        else:
            conn.fill(slot, data, keep_alive)

    def _echo(self, conn: _Connection, request: _Request, parts: Any, method: str | None) -> bytes:
        headers: dict[str, str] = {}
        for name, value in request.headers:
            key = "-".join(word.capitalize() for word in name.split("-"))
            headers[key] = f"{headers[key]},{value}" if key in headers else value
        doc: dict[str, Any] = {
            "args": dict(parse_qsl(parts.query)),
            "headers": headers,
            "origin": conn.peer,
            "url": f"{self.url}{request.url.decode('latin-1')}",
        }
        if method is not None:
            raw = b"".join(request.body)
            doc["method"] = method
            doc["data"] = raw.decode("utf-8", errors="replace")
        return json.dumps(doc).encode()


def _int(text: str) -> int:
    try:
        return int(text.strip("/"))
    except ValueError:
        return -1


def _bad(message: str) -> tuple[int, str, bytes]:
    return 400, "text/plain", f"{message}\n".encode()


@contextmanager
def running(host: str = "127.0.0.1", port: int = 0, **options: Any) -> Iterator[SampleApp]:
    """Run a :class:`SampleApp` on its own event loop in a background thread (tests, benchmarks)."""
    from .aio import loop_factory

    factory = loop_factory() or asyncio.new_event_loop
    loop = factory()
    app = SampleApp(host, port, **options)
    started, stop = Event(), asyncio.Event()
    failure: list[BaseException] = []

    async def main() -> None:
        try:
            await app.start()
        except BaseException as exc:
            failure.append(exc)
            started.set()
            return
        started.set()
        await stop.wait()
        await app.close()

    thread = Thread(target=loop.run_until_complete, args=(main(),), name="sample-app", daemon=True)
    thread.start()
    started.wait()
    try:
        if failure:
            raise failure[0]
        yield app
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
