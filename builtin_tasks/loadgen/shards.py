"""A load test spread over pods: the runner coordinates, each shard pod runs its share.

A task with ``pods: N`` (in a cluster experiment) hands its load to N shard pods, each a Job of its
own made from :func:`kubectl_iter8.cluster.shard_job` (one ServiceAccount per shard, so that RBAC
lets shard *k* write its own result and nothing else; see :mod:`kubectl_iter8.cluster`). Everything
goes through the Kubernetes API, with objects made before the shards start:

* the **plan** (the Secret ``<group>-shards``, written by the runner, read by every shard): a run id,
  the task's name, what to run (the task's own wire form: the target with its headers, which may
  carry credentials, hence a Secret) and, once every shard is ready, the **start instant** on the
  runner's wall clock;
* one **result** per shard (``<group>-shard-<k>``, written by that shard only): ``ready`` with its
  wall clock once its connections are open, then ``done`` with its encoded histograms and counts, or
  ``failed`` with why.

The common start: the runner waits until every shard is ready (or fails the task after
:data:`READY_TIMEOUT`, naming the shards that never were), then sets the start instant
:data:`START_MARGIN` ahead; each shard sleeps until that instant on its own clock and starts its
schedule. So an open-loop test is one schedule split N ways, not N staggered ones.

Clock skew is bounded as NTP does, from the two exchanges: a shard's ``readyAt`` (its clock) was
written before the runner saw it (the runner's clock), and the plan's ``issuedAt`` (runner's clock)
was written before the shard saw it (``seenAt``, shard's clock). So shard clock - runner clock lies
in ``[readyAt - sawReadyAt, seenAt - issuedAt]``; both ends are recorded, with each shard's lag
between the start instant and its actual start.

A shard whose Job fails (its process dies, its pod is evicted: the Job's ``Failed`` condition says
why) or that reports ``failed`` fails the whole task, naming its index; the other shards' Jobs are
deleted. A partial merge is never returned.

Sizes: each shard writes its own object, so no object grows with N; the plan holds one start
instant and what to run (the payload included, capped at :data:`MAX_PLAN_BYTES`).
"""

from __future__ import annotations

import base64
import json
import statistics
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubectl_iter8 import cluster
from kubectl_iter8.errors import TaskError
from kubectl_iter8.kube import CONFIGMAPS, JOBS, SECRETS, Kube

PLAN_KEY = cluster.SHARD_PLAN_KEY
RESULT_KEY = "shard.json"
#: Seconds between two looks at the shards' results and Jobs (runner) or at the plan (shards).
POLL = 0.2
#: The same while the load runs: a failure is seen within a second, at a fifth of the API calls.
RUN_POLL = 1.0
#: The most reads per second the runner, and all shards together, send while they wait: the polls
#: slow down as shards are added (at 1000 shards, 10 s for the runner, 5 s for each shard), so the
#: API server's load stays flat; the price is a later start (see docs/distributed-load.md).
READS_PER_SECOND = 200.0
#: How far ahead of the moment every shard is ready the runner sets the start instant: enough for
#: every shard to see the plan (its poll) and be waiting when it comes.
START_MARGIN = 1.5
#: How long the shards may take to start and open their connections.
READY_TIMEOUT = 180.0
#: A ConfigMap holds at most 1 MiB; the plan stays well under it.
MAX_PLAN_BYTES = 900_000
#: How long a shard waits for the plan of its run, and for the start instant, at most.
SHARD_WAIT = READY_TIMEOUT + 60.0
#: Per-shard timing is kept in the task record for up to this many shards; beyond, summaries only
#: (the record lives in the experiment's Secret, 1 MiB for everything).
MAX_SHARD_DETAILS = 32


class ShardFailure(TaskError):
    """A shard failed, was evicted or never started: the task fails, naming it.

    ``initial`` is set when the shard's initial check failed (the task decides what that means).
    """

    def __init__(self, message: str, initial: str | None = None) -> None:
        super().__init__(message)
        self.initial = initial


def share(total: int, index: int, count: int) -> int:
    """Shard ``index``'s part of ``total`` split ``count`` ways: the parts differ by at most one and
    add up to exactly ``total``."""
    return total // count + (1 if index < total % count else 0)


def shard_poll(shards: int, base: float = POLL) -> float:
    """How often each of ``shards`` shards reads the plan while it waits."""
    return max(base, shards / READS_PER_SECOND)


