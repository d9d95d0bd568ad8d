"""The ``http`` task over several pods (``pods: N``): the split, the runner's hand-off, a shard's run.

The load of one endpoint is split N ways exactly as :mod:`.workers` splits it over processes
(connections and ``numRequests`` shared out so they add up, the rate divided, shard *k*'s open-loop
schedule offset by ``k / qps``), but each share runs in a pod of its own, coordinated through the
Kubernetes API by :mod:`..loadgen.shards`. The shards' encoded histograms and counts are merged
exactly as the workers' are: the result is the histogram one process sending the whole schedule
would have recorded.

Each shard runs one process (``workers`` stays 1 with ``pods``): the common start is taken after
its connections are open, inside the engine.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
from typing import Any

from kubectl_iter8 import cluster
from kubectl_iter8.errors import TaskError
from kubectl_iter8.kube import Kube, KubeOptions

from ..loadgen.shards import Coordinator, ShardFailure, ShardSide, share
from .engine import InitialError, LoadEngine, LoadPlan
from .stats import RunStats
from .target import Target

#: What ``--local`` (or any run outside a launched Job) says to a task with ``pods``.
LOCAL_HINT = (
    "pods: runs shard pods from an experiment launched in a cluster; to spread the load over "
    "this machine's cores, use workers"
)


def split_pods(plan: LoadPlan, pods: int) -> list[LoadPlan]:
    """``plan`` shared by exactly ``pods`` shards (the inputs guarantee a connection and, with
    ``numRequests``, a request for each)."""
    return [
        dataclasses.replace(
            plan,
            connections=share(plan.connections, k, pods),
            qps=plan.qps / pods,
            num_requests=None if plan.num_requests is None else share(plan.num_requests, k, pods),
            phase=plan.phase + (k / plan.qps if plan.qps > 0 else 0.0),
        )
        for k in range(pods)
    ]


def target_to_wire(target: Target) -> dict[str, Any]:
    data = dataclasses.asdict(target)
    data["body"] = None if target.body is None else target.body.decode("latin-1")
    return data


def target_from_wire(data: dict[str, Any]) -> Target:
    return Target(
        url=str(data["url"]),
        method=str(data["method"]),
        headers=tuple((str(k), str(v)) for k, v in data["headers"]),
        body=None if data["body"] is None else str(data["body"]).encode("latin-1"),
        content_type=data["content_type"],
        timeout=float(data["timeout"]),
        ca_file=data["ca_file"],
        cert_file=data["cert_file"],
        key_file=data["key_file"],
        insecure_skip_verify=bool(data["insecure_skip_verify"]),
        error_ranges=tuple((int(lo), int(hi)) for lo, hi in data["error_ranges"]),
    )


def plan_from_wire(data: dict[str, Any]) -> LoadPlan:
    return LoadPlan(
        connections=int(data["connections"]),
        qps=float(data["qps"]),
        num_requests=None if data["num_requests"] is None else int(data["num_requests"]),
        duration=None if data["duration"] is None else float(data["duration"]),
        allow_initial_errors=bool(data["allow_initial_errors"]),
        phase=float(data["phase"]),
    )


def run_timeout(target: Target, plan: LoadPlan) -> float | None:
    """Seconds the shards may take after their common start (None: a closed loop of N requests)."""
    if plan.duration is not None:
        return plan.duration + target.timeout
    if plan.num_requests is not None and plan.qps > 0:
        return plan.num_requests / plan.qps + target.timeout
    return None


async def load_in_pods(
    kube_options: KubeOptions, target: Target, plan: LoadPlan, pods: int, log: Any
) -> tuple[RunStats, dict[str, Any]]:
    """Run ``plan`` over ``pods`` shard pods; the merged stats and the run's timing.

    :raises InitialError: a shard's initial check failed (and initial errors are not allowed).
    :raises ShardFailure: a shard failed, was evicted or never started.
    """
    group, image = os.environ.get(cluster.GROUP_ENV), os.environ.get(cluster.IMAGE_ENV)
    if not group or not image:
        raise TaskError(LOCAL_HINT)
    work = {"target": target_to_wire(target), "plan": dataclasses.asdict(plan)}

    def coordinate() -> tuple[list[dict[str, Any]], dict[str, Any]]:
        with Kube(kube_options) as kube:
            coordinator = Coordinator(kube, group, kube.namespace, image, pods, log=log)
            results = coordinator.run("http", work, run_timeout(target, plan))
            return results, coordinator.timing

    try:
        results, timing = await asyncio.to_thread(coordinate)
    except ShardFailure as exc:
        if exc.initial is not None:
            raise InitialError(exc.initial) from None
        raise
    merged: RunStats | None = None
    for index, result in enumerate(results):
        if "stats" not in result:
            raise ShardFailure(f"shard {index} of {pods} returned no result")
        stats = RunStats.from_wire(result["stats"])
        if merged is None:
            merged = stats
        else:
            merged.merge(stats)
    assert merged is not None
    return merged, timing


def run_shard(kube: Kube, group: str, namespace: str, index: int) -> None:
    """Shard ``index``'s part of the current plan: open its connections, report ready, start at the
    common instant, report the encoded result (or the failure, which also fails this process)."""
    from kubectl_iter8.aio import run_async

    side = ShardSide(kube, group, namespace, index)
    plan = side.plan()
    try:
        work = plan["work"]
        target = target_from_wire(work["target"])
        mine = split_pods(plan_from_wire(work["plan"]), int(plan["shards"]))[index]
    except (KeyError, TypeError, ValueError) as exc:
        side.failed(f"unreadable plan: {exc}")
        raise TaskError(f"shard {index}: unreadable plan: {exc}") from None

    async def main() -> RunStats:
        engine = LoadEngine(target, mine)

        async def common_start() -> None:
            await asyncio.to_thread(side.ready)
            await asyncio.to_thread(side.wait_for_start)
            side.started()

        return await engine.run(before_start=common_start)

    try:
        stats = run_async(main())
    except InitialError as exc:
        side.failed(str(exc), initial=True)
        raise TaskError(f"shard {index}: initial request failed: {exc}") from None
    except Exception as exc:
        side.failed(f"{type(exc).__name__}: {exc}")
        raise
    side.done({"stats": stats.to_wire()})
