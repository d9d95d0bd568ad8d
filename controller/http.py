"""``/healthz``, ``/readyz`` and ``/metrics`` (Prometheus text format 0.0.4) on the HTTP port.

A handful of metrics do not justify a dependency, so :class:`Metrics` keeps counters, a histogram
and gauges under one lock and writes the text format itself. The server is the standard library's
``ThreadingHTTPServer`` on its own thread; handlers only read (``Metrics.render`` and two
callables the manager passes), so they never block a reconcile.

* ``/healthz``: 200 while the controller's threads are running;
* ``/readyz``: 200 once every informer has listed once (the caches are warm), 503 before;
* ``/metrics``: ``iter8_controller_reconciles_total{result}``,
  ``iter8_controller_reconcile_duration_seconds`` (histogram), ``iter8_controller_queue_depth``,
  ``iter8_controller_applied_weight{namespace,routemap,version}``, ``iter8_controller_is_leader``,
  ``iter8_controller_writes_total{kind}``, ``iter8_controller_watch_restarts_total``, and the lines
  of every :attr:`Metrics.collectors` (the A/B/n service adds its own);
* further routes the manager passes (the A/B/n read side): handlers of the query parameters and
  the request headers (a route checks its own authorization; the three above stay open);
* ``PUT`` routes (the test results of :mod:`.testresults`): handlers of the query, the headers and
  the body, which must come with a ``Content-Length`` of at most :data:`MAX_BODY` bytes (411, 413
  otherwise, refused before a byte of it is read) and arrive within :data:`BODY_TIMEOUT` seconds.

The port may face a network, so no client can hold the server: the request line and headers must
arrive within :data:`HEAD_TIMEOUT` seconds in total (a half-sent request once kept a thread
forever) and within :data:`MAX_HEAD` bytes; once read, every socket operation times out after
:data:`IO_TIMEOUT`; at most :data:`MAX_CONNECTIONS` connections are served at once, and one beyond
is answered 503 on the accepting thread, without a thread of its own. A client that goes away
(reset, broken pipe, timeout) is one debug line, never a traceback: that is the client's business.
"""

from __future__ import annotations

import bisect
import contextlib
import io
import logging
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

log = logging.getLogger("kubectl_iter8.controller")

#: (status, body, content type)
Response = tuple[int, str, str]
#: A route's handler: (the query parameters, the request headers) -> the response. Only the first
#: value of a query parameter is kept; header names are lower-case (the last of repeated ones kept).
Route = Callable[[dict[str, str], dict[str, str]], Response]
#: A ``PUT`` route's handler: (the query parameters, the request headers, the body) -> the response.
BodyRoute = Callable[[dict[str, str], dict[str, str], bytes], Response]