def runner_poll(shards: int, base: float) -> float:
    """How often the runner looks at every shard (two reads each: its result and its Job)."""
    return max(base, 2 * shards / READS_PER_SECOND)


def _configmap(
    name: str, namespace: str, owner: dict[str, Any], key: str, value: dict[str, Any]
) -> dict[str, Any]:
    """A plan or result ConfigMap, owned by the experiment's Secret (``delete -g`` removes it)."""
    meta = owner["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {cluster.GROUP_LABEL: meta["name"]},
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "Secret", "name": meta["name"], "uid": meta["uid"]}
            ],
        },
        "data": {key: json.dumps(value, separators=(",", ":"))},
    }


def _read(obj: dict[str, Any] | None, key: str) -> dict[str, Any]:
    """The JSON under ``key`` of a ConfigMap or Secret ({} when absent or unreadable)."""
    text = ((obj or {}).get("data") or {}).get(key)
    if not text:
        return {}
    try:
        if (obj or {}).get("kind") == "Secret":
            text = base64.b64decode(text).decode("utf-8")
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _job_failure(job: dict[str, Any]) -> str | None:
    """Why a shard's Job failed, from its ``Failed`` condition (None while it has not)."""
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Failed" and condition.get("status") == "True":
            message = str(condition.get("message") or "")[:300]
            return f"{condition.get('reason', 'Failed')}: {message}" if message else condition.get("reason")
    return None


@dataclass
class _Shard:
    index: int
    phase: str = "waiting"
    #: The runner's clock when it first saw the shard ready.
    saw_ready_at: float | None = None
    report: dict[str, Any] = field(default_factory=dict)


