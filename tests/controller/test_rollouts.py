"""Progressive delivery: the controller walks a candidate through a rollout policy, on the fake
and on a real control plane (``kube`` runs each test on both).

The routing is the test router's ConfigMap ``app-routing``; the harness checks the routing
invariant over the whole write history at the end of every test. Steering goes through the CLI as a
user would (``kubectl iter8 release approve|pause|resume|abort|retry``, real kubectl).

The analysed rollouts load the candidate's sample app. On the real tier each version's Deployment
runs ``kubectl-iter8 sample-app`` in its pod, which the node stand-in runs as a local process on a
port of its own (the analysis reaches it on 127.0.0.1; pod IPs are never routed); the fake has no
node, so there the candidate's app runs in-process.
"""

from __future__ import annotations

import base64
import http.server
import json
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

import pytest
import yaml
from controller_helpers import Harness, Kube, app_versions, create_app_version, create_version, wait_until

from kubectl_iter8.rollout import RolloutState
from kubectl_iter8.sample_app import running
from kubectl_iter8.testing.real import RealKube

HERE = Path(__file__).resolve().parent


@pytest.fixture(autouse=True)
def test_router(monkeypatch: pytest.MonkeyPatch, harness: Harness) -> None:
    """The CLI (in-process and as a process) knows the test router; the controller's RBAC on a
    real server is ``controller manifests --rollouts``."""
    harness.rollouts = True
    monkeypatch.setenv("ITER8_PLUGINS", "iter8_controller_test_plugin")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])))


def rollout_routemap(steps: list[dict[str, Any]], **policy: Any) -> dict[str, Any]:
    spec = {
        "versions": app_versions("v1", "v2"),
        "routing": {"router": "test", "strategy": "blue-green", "host": "app"},
        "rollout": {"steps": steps, **policy},
    }
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "app", "labels": {"iter8.tools/kind": "routemap"}},
        "data": {"strSpec": yaml.safe_dump(spec)},
    }


def state(kube: Kube) -> RolloutState | None:
    if not kube.exists("configmaps", "app-iter8-rollout"):
        return None
    return RolloutState.model_validate(
        yaml.safe_load(kube.get("configmaps", "app-iter8-rollout")["data"]["state"])
    )


def phase(kube: Kube) -> str | None:
    current = state(kube)
    return None if current is None else current.phase


def versions_in_routemap(kube: Kube) -> list[str]:
    spec = yaml.safe_load(kube.get("configmaps", "app")["data"]["strSpec"])
    return [v["resources"][0]["name"] for v in spec["versions"]]


def candidate_shares(harness: Harness) -> list[int]:
    """The candidate v2's share (percent) in every write of the routing ConfigMap, in order."""
    harness.history.sync()
    shares = []
    for event in harness.history.events:
        if event.resource != "configmaps" or event.type == "DELETED":
            continue
        if event.new["metadata"]["name"] != "app-routing":
            continue
        routes = {r["name"]: r.get("weight", 0) for r in json.loads(event.new["data"]["routes"])}
        total = sum(routes.values())
        shares.append(round(100 * routes.get("v2", 0) / total) if total else 0)
    return shares


def event_reasons(kube: Kube) -> list[str]:
    events = kube.list("events", kube.namespace)
    events.sort(key=lambda e: (e.get("lastTimestamp") or e.get("eventTime") or "", e["metadata"]["name"]))
    return [e["reason"] for e in events if e.get("involvedObject", {}).get("name") == "app"]