#: Seconds for a client to send its whole request line and headers.
HEAD_TIMEOUT = 5.0
#: Seconds any one read or write of a connection may wait once its head is read.
IO_TIMEOUT = 10.0
#: Bytes of request line and headers together (the stdlib alone allows 100 lines of 64 KiB).
MAX_HEAD = 16 * 1024
#: Connections served at once, each on its own thread.
MAX_CONNECTIONS = 64
#: Bytes of a request body (``PUT`` routes only).
MAX_BODY = 4 * 1024 * 1024
#: Seconds for a client to send a whole request body, however it paces it.
BODY_TIMEOUT = 30.0

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def escape_label(value: str) -> str:
    """A label value as the text format writes it: backslash, double quote and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def label_set(pairs: dict[str, str]) -> str:
    """``{a="x",b="y"}`` (keys sorted), or nothing for no labels."""
    if not pairs:
        return ""
    return "{" + ",".join(f'{k}="{escape_label(v)}"' for k, v in sorted(pairs.items())) + "}"


class Metrics:
    """The controller's metrics; every method is thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reconciles: dict[str, int] = {}
        self.writes: dict[str, int] = {}
        self._buckets = [0] * (len(BUCKETS) + 1)
        self._duration_sum = 0.0
        self._duration_count = 0
        #: Per routemap (namespace, name): the weight applied per version.
        self.weights: dict[tuple[str, str], dict[str, int]] = {}
        #: Per routemap, its lines of :attr:`weights`, formatted when they change (by the reconcile
        #: that changed them), and all of them joined in order until one changes: at 10,000
        #: routemaps formatting them on every scrape was most of a scrape's cost.
        self._weight_blocks: dict[tuple[str, str], str] = {}
        self._weight_text: str | None = None
        #: Per routemap with a rollout: its phase; and rollout transitions by reason.
        self.rollouts: dict[tuple[str, str], str] = {}
        self.rollout_transitions: dict[str, int] = {}
        self.queue_depth: Callable[[], int] = lambda: 0
        self.is_leader: Callable[[], bool] = lambda: False
        self.watch_restarts: Callable[[], int] = lambda: 0
        #: More metric families, each a callable returning complete text-format lines.
        self.collectors: list[Callable[[], list[str]]] = []

    def reconciled(self, result: str, seconds: float) -> None:
        with self._lock:
            self.reconciles[result] = self.reconciles.get(result, 0) + 1
            self._buckets[bisect.bisect_left(BUCKETS, seconds)] += 1
            self._duration_sum += seconds
            self._duration_count += 1

    def set_rollout(self, namespace: str, routemap: str, phase: str | None) -> None:
        """The phase of a routemap's rollout (None: it has none, or is gone)."""
        with self._lock:
            if phase is None:
                self.rollouts.pop((namespace, routemap), None)
            else:
                self.rollouts[(namespace, routemap)] = phase

    def rollout_transition(self, reason: str) -> None:
        with self._lock:
            self.rollout_transitions[reason] = self.rollout_transitions.get(reason, 0) + 1

    def wrote(self, kind: str) -> None:
        with self._lock:
            self.writes[kind] = self.writes.get(kind, 0) + 1

    def set_weights(self, namespace: str, routemap: str, weights: dict[str, int] | None) -> None:
        """The weights applied for one routemap (None: forget the routemap)."""
        key = (namespace, routemap)
        with self._lock:
            if (self.weights.get(key) or None) == (weights or None):
                return
        block = "".join(
            "iter8_controller_applied_weight"
            f"{label_set({'namespace': namespace, 'routemap': routemap, 'version': version})} {weight}\n"
            for version, weight in sorted((weights or {}).items())
        )
        with self._lock:
            if weights:
                self.weights[key] = dict(weights)
                self._weight_blocks[key] = block
            else:
                self.weights.pop(key, None)
                self._weight_blocks.pop(key, None)
            self._weight_text = None

    def render(self) -> str:
        lines: list[str] = []

        def family(name: str, kind: str, doc: str) -> None:
            lines.append(f"# HELP {name} {doc}")
            lines.append(f"# TYPE {name} {kind}")

        with self._lock:
            family("iter8_controller_reconciles_total", "counter", "Reconciles by result.")
            for result, count in sorted(self.reconciles.items()):
                lines.append(f"iter8_controller_reconciles_total{label_set({'result': result})} {count}")
            family("iter8_controller_reconcile_duration_seconds", "histogram", "Time spent per reconcile.")
            cumulative = 0
            for bound, count in zip((*BUCKETS, float("inf")), self._buckets, strict=True):
                cumulative += count
                le = "+Inf" if bound == float("inf") else repr(bound)
                lines.append(f'iter8_controller_reconcile_duration_seconds_bucket{{le="{le}"}} {cumulative}')
            lines.append(f"iter8_controller_reconcile_duration_seconds_sum {self._duration_sum}")
            lines.append(f"iter8_controller_reconcile_duration_seconds_count {self._duration_count}")
            family("iter8_controller_writes_total", "counter", "Writes to the API server by kind of write.")
            for kind, count in sorted(self.writes.items()):
                lines.append(f"iter8_controller_writes_total{label_set({'kind': kind})} {count}")
            if self._weight_text is None:
                self._weight_text = "".join(block for _, block in sorted(self._weight_blocks.items()))
            weight_text = self._weight_text
            rollouts = sorted(self.rollouts.items())
            transitions = sorted(self.rollout_transitions.items())
        family("iter8_controller_applied_weight", "gauge", "Weight applied per routemap version.")
        if weight_text:
            lines.append(weight_text.removesuffix("\n"))
        family("iter8_controller_rollout_phase", "gauge", "1 for the phase each rollout is in.")
        for (namespace, routemap), phase in rollouts:
            labels = label_set({"namespace": namespace, "routemap": routemap, "phase": phase})
            lines.append(f"iter8_controller_rollout_phase{labels} 1")
        family("iter8_controller_rollout_transitions_total", "counter", "Rollout transitions by reason.")
        for reason, count in transitions:
            lines.append(f"iter8_controller_rollout_transitions_total{label_set({'reason': reason})} {count}")
        family("iter8_controller_queue_depth", "gauge", "Keys waiting in the work queue.")
        lines.append(f"iter8_controller_queue_depth {self.queue_depth()}")
        family("iter8_controller_is_leader", "gauge", "1 when this replica holds the lease.")
        lines.append(f"iter8_controller_is_leader {int(self.is_leader())}")
        family(
            "iter8_controller_watch_restarts_total",
            "counter",
            "Watch requests beyond the first, per informer.",
        )
        lines.append(f"iter8_controller_watch_restarts_total {self.watch_restarts()}")
        for collect in self.collectors:
            try:
                lines.extend(collect())
            except Exception:
                # one failing source (an unreachable Redis) must not take the controller's own metrics down
                log.exception("a metrics collector failed")
        return "\n".join(lines) + "\n"