class Coordinator:
    """The runner's side: start N shard Jobs, give them one start instant, collect their results.

    :param kube: a client as the runner's ServiceAccount.
    :param group: the experiment's group (its Secret owns every shard object).
    :param image: the shards' image (the runner's own).
    :param clock: the wall clock (``time.time``; tests may pass another).
    """

    def __init__(
        self,
        kube: Kube,
        group: str,
        namespace: str,
        image: str,
        shards: int,
        *,
        poll: float = POLL,
        ready_timeout: float = READY_TIMEOUT,
        clock: Callable[[], float] = time.time,
        log: Callable[[str], None] = lambda _: None,
    ) -> None:
        self.kube = kube
        self.group = group
        self.namespace = namespace
        self.image = image
        self.count = shards
        self.poll = poll
        self.ready_timeout = ready_timeout
        self.clock = clock
        self.log = log
        self.run_id = uuid.uuid4().hex[:12]
        #: What the run's timing was: the start instant, lags and clock-skew bounds (for the record).
        self.timing: dict[str, Any] = {}
        self._secret: dict[str, Any] = {}

    def run(self, task: str, work: dict[str, Any], run_timeout: float | None) -> list[dict[str, Any]]:
        """Run ``work`` on every shard; blocks (call it from a thread). Returns each shard's result, in
        index order. ``run_timeout``: seconds the shards may take after the start (None: no limit but
        the Job's own deadline)."""
        plan = {"runId": self.run_id, "task": task, "shards": self.count, "work": work, "start": None}
        size = len(json.dumps(plan))
        if size > MAX_PLAN_BYTES:
            raise TaskError(
                f"pods: the plan for the shards is {size} bytes, more than {MAX_PLAN_BYTES} "
                "(a payload that large cannot be handed to shard pods)"
            )
        secret = self._secret = self.kube.get(SECRETS, self.group, self.namespace)
        shards = [_Shard(k) for k in range(self.count)]
        self._clear_jobs()
        try:
            self._write_plan(plan)
            for shard in shards:
                result = _configmap(
                    cluster.shard_name(self.group, shard.index), self.namespace, self._secret, RESULT_KEY,
                    {"runId": self.run_id, "phase": "waiting"},
                )  # fmt: skip
                result["metadata"]["labels"][cluster.SHARD_LABEL] = str(shard.index)
                self.kube.apply(CONFIGMAPS, result, self.namespace)
            deadline = None if run_timeout is None else int(self.ready_timeout + run_timeout + 60)
            for shard in shards:
                job = cluster.shard_job(self.group, self.namespace, shard.index, self.image, secret, deadline)
                self.kube.create(JOBS, job, self.namespace)
            self.log(f"started {self.count} shard Jobs ({cluster.shard_name(self.group, 0)}, ...)")
            self._wait(shards, "ready", self.ready_timeout, runner_poll(self.count, self.poll))
            issued = self.clock()
            # Every shard must see the start before it comes: at most one of its polls away.
            start = issued + START_MARGIN + shard_poll(self.count)
            plan["start"] = {"at": start, "issuedAt": issued}
            self._write_plan(plan)
            budget = None if run_timeout is None else START_MARGIN + run_timeout + 30
            self._wait(shards, "done", budget, runner_poll(self.count, max(self.poll, RUN_POLL)))
        finally:
            self._delete_jobs()
        self.timing = self._timing(shards, start, issued)
        return [shard.report.get("result") or {} for shard in shards]

    # --- the objects ---------------------------------------------------------------------------

    def _write_plan(self, plan: dict[str, Any]) -> None:
        obj = _configmap(cluster.shard_plan_name(self.group), self.namespace, self._secret, PLAN_KEY, plan)
        obj["kind"] = "Secret"
        obj["type"] = "Opaque"
        obj["stringData"] = obj.pop("data")
        self.kube.apply(SECRETS, obj, self.namespace)

    def _clear_jobs(self) -> None:
        """Shard Jobs left by an earlier run (another task or endpoint) go first: names are fixed,
        as the Roles name them."""
        names = [n for n in self._job_names() if self.kube.delete(JOBS, n, self.namespace)]
        limit = time.monotonic() + 60
        while names and time.monotonic() < limit:
            names = [n for n in names if self.kube.find(JOBS, n, self.namespace) is not None]
            time.sleep(self.poll)
        if names:
            raise TaskError(f"pods: the earlier shard Job {names[0]!r} is still being deleted")

    def _delete_jobs(self) -> None:
        for name in self._job_names():
            try:
                self.kube.delete(JOBS, name, self.namespace)
            except Exception as exc:
                self.log(f"cannot delete shard Job {name}: {exc}")

    def _job_names(self) -> list[str]:
        return [cluster.shard_name(self.group, k) for k in range(self.count)]

    # --- waiting -------------------------------------------------------------------------------

    def _wait(self, shards: list[_Shard], phase: str, timeout: float | None, poll: float) -> None:
        """Until every shard reached ``phase``; a failed shard or Job fails the run at once."""
        limit = None if timeout is None else time.monotonic() + timeout
        while True:
            pending = [s for s in shards if s.phase != phase]
            for shard in pending:
                self._look(shard)
            pending = [s for s in shards if s.phase != phase]
            if not pending:
                return
            if limit is not None and time.monotonic() > limit:
                what = "ready" if phase == "ready" else "done"
                listed = ", ".join(str(s.index) for s in pending[:20])
                more = f" and {len(pending) - 20} more" if len(pending) > 20 else ""
                raise ShardFailure(
                    f"shard {listed}{more} of {self.count} not {what} after {timeout:.0f}s "
                    f"(pods not started, or stuck; kubectl get pods -l {cluster.GROUP_LABEL}={self.group})"
                )
            time.sleep(poll)

    def _look(self, shard: _Shard) -> None:
        name = cluster.shard_name(self.group, shard.index)
        report = self._report_of(shard)
        if report.get("runId") == self.run_id:
            phase = str(report.get("phase", "waiting"))
            if phase in ("ready", "done"):
                if shard.saw_ready_at is None:
                    shard.saw_ready_at = self.clock()
                shard.phase = phase
                shard.report = report
                if phase == "done":
                    return
        # Not done yet: its Job says whether it still can be (a killed or evicted pod says nothing).
        job = self.kube.find(JOBS, name, self.namespace)
        if job is None:
            raise ShardFailure(f"shard {shard.index} of {self.count}: its Job {name!r} is gone")
        why = _job_failure(job)
        if why is not None:
            # A shard that failed on its own said why just before it exited: its words, if any.
            self._report_of(shard)
            raise ShardFailure(f"shard {shard.index} of {self.count} failed: {why}")

    def _report_of(self, shard: _Shard) -> dict[str, Any]:
        """The shard's result; raises when the shard reported that it failed."""
        name = cluster.shard_name(self.group, shard.index)
        report = _read(self.kube.find(CONFIGMAPS, name, self.namespace), RESULT_KEY)
        if report.get("runId") == self.run_id and report.get("phase") == "failed":
            error = str(report.get("error"))[:500]
            raise ShardFailure(
                f"shard {shard.index} of {self.count} failed: {error}",
                initial=error if report.get("initial") else None,
            )
        return report

    # --- the record ----------------------------------------------------------------------------

    def _timing(self, shards: list[_Shard], start: float, issued: float) -> dict[str, Any]:
        rows: list[dict[str, Any]] = []
        for shard in shards:
            report = shard.report
            low = float(report.get("readyAt", 0.0)) - float(shard.saw_ready_at or 0.0)
            high = float(report.get("seenAt", 0.0)) - issued
            rows.append(
                {
                    "shard": shard.index,
                    "startLagMs": round(1000 * (float(report.get("startedAt", start)) - start), 3),
                    "clockSkewMs": [round(1000 * low, 3), round(1000 * high, 3)],
                }
            )
        lags = [row["startLagMs"] for row in rows]
        timing: dict[str, Any] = {
            "pods": self.count,
            "startAt": start,
            "startLagMs": {"mean": round(statistics.fmean(lags), 3), "max": max(lags)},
            # The widest bound on any shard's clock offset from the runner's.
            "clockSkewBoundMs": max(max(abs(v) for v in row["clockSkewMs"]) for row in rows),
        }
        if len(rows) <= MAX_SHARD_DETAILS:
            timing["shards"] = rows
        return timing


