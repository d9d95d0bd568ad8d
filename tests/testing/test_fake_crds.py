"""The real Istio, Gateway API and KServe CRDs in the fake, and custom resources of those kinds."""

from __future__ import annotations

import json

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.rest import ApiException
from tiers import CRDS, crds_dir

VIRTUAL_SERVICE = """apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
      weight: 100
    - destination: {host: reviews, subset: v2}
      weight: 0
"""

HTTP_ROUTE = """apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: route}
spec:
  parentRefs: [{name: gw}]
  rules:
  - backendRefs:
    - {name: v1, port: 80, weight: 90}
    - {name: v2, port: 80, weight: 10}
"""

ISVC = """apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: sklearn}
spec:
  predictor:
    model:
      modelFormat: {name: sklearn}
      storageUri: gs://bucket/model
"""


@pytest.fixture
def kube(fake_kube):
    crds_dir()
    return fake_kube


@pytest.fixture
def custom(kube):
    cfg = client.Configuration()
    config.load_kube_config(config_file=str(kube.kubeconfig), client_configuration=cfg)
    with client.ApiClient(cfg) as api:
        yield client.CustomObjectsApi(api)


def test_load_real_crds_registers_every_served_version(kube):
    names = kube.load_crds(
        CRDS / "istio-crds.yaml",
        [CRDS / "gateway-api-v1.6.1-httproutes.yaml", CRDS / "gateway-api-v1.6.1-gateways.yaml"],
        CRDS / "kserve-inferenceservices.yaml",
    )
    assert "virtualservices.networking.istio.io" in names
    assert "inferenceservices.serving.kserve.io" in names
    resources = kube.kubectl("api-resources", "--api-group=networking.istio.io", "-o", "wide").stdout
    assert "virtualservices" in resources
    assert "vs" in resources
    for version in ("v1", "v1beta1", "v1alpha3"):
        listing = kube.kubectl("get", "--raw", f"/apis/networking.istio.io/{version}").stdout
        assert "virtualservices" in listing
    group = json.loads(kube.kubectl("get", "--raw", "/apis/networking.istio.io").stdout)
    assert group["preferredVersion"]["version"] == "v1"
    crd = kube.get("customresourcedefinitions", "virtualservices.networking.istio.io")
    established = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
    assert established == {"NamesAccepted": "True", "Established": "True"}


def test_virtualservice_httproute_inferenceservice_through_kubectl(kube):
    kube.load_crds(CRDS / "istio-crds.yaml", CRDS / "gateway-api-v1.6.1-httproutes.yaml")
    kube.load_crds(CRDS / "kserve-inferenceservices.yaml")
    kube.controllers.inferenceservices = "never"
    for manifest in (VIRTUAL_SERVICE, HTTP_ROUTE, ISVC):
        proc = kube.kubectl("apply", "-f", "-", input=manifest)
        assert proc.returncode == 0, proc.stderr
    assert kube.kubectl("get", "vs", "-o", "name").stdout.split() == [
        "virtualservice.networking.istio.io/reviews"
    ]
    assert kube.kubectl("get", "httproutes", "-o", "name").stdout.split() == [
        "httproute.gateway.networking.k8s.io/route"
    ]
    assert kube.kubectl("get", "isvc", "-o", "name").stdout.split() == [
        "inferenceservice.serving.kserve.io/sklearn"
    ]
    # kubectl apply uses JSON merge patches for custom resources: lists are replaced.
    proc = kube.kubectl(
        "apply",
        "-f",
        "-",
        input=VIRTUAL_SERVICE.replace("weight: 100", "weight: 50").replace("weight: 0", "weight: 50"),
    )
    assert proc.returncode == 0, proc.stderr
    vs = kube.get("vs", "reviews")
    assert [r["weight"] for r in vs["spec"]["http"][0]["route"]] == [50, 50]
    assert vs["metadata"]["generation"] == 2
    proc = kube.kubectl(
        "apply", "--server-side", "-f", "-", input=HTTP_ROUTE.replace("weight: 90", "weight: 0")
    )
    assert proc.returncode == 0, proc.stderr
    assert kube.get("httproutes", "route")["spec"]["rules"][0]["backendRefs"][0]["weight"] == 0
    # Strategic merge is refused for custom resources, as by kube-apiserver.
    proc = kube.kubectl("patch", "vs", "reviews", "--type=strategic", "-p", '{"spec":{"hosts":["x"]}}')
    assert proc.returncode != 0
    assert "application/strategic-merge-patch+json is not supported" in proc.stderr


