"""The ``grpc`` task over pods: the exact split, its inputs, and what the runner hands the shards."""

from __future__ import annotations

import json

import pytest
from grpc_fixtures import ECHO_PROTO, PROTOS
from kubectl_iter8.builtin_tasks.grpc.inputs import GrpcInputs, resolve
from kubectl_iter8.builtin_tasks.grpc.shard import sources_from_wire, sources_to_wire, split_plan
from kubectl_iter8.builtin_tasks.grpc.task import _read_sources
from kubectl_iter8.builtin_tasks.loadgen.pacing import requests_within
from pydantic import ValidationError

BASE = {"host": "127.0.0.1:1", "call": "iter8.test.Echo/Unary"}


def test_split_shares_connections_concurrency_calls_and_rate() -> None:
    inputs = GrpcInputs.model_validate(
        {**BASE, "total": 1001, "qps": 90, "concurrency": 10, "connections": 4, "pods": 3}
    )
    parts = split_plan(resolve(inputs)[0], 3)
    assert [p.connections for p in parts] == [2, 1, 1]
    assert [p.plan.concurrency for p in parts] == [4, 3, 3]
    assert [p.plan.total for p in parts] == [334, 334, 333]
    assert [p.plan.qps for p in parts] == [30, 30, 30]
    assert [p.plan.phase for p in parts] == pytest.approx([0, 1 / 90, 2 / 90])
    timed = split_plan(resolve(GrpcInputs.model_validate({**BASE, "duration": "10s", "qps": 90,
                                                          "connections": 3, "pods": 3}))[0], 3)  # fmt: skip
    assert sum(requests_within(10, p.plan.qps, p.plan.phase) for p in timed) == requests_within(10, 90)


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"pods": 2}, "2 pods need at least as many connections, not 1"),
        ({"pods": 3, "connections": 3, "concurrency": 2}, "at least as many concurrency, not 2"),
        ({"pods": 3, "connections": 3, "total": 2}, "at least as many total, not 2"),
        ({"pods": 1001}, "at most 1000"),
    ],
)
def test_pods_inputs_are_checked(inputs: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        GrpcInputs.model_validate({**BASE, **inputs})


def test_the_sources_the_runner_read_reach_the_shards_unchanged() -> None:
    inputs = GrpcInputs.model_validate(
        {**BASE, "proto": str(ECHO_PROTO), "importPaths": [str(PROTOS)], "data": [{"name": "a"}, {"name": "b"}],
         "metadata": {"x-team": "checkout"}}
    )  # fmt: skip
    sources = _read_sources(resolve(inputs)[0], False)
    back = sources_from_wire(json.loads(json.dumps(sources_to_wire(sources))))
    assert back.files == sources.files
    assert (back.source, back.kind, back.items, back.metadata, back.binary) == (
        sources.source, sources.kind, sources.items, sources.metadata, None,
    )  # fmt: skip
    assert GrpcInputs.model_validate(inputs.model_dump(mode="json")) == inputs
