"""Load spread over pods: the exact split, the wire form, the inputs, the shard RBAC that launch makes."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Callable

import pytest
import yaml
from kubectl_iter8.builtin_tasks.http.engine import LoadPlan
from kubectl_iter8.builtin_tasks.http.shard import (
    LOCAL_HINT,
    load_in_pods,
    plan_from_wire,
    split_pods,
    target_from_wire,
    target_to_wire,
)
from kubectl_iter8.builtin_tasks.http.target import Target
from kubectl_iter8.builtin_tasks.http.task import HttpInputs
from kubectl_iter8.builtin_tasks.loadgen.pacing import requests_within
from kubectl_iter8.builtin_tasks.loadgen.shards import (
    READS_PER_SECOND,
    RESULT_KEY,
    Coordinator,
    _configmap,
    _job_failure,
    _read,
    _Shard,
    runner_poll,
    shard_poll,
    share,
)
from kubectl_iter8.builtin_tasks.loadgen.stats import RunStats, record_all
from pydantic import ValidationError

from kubectl_iter8 import cluster
from kubectl_iter8.errors import TaskError
from kubectl_iter8.kube import KubeOptions


@pytest.mark.parametrize(("total", "count"), [(2000, 4), (7, 3), (1001, 1000), (5, 5)])
def test_shares_add_up_and_differ_by_at_most_one(total: int, count: int) -> None:
    parts = [share(total, k, count) for k in range(count)]
    assert sum(parts) == total
    assert max(parts) - min(parts) <= 1


def test_split_pods_keeps_one_schedule_and_exact_counts() -> None:
    parts = split_pods(LoadPlan(connections=10, qps=200, num_requests=1003), 4)
    assert [p.connections for p in parts] == [3, 3, 2, 2]
    assert [p.num_requests for p in parts] == [251, 251, 251, 250]
    assert [p.qps for p in parts] == [50, 50, 50, 50]
    assert [p.phase for p in parts] == pytest.approx([0, 0.005, 0.010, 0.015])
    # By time: 4 shards at 50/s for 10 s with their phases issue exactly what one process at 200/s would.
    timed = split_pods(LoadPlan(connections=8, qps=200, duration=10), 4)
    assert sum(requests_within(10, p.qps, p.phase) for p in timed) == requests_within(10, 200) == 2000
    # Closed loop: no phases, the connections split.
    closed = split_pods(LoadPlan(connections=4, qps=0, duration=1), 4)
    assert {p.phase for p in closed} == {0.0}
    assert [p.connections for p in closed] == [1, 1, 1, 1]


def test_target_and_plan_round_trip_through_json() -> None:
    target = Target(
        url="http://127.0.0.1:1/x?q=1", method="POST", headers=(("X-A", "b"),), body=b"\x00\xffbody",
        content_type="application/octet-stream", timeout=3.5, error_ranges=((500, 599), (404, 404)),
    )  # fmt: skip
    assert target_from_wire(json.loads(json.dumps(target_to_wire(target)))) == target
    plan = LoadPlan(connections=3, qps=7.5, duration=2.0, allow_initial_errors=True, phase=0.25)
    assert plan_from_wire(json.loads(json.dumps(dataclasses.asdict(plan)))) == plan


def test_shard_results_merge_failed_requests_durations_exactly_through_their_configmaps() -> None:
    # What run_shard writes (through ShardSide: JSON in a ConfigMap) and load_in_pods merges.
    owner = {"metadata": {"name": "g", "uid": "u"}}
    durations = [[1_500, 250_000, 250_000], [9_000], []]
    merged = RunStats()
    for index, values in enumerate(durations):
        stats = RunStats(statuses={503: len(values)})
        record_all(stats.error_latency, values)
        configmap = _configmap(f"g-shard-{index}", "ns", owner, RESULT_KEY, {"stats": stats.to_wire()})
        merged.merge(RunStats.from_wire(_read(json.loads(json.dumps(configmap)), RESULT_KEY)["stats"]))
    whole = RunStats()
    record_all(whole.error_latency, [v for values in durations for v in values])
    assert merged.error_latency.encode() == whole.error_latency.encode()
    assert merged.error_latency.get_total_count() == 4 == merged.statuses[503]


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"pods": 1001}, "at most 1000"),
        ({"pods": 0}, "greater than or equal to 1"),
        ({"pods": 5}, "5 pods need at least as many connections, not 4"),
        ({"pods": 2, "numRequests": 1}, "2 pods need at least as many numRequests, not 1"),
        ({"pods": 2, "workers": 2}, "use workers: 1 with pods"),
        (
            {"pods": 3, "connections": 3, "endpoints": {"a": {"connections": 2}}},
            r"not 2 \(endpoint 'a'\)",
        ),
    ],
)
def test_pods_inputs_are_checked(inputs: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        HttpInputs.model_validate({"url": "http://127.0.0.1:1/", **inputs})


def test_a_run_outside_a_launched_job_refuses_pods(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(cluster.GROUP_ENV, raising=False)
    with pytest.raises(TaskError, match="use workers"):
        asyncio.run(load_in_pods(KubeOptions(), Target(url="http://127.0.0.1:1/"), LoadPlan(), 2, print))
    assert "workers" in LOCAL_HINT


@pytest.fixture
def objects(cli, fake_kube) -> Callable[[int], list[dict]]:
    """What ``launch --dry-run`` would create for an http task with ``pods``."""

    def made(pods: int) -> list[dict]:
        outcome = cli(
            "launch", "--dry-run", "-g", "g", "-n", "ns", "--image", "img", "--set", "tasks={http}",
            "--set", "http.url=http://127.0.0.1:1/", "--set", f"http.pods={pods}", "--set", "http.connections=8",
        )  # fmt: skip
        assert outcome.code == 0, outcome.err
        return list(yaml.safe_load_all(outcome.out))

    return made


def test_launch_gives_each_shard_an_account_that_writes_only_its_own_result(objects) -> None:
    objects = objects(3)
    by_kind: dict[str, list[str]] = {}
    for obj in objects:
        by_kind.setdefault(obj["kind"], []).append(obj["metadata"]["name"])
    shards = ["g-shard-0", "g-shard-1", "g-shard-2"]
    assert by_kind["ServiceAccount"] == ["g-iter8", *shards]
    assert by_kind["Role"] == ["g-iter8", *shards]
    assert by_kind["RoleBinding"] == ["g-iter8", *shards]
    role = next(o for o in objects if o["kind"] == "Role" and o["metadata"]["name"] == "g-shard-1")
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["g-shards"], "verbs": ["get"]},
        {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["g-shard-1"],
         "verbs": ["get", "update", "patch"]},
    ]  # fmt: skip
    binding = next(o for o in objects if o["kind"] == "RoleBinding" and o["metadata"]["name"] == "g-shard-1")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "g-shard-1", "namespace": "ns"}]
    runner = next(o for o in objects if o["kind"] == "Role" and o["metadata"]["name"] == "g-iter8")
    assert runner["rules"][1:] == [
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]},
        {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["g-shards"],
         "verbs": ["get", "update", "patch", "delete"]},
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create"]},
        {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": shards,
         "verbs": ["get", "update", "patch", "delete"]},
        {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create"]},
        {"apiGroups": ["batch"], "resources": ["jobs"], "resourceNames": shards, "verbs": ["get", "delete"]},
    ]  # fmt: skip
    job = next(o for o in objects if o["kind"] == "Job")
    env = {e["name"]: e.get("value") for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env[cluster.GROUP_ENV] == "g"
    assert env[cluster.IMAGE_ENV] == "img"


def test_one_pod_adds_no_shard_objects_or_rights(objects) -> None:
    objects = objects(1)
    assert [o["metadata"]["name"] for o in objects if o["kind"] == "Role"] == ["g-iter8"]
    runner = next(o for o in objects if o["kind"] == "Role")
    assert len(runner["rules"]) == 1


def test_a_shard_job_is_never_retried_and_fails_on_any_failed_pod() -> None:
    owner = {"metadata": {"name": "g", "uid": "u1"}}
    job = cluster.shard_job("g", "ns", 2, "img", owner, 120)
    spec = job["spec"]
    assert job["metadata"]["name"] == "g-shard-2"
    assert job["metadata"]["ownerReferences"][0]["uid"] == "u1"
    assert spec["backoffLimit"] == 0
    assert spec["activeDeadlineSeconds"] == 120
    assert [r["action"] for r in spec["podFailurePolicy"]["rules"]] == ["FailJob", "FailJob"]
    pod = spec["template"]["spec"]
    assert pod["serviceAccountName"] == "g-shard-2"
    assert pod["containers"][0]["command"][-2:] == ["--shard", "2"]
    assert pod["securityContext"]["runAsNonRoot"] is True


def test_why_a_shard_job_failed_comes_from_its_condition() -> None:
    assert _job_failure({"status": {}}) is None
    failed = {
        "status": {
            "conditions": [
                {"type": "Complete", "status": "False"},
                {
                    "type": "Failed",
                    "status": "True",
                    "reason": "PodFailurePolicy",
                    "message": "exit code 137",
                },
            ]
        }
    }
    assert _job_failure(failed) == "PodFailurePolicy: exit code 137"


def test_timing_bounds_each_shards_clock_offset() -> None:
    coordinator = Coordinator.__new__(Coordinator)
    coordinator.count = 2

    # Shard 1's clock runs 2 s ahead: it wrote ready at its 102.0 (runner saw it at 100.5), saw the
    # plan issued at the runner's 101.0 at its 103.2, and started 10 ms after the start instant.
    shards = [
        _Shard(0, "done", 100.4, {"readyAt": 100.3, "seenAt": 101.2, "startedAt": 102.501}),
        _Shard(1, "done", 100.5, {"readyAt": 102.0, "seenAt": 103.2, "startedAt": 102.51}),
    ]
    timing = coordinator._timing(shards, start=102.5, issued=101.0)
    rows = timing["shards"]
    assert rows[0]["clockSkewMs"] == [pytest.approx(-100.0), pytest.approx(200.0)]
    assert rows[1]["clockSkewMs"] == [pytest.approx(1500.0), pytest.approx(2200.0)]
    assert rows[1]["startLagMs"] == pytest.approx(10.0)
    assert timing["startLagMs"]["max"] == pytest.approx(10.0)
    assert timing["clockSkewBoundMs"] == pytest.approx(2200.0)


def test_polls_slow_down_with_more_shards_so_the_api_load_stays_flat() -> None:
    assert shard_poll(4) == 0.2
    assert runner_poll(4, 0.2) == 0.2
    # At 1000 shards: the shards together read the plan 200 times a second, the runner reads
    # every shard's result and Job once in 10 s.
    assert 1000 / shard_poll(1000) == READS_PER_SECOND == 200
    assert runner_poll(1000, 0.2) == 10


def test_a_relaunch_with_fewer_pods_removes_the_dropped_shards(cli, fake_kube) -> None:
    def launch(pods: int) -> None:
        outcome = cli(
            "launch", "-g", "g", "--schedule", "0 0 1 1 *", "--set", "tasks={http}",
            "--set", "http.url=http://127.0.0.1:1/", "--set", f"http.pods={pods}", "--set", "http.connections=8",
        )  # fmt: skip
        assert outcome.code == 0, outcome.err

    def shards(kind: str) -> list[str]:
        return sorted(o["metadata"]["name"] for o in fake_kube.list(kind, labels="iter8.tools/shard"))

    launch(3)
    assert shards("serviceaccounts") == ["g-shard-0", "g-shard-1", "g-shard-2"]
    launch(2)
    for kind in ("serviceaccounts", "roles", "rolebindings"):
        assert shards(kind) == ["g-shard-0", "g-shard-1"], kind
    launch(1)
    for kind in ("serviceaccounts", "roles", "rolebindings"):
        assert shards(kind) == [], kind


def test_a_shard_without_a_plan_says_so(cli, fake_kube) -> None:
    outcome = cli("run", "-g", "g", "--shard", "0")
    assert outcome.code != 0
    assert "shard 0: no shard plan for a task that runs in pods in group 'g'" in outcome.err
    assert "Traceback" not in outcome.err
    assert cli("run", "-g", "g", "--shard", "-1").code != 0
