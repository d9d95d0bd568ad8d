"""The A/B/n service: assignments per second in process, and Lookup over loopback gRPC against a bare
grpc.aio echo server measured in the same run (the Python ceiling).

One command::

    python benchmarks/abn.py                 # 5 rounds
    python benchmarks/abn.py --rounds 9 --json

Why an echo server: what one Python process can answer over gRPC is bounded by the gRPC stack
itself (its C core, Cython layer and event loop), not by the service's logic, and that bound
moves with the machine and its load. So the figure of merit is the ratio to the cheapest grpc.aio
server one can write, with the same messages, measured in the same round.

* **in process** (a child process pinned to CPU 1): ``assign()`` over ``--users`` distinct users
  for 2 and 4 versions, and ``AbnService.lookup`` (application name parsing, ``versions_for``,
  ``assign``, counters, user recording) for 2 versions; the median over ``--rounds`` runs.
* **Lookup over gRPC**: the A/B/n server (``serve()`` with a static ``versions_for`` and a SQLite
  store in a temporary folder) and the echo server (a grpc.aio server on uvloop whose Lookup
  handler returns a constant ``VersionRecommendation``; same (de)serialization) run as separate
  processes, both pinned to CPU 0. Each round a fresh client process pinned to CPU 1 (grpc.aio on
  uvloop, one channel, ``--concurrency`` calls in flight) warms both servers up, then makes four
  runs of ``--calls`` Lookups, each with users not seen before, in the order A/B/n, echo, echo,
  A/B/n in even rounds and echo, A/B/n, A/B/n, echo in odd ones, so that a drift of the machine's
  speed within a round, or a first run slower than the next, weighs on both alike. Per server and
  round (its two runs together): calls per second (wall), p50 and p99 latency (per call, as the
  client sees it), and the server's CPU per call (from ``/proc/<pid>/stat``, 10 ms resolution).
  The ratio A/B/n / echo of calls per second is taken per round and the median over rounds is the
  result. After each run the client waits 1.5 s, so that the A/B/n server's background recording
  of the run's users (about once a second) does not land in the next run.
* **WriteMetric** (information, no goal): ``--writes`` calls per round to the A/B/n server, each
  committed to SQLite (``synchronous=FULL``) before the answer.

Goals (PASS/FAIL): median ratio >= 0.8, and >= 200,000 in-process assignments per second for both
2 and 4 versions. ``uptime`` load is printed before and after; ``--json`` prints the figures as
JSON.
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
from typing import Any

APP = "default/backend"
VERSIONS_2 = ((0, 1.0), (1, 3.0))
VERSIONS_4 = ((0, 1.0), (1, 1.0), (2, 2.0), (3, 4.0))
MIN_RATIO = 0.8
MIN_ASSIGNMENTS = 200_000
SETTLE = 1.5  # seconds after each run: more than the service's flush interval of pending users


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _cpu_ticks(pid: int) -> int:
    """User + system CPU of process ``pid`` (every thread), in clock ticks."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of proc(5))


# ---- the servers (each a child process) ---------------------------------------------------------


def _serve_abn(db: str) -> None:
    from kubectl_iter8.controller.abn.service import serve
    from kubectl_iter8.controller.abn.sqlite_store import SqliteStore

    versions = {APP: list(VERSIONS_2)}
    store = SqliteStore(db)
    served = serve(0, versions.get, store, host="127.0.0.1")
    print(f"PORT {served.port}", flush=True)
    sys.stdin.read()  # until the driver closes it
    served.stop(None)
    store.close()


