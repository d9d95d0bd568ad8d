"""Experiments in a cluster through the real kubectl: launch, the Job runs, assert, report, log, relaunch, delete."""

from __future__ import annotations

import base64
import json
import os
import re
import threading
import time
from pathlib import Path

import pytest
import yaml
from pod_security import assert_restricted

from .conftest import Cluster

EXPERIMENT = """
spec:
- run: [echo, hello from the job]
- task: ready
  with: {group: apps, version: v1, resource: deployments, name: backend, timeout: 60s}
- task: assess
  with: {SLOs: {upper: [{metric: app/latency, limit: 50}]}}
  if: "result.insights != null"
"""


def ns_args(cluster: Cluster) -> list[str]:
    return ["-n", cluster.namespace]


def launch(kubectl, cluster: Cluster, tmp_path: Path, text: str, *extra: str):
    (tmp_path / "exp.yaml").write_text(text)
    image = os.environ.get("ITER8_IMAGE")
    return kubectl(
        "launch", "-f", "exp.yaml", *ns_args(cluster), *(["--image", image] if image else []), *extra
    )


def owned_by(obj: dict, secret: dict) -> bool:
    return any(ref["uid"] == secret["metadata"]["uid"] for ref in obj["metadata"].get("ownerReferences", []))


def test_launch_runs_the_experiment_as_a_job(cluster: Cluster, kubectl, tmp_path: Path) -> None:
    cluster.deploy("backend")
    launched = launch(kubectl, cluster, tmp_path, EXPERIMENT, "-g", "demo")
    assert launched.code == 0, launched.err
    assert f'experiment group "demo" launched in namespace "{cluster.namespace}" (revision 1)' in launched.out

    waited = kubectl(
        "assert", "-g", "demo", *ns_args(cluster), "-c", "completed,nofailure", "--timeout", "90s"
    )
    assert waited.code == 0, (
        kubectl("report", "-g", "demo", *ns_args(cluster)).out
        + kubectl("log", "-g", "demo", *ns_args(cluster)).out
    )
    report = json.loads(kubectl("report", "-g", "demo", *ns_args(cluster), "-o", "json").out)
    assert report["summary"]["status"] == "completed"
    assert [t["status"] for t in report["tasks"]] == ["completed", "completed", "skipped"]
    logs = kubectl("log", "-g", "demo", *ns_args(cluster))
    assert logs.code == 0, logs.err
    assert "--- pod demo-1-job" in logs.out
    assert "experiment completed: 3 of 3 tasks" in logs.out

    secret = json.loads(
        cluster.kubectl("get", "secret", "demo", "-n", cluster.namespace, "-o", "json").stdout
    )
    stored = yaml.safe_load(base64.b64decode(secret["data"]["experiment.yaml"]))
    assert stored["result"]["revision"] == 1
    assert stored["result"]["tasks"][0]["details"]["output"] == "hello from the job\n"
    role = json.loads(
        cluster.kubectl("get", "role", "demo-iter8", "-n", cluster.namespace, "-o", "json").stdout
    )
    assert role["rules"] == [
        {
            "apiGroups": [""],
            "resources": ["secrets"],
            "resourceNames": ["demo"],
            "verbs": ["get", "update", "patch"],
        },
        {"apiGroups": ["apps"], "resources": ["deployments"], "resourceNames": ["backend"], "verbs": ["get"]},
    ]
    for kind, name in (
        ("serviceaccount", "demo-iter8"),
        ("role", "demo-iter8"),
        ("rolebinding", "demo-iter8"),
        ("job", "demo-1-job"),
    ):
        obj = json.loads(cluster.kubectl("get", kind, name, "-n", cluster.namespace, "-o", "json").stdout)
        assert owned_by(obj, secret), kind


