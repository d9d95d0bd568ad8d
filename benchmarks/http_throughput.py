"""Throughput of the http task's engine next to wrk, hey and locust: requests per client CPU-second.

One command::

    python benchmarks/http_throughput.py            # 3 paired rounds, 5 s each, concurrency 16

What it does (the method of shared/reference/load-generators.md §6):

* installs what is missing: the Debian packages ``wrk``, ``hey`` and ``nginx-light`` (with apt-get,
  when run as root) and ``locust`` from PyPI into its own virtual environment (``--locust-venv``);
* starts nginx with one worker pinned to CPU 0, serving a 68-byte file with keep-alive, on a free
  loopback port;
* runs every client pinned to CPU 1 (``taskset``) for ``--duration`` seconds at ``--connections``
  concurrency, closed loop, in rounds (engine, wrk, hey, locust, then again), so that the noise of
  a shared machine hits all of them alike;
* counts each client's completed requests from its own output and its CPU time (user + system,
  whole process including start-up) from the kernel's accounting of the finished child.

It prints, per tool, the median requests per client CPU-second and rps, and the median over
rounds of the engine-to-peer ratio. One nginx worker saturates first on a small machine, so
compare CPU-normalised figures, not raw rps. Only loopback is used.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
BODY = b"hello from nginx for the iter8 load benchmark, 68 bytes of body...\n"
NGINX_CONF = """worker_processes 1;
daemon off;
pid {root}/nginx.pid;
error_log {root}/error.log;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  keepalive_requests 100000000;
  keepalive_timeout 300s;
  server {{ listen 127.0.0.1:{port}; root {root}; }}
}}
"""
LOCUSTFILE = """from locust import FastHttpUser, constant, task


class Bench(FastHttpUser):
    wait_time = constant(0)

    @task
    def get(self):
        self.client.get("/index.html")
"""


@dataclass
class Sample:
    tool: str
    requests: int
    cpu: float
    wall: float

    @property
    def per_cpu(self) -> float:
        return self.requests / self.cpu if self.cpu else 0.0


# ---- set-up -------------------------------------------------------------------------------------


def ensure_peers(locust_venv: Path, skip: set[str]) -> dict[str, str]:
    """Paths of the peer tools, installing the missing ones."""
    wanted = {"wrk": "wrk", "hey": "hey", "nginx": "nginx-light"}
    missing = [pkg for tool, pkg in wanted.items() if tool not in skip and not _which(tool)]
    if missing:
        if os.geteuid() != 0:
            sys.exit(f"missing {', '.join(missing)}: run as root, or apt-get install {' '.join(missing)}")
        print(f"installing {', '.join(missing)} with apt-get ...", flush=True)
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], check=True, env=env
        )
    tools = {tool: _which(tool) or "" for tool in wanted if tool not in skip}
    if "locust" not in skip:
        locust = locust_venv / "bin" / "locust"
        if not locust.exists():
            print(f"installing locust into {locust_venv} ...", flush=True)
            subprocess.run([sys.executable, "-m", "venv", str(locust_venv)], check=True)
            subprocess.run([str(locust_venv / "bin" / "pip"), "install", "-q", "locust"], check=True)
        tools["locust"] = str(locust)
    return tools


def _which(tool: str) -> str | None:
    return shutil.which(tool) or next(
        (str(p) for p in (Path("/usr/sbin") / tool, Path("/usr/bin") / tool) if p.exists()), None
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pin(cpu: int | None) -> list[str]:
    if cpu is None or not shutil.which("taskset"):
        return []
    return ["taskset", "-c", str(cpu)]


def start_nginx(nginx: str, root: Path, port: int, cpu: int | None) -> subprocess.Popen[bytes]:
    root.chmod(0o755)  # nginx's worker runs as another user
    (root / "index.html").write_bytes(BODY)
    (root / "index.html").chmod(0o644)
    conf = root / "nginx.conf"
    conf.write_text(NGINX_CONF.format(root=root, port=port))
    proc = subprocess.Popen([*pin(cpu), nginx, "-c", str(conf), "-p", str(root)], stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return proc
        time.sleep(0.05)
    proc.kill()
    sys.exit("nginx did not start")


# ---- running one client -------------------------------------------------------------------------


def measure(tool: str, argv: list[str], parse: Callable[[str], int], cwd: Path) -> Sample:
    """Run ``argv`` to completion; requests from its output, CPU from the kernel's child rusage."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=cwd, check=False, timeout=600)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{tool} failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Sample(tool, parse(proc.stdout + proc.stderr), cpu, wall)


def _search(pattern: str, text: str) -> int:
    match = re.search(pattern, text)
    if match is None:
        raise RuntimeError(f"no match for {pattern!r} in output:\n{text[-2000:]}")
    return int(match.group(1))


def engine_child(url: str, duration: float, connections: int) -> None:
    """Run in a child process: the http task's engine, closed loop; prints the request count."""
    from kubectl_iter8.builtin_tasks.http.engine import LoadEngine, LoadPlan
    from kubectl_iter8.builtin_tasks.http.target import Target

    from kubectl_iter8.aio import run_async

    async def main() -> None:
        engine = LoadEngine(Target(url=url), LoadPlan(connections=connections, qps=0, duration=duration))
        stats = await engine.run()
        print(json.dumps({"requests": stats.requests, "errors": stats.errors, "statuses": stats.statuses}))

    run_async(main())