class ShardSide:
    """A shard's side: read the plan, report ready, wait for the start instant, report the result.

    Writes go to this shard's own result ConfigMap only (its Role allows nothing else).
    """

    def __init__(
        self,
        kube: Kube,
        group: str,
        namespace: str,
        index: int,
        *,
        poll: float = POLL,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.kube = kube
        self.group = group
        self.namespace = namespace
        self.index = index
        self.poll = poll
        self.clock = clock
        self.name = cluster.shard_name(group, index)
        self.run_id = ""
        self.shards = 0
        self._report: dict[str, Any] = {}

    def plan(self) -> dict[str, Any]:
        """The plan of the run this shard belongs to (its result object names the run)."""
        limit = time.monotonic() + SHARD_WAIT
        while True:
            mine = _read(self.kube.find(CONFIGMAPS, self.name, self.namespace), RESULT_KEY)
            plan = _read(
                self.kube.find(SECRETS, cluster.shard_plan_name(self.group), self.namespace), PLAN_KEY
            )
            if mine.get("runId") and plan.get("runId") == mine["runId"]:
                self.run_id = str(mine["runId"])
                self.shards = int(plan.get("shards", 0))
                if not 0 <= self.index < self.shards:
                    raise TaskError(f"shard {self.index}: the plan has {plan.get('shards')} shards")
                return plan
            if time.monotonic() > limit:
                raise TaskError(f"shard {self.index}: no plan for this shard's run")
            time.sleep(self.poll)

    def ready(self) -> None:
        self._send({"phase": "ready", "readyAt": self.clock()})

    def wait_for_start(self) -> None:
        """Until the start instant (on this shard's clock); records when the plan's start was seen."""
        limit = time.monotonic() + SHARD_WAIT
        poll = shard_poll(self.shards, self.poll)
        while True:
            plan = _read(
                self.kube.find(SECRETS, cluster.shard_plan_name(self.group), self.namespace), PLAN_KEY
            )
            if plan.get("runId") != self.run_id:
                raise TaskError(f"shard {self.index}: the run was replaced")
            start = plan.get("start")
            if isinstance(start, dict):
                self._report["seenAt"] = self.clock()
                self._report["startAt"] = float(start["at"])
                break
            if time.monotonic() > limit:
                raise TaskError(f"shard {self.index}: no start instant came")
            time.sleep(poll)
        delay = self._report["startAt"] - self.clock()
        if delay > 0:
            time.sleep(delay)

    def started(self) -> None:
        """Call when the schedule really starts: the lag behind the start instant is recorded."""
        self._report["startedAt"] = self.clock()

    def done(self, result: dict[str, Any]) -> None:
        self._send({"phase": "done", "result": result})

    def failed(self, error: str, *, initial: bool = False) -> None:
        self._send({"phase": "failed", "error": error[:2000], "initial": initial})

    def _send(self, update: dict[str, Any]) -> None:
        self._report.update(update, runId=self.run_id)
        body = {"data": {RESULT_KEY: json.dumps(self._report, separators=(",", ":"))}}
        self.kube.patch(CONFIGMAPS, self.name, body, self.namespace)


__all__ = ["Coordinator", "ShardFailure", "ShardSide", "share"]
