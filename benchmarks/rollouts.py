#!/usr/bin/env python3
"""Progressive delivery at scale: from an analysis verdict written to the next weight applied.

One command::

    python benchmarks/rollouts.py [--rollouts 100] [--steps 3] [--max-delay 0.5] [--seed 7]
                                  [--workers N] [--profile FILE --py-spy PATH]

Goal (the rollout-policies issue): over 100 concurrent rollouts on the fake, the p99 time from a
verdict written to the next weight applied is under 1 s.

Set-up, as in ``benchmarks/controller.py`` (whose helpers this script loads): a
:class:`~kubectl_iter8.testing.FakeKube` runs in *this* process with the real Istio CRDs from
``../shared/crds``, and the controller runs as a separate process, ``python -m kubectl_iter8
controller serve --namespace default --rollouts`` (the real ``istio`` router). The fake holds N
routemaps (``roll-0000``, ...), each a primary and a candidate (a Service and a Deployment each,
Available through the fake's Deployment policy) with a rollout policy of K analysis steps::

    steps: [{weight: 10}, {analysis: {}}, {weight: 20}, {analysis: {}}, ..., {weight: 10K}, {analysis: {}}]
    analysis: {experiment: {inline: <an http + assess experiment>}, timeout: 10m}

The fake's Job runner is off (``kube.controllers.jobs = False``): **this script is the analysis
runner**. A store listener sees each analysis group's Job being created (the last object
``launch`` makes); after a random delay (uniform in ``[0, --max-delay]`` s, so that the verdicts of
many rollouts land together) a writer thread stores a finished, passing experiment in the group's
Secret (``experiment.yaml``, base64: the launched experiment with the result of one real local
run, ``kubectl-iter8 launch --local``, against the sample app) and then marks the group's Job
``Complete`` in its status, as the Job controller would. The controller hears the Job (it watches
Jobs labelled ``iter8.tools/group``), judges the stored result (``pass``), stores the rollout's next
step and writes the routing.

The latency of a verdict is from the Secret write (``t_verdict``) to the first later write of the
routemap's VirtualService whose candidate share is the next step's weight (or 100 after the last
analysis: the promotion); both times are the fake's audit-log times (``time.time()`` at commit).
The run ends when every rollout is ``Promoted`` and its routemap has been rewritten with the
candidate as its only version. Also reported: the split of the latency at the store of the
rollout's state (the ``<routemap>-iter8-rollout`` ConfigMap written with the next step), the total
wall time, the controller's CPU, this process's CPU (the fake and the runner), the load average,
and the controller's queue from ``/metrics`` (depth, reconciles and their mean time, read every
``--poll`` s). ``--workers`` sets the controller's workers (a config file); ``--profile`` records
the controller with py-spy (``--format raw``). Exits 0 when the goal is met and every rollout is
promoted, else 1.
"""

from __future__ import annotations

import argparse
import atexit
import base64
import heapq
import importlib.util
import itertools
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from kubectl_iter8.testing import FakeKube
from kubectl_iter8.testing.store import Event, Store

HERE = Path(__file__).resolve().parent
GOAL_P99_S = 1.0
GROUP_LABEL = "iter8.tools/group"
SECRET_KEY = "experiment.yaml"
VS = "virtualservices.networking.istio.io"
JOBS = "jobs.batch"
#: The analysis every step runs. Its URL is never fetched: the Jobs do not run, this script writes
#: their results; it only has to be an experiment ``prepare`` accepts.
ANALYSIS = {
    "spec": [
        {"task": "http", "with": {"url": "http://127.0.0.1:1/get", "numRequests": 1}},
        {"task": "assess", "with": {"SLOs": {"upper": [{"metric": "http/error-rate", "limit": 0.01}]}}},
    ]
}
#: ``<routemap>-<candidate digest>-s<step>-a<attempt>`` (controller/progression.py ``_launch``).
GROUP_NAME = re.compile(r"^(?P<routemap>.+)-[^-]+-s(?P<step>\d+)-a(?P<attempt>\d+)$")
STATE_PHASE = re.compile(r"^phase: (\w+)$", re.MULTILINE)
STATE_STEP = re.compile(r"^step: (\d+)$", re.MULTILINE)


