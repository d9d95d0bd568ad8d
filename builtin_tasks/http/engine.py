"""The load engine: HTTP/1.1 over keep-alive connections, driven by callbacks on one event loop.

Why it looks like this: a general-purpose client (httpx, aiohttp) spends tens of microseconds of
Python per request in futures, tasks and header objects. Here each connection is an
``asyncio.Protocol`` whose response parser is httptools (llhttp, in C); the request is one
pre-encoded ``bytes``; when a response completes, the parser's callback records the latency and
writes the next request *from inside that callback*: no future, no task switch, no allocation
beyond one integer. Latencies are appended to an ``array`` and moved into the HDR histogram in
bulk by a housekeeping timer, which also enforces timeouts (one timer for all connections rather
than one per request).

Failed requests are timed apart too (Fortio's ``ErrorsDurationHistogram``, Iter8's "Error
durations"): a response whose status is an error (the target's ``errorRanges``, looked up in a set
made once, so a successful response pays one set lookup and nothing else), and a request that got
no response, timed from its start (in the open loop its due time, as latencies are) to the moment
it was given up (a timeout, a reset, the connection lost); a failed connection attempt counts as
one failed request lasting as long as the attempt.

Two load models:

* **closed loop** (``qps == 0``): every connection sends its next request as soon as the previous
  response is in; latency is measured from the actual send.
* **open loop** (``qps > 0``): request *i* is due at ``t0 + phase + i / qps``. A due request goes
  out on any idle connection; when none is idle it waits for one. Its latency is measured from
  the time it was *due*, not when it left (wrk2's rule), so a stalled server shows up in the
  percentiles instead of quietly lowering the rate (coordinated omission). How late each request
  left is recorded in a second histogram (``lag``). After a stall the backlog goes out at once,
  as fast as the connections allow.

Counting: a run of ``numRequests`` issues exactly that many requests, and nothing else: no
unrecorded warm-up request, so the server sees the same number as the result records (and fewer
requests than connections leaves some connections unused). Each request ends with a response or
with an error reason (refused, reset, timeout, ...). A failed connection attempt consumes one
request (in the open loop, one that is due) and is retried after :data:`RETRY_DELAY`. Errors never
escape the engine; only a failed initial check (see :meth:`LoadEngine.run`) does.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
import ssl
import time
from array import array
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

from httptools import HttpParserError, HttpResponseParser

from ..loadgen.pacing import EARLY_NS, Schedule, requests_within
from ..loadgen.stats import RunStats, flush
from .target import Target

#: Pause before a connection that failed to open is tried again.
RETRY_DELAY = 0.01
#: How often the housekeeping timer runs (timeouts, histogram flush), at most.
HOUSEKEEPING = 0.1

_now = time.perf_counter_ns
_FOREVER = 2**62


class InitialError(Exception):
    """A connection could not be opened, or the first response on it was an error, and initial
    errors are not allowed."""


@dataclass(frozen=True)
class LoadPlan:
    """How much load, and how: the part of the task's inputs the engine needs."""

    connections: int = 4
    #: Requests per second; 0 means the closed loop at maximum speed.
    qps: float = 8.0
    #: Exactly this many requests, when set; else ``duration``.
    num_requests: int | None = None
    duration: float | None = None
    #: Go on when a connection cannot be opened or its first response is an error (else the run
    #: fails with :class:`InitialError`).
    allow_initial_errors: bool = False
    #: Offset of this process's open-loop schedule, when several processes share one rate.
    phase: float = 0.0


def describe_error(exc: BaseException | None) -> str:
    """A short, stable reason for a request that got no response."""
    if exc is None:
        return "connection closed by server"
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return "timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    if isinstance(exc, BrokenPipeError | ConnectionAbortedError):
        return "connection closed by server"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"tls: {exc.verify_message or 'certificate verify failed'}"
    if isinstance(exc, ssl.SSLError):
        return f"tls: {exc.reason or exc}".lower()
    if isinstance(exc, socket.gaierror):
        return "cannot resolve host"
    if isinstance(exc, OSError):
        if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
            return "host unreachable"
        return (exc.strerror or str(exc) or type(exc).__name__).lower()
    return f"{type(exc).__name__}: {exc}"


