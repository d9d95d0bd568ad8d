"""Create, read, update, patch and delete against the fake, through kubectl and the kubernetes client."""

from __future__ import annotations

import base64
import json

import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from kubectl_iter8.testing import ApiError, FakeKube

CM = """apiVersion: v1
kind: ConfigMap
metadata:
  name: demo
  labels: {app: demo, tier: web}
data: {a: "1", b: "2"}
"""

DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: app
        image: app:1
        env: [{name: A, value: "1"}, {name: B, value: "2"}]
        ports: [{containerPort: 8080}]
      - name: sidecar
        image: side:1
"""


@pytest.fixture
def api(fake_kube):
    cfg = client.Configuration()
    config.load_kube_config(config_file=str(fake_kube.kubeconfig), client_configuration=cfg)
    with client.ApiClient(cfg) as api_client:
        yield api_client


def kubectl_ok(kube: FakeKube, *args: str, input: str | None = None) -> str:
    proc = kube.kubectl(*args, input=input)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_kubectl_apply_client_side_create_then_configure(fake_kube):
    assert kubectl_ok(fake_kube, "apply", "-f", "-", input=CM).strip() == "configmap/demo created"
    changed = CM.replace('b: "2"', 'c: "3"')
    assert kubectl_ok(fake_kube, "apply", "-f", "-", input=changed).strip() == "configmap/demo configured"
    assert fake_kube.get("configmaps", "demo")["data"] == {"a": "1", "c": "3"}
    assert kubectl_ok(fake_kube, "apply", "-f", "-", input=changed).strip() == "configmap/demo unchanged"


def test_kubectl_apply_server_side(fake_kube):
    out = kubectl_ok(fake_kube, "apply", "--server-side", "-f", "-", input=CM)
    assert out.strip() == "configmap/demo serverside-applied"
    kubectl_ok(fake_kube, "apply", "--server-side", "-f", "-", input=CM.replace('b: "2"', 'c: "3"'))
    # Fields the same manager stopped applying are removed.
    assert fake_kube.get("configmaps", "demo")["data"] == {"a": "1", "c": "3"}


def test_kubectl_apply_deployment_strategic_merge_keeps_list_items_by_name(fake_kube):
    kubectl_ok(fake_kube, "apply", "-f", "-", input=DEPLOYMENT)
    kubectl_ok(fake_kube, "apply", "-f", "-", input=DEPLOYMENT.replace("image: app:1", "image: app:2"))
    dep = fake_kube.get("deployments", "web")
    containers = dep["spec"]["template"]["spec"]["containers"]
    assert [(c["name"], c["image"]) for c in containers] == [("app", "app:2"), ("sidecar", "side:1")]
    assert dep["metadata"]["generation"] == 2
    # Dropping a container and an env var from the manifest removes them (kubectl sends $patch: delete).
    trimmed = DEPLOYMENT.split("      - name: sidecar")[0].replace(', {name: B, value: "2"}', "")
    kubectl_ok(fake_kube, "apply", "-f", "-", input=trimmed)
    (app,) = fake_kube.get("deployments", "web")["spec"]["template"]["spec"]["containers"]
    assert app["env"] == [{"name": "A", "value": "1"}]


def test_server_sets_metadata_and_201_on_create(api):
    core = client.CoreV1Api(api)
    body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="x"), data={"k": "v"})
    created, code, _ = core.create_namespaced_config_map_with_http_info("default", body)
    assert code == 201
    meta = created.metadata
    assert meta.uid
    assert meta.resource_version.isdigit()
    assert meta.creation_timestamp
    assert meta.namespace == "default"
    listed = core.list_namespaced_config_map("default")
    assert listed.kind == "ConfigMapList"
    assert listed.api_version == "v1"
    assert int(listed.metadata.resource_version) >= int(meta.resource_version)


def test_get_with_label_selectors(fake_kube):
    for name, labels in [
        ("a", {"app": "x", "tier": "web"}),
        ("b", {"app": "x", "tier": "db"}),
        ("c", {"app": "y"}),
    ]:
        fake_kube.create(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels}}
        )

    def names(selector: str) -> list[str]:
        out = kubectl_ok(fake_kube, "get", "cm", "-l", selector, "-o", "jsonpath={.items[*].metadata.name}")
        return out.split()

    assert names("app=x") == ["a", "b"]
    assert names("app==x,tier!=db") == ["a"]
    assert names("tier in (web,db)") == ["a", "b"]
    assert names("tier notin (web)") == ["b", "c"]
    assert names("!tier") == ["c"]
    assert names("tier") == ["a", "b"]
    assert [o["metadata"]["name"] for o in fake_kube.list("cm", fields="metadata.name!=a", labels="app")] == [
        "b",
        "c",
    ]


def test_field_selector_through_client(api, fake_kube):
    fake_kube.create(
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p1"}, "spec": {"containers": []}}
    )
    fake_kube.create(
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p2"}, "spec": {"containers": []}}
    )
    core = client.CoreV1Api(api)
    pods = core.list_namespaced_pod("default", field_selector="metadata.name=p2").items
    assert [p.metadata.name for p in pods] == ["p2"]
    pods = core.list_pod_for_all_namespaces(
        field_selector="status.phase=Pending,metadata.namespace=default"
    ).items
    assert [p.metadata.name for p in pods] == ["p1", "p2"]


def test_kubectl_patch_merge_json_strategic(fake_kube):
    kubectl_ok(fake_kube, "apply", "-f", "-", input=DEPLOYMENT)
    kubectl_ok(fake_kube, "patch", "deploy", "web", "--type=merge", "-p", '{"spec":{"replicas":3}}')
    kubectl_ok(
        fake_kube,
        "patch",
        "deploy",
        "web",
        "--type=json",
        "-p",
        '[{"op":"add","path":"/metadata/labels/extra","value":"yes"}]',
    )
    kubectl_ok(
        fake_kube,
        "patch",
        "deploy",
        "web",
        "--type=strategic",
        "-p",
        '{"spec":{"template":{"spec":{"containers":[{"name":"app","env":[{"name":"B","value":"20"},{"name":"C","value":"3"}]}]}}}}',
    )
    dep = fake_kube.get("deployments", "web")
    assert dep["spec"]["replicas"] == 3
    assert dep["metadata"]["labels"]["extra"] == "yes"
    app, sidecar = dep["spec"]["template"]["spec"]["containers"]
    assert (app["image"], sidecar["name"]) == ("app:1", "sidecar")
    assert app["env"] == [
        {"name": "A", "value": "1"},
        {"name": "B", "value": "20"},
        {"name": "C", "value": "3"},
    ]
    assert app["ports"] == [{"containerPort": 8080}]


def test_strategic_merge_directives():
    from kubectl_iter8.testing.patching import strategic_merge

    live = {"containers": [{"name": "a", "image": "1"}, {"name": "b", "image": "2"}], "finalizers": ["x"]}
    patch = {
        "containers": [{"name": "a", "$patch": "delete"}, {"name": "c", "image": "3"}],
        "$setElementOrder/containers": [{"name": "c"}, {"name": "b"}],
        "finalizers": ["y"],
    }
    assert strategic_merge(live, patch) == {
        "containers": [{"name": "c", "image": "3"}, {"name": "b", "image": "2"}],
        "finalizers": ["x", "y"],
    }
    assert strategic_merge({"m": {"a": 1, "b": 2}}, {"m": {"$patch": "replace", "c": 3}}) == {"m": {"c": 3}}
    assert strategic_merge({"l": [1, 2, 3]}, {"$deleteFromPrimitiveList/l": [2]}) == {"l": [1, 3]}


def test_replace_with_stale_resource_version_is_conflict(fake_kube, api):
    fake_kube.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"v": "1"}})
    stale = fake_kube.get("configmaps", "c")
    fake_kube.patch("configmaps", "c", {"data": {"v": "2"}})
    proc = fake_kube.kubectl("replace", "-f", "-", input=json.dumps(stale))
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        'Error from server (Conflict): error when replacing "STDIN": Operation cannot be fulfilled on configmaps "c": '
        "the object has been modified; please apply your changes to the latest version and try again"
    )
    with pytest.raises(ApiException) as err:
        client.CoreV1Api(api).replace_namespaced_config_map("c", "default", stale)
    status = json.loads(err.value.body)
    assert err.value.status == 409
    assert status == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": status["message"],
        "reason": "Conflict",
        "code": 409,
        "details": {"name": "c", "kind": "configmaps"},
    }
    dep_stale = {**stale, "metadata": {**stale["metadata"], "resourceVersion": "1"}}
    with pytest.raises(ApiError, match=r"Operation cannot be fulfilled on configmaps \"c\""):
        fake_kube.update(dep_stale)


def test_status_bodies_for_404_409_422(api):
    core = client.CoreV1Api(api)
    with pytest.raises(ApiException) as err:
        core.read_namespaced_config_map("missing", "default")
    assert err.value.status == 404
    assert json.loads(err.value.body)["message"] == 'configmaps "missing" not found'
    body = {"metadata": {"name": "dup"}}
    core.create_namespaced_config_map("default", body)
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map("default", body)
    assert (err.value.status, json.loads(err.value.body)["reason"]) == (409, "AlreadyExists")
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map("default", {"metadata": {}})
    status = json.loads(err.value.body)
    assert (err.value.status, status["reason"]) == (422, "Invalid")
    assert status["details"]["causes"][0]["field"] == "metadata.name"
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map("nowhere", body)
    assert (err.value.status, json.loads(err.value.body)["message"]) == (
        404,
        'namespaces "nowhere" not found',
    )


def test_generate_name_and_dry_run(api, fake_kube):
    core = client.CoreV1Api(api)
    made = core.create_namespaced_config_map("default", {"metadata": {"generateName": "gen-"}})
    assert made.metadata.name.startswith("gen-")
    assert len(made.metadata.name) == 9
    dry = core.create_namespaced_config_map("default", {"metadata": {"name": "dry"}}, dry_run="All")
    assert dry.metadata.name == "dry"
    assert not fake_kube.exists("configmaps", "dry")
    out = kubectl_ok(fake_kube, "apply", "--dry-run=server", "-f", "-", input=CM)
    assert "created (server dry run)" in out
    assert not fake_kube.exists("configmaps", "demo")
    fake_kube.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "keep"}})
    core.delete_namespaced_config_map("keep", "default", dry_run="All")
    assert fake_kube.exists("configmaps", "keep")


def test_secret_string_data_becomes_base64_data(api, fake_kube):
    kubectl_ok(
        fake_kube,
        "apply",
        "-f",
        "-",
        input="apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {token: hunter2}\n",
    )
    secret = client.CoreV1Api(api).read_namespaced_secret("s", "default")
    assert secret.data == {"token": base64.b64encode(b"hunter2").decode()}
    assert secret.type == "Opaque"
    assert secret.string_data is None


def test_status_subresource(api, fake_kube):
    kubectl_ok(fake_kube, "apply", "-f", "-", input=DEPLOYMENT)
    fake_kube.controllers.deployments = "never"
    apps = client.AppsV1Api(api)
    dep = apps.read_namespaced_deployment("web", "default")
    # A write to the main resource cannot change status ...
    dep.status = client.V1DeploymentStatus(replicas=42)
    dep = apps.replace_namespaced_deployment("web", "default", dep)
    assert dep.status is None or dep.status.replicas != 42
    # ... and a status write changes only status (no generation bump, metadata ignored).
    generation = dep.metadata.generation
    patched = apps.patch_namespaced_deployment_status(
        "web", "default", {"status": {"replicas": 7}, "metadata": {"labels": {"sneaky": "yes"}}}
    )
    assert patched.status.replicas == 7
    assert patched.metadata.generation == generation
    assert "sneaky" not in patched.metadata.labels
    assert fake_kube.kubectl("get", "deploy", "web", "-o", "jsonpath={.status.replicas}").stdout == "7"


def test_finalizers_hold_deletion_until_removed(fake_kube):
    fake_kube.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "held", "finalizers": ["example.com/hold"]},
        }
    )
    kubectl_ok(fake_kube, "delete", "cm", "held", "--wait=false")
    obj = fake_kube.get("configmaps", "held")
    assert obj["metadata"]["deletionTimestamp"].endswith("Z")
    assert obj["metadata"]["deletionGracePeriodSeconds"] == 0
    kubectl_ok(
        fake_kube,
        "patch",
        "cm",
        "held",
        "--type=json",
        "-p",
        '[{"op":"remove","path":"/metadata/finalizers"}]',
    )
    assert not fake_kube.exists("configmaps", "held")


def test_owner_reference_garbage_collection(fake_kube):
    owner = fake_kube.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "owner"}})
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner["metadata"]["uid"]}
    child = fake_kube.create(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "child", "ownerReferences": [ref]}}
    )
    child_ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "child", "uid": child["metadata"]["uid"]}
    fake_kube.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "grandchild", "ownerReferences": [child_ref]},
        }
    )
    kubectl_ok(fake_kube, "delete", "cm", "owner")
    assert not fake_kube.exists("configmaps", "child")
    assert not fake_kube.exists("secrets", "grandchild")
    assert [(a.resource, a.name, a.source) for a in fake_kube.audit if a.verb == "delete"] == [
        ("configmaps", "owner", "api"),
        ("configmaps", "child", "gc"),
        ("secrets", "grandchild", "gc"),
    ]


def test_orphan_propagation_keeps_dependents(fake_kube):
    owner = fake_kube.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "owner"}})
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner["metadata"]["uid"]}
    fake_kube.create(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kid", "ownerReferences": [ref]}}
    )
    kubectl_ok(fake_kube, "delete", "cm", "owner", "--cascade=orphan")
    assert "ownerReferences" not in fake_kube.get("configmaps", "kid")["metadata"]


def test_namespace_lifecycle(fake_kube):
    kubectl_ok(
        fake_kube, "apply", "-f", "-", input="apiVersion: v1\nkind: Namespace\nmetadata: {name: team}\n"
    )
    kubectl_ok(fake_kube, "apply", "-n", "team", "-f", "-", input=CM)
    assert fake_kube.get("namespaces", "team")["status"]["phase"] == "Active"
    kubectl_ok(fake_kube, "delete", "ns", "team")
    assert not fake_kube.exists("namespaces", "team")
    assert fake_kube.list("configmaps", "team") == []


def test_leases_events_rbac_are_ordinary_resources(api, fake_kube):
    coord = client.CoordinationV1Api(api)
    lease = coord.create_namespaced_lease(
        "default",
        {"metadata": {"name": "leader"}, "spec": {"holderIdentity": "me", "leaseDurationSeconds": 15}},
    )
    lease.spec.holder_identity = "you"
    assert coord.replace_namespaced_lease("leader", "default", lease).spec.holder_identity == "you"
    client.CoreV1Api(api).create_namespaced_event(
        "default",
        {
            "metadata": {"name": "e1"},
            "involvedObject": {"kind": "ConfigMap", "name": "x"},
            "reason": "Tested",
        },
    )
    client.EventsV1Api(api).create_namespaced_event(
        "default",
        {"metadata": {"name": "e2"}, "eventTime": "2026-01-01T00:00:00.000000Z", "reason": "Tested"},
    )
    rbac = client.RbacAuthorizationV1Api(api)
    rbac.create_cluster_role(
        {"metadata": {"name": "reader"}, "rules": [{"verbs": ["get"], "resources": ["pods"]}]}
    )
    assert [r.metadata.name for r in rbac.list_cluster_role().items] == ["reader"]
    out = kubectl_ok(fake_kube, "get", "events", "-o", "name")
    assert out.split() == ["event/e1"]
    assert fake_kube.get("events.events.k8s.io", "e2")["reason"] == "Tested"


def test_kubectl_create_generators_send_protobuf_the_fake_decodes(fake_kube):
    for args in (
        ("create", "namespace", "team"),
        ("create", "configmap", "cfg", "--from-literal=a=1", "-n", "team"),
        ("create", "secret", "generic", "sec", "--from-literal=k=v", "-n", "team"),
        ("create", "serviceaccount", "bot", "-n", "team"),
        ("create", "role", "reader", "--verb=get,list", "--resource=pods,deployments.apps", "-n", "team"),
        ("create", "rolebinding", "rb", "--role=reader", "--serviceaccount=team:bot", "-n", "team"),
        ("create", "clusterrole", "cr", "--verb=watch", "--resource=leases.coordination.k8s.io"),
        ("create", "clusterrolebinding", "crb", "--clusterrole=cr", "--group=devs"),
    ):
        kubectl_ok(fake_kube, *args)
    assert fake_kube.get("configmaps", "cfg", "team")["data"] == {"a": "1"}
    assert fake_kube.get("secrets", "sec", "team")["data"] == {"k": base64.b64encode(b"v").decode()}
    rules = fake_kube.get("roles", "reader", "team")["rules"]
    assert rules == [
        {"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]},
        {"verbs": ["get", "list"], "apiGroups": ["apps"], "resources": ["deployments"]},
    ]
    binding = fake_kube.get("rolebindings", "rb", "team")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "bot", "namespace": "team"}]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"}
    assert fake_kube.get("clusterrolebindings", "crb")["subjects"][0]["name"] == "devs"
    # Kinds without a schema in the fake are refused clearly.
    proc = fake_kube.kubectl("create", "deployment", "d", "--image=x")
    assert proc.returncode == 1
    assert "cannot decode protobuf Deployment" in proc.stderr


def test_kubectl_scale_uses_the_scale_subresource(fake_kube, api):
    kubectl_ok(fake_kube, "apply", "-f", "-", input=DEPLOYMENT)
    assert (
        kubectl_ok(fake_kube, "scale", "deploy", "web", "--replicas=5").strip()
        == "deployment.apps/web scaled"
    )
    assert fake_kube.get("deployments", "web")["spec"]["replicas"] == 5
    scale = client.AppsV1Api(api).read_namespaced_deployment_scale("web", "default")
    assert (scale.spec.replicas, scale.status.selector) == (5, "app=web")
    proc = fake_kube.kubectl("scale", "deploy", "web", "--replicas=1", "--resource-version=1")
    assert "Expected resource version to be 1" in proc.stderr


def test_auth_can_i_follows_forbid(fake_kube):
    assert fake_kube.kubectl("auth", "can-i", "delete", "secrets").stdout.strip() == "yes"
    fake_kube.forbid("delete", "secrets")
    proc = fake_kube.kubectl("auth", "can-i", "delete", "secrets")
    assert (proc.returncode, proc.stdout.strip()) == (1, "no")
    assert fake_kube.kubectl("auth", "can-i", "get", "secrets").stdout.strip() == "yes"


def test_list_pagination_and_delete_collection(api, fake_kube):
    core = client.CoreV1Api(api)
    for n in range(5):
        fake_kube.create(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"p{n}", "labels": {"n": str(n)}}}
        )
    first = core.list_namespaced_config_map("default", limit=2)
    assert [i.metadata.name for i in first.items] == ["p0", "p1"]
    assert first.metadata.remaining_item_count == 3
    rest = core.list_namespaced_config_map("default", limit=10, _continue=first.metadata._continue)
    assert [i.metadata.name for i in rest.items] == ["p2", "p3", "p4"]
    assert rest.metadata._continue is None
    core.delete_collection_namespaced_config_map("default", label_selector="n in (1,3)")
    assert [o["metadata"]["name"] for o in fake_kube.list("configmaps")] == ["p0", "p2", "p4"]


def test_kubectl_apply_of_a_list_validates_without_schemas(fake_kube):
    manifest = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "l1"}},
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "l2"}, "stringData": {"a": "b"}},
        ],
    }
    out = kubectl_ok(fake_kube, "apply", "-f", "-", input=json.dumps(manifest))
    assert out.split() == ["configmap/l1", "created", "secret/l2", "created"]


def test_kubectl_get_prints_server_side_columns(fake_kube):
    kubectl_ok(fake_kube, "apply", "-f", "-", input=DEPLOYMENT)
    rows = [line.split() for line in kubectl_ok(fake_kube, "get", "deploy", "-o", "wide").splitlines()]
    assert rows[0] == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"]
    assert rows[1][:4] == ["web", "2/2", "2", "2"]
    assert rows[1][5:] == ["app,sidecar", "app:1,side:1", "app=web"]
    kubectl_ok(fake_kube, "apply", "-f", "-", input=CM)
    rows = [line.split() for line in kubectl_ok(fake_kube, "get", "cm", "-A", "--show-labels").splitlines()]
    assert rows[0] == ["NAMESPACE", "NAME", "DATA", "AGE", "LABELS"]
    assert rows[1][:3] == ["default", "demo", "2"]
    assert rows[1][4] == "app=demo,tier=web"