def clients(
    tools: dict[str, str], url: str, args: argparse.Namespace, work: Path
) -> dict[str, Callable[[], Sample]]:
    duration, conns, cpu = args.duration, args.connections, pin(args.client_cpu)
    runs: dict[str, Callable[[], Sample]] = {
        "engine": lambda: measure(
            "engine",
            [
                *cpu,
                sys.executable,
                str(Path(__file__).resolve()),
                "--engine-child",
                url,
                str(duration),
                str(conns),
            ],
            lambda out: int(json.loads(out.strip().splitlines()[-1])["requests"]),
            work,
        )
    }
    if "wrk" in tools:
        runs["wrk"] = lambda: measure(
            "wrk",
            [*cpu, tools["wrk"], "-t1", f"-c{conns}", f"-d{duration:g}s", url],
            lambda out: _search(r"(\d+) requests in", out),
            work,
        )
    if "hey" in tools:
        runs["hey"] = lambda: measure(
            "hey",
            [*cpu, tools["hey"], "-z", f"{duration:g}s", "-c", str(conns), url],
            lambda out: sum(int(n) for n in re.findall(r"\[\d+\]\s+(\d+) responses", out)),
            work,
        )
    if "locust" in tools:
        (work / "locustfile.py").write_text(LOCUSTFILE)
        host = url.rsplit("/", 1)[0]

        def locust() -> Sample:
            for stale in work.glob("locust_stats*.csv"):
                stale.unlink()
            argv = [
                *cpu,
                tools["locust"],
                "-f",
                "locustfile.py",
                "--headless",
                "-u",
                str(conns),
                "-r",
                str(conns),
            ]
            argv += [
                "-t",
                f"{duration:g}s",
                "--host",
                host,
                "--only-summary",
                "--csv",
                "locust",
                "--processes",
                "1",
            ]
            return measure("locust", argv, lambda _: _locust_count(work / "locust_stats.csv"), work)

        runs["locust"] = locust
    return runs


def _locust_count(path: Path) -> int:
    import csv

    with path.open() as handle:
        for row in csv.DictReader(handle):
            if row["Name"] == "Aggregated":
                return int(row["Request Count"])
    raise RuntimeError("no Aggregated row in locust's CSV")


# ---- main ---------------------------------------------------------------------------------------


def main() -> None:
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="paired rounds (default 3)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per client run (default 5)")
    parser.add_argument("--connections", type=int, default=16, help="concurrency (default 16)")
    parser.add_argument("--server-cpu", type=int, default=0, help="CPU for nginx (default 0)")
    parser.add_argument("--client-cpu", type=int, default=1, help="CPU for the clients (default 1)")
    parser.add_argument("--skip", default="", help="comma-separated peers to leave out (wrk,hey,locust)")
    parser.add_argument(
        "--locust-venv",
        type=Path,
        default=Path(tempfile.gettempdir()) / "kubectl-iter8-bench-locust",
        help="virtual environment for locust (created when missing)",
    )
    parser.add_argument("--json", type=Path, help="also write the samples to this file")
    parser.add_argument("--engine-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.engine_child:
        url, duration, conns = args.engine_child
        engine_child(url, float(duration), int(conns))
        return
    if (os.cpu_count() or 1) < 2:
        args.server_cpu = args.client_cpu = None
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    tools = ensure_peers(args.locust_venv, skip)
    with tempfile.TemporaryDirectory(prefix="iter8-bench-") as tmp:
        root = Path(tmp)
        port = free_port()
        nginx = start_nginx(tools.pop("nginx"), root, port, args.server_cpu)
        try:
            url = f"http://127.0.0.1:{port}/index.html"
            runs = clients(tools, url, args, root)
            setup = f"{args.connections} connections, {args.duration:g}s, {args.rounds} rounds"
            print(f"target {url} (nginx, 1 worker, CPU {args.server_cpu})")
            print(f"clients on CPU {args.client_cpu}, {setup}")
            samples: list[Sample] = []
            for round_no in range(1, args.rounds + 1):
                for name, run in runs.items():
                    sample = run()
                    samples.append(sample)
                    rps = sample.requests / args.duration
                    line = f"{sample.requests:>9,} req  cpu {sample.cpu:5.2f}s  {rps:>9,.0f} rps"
                    print(
                        f"round {round_no}  {name:7s} {line}  {sample.per_cpu:>9,.0f} req/CPU-s", flush=True
                    )
        finally:
            nginx.send_signal(signal.SIGQUIT)
            try:
                nginx.wait(10)
            except subprocess.TimeoutExpired:
                nginx.kill()
                nginx.wait()
    report(samples, list(runs), args.duration)
    if args.json:
        args.json.write_text(json.dumps([s.__dict__ | {"perCPU": s.per_cpu} for s in samples], indent=2))


def report(samples: list[Sample], names: list[str], duration: float) -> None:
    by_tool = {name: [s for s in samples if s.tool == name] for name in names}
    print("\ntool      median req/CPU-s   median rps   engine ratio (median of paired rounds)")
    engine = by_tool["engine"]
    for name in names:
        runs = by_tool[name]
        per_cpu = statistics.median(s.per_cpu for s in runs)
        rps = statistics.median(s.requests / duration for s in runs)
        ratios = [e.per_cpu / p.per_cpu for e, p in zip(engine, runs, strict=True) if p.per_cpu]
        ratio = "" if name == "engine" else f"engine/{name} = {statistics.median(ratios):.2f}"
        print(f"{name:8s}  {per_cpu:>16,.0f}   {rps:>10,.0f}   {ratio}")


if __name__ == "__main__":
    main()