class _HeadTooLarge(Exception):
    """The request line and headers went beyond :data:`MAX_HEAD` bytes."""


class _HeadReader:
    """A connection's input, counting what ``readline`` returns against the head's byte budget.

    The stdlib reads the request line and each header with ``readline``; a ``PUT`` body is read
    with ``read1`` under its own cap, so only ``readline`` is counted.
    """

    def __init__(self, raw: io.BufferedIOBase, budget: int) -> None:
        self._raw = raw
        self._budget = budget

    def readline(self, limit: int | None = -1) -> bytes:
        cap = self._budget + 1 if limit is None or limit < 0 else min(limit, self._budget + 1)
        line = self._raw.readline(cap)
        self._budget -= len(line)
        if self._budget < 0:
            raise _HeadTooLarge()
        return line

    def read(self, size: int | None = -1) -> bytes:
        return self._raw.read(size)

    def read1(self, size: int = -1) -> bytes:
        return self._raw.read1(size)

    def close(self) -> None:
        self._raw.close()

    @property
    def closed(self) -> bool:
        return self._raw.closed


def _quiet(exc: BaseException | None) -> bool:
    """Whether ``exc`` is a client going away or stalling: nothing the server can fix."""
    return isinstance(exc, ConnectionError | TimeoutError)


class _Server(ThreadingHTTPServer):
    """``ThreadingHTTPServer`` with a cap on threads, a deadline for request heads, quiet disconnects."""

    daemon_threads = True
    # Connections wait here while the accepting thread is busy, rather than be refused by the kernel.
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        *,
        max_connections: int,
        head_timeout: float,
    ) -> None:
        super().__init__(address, handler)
        self._slots = threading.BoundedSemaphore(max_connections)
        self._head_timeout = head_timeout
        self._lock = threading.Lock()
        #: connections whose request head is still being read -> when to drop them
        self._heads: dict[socket.socket, float] = {}

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self._busy(request)
            return
        with self._lock:
            self._heads[request] = time.monotonic() + self._head_timeout
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._done(request)
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._done(request)

    def _done(self, request: socket.socket) -> None:
        self.head_read(request)
        self._slots.release()

    def head_read(self, request: socket.socket) -> None:
        with self._lock:
            self._heads.pop(request, None)

    def service_actions(self) -> None:
        # Called by serve_forever between polls (every 50 ms): one place watches every deadline, and
        # a slow client cannot renew its own by sending a byte just before each read times out.
        now = time.monotonic()
        with self._lock:
            overdue = [sock for sock, deadline in self._heads.items() if deadline <= now]
            for sock in overdue:
                del self._heads[sock]
        for sock in overdue:
            with contextlib.suppress(OSError):  # OSError: already gone
                sock.shutdown(socket.SHUT_RDWR)  # its thread's read returns at once: an empty request

    def _busy(self, request: socket.socket) -> None:
        # On the accepting thread: a few bytes into a fresh socket's empty send buffer never block.
        try:
            request.setblocking(False)
            body = b"too many connections\n"
            request.send(
                b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain\r\nRetry-After: 1\r\n"
                b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
            )
        except OSError:
            pass
        self.shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        peer = client_address[0] if isinstance(client_address, tuple) else client_address
        if _quiet(exc):
            log.debug("HTTP client %s went away: %s", peer, type(exc).__name__)
        else:
            log.error("HTTP request from %s failed", peer, exc_info=exc)