def _bench_controller() -> ModuleType:
    """benchmarks/controller.py, as a module (its name would clash with the ``controller`` package)."""
    spec = importlib.util.spec_from_file_location("bench_controller", HERE / "controller.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


bench = _bench_controller()


# --- objects -------------------------------------------------------------------------------------


def policy_steps(steps: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i in range(1, steps + 1):
        out += [{"weight": 10 * i}, {"analysis": {}}]
    return out


def rollout_routemap(name: str, primary: str, candidate: str, steps: list[dict[str, Any]]) -> dict[str, Any]:
    spec = {
        "versions": [
            {"resources": [{"gvrShort": "svc", "name": v}, {"gvrShort": "deploy", "name": v}]}
            for v in (primary, candidate)
        ],
        "routing": {"router": "istio", "strategy": "blue-green", "host": name},
        "rollout": {
            "steps": steps,
            "analysis": {"experiment": {"inline": ANALYSIS}, "timeout": "10m"},
        },
    }
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": {"iter8.tools/kind": "routemap"}},
        "data": {"strSpec": yaml.safe_dump(spec)},
    }


def next_weight(steps: list[dict[str, Any]], analysis_step: int) -> int:
    """The candidate's weight the rollout sets after the analysis at ``analysis_step`` passes."""
    following = analysis_step + 1
    return int(steps[following]["weight"]) if following < len(steps) else 100  # 100: promoting


def candidate_share(vs: dict[str, Any], candidate: str) -> int | None:
    """The candidate's share (percent) of the VirtualService's first HTTP route; None when unreadable."""
    http = (vs.get("spec") or {}).get("http") or []
    if not http:
        return None
    routes = http[-1].get("route") or []
    weights = []
    for route in routes:
        host = str((route.get("destination") or {}).get("host", ""))
        weight = route.get("weight", 100 if len(routes) == 1 else 0)
        weights.append((host.split(".")[0] == candidate, int(weight)))
    total = sum(w for _, w in weights)
    return round(100 * sum(w for mine, w in weights if mine) / total) if total else 0


def passing_result() -> dict[str, Any]:
    """The ``result`` of a real local run of the analysis (``kubectl-iter8 launch --local``) against
    the sample app: all tasks completed, the SLO satisfied."""
    from kubectl_iter8.sample_app import running

    work = Path(tempfile.mkdtemp(prefix="bench-rollouts-run-"))
    try:
        with running() as app:
            document = yaml.safe_load(yaml.safe_dump(ANALYSIS))
            document["spec"][0]["with"]["url"] = f"{app.url}/get"
            (work / "in.yaml").write_text(yaml.safe_dump(document))
            cmd = [sys.executable, "-m", "kubectl_iter8", "launch", "--local", "-f", str(work / "in.yaml")]
            done = subprocess.run(
                [*cmd, "--run-dir", str(work)], capture_output=True, text=True, timeout=120, check=False
            )
        if done.returncode != 0:
            raise SystemExit(f"error: the local run of the analysis failed:\n{done.stderr[-2000:]}")
        stored = yaml.safe_load((work / SECRET_KEY).read_text())
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result = stored["result"]
    if result.get("failure") or result.get("numCompletedTasks") != len(ANALYSIS["spec"]):
        raise SystemExit(f"error: the local run of the analysis did not pass: {result.get('failureMessage')}")
    return dict(result)


def check_verdict(document: dict[str, Any]) -> str:
    """The controller's own verdict on ``document`` (kubectl_iter8.controller.analysis.judge)."""
    from kubectl_iter8.controller.analysis import judge

    from kubectl_iter8.experiment import stored_experiment
    from kubectl_iter8.rollout import Analysis

    analysis = Analysis.model_validate({"experiment": {"inline": ANALYSIS}}).merged(None)
    outcome = judge(stored_experiment(document, "benchmark"), analysis)
    return f"{outcome.verdict} ({outcome.reason})"


# --- watching the fake's writes, and playing the analysis runner ---------------------------------


@dataclass
class Verdict:
    group: str
    routemap: str
    step: int
    weight: int  # the next weight it should lead to
    job: str
    due: float  # time.monotonic() when to write it
    rv: int = 0
    at: float = 0.0  # audit time of the Secret write
    job_at: float = 0.0  # audit time of the Job status write


@dataclass
class Recorder:
    """A store listener (called under the store's lock by whichever thread wrote): VirtualService
    writes with the candidate's share, rollout state writes, and analysis Jobs being created."""

    store: Store
    candidates: dict[str, str]
    steps: list[dict[str, Any]]
    rng: random.Random
    max_delay: float
    cond: threading.Condition = field(default_factory=threading.Condition)
    vs: dict[str, list[tuple[int, float, int | None]]] = field(default_factory=dict)
    states: dict[str, list[tuple[int, float, str, int]]] = field(default_factory=dict)
    phase: dict[str, str] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)
    verdicts: list[Verdict] = field(default_factory=list)
    pending: list[tuple[float, int, Verdict]] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)

    def _when(self, event: Event) -> float:
        audit = self.store.audit
        record = audit[-1] if audit else None
        return record.time if record is not None and record.resource_version == str(event.rv) else time.time()

    def __call__(self, event: Event) -> None:
        if event.type == "DELETED":
            return
        meta = event.new["metadata"]
        name = str(meta["name"])
        if event.resource == VS:
            share = candidate_share(event.new, self.candidates.get(name, ""))
            with self.cond:
                self.vs.setdefault(name, []).append((event.rv, self._when(event), share))
                self.cond.notify_all()
        elif event.resource == "configmaps" and name.endswith("-iter8-rollout"):
            text = str((event.new.get("data") or {}).get("state") or "")
            phase = STATE_PHASE.search(text)
            step = STATE_STEP.search(text)
            routemap = name[: -len("-iter8-rollout")]
            with self.cond:
                self.states.setdefault(routemap, []).append(
                    (
                        event.rv,
                        self._when(event),
                        phase.group(1) if phase else "",
                        int(step.group(1)) if step else 0,
                    )
                )
                self.phase[routemap] = phase.group(1) if phase else ""
                self.cond.notify_all()
        elif event.resource == "configmaps" and name in self.candidates:
            spec = yaml.safe_load(str((event.new.get("data") or {}).get("strSpec") or "")) or {}
            with self.cond:
                self.versions[name] = len(spec.get("versions") or [])
                self.cond.notify_all()
        elif event.resource == JOBS and event.type == "ADDED":
            group = (meta.get("labels") or {}).get(GROUP_LABEL)
            match = GROUP_NAME.match(group or "")
            if match is None or match.group("routemap") not in self.candidates:
                with self.cond:
                    self.unexpected.append(f"job {name} (group {group})")
                return
            step = int(match.group("step"))
            verdict = Verdict(
                group=str(group),
                routemap=match.group("routemap"),
                step=step,
                weight=next_weight(self.steps, step),
                job=name,
                due=time.monotonic() + self.rng.uniform(0, self.max_delay),
            )
            with self.cond:
                heapq.heappush(self.pending, (verdict.due, len(self.verdicts), verdict))
                self.verdicts.append(verdict)
                if int(match.group("attempt")) != 1:
                    self.unexpected.append(f"attempt {match.group('attempt')}: {group}")
                self.cond.notify_all()

    def wait(self, predicate: Any, timeout: float) -> bool:
        with self.cond:
            return self.cond.wait_for(predicate, timeout)


