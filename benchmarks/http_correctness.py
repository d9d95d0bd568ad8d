"""Correctness of the http task's latencies: a known delay, a periodic stall, and wrk2's rules.

One command::

    python benchmarks/http_correctness.py

The target is the bundled sample app in its own process (pinned to CPU 0 when there are two
cores), answering ``/delay/20`` in 20 ms and, in the stall scenario, freezing every response for
200 ms every 2 s (``stall_every``/``stall_for``). The engine runs in this process (CPU 1).

Checks:

1. **fixed delay, open loop** (100/s, exactly 500 requests): p50 within 5% of 20 ms; the run
   reports exactly 500 requests, all answered 200.
2. **stall, open loop** (200/s for 10 s, enough connections): latency counted from the intended
   send time, as wrk2 does. The expected distribution follows from the schedule alone: a request
   due at ``t`` is answered at ``t + 20 ms``, or at the end of the stall window that time falls
   into. This script computes that distribution (averaged over the unknown phase between client
   schedule and server stalls) and checks p50, p95 and p99 within 5% of it.
3. **stall, closed loop** (4 connections, max speed): for contrast, the same stall measured from
   the actual send. The stall shrinks to a handful of slow requests (coordinated omission); the
   script prints it and checks that its p95 stays far below the true one.

Exit status 0 when every check passes. Only loopback is used.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time

from kubectl_iter8.builtin_tasks.http.engine import LoadEngine, LoadPlan
from kubectl_iter8.builtin_tasks.http.stats import RunStats
from kubectl_iter8.builtin_tasks.http.target import Target

from kubectl_iter8.aio import run_async

DELAY_MS = 20.0
STALL_EVERY = 2.0
STALL_FOR = 0.2
TOLERANCE = 0.05


def serve(port: int, stall_every: float, stall_for: float) -> None:
    """Child process: the sample app until killed."""
    import asyncio

    from kubectl_iter8.sample_app import SampleApp

    async def main() -> None:
        app = SampleApp("127.0.0.1", port, stall_every=stall_every, stall_for=stall_for)
        await app.start()
        print("ready", flush=True)
        await asyncio.Event().wait()

    run_async(main())


def start_server(stall: bool) -> tuple[subprocess.Popen[str], str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    argv = [sys.executable, os.path.abspath(__file__), "--serve", str(port)]
    argv += [str(STALL_EVERY), str(STALL_FOR)] if stall else ["0", "0"]
    if (os.cpu_count() or 1) >= 2:
        argv = ["taskset", "-c", "0", *argv]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        proc.kill()
        sys.exit("the sample app did not start")
    return proc, f"http://127.0.0.1:{port}/delay/{DELAY_MS:g}"


def expected_percentiles(
    qps: float, duration: float, percentiles: list[float], phases: int = 20
) -> dict[float, float]:
    """Latencies (ms) by wrk2's rules for the stall scenario, averaged over schedule phases."""
    out: dict[float, list[float]] = {p: [] for p in percentiles}
    n = round(qps * duration)
    for k in range(phases):
        offset = k * STALL_EVERY / phases
        latencies = []
        for i in range(n):
            due = offset + i / qps
            done = due + DELAY_MS / 1000
            into = done % STALL_EVERY
            if into < STALL_FOR:
                done += STALL_FOR - into
            latencies.append((done - due) * 1000)
        latencies.sort()
        for p in percentiles:
            out[p].append(latencies[min(n - 1, max(0, round(p / 100 * n + 0.5) - 1))])
    return {p: statistics.mean(values) for p, values in out.items()}


def run_engine(url: str, plan: LoadPlan) -> RunStats:
    async def main() -> RunStats:
        return await LoadEngine(Target(url=url), plan).run()

    return run_async(main())


def pct(stats: RunStats, p: float) -> float:
    return float(stats.latency.get_value_at_percentile(p)) / 1000


class Checks:
    def __init__(self) -> None:
        self.failed = 0

    def check(self, what: str, ok: bool, detail: str) -> None:
        self.failed += not ok
        print(f"  [{'PASS' if ok else 'FAIL'}] {what}: {detail}")

    def near(self, what: str, measured: float, expected: float, tolerance: float = TOLERANCE) -> None:
        error = abs(measured - expected) / expected
        self.check(
            what,
            error <= tolerance,
            f"{measured:.2f} ms vs {expected:.2f} ms ({error:+.1%}, limit {tolerance:.0%})",
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument(
        "--stall-seconds", type=float, default=10.0, help="length of the stall runs (default 10)"
    )
    args = parser.parse_args()
    if args.serve:
        serve(int(args.serve[0]), float(args.serve[1]), float(args.serve[2]))
        return
    if (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(0, {1})
    checks = Checks()

    print(f"1. fixed delay {DELAY_MS:g} ms, open loop 100/s, numRequests 500, 8 connections")
    server, url = start_server(stall=False)
    try:
        stats = run_engine(url, LoadPlan(qps=100, num_requests=500, connections=8))
    finally:
        server.kill()
        server.wait()
    exact = stats.requests == 500 and stats.statuses == {200: 500}
    checks.check("exact count", exact, f"{stats.requests} requests, status codes {stats.statuses}")
    checks.near("p50 vs the true delay", pct(stats, 50), DELAY_MS)
    print(f"     p90 {pct(stats, 90):.2f}  p99 {pct(stats, 99):.2f}  max {pct(stats, 100):.2f} ms")
    lag_p50, lag_max = stats.lag.get_value_at_percentile(50) / 1000, stats.lag.get_max_value() / 1000
    print(f"     client schedule lag p50 {lag_p50:.2f}  max {lag_max:.2f} ms")

    duration = args.stall_seconds
    stall = f"stall {STALL_FOR * 1000:g} ms every {STALL_EVERY:g} s"
    print(f"2. {stall}, open loop 200/s for {duration:g}s, 64 connections")
    server, url = start_server(stall=True)
    try:
        time.sleep(0.05)
        open_stats = run_engine(url, LoadPlan(qps=200, duration=duration, connections=64))
        print(f"3. the same stall, closed loop, 4 connections, {duration:g}s")
        closed_stats = run_engine(url, LoadPlan(qps=0, duration=duration, connections=4))
    finally:
        server.kill()
        server.wait()
    expected = expected_percentiles(200, duration, [50, 90, 95, 99, 99.9])
    row = "  ".join(f"p{p:g} {v:.1f}" for p, v in expected.items())
    print(f"   {'expected by wrk2 rules:':26s} {row} ms")
    for name, measured in (("open", open_stats), ("closed", closed_stats)):
        row = "  ".join(f"p{p:g} {pct(measured, p):.1f}" for p in expected)
        print(f"   {name + ' loop measured:':26s} {row} ms")
    count = open_stats.requests
    checks.check("open-loop count", count == round(200 * duration), f"{count} requests")
    for p in (50, 95, 99):
        checks.near(f"open loop p{p:g}", pct(open_stats, p), expected[p])
    closed_p95 = pct(closed_stats, 95)
    checks.check(
        "the closed loop hides the stall (coordinated omission)",
        closed_p95 < expected[95] / 2,
        f"closed-loop p95 {closed_p95:.1f} ms, true {expected[95]:.1f}, open loop {pct(open_stats, 95):.1f}",
    )
    lag_ms = open_stats.lag.get_max_value() / 1000
    print(f"   open loop: achieved {open_stats.achieved_qps:.1f}/s, schedule lag max {lag_ms:.1f} ms")
    print("all checks passed" if not checks.failed else f"{checks.failed} check(s) failed")
    sys.exit(1 if checks.failed else 0)


if __name__ == "__main__":
    main()
