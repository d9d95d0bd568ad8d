"""``kubectl iter8 release``: the commands against a controller (the harness), on the fake and a real server.

Most commands run in-process (``cli``); a few go through the real ``kubectl`` binary (``kubectl``
fixture) as a user would run them. The test router (``iter8_controller_test_plugin``) is loaded by
the CLI through ``ITER8_PLUGINS``; the harness checks the routing invariant over the whole write
history at the end of every test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from controller_helpers import Harness, Kube, create_version, deployment, routes, service, wait_until

from kubectl_iter8.testing import FakeKube

HERE = Path(__file__).resolve().parent
CREATE = (
    "release", "create", "app",
    "--version", "svc/v1,deploy/v1",
    "--version", "svc/v2,deploy/v2",
    "--weight", "90", "--weight", "10",
    "--router", "test", "--set", "host=app",
)  # fmt: skip


@pytest.fixture(autouse=True)
def test_router(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI (in-process and as a process) knows the test router."""
    monkeypatch.setenv("ITER8_PLUGINS", "iter8_controller_test_plugin")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])))


def spec(kube: Kube, name: str = "app") -> dict[str, object]:
    loaded = yaml.safe_load(kube.get("configmaps", name)["data"]["strSpec"])
    assert isinstance(loaded, dict)
    return loaded


def weights(kube: Kube) -> list[tuple[str, object]]:
    return [(v["resources"][0]["name"], v.get("weight")) for v in spec(kube)["versions"]]  # type: ignore[attr-defined]


def routing_writes(harness: Harness) -> list[list[dict[str, object]]]:
    """The routes of every write of the routing ConfigMap ``app-routing``, in order."""
    return [
        json.loads(e.new["data"]["routes"])
        for e in harness.history.events
        if e.resource == "configmaps" and e.new["metadata"]["name"] == "app-routing" and e.type != "DELETED"
    ]


def unlabelled_version(kube: Kube, name: str) -> None:
    """A ready Service and Deployment without the watch label (``release create`` adds it)."""
    svc, deploy = service(name), deployment(name)
    del svc["metadata"]["labels"]["iter8.tools/watch"]
    del deploy["metadata"]["labels"]["iter8.tools/watch"]
    kube.create(svc)
    if isinstance(kube, FakeKube):
        kube.controllers.deployments = 0.0
    kube.create(deploy)
    kube.wait_for("deployments", name, lambda o: bool((o.get("status") or {}).get("conditions")))


def test_create_labels_resources_and_get_shows_versions(harness: Harness, kube: Kube, kubectl) -> None:
    unlabelled_version(kube, "v1")
    unlabelled_version(kube, "v2")
    harness.start()
    out = kubectl(*CREATE)
    assert out.code == 0, out.err
    assert out.out == 'release "app" created: 2 versions, router test, blue-green\n'
    for resource in ("services", "deployments"):
        for name in ("v1", "v2"):
            assert kube.get(resource, name)["metadata"]["labels"]["iter8.tools/watch"] == "true"
    cm = kube.get("configmaps", "app")
    assert cm["metadata"]["labels"] == {"iter8.tools/kind": "routemap"}
    assert spec(kube)["routing"] == {"router": "test", "strategy": "blue-green", "host": "app"}
    assert weights(kube) == [("v1", 90), ("v2", 10)]
    wait_until(lambda: routes(kube) == {"v1": 90, "v2": 10}, what="routes")

    status = kubectl("release", "status", "app", "--timeout", "10s")
    assert status.code == 0, status.err
    got = kubectl("release", "get", "app")
    assert got.code == 0, got.err
    lines = got.out.splitlines()
    assert lines[0] == f"release {kube.namespace}/app  router: test  strategy: blue-green"
    assert lines[1].split() == ["VERSION", "ROLE", "RESOURCES", "AVAILABLE", "DESIRED", "APPLIED", "REASON"]
    assert lines[2].split() == ["v1", "primary", "svc/v1,deploy/v1", "yes", "90", "90"]
    assert lines[3].split() == ["v2", "candidate", "svc/v2,deploy/v2", "yes", "10", "10"]
    assert lines[4] == "status: applied"
    as_json = json.loads(kubectl("release", "get", "app", "-o", "json").out)
    assert as_json["ready"] is True
    assert [(v["name"], v["desired"], v["applied"], v["available"]) for v in as_json["versions"]] == [
        ("v1", 90, 90, True),
        ("v2", 10, 10, True),
    ]
    assert as_json["routing_objects"][0]["name"] == "app-routing"


