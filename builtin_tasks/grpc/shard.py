"""The ``grpc`` task over several pods (``pods: N``): the split, the runner's hand-off, a shard's run.

As for ``http`` (:mod:`..http.shard`): one endpoint's load is split N ways (``connections``,
``concurrency`` and ``total`` shared out so they add up, the rate divided, shard *k*'s open-loop
schedule offset by ``k / qps``) and run by N shard pods coordinated through the Kubernetes API
(:mod:`..loadgen.shards`); their histograms and counts are merged exactly.

The runner reads the descriptors, data and metadata once (files, URLs) and hands them to the shards
in the plan, so every shard sends exactly what one process would have; each shard connects, starts
at the common instant and returns its stats and its message counts. Template values that count
requests (``{{.RequestNumber}}``) count within each shard.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubectl_iter8 import cluster
from kubectl_iter8.errors import TaskError
from kubectl_iter8.kube import Kube

from ..loadgen.shards import Coordinator, ShardFailure, ShardSide, share
from ..loadgen.stats import RunStats
from .inputs import Endpoint, GrpcInputs, resolve
from .plan import Plan
from .sources import Sources

if TYPE_CHECKING:
    from kubectl_iter8.task import TaskContext

LOCAL_HINT = (
    "pods: runs shard pods from an experiment launched in a cluster; here, run one process "
    "(raise concurrency and connections instead)"
)
#: Counts in a shard's extra details that add up across shards.
_SUMMED = ("messagesSent", "messagesReceived", "concurrency")


def split_plan(endpoint: Endpoint, pods: int) -> list[Endpoint]:
    """``endpoint`` shared by exactly ``pods`` shards (the inputs guarantee each a share)."""
    plan = endpoint.plan

    def part(k: int) -> Plan:
        return dataclasses.replace(
            plan,
            concurrency=share(plan.concurrency, k, pods),
            qps=plan.qps / pods,
            total=None if plan.total is None else share(plan.total, k, pods),
            phase=plan.phase + (k / plan.qps if plan.qps > 0 else 0.0),
        )

    return [
        dataclasses.replace(endpoint, plan=part(k), connections=share(endpoint.connections, k, pods))
        for k in range(pods)
    ]


def sources_to_wire(sources: Sources) -> dict[str, Any]:
    return {
        "files": None
        if sources.files is None
        else [base64.b64encode(f.SerializeToString()).decode() for f in sources.files],
        "source": sources.source,
        "kind": sources.kind,
        "items": sources.items,
        "binary": None if sources.binary is None else base64.b64encode(sources.binary).decode(),
        "metadata": sources.metadata,
    }


def sources_from_wire(data: dict[str, Any]) -> Sources:
    from google.protobuf import descriptor_pb2

    sources = Sources()
    if data["files"] is not None:
        sources.files = [
            descriptor_pb2.FileDescriptorProto.FromString(base64.b64decode(f)) for f in data["files"]
        ]
    sources.source, sources.kind = str(data["source"]), str(data["kind"])
    sources.items = data["items"]
    sources.binary = None if data["binary"] is None else base64.b64decode(data["binary"])
    sources.metadata = data["metadata"]
    return sources


def run_timeout(plan: Plan) -> float | None:
    """Seconds the shards may take after their common start (None: a closed loop of N calls)."""
    if plan.duration is not None:
        return plan.duration + plan.timeout
    if plan.total is not None and plan.qps > 0:
        return plan.total / plan.qps + plan.timeout
    return None


async def load_in_pods(
    ctx: TaskContext, inputs: GrpcInputs, endpoint: Endpoint, sources: Sources
) -> tuple[RunStats, dict[str, Any]]:
    """Run ``endpoint`` over ``inputs.pods`` shard pods; the merged stats and extra details (with the
    run's timing under ``pods``).

    :raises ShardFailure: a shard failed (could not connect, ...), was evicted or never started.
    """
    group, image = os.environ.get(cluster.GROUP_ENV), os.environ.get(cluster.IMAGE_ENV)
    if not group or not image:
        raise TaskError(LOCAL_HINT)
    pods = inputs.pods
    work = {
        "inputs": inputs.model_dump(mode="json"),
        "prefix": endpoint.prefix,
        "sources": sources_to_wire(sources),
    }

    def coordinate() -> tuple[list[dict[str, Any]], dict[str, Any]]:
        with Kube(ctx.kube_options) as kube:
            coordinator = Coordinator(kube, group, kube.namespace, image, pods, log=ctx.log)
            results = coordinator.run("grpc", work, run_timeout(endpoint.plan))
            return results, coordinator.timing

    results, timing = await asyncio.to_thread(coordinate)
    merged: RunStats | None = None
    extra: dict[str, Any] = {}
    for index, result in enumerate(results):
        if "stats" not in result:
            raise ShardFailure(f"shard {index} of {pods} returned no result")
        stats = RunStats.from_wire(result["stats"])
        merged = stats if merged is None else _merged(merged, stats)
        for key, value in (result.get("extra") or {}).items():
            if key in _SUMMED:
                extra[key] = extra.get(key, 0) + int(value)
            elif key == "errorMessages":
                counts = extra.setdefault(key, {})
                for message, count in value.items():
                    counts[message] = counts.get(message, 0) + int(count)
            else:
                extra.setdefault(key, value)
    assert merged is not None
    if "errorMessages" in extra:
        extra["errorMessages"] = dict(sorted(extra["errorMessages"].items(), key=lambda kv: -kv[1]))
    extra["pods"] = timing
    return merged, extra


def _merged(total: RunStats, other: RunStats) -> RunStats:
    total.merge(other)
    return total


def run_shard(kube: Kube, group: str, namespace: str, index: int, load: Callable[..., Any]) -> None:
    """Shard ``index``'s part of the current plan: connect, report ready, start at the common
    instant, report the encoded result (or the failure, which also fails this process).

    ``load`` is the task's own connect-describe-run (``task._load``), passed in by the task.
    """
    from kubectl_iter8.aio import run_async
    from kubectl_iter8.task import TaskContext

    side = ShardSide(kube, group, namespace, index)
    plan = side.plan()
    try:
        work = plan["work"]
        inputs = GrpcInputs.model_validate(work["inputs"])
        endpoint = next(e for e in resolve(inputs) if e.prefix == work["prefix"])
        mine = split_plan(endpoint, int(plan["shards"]))[index]
        sources = sources_from_wire(work["sources"])
    except (KeyError, TypeError, ValueError, StopIteration) as exc:
        side.failed(f"unreadable plan: {exc}")
        raise TaskError(f"shard {index}: unreadable plan: {exc}") from None

    async def common_start() -> None:
        await asyncio.to_thread(side.ready)
        await asyncio.to_thread(side.wait_for_start)
        side.started()

    async def main() -> tuple[RunStats, dict[str, Any]]:
        from kubectl_iter8.result import Result

        os.environ.setdefault("GRPC_VERBOSITY", "NONE")
        ctx = TaskContext(result=Result(), details={}, work_dir=Path.cwd())
        result: tuple[RunStats, dict[str, Any]] = await load(
            ctx, mine, sources, {}, False, before_start=common_start
        )
        return result

    try:
        stats, extra = run_async(main())
    except Exception as exc:
        side.failed(str(exc) or type(exc).__name__)
        raise TaskError(f"shard {index}: {exc}") from None
    side.done({"stats": stats.to_wire(), "extra": extra})