def _serve_echo() -> None:
    import grpc

    from kubectl_iter8.aio import run_async
    from kubectl_iter8.sdk import LOOKUP, SERVICE, protocol

    p = protocol()
    answer = p.VersionRecommendation(versionNumber=1)

    async def lookup(request: Any, context: Any) -> Any:
        return answer

    def serialize(message: Any) -> bytes:
        return bytes(message.SerializeToString())

    async def main() -> None:
        server = grpc.aio.server()
        server.add_generic_rpc_handlers(
            [
                grpc.method_handlers_generic_handler(
                    SERVICE,
                    {
                        LOOKUP.rsplit("/", 1)[1]: grpc.unary_unary_rpc_method_handler(
                            lookup,
                            request_deserializer=p.Application.FromString,
                            response_serializer=serialize,
                        )
                    },
                )
            ]
        )
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        print(f"PORT {port}", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        await server.stop(None)

    run_async(main())


class _Server:
    def __init__(self, kind: str, cpu: int | None, db: str = "") -> None:
        command = [sys.executable, __file__, "--serve", kind, "--db", db]
        if cpu is not None:
            command = ["taskset", "-c", str(cpu), *command]  # taskset execs: the pid is Python's
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("PORT "):
            raise SystemExit(f"the {kind} server did not start (exit code {self.process.wait(30)})")
        self.port = int(line.split()[1])

    def stop(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# ---- in process (a child process) ---------------------------------------------------------------


def _in_process(users: int, rounds: int) -> dict[str, Any]:
    from kubectl_iter8.controller.abn.assignment import assign
    from kubectl_iter8.controller.abn.service import AbnService

    class NullStore:
        def write(self, *args: Any, **kwargs: Any) -> str:
            return ""

        def add_users(self, *args: Any) -> None:
            pass

    names = [f"user-{i}" for i in range(users)]
    versions = {APP: list(VERSIONS_2)}
    service = AbnService(versions.get, NullStore())  # type: ignore[arg-type]
    service.max_pending = users  # every user recorded, none dropped: the full cost is timed

    def assign_run(versions: tuple[tuple[int, float], ...]) -> float:
        pairs = list(versions)  # a list, as versions_for answers: assign() makes the tuple it caches by
        t = time.perf_counter()
        for user in names:
            assign(user, pairs, application=APP)
        return users / (time.perf_counter() - t)

    def lookup_run() -> float:
        lookup = service.lookup
        t = time.perf_counter()
        for user in names:
            lookup(APP, user)
        rate = users / (time.perf_counter() - t)
        service.flush_users()  # outside the clock, as the server's background thread does
        return rate

    runs: dict[str, list[float]] = {"assign2": [], "assign4": [], "lookup": []}
    assign_run(VERSIONS_2)  # warm caches once, unmeasured
    lookup_run()
    for _ in range(rounds):
        runs["assign2"].append(assign_run(VERSIONS_2))
        runs["assign4"].append(assign_run(VERSIONS_4))
        runs["lookup"].append(lookup_run())
    return runs


# ---- the gRPC client (a child process per round) ------------------------------------------------


async def _client(args: argparse.Namespace) -> dict[str, Any]:
    import grpc

    from kubectl_iter8.sdk import LOOKUP, WRITE_METRIC, protocol

    p = protocol()
    base = args.round * args.calls * 4  # distinct users in every run of every round
    requests = {
        (kind, half): [
            p.Application(name=APP, user=f"user-{base + offset + i}").SerializeToString()
            for i in range(args.calls)
        ]
        for kind, half, offset in (
            ("abn", 0, 0),
            ("abn", 1, args.calls),
            ("echo", 0, 2 * args.calls),
            ("echo", 1, 3 * args.calls),
        )
    }
    writes = [
        p.MetricValue(
            name="sales", value=f"{i % 100}.5", application=APP, user=f"user-{i}"
        ).SerializeToString()
        for i in range(args.writes)
    ]
    warm = [p.Application(name=APP, user=f"warm-{i}").SerializeToString() for i in range(500)]
    ports = {"abn": args.abn_port, "echo": args.echo_port}
    pids = {"abn": args.abn_pid, "echo": args.echo_pid}
    channels = {k: grpc.aio.insecure_channel(f"127.0.0.1:{port}") for k, port in ports.items()}
    lookups: dict[str, Any] = {
        k: ch.unary_unary(LOOKUP, response_deserializer=p.VersionRecommendation.FromString)
        for k, ch in channels.items()
    }
    for ch in channels.values():
        await ch.channel_ready()

    async def run(call: Any, payloads: list[bytes], pid: int) -> dict[str, Any]:
        latencies: list[int] = []
        index = 0

        async def worker() -> None:
            nonlocal index
            clock = time.perf_counter_ns
            while index < len(payloads):
                payload = payloads[index]
                index += 1
                start = clock()
                await call(payload, timeout=30)
                latencies.append(clock() - start)

        ticks, wall = _cpu_ticks(pid), time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
        wall, ticks = time.perf_counter() - wall, _cpu_ticks(pid) - ticks
        return {"latencies": latencies, "wall": wall, "ticks": ticks}

    def figures(*runs: dict[str, Any]) -> dict[str, Any]:
        latencies = sorted(ns for r in runs for ns in r["latencies"])
        n, wall = len(latencies), sum(r["wall"] for r in runs)
        return {
            "calls": n,
            "wall": wall,
            "perSecond": n / wall,
            "runsPerSecond": [len(r["latencies"]) / r["wall"] for r in runs],
            "p50Ms": latencies[n // 2] / 1e6,
            "p99Ms": latencies[min(n - 1, (n * 99) // 100)] / 1e6,
            "serverCpuUs": sum(r["ticks"] for r in runs) / os.sysconf("SC_CLK_TCK") / n * 1e6,
        }

    for kind in ("abn", "echo"):  # warm both, unmeasured
        await run(lookups[kind], warm, pids[kind])
    # The A/B/n server records the users of a run about a second later, on the CPU both servers
    # share: waiting after each run keeps that work out of the next run, whichever server it is.
    await asyncio.sleep(SETTLE)
    runs: dict[str, list[dict[str, Any]]] = {"abn": [], "echo": []}
    # A B B A (or B A A B): a drift in the machine's speed during the round, or a first run
    # slower than the next, weighs on both servers alike.
    first, second = ("abn", "echo") if args.round % 2 == 0 else ("echo", "abn")
    for kind in (first, second, second, first):
        half = len(runs[kind])
        runs[kind].append(await run(lookups[kind], requests[kind, half], pids[kind]))
        await asyncio.sleep(SETTLE)
    out: dict[str, Any] = {kind: figures(*done) for kind, done in runs.items()}
    if args.writes:
        write: Any = channels["abn"].unary_unary(WRITE_METRIC)
        out["write"] = figures(await run(write, writes, pids["abn"]))
    for ch in channels.values():
        await ch.close()
    return out


def _child(command: list[str], cpu: int | None) -> Any:
    command = [sys.executable, __file__, *command]
    if cpu is not None:
        command = ["taskset", "-c", str(cpu), *command]
    proc = subprocess.run(command, capture_output=True, text=True, check=False, timeout=1800)
    if proc.returncode != 0:
        raise SystemExit(f"child process failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---- the driver ---------------------------------------------------------------------------------


def _percentile_row(name: str, runs: list[dict[str, Any]]) -> list[str]:
    def med(key: str) -> float:
        return float(statistics.median(r[key] for r in runs))

    return [
        name,
        f"{med('perSecond'):,.0f}",
        f"{med('p50Ms'):.2f}",
        f"{med('p99Ms'):.2f}",
        f"{med('serverCpuUs'):.0f}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=20_000, help="Lookup calls per run")
    parser.add_argument("--concurrency", type=int, default=16, help="calls in flight")
    parser.add_argument("--writes", type=int, default=2_000, help="WriteMetric calls per round (0: none)")
    parser.add_argument("--users", type=int, default=200_000, help="distinct users per in-process run")
    parser.add_argument("--no-pin", action="store_true", help="do not pin servers and clients to CPUs")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--serve", choices=["abn", "echo"], help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--in-process", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--round", type=int, default=0, help=argparse.SUPPRESS)
    for name in ("abn-port", "echo-port", "abn-pid", "echo-pid"):
        parser.add_argument(f"--{name}", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve == "abn":
        _serve_abn(args.db)
        return
    if args.serve == "echo":
        _serve_echo()
        return
    if args.in_process:
        print(json.dumps(_in_process(args.users, args.rounds)))
        return
    if args.client:
        from kubectl_iter8.aio import run_async

        print(json.dumps(run_async(_client(args))))
        return

    pin = not args.no_pin and len(os.sched_getaffinity(0)) >= 2
    server_cpu, client_cpu = (0, 1) if pin else (None, None)
    load_before = _load()
    print(f"load before: {load_before}", file=sys.stderr)
    inproc = _child(["--in-process", "--users", str(args.users), "--rounds", str(args.rounds)], client_cpu)
    rounds: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="iter8-abn-bench-") as tmp:
        abn = _Server("abn", server_cpu, str(Path(tmp) / "abn.db"))
        echo = _Server("echo", server_cpu)
        try:
            for r in range(args.rounds):
                command = ["--client", "--round", str(r)]
                for name in ("calls", "concurrency", "writes"):
                    command += [f"--{name}", str(getattr(args, name))]
                command += ["--abn-port", str(abn.port), "--echo-port", str(echo.port)]
                command += ["--abn-pid", str(abn.process.pid), "--echo-pid", str(echo.process.pid)]
                out = _child(command, client_cpu)
                out["ratio"] = out["abn"]["perSecond"] / out["echo"]["perSecond"]
                out["cpuRatio"] = out["echo"]["serverCpuUs"] / out["abn"]["serverCpuUs"]
                runs = {k: "+".join(f"{x:,.0f}" for x in out[k]["runsPerSecond"]) for k in ("abn", "echo")}
                print(
                    f"round {r + 1} ({'A/B/n echo echo A/B/n' if r % 2 == 0 else 'echo A/B/n A/B/n echo'}): "
                    f"A/B/n {out['abn']['perSecond']:,.0f}/s ({runs['abn']}), "
                    f"echo {out['echo']['perSecond']:,.0f}/s ({runs['echo']}), "
                    f"ratio {out['ratio']:.3f}; server CPU per call {out['abn']['serverCpuUs']:.0f} vs "
                    f"{out['echo']['serverCpuUs']:.0f} us"
                    + (f"; WriteMetric {out['write']['perSecond']:,.0f}/s" if "write" in out else ""),
                    file=sys.stderr,
                )
                rounds.append(out)
        finally:
            abn.stop()
            echo.stop()
    load_after = _load()
    print(f"load after: {load_after}", file=sys.stderr)

    ratios = [r["ratio"] for r in rounds]
    ratio = statistics.median(ratios)
    assign2 = statistics.median(inproc["assign2"])
    assign4 = statistics.median(inproc["assign4"])
    summary: dict[str, Any] = {
        "command": "python benchmarks/abn.py " + " ".join(sys.argv[1:]),
        "loadBefore": load_before,
        "loadAfter": load_after,
        "pinned": pin,
        "rounds": args.rounds,
        "callsPerRun": args.calls,
        "concurrency": args.concurrency,
        "inProcess": {
            "assignPerSecond2Versions": round(assign2),
            "assignPerSecond4Versions": round(assign4),
            "serviceLookupPerSecond": round(statistics.median(inproc["lookup"])),
        },
        "lookup": {
            kind: {
                "perSecond": round(statistics.median(r[kind]["perSecond"] for r in rounds)),
                "p50Ms": round(statistics.median(r[kind]["p50Ms"] for r in rounds), 3),
                "p99Ms": round(statistics.median(r[kind]["p99Ms"] for r in rounds), 3),
                "serverCpuUsPerCall": round(statistics.median(r[kind]["serverCpuUs"] for r in rounds), 1),
            }
            for kind in ("abn", "echo")
        },
        "ratios": [round(x, 3) for x in ratios],
        "ratioMedian": round(ratio, 3),
        "serverCpuRatioMedian": round(statistics.median(r["cpuRatio"] for r in rounds), 3),
        "passRatio": ratio >= MIN_RATIO,
        "passAssign": min(assign2, assign4) >= MIN_ASSIGNMENTS,
    }
    if args.writes:
        summary["writeMetric"] = {
            "callsPerRound": args.writes,
            "perSecond": round(statistics.median(r["write"]["perSecond"] for r in rounds)),
            "p50Ms": round(statistics.median(r["write"]["p50Ms"] for r in rounds), 3),
            "p99Ms": round(statistics.median(r["write"]["p99Ms"] for r in rounds), 3),
        }
    if args.json:
        print(json.dumps(summary, indent=2))
        return

    from tabulate import tabulate

    s = summary
    print(f"in process ({args.users:,} distinct users, median of {args.rounds} runs):")
    print(
        tabulate(
            [
                ["assign(), 2 versions", f"{assign2:,.0f}"],
                ["assign(), 4 versions", f"{assign4:,.0f}"],
                ["AbnService.lookup, 2 versions", f"{s['inProcess']['serviceLookupPerSecond']:,}"],
            ],
            headers=["", "per second"],
            colalign=("left", "right"),
            disable_numparse=True,
        )
    )
    print()
    print(
        f"Lookup over loopback gRPC ({args.rounds} rounds x {args.calls:,} calls, "
        f"{args.concurrency} in flight; medians over rounds):"
    )
    rows = [
        _percentile_row("A/B/n", [r["abn"] for r in rounds]),
        _percentile_row("echo", [r["echo"] for r in rounds]),
    ]
    if args.writes:
        rows.append(_percentile_row("WriteMetric (SQLite)", [r["write"] for r in rounds]))
    print(
        tabulate(
            rows,
            headers=["", "calls/s", "p50 ms", "p99 ms", "server CPU us/call"],
            colalign=("left", "right", "right", "right", "right"),
            disable_numparse=True,
        )
    )
    print()
    print(
        f"ratio A/B/n / echo per round: {', '.join(f'{x:.3f}' for x in ratios)}; median {ratio:.3f} "
        f"(server CPU ratio echo/A/B/n: {s['serverCpuRatioMedian']:.3f})"
    )
    verdict = "PASS" if s["passRatio"] else "FAIL"
    print(f"goal Lookup >= {MIN_RATIO}x echo: {verdict} ({ratio:.3f})")
    verdict = "PASS" if s["passAssign"] else "FAIL"
    print(
        f"goal >= {MIN_ASSIGNMENTS:,} assignments/s (2 and 4 versions): {verdict} "
        f"({min(assign2, assign4):,.0f})"
    )
    print(f"load (uptime) before: {load_before}, after: {load_after}; pinned: {pin}")


if __name__ == "__main__":
    main()