class _Connection(asyncio.Protocol):
    """One keep-alive connection; the parser calls back into the engine when a response is in."""

    def __init__(self, engine: LoadEngine) -> None:
        self.engine = engine
        self.transport: asyncio.Transport | None = None
        self.parser = HttpResponseParser(self)
        #: When the request in flight counts from (ns): its due time in the open loop.
        self.start = 0
        #: When it actually left (ns), for timeouts.
        self.sent = 0
        self.busy = False
        #: Its first response (a recorded request) still decides whether the run may go on.
        self.checking = False
        #: Why it closed: set by us before we close it (timeout, bad response), else when it is lost.
        self.reason: str | None = None
        #: Part of the measured run (a replacement is opened when it closes).
        self.in_service = False
        self.closed: asyncio.Future[None] = engine.loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except HttpParserError as exc:
            self.engine.abort(self, f"invalid HTTP response: {exc}")

    def on_message_complete(self) -> None:
        # The closed loop's hot path, inlined here on purpose (every Python call costs): record
        # the latency, count the status, and send the next request from inside the callback.
        now = _now()
        engine = self.engine
        latency = (now - self.start) // 1000
        engine.record(latency)
        parser = self.parser
        status = parser.get_status_code()
        statuses = engine.statuses
        statuses[status] = statuses.get(status, 0) + 1
        engine.completed += 1
        if status in engine.error_statuses:
            engine.record_error(latency)
        if self.checking:
            self.checking = False
            if engine.target.is_error(status):
                engine.fail_initial(f"HTTP status {status}")
                return
        transport = self.transport
        if (
            engine.fast
            and transport is not None
            and parser.should_keep_alive()
            and engine.issued < engine.cap
            and now < engine.fast_deadline
        ):
            engine.issued += 1
            self.start = self.sent = now
            transport.write(engine.request)
            return
        engine.after_response(self, now, parser.should_keep_alive())

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if not self.closed.done():
            self.closed.set_result(None)
        self.engine.lost(self, exc)


class _HeadConnection(_Connection):
    """For ``HEAD``: the response ends with its headers, whatever Content-Length says."""

    def on_headers_complete(self) -> None:
        _Connection.on_message_complete(self)
        self.parser = HttpResponseParser(self)  # the next response starts afresh

    def on_message_complete(self) -> None:
        pass  # done in on_headers_complete