def test_a_healthy_canary_steps_through_its_weights_and_is_promoted(harness: Harness, kube: Kube) -> None:
    create_version(kube, "v1")
    create_version(kube, "v2")
    steps = [{"weight": 10}, {"pause": {"duration": "0.3s"}}, {"weight": 30}, {"weight": 60}]
    kube.create(rollout_routemap(steps))
    harness.start(rollouts=True)
    wait_until(lambda: phase(kube) == "Promoted", timeout=30, what="the rollout to be promoted")
    assert versions_in_routemap(kube) == ["v2"]
    shares = [
        s for i, s in enumerate(candidate_shares(harness)) if i == 0 or s != candidate_shares(harness)[i - 1]
    ]
    assert shares == [0, 10, 30, 60, 100], shares
    # Events follow the state they announce (the state is stored first).
    reasons = wait_until(lambda: "RolloutPromoted" in (r := event_reasons(kube)) and r, what="the last Event")
    for reason in ("RolloutStarted", "RolloutStep", "RolloutPromoting"):
        assert reason in reasons, reasons


def test_approval_pause_abort_and_retry_through_the_cli(harness: Harness, kube: Kube, kubectl) -> None:
    create_version(kube, "v1")
    create_version(kube, "v2")
    kube.create(rollout_routemap([{"weight": 20}, {"pause": {"approval": True}}, {"weight": 50}]))
    harness.start(rollouts=True)
    wait_until(lambda: (s := state(kube)) is not None and s.step == 1, timeout=20, what="the approval step")
    shown = kubectl("release", "get", "app")
    assert shown.code == 0, shown.err
    assert "rollout: Progressing v2: step 1/3 (pause until approved), weight 20" in shown.out
    refused = kubectl("release", "retry", "app")
    assert refused.code == 1
    assert "only a rolled-back or aborted rollout is retried" in refused.err

    assert kubectl("release", "pause", "app").code == 0
    wait_until(lambda: phase(kube) == "Paused", timeout=20, what="the pause")
    not_now = kubectl("release", "approve", "app")
    assert not_now.code == 1
    assert "is not waiting for approval (Paused" in not_now.err
    assert kubectl("release", "resume", "app").code == 0
    wait_until(lambda: phase(kube) == "Progressing", timeout=20, what="the resume")
    approved = kubectl("release", "approve", "app")
    assert approved.code == 0, approved.err
    wait_until(lambda: (s := state(kube)) is not None and s.weight == 100, timeout=20, what="the last steps")

    wait_until(lambda: phase(kube) == "Promoted", timeout=20, what="the promotion")
    assert versions_in_routemap(kube) == ["v2"]


def test_abort_sends_everything_back_and_retry_starts_over(harness: Harness, kube: Kube, kubectl) -> None:
    create_version(kube, "v1")
    create_version(kube, "v2")
    kube.create(rollout_routemap([{"weight": 40}, {"pause": {"approval": True}}]))
    harness.start(rollouts=True)
    wait_until(lambda: (s := state(kube)) is not None and s.step == 1, timeout=20, what="the approval step")
    aborted = kubectl("release", "abort", "app")
    assert aborted.code == 0, aborted.err
    assert "rollout aborted: all traffic to v1" in aborted.out
    wait_until(lambda: phase(kube) == "Aborted", timeout=20, what="the abort")
    wait_until(lambda: candidate_shares(harness)[-1] == 0, timeout=20, what="the routing back on v1")
    assert kubectl("release", "weight", "app", "v2", "50").code == 2
    retried = kubectl("release", "retry", "app")
    assert retried.code == 0, retried.err
    wait_until(
        lambda: (s := state(kube)) is not None and s.phase == "Progressing" and s.step == 1,
        timeout=20,
        what="the retry",
    )
    assert candidate_shares(harness)[-1] == 40


# --- analyses: experiments the controller launches in the cluster ----------------------------------

CHECKS = """
spec:
- task: http
  with:
    url: "{url}/anything/{{{{ candidate.name }}}}"
    numRequests: 100
    qps: 200
- task: assess
  with:
    SLOs:
      upper:
      - metric: http/error-rate
        limit: 0.01
"""


LATENCY_CHECKS = """
spec:
- task: http
  with:
    url: "{url}/anything/{{{{ candidate.name }}}}"
    numRequests: 40
    qps: 50
    connections: 4
- task: assess
  with:
    SLOs:
      upper:
      - metric: http/latency-mean
        limit: 30
"""
#: The primary's added latency in the latency case (seconds); the bad candidate's is twice it, and
#: LATENCY_CHECKS's limit (30 ms) lies between the two.
BASE_DELAY = 0.02