class Runner(threading.Thread):
    """Writes each analysis's passing result, then its Job's Complete status, when it is due."""

    def __init__(self, kube: FakeKube, recorder: Recorder, result: dict[str, Any]) -> None:
        super().__init__(name="analysis-runner", daemon=True)
        self.kube = kube
        self.recorder = recorder
        self.result = result
        self.stopping = False
        self.errors: list[str] = []

    def run(self) -> None:
        rec = self.recorder
        while True:
            with rec.cond:
                while not self.stopping and (not rec.pending or rec.pending[0][0] > time.monotonic()):
                    rec.cond.wait(max(0.0, rec.pending[0][0] - time.monotonic()) if rec.pending else None)
                if self.stopping:
                    return
                _, _, verdict = heapq.heappop(rec.pending)
            try:
                self.write(verdict)
            except Exception as exc:  # reported at the end; the rollout then times out
                self.errors.append(f"{verdict.group}: {type(exc).__name__}: {exc}")

    def write(self, verdict: Verdict) -> None:
        secret = self.kube.get("secrets", verdict.group)
        # libyaml: this thread stands in for pods elsewhere, and shares the fake's interpreter.
        document = yaml.load(base64.b64decode(secret["data"][SECRET_KEY]), Loader=yaml.CSafeLoader)
        document["result"] = self.result
        text = yaml.dump(document, Dumper=yaml.CSafeDumper, sort_keys=False)
        data = base64.b64encode(text.encode()).decode()
        written = self.kube.patch("secrets", verdict.group, {"data": {SECRET_KEY: data}})
        verdict.rv = int(written["metadata"]["resourceVersion"])
        verdict.at = self.audit_time(written)
        now = bench_now()
        status = {
            "active": None,
            "ready": 0,
            "succeeded": 1,
            "completionTime": now,
            "conditions": [
                {"type": t, "status": "True", "reason": "CompletionsReached", "lastTransitionTime": now,
                 "lastProbeTime": now, "message": "Reached expected number of succeeded pods"}
                for t in ("SuccessCriteriaMet", "Complete")
            ],
        }  # fmt: skip
        job = self.kube.patch("jobs", verdict.job, {"status": status}, status=True)
        verdict.job_at = self.audit_time(job)

    def audit_time(self, obj: dict[str, Any]) -> float:
        rv = str(obj["metadata"]["resourceVersion"])
        store = self.kube.store
        with store.lock:  # not kube.audit: that copies the whole log
            for record in reversed(store.audit[-1000:]):
                if record.resource_version == rv:
                    return record.time
        raise RuntimeError(f"no audit record of resourceVersion {rv}")

    def stop(self) -> None:
        with self.recorder.cond:
            self.stopping = True
            self.recorder.cond.notify_all()


