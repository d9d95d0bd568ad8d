"""Several processes sharing one load; HDR histograms that merge exactly across processes."""

from __future__ import annotations

import json
import random
import socket

import pytest
from kubectl_iter8.builtin_tasks.http.engine import InitialError, LoadPlan
from kubectl_iter8.builtin_tasks.http.stats import RunStats, record_all
from kubectl_iter8.builtin_tasks.http.target import Target
from kubectl_iter8.builtin_tasks.http.workers import run_parallel, split, worker_count

from kubectl_iter8.sample_app import running


def test_split_shares_connections_requests_and_rate() -> None:
    parts = split(LoadPlan(connections=5, qps=90, num_requests=101), 3)
    assert [p.connections for p in parts] == [2, 2, 1]
    assert [p.num_requests for p in parts] == [34, 34, 33]
    assert [p.qps for p in parts] == [30, 30, 30]
    # Worker k takes every third slot of the 90/s schedule, starting at slot k.
    assert [p.phase for p in parts] == pytest.approx([0, 1 / 90, 2 / 90])


def test_split_never_makes_idle_workers() -> None:
    assert len(split(LoadPlan(connections=2, qps=0, num_requests=100), 8)) == 2
    assert len(split(LoadPlan(connections=8, qps=0, num_requests=3), 8)) == 3
    assert worker_count(0) >= 1
    assert worker_count(3) == 3


def test_histograms_merge_exactly_through_the_wire_format() -> None:
    rng = random.Random(7)
    values = [int(rng.lognormvariate(6, 1.2)) + 1 for _ in range(20_000)]
    whole = RunStats()
    record_all(whole.latency, values)
    record_all(whole.error_latency, values[::7])
    parts = [RunStats(statuses={200: 1}) for _ in range(3)]
    for i, part in enumerate(parts):
        record_all(part.latency, values[i::3])
        record_all(part.error_latency, [v for j, v in enumerate(values) if j % 3 == i and j % 7 == 0])
    merged = RunStats.from_wire(json.loads(json.dumps(parts[0].to_wire())))
    for part in parts[1:]:
        merged.merge(RunStats.from_wire(json.loads(json.dumps(part.to_wire()))))
    assert merged.latency.get_total_count() == 20_000
    assert merged.error_latency.get_total_count() == len(values[::7])
    assert merged.statuses == {200: 3}
    for histogram in ("latency", "error_latency"):
        got, want = getattr(merged, histogram), getattr(whole, histogram)
        for percentile in (1, 50, 90, 99, 99.9, 100):
            assert got.get_value_at_percentile(percentile) == want.get_value_at_percentile(percentile)
        assert got.get_mean_value() == want.get_mean_value()
    # A run that timed no failure sends no error histogram, and reads back as an empty one.
    assert "errorLatencyHistogram" not in RunStats().to_wire()
    assert RunStats.from_wire(RunStats().to_wire()).error_latency.get_total_count() == 0


def test_two_processes_send_exactly_num_requests_and_merge() -> None:
    with running() as app:
        stats = run_parallel(
            Target(url=f"{app.url}/get"), LoadPlan(connections=4, qps=0, num_requests=301), 2
        )
        assert app.requests == 301  # nothing unrecorded
    assert stats.workers == 2
    assert stats.connections == 4
    assert stats.statuses == {200: 301}
    assert stats.latency.get_total_count() == 301


def test_processes_merge_the_durations_of_failed_requests() -> None:
    # Both workers' errors: 404s (errorRanges) and, on a dropped port, refused connections.
    with running() as app:
        target = Target(url=f"{app.url}/status/404", error_ranges=((400, 499),))
        plan = LoadPlan(connections=2, qps=0, num_requests=41, allow_initial_errors=True)
        stats = run_parallel(target, plan, 2)
    assert stats.statuses == {404: 41}
    assert stats.error_latency.get_total_count() == 41 == stats.error_count(target.is_error)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = Target(url=f"http://127.0.0.1:{sock.getsockname()[1]}/get")
    plan = LoadPlan(connections=2, qps=0, num_requests=9, allow_initial_errors=True)
    stats = run_parallel(dead, plan, 2)
    assert stats.errors == {"connection refused": 9}
    assert stats.error_latency.get_total_count() == 9


def test_processes_share_one_open_loop_schedule() -> None:
    with running() as app:
        plan = LoadPlan(connections=2, qps=100, duration=0.5)
        stats = run_parallel(Target(url=f"{app.url}/get"), plan, 2)
    assert stats.requests == 50  # two workers at 50/s, phases 0 and 10 ms
    assert stats.target_qps == 100
    assert stats.lag.get_total_count() == 50


def test_a_failed_initial_check_in_a_worker_fails_the_run() -> None:
    with running() as app, pytest.raises(InitialError, match="HTTP status 500"):
        run_parallel(Target(url=f"{app.url}/status/500"), LoadPlan(connections=2, qps=0, num_requests=10), 2)
