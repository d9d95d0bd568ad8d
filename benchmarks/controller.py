#!/usr/bin/env python3
"""The traffic controller at scale: change-to-routing latency, a full resync, and memory (issue 7).

One command::

    python benchmarks/controller.py [--routemaps 1000] [--changes 200] [--resync-period 60]

Set-up: a :class:`~kubectl_iter8.testing.FakeKube` runs in *this* process (its own thread and
event loop), with the real Istio CRDs from ``../shared/crds`` (relative to the repository root's
parent). It holds N routemaps of 2 or 3 versions each (blue-green, the real ``istio`` router, one
VirtualService per routemap); every version is a Service and a Deployment labelled
``iter8.tools/watch=true``, made Available by the fake's Deployment policy.

The controller runs as a **separate process**, ``python -m kubectl_iter8 controller serve
--namespace default`` (what the ``kubectl-iter8`` entry point runs), so that its memory is its own
(``VmRSS``/``VmHWM`` from ``/proc/PID/status``) and its CPU is not shared with the fake under one
GIL. The fake's own work (serving lists, watches and applies) is therefore *in* the measured
latency, as a real API server's would be, but runs on another interpreter.

Phases:

1. **Initial sync**: start the controller; time until every VirtualService is written, and until
   every status ConfigMap is written (the controller also adds its finalizer to every resource).
2. **Changes**: M changes, one at a time, each on a random routemap's candidate: its
   ``iter8.tools/weight`` annotation is changed, or its Deployment is made unready or ready again
   (a status write, as a Deployment controller would make). The latency is the time between the
   change's write and the VirtualService write it causes, both from the fake's audit log
   (``time.time()`` at commit, same clock). The next change waits until the routemap's status
   ConfigMap (written after the VirtualService) is written too, so changes do not overlap.
3. **Full resync**: the controller is stopped (SIGTERM) and started again with
   ``defaultResync`` = ``--resync-period``. Two figures: the restart (process start, list of every
   type, then one reconcile of every routemap and every resource, which must write nothing), and
   the periodic resync inside the running process (``requeue_all``: every key again), timed
   from ``/metrics`` (``reconcile_duration_seconds_count`` and ``queue_depth``, read every ``--poll``
   seconds; the periodic resync starts at the first request it makes to the fake).
4. **Memory**: the peak RSS (``VmHWM``) of each controller process.

Goals: p99 latency under 100 ms; at 1000 routemaps (issue 7) a full resync under 10 s and under
200 MB, at 10,000 (issue 18) under 30 s and under 300 MB.
"""

from __future__ import annotations

import argparse
import atexit
import math
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kubectl_iter8.testing import FakeKube
from kubectl_iter8.testing.store import Event, Store

REPO = Path(__file__).resolve().parents[1]
CRDS = REPO.parent / "shared" / "crds" / "istio-crds.yaml"
NAMESPACE = "default"
VS = "virtualservices.networking.istio.io"
DEPLOY = "deployments.apps"
GOAL_P99_MS = 100.0
#: (routemaps up to, full resync seconds, peak RSS MB): issue 7's at 1000, issue 18's at 10,000.
GOALS_BY_SCALE = ((1000, 10.0, 200.0), (10_000, 30.0, 300.0))


def scale_goals(routemaps: int) -> tuple[float, float]:
    """The resync and memory goals for ``routemaps`` (the largest scale's beyond it)."""
    for limit, resync, rss in GOALS_BY_SCALE:
        if routemaps <= limit:
            return resync, rss
    return GOALS_BY_SCALE[-1][1:]


# --- objects -----------------------------------------------------------------------------------


def service(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "labels": {"iter8.tools/watch": "true", "app": name}},
        "spec": {"selector": {"app": name}, "ports": [{"port": 80}]},
    }


def deployment(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"iter8.tools/watch": "true", "app": name}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "example/app:1"}]},
            },
        },
    }