def test_relaunch_bumps_the_revision_and_delete_leaves_nothing(
    cluster: Cluster, kubectl, tmp_path: Path
) -> None:
    assert launch(kubectl, cluster, tmp_path, "spec: [{run: [echo, one]}]\n", "-g", "again").code == 0
    assert (
        kubectl("assert", "-g", "again", *ns_args(cluster), "-c", "completed", "--timeout", "60s").code == 0
    )
    relaunched = launch(
        kubectl, cluster, tmp_path, "spec: [{run: [echo, two]}, {run: [echo, three]}]\n", "-g", "again"
    )
    assert "(revision 2)" in relaunched.out, relaunched.err
    assert (
        kubectl(
            "assert", "-g", "again", *ns_args(cluster), "-c", "completed,nofailure", "--timeout", "60s"
        ).code
        == 0
    )
    report = json.loads(kubectl("report", "-g", "again", *ns_args(cluster), "-o", "json").out)
    assert report["summary"]["numTasks"] == 2
    jobs = cluster.kubectl(
        "get", "jobs", "-n", cluster.namespace, "-l", "iter8.tools/group=again", "-o", "name"
    ).stdout.split()
    assert jobs == ["job.batch/again-2-job"]

    deleted = kubectl("delete", "-g", "again", *ns_args(cluster))
    assert deleted.code == 0, deleted.err
    assert f'experiment group "again" deleted from namespace "{cluster.namespace}"' in deleted.out
    left = cluster.kubectl(
        "get", "secrets,serviceaccounts,roles,rolebindings,jobs,pods", "-n", cluster.namespace,
        "-l", "iter8.tools/group=again", "-o", "name",
    )  # fmt: skip
    assert left.returncode == 0, left.stderr
    assert left.stdout.strip() == ""
    gone = kubectl("report", "-g", "again", *ns_args(cluster))
    assert gone.code == 1
    assert f'error: experiment group "again" not found in namespace "{cluster.namespace}"' in gone.err


def test_a_failing_job_is_reported(cluster: Cluster, kubectl, tmp_path: Path) -> None:
    assert (
        launch(
            kubectl, cluster, tmp_path, "spec: [{run: [sh, -c, 'echo broken >&2; exit 4']}]\n", "-g", "bad"
        ).code
        == 0
    )
    # nofailure alone holds while the run has not failed yet; completed makes assert wait for the end.
    outcome = kubectl(
        "assert", "-g", "bad", *ns_args(cluster), "-c", "completed,nofailure", "--timeout", "60s"
    )
    assert outcome.code == 1
    assert "nofailure: not satisfied" in outcome.out
    assert outcome.err == "error: assert conditions not satisfied: completed, nofailure\n"
    report = json.loads(kubectl("report", "-g", "bad", *ns_args(cluster), "-o", "json").out)
    assert report["summary"]["failureMessage"] == "spec[0] (run): command exited with code 4: broken"


STUCK = "spec: [{run: [sleep, '600']}]\n"
#: What ``assert`` says when the Job died first; the runner may or may not have saved its start by then.
DIED = re.compile(
    r'error: job "(?P<job>[-a-z0-9]+)" failed \((?P<why>[^)]*)\) '
    r"before the experiment (finished|wrote a result)(; pod .*)?\n"
)


def test_assert_stops_at_once_when_the_job_runs_out_of_its_deadline(
    cluster: Cluster, kubectl, tmp_path: Path
) -> None:
    assert launch(kubectl, cluster, tmp_path, STUCK, "-g", "stuck", "--deadline", "3s").code == 0
    started = time.monotonic()
    outcome = kubectl("assert", "-g", "stuck", *ns_args(cluster), "-c", "completed", "--timeout", "5m")
    assert time.monotonic() - started < 60
    assert outcome.code == 1, outcome.out
    died = DIED.fullmatch(outcome.err)
    assert died, outcome.err
    assert died["job"] == "stuck-1-job"
    assert died["why"] == "DeadlineExceeded: Job was active longer than specified deadline"