def test_custom_objects_api_versions_status_and_patch(kube, custom):
    kube.load_crds(CRDS / "istio-crds.yaml")
    body = yaml.safe_load(VIRTUAL_SERVICE)
    created = custom.create_namespaced_custom_object(
        "networking.istio.io", "v1", "default", "virtualservices", body
    )
    assert created["metadata"]["uid"]
    assert created["metadata"]["generation"] == 1
    # The same object is served in every version, with apiVersion rewritten.
    old = custom.get_namespaced_custom_object(
        "networking.istio.io", "v1alpha3", "default", "virtualservices", "reviews"
    )
    assert old["apiVersion"] == "networking.istio.io/v1alpha3"
    patched = custom.patch_namespaced_custom_object(
        "networking.istio.io", "v1", "default", "virtualservices", "reviews", {"spec": {"gateways": ["mesh"]}}
    )
    assert patched["spec"]["gateways"] == ["mesh"]
    assert patched["metadata"]["generation"] == 2
    status = custom.patch_namespaced_custom_object_status(
        "networking.istio.io",
        "v1",
        "default",
        "virtualservices",
        "reviews",
        {"status": {"observedGeneration": 2}},
    )
    assert status["status"] == {"observedGeneration": 2}
    assert status["metadata"]["generation"] == 2
    # Custom resources, unlike most built-ins, refuse an unconditional update.
    unconditional = {
        **patched,
        "metadata": {k: v for k, v in patched["metadata"].items() if k != "resourceVersion"},
    }
    with pytest.raises(ApiException) as err:
        custom.replace_namespaced_custom_object(
            "networking.istio.io", "v1", "default", "virtualservices", "reviews", unconditional
        )
    assert err.value.status == 422
    assert "must be specified for an update" in json.loads(err.value.body)["message"]
    patched["status"] = {"observedGeneration": 99}
    patched["metadata"]["resourceVersion"] = status["metadata"]["resourceVersion"]
    replaced = custom.replace_namespaced_custom_object(
        "networking.istio.io", "v1", "default", "virtualservices", "reviews", patched
    )
    assert replaced["status"] == {"observedGeneration": 2}


def test_crd_applied_with_kubectl_is_served_and_deleting_it_removes_its_objects(kube):
    proc = kube.kubectl("apply", "-f", str(CRDS / "kserve-servingruntimes.yaml"))
    assert proc.returncode == 0, proc.stderr
    runtime = "apiVersion: serving.kserve.io/v1alpha1\nkind: ServingRuntime\nmetadata: {name: rt}\nspec: {containers: []}\n"
    proc = kube.kubectl("apply", "-f", "-", input=runtime)
    assert proc.returncode == 0, proc.stderr
    assert (
        kube.kubectl("get", "servingruntimes", "-o", "name").stdout.strip()
        == "servingruntime.serving.kserve.io/rt"
    )
    proc = kube.kubectl("delete", "crd", "servingruntimes.serving.kserve.io")
    assert proc.returncode == 0, proc.stderr
    assert kube.kubectl("get", "--raw", "/apis/serving.kserve.io/v1alpha1").returncode != 0
    with pytest.raises(KeyError):
        kube.resource("servingruntimes")


def test_invalid_crd_is_rejected(kube, custom):
    bad = yaml.safe_load((CRDS / "kserve-servingruntimes.yaml").read_text())
    bad["metadata"]["name"] = "wrong.example.com"
    proc = kube.kubectl("apply", "-f", "-", input=yaml.safe_dump(bad))
    assert proc.returncode == 1
    assert "is invalid" in proc.stderr
    assert "spec.names.plural" in proc.stderr
    with pytest.raises(ApiException) as err:
        custom.list_namespaced_custom_object("serving.kserve.io", "v1alpha1", "default", "servingruntimes")
    assert err.value.status == 404


def test_server_side_apply_through_the_client(kube, custom):
    kube.load_crds(CRDS / "gateway-api-v1.6.1-httproutes.yaml")
    body = yaml.safe_load(HTTP_ROUTE)
    body["metadata"]["labels"] = {"old": "yes"}
    args = ("gateway.networking.k8s.io", "v1", "default", "httproutes", "route")
    apply = {"field_manager": "iter8", "force": True, "_content_type": "application/apply-patch+yaml"}
    # A creating apply answers 201, as kube-apiserver does; this client only decodes 200 for it.
    assert custom.patch_namespaced_custom_object(*args, body, **apply) is None
    body["metadata"]["labels"] = {"new": "yes"}
    body["spec"]["rules"][0]["backendRefs"][1]["weight"] = 60
    applied = custom.patch_namespaced_custom_object(*args, body, **apply)
    assert applied["metadata"]["labels"] == {"new": "yes"}
    assert [b["weight"] for b in applied["spec"]["rules"][0]["backendRefs"]] == [90, 60]
    assert [a.verb for a in kube.audit if a.resource.startswith("httproutes")] == ["create", "patch"]


def test_kubectl_get_shows_the_crd_printer_columns(kube):
    kube.load_crds(CRDS / "istio-crds.yaml", CRDS / "kserve-inferenceservices.yaml")
    for manifest in (VIRTUAL_SERVICE, ISVC):
        assert kube.kubectl("apply", "-f", "-", input=manifest).returncode == 0
    rows = [line.split() for line in kube.kubectl("get", "vs").stdout.splitlines()]
    assert rows[0] == ["NAME", "GATEWAYS", "HOSTS", "AGE"]
    assert rows[1][:2] == ["reviews", '["reviews"]']  # no gateways: an empty cell
    header, row = (line.split() for line in kube.kubectl("get", "isvc").stdout.splitlines())
    assert header[:3] == ["NAME", "URL", "READY"]
    assert row[:3] == ["sklearn", "http://sklearn.default.example.com", "True"]