class Sampler(threading.Thread):
    """Reads the controller's /metrics every ``period`` s: queue depth, reconciles, their time."""

    def __init__(self, ctl: Any, period: float) -> None:
        super().__init__(name="metrics-sampler", daemon=True)
        self.ctl = ctl
        self.period = period
        self.stopping = threading.Event()
        #: (time, queue depth, reconciles so far, seconds spent in reconciles so far)
        self.samples: list[tuple[float, float, float, float]] = []
        #: reconciles_total by result, as last read
        self.results: dict[str, float] = {}

    def run(self) -> None:
        while not self.stopping.wait(self.period):
            _, text = self.ctl.get("/metrics")
            values: dict[str, float] = {}
            for line in text.splitlines():
                name, _, value = line.partition(" ")
                if name.startswith("iter8_controller_reconciles_total{"):
                    self.results[name.split('"')[1]] = float(value)
                if name in (
                    "iter8_controller_queue_depth",
                    "iter8_controller_reconcile_duration_seconds_count",
                    "iter8_controller_reconcile_duration_seconds_sum",
                ):
                    values[name] = float(value)
            if len(values) == 3:
                self.samples.append(
                    (
                        time.time(),
                        values["iter8_controller_queue_depth"],
                        values["iter8_controller_reconcile_duration_seconds_count"],
                        values["iter8_controller_reconcile_duration_seconds_sum"],
                    )
                )


