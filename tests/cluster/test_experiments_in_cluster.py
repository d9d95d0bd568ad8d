"""Experiments in a cluster through the real kubectl: launch, the Job runs, assert, report, log, relaunch, delete."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest
import yaml

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
    outcome = kubectl("assert", "-g", "bad", *ns_args(cluster), "-c", "nofailure", "--timeout", "60s")
    assert outcome.code == 1
    assert "nofailure: not satisfied" in outcome.out
    report = json.loads(kubectl("report", "-g", "bad", *ns_args(cluster), "-o", "json").out)
    assert report["summary"]["failureMessage"] == "spec[0] (run): command exited with code 4: broken"


def test_dry_run_prints_the_manifests_and_creates_nothing(cluster: Cluster, kubectl, tmp_path: Path) -> None:
    outcome = launch(kubectl, cluster, tmp_path, EXPERIMENT, "-g", "dry", "--dry-run")
    assert outcome.code == 0, outcome.err
    kinds = [doc["kind"] for doc in yaml.safe_load_all(outcome.out)]
    assert kinds == ["Secret", "ServiceAccount", "Role", "RoleBinding", "Job"]
    assert cluster.kubectl("get", "secret", "dry", "-n", cluster.namespace).returncode != 0


def test_schedule_makes_a_cronjob_whose_loops_keep_their_results(
    cluster: Cluster, kubectl, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = cluster.require_fake()
    monkeypatch.setenv("ITER8_PLUGINS", "iter8_test_plugin")
    text = "spec:\n- task: record-metrics\n  with: {values: {app/latency: [10]}}\n"
    assert launch(kubectl, cluster, tmp_path, text, "-g", "loop", "--schedule", "*/5 * * * *").code == 0
    cron = fake.get("cronjobs", "loop-1-cronjob")
    assert cron["spec"]["schedule"] == "*/5 * * * *"
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


@pytest.mark.parametrize("policy", ["never", 3.0])
def test_ready_waits_for_a_deployment(cluster: Cluster, kubectl, tmp_path: Path, policy: object) -> None:
    fake = cluster.require_fake()
    fake.controllers.deployments = policy
    cluster.deploy("slow")
    (tmp_path / "exp.yaml").write_text(
        "spec:\n- task: ready\n  with: {group: apps, version: v1, resource: deployments, name: slow, condition: available, timeout: 6s}\n"
    )
    outcome = kubectl("launch", "--local", "-f", "exp.yaml")
    assert "Traceback" not in outcome.err
    if policy == "never":
        assert outcome.code == 1
        assert (
            'deployment "slow" in namespace "default" not ready after 6s: no status reported yet'
            in outcome.err
        )
    else:
        assert outcome.code == 0, outcome.err
        assert 'waiting for deployment "slow" in namespace "default"' in outcome.err
        assert 'deployment "slow" in namespace "default" is ready' in outcome.err


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
    cluster.require_fake()
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
