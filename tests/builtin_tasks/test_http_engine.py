"""The load engine against the real sample app on 127.0.0.1: both load models, counts, errors."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from kubectl_iter8.builtin_tasks.http.engine import InitialError, LoadEngine, LoadPlan
from kubectl_iter8.builtin_tasks.http.stats import RunStats
from kubectl_iter8.builtin_tasks.http.target import Target

from kubectl_iter8.aio import run_async
from kubectl_iter8.sample_app import SampleApp, running


@pytest.fixture
def app() -> Iterator[SampleApp]:
    with running(keep_requests=50) as server:
        yield server


def load(target: Target, plan: LoadPlan) -> RunStats:
    async def main() -> RunStats:
        return await LoadEngine(target, plan).run()

    return run_async(main())


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
    assert app.requests == 257 + 4  # plus one unrecorded pre-flight request per connection


def test_closed_loop_by_duration_runs_for_that_long(app: SampleApp) -> None:
    stats = load(Target(url=f"{app.url}/get"), LoadPlan(connections=2, qps=0, duration=0.3))
    assert 0.3 <= stats.elapsed < 0.6
    assert stats.requests > 100
    assert stats.requests == stats.statuses[200] == app.requests - 2


def test_open_loop_keeps_the_rate(app: SampleApp) -> None:
    stats = load(Target(url=f"{app.url}/get"), LoadPlan(connections=2, qps=200, num_requests=60))
    assert stats.requests == 60
    # The last request is due at 59/200 s; the run ends when it is answered.
    assert 0.29 <= stats.elapsed < 0.45
    assert 140 < stats.achieved_qps <= 205
    assert stats.lag.get_total_count() == 60


def test_open_loop_by_duration_sends_the_requests_due_in_it(app: SampleApp) -> None:
    stats = load(Target(url=f"{app.url}/get"), LoadPlan(connections=2, qps=100, duration=0.25))
    assert stats.requests == 25  # due at 0, 10, ..., 240 ms


def test_open_loop_measures_from_the_intended_send_time(app: SampleApp) -> None:
    # One connection, 100 ms responses, 50 requests/s: request i waits for i-1, so the queue
    # grows by 80 ms per request. Measured from the actual send, every latency would be ~100 ms.
    stats = load(Target(url=f"{app.url}/delay/100"), LoadPlan(connections=1, qps=50, num_requests=5))
    latencies = sorted(v for v in _values(stats))
    assert latencies[0] == pytest.approx(100, abs=10)
    assert latencies[-1] == pytest.approx(100 + 4 * 80, abs=20)
    assert stats.lag.get_max_value() / 1000 == pytest.approx(4 * 80, abs=20)


def test_closed_loop_measures_from_the_actual_send(app: SampleApp) -> None:
    stats = load(Target(url=f"{app.url}/delay/50"), LoadPlan(connections=1, qps=0, num_requests=4))
    assert all(v == pytest.approx(50, abs=6) for v in _values(stats))


def _values(stats: RunStats) -> list[float]:
    out: list[float] = []
    for item in stats.latency.get_recorded_iterator():
        out += [item.value_iterated_to / 1000] * item.count_at_value_iterated_to
    return out


def test_error_statuses_are_counted_by_code(app: SampleApp) -> None:
    target = Target(url=f"{app.url}/status/503")
    with pytest.raises(InitialError, match="HTTP status 503"):
        load(target, LoadPlan(connections=2, qps=0, num_requests=10))
    stats = load(target, LoadPlan(connections=2, qps=0, num_requests=10, allow_initial_errors=True))
    assert stats.statuses == {503: 10}
    assert stats.error_count(target.is_error) == 10
    assert stats.error_count(Target(url=target.url, error_ranges=((500, 502),)).is_error) == 0


def test_a_dead_target_fails_the_pre_flight(app: SampleApp) -> None:
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
    target = Target(url=f"{app.url}/delay/1000", timeout=0.1)
    with pytest.raises(InitialError, match="timeout"):
        load(target, LoadPlan(connections=1, qps=0, num_requests=2))
    stats = load(target, LoadPlan(connections=2, qps=0, num_requests=4, allow_initial_errors=True))
    assert stats.errors == {"timeout": 4}
    assert stats.elapsed < 0.9


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
    async def main() -> RunStats:
        import asyncio

        engine = LoadEngine(Target(url=f"{app.url}/get"), LoadPlan(connections=2, qps=0, duration=30))
        asyncio.get_running_loop().call_later(0.2, engine.stop)
        return await engine.run()

    stats = run_async(main())
    assert stats.elapsed < 2
    assert stats.requests == stats.statuses[200] > 0
