"""The load engine against the real sample app on 127.0.0.1: both load models, counts, errors."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubectl_iter8.builtin_tasks.http.engine import InitialError, LoadEngine, LoadPlan
from kubectl_iter8.builtin_tasks.http.stats import RunStats
from kubectl_iter8.builtin_tasks.http.target import Target
from kubectl_iter8.builtin_tasks.loadgen.pacing import EARLY_NS

from kubectl_iter8.aio import run_async
from kubectl_iter8.sample_app import _CLOSE_ENOUGH, SampleApp, running

#: A run that has not ended by then never will (the tests' runs take well under a second).
RUN_LIMIT = 60.0
#: The sample app sends a response due within this many ns at once.
EARLY_ANSWER_NS = int(_CLOSE_ENOUGH * 1e9)


@pytest.fixture
def app() -> Iterator[SampleApp]:
    with running(keep_requests=50) as server:
        yield server


def load(target: Target, plan: LoadPlan) -> RunStats:
    return run(target, plan)[1]


def run(target: Target, plan: LoadPlan) -> tuple[LoadEngine, RunStats]:
    """The engine too, for its start time ``t0`` (``perf_counter_ns``, the clock of :func:`arrivals`)."""

    async def main() -> tuple[LoadEngine, RunStats]:
        engine = LoadEngine(target, plan)
        return engine, await asyncio.wait_for(engine.run(), RUN_LIMIT)

    return run_async(main())


def arrivals(app: SampleApp) -> list[int]:
    """When the app starts handling each request from now on (``perf_counter_ns``), in order."""
    times: list[int] = []
    handle = app.handle

    def timed(*args: Any) -> None:
        times.append(time.perf_counter_ns())
        handle(*args)

    app.handle = timed  # type: ignore[method-assign]
    return times


def dead_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/get"  # nothing listens there any more


def test_closed_loop_sends_exactly_num_requests(app: SampleApp) -> None:
    stats = load(Target(url=f"{app.url}/get"), LoadPlan(connections=4, qps=0, num_requests=257))
    assert stats.requests == 257
    assert stats.statuses == {200: 257}
    assert stats.errors == {}
    assert stats.latency.get_total_count() == 257
    assert app.requests == 257  # nothing unrecorded


def test_closed_loop_by_duration_runs_for_that_long(app: SampleApp) -> None:
    plan = LoadPlan(connections=2, qps=0, duration=0.3)
    stats = load(Target(url=f"{app.url}/get"), plan)
    # The run ends only once the deadline has passed, and then at once: a tenfold run is a run
    # that did not stop at its deadline. How many requests fit in it is the benchmarks' business.
    assert 0.3 <= stats.elapsed < 3.0
    assert stats.requests > plan.connections  # the connections did not stop after one request each
    assert stats.requests == stats.statuses[200] == app.requests  # nothing unrecorded


def test_open_loop_keeps_the_rate(app: SampleApp) -> None:
    received = arrivals(app)
    engine, stats = run(Target(url=f"{app.url}/get"), LoadPlan(connections=2, qps=200, num_requests=60))
    assert stats.requests == 60
    assert len(received) == 60  # nothing is sent before t0
    measured = [t for t in received if t >= engine.t0]
    assert len(measured) == 60
    # Request i is due at i/200 s and may leave up to EARLY_NS before: the k-th to arrive cannot
    # arrive before request k is due (the first k+1 to arrive include one numbered k or more).
    for k, at in enumerate(sorted(measured)):
        assert at >= engine.t0 + k * 5_000_000 - EARLY_NS, k
    # The run ends when the last request, due at 59/200 s, is answered; a tenfold run has lost the
    # schedule, not only suffered from a busy machine.
    assert 59 / 200 - EARLY_NS / 1e9 <= stats.elapsed < 10 * 59 / 200
    assert stats.achieved_qps <= 60 / (59 / 200 - EARLY_NS / 1e9)
    assert stats.lag.get_total_count() == 60


def test_open_loop_by_duration_sends_the_requests_due_in_it(app: SampleApp) -> None:
    stats = load(Target(url=f"{app.url}/get"), LoadPlan(connections=2, qps=100, duration=0.25))
    assert stats.requests == 25  # due at 0, 10, ..., 240 ms


def test_open_loop_measures_from_the_intended_send_time(app: SampleApp) -> None:
    # One connection, 100 ms responses, 50 requests/s: request i waits for i-1, so the queue
    # grows by at least 80 ms per request. Measured from the actual send, every latency would be
    # ~100 ms. The bounds come from when the app received each request, whatever the machine's load:
    # request i is due at t0 + 20i ms, leaves after response i-1 is in, and is answered after
    # 100 ms; its response is in before request i+1 arrives (before the run ends, for the last).
    received = arrivals(app)
    engine, stats = run(Target(url=f"{app.url}/delay/100"), LoadPlan(connections=1, qps=50, num_requests=5))
    at = [t for t in received if t >= engine.t0]
    assert len(at) == 5
    end = engine.t0 + round(stats.elapsed * 1e9)
    due = [engine.t0 + i * 20_000_000 for i in range(5)]
    answered = [t + 100_000_000 - EARLY_ANSWER_NS for t in at]
    next_arrival = [*at[1:], end]
    assert_within(stats.latency, [(answered[i] - due[i], next_arrival[i] - due[i]) for i in range(5)])
    # How late request i left: after response i-1 was in, before the app received it.
    lag_bounds = [(0, at[0] - due[0])] + [(answered[i - 1] - due[i], at[i] - due[i]) for i in range(1, 5)]
    assert_within(stats.lag, lag_bounds)
    assert stats.lag.get_max_value() / 1000 >= 4 * 80 - 1


def test_closed_loop_measures_from_the_actual_send(app: SampleApp) -> None:
    # Request i leaves when response i-1 is in (at t0 for the first) and is answered at least
    # 50 ms after the app received it; its response is in before request i+1 arrives. Measured
    # from the run's start or from the previous send, latencies would outgrow these bounds.
    received = arrivals(app)
    engine, stats = run(Target(url=f"{app.url}/delay/50"), LoadPlan(connections=1, qps=0, num_requests=4))
    at = [t for t in received if t >= engine.t0]
    assert len(at) == 4
    end = engine.t0 + round(stats.elapsed * 1e9)
    answered = [t + 50_000_000 - EARLY_ANSWER_NS for t in at]
    left_after = [engine.t0, *answered[:-1]]
    next_arrival = [*at[1:], end]
    bounds = [(50_000_000 - EARLY_ANSWER_NS, next_arrival[i] - left_after[i]) for i in range(4)]
    assert_within(stats.latency, bounds)


def assert_within(histogram: Any, bounds: list[tuple[int, int]]) -> None:
    """Each recorded value (µs) lies within one pair of ``bounds`` (ns), one value per pair.

    Compared in sorted order: if every value lies within its own pair, the k-th smallest value lies
    between the k-th smallest lower bound and the k-th smallest upper bound. A histogram keeps a
    value only to within its bucket, so the bucket's range must meet the bounds.
    """
    values: list[int] = []
    for item in histogram.get_recorded_iterator():
        values += [item.value_iterated_to] * item.count_at_value_iterated_to
    assert len(values) == len(bounds)
    lows = sorted(low for low, _ in bounds)
    highs = sorted(high for _, high in bounds)
    for value, low, high in zip(sorted(values), lows, highs, strict=True):
        # Recorded as whole µs (truncated, and at least 1 µs).
        assert value * 1000 >= low - 1000, (value, low, high)
        assert histogram.get_lowest_equivalent_value(value) * 1000 <= max(high, 1000), (value, low, high)


def test_error_statuses_are_counted_by_code(app: SampleApp) -> None:
    target = Target(url=f"{app.url}/status/503")
    with pytest.raises(InitialError, match="HTTP status 503"):
        load(target, LoadPlan(connections=2, qps=0, num_requests=10))
    stats = load(target, LoadPlan(connections=2, qps=0, num_requests=10, allow_initial_errors=True))
    assert stats.statuses == {503: 10}
    assert stats.error_count(target.is_error) == 10
    assert stats.error_count(Target(url=target.url, error_ranges=((500, 502),)).is_error) == 0


def test_a_dead_target_fails_the_initial_check(app: SampleApp) -> None:
    with pytest.raises(InitialError, match="connection refused"):
        load(Target(url=dead_url()), LoadPlan(connections=2, qps=0, num_requests=10))


@pytest.mark.parametrize("qps", [0, 200])
def test_a_dead_target_with_initial_errors_allowed_counts_every_request(qps: float) -> None:
    plan = LoadPlan(connections=3, qps=qps, num_requests=12, allow_initial_errors=True)
    stats = load(Target(url=dead_url()), plan)
    assert stats.requests == 12
    assert stats.errors == {"connection refused": 12}
    assert stats.latency.get_total_count() == 0


def test_timeouts_are_counted_and_do_not_stop_the_run(app: SampleApp) -> None:
    target = Target(url=f"{app.url}/delay/20000", timeout=0.1)
    with pytest.raises(InitialError, match="timeout"):
        load(target, LoadPlan(connections=1, qps=0, num_requests=2))
    stats = load(target, LoadPlan(connections=2, qps=0, num_requests=4, allow_initial_errors=True))
    assert stats.errors == {"timeout": 4}
    assert stats.elapsed < 20  # no request waited for the app's answer


def test_connection_close_responses_are_followed_by_new_connections(app: SampleApp) -> None:
    target = Target(url=f"{app.url}/get", headers=(("Connection", "close"),))
    stats = load(target, LoadPlan(connections=2, qps=0, num_requests=20))
    assert stats.statuses == {200: 20}
    assert stats.errors == {}


def test_payload_headers_and_method_reach_the_server(app: SampleApp) -> None:
    target = Target(
        url=f"{app.url}/anything/x?a=1",
        method="PUT",
        headers=(("X-Test", "yes"),),
        body=b'{"k": 1}',
        content_type="application/json",
    )
    stats = load(target, LoadPlan(connections=1, qps=0, num_requests=3))
    assert stats.statuses == {200: 3}
    method, path, headers, body = app.recent[-1]
    assert (method, path, body) == ("PUT", "/anything/x?a=1", b'{"k": 1}')
    assert headers["X-Test"] == "yes"
    assert headers["Content-Type"] == "application/json"
    assert headers["Content-Length"] == "8"


def test_head_responses_end_with_their_headers(app: SampleApp) -> None:
    stats = load(
        Target(url=f"{app.url}/bytes/5000", method="HEAD"), LoadPlan(connections=2, qps=0, num_requests=9)
    )
    assert stats.statuses == {200: 9}
    assert app.recent[-1][0] == "HEAD"


def test_large_bodies_are_read_whole(app: SampleApp) -> None:
    stats = load(Target(url=f"{app.url}/bytes/1000000"), LoadPlan(connections=2, qps=0, num_requests=6))
    assert stats.statuses == {200: 6}


def test_stop_ends_a_run_early(app: SampleApp) -> None:
    issued_at_stop: list[int] = []

    async def main() -> RunStats:
        engine = LoadEngine(Target(url=f"{app.url}/get"), LoadPlan(connections=2, qps=0, duration=30))

        async def stop_after_some_responses() -> None:
            while engine.completed < 10:
                await asyncio.sleep(0.001)
            issued_at_stop.append(engine.issued)
            engine.stop()

        stopper = asyncio.get_running_loop().create_task(stop_after_some_responses())
        try:
            return await asyncio.wait_for(engine.run(), RUN_LIMIT)
        finally:
            stopper.cancel()

    stats = run_async(main())
    assert stats.elapsed < 15  # far from the 30 s duration
    # No request after the stop; the ones in flight were answered and counted.
    assert stats.requests == stats.statuses[200] == issued_at_stop[0] >= 10