def sample_app_flags(error_rate: float = 0.0, extra_delay: float = 0.0) -> list[str]:
    """``kubectl iter8 sample-app`` flags for :func:`kubectl_iter8.sample_app.running`'s options."""
    return [*(["--error-rate", str(error_rate)] if error_rate else []),
            *(["--delay", f"{extra_delay}s"] if extra_delay else [])]  # fmt: skip


@contextmanager
def sample_app_versions(
    kube: Kube, *, baseline: dict[str, float] | None = None, **candidate: float
) -> Iterator[tuple[str, Callable[[], set[str]]]]:
    """Versions v1 (primary) and v2 (candidate) whose sample apps take ``baseline`` and ``candidate``
    options (``error_rate``, ``extra_delay``). Yields the candidate's URL and a function that tells
    which targets (paths) the candidate was asked for.

    Real tier: each version's pod runs the sample app (the node stand-in runs it); what was asked is
    read from the analyses' stored experiments, whose URLs must be the candidate's. Fake: the
    candidate's app runs in-process and records its requests (call the function inside the block).
    """
    if isinstance(kube, RealKube):
        create_app_version(kube, "v1", *sample_app_flags(**(baseline or {})))
        url = create_app_version(kube, "v2", *sample_app_flags(**candidate))
        yield url, lambda: analysed_targets(kube, url)
        return
    create_version(kube, "v1")
    create_version(kube, "v2")
    with running(keep_requests=1000, **candidate) as app:
        yield app.url, lambda: {target for _, target, _, _ in app.recent}


def analysed_targets(kube: RealKube, url: str) -> set[str]:
    """The paths of ``url`` that the stored analysis experiments loaded (each Secret holds its
    experiment, placeholders filled in, with its result); a URL elsewhere is named whole."""
    targets = set()
    for secret in kube.list("secrets", kube.namespace):
        data = (secret.get("data") or {}).get("experiment.yaml")
        if data is None:
            continue
        document = yaml.safe_load(base64.b64decode(data))
        for task in document["spec"]:
            if task.get("task") == "http":
                loaded = urlsplit(task["with"]["url"])
                same = f"{loaded.scheme}://{loaded.netloc}" == url
                targets.add(loaded.path if same else task["with"]["url"])
    return targets


def rollback_timing(harness: Harness, final: RolloutState) -> tuple[float, float]:
    """(seconds from the failing verdict to the routing write that followed it, seconds the failing
    analysis ran: from its launch to its verdict), from the controllers' own write logs."""
    writes = sorted(w for log in harness.writes.values() for w in log)
    verdict = final.verdicts[-1]
    launched = min(start for start, _, what in writes if what == f"analysis {verdict.group}")
    routed = [end for _, end, what in writes if what == "apply ConfigMap/app-routing" and end >= verdict.at]
    assert routed, (
        f"no routing write after the verdict at {verdict.at:.3f}: {[w for w in writes if 'app' in w[2]]}"
    )
    return min(routed) - verdict.at, verdict.at - launched


def event_messages(kube: Kube, reason: str) -> list[str]:
    return [
        e.get("message", "")
        for e in kube.list("events", kube.namespace)
        if e.get("involvedObject", {}).get("name") == "app" and e["reason"] == reason
    ]


def analysed_routemap(kube: Kube, url: str, steps: list[dict[str, Any]], checks: str = CHECKS) -> None:
    kube.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "checks"},
            "data": {"experiment.yaml": checks.format(url=url)},
        }
    )
    kube.create(rollout_routemap(steps, analysis={"experiment": {"configMap": "checks"}, "timeout": "90s"}))