def test_assert_follows_the_latest_job_of_a_cronjob(cluster: Cluster, kubectl, tmp_path: Path) -> None:
    # Once a year: the CronJob itself never fires during the test; its Job is started by hand.
    launched = launch(
        kubectl, cluster, tmp_path, STUCK, "-g", "cron", "--schedule", "0 0 1 1 *", "--deadline", "3s"
    )
    assert launched.code == 0, launched.err
    waiting = kubectl("assert", "-g", "cron", *ns_args(cluster), "-c", "completed")
    assert waiting.code == 1
    assert (
        waiting.err == "error: assert conditions not satisfied: completed (the experiment is still running)\n"
    )
    # What the CronJob controller would create (kubectl create job --from=cronjob/... does the same,
    # but in protobuf, which the fake does not read).
    cron = json.loads(
        cluster.kubectl("get", "cronjob", "cron-1-cronjob", "-n", cluster.namespace, "-o", "json").stdout
    )
    template = cron["spec"]["jobTemplate"]
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {**template["metadata"], "name": "cron-by-hand", "namespace": cluster.namespace},
        "spec": template["spec"],
    }
    created = cluster.kubectl("create", "-f", "-", stdin=json.dumps(job))
    assert created.returncode == 0, created.stderr
    outcome = kubectl("assert", "-g", "cron", *ns_args(cluster), "-c", "completed", "--timeout", "5m")
    assert outcome.code == 1, outcome.out
    died = DIED.fullmatch(outcome.err)
    assert died, outcome.err
    assert (died["job"], died["why"]) == (
        "cron-by-hand",
        "DeadlineExceeded: Job was active longer than specified deadline",
    )


@pytest.mark.fake_only
def test_assert_names_a_job_that_crashed_before_writing_a_result(
    cluster: Cluster, kubectl, tmp_path: Path
) -> None:
    fake = cluster.require_fake()
    fake.controllers.job_command = lambda job, container: ["false"]
    assert launch(kubectl, cluster, tmp_path, "spec: [{run: [echo, never]}]\n", "-g", "crash").code == 0
    for timeout in ("5m", "0s"):
        outcome = kubectl("assert", "-g", "crash", "-c", "completed,nofailure", "--timeout", timeout)
        assert outcome.code == 1
        assert re.fullmatch(
            r'error: job "crash-1-job" failed \(BackoffLimitExceeded: Job has reached the specified backoff '
            r'limit\) before the experiment wrote a result; pod "crash-1-job-[a-z0-9]+" exited with code 1 '
            r"\(Error\)\n",
            outcome.err,
        ), outcome.err
    # A run that saved its final result before its Job failed is told by that result.
    fake.controllers.job_command = None
    assert launch(kubectl, cluster, tmp_path, "spec: [{run: [sh, -c, 'exit 3']}]\n", "-g", "crash").code == 0
    outcome = kubectl("assert", "-g", "crash", "-c", "completed,nofailure", "--timeout", "60s")
    assert outcome.code == 1
    assert outcome.err == "error: assert conditions not satisfied: completed, nofailure\n"


def test_dry_run_prints_the_manifests_and_creates_nothing(cluster: Cluster, kubectl, tmp_path: Path) -> None:
    outcome = launch(kubectl, cluster, tmp_path, EXPERIMENT, "-g", "dry", "--dry-run")
    assert outcome.code == 0, outcome.err
    docs = list(yaml.safe_load_all(outcome.out))
    assert [doc["kind"] for doc in docs] == ["Secret", "ServiceAccount", "Role", "RoleBinding", "Job"]
    assert cluster.kubectl("get", "secret", "dry", "-n", cluster.namespace).returncode != 0
    job = docs[-1]["spec"]
    # 5m to start + run without timeout (10m) + ready 60s (twice: 2m) + assess (10m).
    assert job["activeDeadlineSeconds"] == 300 + 600 + 120 + 600
    assert job["ttlSecondsAfterFinished"] == 86400
    assert_hardened(job["template"]["spec"])


def assert_hardened(pod: dict) -> None:
    assert_restricted(pod)
    assert pod["volumes"] == [{"name": "scratch", "emptyDir": {}}]
    assert pod["containers"][0]["volumeMounts"] == [{"name": "scratch", "mountPath": "/tmp"}]