class LoadEngine:
    """Runs one load plan against one target on the running event loop."""

    def __init__(self, target: Target, plan: LoadPlan) -> None:
        if plan.num_requests is None and plan.duration is None:
            raise ValueError("a load plan needs num_requests or duration")
        self.target = target
        self.plan = plan
        self.loop = asyncio.get_running_loop()
        self.request = target.request_bytes()
        self.ssl = target.ssl_context()
        self.timeout_ns = int(target.timeout * 1e9)
        self._factory = _HeadConnection if target.method == "HEAD" else _Connection
        self.open_loop = plan.qps > 0
        self._schedule = Schedule(0, plan.qps or 1.0, plan.phase)  # t0 is set when the run starts
        #: Requests to issue in all, or None for a closed loop bounded by time.
        self.limit: int | None = plan.num_requests
        if self.limit is None and self.open_loop:
            assert plan.duration is not None
            # Requests due within the duration: phase + i * interval < duration.
            self.limit = requests_within(plan.duration, plan.qps, plan.phase)
        self.deadline = 0
        self.t0 = 0
        # Progress, readable at any time (also from another thread).
        self.issued = 0
        self.completed = 0
        self.failed = 0
        self.inflight = 0
        self.statuses: dict[int, int] = {}
        self._errors: dict[str, int] = {}
        self._latencies = array("q")
        self._lags = array("q")
        self._error_latencies = array("q")
        #: Appends one latency (µs); the array is emptied in place by :meth:`_flush`.
        self.record = self._latencies.append
        #: Appends one failed request's duration (µs), likewise.
        self.record_error = self._error_latencies.append
        #: The statuses the target counts as errors (llhttp reads three digits, so 0 to 999).
        self.error_statuses = frozenset(s for s in range(1000) if target.is_error(s))
        # The closed loop's fast path: on while running; ``cap``/``fast_deadline`` bound it.
        self.fast = False
        self.cap = 0
        self.fast_deadline = 0
        self._stats = RunStats(target_qps=plan.qps, connections=plan.connections)
        self._connections: set[_Connection] = set()
        self._idle: list[_Connection] = []
        self._connecting = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._running = False
        self._stopped = False
        #: Why the initial check failed, once it has.
        self._initial_error: str | None = None
        self._done: asyncio.Future[None] = self.loop.create_future()
        self._next = self._next_open if self.open_loop else self._next_closed

    # ---- the run -------------------------------------------------------------------------

    async def run(self, before_start: Callable[[], Awaitable[None]] | None = None) -> RunStats:
        """Open the connections, run the load, close everything; return what was measured.

        Initial check (what Fortio's warm-up call was for, without its extra request): every
        connection is opened before the run, and the first response on each is checked. That
        response belongs to the run, recorded, counted and scheduled like any other. If a
        connection cannot be opened, or its first request gets no response or an error status, and
        ``allow_initial_errors`` is false, the run stops at once and :class:`InitialError` is
        raised; otherwise failed connections are re-opened during the run like any other.

        ``before_start`` is awaited between opening the connections and the first request (worker
        processes wait there for each other, so that they all start together).
        """
        housekeeping = self.loop.create_task(self._housekeeping())
        try:
            ready = await self._open_all()
            if before_start is not None:
                await before_start()
            self._running = True
            self.t0 = _now()
            self._schedule = Schedule(self.t0, self.plan.qps or 1.0, self.plan.phase)
            if self.plan.duration is not None and not self._stopped:
                self.deadline = self.t0 + int(self.plan.duration * 1e9)
            self.cap = self.limit if self.limit is not None else _FOREVER
            self.fast_deadline = self.deadline if self.limit is None else _FOREVER
            self.fast = not self.open_loop
            check = not self.plan.allow_initial_errors
            for _ in range(self.plan.connections - len(ready)):
                self._spawn_reconnect()
            for conn in ready:
                if conn.transport is None:
                    # Closed before its first request: a TLS 1.3 server refusing the client
                    # certificate does that just after the handshake. Its first request would fail.
                    if check:
                        self.fail_initial(conn.reason or "connection closed by server")
                        break
                    self._spawn_reconnect()
                    continue
                conn.in_service = True
                conn.checking = check
                self._next(conn, self.t0)
            self._check_done()
            await self._done
            if self._initial_error is not None:
                raise InitialError(self._initial_error)
            self._stats.elapsed = (_now() - self.t0) / 1e9
        finally:
            self._running = self.fast = False
            housekeeping.cancel()
            await self._shutdown()
            with contextlib.suppress(asyncio.CancelledError):
                await housekeeping
        self._flush()
        self._stats.statuses = dict(self.statuses)
        self._stats.errors = dict(self._errors)
        return self._stats

    def stop(self) -> None:
        """End the run early: no new requests; those in flight finish. On the engine's loop only
        (from another thread, through ``loop.call_soon_threadsafe``)."""
        self._stopped = True
        self.limit = self.cap = self.issued
        self.deadline = self.fast_deadline = 1
        self._check_done()

    async def _open_all(self) -> list[_Connection]:
        results = await asyncio.gather(
            *(self._open() for _ in range(self.plan.connections)), return_exceptions=True
        )
        ready: list[_Connection] = []
        problems: list[str] = []
        for result in results:
            if isinstance(result, _Connection):
                ready.append(result)
            elif isinstance(result, BaseException):
                if not isinstance(result, Exception):
                    raise result
                problems.append(describe_error(result))
        if problems and not self.plan.allow_initial_errors:
            for conn in ready:
                self._close(conn)
            raise InitialError(problems[0])
        return ready

    async def _open(self) -> _Connection:
        """Open one connection (TCP, and TLS when asked); nothing is sent yet."""
        target = self.target
        _, protocol = await asyncio.wait_for(
            self.loop.create_connection(
                lambda: self._factory(self),
                target.host,
                target.port,
                ssl=self.ssl,
                server_hostname=target.host if self.ssl else None,
            ),
            self.target.timeout,
        )
        self._connections.add(protocol)
        return protocol

    # ---- sending -------------------------------------------------------------------------

    def _write(self, conn: _Connection, start: int, now: int) -> None:
        conn.start = start
        conn.sent = now
        conn.busy = True
        self.inflight += 1
        assert conn.transport is not None
        conn.transport.write(self.request)

    def _next_closed(self, conn: _Connection, now: int) -> None:
        if not self._more(now):
            self._idle.append(conn)
            self._check_done()
            return
        self.issued += 1
        self._write(conn, now, now)

    def _next_open(self, conn: _Connection, now: int) -> None:
        self._idle.append(conn)
        self._pump(now)

    def _more(self, now: int) -> bool:
        if not self._running:
            return False
        if self.limit is not None:
            return self.issued < self.limit
        return now < self.deadline

    def _pump(self, now: int) -> None:
        """Send every request that is due, while connections are idle; arm the timer for the next."""
        idle = self._idle
        while self._running and self.limit is not None and self.issued < self.limit:
            due = self._schedule.due(self.issued)
            if due > now + EARLY_NS:
                if self._timer is None:
                    # Loop timers tick in whole milliseconds: aim a little early, and the request
                    # goes out up to EARLY_NS before it is due (timed from its actual send then).
                    wait = (due - now - EARLY_NS // 2) / 1e9
                    self._timer = self.loop.call_later(wait, self._on_timer)
                return
            if not idle:
                return
            conn = idle.pop()
            self.issued += 1
            if due < now:
                self._lags.append((now - due) // 1000)
                self._write(conn, due, now)
            else:
                self._lags.append(0)
                self._write(conn, now, now)
        self._check_done()

    def _on_timer(self) -> None:
        self._timer = None
        self._pump(_now())

    # ---- receiving -----------------------------------------------------------------------

    def fail_initial(self, reason: str) -> None:
        """A connection's first request failed and initial errors are not allowed: end the run now,
        sending nothing more; :meth:`run` raises :class:`InitialError` with ``reason``."""
        if self._initial_error is None:
            self._initial_error = reason
        self._running = self.fast = False
        if not self._done.done():
            self._done.set_result(None)

    def after_response(self, conn: _Connection, now: int, keep_alive: bool) -> None:
        """A recorded response is in and the fast path did not send the next request."""
        conn.busy = False
        self.inflight -= 1
        if keep_alive:
            self._next(conn, now)
        else:
            self._close(conn)  # ``Connection: close``: not busy, so no error; a new one is opened

    def abort(self, conn: _Connection, reason: str) -> None:
        """Drop ``conn`` with ``reason`` (counted as the error of the request in flight)."""
        conn.reason = reason
        if conn.transport is not None:
            conn.transport.abort()

    def lost(self, conn: _Connection, exc: Exception | None) -> None:
        """``conn`` is closed, by us or by the peer."""
        self._connections.discard(conn)
        with contextlib.suppress(ValueError):
            self._idle.remove(conn)
        reason = conn.reason = conn.reason or describe_error(exc)
        if conn.busy:
            conn.busy = False
            self.inflight -= 1
            self._count_error(reason, (_now() - conn.start) // 1000)
            if conn.checking and self._running:
                self.fail_initial(reason)
                return
        if self._running and conn.in_service:
            self._spawn_reconnect()
        self._check_done()

    def errors_so_far(self) -> int:
        """Requests without a response plus error statuses so far (for progress displays)."""
        is_error = self.target.is_error
        return self.failed + sum(count for status, count in list(self.statuses.items()) if is_error(status))

    def _count_error(self, reason: str, duration_us: int) -> None:
        """A request that got no response, and how long it took to fail (µs)."""
        self._errors[reason] = self._errors.get(reason, 0) + 1
        self.record_error(duration_us)
        self.completed += 1
        self.failed += 1

    def _close(self, conn: _Connection) -> None:
        if conn.transport is not None:
            conn.transport.close()

    # ---- reconnecting --------------------------------------------------------------------

    def _spawn_reconnect(self) -> None:
        if not self._more(_now()):
            return
        self._connecting += 1
        task = self.loop.create_task(self._reconnect())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _reconnect(self) -> None:
        try:
            while self._more(attempt := _now()):
                try:
                    conn = await self._open()
                except (OSError, TimeoutError, ssl.SSLError) as exc:
                    self._connect_failed(describe_error(exc), attempt)
                    await asyncio.sleep(RETRY_DELAY)
                    continue
                if conn.transport is None:
                    continue
                self._connecting -= 1
                conn.in_service = True
                self._next(conn, _now())
                return
        except asyncio.CancelledError:
            pass
        self._connecting -= 1
        self._check_done()

    def _connect_failed(self, reason: str, attempt: int) -> None:
        """A connection attempt begun at ``attempt`` failed: that costs one request (in the open
        loop, a due one), which failed after as long as the attempt took."""
        now = _now()
        if not self._more(now):
            return
        if self.open_loop and self._schedule.due(self.issued) > now + EARLY_NS:
            return
        self.issued += 1
        self._count_error(reason, (now - attempt) // 1000)

    # ---- bookkeeping ---------------------------------------------------------------------

    def _check_done(self) -> None:
        if self._done.done() or not self._running:
            return
        if self.inflight == 0 and self._connecting == 0 and not self._more(_now()):
            self._done.set_result(None)

    async def _housekeeping(self) -> None:
        period = min(HOUSEKEEPING, max(self.target.timeout / 4, 0.001))
        while True:
            await asyncio.sleep(period)
            now = _now()
            for conn in list(self._connections):
                if conn.busy and now - conn.sent > self.timeout_ns:
                    self.abort(conn, "timeout")
            self._flush()
            if self._running and self.limit is None:
                self._check_done()  # a closed loop bounded by time may have idle connections only

    def _flush(self) -> None:
        flush(self._stats, self._latencies, self._lags, self._error_latencies)

    async def _shutdown(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        waits: list[asyncio.Future[Any]] = []
        for conn in list(self._connections):
            self._close(conn)
            waits.append(conn.closed)
        if waits:
            await asyncio.wait(waits, timeout=1.0)