def routemap(name: str, versions: Sequence[str], weights: Sequence[int]) -> dict[str, Any]:
    spec = {
        "versions": [
            {"resources": [{"gvrShort": "svc", "name": v}, {"gvrShort": "deploy", "name": v}], "weight": w}
            for v, w in zip(versions, weights, strict=True)
        ],
        "routing": {"router": "istio", "strategy": "blue-green", "host": name},
    }
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": {"iter8.tools/kind": "routemap"}},
        "data": {"strSpec": yaml.safe_dump(spec)},
    }


def is_available(obj: dict[str, Any]) -> bool:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Available" and c.get("status") == "True" for c in conditions)


# --- watching the fake's writes ----------------------------------------------------------------


class Recorder:
    """A store listener: the (resourceVersion, audit time) of every write to the kinds of interest.

    Called under the store's lock by whichever thread wrote; the audit record of the event is the
    last one appended (the store appends it just before calling listeners).
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self.cond = threading.Condition()
        self.vs: dict[str, list[tuple[int, float]]] = {}
        self.status: dict[str, list[tuple[int, float]]] = {}
        self.deploy: dict[str, tuple[int, float]] = {}

    def __call__(self, event: Event) -> None:
        audit = self.store.audit
        record = audit[-1] if audit else None
        when = record.time if record is not None and record.resource_version == str(event.rv) else time.time()
        name = str(event.new["metadata"]["name"])
        with self.cond:
            if event.resource == VS:
                self.vs.setdefault(name, []).append((event.rv, when))
            elif event.resource == "configmaps" and name.endswith("-iter8-status"):
                self.status.setdefault(name[: -len("-iter8-status")], []).append((event.rv, when))
            elif event.resource == DEPLOY:
                self.deploy[name] = (event.rv, when)
            else:
                return
            self.cond.notify_all()

    def more(self, writes: dict[str, list[tuple[int, float]]], name: str, seen: int) -> Callable[[], bool]:
        """A predicate: ``name`` has more than ``seen`` writes in ``writes`` (call under ``cond``)."""
        return lambda: len(writes.get(name, ())) > seen

    def wait(self, predicate: Callable[[], bool], timeout: float) -> bool:
        with self.cond:
            return self.cond.wait_for(predicate, timeout)


# --- the controller process ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of ``pid`` in kB."""
    out: dict[str, int] = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as stream:
        for line in stream:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` so far."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stream:
        fields = stream.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class ControllerProcess:
    kube: FakeKube
    workdir: Path
    resync: str | None = None
    #: More arguments of ``controller serve`` (e.g. ``["--rollouts"]``).
    extra_args: list[str] = field(default_factory=list)
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.workdir / f"controller-{self.port}.log"

    def start(self) -> None:
        cmd = [sys.executable, "-m", "kubectl_iter8", "controller", "serve"]
        cmd += ["--namespace", NAMESPACE, "--http-port", str(self.port)]
        if self.resync is not None:
            config = self.workdir / f"config-{self.port}.yaml"
            config.write_text(f"defaultResync: {self.resync}\n")
            cmd += ["--config", str(config)]
        cmd += self.extra_args
        env = {**os.environ, **self.kube.env()}
        with self.log.open("wb") as stderr:
            self.started = time.time()
            self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
        atexit.register(self.stop)  # also when the benchmark stops with an error

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> None:
        assert self.proc is not None
        if self.proc.poll() is not None:
            tail = self.log.read_text(errors="replace").splitlines()[-20:]
            raise SystemExit(f"error: the controller exited {self.proc.returncode}:\n" + "\n".join(tail))

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as response:
                return int(response.status), response.read().decode()
        except OSError:
            return 0, ""

    def metrics(self) -> dict[str, float]:
        """reconciles (count), queue depth, and writes_total by kind."""
        _, text = self.get("/metrics")
        out: dict[str, float] = {}
        for line in text.splitlines():
            if line.startswith("iter8_controller_reconcile_duration_seconds_count "):
                out["reconciles"] = float(line.split()[1])
            elif line.startswith("iter8_controller_queue_depth "):
                out["depth"] = float(line.split()[1])
            elif line.startswith("iter8_controller_writes_total{"):
                match = re.match(r'iter8_controller_writes_total\{kind="([^"]+)"\} (\S+)', line)
                if match:
                    out[f"writes:{match.group(1)}"] = float(match.group(2))
        return out

    def wait_ready(self, timeout: float = 120.0) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.alive()
            if self.get("/readyz")[0] == 200:
                return time.time()
            time.sleep(0.02)
        raise SystemExit(f"error: /readyz not ready after {timeout} s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# --- statistics ----------------------------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    xs = sorted(values)
    return xs[max(0, math.ceil(p / 100 * len(xs)) - 1)]


def mb(kb: int) -> float:
    return kb / 1024


# --- the benchmark ---------------------------------------------------------------------------------


@dataclass
class Version:
    name: str
    weight: int
    ready: bool = True


def build(kube: FakeKube, count: int) -> dict[str, list[Version]]:
    """N routemaps of 2 or 3 versions; returns routemap -> versions (index 0 the primary)."""
    kube.controllers.deployments = 0.0  # Available as soon as created
    maps: dict[str, list[Version]] = {}
    for index in range(count):
        name = f"app-{index:04d}"
        size = 2 + (index % 2)  # half with 2 versions, half with 3
        weights = [90, 10] if size == 2 else [80, 10, 10]
        versions = [Version(f"{name}-v{i}", w) for i, w in enumerate(weights)]
        for v in versions:
            kube.create(service(v.name))
            kube.create(deployment(v.name))
        kube.create(routemap(name, [v.name for v in versions], weights))
        maps[name] = versions
    deadline = time.monotonic() + 120
    while True:
        pending = sum(1 for d in kube.list("deployments", NAMESPACE) if not is_available(d))
        if pending == 0:
            break
        if time.monotonic() > deadline:
            raise SystemExit(f"error: {pending} Deployments not Available after 120 s")
        time.sleep(0.1)
    return maps


def writes_since(kube: FakeKube, since: float) -> dict[str, int]:
    out: dict[str, int] = {}
    for record in kube.audit:
        if record.time >= since and record.source == "api":
            key = f"{record.verb} {record.resource}" + (
                f"/{record.subresource}" if record.subresource else ""
            )
            out[key] = out.get(key, 0) + 1
    return out


def is_reconcile_read(method: str, path: str) -> bool:
    """A GET of one VirtualService or ConfigMap: what a routemap reconcile reads (not a list or watch)."""
    path = path.split("?", 1)[0]
    return method == "GET" and ("/virtualservices/" in path or "/configmaps/" in path)


def requests_between(kube: FakeKube, start: float, end: float) -> dict[str, int]:
    """HTTP requests the fake answered in [start, end], by method and resource (names left out)."""
    out: dict[str, int] = {}
    for record in kube.requests:
        if start <= record.time <= end:
            path = record.path.split("?", 1)[0]
            parts = path.split("/")
            resource = parts[-2] if len(parts) > 2 and parts[-3] == "namespaces" else "other"
            if "namespaces" in parts and parts.index("namespaces") + 2 < len(parts):
                resource = parts[parts.index("namespaces") + 2]
            key = f"{record.method} {resource}"
            out[key] = out.get(key, 0) + 1
    return out


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f}, {five:.2f}, {fifteen:.2f}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="controller.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--routemaps", type=int, default=1000, help="routemaps to create (default: 1000)")
    parser.add_argument("--changes", type=int, default=200, help="resource changes to time (default: 200)")
    parser.add_argument(
        "--resync-period",
        type=int,
        default=60,
        help="defaultResync (s) of the restarted controller; its first resync is timed (default: 60)",
    )
    parser.add_argument("--seed", type=int, default=7, help="random seed of the changes (default: 7)")
    parser.add_argument(
        "--poll", type=float, default=0.2, help="seconds between two reads of /metrics (default: 0.2)"
    )
    args = parser.parse_args(argv)
    if args.routemaps < 1 or args.changes < 1:
        print("error: --routemaps and --changes must be at least 1", file=sys.stderr)
        return 2
    if not CRDS.exists():
        print(f"error: the Istio CRDs are not at {CRDS}", file=sys.stderr)
        return 1
    rng = random.Random(args.seed)
    print(f"load average at start: {load()} ({os.cpu_count()} CPUs)", flush=True)

    workdir = Path(tempfile.mkdtemp(prefix="bench-controller-"))
    atexit.register(shutil.rmtree, workdir, True)  # registered first, so it runs after the stops
    # A long watch history: the initial sync writes tens of thousands of events.
    with FakeKube(history=200_000) as kube:
        kube.load_crds(CRDS)
        recorder = Recorder(kube.store)
        kube.store.listeners.append(recorder)
        t = time.perf_counter()
        maps = build(kube, args.routemaps)
        n_versions = sum(len(v) for v in maps.values())
        n_resources = 2 * n_versions
        print(
            f"created {args.routemaps} routemaps, {n_versions} versions ({n_resources} Services + "
            f"Deployments, all Available) in {time.perf_counter() - t:.1f} s",
            flush=True,
        )

        # --- 1. initial sync ----------------------------------------------------------------
        first = ControllerProcess(kube, workdir)
        rss_samples: list[int] = []
        first.start()
        ready_at = first.wait_ready()
        ok = recorder.wait(lambda: len(recorder.vs) >= args.routemaps, timeout=600)
        if not ok:
            first.alive()
            raise SystemExit(f"error: only {len(recorder.vs)} VirtualServices written after 600 s")
        all_vs_at = max(writes[0][1] for writes in recorder.vs.values())
        recorder.wait(lambda: len(recorder.status) >= args.routemaps, timeout=600)
        all_status_at = max(writes[0][1] for writes in recorder.status.values())
        # Quiet: every finalizer added (queue empty, no reconcile for a while).
        previous = -1.0
        while True:
            m = first.metrics()
            if m.get("depth", 1) == 0 and m.get("reconciles") == previous:
                break
            previous = m.get("reconciles", -1.0)
            time.sleep(0.5)
        rss_samples.append(proc_status(first.pid)["VmRSS"])
        initial_writes = writes_since(kube, first.started)
        initial_cpu = cpu_seconds(first.pid)
        print(
            f"initial sync: /readyz {ready_at - first.started:.2f} s, all {args.routemaps} VirtualServices "
            f"{all_vs_at - first.started:.2f} s, all status ConfigMaps {all_status_at - first.started:.2f} s "
            f"after the process started; controller CPU {initial_cpu:.1f} s; load {load()}",
            flush=True,
        )

        # --- 2. changes ---------------------------------------------------------------------
        names = sorted(maps)
        latencies: dict[str, list[float]] = {"weight": [], "unready": [], "ready": []}
        timeouts: list[str] = []
        weight_cycle = [30, 50, 20, 40]
        cpu_before = cpu_seconds(first.pid)
        changes_started = time.perf_counter()
        for index in range(args.changes):
            rm = rng.choice(names)
            candidate = rng.choice(maps[rm][1:])
            kind = "ready" if not candidate.ready else ("weight" if index % 2 == 0 else "unready")
            with recorder.cond:
                vs_seen = len(recorder.vs.get(rm, []))
                status_seen = len(recorder.status.get(rm, []))
            if kind == "weight":
                new = next(w for w in weight_cycle[index % 4 :] + weight_cycle if w != candidate.weight)
                kube.patch(
                    "deployments",
                    candidate.name,
                    {"metadata": {"annotations": {"iter8.tools/weight": str(new)}}},
                )
                candidate.weight = new
            elif kind == "unready":
                kube.mark_unready("deployments", candidate.name)
                candidate.ready = False
            else:
                kube.mark_ready("deployments", candidate.name)
                candidate.ready = True
            with recorder.cond:
                change_rv, change_at = recorder.deploy[candidate.name]
            if not recorder.wait(recorder.more(recorder.vs, rm, vs_seen), timeout=10):
                first.alive()
                timeouts.append(f"{kind} {candidate.name}")
                continue
            with recorder.cond:
                vs_rv, vs_at = recorder.vs[rm][vs_seen]
            assert vs_rv > change_rv
            latencies[kind].append(vs_at - change_at)
            # Let the reconcile finish (it writes the status after the VirtualService) before the next change.
            recorder.wait(recorder.more(recorder.status, rm, status_seen), timeout=10)
            time.sleep(0.01)
            if index % 20 == 0:
                rss_samples.append(proc_status(first.pid)["VmRSS"])
        changes_elapsed = time.perf_counter() - changes_started
        changes_cpu = cpu_seconds(first.pid) - cpu_before
        all_latencies = [x for xs in latencies.values() for x in xs]
        first_mem = proc_status(first.pid)
        print(
            f"changes: {len(all_latencies)} timed in {changes_elapsed:.1f} s "
            f"({len(timeouts)} timed out); controller CPU {changes_cpu:.1f} s; load {load()}",
            flush=True,
        )
        first.stop()

        # --- 3. full resync: restart, then one periodic resync ------------------------------
        second = ControllerProcess(kube, workdir, resync=f"{args.resync_period}s")
        second.start()
        ready2 = second.wait_ready()
        expected = args.routemaps + n_resources
        polls: list[tuple[float, float, float]] = []  # (time, reconciles, depth)
        restart_done: float | None = None
        resync_start: float | None = None
        resync_done: float | None = None
        base = 0.0
        cpu_at_start = cpu_at_end = (0.0, 0.0)
        metric_reads: list[float] = []
        deadline = time.time() + args.resync_period + 600
        while time.time() < deadline:
            second.alive()
            now = time.time()
            m = second.metrics()
            metric_reads.append(time.time() - now)
            count, depth = m.get("reconciles", 0.0), m.get("depth", -1.0)
            polls.append((now, count, depth))
            if restart_done is None:
                if count >= expected and depth == 0:
                    restart_done, base = now, count
            elif resync_start is None:
                if count > base:
                    # It began after the previous poll, with the first request to the fake after it.
                    previous_poll = polls[-2][0] if len(polls) >= 2 else now
                    resync_start = min(
                        (
                            r.time
                            for r in kube.requests
                            if r.time > previous_poll and is_reconcile_read(r.method, r.path)
                        ),
                        default=previous_poll,
                    )
                    cpu_at_start = (cpu_seconds(second.pid), time.process_time())
                else:
                    base = count
            elif count >= base + expected and depth == 0:
                resync_done = now
                cpu_at_end = (cpu_seconds(second.pid), time.process_time())
                break
            time.sleep(args.poll)
        second_mem = proc_status(second.pid)
        resync_requests = requests_between(kube, resync_start or 0.0, resync_done or 0.0)
        second_cpu = cpu_seconds(second.pid)
        restart_writes = writes_since(kube, second.started)
        second.stop()
        if restart_done is None or resync_start is None or resync_done is None:
            raise SystemExit("error: the resync did not complete in time")

    # --- report ---------------------------------------------------------------------------------
    p50 = statistics.median(all_latencies) * 1000
    p99 = percentile(all_latencies, 99) * 1000
    restart = restart_done - second.started
    periodic = resync_done - resync_start
    peak_kb = max(first_mem["VmHWM"], second_mem["VmHWM"])
    print()
    print(
        f"routemaps {args.routemaps} ({n_versions} versions, {n_resources} watched resources), "
        f"changes {args.changes}, seed {args.seed}"
    )
    print("\nchange -> VirtualService written (fake's audit log), ms:")
    print(f"  {'kind':<10}{'n':>5}{'p50':>9}{'p90':>9}{'p99':>9}{'max':>9}")
    for kind, xs in [*latencies.items(), ("all", all_latencies)]:
        if xs:
            ms = [x * 1000 for x in xs]
            print(
                f"  {kind:<10}{len(ms):>5}{statistics.median(ms):>9.1f}{percentile(ms, 90):>9.1f}"
                f"{percentile(ms, 99):>9.1f}{max(ms):>9.1f}"
            )
    if timeouts:
        print(f"  timed out (no VirtualService write within 10 s): {', '.join(timeouts)}")
    first_vs, first_status = all_vs_at - first.started, all_status_at - first.started
    print("\ninitial sync (first start, adds every finalizer):")
    print(f"  /readyz after {ready_at - first.started:.2f} s; all VirtualServices after {first_vs:.2f} s;")
    print(f"  all status ConfigMaps after {first_status:.2f} s")
    print(f"  writes: {', '.join(f'{k} {v}' for k, v in sorted(initial_writes.items()))}")
    print("\nfull resync:")
    print(
        f"  restart: process start -> /readyz {ready2 - second.started:.2f} s -> all {expected} keys "
        f"reconciled {restart:.2f} s; writes meanwhile: {sum(restart_writes.values())}"
    )
    print(
        f"  periodic resync (requeue_all of {expected} keys, running process): {periodic:.2f} s "
        f"(from its first request to the fake to the first /metrics read that saw it done: "
        f"at most {args.poll:.2f} s late)"
    )
    controller_cpu = cpu_at_end[0] - cpu_at_start[0]
    fake_cpu = cpu_at_end[1] - cpu_at_start[1]
    print(
        f"    during it: controller CPU {controller_cpu:.2f} s, this process (the fake) CPU {fake_cpu:.2f} s;"
        f" requests to the fake: {', '.join(f'{k} {v}' for k, v in sorted(resync_requests.items()))}"
    )
    print(
        f"    /metrics (polled every {args.poll:.2f} s, costs the controller CPU): "
        f"mean read {statistics.mean(metric_reads) * 1000:.1f} ms over {len(metric_reads)} reads"
    )
    print("\nmemory (controller process):")
    print(
        f"  first process: RSS {mb(first_mem['VmRSS']):.1f} MB at the end, peak "
        f"{mb(first_mem['VmHWM']):.1f} MB; {len(rss_samples)} samples after the initial sync, "
        f"{mb(min(rss_samples)):.1f}-{mb(max(rss_samples)):.1f} MB"
    )
    print(
        f"  restarted process: RSS {mb(second_mem['VmRSS']):.1f} MB, peak "
        f"{mb(second_mem['VmHWM']):.1f} MB; CPU {second_cpu:.1f} s"
    )
    print(f"\nload average at the end: {load()}")
    resync_worst = max(restart, periodic)
    goal_resync, goal_rss = scale_goals(args.routemaps)
    rows = [
        (
            "p99 change -> routing written",
            f"{p99:.1f} ms (p50 {p50:.1f} ms)",
            f"< {GOAL_P99_MS:.0f} ms",
            p99 < GOAL_P99_MS and not timeouts,
        ),
        (
            "full resync (worst of restart, periodic)",
            f"{resync_worst:.2f} s",
            f"< {goal_resync:.0f} s",
            resync_worst < goal_resync,
        ),
        (
            "controller peak RSS",
            f"{mb(peak_kb):.1f} MB",
            f"< {goal_rss:.0f} MB",
            mb(peak_kb) < goal_rss,
        ),
    ]
    print(f"\n{'goal':<42}{'measured':<26}{'target':<10}result")
    for label, measured, target, passed in rows:
        print(f"{label:<42}{measured:<26}{target:<10}{'PASS' if passed else 'FAIL'}")
    return 0 if all(r[3] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