@pytest.mark.parametrize(
    ("spec", "flags", "deadline"),
    [
        # 2 x (10s + 2s per request) is less than the minute an entry gets at least.
        ("[{task: http, with: {url: 'http://x/', duration: 10s, timeout: 2s}}]", [], 300 + 60),
        # Named endpoints count too: 600 requests at 10/s and 1200 at 20/s.
        (
            "[{task: http, with: {qps: 10, endpoints: {a: {url: 'http://x/a', numRequests: 600},"
            " b: {url: 'http://x/b', numRequests: 1200, qps: 20}}}}]",
            [],
            300 + 2 * (60 + 60),
        ),
        ("[{task: run, with: {cmd: [sleep, '1'], timeout: 30m}}]", [], 300 + 2 * 1800),
        ("[{run: [sleep, '1']}]", ["--deadline", "45m"], 2700),
        ("[{run: [sleep, '1']}]", ["--deadline", "0"], None),
    ],
)
def test_the_job_deadline_comes_from_the_tasks_or_the_flag(
    cluster: Cluster, kubectl, tmp_path: Path, spec: str, flags: list[str], deadline: int | None
) -> None:
    outcome = launch(kubectl, cluster, tmp_path, f"spec: {spec}\n", "-g", "dl", "--dry-run", *flags)
    assert outcome.code == 0, outcome.err
    job = list(yaml.safe_load_all(outcome.out))[-1]["spec"]
    assert job.get("activeDeadlineSeconds") == deadline


def test_a_bad_deadline_is_a_one_line_error(cluster: Cluster, kubectl, tmp_path: Path) -> None:
    outcome = launch(kubectl, cluster, tmp_path, "spec: [{run: [echo]}]\n", "--deadline", "soon")
    assert outcome.code == 2
    assert outcome.err == "error: --deadline: 'soon' is not a duration (use e.g. 30m, 1h30m; 0 for none)\n"
    local = kubectl("launch", "--local", "-f", "exp.yaml", "--deadline", "5m")
    assert local.code == 2
    assert local.err.startswith("error: --schedule, --image and --deadline are for experiments in a cluster")


SCRATCH = """
spec:
- run: 'cd "$HOME" && touch written && mktemp >/dev/null && test "$HOME" = "$TMPDIR" && echo writable'
  shell: true
"""


def test_the_job_runs_unprivileged_with_a_writable_scratch_folder(
    cluster: Cluster, kubectl, tmp_path: Path
) -> None:
    assert launch(kubectl, cluster, tmp_path, SCRATCH, "-g", "scratch").code == 0
    waited = kubectl(
        "assert", "-g", "scratch", *ns_args(cluster), "-c", "completed,nofailure", "--timeout", "90s"
    )
    assert waited.code == 0, kubectl("report", "-g", "scratch", *ns_args(cluster)).out
    secret = json.loads(
        cluster.kubectl("get", "secret", "scratch", "-n", cluster.namespace, "-o", "json").stdout
    )
    stored = yaml.safe_load(base64.b64decode(secret["data"]["experiment.yaml"]))
    assert stored["result"]["tasks"][0]["details"]["output"] == "writable\n"


