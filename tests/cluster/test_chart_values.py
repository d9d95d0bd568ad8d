"""Iter8's chart values for the runner, in a cluster (the fake and the real control plane):
``serviceAccountName`` runs the Job as that account with the rights its owner gave it (and no
account or Role of ours), ``logLevel`` is the runner's, ``resources`` are its container's,
``runner=cronjob`` with ``cronjobSchedule`` makes the CronJob, and ``metricsServerURL`` sends the
Job's load test result to the dashboards' server."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubectl_iter8.controller.http import HTTPServer, Metrics
from kubectl_iter8.controller.testresults import TestResults

from kubectl_iter8.sample_app import running

from .conftest import Cluster
from .test_experiments_in_cluster import launch, ns_args

VALUES = """
tasks: [run]
run: {cmd: [echo, hello]}
"""

#: What the runner needs, given by hand as Iter8's users did when they named their own account.
RBAC = """
apiVersion: v1
kind: ServiceAccount
metadata: {{name: own-sa, namespace: {ns}}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: own-sa, namespace: {ns}}}
rules:
- {{apiGroups: [""], resources: [secrets], resourceNames: [{group}], verbs: [get, update, patch]}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: own-sa, namespace: {ns}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: own-sa}}
subjects: [{{kind: ServiceAccount, name: own-sa, namespace: {ns}}}]
"""


def get(cluster: Cluster, kind: str, name: str) -> dict[str, Any] | None:
    found = cluster.kubectl("get", kind, name, "-n", cluster.namespace, "-o", "json")
    return json.loads(found.stdout) if found.returncode == 0 else None


def test_the_job_runs_as_the_named_account_at_the_values_log_level_and_resources(
    cluster: Cluster, kubectl, tmp_path: Path
) -> None:
    applied = cluster.kubectl("apply", "-f", "-", stdin=RBAC.format(ns=cluster.namespace, group="own"))
    assert applied.returncode == 0, applied.stderr
    values = VALUES + "serviceAccountName: own-sa\nlogLevel: debug\nresources: {limits: {memory: 600Mi}}\n"
    launched = launch(kubectl, cluster, tmp_path, values, "-g", "own")
    assert launched.code == 0, launched.err
    waited = kubectl(
        "assert", "-g", "own", *ns_args(cluster), "-c", "completed,nofailure", "--timeout", "90s"
    )
    assert waited.code == 0, kubectl("log", "-g", "own", *ns_args(cluster)).out
    job = get(cluster, "job", "own-1-job")
    assert job is not None
    pod = job["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "own-sa"
    assert pod["containers"][0]["command"][1:3] == ["--loglevel", "debug"]
    assert pod["containers"][0]["resources"]["limits"] == {"cpu": "1", "memory": "600Mi"}
    # As in Iter8's chart: no account, Role or RoleBinding of the group's own.
    for kind in ("serviceaccount", "role", "rolebinding"):
        assert get(cluster, kind, "own-iter8") is None, kind
    assert "DEBUG" in kubectl("log", "-g", "own", *ns_args(cluster)).out


def test_a_relaunch_with_its_own_account_removes_the_groups_account_and_role(
    cluster: Cluster, kubectl, tmp_path: Path
) -> None:
    assert launch(kubectl, cluster, tmp_path, VALUES, "-g", "swap").code == 0
    assert get(cluster, "role", "swap-iter8") is not None
    applied = cluster.kubectl("apply", "-f", "-", stdin=RBAC.format(ns=cluster.namespace, group="swap"))
    assert applied.returncode == 0, applied.stderr
    relaunched = launch(kubectl, cluster, tmp_path, VALUES + "serviceAccountName: own-sa\n", "-g", "swap")
    assert relaunched.code == 0, relaunched.err
    for kind in ("serviceaccount", "role", "rolebinding"):
        assert get(cluster, kind, "swap-iter8") is None, kind
    waited = kubectl(
        "assert", "-g", "swap", *ns_args(cluster), "-c", "completed,nofailure", "--timeout", "90s"
    )
    assert waited.code == 0, kubectl("log", "-g", "swap", *ns_args(cluster)).out


def test_runner_cronjob_makes_the_cronjob_on_the_values_schedule(
    cluster: Cluster, kubectl, tmp_path: Path
) -> None:
    values = VALUES + "runner: cronjob\ncronjobSchedule: '0 0 1 1 *'\n"
    launched = launch(kubectl, cluster, tmp_path, values, "-g", "cron")
    assert launched.code == 0, launched.err
    cron = get(cluster, "cronjob", "cron-1-cronjob")
    assert cron is not None
    assert cron["spec"]["schedule"] == "0 0 1 1 *"
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    assert get(cluster, "job", "cron-1-job") is None
    dry = launch(kubectl, cluster, tmp_path, values, "-g", "cron", "--dry-run")
    assert [doc["kind"] for doc in yaml.safe_load_all(dry.out)][-1] == "CronJob"


def test_metrics_server_url_sends_the_jobs_result_to_the_http_dashboard(
    cluster: Cluster, kubectl, tmp_path: Path
) -> None:
    if cluster.fake is None and cluster.real is None:
        pytest.skip("a Job's pod on an external cluster cannot reach this machine's 127.0.0.1")
    results = TestResults()
    server = HTTPServer(
        "127.0.0.1", 0, metrics=Metrics(), healthy=lambda: True, ready=lambda: True,
        routes=results.routes(), put_routes=results.put_routes(),
    )  # fmt: skip
    server.start()
    try:
        with running() as app:
            values = (
                f"tasks: [http]\nhttp: {{url: '{app.url}/get', numRequests: 12, qps: 0}}\n"
                f"metricsServerURL: http://127.0.0.1:{server.port}\nmajorMinor: v1.1\n"
            )
            launched = launch(kubectl, cluster, tmp_path, values, "-g", "perf")
            assert launched.code == 0, launched.err
            waited = kubectl(
                "assert", "-g", "perf", *ns_args(cluster), "-c", "completed,nofailure", "--timeout", "90s"
            )
            assert waited.code == 0, kubectl("log", "-g", "perf", *ns_args(cluster)).out
        query = f"namespace={cluster.namespace}&test=perf"
        with urllib.request.urlopen(
            f"http://127.0.0.1:{server.port}/httpDashboard?{query}", timeout=10
        ) as got:
            board = json.loads(got.read())
    finally:
        server.stop()
    headline = board["ExperimentResult"]
    assert (headline["Name"], headline["Namespace"]) == ("perf", cluster.namespace)
    assert (headline["Completed tasks"], headline["Failure"]) == (1, False)
    [(endpoint, row)] = board["Endpoints"].items()
    assert endpoint == f"{app.url}/get"
    assert row["Statistics"]["Count"] == 12
    assert row["Return codes"] == {"200": 12}
    assert sum(bucket["Value"] for bucket in row["Durations"]) == 12
    assert "result sent to http://127.0.0.1:" in kubectl("log", "-g", "perf", *ns_args(cluster)).out
