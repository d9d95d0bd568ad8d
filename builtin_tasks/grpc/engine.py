"""The gRPC load engine: ``concurrency`` workers on ``grpc.aio`` channels, closed or open loop.

Each worker is one coroutine making one call at a time on channel ``worker % connections``. The
multicallables carry no serializers: requests go out as the bytes :mod:`.payload` prepared (for
untemplated data, serialized once for the whole run) and replies are never parsed, as only their
status matters. Per call the engine adds two clock reads, an array append and a counter: the rest
is grpc.aio's own cost, which is the ceiling of any Python gRPC client.

Load models, as in the ``http`` task:

* **closed loop** (``qps == 0``): each worker calls again as soon as its call ends; latency is
  measured from the actual start. ``total`` calls exactly, or as many as fit in ``duration``
  (calls in flight at the end finish and count).
* **open loop** (``qps > 0``): call *i* is due at ``t0 + i / qps`` (:mod:`..loadgen.pacing`). A
  free worker takes the next call and waits for its time; when every worker is busy the call waits
  for one, and its latency still counts from when it was due, so a slow server shows up in the
  percentiles instead of lowering the rate. How late calls left is kept in the ``lag`` histogram.

Every call ends with a status: OK or an error code (a deadline from ``timeout`` is
DEADLINE_EXCEEDED), counted per code; as Iter8 (ghz with ``countErrors``) did, failed calls are in
the latency histogram too. Streams: a call is one whole stream; client and bidirectional streams
send ``streamCallCount`` messages (default: the data items), ``streamInterval`` apart, for at most
``streamCallDuration``; server and bidirectional streams read every reply. One limit of
grpc.aio: when a server ends a stream with an error while the client is still writing, the write
that races with it fails inside gRPC's core and grpc.aio reports the call as ``INTERNAL: Internal
error from Core`` instead of the server's status; such calls are counted as INTERNAL, except when
the call had reached its deadline (``timeout``), which is what ended it: DEADLINE_EXCEEDED.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from array import array
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import grpc
import grpc.aio

from ..loadgen.pacing import EARLY_NS, Schedule, requests_within
from ..loadgen.stats import RunStats, flush
from .descriptors import Method
from .payload import Metadata, PayloadError, Payloads
from .plan import Plan

_now = time.perf_counter_ns
_FOREVER = 2**62
#: gRPC status code number -> name (``0`` -> ``OK``).
CODE_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}
_CODE_NUMBERS = {code: code.value[0] for code in grpc.StatusCode}
_UNKNOWN = grpc.StatusCode.UNKNOWN.value[0]
_INTERNAL = grpc.StatusCode.INTERNAL.value[0]
_DEADLINE = grpc.StatusCode.DEADLINE_EXCEEDED.value[0]
#: What grpc.aio reports when a stream write fails because the call has just ended.
_CORE_ERROR = "Internal error from Core"
#: Distinct error messages kept per run (the counts per status code are always complete).
MAX_MESSAGES = 20
#: Seconds between moves of recorded latencies into the histograms.
FLUSH_PERIOD = 1.0


class _Failed(Exception):
    """A stream ended with an error status (the unary path uses grpc's own AioRpcError)."""

    def __init__(self, code: int, details: str) -> None:
        super().__init__(details)
        self.code = code
        self.details = details


class CallEngine:
    """Runs one plan of calls to one method over the given channels, on the running loop."""

    def __init__(
        self,
        channels: Sequence[grpc.aio.Channel],
        method: Method,
        payloads: Payloads,
        metadata: Metadata,
        plan: Plan,
    ) -> None:
        if plan.total is None and plan.duration is None:
            raise ValueError("a plan needs total or duration")
        self.method = method
        self.payloads = payloads
        self.metadata = metadata
        self.plan = plan
        self.open_loop = plan.qps > 0
        self.timeout = plan.timeout
        # A little less than the deadline: the clocks of gRPC's core and ours differ slightly.
        self._timeout_ns = int(plan.timeout * 1e9) - 2_000_000
        if plan.duration is not None:
            self.cap = requests_within(plan.duration, plan.qps, plan.phase) if self.open_loop else _FOREVER
        else:
            assert plan.total is not None
            self.cap = plan.total
        self.deadline = _FOREVER
        self.schedule = Schedule(0, plan.qps or 1.0, plan.phase)
        # Progress, readable at any time.
        self.issued = 0
        self.completed = 0
        self.failed = 0
        self.messages_sent = 0
        self.messages_received = 0
        self.codes = [0] * (max(CODE_NAMES) + 1)
        self.other_codes: dict[int, int] = {}
        self.client_errors: dict[str, int] = {}
        self.messages: dict[str, int] = {}
        self._latencies = array("q")
        self._lags = array("q")
        self._stats = RunStats(target_qps=plan.qps, connections=len(channels))
        path = method.path
        kind = method.kind
        if kind == "unary":
            self._callables: list[Any] = [ch.unary_unary(path) for ch in channels]
        elif kind == "client-streaming":
            self._callables = [ch.stream_unary(path) for ch in channels]
        elif kind == "server-streaming":
            self._callables = [ch.unary_stream(path) for ch in channels]
        else:
            self._callables = [ch.stream_stream(path) for ch in channels]
        self._invoke: Callable[[Any, int, str], Awaitable[None]] = {
            "unary": self._unary,
            "client-streaming": self._client_stream,
            "server-streaming": self._server_stream,
            "bidi-streaming": self._bidi_stream,
        }[kind]
        self._connections = len(channels)

    # ---- the run -------------------------------------------------------------------------

    async def run(self, before_start: Callable[[], Awaitable[None]] | None = None) -> RunStats:
        """Make the calls; return what was measured. ``before_start`` is awaited just before the
        first call (shard pods wait there for their common start)."""
        if before_start is not None:
            await before_start()
        loop = asyncio.get_running_loop()
        flusher = loop.create_task(self._flush_periodically())
        t0 = _now()
        self.schedule = Schedule(t0, self.plan.qps or 1.0, self.plan.phase)
        if self.plan.duration is not None and not self.open_loop:
            self.deadline = t0 + int(self.plan.duration * 1e9)
        fast = (
            self.method.kind == "unary"
            and not self.open_loop
            and self.payloads.static_items is not None
            and not self.metadata.varies
        )
        body = self._unary_closed if fast else self._worker
        workers = [loop.create_task(body(w)) for w in range(self.plan.concurrency)]
        try:
            await asyncio.gather(*workers)
        finally:
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flusher
        self._stats.elapsed = (_now() - t0) / 1e9
        self._flush()
        statuses = {code: count for code, count in enumerate(self.codes) if count}
        for code, count in self.other_codes.items():
            statuses[code] = statuses.get(code, 0) + count
        self._stats.statuses = statuses
        self._stats.errors = dict(self.client_errors)
        return self._stats

    def worker_id(self, worker: int) -> str:
        """ghz's worker id: goroutine ``g`` on connection ``c``."""
        return f"g{worker}c{worker % self._connections}"

    async def _unary_closed(self, worker: int) -> None:
        """The closed loop's hot path for unary calls whose request and metadata never vary."""
        call = self._callables[worker % self._connections]
        items = self.payloads.static_items
        assert items is not None
        request = items[0]
        cycle = len(items)
        metadata = self.metadata.constant
        timeout = self.timeout
        record = self._latencies.append
        codes = self.codes
        while True:
            n = self.issued
            start = _now()
            if n >= self.cap or start >= self.deadline:
                return
            self.issued = n + 1
            if cycle > 1:
                request = items[n % cycle]
            try:
                await call(request, timeout=timeout, metadata=metadata)
            except grpc.aio.AioRpcError as exc:
                self._count_failure(_CODE_NUMBERS.get(exc.code(), _UNKNOWN), exc.details() or "")
            except Exception as exc:  # not a status: a client-side problem, counted, never fatal
                self._count_failure(_UNKNOWN, f"{type(exc).__name__}: {exc}")
            else:
                codes[0] += 1
            record((_now() - start) // 1000)
            self.completed += 1

    async def _worker(self, worker: int) -> None:
        """Any call kind, closed or open loop."""
        call = self._callables[worker % self._connections]
        worker_name = self.worker_id(worker)
        invoke = self._invoke
        record = self._latencies.append
        open_loop = self.open_loop
        schedule = self.schedule
        while True:
            n = self.issued
            now = _now()
            if n >= self.cap or now >= self.deadline:
                return
            self.issued = n + 1
            start = now
            if open_loop:
                due = schedule.due(n)
                while due > now + EARLY_NS:
                    # The loop's timers may fire early (uvloop's clock is cached): wait again then.
                    await asyncio.sleep((due - now - EARLY_NS // 2) / 1e9)
                    now = _now()
                start, lag = schedule.start_of(n, now)
                self._lags.append(lag // 1000)
            try:
                await invoke(call, n, worker_name)
            except grpc.aio.AioRpcError as exc:
                code, details = _CODE_NUMBERS.get(exc.code(), _UNKNOWN), exc.details() or ""
                if code == _INTERNAL and details == _CORE_ERROR and _now() - now >= self._timeout_ns:
                    # A stream write cut by our own deadline: grpc.aio says INTERNAL, it is the deadline.
                    code, details = _DEADLINE, "Deadline Exceeded"
                self._count_failure(code, details)
            except _Failed as exc:
                self._count_failure(exc.code, exc.details)
            except PayloadError as exc:
                # The request could not be built (templated data that does not fit): never sent.
                self.client_errors[str(exc)] = self.client_errors.get(str(exc), 0) + 1
                self.failed += 1
                self.completed += 1
                continue
            except Exception as exc:  # not a status: a client-side problem, counted, never fatal
                self._count_failure(_UNKNOWN, f"{type(exc).__name__}: {exc}")
            else:
                self.codes[0] += 1
            record((_now() - start) // 1000)
            self.completed += 1

    def _count_failure(self, code: int, details: str) -> None:
        if code < len(self.codes):
            self.codes[code] += 1
        else:
            self.other_codes[code] = self.other_codes.get(code, 0) + 1
        self.failed += 1
        key = f"{CODE_NAMES.get(code, code)}: {details}" if details else str(CODE_NAMES.get(code, code))
        if key in self.messages or len(self.messages) < MAX_MESSAGES:
            self.messages[key] = self.messages.get(key, 0) + 1

    # ---- one call of each kind -----------------------------------------------------------

    async def _unary(self, call: Any, n: int, worker: str) -> None:
        await call(
            self.payloads.get(n, n, worker), timeout=self.timeout, metadata=self.metadata.get(n, worker)
        )

    async def _client_stream(self, call: Any, n: int, worker: str) -> None:
        stream = call(timeout=self.timeout, metadata=self.metadata.get(n, worker))
        try:
            problem = await self._send_all(stream, n, worker)
            await stream
        except grpc.aio.AioRpcError:
            raise
        except Exception:
            await _raise_status(stream)
            raise
        self.messages_received += 1
        if problem is not None:
            raise problem

    async def _server_stream(self, call: Any, n: int, worker: str) -> None:
        stream = call(
            self.payloads.get(n, n, worker), timeout=self.timeout, metadata=self.metadata.get(n, worker)
        )
        received = 0
        try:
            async for _ in stream:
                received += 1
        finally:
            self.messages_received += received
        self.messages_sent += 1

    async def _bidi_stream(self, call: Any, n: int, worker: str) -> None:
        stream = call(timeout=self.timeout, metadata=self.metadata.get(n, worker))
        sender = asyncio.get_running_loop().create_task(self._send_all(stream, n, worker))
        received = 0
        try:
            async for _ in stream:
                received += 1
        finally:
            self.messages_received += received
            if not sender.done():
                sender.cancel()
            try:
                problem = await sender
            except asyncio.CancelledError:
                if not sender.cancelled():
                    raise
                problem = None
        if problem is not None:
            raise problem

    async def _send_all(self, stream: Any, n: int, worker: str) -> PayloadError | None:
        """Write this stream's messages (count, interval, duration), then close the sending side.

        Returns the error of a message that could not be built (the stream is then closed early
        and the call counted as a client-side error), None otherwise.
        """
        plan = self.plan
        count = plan.stream_count
        if count is None and plan.stream_duration is None:
            count = self.payloads.count
        interval = int(plan.stream_interval * 1e9)
        begun = _now()
        ends = begun + int(plan.stream_duration * 1e9) if plan.stream_duration is not None else _FOREVER
        problem: PayloadError | None = None
        k = 0
        try:
            while count is None or k < count:
                if k and interval:
                    due = begun + k * interval
                    if due >= ends:
                        break
                    await _sleep_until(due)
                if _now() >= ends:
                    break
                try:
                    message = self.payloads.get(k, n, worker)
                except PayloadError as exc:
                    problem = exc
                    break
                await stream.write(message)
                self.messages_sent += 1
                k += 1
            if count is None and problem is None:
                await _sleep_until(ends)  # the stream lasts its duration, then closes
            await stream.done_writing()
        except Exception:  # AioRpcError, InvalidStateError, ExecuteBatchError, ...
            pass  # the call has ended while writing; its status (read by the caller) says why
        return problem

    # ---- bookkeeping ---------------------------------------------------------------------

    async def _flush_periodically(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_PERIOD)
            self._flush()

    def _flush(self) -> None:
        flush(self._stats, self._latencies, self._lags)


async def _sleep_until(when: int) -> None:
    """Sleep until ``perf_counter_ns()`` reaches ``when`` (within half a millisecond)."""
    while (left := when - _now()) > 500_000:
        await asyncio.sleep(left / 1e9)


async def _raise_status(stream: Any) -> None:
    """After an unexpected error on a stream, raise its final status (if it is one)."""
    code = await stream.code()
    if code != grpc.StatusCode.OK:
        raise _Failed(_CODE_NUMBERS.get(code, _UNKNOWN), await stream.details() or "")