def test_dry_run_prints_the_routemap_and_writes_nothing(kube: Kube, cli) -> None:
    out = cli(*CREATE, "--match", '1={headers: {x-canary: {exact: "true"}}}', "--dry-run")
    assert out.code == 0, out.err
    cm = yaml.safe_load(out.out)
    assert cm["metadata"] == {
        "name": "app",
        "namespace": kube.namespace,
        "labels": {"iter8.tools/kind": "routemap"},
    }
    versions = yaml.safe_load(cm["data"]["strSpec"])["versions"]
    assert versions[1]["match"] == [{"headers": {"x-canary": {"exact": "true"}}}]
    assert not kube.exists("configmaps", "app")


def test_status_times_out_until_the_candidate_is_ready(harness: Harness, kube: Kube, cli) -> None:
    create_version(kube, "v1")
    create_version(kube, "v2", ready=False)
    harness.start()
    assert cli(*CREATE).code == 0
    started = time.monotonic()
    out = cli("release", "status", "app", "--timeout", "1s")
    assert out.code == 1
    assert time.monotonic() - started < 5
    assert out.err.startswith(
        'error: timed out after 1s waiting for release "app": version v2 is not available: '
    )
    assert len(out.err.splitlines()) == 1
    got = cli("release", "get", "app")
    row = got.out.splitlines()[3].split(maxsplit=6)
    # The fake writes no status for a Deployment it holds back; the real controller reports it unavailable.
    reason = (
        "no status reported yet"
        if isinstance(kube, FakeKube)
        else "condition Available is False (MinimumReplicasUnavailable)"
    )
    assert row == [
        "v2",
        "candidate",
        "svc/v2,deploy/v2",
        "no",
        "10",
        "0",
        f'deploy "{kube.namespace}/v2": {reason}',
    ]
    assert got.out.splitlines()[-1].startswith("status: pending: version v2 is not available")
    kube.mark_ready("deployments", "v2")
    out = cli("release", "status", "app", "--timeout", "10s")
    assert out.code == 0, out.err
    assert routes(kube) == {"v1": 90, "v2": 10}
    # --for all-available also needs every version available; a usage error exits 2.
    assert cli("release", "status", "app", "--for", "all-available").code == 0
    assert cli("release", "status", "app", "--timeout", "soon").code == 2
    assert cli("release", "status", "app", "--for", "nope").code == 2


def test_weight_change_is_applied_and_overrides_annotations(harness: Harness, kube: Kube, cli) -> None:
    create_version(kube, "v1")
    create_version(kube, "v2", **{"iter8.tools/weight": "5"})
    harness.start()
    assert cli(*CREATE).code == 0
    assert cli("release", "status", "app", "--timeout", "10s").code == 0
    assert routes(kube) == {"v1": 90, "v2": 5}
    got = json.loads(cli("release", "get", "app", "-o", "json").out)
    assert (got["versions"][1]["desired"], got["versions"][1]["source"]) == (5, "annotation")
    out = cli("release", "weight", "app", "v2", "30")
    assert out.code == 0, out.err
    assert weights(kube) == [("v1", 90), ("v2", 30)]
    assert "iter8.tools/weight" not in (kube.get("deployments", "v2")["metadata"].get("annotations") or {})
    assert cli("release", "status", "app", "--timeout", "10s").code == 0
    assert routes(kube) == {"v1": 90, "v2": 30}
    # By index too.
    assert cli("release", "weight", "app", "0", "70").code == 0
    assert cli("release", "status", "app", "--timeout", "10s").code == 0
    assert routes(kube) == {"v1": 70, "v2": 30}


def test_weight_refuses_to_leave_no_available_version_serving(harness: Harness, kube: Kube, cli) -> None:
    create_version(kube, "v1")
    create_version(kube, "v2", ready=False)
    harness.start()
    assert cli(*CREATE).code == 0
    wait_until(lambda: routes(kube) == {"v1": 90}, what="routes")
    wait_until(lambda: cli("release", "get", "app", "-o", "json").out.count('"available": false') == 1)
    before = kube.get("configmaps", "app")["metadata"]["resourceVersion"]
    out = cli("release", "weight", "app", "v1", "0")
    assert out.code == 1
    assert (
        out.err
        == "error: refusing to set the weight of v1 to 0: no available version would receive traffic\n"
    )
    assert kube.get("configmaps", "app")["metadata"]["resourceVersion"] == before


