"""How many unary calls the ``grpc`` task makes per client CPU-second, against a bare grpc.aio loop.

One command::

    python benchmarks/grpc_throughput.py            # 3 processes x 6 pairs of 10,000 calls

It compiles the test service (tests/grpc_fixtures) into a temporary folder and starts its server
on 127.0.0.1 (pinned to CPU 0 when the machine has two or more; the clients then run on CPU 1).
Each client process, fresh, alternates A B, B A, ... *paired runs* on the same server:

* **bare**: the cheapest grpc.aio client one can write: ``concurrency`` coroutines each awaiting
  ``channel.unary_unary(path)(request_bytes)`` in a loop; the request serialized once, no
  deadline, no timing, no counting; on uvloop, as the task runs; the clock starts once the
  channel is connected;
* **task**: the ``grpc`` task's whole ``run`` (server reflection, descriptors, data check,
  connecting, the load, metrics and histograms), same call, data, concurrency and connections.

CPU is ``time.process_time`` around each run (all threads of the process, gRPC's own included),
so the figure is calls per client CPU-second: the client's capacity whatever else the machine
does. Modules are imported before the clock starts, for both. The ratio task/bare is taken per
pair (the two runs of a pair are back to back in one process, so they see the same load) and
the median over all pairs is reported, with the ratio of the summed CPU as a cross-check.

Bidirectional streaming: the task on ``Bidi`` with ``concurrency`` streams of ``--messages``
messages each way, and a bare grpc.aio loop doing the same, paired the same way; reported in
messages per second (sent plus received) and per client CPU-second. ``uptime`` load is printed
before and after. ``--json`` prints the figures as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, ClassVar

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

UNARY = "/iter8.test.Echo/Unary"
BIDI = "/iter8.test.Echo/Bidi"
REQUEST = b"\n\x05bench"  # EchoRequest{name: "bench"}, the task's data below


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


# ---- the clients (run in a child process) -------------------------------------------------------


async def _bare_unary(host: str, total: int, concurrency: int, connections: int) -> dict[str, Any]:
    import grpc

    channels = [
        grpc.aio.insecure_channel(host, options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(connections)
    ]
    calls = [ch.unary_unary(UNARY) for ch in channels]
    for ch in channels:
        await ch.channel_ready()
    left = total

    async def worker(w: int) -> None:
        nonlocal left
        call = calls[w % connections]
        while left > 0:
            left -= 1
            await call(REQUEST)

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    for ch in channels:
        await ch.close()
    return {"calls": total, "cpu": cpu, "wall": wall}


async def _bare_bidi(host: str, streams: int, messages: int) -> dict[str, Any]:
    import grpc

    channel = grpc.aio.insecure_channel(host, options=[("grpc.use_local_subchannel_pool", 1)])
    bidi = channel.stream_stream(BIDI)
    await channel.channel_ready()
    received = 0

    async def one() -> None:
        nonlocal received
        call = bidi()

        async def send() -> None:
            for _ in range(messages):
                await call.write(REQUEST)
            await call.done_writing()

        sender = asyncio.get_running_loop().create_task(send())
        async for _ in call:
            received += 1
        await sender

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(one() for _ in range(streams)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    await channel.close()
    return {"messages": streams * messages + received, "cpu": cpu, "wall": wall}


async def _task(host: str, inputs: dict[str, Any]) -> dict[str, Any]:
    from kubectl_iter8.builtin_tasks.grpc.task import GrpcInputs, GrpcTask

    from kubectl_iter8.result import Result
    from kubectl_iter8.task import TaskContext

    validated = GrpcInputs.model_validate({"host": host, "data": {"name": "bench"}, **inputs})
    ctx = TaskContext(result=Result(), details={}, work_dir=Path(tempfile.gettempdir()))
    cpu, wall = time.process_time(), time.perf_counter()
    await GrpcTask(validated).run(ctx)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    record = ctx.details["endpoints"]["grpc"]
    return {
        "calls": record["requests"],
        "ok": record["statusCodes"].get("OK", 0),
        "messages": (record.get("messagesSent") or 0) + (record.get("messagesReceived") or 0),
        "cpu": cpu,
        "wall": wall,
    }


async def _overhead(calls: int, concurrency: int) -> dict[str, float]:
    """CPU per call of the engine's own loop and of a bare loop, around a call that does nothing.

    The difference is what the task adds to every call, measured without gRPC's cost and noise.
    """
    from kubectl_iter8.builtin_tasks.grpc.engine import CallEngine
    from kubectl_iter8.builtin_tasks.grpc.payload import Metadata
    from kubectl_iter8.builtin_tasks.grpc.plan import Plan

    async def nothing(request: bytes, timeout: float | None = None, metadata: Any = None) -> bytes:
        return b""

    class Channel:
        def unary_unary(self, path: str) -> Any:
            return nothing

    class Unary:
        kind = "unary"
        path = UNARY

    class Payload:
        static_items: ClassVar[list[bytes]] = [REQUEST]
        constant = REQUEST
        count = 1

    async def bare() -> float:
        left = calls

        async def worker() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                await nothing(REQUEST)

        cpu = time.process_time()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.process_time() - cpu

    async def engine() -> float:
        plan = Plan(concurrency=concurrency, total=calls, timeout=20.0)
        loop = CallEngine([Channel()], Unary(), Payload(), Metadata(None), plan)  # type: ignore[arg-type]
        cpu = time.process_time()
        await loop.run()
        return time.process_time() - cpu

    bare_cpu: list[float] = []
    engine_cpu: list[float] = []
    for i in range(6):
        if i % 2 == 0:
            bare_cpu.append(await bare())
            engine_cpu.append(await engine())
        else:
            engine_cpu.append(await engine())
            bare_cpu.append(await bare())
    return {
        "bareUs": statistics.median(bare_cpu) / calls * 1e6,
        "engineUs": statistics.median(engine_cpu) / calls * 1e6,
    }


async def _child_main(args: argparse.Namespace) -> dict[str, Any]:
    # Everything either client needs is imported before any clock starts.
    import grpc  # noqa: F401
    import kubectl_iter8.builtin_tasks.grpc.channel
    import kubectl_iter8.builtin_tasks.grpc.descriptors
    import kubectl_iter8.builtin_tasks.grpc.engine
    import kubectl_iter8.builtin_tasks.grpc.metrics
    import kubectl_iter8.builtin_tasks.grpc.task
    import kubectl_iter8.builtin_tasks.loadgen.progress  # noqa: F401
    from grpc_reflection.v1alpha import reflection_pb2  # noqa: F401

    unary = {
        "call": UNARY[1:],
        "total": args.total,
        "concurrency": args.concurrency,
        "connections": args.connections,
    }
    bidi = {
        "call": BIDI[1:],
        "total": args.concurrency,
        "concurrency": args.concurrency,
        "streamCallCount": args.messages,
    }
    await _task(args.host, {**unary, "total": 200})  # warm both paths once, unmeasured
    await _bare_unary(args.host, 200, args.concurrency, args.connections)
    pairs: list[dict[str, Any]] = []
    for i in range(args.pairs):
        pair: dict[str, Any] = {}
        for kind in ("bare", "task") if i % 2 == 0 else ("task", "bare"):
            if kind == "bare":
                pair[kind] = await _bare_unary(args.host, args.total, args.concurrency, args.connections)
            else:
                pair[kind] = await _task(args.host, unary)
        pairs.append(pair)
    streams: list[dict[str, Any]] = []
    for i in range(2):
        pair = {}
        for kind in ("bare", "task") if i % 2 == 0 else ("task", "bare"):
            if kind == "bare":
                pair[kind] = await _bare_bidi(args.host, args.concurrency, args.messages)
            else:
                pair[kind] = await _task(args.host, bidi)
        streams.append(pair)
    return {"unary": pairs, "bidi": streams, "overhead": await _overhead(200_000, args.concurrency)}


def _run_child(host: str, args: argparse.Namespace, cpu: int | None) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", "--host", host]
    for name in ("pairs", "total", "concurrency", "connections", "messages"):
        command += [f"--{name}", str(getattr(args, name))]
    if cpu is not None:
        command = ["taskset", "-c", str(cpu), *command]
    proc = subprocess.run(command, capture_output=True, text=True, check=False, timeout=1200)
    if proc.returncode != 0:
        raise SystemExit(f"client process failed:\n{proc.stderr}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


# ---- the driver -------------------------------------------------------------------------------


def _rate(run: dict[str, Any], what: str = "calls") -> float:
    return float(run[what]) / float(run["cpu"])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--processes", type=int, default=3, help="fresh client processes")
    parser.add_argument("--pairs", type=int, default=6, help="paired runs per process")
    parser.add_argument("--total", type=int, default=10_000, help="unary calls per run")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--messages", type=int, default=1_000, help="messages per bidi stream, each way")
    parser.add_argument("--no-pin", action="store_true", help="do not pin server and clients to CPUs")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--host", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        from kubectl_iter8.aio import run_async

        print(json.dumps(run_async(_child_main(args))))
        return

    import grpc_fixtures

    pin = not args.no_pin and len(os.sched_getaffinity(0)) >= 2
    load_before = _load()
    print(f"load before: {load_before}", file=sys.stderr)
    unary: list[dict[str, Any]] = []
    bidi: list[dict[str, Any]] = []
    overheads: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="iter8-grpc-bench-") as tmp:
        stubs = grpc_fixtures.compile_stubs(Path(tmp) / "stubs")
        with grpc_fixtures.running(stubs, reflection=True, cpu=0 if pin else None) as server:
            for p in range(args.processes):
                out = _run_child(server.host, args, 1 if pin else None)
                for pair in out["unary"]:
                    bare, task = pair["bare"], pair["task"]
                    if task["ok"] != args.total:
                        raise SystemExit(f"the task made {task['ok']} OK calls of {args.total}")
                    pair["ratio"] = _rate(task) / _rate(bare)
                    print(
                        f"process {p + 1}: bare {_rate(bare):,.0f} calls/cpu-s, task {_rate(task):,.0f} "
                        f"calls/cpu-s, ratio {pair['ratio']:.3f}",
                        file=sys.stderr,
                    )
                unary += out["unary"]
                bidi += out["bidi"]
                overheads.append(out["overhead"])
    load_after = _load()
    print(f"load after: {load_after}", file=sys.stderr)
    ratios = [pair["ratio"] for pair in unary]
    summed = (sum(p["task"]["calls"] for p in unary) / sum(p["task"]["cpu"] for p in unary)) / (
        sum(p["bare"]["calls"] for p in unary) / sum(p["bare"]["cpu"] for p in unary)
    )
    added = statistics.median(o["engineUs"] - o["bareUs"] for o in overheads)
    grpc_cost = 1e6 / statistics.median(_rate(p["bare"]) for p in unary)
    summary = {
        "command": "python benchmarks/grpc_throughput.py " + " ".join(sys.argv[1:]),
        "loadBefore": load_before,
        "loadAfter": load_after,
        "pinned": pin,
        "pairs": len(unary),
        "callsPerRun": args.total,
        "concurrency": args.concurrency,
        "connections": args.connections,
        "bareCallsPerCpuSecond": round(statistics.median(_rate(p["bare"]) for p in unary)),
        "taskCallsPerCpuSecond": round(statistics.median(_rate(p["task"]) for p in unary)),
        "ratioMedian": round(statistics.median(ratios), 3),
        "ratioOfSums": round(summed, 3),
        "ratioQuartiles": [round(q, 3) for q in statistics.quantiles(ratios, n=4)] if len(ratios) > 1 else [],
        "engineOverheadUsPerCall": round(added, 2),
        "bareGrpcCpuUsPerCall": round(grpc_cost, 1),
        "ratioExpectedFromOverhead": round(grpc_cost / (grpc_cost + added), 3),
        "bidiStreams": args.concurrency,
        "bidiMessagesPerStream": args.messages,
        "bidiTaskMessagesPerSecond": round(
            statistics.median(p["task"]["messages"] / p["task"]["wall"] for p in bidi)
        ),
        "bidiTaskMessagesPerCpuSecond": round(statistics.median(_rate(p["task"], "messages") for p in bidi)),
        "bidiBareMessagesPerSecond": round(
            statistics.median(p["bare"]["messages"] / p["bare"]["wall"] for p in bidi)
        ),
        "bidiBareMessagesPerCpuSecond": round(statistics.median(_rate(p["bare"], "messages") for p in bidi)),
    }
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    s = summary
    quartiles = ", ".join(f"{q:.3f}" for q in s["ratioQuartiles"])
    print(
        f"unary, {s['pairs']} pairs of {args.total:,} calls (concurrency {args.concurrency}): "
        f"task {s['taskCallsPerCpuSecond']:,} vs bare {s['bareCallsPerCpuSecond']:,} calls per "
        f"client CPU-second; ratio median {s['ratioMedian']:.3f} (quartiles {quartiles}; "
        f"ratio of sums {s['ratioOfSums']:.3f})"
    )
    print(
        f"bidi, {args.concurrency} streams x {args.messages:,} messages each way: task "
        f"{s['bidiTaskMessagesPerSecond']:,} messages/s ({s['bidiTaskMessagesPerCpuSecond']:,} per "
        f"client CPU-second), bare {s['bidiBareMessagesPerSecond']:,} messages/s "
        f"({s['bidiBareMessagesPerCpuSecond']:,} per CPU-second)"
    )
    print(
        f"overhead: the engine adds {s['engineOverheadUsPerCall']:.2f} us of CPU per call (no-op call, "
        f"{len(overheads)} processes, median) to grpc.aio's {s['bareGrpcCpuUsPerCall']:.1f} us: expected "
        f"ratio {s['ratioExpectedFromOverhead']:.3f}"
    )
    print(f"load (uptime) before: {load_before}, after: {load_after}; pinned: {pin}")


if __name__ == "__main__":
    main()