class HTTPServer:
    """Serves the three endpoints and the routes on a daemon thread, one thread per connection."""

    def __init__(
        self,
        address: str,
        port: int,
        *,
        metrics: Metrics,
        healthy: Callable[[], bool],
        ready: Callable[[], bool],
        routes: Mapping[str, Route] | None = None,
        put_routes: Mapping[str, BodyRoute] | None = None,
        max_body: int = MAX_BODY,
        body_timeout: float = BODY_TIMEOUT,
        head_timeout: float = HEAD_TIMEOUT,
        io_timeout: float = IO_TIMEOUT,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        table: dict[str, Route] = {
            "/healthz": lambda _q, _h: (
                (200, "ok\n", "text/plain") if healthy() else (503, "unhealthy\n", "text/plain")
            ),
            "/readyz": lambda _q, _h: (
                (200, "ok\n", "text/plain") if ready() else (503, "caches not synced\n", "text/plain")
            ),
            "/metrics": lambda _q, _h: (200, metrics.render(), "text/plain; version=0.0.4; charset=utf-8"),
            **(routes or {}),
        }
        puts: dict[str, BodyRoute] = dict(put_routes or {})

        class Handler(BaseHTTPRequestHandler):
            timeout = io_timeout

            def setup(self) -> None:
                super().setup()
                self.rfile = _HeadReader(self.rfile, MAX_HEAD)  # type: ignore[assignment]

            def handle(self) -> None:
                try:
                    super().handle()
                except _HeadTooLarge:
                    # What handle_one_request sets before its own errors, for send_error.
                    self.requestline, self.request_version, self.command = "", "", ""
                    self.close_connection = True
                    self.send_error(
                        HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE,
                        f"request line and headers over {MAX_HEAD} bytes",
                    )

            def parse_request(self) -> bool:
                try:
                    return super().parse_request()
                finally:
                    server.head_read(self.connection)

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                route = table.get(url.path)
                if route is None:
                    if url.path in puts:
                        self._send(405, "only PUT is served\n", "text/plain", allow="PUT")
                    else:
                        self._send(404, "not found\n", "text/plain")
                    return
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                headers = {k.lower(): v for k, v in self.headers.items()}
                try:
                    response = route(query, headers)
                except Exception:
                    log.exception("GET %s failed", url.path)
                    response = (500, "internal error\n", "text/plain")
                # Outside the try: a client gone while the answer is written is handle_error's.
                self._send(*response)

            def _refuse(self) -> None:
                allowed = "PUT" if urlsplit(self.path).path in puts else "GET"
                self._send(405, f"only {allowed} is served\n", "text/plain", allow=allowed)

            do_POST = do_DELETE = do_PATCH = _refuse

            def do_PUT(self) -> None:
                url = urlsplit(self.path)
                route = puts.get(url.path)
                if route is None:
                    self._refuse()
                    return
                body = self._body()
                if body is None:
                    return
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                headers = {k.lower(): v for k, v in self.headers.items()}
                try:
                    response = route(query, headers, body)
                except Exception:
                    log.exception("PUT %s failed", url.path)
                    response = (500, "internal error\n", "text/plain")
                self._send(*response)

            def _body(self) -> bytes | None:
                """The request body, or None once an error is sent (the connection then closes:
                an unread body would be taken for the next request)."""
                length = self.headers.get("Content-Length", "").strip()
                if self.headers.get("Transfer-Encoding") or not length:
                    self.close_connection = True
                    self._send(411, "a Content-Length is required\n", "text/plain")
                    return None
                if not (length.isascii() and length.isdigit()):
                    self.close_connection = True
                    self._send(400, "Content-Length: not a number\n", "text/plain")
                    return None
                size = int(length)
                if size > max_body:
                    self.close_connection = True
                    self._send(413, f"request body over {max_body} bytes\n", "text/plain")
                    return None
                deadline = time.monotonic() + body_timeout
                chunks: list[bytes] = []
                left = size
                while left:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise TimeoutError("request body not sent in time")
                    # One recv per read1, each under what is left of the deadline: a client
                    # trickling bytes cannot stretch the body past it.
                    self.connection.settimeout(min(remaining, io_timeout))
                    chunk = self.rfile.read1(min(left, 65536))
                    if not chunk:
                        raise ConnectionError("request body cut short")
                    chunks.append(chunk)
                    left -= len(chunk)
                self.connection.settimeout(io_timeout)
                return b"".join(chunks)

            def _send(self, status: int, body: str, content_type: str, *, allow: str | None = None) -> None:
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                if allow:
                    self.send_header("Allow", allow)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # probes every few seconds would drown the controller's own log

        server = _Server((address, port), Handler, max_connections=max_connections, head_timeout=head_timeout)
        self._server = server
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="iter8-http", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