def test_promote_swaps_the_primary_with_a_ready_version_serving_throughout(
    harness: Harness, kube: Kube, kubectl
) -> None:
    create_version(kube, "v1")
    create_version(kube, "v2")
    harness.start()
    assert kubectl(*CREATE).code == 0
    assert kubectl("release", "status", "app", "--timeout", "10s").code == 0
    out = kubectl("release", "promote", "app", "--timeout", "20s")
    assert out.code == 0, out.err
    assert out.out.splitlines()[-1] == 'release "app": v2 promoted'
    assert weights(kube) == [("v2", 100)]
    assert routes(kube) == {"v2": 100}
    writes = routing_writes(harness)
    # 90/10, then all to v2 while v1 is still the fallback, then v2 as the primary.
    assert [[(r["version"], r["name"], r["weight"]) for r in w] for w in writes] == [
        [(0, "v1", 90), (1, "v2", 10)],
        [(1, "v2", 100)],
        [(0, "v2", 100)],
    ]
    # Every routing write sent traffic to some version, and (checked over the whole history, with
    # the availability recomputed from scratch) only to versions available at that moment; both
    # stayed available throughout, so the "nothing available" fallback never applied.
    assert all(any(r["weight"] > 0 for r in w) for w in writes)
    assert harness.check_invariant(at_least=3) >= 3
    # The old primary is left alone (still labelled); the controller no longer routes to it.
    assert kube.exists("deployments", "v1")


def test_promote_keep_previous_and_by_name(harness: Harness, kube: Kube, cli) -> None:
    for name in ("v1", "v2", "v3"):
        create_version(kube, name)
    harness.start()
    create = (
        *CREATE[:7], "--version", "svc/v3,deploy/v3",
        "--weight", "90", "--weight", "5", "--weight", "5", "--router", "test",
    )  # fmt: skip
    assert cli(*create).code == 0
    out = cli("release", "promote", "app")
    assert out.code == 2
    assert out.err == "error: name the version to promote (candidates: v2, v3)\n"
    assert cli("release", "promote", "app", "v1").err == "error: version v1 is already the primary\n"
    out = cli("release", "promote", "app", "v3", "--keep-previous", "--timeout", "20s")
    assert out.code == 0, out.err
    assert weights(kube) == [("v3", 100), ("v1", 0), ("v2", 0)]
    assert routes(kube) == {"v3": 100}


def test_promote_with_the_canary_strategy_swaps_in_one_write(harness: Harness, kube: Kube, cli) -> None:
    create_version(kube, "v1")
    create_version(kube, "v2")
    harness.start()
    assert cli(*CREATE, "--strategy", "canary", "--match", "1={headers: {x: {exact: y}}}").code == 0
    wait_until(lambda: routes(kube) == {"v1": "default", "v2": "match"}, what="routes")
    out = cli("release", "promote", "app", "v2", "--timeout", "20s")
    assert out.code == 0, out.err
    assert "step 1/2" not in out.out
    assert routes(kube) == {"v2": "default"}
    assert [[r["name"] for r in w] for w in routing_writes(harness)] == [["v1", "v2"], ["v2"]]


def test_promote_refuses_an_unavailable_candidate(harness: Harness, kube: Kube, cli) -> None:
    create_version(kube, "v1")
    create_version(kube, "v2", ready=False)
    harness.start()
    assert cli(*CREATE).code == 0
    wait_until(
        lambda: (
            json.loads(cli("release", "get", "app", "-o", "json").out)["versions"][1]["available"] is False
        )
    )
    before = kube.get("configmaps", "app")["metadata"]["resourceVersion"]
    out = cli("release", "promote", "app")
    assert out.code == 1
    assert out.err.startswith("error: cannot promote v2: it is not available: ")
    assert len(out.err.splitlines()) == 1
    assert kube.get("configmaps", "app")["metadata"]["resourceVersion"] == before


def test_abort_sends_everything_to_the_primary(harness: Harness, kube: Kube, cli) -> None:
    create_version(kube, "v1")
    create_version(kube, "v2")
    harness.start()
    assert cli(*CREATE).code == 0
    wait_until(lambda: routes(kube) == {"v1": 90, "v2": 10}, what="routes")
    out = cli("release", "abort", "app")
    assert out.code == 0, out.err
    assert out.out == 'release "app" aborted: all traffic to v1\n'
    assert weights(kube) == [("v1", 90), ("v2", 0)]
    assert cli("release", "status", "app", "--timeout", "10s").code == 0
    assert routes(kube) == {"v1": 90}