@pytest.mark.fake_only
def test_schedule_makes_a_cronjob_whose_loops_keep_their_results(
    cluster: Cluster, kubectl, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = cluster.require_fake()
    monkeypatch.setenv("ITER8_PLUGINS", "iter8_test_plugin")
    text = "spec:\n- task: record-metrics\n  with: {values: {app/latency: [10]}}\n"
    assert launch(kubectl, cluster, tmp_path, text, "-g", "loop", "--schedule", "*/5 * * * *").code == 0
    cron = fake.get("cronjobs", "loop-1-cronjob")
    assert cron["spec"]["schedule"] == "*/5 * * * *"
    template = cron["spec"]["jobTemplate"]
    assert template["metadata"]["labels"]["iter8.tools/group"] == "loop"
    assert template["spec"]["ttlSecondsAfterFinished"] == 86400
    assert template["spec"]["activeDeadlineSeconds"] == 300 + 600
    assert_hardened(template["spec"]["template"]["spec"])
    command = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command[-1] == "--keep-results"
    # The fake has no CronJob controller: run two loops the way the CronJob's Jobs would.
    for _ in range(2):
        assert kubectl(*command[1:]).code == 0
    report = json.loads(kubectl("report", "-g", "loop", "-o", "json").out)
    assert report["summary"]["numLoops"] == 2
    secret = fake.get("secrets", "loop")
    stored = yaml.safe_load(base64.b64decode(secret["data"]["experiment.yaml"]))
    assert stored["result"]["insights"]["nonHistMetricValues"] == [{"app/latency": [10.0, 10.0]}]


@pytest.mark.parametrize("becomes_ready", [False, True])
def test_ready_waits_for_a_deployment(cluster: Cluster, kubectl, tmp_path: Path, becomes_ready: bool) -> None:
    cluster.deploy("slow", ready=False)
    later = threading.Timer(3.0, cluster.make_ready, ("slow",))
    if becomes_ready:
        later.start()
    (tmp_path / "exp.yaml").write_text(
        "spec:\n- task: ready\n  with: {group: apps, version: v1, resource: deployments, name: slow, condition: available, timeout: 10s}\n"
    )
    outcome = kubectl("launch", "--local", "-f", "exp.yaml")
    if becomes_ready:
        later.join()
    assert "Traceback" not in outcome.err
    where = f'deployment "slow" in namespace "{cluster.namespace}"'
    if not becomes_ready:
        assert outcome.code == 1
        # The fake writes no status for a Deployment it holds back; the real controller says why.
        reason = (
            "no status reported yet" if cluster.fake else "available is False (MinimumReplicasUnavailable)"
        )
        assert f"{where} not ready after 10s: " in outcome.err
        assert reason in outcome.err
    else:
        assert outcome.code == 0, outcome.err
        assert f"waiting for {where}" in outcome.err
        assert f"{where} is ready" in outcome.err


@pytest.mark.fake_only
def test_ready_counts_only_a_current_status(cluster: Cluster, kubectl, tmp_path: Path) -> None:
    fake = cluster.require_fake()
    fake.controllers.deployments = "never"
    cluster.deploy("stale")
    deployment = fake.get("deployments", "stale")
    deployment["status"] = {
        "observedGeneration": deployment["metadata"]["generation"] - 1,
        "conditions": [{"type": "Available", "status": "True"}],
    }
    fake.update(deployment, status=True)
    (tmp_path / "exp.yaml").write_text(
        "spec:\n- task: ready\n  with: {group: apps, resource: deployments, version: v1, name: stale, conditions: [Available], timeout: 1s}\n"
    )
    outcome = kubectl("launch", "--local", "-f", "exp.yaml")
    assert outcome.code == 1
    assert "its status is for generation 0, the object is at generation 1" in outcome.err


def test_chart_values_shorthand_for_ready(cluster: Cluster, kubectl) -> None:
    cluster.deploy("web")
    outcome = kubectl(
        "launch",
        "--local",
        "--set",
        "tasks={ready}",
        "--set",
        "ready.deploy=web",
        "--set",
        "ready.timeout=5s",
    )
    assert outcome.code == 0, outcome.err


@pytest.mark.fake_only
def test_bad_cluster_inputs_give_one_line_errors(cluster: Cluster, kubectl, tmp_path: Path) -> None:
    fake = cluster.require_fake()
    (tmp_path / "exp.yaml").write_text("spec: [{run: [echo]}]\n")
    missing_ns = kubectl("launch", "-f", "exp.yaml", "-n", "nosuchns")
    assert missing_ns.code == 1
    assert missing_ns.err.strip() == 'error: namespace "nosuchns" not found'
    unknown = kubectl("assert", "-g", "nope", "-c", "completed")
    assert unknown.err.strip() == 'error: experiment group "nope" not found in namespace "default"'
    fake.forbid("get", "secrets")
    forbidden = kubectl("report", "-g", "nope")
    assert forbidden.code == 1
    assert forbidden.err.startswith("error: forbidden: ")
    assert len(forbidden.err.strip().splitlines()) == 1
    unreachable = kubectl("report", "-g", "x", "--kubeconfig", str(_dead_kubeconfig(tmp_path)))
    assert unreachable.code == 1
    assert (
        unreachable.err.strip()
        == "error: cannot reach the Kubernetes API server at http://127.0.0.1:9: connection refused"
    )


def _dead_kubeconfig(tmp_path: Path) -> Path:
    path = tmp_path / "dead.yaml"
    path.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: dead\n"
        "clusters: [{name: dead, cluster: {server: 'http://127.0.0.1:9'}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: dead, context: {cluster: dead, user: u}}]\n"
    )
    return path
