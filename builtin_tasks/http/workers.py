"""Several worker processes sharing one load, merged exactly into one result.

One Python process drives about one core; ``workers: N`` (``0`` = one per core) splits the
connections, the request count and the rate across N processes. Each worker runs the same engine
on its own event loop; in the open loop worker *k* of *N* takes every N-th slot of the global
schedule (phase ``k / qps``), so together they send the uniform schedule one process would, and
their request counts add up to exactly ``numRequests``. The workers open their connections, then
wait at a barrier so the run starts at the same moment everywhere. When one worker's initial check
fails (see :meth:`.engine.LoadEngine.run`) the others stop too: the run is void. Each returns its
:class:`~.stats.RunStats` in wire form (encoded HDR histograms); adding the decoded histograms
gives exactly the histogram of the whole run.

Processes are started with the ``spawn`` method: safe whatever threads the parent runs, and the
same on every platform. The pool exists only while a run with ``workers != 1`` lasts; the
single-process path never touches this module.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import queue
import traceback
from collections.abc import Callable
from threading import BrokenBarrierError
from typing import Any

from .engine import InitialError, LoadPlan
from .stats import RunStats
from .target import Target

#: How long workers may take to start and open their connections, in seconds.
START_TIMEOUT = 60.0
#: Seconds between two updates of a worker's progress counters.
PROGRESS_PERIOD = 0.1


def cores() -> int:
    """The cores available to this process."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def max_workers() -> int:
    """The most worker processes a task may ask for: more than a few per core only adds overhead,
    and a typo (``workers: 100000``) would fork until the machine gives out."""
    return 4 * cores()


def worker_count(requested: int) -> int:
    """``0`` means one per core available to this process."""
    return requested if requested > 0 else cores()


def split(plan: LoadPlan, workers: int) -> list[LoadPlan]:
    """Share ``plan`` among at most ``workers`` processes (never more than connections or requests)."""
    n = max(1, min(workers, plan.connections, plan.num_requests or plan.connections))

    def share(total: int, k: int) -> int:
        return total // n + (1 if k < total % n else 0)

    return [
        dataclasses.replace(
            plan,
            connections=share(plan.connections, k),
            qps=plan.qps / n,
            num_requests=None if plan.num_requests is None else share(plan.num_requests, k),
            phase=plan.phase + (k / plan.qps if plan.qps > 0 else 0.0),
        )
        for k in range(n)
    ]


def run_parallel(
    target: Target,
    plan: LoadPlan,
    workers: int,
    on_counts: Callable[[Callable[[], tuple[int, int]]], None] | None = None,
) -> RunStats:
    """Run ``plan`` over ``workers`` processes; blocks until all are done (call it from a thread).

    :param on_counts: called once with a function returning ``(done, errors)`` over all workers,
        for a progress display.
    :raises InitialError: when a worker's initial check failed and initial errors are not allowed.
    """
    plans = split(plan, workers)
    context = multiprocessing.get_context("spawn")
    counters = context.Array("q", 2 * len(plans), lock=False)
    barrier = context.Barrier(len(plans))
    void = context.Event()
    results: multiprocessing.Queue[tuple[int, str, Any]] = context.Queue()
    if on_counts is not None:

        def counts() -> tuple[int, int]:
            values = counters[:]
            return sum(values[0::2]), sum(values[1::2])

        on_counts(counts)
    processes = [
        context.Process(
            target=worker_main,
            args=(k, target, part, barrier, void, results, counters),
            name=f"iter8-http-worker-{k}",
            daemon=True,
        )
        for k, part in enumerate(plans)
    ]
    for process in processes:
        process.start()
    budget = START_TIMEOUT + (plan.duration or 0.0) + (target.timeout if plan.num_requests else 0.0)
    outcomes: dict[int, tuple[str, Any]] = {}
    try:
        while len(outcomes) < len(processes):
            try:
                index, kind, payload = results.get(timeout=1.0)
            except queue.Empty:
                if any(p.exitcode not in (None, 0) for p in processes if p.pid is not None):
                    dead = next(p for p in processes if p.exitcode not in (None, 0))
                    raise RuntimeError(f"load worker {dead.name} died (exit code {dead.exitcode})") from None
                budget -= 1.0
                if budget < 0 and not any(p.is_alive() for p in processes):
                    raise RuntimeError("load workers ended without a result") from None
                continue
            outcomes[index] = (kind, payload)
    finally:
        for process in processes:
            process.join(5)
            if process.is_alive():
                process.kill()
                process.join()
            process.close()
        results.close()
        results.join_thread()
    for kind, payload in outcomes.values():
        if kind == "initial":
            raise InitialError(payload)
    for kind, payload in outcomes.values():
        if kind == "error":
            raise RuntimeError(f"load worker failed: {payload}")
    merged: RunStats | None = None
    for _, (kind, payload) in sorted(outcomes.items()):
        if kind != "ok":
            raise RuntimeError("a load worker stopped before the run started")
        stats = RunStats.from_wire(payload)
        if merged is None:
            merged = stats
        else:
            merged.merge(stats)
    assert merged is not None
    return merged


def worker_main(
    index: int,
    target: Target,
    plan: LoadPlan,
    barrier: Any,
    void: Any,
    results: multiprocessing.Queue[tuple[int, str, Any]],
    counters: Any,
) -> None:
    """The body of one worker process: run the engine, report through ``results``.

    ``void`` is set by a worker whose initial check failed; the others then stop early instead of
    running a load (perhaps a long ``duration``) whose result will be thrown away.
    """
    import asyncio

    from kubectl_iter8.aio import run_async

    from .engine import LoadEngine

    async def main() -> RunStats:
        engine = LoadEngine(target, plan)

        async def publish() -> None:
            while True:
                counters[2 * index] = engine.completed
                counters[2 * index + 1] = engine.errors_so_far()
                if void.is_set():
                    engine.stop()
                await asyncio.sleep(PROGRESS_PERIOD)

        async def wait_for_others() -> None:
            await asyncio.to_thread(barrier.wait, START_TIMEOUT)

        reporter = asyncio.get_running_loop().create_task(publish())
        try:
            return await engine.run(before_start=wait_for_others)
        finally:
            reporter.cancel()
            counters[2 * index] = engine.completed
            counters[2 * index + 1] = engine.errors_so_far()

    try:
        stats = run_async(main())
    except InitialError as exc:
        void.set()
        barrier.abort()
        results.put((index, "initial", str(exc)))
    except BrokenBarrierError:
        results.put((index, "aborted", None))
    except BaseException:
        barrier.abort()
        results.put((index, "error", traceback.format_exc(limit=5)))
    else:
        results.put((index, "ok", stats.to_wire()))
    results.close()
    results.join_thread()
