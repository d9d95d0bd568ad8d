"""The fake's pure building blocks: selectors, patches, version order, JSONPath, durations, protobuf."""

from __future__ import annotations

import pytest

from kubectl_iter8.testing import ApiError
from kubectl_iter8.testing.discovery import Registry, version_priority
from kubectl_iter8.testing.patching import apply_patch, json_patch, merge_patch
from kubectl_iter8.testing.protobuf import decode
from kubectl_iter8.testing.selectors import field_selector, label_selector, match_labels
from kubectl_iter8.testing.tables import human_duration, jsonpath

OBJ = {"metadata": {"name": "a", "labels": {"app": "web", "tier": "db"}}, "spec": {"on": True, "n": 3}}


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        ("", True),
        ("app=web", True),
        ("app==web,tier=db", True),
        ("app!=web", False),
        ("tier in (web, db)", True),
        ("tier notin (db)", False),
        ("missing notin (x)", True),
        ("app", True),
        ("!app", False),
        ("!missing,app in (web),tier", True),
    ],
)
def test_label_selectors(selector, matches):
    assert label_selector(selector)(OBJ) is matches


@pytest.mark.parametrize(
    ("selector", "matches"),
    [("metadata.name=a", True), ("metadata.name!=a", False), ("spec.on=true", True), ("spec.n==3", True)],
)
def test_field_selectors(selector, matches):
    assert field_selector(selector)(OBJ) is matches


def test_bad_selectors_are_400():
    with pytest.raises(ApiError) as err:
        label_selector("a in x")
    assert err.value.code == 400
    with pytest.raises(ApiError):
        field_selector("metadata.name")


def test_match_labels_renders_label_selector_objects():
    selector = {
        "matchLabels": {"app": "web"},
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["a", "b"]},
            {"key": "x", "operator": "DoesNotExist"},
        ],
    }
    assert match_labels(selector) == "app=web,tier in (a,b),!x"
    assert label_selector(match_labels(selector))({"metadata": {"labels": {"app": "web", "tier": "b"}}})


def test_merge_patch_is_rfc_7386_and_leaves_its_input_alone():
    live = {"a": {"b": 1, "c": 2}, "l": [1, 2]}
    assert merge_patch(live, {"a": {"b": None, "d": 4}, "l": [3]}) == {"a": {"c": 2, "d": 4}, "l": [3]}
    assert live == {"a": {"b": 1, "c": 2}, "l": [1, 2]}


def test_json_patch_failures_are_422():
    assert json_patch({"a": 1}, [{"op": "replace", "path": "/a", "value": 2}]) == {"a": 2}
    with pytest.raises(ApiError) as err:
        json_patch({"a": 1}, [{"op": "test", "path": "/a", "value": 2}])
    assert err.value.code == 422
    with pytest.raises(ApiError) as err:
        json_patch({"a": 1}, {"op": "add"})
    assert err.value.code == 400


def test_apply_removes_only_what_the_manager_stopped_applying():
    live = {"metadata": {"labels": {"mine": "1", "theirs": "2"}}, "spec": {"x": 1, "y": 2}}
    previous = {"metadata": {"labels": {"mine": "1"}}, "spec": {"x": 1}}
    applied = {"metadata": {"labels": {}}, "spec": {"x": 5}}
    assert apply_patch(live, applied, previous, builtin=False) == {
        "metadata": {"labels": {"theirs": "2"}},
        "spec": {"x": 5, "y": 2},
    }


def test_version_priority_orders_like_kubernetes():
    versions = ["v1alpha1", "v1beta1", "v2", "v1", "v1beta2", "foo"]
    assert sorted(versions, key=version_priority) == ["v2", "v1", "v1beta2", "v1beta1", "v1alpha1", "foo"]


def test_registry_resolves_names_kinds_and_short_names():
    registry = Registry()
    for name in ("deployments", "deploy", "Deployment", "deployment", "deployments.apps", "Deployment.apps"):
        assert registry.resolve(name).key == "deployments.apps"
    assert registry.resolve("events").group == ""
    assert registry.resolve("events.events.k8s.io").group == "events.k8s.io"
    with pytest.raises(KeyError):
        registry.resolve("virtualservices")


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (".spec.hosts", ["a", "b"]),
        (".spec.hosts[1]", "b"),
        ('.status.conditions[?(@.type=="Ready")].status', "True"),
        (".status.conditions[?(@.type=='Other')].status", "False"),
        (".status.missing", None),
        ("{.spec.hosts[0]}", "a"),
    ],
)
def test_jsonpath_subset(path, value):
    obj = {
        "spec": {"hosts": ["a", "b"]},
        "status": {"conditions": [{"type": "Other", "status": "False"}, {"type": "Ready", "status": "True"}]},
    }
    assert jsonpath(obj, path) == value


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (5, "5s"),
        (119, "119s"),
        (150, "2m30s"),
        (600, "10m"),
        (3 * 3600 + 120, "3h2m"),
        (30 * 3600, "30h"),
        (3 * 86400 + 3600, "3d1h"),
        (100 * 86400, "100d"),
        (3 * 365 * 86400, "3y"),
    ],
)
def test_human_duration_matches_apimachinery(seconds, text):
    assert human_duration(seconds) == text


def test_protobuf_errors():
    with pytest.raises(ApiError) as err:
        decode(b"not protobuf")
    assert err.value.code == 415
    with pytest.raises(ApiError) as err:
        decode(b"k8s\x00\x0a\x05")  # truncated
    assert err.value.code == 400