def test_a_canary_that_passes_its_analyses_is_promoted(harness: Harness, kube: Kube, plugin_host) -> None:
    with sample_app_versions(kube) as (url, asked):
        steps = [
            {"weight": 10},
            {"analysis": {}},
            {"weight": 30},
            {"analysis": {}},
            {"weight": 60},
            {"analysis": {}},
        ]
        analysed_routemap(kube, url, steps)
        harness.start(rollouts=True, tasks=plugin_host().tasks)
        wait_until(lambda: phase(kube) in ("Promoted", "RolledBack"), timeout=120, what="the rollout to end")
        final = state(kube)
        assert final is not None
        assert final.phase == "Promoted", final.message
        targets = asked()
    assert targets == {"/anything/v2"}, "the experiment's URL names the candidate"
    assert [(v.step, v.verdict) for v in final.verdicts] == [(1, "pass"), (3, "pass"), (5, "pass")]
    assert final.verdicts[0].metrics == {"http/error-rate": [0.0]}
    assert versions_in_routemap(kube) == ["v2"]
    for verdict in final.verdicts:
        assert kube.exists("secrets", verdict.group), verdict.group
    every = candidate_shares(harness)
    assert [share for i, share in enumerate(every) if i == 0 or share != every[i - 1]] == [0, 10, 30, 60, 100]
    reasons = wait_until(lambda: "RolloutPromoted" in (r := event_reasons(kube)) and r, what="the last Event")
    assert reasons.count("AnalysisPassed") == 3, reasons


def rolled_back_at_step_1(harness: Harness, kube: Kube) -> RolloutState:
    """The state of a rollout whose analysis at step 1 failed, checked as the issue asks: rolled
    back within one analysis interval, traffic never past that step's weight, the verdict stored
    and in an Event."""
    final = state(kube)
    assert final is not None
    assert final.phase == "RolledBack", final.message
    assert "not satisfied: slos" in final.message
    assert [(v.step, v.verdict) for v in final.verdicts] == [(1, "fail")]
    wait_until(lambda: candidate_shares(harness)[-1] == 0, timeout=20, what="the routing back on v1")
    assert max(candidate_shares(harness)) == 10, "traffic never went past the failing step's weight"
    assert versions_in_routemap(kube) == ["v1", "v2"]
    wait_until(lambda: "RolloutRolledBack" in event_reasons(kube), what="the rollback's Event")
    assert any("fail (not satisfied: slos" in m for m in event_messages(kube, "RolloutRolledBack"))
    back, interval = rollback_timing(harness, final)
    assert back < interval, f"rolled back {back:.2f} s after the verdict; the analysis took {interval:.2f} s"
    return final


def test_a_canary_that_fails_its_analysis_is_rolled_back_at_its_step(
    harness: Harness, kube: Kube, plugin_host
) -> None:
    with sample_app_versions(kube, error_rate=0.05) as (url, asked):
        analysed_routemap(kube, url, [{"weight": 10}, {"analysis": {}}, {"weight": 50}])
        harness.start(rollouts=True, tasks=plugin_host().tasks)
        wait_until(lambda: phase(kube) in ("Promoted", "RolledBack"), timeout=120, what="the rollout to end")
        assert asked() == {"/anything/v2"}
    final = rolled_back_at_step_1(harness, kube)
    assert final.verdicts[0].metrics == {"http/error-rate": [0.05]}


def test_a_canary_with_twice_the_latency_is_rolled_back_at_its_step(
    harness: Harness, kube: Kube, plugin_host
) -> None:
    slow = {"extra_delay": 2 * BASE_DELAY}
    with sample_app_versions(kube, baseline={"extra_delay": BASE_DELAY}, **slow) as (url, asked):
        steps = [{"weight": 10}, {"analysis": {}}, {"weight": 50}]
        analysed_routemap(kube, url, steps, checks=LATENCY_CHECKS)
        harness.start(rollouts=True, tasks=plugin_host().tasks)
        wait_until(lambda: phase(kube) in ("Promoted", "RolledBack"), timeout=120, what="the rollout to end")
        assert asked() == {"/anything/v2"}
    final = rolled_back_at_step_1(harness, kube)
    [mean] = final.verdicts[0].metrics["http/latency-mean"]
    assert mean >= 2 * BASE_DELAY * 1000, "the candidate's mean latency (ms): at least twice the primary's"