def log_problems(path: Path) -> list[tuple[int, str]]:
    """The controller log's WARNING and ERROR lines, grouped (numbers and names masked), most first."""
    counts: dict[str, int] = {}
    for line in path.read_text(errors="replace").splitlines():
        if " WARNING " in line or " ERROR " in line:
            key = re.sub(r"roll-\d{4}[\w-]*", "roll-*", line.split(" ", 1)[-1])
            key = re.sub(r"\d+(\.\d+)?", "N", key)[:160]
            counts[key] = counts.get(key, 0) + 1
    return sorted(((n, k) for k, n in counts.items()), reverse=True)


def bench_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# --- the benchmark -----------------------------------------------------------------------------------


def build(kube: FakeKube, count: int, steps: list[dict[str, Any]]) -> dict[str, str]:
    """The versions of N rollouts (the routemaps come later: :func:`start_rollouts`); returns
    routemap -> candidate name."""
    kube.controllers.deployments = 0.0  # Available as soon as created
    candidates: dict[str, str] = {}
    for index in range(count):
        name = f"roll-{index:04d}"
        primary, candidate = f"{name}-v1", f"{name}-v2"
        for v in (primary, candidate):
            kube.create(bench.service(v))
            kube.create(bench.deployment(v))
        candidates[name] = candidate
    deadline = time.monotonic() + 120
    while any(not bench.is_available(d) for d in kube.list("deployments", bench.NAMESPACE)):
        if time.monotonic() > deadline:
            raise SystemExit("error: Deployments not Available after 120 s")
        time.sleep(0.1)
    return candidates


