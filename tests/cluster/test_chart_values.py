"""Iter8's chart values for the runner, in a cluster (the fake and the real control plane):
``serviceAccountName`` runs the Job as that account with the rights its owner gave it (and no
account or Role of ours), ``logLevel`` is the runner's, ``resources`` are its container's, and
``runner=cronjob`` with ``cronjobSchedule`` makes the CronJob."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

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