def test_get_watch_prints_changes(harness: Harness, kube: Kube, cli, tmp_path: Path) -> None:
    create_version(kube, "v1")
    create_version(kube, "v2")
    harness.start()
    assert cli(*CREATE).code == 0
    assert cli("release", "status", "app", "--timeout", "10s").code == 0
    log = tmp_path / "watch.out"
    with log.open("w") as stdout:
        proc = subprocess.Popen(
            [sys.executable, "-m", "kubectl_iter8", "release", "get", "app", "-w", "--watch-timeout", "8"],
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            wait_until(lambda: "status: applied" in log.read_text(), timeout=20, what="the first table")
            assert cli("release", "weight", "app", "v2", "40").code == 0
            wait_until(
                lambda: log.read_text().count("status: applied") >= 2, timeout=20, what="the new table"
            )
        finally:
            _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    tables = log.read_text().split("\n\n")
    assert tables[0].splitlines()[3].split()[4:6] == ["10", "10"]
    assert tables[-1].splitlines()[3].split()[4:6] == ["40", "40"]


@pytest.mark.fake_only
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--router", "nope"),
            "error: unknown router 'nope' (known: gateway-api, istio, kserve-modelmesh, template, test)",
        ),
        (("--router", "test", "--set", "hots=app"), "error: router test: routing.hots: unknown field"),
        (("--router", "test", "--weight", "1"), "error: --weight: 1 given for 2 versions"),
        (("--router", "istio"), "error: router istio: routing.host: required field is missing"),
        (
            ("--router", "istio", "--set", "host=app", "--set", "port=http"),
            "error: router istio: routing.port: input should be a valid integer, unable to parse string as an integer (got 'http')",
        ),
        (("--router", "test", "--set", "x"), "error: --set 'x': expected KEY=VALUE"),
    ],
)
def test_create_refuses_bad_input_and_writes_nothing(
    kube: Kube, cli, args: tuple[str, ...], message: str
) -> None:
    create_version(kube, "v1")
    create_version(kube, "v2")
    writes = len(kube.audit)
    out = cli(
        "release", "create", "app", "--version", "svc/v1,deploy/v1", "--version", "svc/v2,deploy/v2", *args
    )
    assert out.code == 2
    assert out.err.splitlines() == [message]
    assert len(kube.audit) == writes
    assert not kube.exists("configmaps", "app")


@pytest.mark.fake_only
def test_create_refuses_missing_resources_and_unknown_types(kube: Kube, kubectl) -> None:
    unlabelled_version(kube, "v1")
    writes = len(kube.audit)
    out = kubectl(
        "release",
        "create",
        "app",
        "--version",
        "svc/v1,deploy/v1",
        "--version",
        "svc/v2,deploy/v2",
        "--router",
        "test",
    )
    assert (out.code, out.err) == (2, f'error: svc "v2" not found in namespace "{kube.namespace}"\n')
    out = kubectl("release", "create", "app", "--version", "svc/v1,widget/v1", "--router", "test")
    assert out.code == 2
    assert out.err.startswith("error: unknown resource type 'widget' (known: ")
    out = kubectl("release", "create", "app", "--version", "v1", "--router", "test")
    assert out.err == "error: --version 'v1': expected [NAME=]TYPE/NAME[,TYPE/NAME...], e.g. svc/app-v1\n"
    assert len(kube.audit) == writes
    assert "iter8.tools/watch" not in kube.get("deployments", "v1")["metadata"]["labels"]


def test_commands_refuse_unknown_releases_and_versions(harness: Harness, kube: Kube, cli) -> None:
    create_version(kube, "v1")
    create_version(kube, "v2")
    harness.start()
    out = cli("release", "get", "app")
    assert (out.code, out.err) == (1, f'error: configmap "app" not found in namespace "{kube.namespace}"\n')
    kube.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "plain"}, "data": {}})
    out = cli("release", "abort", "plain")
    assert out.err == 'error: configmap "plain" is not a routemap (no label iter8.tools/kind=routemap)\n'
    assert cli(*CREATE).code == 0
    out = cli("release", "create", "app", "--version", "svc/v1,deploy/v1", "--router", "test")
    assert out.err == f'error: configmap "app" already exists in namespace "{kube.namespace}"\n'
    out = cli("release", "weight", "app", "v9", "10")
    assert (out.code, out.err) == (2, "error: routemap \"app\" has no version 'v9' (versions: v1, v2)\n")
    out = cli("release", "delete", "app")
    assert (out.code, out.out) == (0, 'release "app" deleted\n')
    assert not kube.exists("configmaps", "app")


def test_a_routemap_changed_meanwhile_is_not_overwritten(kube: Kube, cli) -> None:
    from kubectl_iter8.controller.release import _write_weights

    from kubectl_iter8.errors import Iter8Error
    from kubectl_iter8.host import Iter8Hooks
    from kubectl_iter8.kube import Kube as Client

    create_version(kube, "v1")
    create_version(kube, "v2")
    assert cli(*CREATE).code == 0
    before = kube.get("configmaps", "app")["metadata"]["resourceVersion"]
    types = Iter8Hooks(env={"ITER8_NO_AUTOLOAD": "1"}).resource_types
    with Client() as client, pytest.raises(Iter8Error, match='^routemap "app" changed while the command ran'):
        _write_weights(client, types, "app", {1: 0}, expect=["v2", "v1"])
    assert kube.get("configmaps", "app")["metadata"]["resourceVersion"] == before
