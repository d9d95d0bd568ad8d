"""The fake's discovery, version and OpenAPI answers, as kubectl and the kubernetes client read them."""

from __future__ import annotations

import json
import os
import urllib.request

import pytest
from kubernetes import client, config

from kubectl_iter8.testing import KUBE_VERSION, FakeKube


def fetch(kube: FakeKube, path: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(kube.url + path, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


@pytest.mark.parametrize("path", ["/version", "/version/", "/api", "/api/", "/apis", "/apis/", "/api/v1/"])
def test_discovery_paths_with_and_without_trailing_slash(fake_kube, path):
    code, body = fetch(fake_kube, path)
    assert code == 200
    assert body.get("kind", "Version") in ("APIVersions", "APIGroupList", "APIResourceList", "Version")


def test_version_is_1_32_and_kubectl_picks_1_32(fake_kube):
    assert fetch(fake_kube, "/version")[1]["minor"] == "32"
    out = fake_kube.kubectl("version", "-o", "json", check=True).stdout
    versions = json.loads(out)
    assert versions["clientVersion"]["gitVersion"].startswith("v1.32.")
    assert versions["serverVersion"]["gitVersion"] == KUBE_VERSION["gitVersion"]


def test_group_and_resource_documents(fake_kube):
    groups = {g["name"]: g for g in fetch(fake_kube, "/apis")[1]["groups"]}
    assert {"apps", "batch", "coordination.k8s.io", "events.k8s.io", "rbac.authorization.k8s.io"} <= set(
        groups
    )
    assert groups["apps"]["preferredVersion"]["groupVersion"] == "apps/v1"
    core = {r["name"]: r for r in fetch(fake_kube, "/api/v1")[1]["resources"]}
    assert core["configmaps"]["shortNames"] == ["cm"]
    assert {"pods/log", "pods/status", "namespaces/status"} <= set(core)
    assert not core["namespaces"]["namespaced"]
    assert fetch(fake_kube, "/apis/nope.example.com/v1")[0] == 404


def test_openapi_v3_stub_declares_field_validation(fake_kube):
    index = fetch(fake_kube, "/openapi/v3")[1]["paths"]
    url = index["apis/apps/v1"]["serverRelativeURL"]
    doc = fetch(fake_kube, url)[1]
    patch = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]
    assert {"name": "fieldValidation", "in": "query", "schema": {"type": "string"}} in patch["parameters"]


def test_kubectl_api_resources_lists_builtins(fake_kube):
    out = fake_kube.kubectl("api-resources", "-o", "name", check=True).stdout.split()
    assert {
        "configmaps",
        "deployments.apps",
        "leases.coordination.k8s.io",
        "roles.rbac.authorization.k8s.io",
    } <= set(out)


def test_fixture_points_kubeconfig_at_the_fake(fake_kube):
    assert os.environ["KUBECONFIG"] == str(fake_kube.kubeconfig)
    cfg = client.Configuration()
    # The kubernetes package read $KUBECONFIG at import time; the fixture patches its default too.
    config.load_kube_config(client_configuration=cfg)
    with client.ApiClient(cfg) as api:
        assert client.VersionApi(api).get_code().minor == "32"
        names = [g.name for g in client.ApisApi(api).get_api_versions().groups]
        assert "apps" in names
        namespaces = [n.metadata.name for n in client.CoreV1Api(api).list_namespace().items]
        assert namespaces == ["default", "kube-node-lease", "kube-public", "kube-system"]


def test_context_manager_and_restart_free_port():
    with FakeKube() as kube:
        assert kube.url.startswith("http://127.0.0.1:")
        assert kube.kubeconfig.exists()
        text = kube.kubeconfig.read_text()
        assert "current-context: fake" in text
        assert "namespace: default" in text
        directory = kube.directory
    assert not directory.exists()