def settled(kube: FakeKube, ctl: Any, timeout: float = 300.0) -> None:
    """Wait until the controller has put its finalizer on every version and its queue is empty:
    the one-time work of a controller's start is not what the rollouts' figures measure."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ctl.alive()
        objs = [*kube.list("deployments", bench.NAMESPACE), *kube.list("services", bench.NAMESPACE)]
        finalized = all("iter8.tools/finalizer" in (o["metadata"].get("finalizers") or []) for o in objs)
        if finalized and ctl.metrics().get("depth", -1.0) == 0:
            return
        time.sleep(0.2)
    raise SystemExit(f"error: the controller did not settle within {timeout:g} s")


def start_rollouts(kube: FakeKube, candidates: dict[str, str], steps: list[dict[str, Any]]) -> None:
    for name, candidate in candidates.items():
        kube.create(rollout_routemap(name, f"{name}-v1", candidate, steps))


def latency_of(rec: Recorder, verdict: Verdict) -> tuple[float | None, float | None]:
    """(verdict -> VirtualService with the next weight, verdict -> state stored with the next step)."""
    to_vs = to_state = None
    for rv, at, share in rec.vs.get(verdict.routemap, []):
        if rv > verdict.rv and share == verdict.weight:
            to_vs = at - verdict.at
            break
    for rv, at, _, step in rec.states.get(verdict.routemap, []):
        if rv > verdict.rv and step > verdict.step:
            to_state = at - verdict.at
            break
    return to_vs, to_state


def row(label: str, xs: Sequence[float]) -> str:
    ms = [x * 1000 for x in xs]
    return (
        f"  {label:<34}{len(ms):>5}{statistics.median(ms):>9.1f}{bench.percentile(ms, 90):>9.1f}"
        f"{bench.percentile(ms, 99):>9.1f}{max(ms):>9.1f}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rollouts.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rollouts", type=int, default=100, help="concurrent rollouts (default: 100)")
    parser.add_argument("--steps", type=int, default=3, help="analysis steps per rollout, 1-9 (default: 3)")
    parser.add_argument(
        "--max-delay",
        type=float,
        default=0.5,
        help="each verdict is written a random 0..MAX_DELAY s after its Job is created (default: 0.5)",
    )
    parser.add_argument(
        "--timeout", type=float, default=600.0, help="give up after this many s (default: 600)"
    )
    parser.add_argument("--seed", type=int, default=7, help="random seed of the delays (default: 7)")
    parser.add_argument(
        "--workers", type=int, help="the controller's workers (its config file); default: its own default (2)"
    )
    parser.add_argument(
        "--poll", type=float, default=0.5, help="seconds between two reads of /metrics (default: 0.5)"
    )
    parser.add_argument(
        "--profile",
        metavar="FILE",
        help="also record the controller with py-spy (--format raw: collapsed stacks) into FILE",
    )
    parser.add_argument(
        "--py-spy", default="py-spy", metavar="PATH", help="the py-spy to use (default: py-spy)"
    )
    args = parser.parse_args(argv)
    if args.rollouts < 1 or not 1 <= args.steps <= 9 or args.max_delay < 0:
        print("error: --rollouts >= 1, --steps 1-9 and --max-delay >= 0", file=sys.stderr)
        return 2
    if not bench.CRDS.exists():
        print(f"error: the Istio CRDs are not at {bench.CRDS}", file=sys.stderr)
        return 1
    print(f"load average at start: {bench.load()} ({os.cpu_count()} CPUs)", flush=True)
    steps = policy_steps(args.steps)

    result = passing_result()
    sample = {**ANALYSIS, "result": result}
    print(
        f"the analysis result (one real local run), judged by the controller's code: {check_verdict(sample)}"
    )

    workdir = Path(tempfile.mkdtemp(prefix="bench-rollouts-"))
    atexit.register(shutil.rmtree, workdir, True)  # registered first, so it runs after the stop
    with FakeKube(history=200_000) as kube:
        kube.load_crds(bench.CRDS)
        kube.controllers.jobs = False  # this script plays the analysis runner
        t = time.perf_counter()
        candidates = build(kube, args.rollouts, steps)
        print(
            f"created the versions of {args.rollouts} rollouts (2 each; {args.steps} analysis steps) "
            f"in {time.perf_counter() - t:.1f} s",
            flush=True,
        )
        recorder = Recorder(kube.store, candidates, steps, random.Random(args.seed), args.max_delay)
        kube.store.listeners.append(recorder)
        runner = Runner(kube, recorder, result)
        runner.start()

        extra = ["--rollouts"]
        if args.workers is not None:
            config = workdir / "config.yaml"
            config.write_text(f"workers: {args.workers}\n")
            extra += ["--config", str(config)]
        ctl = bench.ControllerProcess(kube, workdir, extra_args=extra)
        ctl.start()
        ctl.wait_ready()
        settled(kube, ctl)
        started = time.time()
        ctl_cpu_before = bench.cpu_seconds(ctl.pid)
        start_rollouts(kube, candidates, steps)
        cpu_fake_before = time.process_time()
        sampler = Sampler(ctl, args.poll)
        sampler.start()
        profiler = None
        if args.profile:
            profiler = subprocess.Popen(
                [args.py_spy, "record", "--pid", str(ctl.pid), "--format", "raw", "--rate", "100",
                 "--threads", "--output", args.profile, "--nonblocking"],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            )  # fmt: skip

        def done() -> bool:
            return all(
                recorder.phase.get(n) == "Promoted" and recorder.versions.get(n) == 1 for n in candidates
            )

        deadline = time.monotonic() + args.timeout
        last_print = time.monotonic()
        while not recorder.wait(done, timeout=1.0):
            ctl.alive()
            now = time.monotonic()
            if now > deadline:
                break
            if now - last_print >= 10:
                with recorder.cond:
                    phases: dict[str, int] = {}
                    for n in candidates:
                        phases[recorder.phase.get(n, "-")] = phases.get(recorder.phase.get(n, "-"), 0) + 1
                    written = sum(1 for v in recorder.verdicts if v.at)
                print(
                    f"  {now - (deadline - args.timeout):.0f} s: verdicts written {written}, "
                    f"phases {phases}, load {bench.load()}",
                    flush=True,
                )
                last_print = now
        finished = time.time()
        ctl_cpu = bench.cpu_seconds(ctl.pid) - ctl_cpu_before
        fake_cpu = time.process_time() - cpu_fake_before
        ctl_mem = bench.proc_status(ctl.pid)
        all_done = done()
        runner.stop()
        sampler.stopping.set()
        sampler.join()
        requests = bench.requests_between(kube, started, finished)
        if profiler is not None:
            profiler.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
            _, err = profiler.communicate(timeout=60)
            if profiler.returncode != 0 and not Path(args.profile).exists():
                print(f"py-spy failed: {err.decode(errors='replace')[-500:]}")
        ctl.stop()
        problems = log_problems(ctl.log)
        with recorder.cond:
            verdicts = list(recorder.verdicts)
            phases = dict(recorder.phase)
            versions = dict(recorder.versions)
        final_maps = {
            n: yaml.safe_load(kube.get("configmaps", n)["data"]["strSpec"])["versions"] for n in candidates
        }
        first_vs = min((w[0][1] for w in recorder.vs.values() if w), default=finished)

    # --- report ----------------------------------------------------------------------------------------
    to_vs: list[float] = []
    to_state: list[float] = []
    state_to_vs: list[float] = []
    secret_to_job: list[float] = []
    by_step: dict[int, list[float]] = {}
    missing: list[str] = []
    for verdict in verdicts:
        if not verdict.at:
            missing.append(f"{verdict.group} (not written)")
            continue
        vs_latency, state_latency = latency_of(recorder, verdict)
        secret_to_job.append(verdict.job_at - verdict.at)
        if vs_latency is None:
            missing.append(f"{verdict.group} (no VirtualService with weight {verdict.weight})")
            continue
        to_vs.append(vs_latency)
        by_step.setdefault(verdict.step, []).append(vs_latency)
        if state_latency is not None:
            to_state.append(state_latency)
            state_to_vs.append(vs_latency - state_latency)
    expected = args.rollouts * args.steps
    promoted = [
        n
        for n in candidates
        if phases.get(n) == "Promoted"
        and len(final_maps[n]) == 1
        and final_maps[n][0]["resources"][0]["name"] == candidates[n]
    ]
    # The candidate's share over time, without repeats: 0, 10, 20, ..., 100 (never a step back).
    wanted = [0, *[10 * i for i in range(1, args.steps + 1)], 100]
    odd_paths = []
    for n in candidates:
        shares = [s for _, _, s in recorder.vs.get(n, [])]
        path = [s for i, s in enumerate(shares) if i == 0 or s != shares[i - 1]]
        if path != wanted:
            odd_paths.append(f"{n}: {path}")
    wall = finished - started

    print()
    print(
        f"rollouts {args.rollouts} x {args.steps} analysis steps, verdicts delayed 0-{args.max_delay:g} s "
        f"after their Job, seed {args.seed}, controller workers {args.workers or 'default (2)'}"
    )
    print("\nverdict written (Secret) -> next weight's VirtualService written (fake's audit log), ms:")
    print(f"  {'':<34}{'n':>5}{'p50':>9}{'p90':>9}{'p99':>9}{'max':>9}")
    if to_vs:
        print(row("verdict -> VirtualService", to_vs))
        for step, latencies in sorted(by_step.items()):
            print(row(f"  the verdicts of step {step}", latencies))
    if to_state:
        print(row("  verdict -> rollout state stored", to_state))
        print(row("  state stored -> VirtualService", state_to_vs))
    if secret_to_job:
        print(row("(Secret write -> Job Complete write)", secret_to_job))
    # When the controller first read each verdict's Secret after it was written: the wait for a
    # worker (queue) versus the work after it.
    reads: dict[str, list[float]] = {}
    for record in kube.requests:
        if record.method == "GET" and "/secrets/" in record.path:
            reads.setdefault(record.path.rsplit("/", 1)[-1].split("?", 1)[0], []).append(record.time)
    to_read = [
        min(t for t in reads.get(v.group, []) if t >= v.at) - v.at
        for v in verdicts
        if v.at and any(t >= v.at for t in reads.get(v.group, []))
    ]
    if to_read:
        print(row("(verdict -> the controller reads it)", to_read))
    print(f"  verdicts timed {len(to_vs)} of {expected} expected ({len(verdicts)} analyses launched)")
    for line in missing[:10]:
        print(f"  missing: {line}")
    for line in recorder.unexpected[:10]:
        print(f"  unexpected: {line}")
    for line in runner.errors[:10]:
        print(f"  runner error: {line}")
    print(
        "\npromoted (phase Promoted, routemap rewritten to the candidate only): "
        f"{len(promoted)} of {args.rollouts}" + ("" if all_done else f" (gave up after {args.timeout:g} s)")
    )
    if odd_paths:
        print(f"  weight paths other than {wanted}: {len(odd_paths)}, e.g. {odd_paths[:3]}")
    not_promoted = sorted(set(candidates) - set(promoted))
    if not_promoted:
        shown = [f"{n} ({phases.get(n)}, {versions.get(n)} versions)" for n in not_promoted[:10]]
        print(f"  not promoted: {', '.join(shown)}")
    print(
        f"\nwall time: routemaps created -> all promoted {wall:.1f} s (first VirtualService after "
        f"{first_vs - started:.2f} s)"
    )
    print(
        f"CPU: controller {ctl_cpu:.1f} s ({100 * ctl_cpu / wall:.0f}% of one core), this process "
        f"(the fake and the runner) {fake_cpu:.1f} s; controller RSS {bench.mb(ctl_mem['VmRSS']):.1f} MB, "
        f"peak {bench.mb(ctl_mem['VmHWM']):.1f} MB"
    )
    print(f"load average at the end: {bench.load()}")
    samples = sampler.samples
    if len(samples) >= 2:
        (t0, _, n0, s0), (t1, _, n1, s1) = samples[0], samples[-1]
        depths = [d for _, d, _, _ in samples]
        mean = (s1 - s0) / (n1 - n0) * 1000 if n1 > n0 else 0.0
        print(
            f"controller queue (/metrics every {args.poll:g} s): depth mean {statistics.mean(depths):.1f}, "
            f"max {max(depths):.0f}; {n1 - n0:.0f} reconciles in {t1 - t0:.1f} s "
            f"({(n1 - n0) / (t1 - t0):.1f}/s), "
            f"{mean:.1f} ms each on average (wall, per worker)"
        )
        every = max(1, round(5 / args.poll))
        timeline = " ".join(f"{d:.0f}" for _, d, _, _ in samples[::every])
        print(f"  queue depth every {every * args.poll:g} s from the controller's start: {timeline}")
        counts = [n for _, _, n, _ in samples[::every]]
        rates = " ".join(f"{b - a:.0f}" for a, b in itertools.pairwise(counts))
        if rates:
            print(f"  reconciles in each {every * args.poll:g} s: {rates}")
    if sampler.results:
        print(
            f"reconciles by result: {', '.join(f'{k} {v:.0f}' for k, v in sorted(sampler.results.items()))}"
        )
    if problems:
        print(f"controller log: {sum(n for n, _ in problems)} warnings/errors, e.g.:")
        for n, line in problems[:6]:
            print(f"  {n:>5} x {line}")
    total = sum(requests.values())
    top = ", ".join(f"{k} {v}" for k, v in sorted(requests.items(), key=lambda kv: -kv[1])[:8])
    print(f"requests to the fake meanwhile: {total} ({total / wall:.0f}/s): {top}")
    ok = bool(to_vs) and not missing and len(to_vs) == expected and len(promoted) == args.rollouts
    p99 = bench.percentile(to_vs, 99) if to_vs else float("inf")
    passed = ok and p99 < GOAL_P99_S
    measured = f"{p99 * 1000:.0f} ms (p50 {statistics.median(to_vs) * 1000:.0f} ms)" if to_vs else "none"
    print(f"\n{'goal':<42}{'measured':<26}{'target':<10}result")
    print(
        f"{'p99 verdict -> next weight applied':<42}{measured:<26}{'< 1 s':<10}{'PASS' if passed else 'FAIL'}"
    )
    if not ok:
        print("(FAIL also because not every verdict was timed or not every rollout was promoted)")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
