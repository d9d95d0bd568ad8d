"""The stand-in controllers: Deployment and InferenceService readiness, and the Job runner."""

from __future__ import annotations

import json
import sys
import time

import pytest
from tiers import CRDS, crds_dir

from kubectl_iter8.testing import ApiError, FakeKube


def deployment(name: str, replicas: int = 2) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "x"}]},
            },
        },
    }


def job(name: str, *argv: str, backoff: int = 0, **extra: object) -> dict:
    container = {"name": "main", "image": "python", "command": list(argv), **extra}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": backoff,
            "template": {
                "metadata": {"labels": {"team": "iter8"}},
                "spec": {"restartPolicy": "Never", "containers": [container]},
            },
        },
    }


def available(obj: dict) -> bool:
    status = obj.get("status") or {}
    conditions = {c["type"]: c["status"] for c in status.get("conditions", [])}
    return (
        conditions.get("Available") == "True"
        and status.get("observedGeneration") == obj["metadata"]["generation"]
    )


def job_done(obj: dict) -> bool:
    types = {c["type"] for c in (obj.get("status") or {}).get("conditions", []) if c["status"] == "True"}
    return bool(types & {"Complete", "Failed"})


def test_deployment_becomes_available_immediately_by_default(fake_kube):
    proc = fake_kube.kubectl("apply", "-f", "-", input=json.dumps(deployment("web")))
    assert proc.returncode == 0, proc.stderr
    dep = fake_kube.wait_for("deployments", "web", available, timeout=2)
    assert dep["status"]["availableReplicas"] == 2
    proc = fake_kube.kubectl("rollout", "status", "deployment/web", "--timeout=5s")
    assert proc.returncode == 0, proc.stderr
    assert "successfully rolled out" in proc.stdout
    # A spec change makes it current again (observedGeneration follows generation).
    fake_kube.patch("deployments", "web", {"spec": {"replicas": 3}})
    dep = fake_kube.wait_for(
        "deployments", "web", lambda d: available(d) and d["status"]["readyReplicas"] == 3
    )
    assert dep["metadata"]["generation"] == 2


def test_deployment_readiness_after_a_delay(fake_kube):
    fake_kube.controllers.deployments = 0.5
    started = time.monotonic()
    fake_kube.create(deployment("slow"))
    assert not available(fake_kube.get("deployments", "slow"))
    fake_kube.wait_for("deployments", "slow", available, timeout=3)
    assert time.monotonic() - started >= 0.5


def test_deployment_never_ready_until_marked(fake_kube):
    fake_kube.controllers.deployments = "never"
    fake_kube.create(deployment("stuck"))
    time.sleep(0.1)
    assert "status" not in fake_kube.get("deployments", "stuck")
    fake_kube.mark_ready("deployments", "stuck", after=0.1)
    fake_kube.wait_for("deployments", "stuck", available, timeout=3)
    fake_kube.mark_unready("deploy", "stuck")
    dep = fake_kube.get("deployments", "stuck")
    assert not available(dep)
    assert "availableReplicas" not in dep["status"]
    assert {a.source for a in fake_kube.audit if a.subresource == "status"} == {"controller"}


def test_readiness_policies_are_validated(fake_kube):
    with pytest.raises(ValueError, match="readiness policy"):
        fake_kube.controllers.deployments = "soon"
    with pytest.raises(ValueError, match="no readiness status"):
        fake_kube.mark_ready("configmaps", "x")
    with pytest.raises(ApiError, match='deployments.apps "nope" not found'):
        fake_kube.mark_ready("deployments", "nope")


def test_inferenceservice_ready_policy(fake_kube):
    crds_dir()
    fake_kube.load_crds(CRDS / "kserve-inferenceservices.yaml")
    isvc = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "m"},
        "spec": {"predictor": {"model": {"modelFormat": {"name": "sklearn"}}}},
    }
    fake_kube.controllers.inferenceservices = 0.5
    fake_kube.create(isvc)
    assert "status" not in fake_kube.get("isvc", "m")
    ready = fake_kube.wait_for(
        "isvc",
        "m",
        lambda o: any(
            c["type"] == "Ready" and c["status"] == "True" for c in o.get("status", {}).get("conditions", [])
        ),
    )
    assert ready["status"]["url"] == "http://m.default.example.com"
    proc = fake_kube.kubectl("wait", "--for=condition=Ready", "isvc/m", "--timeout=5s")
    assert proc.returncode == 0, proc.stderr


def test_job_runs_its_command_and_serves_the_log(fake_kube):
    fake_kube.create(job("hello", sys.executable, "-c", "print('hi')"))
    done = fake_kube.wait_for("jobs", "hello", job_done, timeout=10)
    assert done["status"]["succeeded"] == 1
    assert "active" not in done["status"]
    assert {c["type"] for c in done["status"]["conditions"]} == {"Complete", "SuccessCriteriaMet"}
    (pod,) = fake_kube.list("pods", labels="job-name=hello")
    assert pod["metadata"]["labels"]["team"] == "iter8"
    assert pod["metadata"]["labels"]["controller-uid"] == done["metadata"]["uid"]
    assert pod["metadata"]["ownerReferences"][0]["uid"] == done["metadata"]["uid"]
    assert pod["status"]["phase"] == "Succeeded"
    assert fake_kube.kubectl("logs", "job/hello").stdout == "hi\n"
    assert fake_kube.kubectl("logs", pod["metadata"]["name"]).stdout == "hi\n"
    assert fake_kube.logs(pod["metadata"]["name"]) == "hi\n"
    proc = fake_kube.kubectl("wait", "--for=condition=complete", "job/hello", "--timeout=5s")
    assert proc.returncode == 0, proc.stderr
    # Deleting the Job garbage-collects its pod.
    fake_kube.kubectl("delete", "job", "hello")
    assert fake_kube.list("pods") == []