def test_a_controller_killed_at_any_point_converges_without_repeating_anything(
    harness: Harness, kube: Kube, plugin_host
) -> None:
    tasks = plugin_host().tasks
    rng = random.Random(7)
    with sample_app_versions(kube) as (url, _):
        analysed_routemap(kube, url, [{"weight": 10}, {"analysis": {}}, {"weight": 50}, {"analysis": {}}])
        deadline = time.monotonic() + 150
        kills = 0
        while phase(kube) != "Promoted":
            assert time.monotonic() < deadline, f"not promoted after {kills} kills: {state(kube)}"
            ctl = harness.start(rollouts=True, tasks=tasks)
            time.sleep(rng.uniform(0.1, 1.0))
            harness.stop(ctl, release=False)  # as a killed process: no goodbye
            kills += 1
    final = state(kube)
    assert final is not None
    assert [(v.step, v.verdict) for v in final.verdicts] == [(1, "pass"), (3, "pass")]
    for verdict in final.verdicts:
        secret = kube.get("secrets", verdict.group)
        assert secret["metadata"]["annotations"]["iter8.tools/revision"] == "1", "launched once"
        jobs = [
            j
            for j in kube.list("jobs", kube.namespace)
            if j["metadata"]["labels"].get("iter8.tools/group") == verdict.group
        ]
        assert len(jobs) == 1, [j["metadata"]["name"] for j in jobs]
    every = candidate_shares(harness)
    changes = [share for i, share in enumerate(every) if i == 0 or share != every[i - 1]]
    assert changes == [0, 10, 50, 100], every
    assert kills > 3


class Gate(http.server.BaseHTTPRequestHandler):
    """A webhook receiver that answers ``status`` (a class attribute the test changes) and records calls."""

    status = 500
    calls: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        Gate.calls.append(json.loads(self.rfile.read(length)))
        self.send_response(Gate.status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def gate() -> Iterator[str]:
    Gate.status, Gate.calls = 500, []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Gate)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/check"
    finally:
        server.shutdown()
        server.server_close()


def test_a_webhook_that_fails_holds_the_step_until_it_answers_2xx(
    harness: Harness, kube: Kube, gate: str
) -> None:
    create_version(kube, "v1")
    create_version(kube, "v2")
    hook = {"name": "load-ok", "url": gate, "on": ["pre-step"], "timeout": "2s", "retries": 0}
    kube.create(rollout_routemap([{"weight": 10}, {"weight": 40}], webhooks=[hook]))
    harness.start(rollouts=True)
    held = wait_until(
        lambda: (s := state(kube)) is not None and "holds" in s.message and s, timeout=20, what="the hold"
    )
    assert held.step == 0
    assert held.weight == 0
    assert "pre-step webhook 'load-ok' answered 500: step 0 holds" in held.message
    assert "RolloutHeld" in event_reasons(kube)
    Gate.status = 200
    wait_until(lambda: phase(kube) == "Promoted", timeout=30, what="the promotion")
    asked = [(c["hook"], c["step"]) for c in Gate.calls]
    assert asked[0] == ("pre-step", 0)
    assert asked[-2:] == [("pre-step", 0), ("pre-step", 1)], "each step's gate passes once"
    assert set(Gate.calls[0]) == {"name", "namespace", "hook", "step", "candidate", "phase", "weight"}


