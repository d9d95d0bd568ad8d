"""The controller's commands and HTTP port: ``serve`` as a real process, ``manifests``, and the endpoints."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import yaml
from controller_helpers import Harness, Kube, app_versions, create_version, routemap, routes, wait_until
from pod_security import assert_restricted

from kubectl_iter8.testing import FakeKube

HERE = Path(__file__).resolve().parent


def http_get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""


def test_health_ready_and_metrics_endpoints(harness: Harness, kube: Kube) -> None:
    create_version(kube, "v1")
    create_version(kube, "v2")
    kube.create(routemap("app", app_versions("v1", "v2", weights=[70, 30])))
    ctl = harness.start()
    assert ctl.http is not None
    port = ctl.http.port
    wait_until(lambda: routes(kube) == {"v1": 70, "v2": 30}, what="routes")
    assert http_get(port, "/healthz") == (200, "ok\n")
    assert http_get(port, "/readyz") == (200, "ok\n")
    wait_until(lambda: 'version="v2"} 30' in http_get(port, "/metrics")[1], what="the applied weight metric")
    status, text = http_get(port, "/metrics")
    assert status == 200
    assert (
        f'iter8_controller_applied_weight{{namespace="{kube.namespace}",routemap="app",version="v1"}} 70'
        in text
    )
    assert 'iter8_controller_reconciles_total{result="success"}' in text
    assert "iter8_controller_is_leader 1" in text
    assert http_get(port, "/nosuch")[0] == 404


def test_manifests_are_least_privilege_and_apply(cli, fake_kube: FakeKube, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        "resourceTypes:\n  ksvc: {group: serving.knative.dev, version: v1, resource: services, conditions: [Ready]}\n"
    )
    out = cli("controller", "manifests", "--namespace", "default", "--config", str(config))
    assert out.code == 0, out.err
    assert "&id" not in out.out  # no YAML anchors for a reader to follow
    docs = list(yaml.safe_load_all(out.out))
    assert [d["kind"] for d in docs] == [
        "Namespace", "ServiceAccount", "Role", "RoleBinding", "Deployment", "Service", "NetworkPolicy",
    ]  # fmt: skip
    rules = docs[2]["rules"]
    knative = next(r for r in rules if r["apiGroups"] == ["serving.knative.dev"])
    assert knative == {
        "apiGroups": ["serving.knative.dev"],
        "resources": ["services"],
        "verbs": ["get", "list", "watch", "patch"],
    }
    assert all("*" not in r["verbs"] and "*" not in r["resources"] for r in rules)
    deleting = {res for r in rules if "delete" in r["verbs"] for res in r["resources"]}
    assert deleting == {"configmaps", "virtualservices", "httproutes"}
    assert any(r["resources"] == ["leases"] for r in rules)
    container = docs[4]["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][:4] == ["controller", "serve", "--namespace", "default"]
    assert container["image"].startswith("ghcr.io/kubectl-iter8/kubectl-iter8:v")
    applied = fake_kube.kubectl("apply", "-f", "-", input=out.out)
    assert applied.returncode == 0, applied.stderr
    assert fake_kube.exists("deployments", "iter8-controller")

    scoped = cli("controller", "manifests", "--cluster-scoped")
    kinds = [d["kind"] for d in yaml.safe_load_all(scoped.out)]
    assert kinds == [
        "Namespace",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Deployment",
        "Service",
        "NetworkPolicy",
    ]
    assert (
        "--all-namespaces"
        in next(d for d in yaml.safe_load_all(scoped.out) if d["kind"] == "Deployment")["spec"]["template"][
            "spec"
        ]["containers"][0]["args"]
    )
    assert cli("controller", "manifests", "-A").out == scoped.out


def test_rollout_rights_are_granted_only_with_rollouts(cli) -> None:
    def role_and_args(*flags: str) -> tuple[list[dict], list[str]]:
        out = cli("controller", "manifests", "--namespace", "default", *flags)
        assert out.code == 0, out.err
        docs = list(yaml.safe_load_all(out.out))
        role = next(d for d in docs if d["kind"] == "Role")
        deployment = next(d for d in docs if d["kind"] == "Deployment")
        return role["rules"], deployment["spec"]["template"]["spec"]["containers"][0]["args"]

    rules, args = role_and_args()
    granted = {res for rule in rules for res in rule["resources"]}
    assert not granted & {"secrets", "jobs", "serviceaccounts", "roles", "rolebindings", "pods"}
    assert "--rollouts" not in args
    rules, args = role_and_args("--rollouts")
    verbs = {
        (group, res): rule["verbs"]
        for rule in rules
        for group in rule["apiGroups"]
        for res in rule["resources"]
    }
    assert verbs[("", "secrets")] == ["get", "create", "update", "patch"]
    assert verbs[("batch", "jobs")] == ["get", "list", "watch", "create", "delete"]
    assert verbs[("rbac.authorization.k8s.io", "roles")] == ["get", "create", "update", "patch"]
    assert "update" in verbs[("", "configmaps")]
    assert args[args.index("--rollouts") + 1] == "--analysis-image"


def rbac_by_namespace(docs: list[dict], home: str = "iter8-system") -> dict[str, list[str]]:
    """For each namespace with a Role: the resources it grants, and that its binding names the controller."""
    granted: dict[str, list[str]] = {}
    for doc in docs:
        ns = doc["metadata"].get("namespace")
        if doc["kind"] == "Role":
            granted[ns] = sorted(res for rule in doc["rules"] for res in rule["resources"])
        if doc["kind"] == "RoleBinding":
            assert doc["roleRef"] == {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "iter8-controller",
            }
            assert doc["subjects"] == [
                {"kind": "ServiceAccount", "name": "iter8-controller", "namespace": home}
            ]
    return granted


WATCHING = sorted(
    ["configmaps", "deployments", "events", "httproutes", "inferenceservices", "services", "virtualservices"]
)


def test_manifests_apply_to_a_fresh_cluster_and_watch_the_namespaces_asked_for(
    cli, fake_kube: FakeKube
) -> None:
    assert not fake_kube.exists("namespaces", "iter8-system")
    out = cli("controller", "manifests")
    assert out.code == 0, out.err
    docs = list(yaml.safe_load_all(out.out))
    assert docs[0] == {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "iter8-system"}}
    # By default the apps are in "default"; the controller's own namespace holds only its Lease.
    assert rbac_by_namespace(docs) == {"iter8-system": ["leases"], "default": WATCHING}
    args = next(d for d in docs if d["kind"] == "Deployment")["spec"]["template"]["spec"]["containers"][0][
        "args"
    ]
    assert args[:6] == [
        "controller",
        "serve",
        "--namespace",
        "default",
        "--leader-elect",
        "--lease-namespace",
    ]
    assert args[6] == "iter8-system"
    applied = fake_kube.kubectl("apply", "-f", "-", input=out.out)
    assert applied.returncode == 0, applied.stderr
    assert fake_kube.exists("deployments", "iter8-controller", "iter8-system")
    assert fake_kube.exists("rolebindings", "iter8-controller", "default")

    for ns in ("shop", "payments"):
        assert fake_kube.kubectl("create", "namespace", ns).returncode == 0
    out = cli("controller", "manifests", "-w", "shop", "--watch-namespace", "payments", "-w", "shop")
    assert out.code == 0, out.err
    docs = list(yaml.safe_load_all(out.out))
    assert rbac_by_namespace(docs) == {"iter8-system": ["leases"], "shop": WATCHING, "payments": WATCHING}
    args = next(d for d in docs if d["kind"] == "Deployment")["spec"]["template"]["spec"]["containers"][0][
        "args"
    ]
    assert args[:6] == ["controller", "serve", "--namespace", "shop", "--namespace", "payments"]
    applied = fake_kube.kubectl("apply", "-f", "-", input=out.out)
    assert applied.returncode == 0, applied.stderr
    assert fake_kube.exists("roles", "iter8-controller", "payments")

    # Watching its own namespace too: one Role there, with the Lease and the apps' rules.
    docs = list(
        yaml.safe_load_all(
            cli("controller", "manifests", "-n", "shop", "-w", "shop", "--no-create-namespace").out
        )
    )
    assert [d["kind"] for d in docs][:3] == ["ServiceAccount", "Role", "RoleBinding"]
    assert rbac_by_namespace(docs, home="shop") == {"shop": sorted([*WATCHING, "leases"])}


def test_the_controller_pod_is_hardened(cli) -> None:
    out = cli("controller", "manifests")
    pod = next(d for d in yaml.safe_load_all(out.out) if d["kind"] == "Deployment")["spec"]["template"][
        "spec"
    ]
    assert_restricted(pod)


def test_manifests_flags_are_checked(cli) -> None:
    both = cli("controller", "manifests", "-w", "shop", "--all-namespaces")
    assert both.code == 2
    assert both.err == "error: Either --watch-namespace or --all-namespaces can be used, not both.\n"
    bad = cli("controller", "manifests", "-w", "Shop_1")
    assert bad.code == 2
    assert bad.err.startswith("error: --watch-namespace 'Shop_1': not a namespace name (")
    assert len(bad.err.splitlines()) == 1


def test_manifests_serve_the_abn_port_with_its_store(cli, fake_kube: FakeKube) -> None:
    def deployment_and_service(*flags: str) -> tuple[dict, dict]:
        out = cli("controller", "manifests", *flags)
        assert out.code == 0, out.err
        docs = {d["kind"]: d for d in yaml.safe_load_all(out.out)}
        return docs["Deployment"]["spec"]["template"]["spec"], docs["Service"]["spec"]

    scratch = {"name": "scratch", "emptyDir": {}}
    scratch_mount = {"name": "scratch", "mountPath": "/tmp"}
    pod, service = deployment_and_service()
    (container,) = pod["containers"]
    args = container["args"]
    assert args[args.index("--abn-port") + 1] == "50051"
    assert args[args.index("--abn-address") + 1] == "0.0.0.0"
    assert args[args.index("--abn-store") + 1] == "sqlite:/var/lib/iter8/abn.sqlite"
    assert container["volumeMounts"] == [scratch_mount, {"name": "abn-data", "mountPath": "/var/lib/iter8"}]
    assert pod["volumes"] == [scratch, {"name": "abn-data", "emptyDir": {}}]
    assert {"name": "grpc", "port": 50051, "targetPort": "grpc"} in service["ports"]

    pod, _ = deployment_and_service("--abn-store-secret", "abn-redis")
    (container,) = pod["containers"]
    assert "--abn-store" not in container["args"]  # the URL (with its password) comes from the Secret
    assert {
        "name": "ITER8_ABN_STORE",
        "valueFrom": {"secretKeyRef": {"name": "abn-redis", "key": "url"}},
    } in container["env"]
    assert pod["volumes"] == [scratch]

    pod, service = deployment_and_service("--abn-port", "0")
    assert "--abn-port" not in pod["containers"][0]["args"]
    assert [p["name"] for p in service["ports"]] == ["http"]


def test_serve_flags_are_checked(cli) -> None:
    out = cli("controller", "serve", "-n", "a", "--all-namespaces")
    assert out.code == 2
    assert "Either --namespace or --all-namespaces" in out.err


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serve_runs_as_a_process_and_stops_on_sigterm(fake_kube: FakeKube, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        "resourceTypes:\n"
        "  deploy: {group: apps, version: v1, resource: deployments, kind: Deployment, conditions: [Available]}\n"
        "  svc: {version: v1, resource: services, kind: Service}\n"
        "defaultResync: 1s\n"
    )
    port = free_port()
    env = {
        **os.environ,
        **fake_kube.env(),
        "ITER8_PLUGINS": "iter8_controller_test_plugin",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])),
    }
    log = tmp_path / "controller.log"
    with log.open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "kubectl_iter8", "controller", "serve", "--namespace", "default",
             "--config", str(config), "--http-port", str(port), "--log-format", "json", "--leader-elect"],
            env=env, stdout=subprocess.DEVNULL, stderr=stderr,
        )  # fmt: skip
        try:
            wait_until(
                lambda: http_get(port, "/readyz")[0] == 200,
                timeout=20,
                what=f"/readyz; log: {log.read_text()}",
            )
            create_version(fake_kube, "v1")
            create_version(fake_kube, "v2")
            fake_kube.create(routemap("app", app_versions("v1", "v2", weights=[60, 40])))
            wait_until(lambda: routes(fake_kube) == {"v1": 60, "v2": 40}, what="routes from the process")
            assert fake_kube.get("leases", "iter8-controller")["spec"]["holderIdentity"]
        finally:
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(15)
    assert code == 0, log.read_text()
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    messages = [line["message"] for line in lines]
    assert any(m.startswith("controller started: watching default") for m in messages), messages
    assert "controller stopped" in messages
    # A clean stop released the lease.
    assert fake_kube.get("leases", "iter8-controller")["spec"]["holderIdentity"] == ""