def test_job_process_gets_env_and_a_kubeconfig_for_the_fake(fake_kube):
    fake_kube.create(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"k": "from-cm"}}
    )
    script = (
        "import os\n"
        "from kubernetes import client, config\n"
        "config.load_kube_config(config_file=os.environ['KUBECONFIG'])\n"
        "core = client.CoreV1Api()\n"
        "ns = os.environ['POD_NAMESPACE']\n"
        "core.create_namespaced_config_map(ns, {'metadata': {'name': 'result'}, 'data': {\n"
        "    'greeting': os.environ['GREETING'], 'cm': os.environ['FROM_CM'], 'pod': os.environ['MY_POD']}})\n"
    )
    env = [
        {"name": "GREETING", "value": "hello"},
        {"name": "FROM_CM", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "k"}}},
        {"name": "MY_POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
    ]
    fake_kube.create(job("writer", sys.executable, "-c", script, env=env))
    done = fake_kube.wait_for("jobs", "writer", job_done, timeout=15)
    (pod,) = fake_kube.list("pods", labels="job-name=writer")
    assert done["status"].get("succeeded") == 1, fake_kube.logs(pod["metadata"]["name"])
    data = fake_kube.get("configmaps", "result")["data"]
    assert data == {"greeting": "hello", "cm": "from-cm", "pod": pod["metadata"]["name"]}


def test_failing_job_retries_up_to_backoff_limit(fake_kube):
    fake_kube.create(job("bad", sys.executable, "-c", "import sys; print('boom'); sys.exit(3)", backoff=1))
    done = fake_kube.wait_for("jobs", "bad", job_done, timeout=10)
    assert done["status"]["failed"] == 2
    failed = next(c for c in done["status"]["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "BackoffLimitExceeded"
    pods = fake_kube.list("pods", labels="job-name=bad")
    assert len(pods) == 2
    assert pods[0]["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 3
    assert fake_kube.logs(pods[0]["metadata"]["name"]) == "boom\n"


def test_active_deadline_kills_the_process(fake_kube):
    slow = job("slow", sys.executable, "-c", "import time; time.sleep(30)")
    slow["spec"]["activeDeadlineSeconds"] = 0.3
    fake_kube.create(slow)
    done = fake_kube.wait_for("jobs", "slow", job_done, timeout=10)
    assert (
        next(c for c in done["status"]["conditions"] if c["type"] == "Failed")["reason"] == "DeadlineExceeded"
    )


def test_follow_logs_of_a_running_job(fake_kube):
    code = "import time\nfor i in range(3):\n    print(i, flush=True)\n    time.sleep(0.1)\n"
    fake_kube.create(job("ticker", sys.executable, "-c", code))
    fake_kube.wait_for("jobs", "ticker", lambda j: (j.get("status") or {}).get("active") == 1)
    proc = fake_kube.kubectl("logs", "-f", "job/ticker", timeout=10)
    assert proc.stdout == "0\n1\n2\n", proc.stderr


def test_jobs_can_be_left_alone_or_given_a_command(fake_kube):
    fake_kube.controllers.jobs = False
    fake_kube.create(job("idle", "does-not-matter"))
    time.sleep(0.1)
    assert "status" not in fake_kube.get("jobs", "idle")
    fake_kube.controllers.jobs = True
    fake_kube.controllers.job_command = lambda _job, container: [
        sys.executable,
        "-c",
        f"print('{container['image']}')",
    ]
    fake_kube.create(job("mapped", "/bin/iter8", "k", "run"))
    fake_kube.wait_for("jobs", "mapped", job_done, timeout=10)
    (pod,) = fake_kube.list("pods", labels="job-name=mapped")
    assert fake_kube.logs(pod["metadata"]["name"]) == "python\n"


def test_stop_kills_running_jobs():
    with FakeKube() as kube:
        kube.create(job("forever", sys.executable, "-c", "import time; time.sleep(60)"))
        kube.wait_for("jobs", "forever", lambda j: (j.get("status") or {}).get("active") == 1)
        started = time.monotonic()
    assert time.monotonic() - started < 5


def test_reset_kills_running_jobs_before_clearing(fake_kube):
    fake_kube.create(job("long", sys.executable, "-c", "import time; time.sleep(30)"))
    fake_kube.wait_for("jobs", "long", lambda j: (j.get("status") or {}).get("active") == 1)
    fake_kube.reset()
    time.sleep(0.1)
    assert fake_kube.list("jobs") == []
    assert fake_kube.list("pods") == []