def test_two_rollouts_at_once_each_keep_their_own_steps(harness: Harness, kube: Kube, kubectl) -> None:
    for name in ("v1", "v2", "w1", "w2"):
        create_version(kube, name)
    kube.create(rollout_routemap([{"weight": 30}, {"pause": {"approval": True}}]))
    other = rollout_routemap([{"weight": 70}, {"pause": {"duration": "0.2s"}}])
    other["metadata"]["name"] = "other"
    spec = yaml.safe_load(other["data"]["strSpec"])
    spec["versions"] = app_versions("w1", "w2")
    other["data"]["strSpec"] = yaml.safe_dump(spec)
    kube.create(other)
    harness.start(rollouts=True)
    wait_until(lambda: (s := state(kube)) is not None and s.step == 1, timeout=20, what="app's approval step")
    wait_until(
        lambda: (
            yaml.safe_load(kube.get("configmaps", "other")["data"]["strSpec"])["versions"][0]["resources"][0][
                "name"
            ]
            == "w2"
        ),
        timeout=20,
        what="other to be promoted",
    )
    current = state(kube)
    assert current is not None
    assert (current.phase, current.step, current.weight) == ("Progressing", 1, 30), (
        "app waits for its approval"
    )
    assert kubectl("release", "approve", "app").code == 0
    wait_until(lambda: phase(kube) == "Promoted", timeout=20, what="app's promotion")


SNEAKY = {
    "reads a Secret": (
        {"task": "ready", "with": {"version": "v1", "resource": "secrets", "name": "db-password"}},
        "reads secrets db-password in namespace",
    ),
    "creates Jobs": (
        {"task": "http", "with": {"url": "http://127.0.0.1:1/", "numRequests": 10, "pods": 2}},
        "a load spread over pods (pods: N) is not allowed in an analysis",
    ),
}


@pytest.mark.parametrize("case", sorted(SNEAKY))
def test_an_analysis_may_not_borrow_the_controllers_rights(
    harness: Harness, kube: Kube, plugin_host, case: str
) -> None:
    """The controller may read Secrets and create Jobs to launch analyses; a routemap's author
    must not get to use that."""
    create_version(kube, "v1")
    create_version(kube, "v2")
    entry, refusal = SNEAKY[case]
    policy = {"experiment": {"inline": {"spec": [entry]}}}
    kube.create(rollout_routemap([{"weight": 10}, {"analysis": {}}], analysis=policy))
    harness.start(rollouts=True, tasks=plugin_host().tasks)
    wait_until(lambda: phase(kube) == "RolledBack", timeout=30, what="the rollback")
    final = state(kube)
    assert final is not None
    assert refusal in final.message
    assert [v.verdict for v in final.verdicts] == ["fail"]
    launched = ("roles", "secrets", "jobs")
    assert not [
        (k, o["metadata"]["name"])
        for k in launched
        for o in kube.list(k, kube.namespace)
        if o["metadata"]["name"].startswith("app-")
    ]


def test_a_candidate_changed_in_place_restarts_the_rollout(harness: Harness, kube: Kube) -> None:
    create_version(kube, "v1")
    create_version(kube, "v2")
    kube.create(rollout_routemap([{"weight": 20}, {"pause": {"approval": True}}]))
    harness.start(rollouts=True)
    first = wait_until(
        lambda: (s := state(kube)) is not None and s.step == 1 and s, timeout=20, what="step 1"
    )
    kube.patch("deployments", "v2", {"spec": {"template": {"metadata": {"annotations": {"rev": "2"}}}}})
    again = wait_until(
        lambda: (s := state(kube)) is not None and s.candidate != first.candidate and s,
        timeout=20,
        what="a restart",
    )
    assert again.phase == "Progressing"
    assert again.step in (0, 1), "started over (it may have set weight 20 again already)"
    wait_until(lambda: event_reasons(kube).count("RolloutStarted") == 2, what="the second start's Event")
    # Scaling is not a new candidate (the pod template is what counts), and the moment its status
    # lags its generation is no reason to roll back.
    settled = wait_until(
        lambda: (s := state(kube)) is not None and s.step == 1 and s, timeout=20, what="step 1"
    )
    kube.patch("deployments", "v2", {"spec": {"replicas": 3}})
    time.sleep(2)
    latest = state(kube)
    assert latest is not None
    assert (latest.candidate, latest.phase, latest.step) == (settled.candidate, "Progressing", 1)
