"""The ``ready`` task's chart shorthand, ``ready.<type>=NAME``, with every short name Iter8's charts knew
(``ksvc``, ``vs``, ``cm``, ...), the values' own ``resourceTypes`` in Iter8's form, and any
``GROUP/VERSION/RESOURCE``: through ``launch --local`` against the fake API server, and the expansion
itself (pure) against what Iter8's v1.x chart (``charts/iter8/templates/_task-ready.tpl``) wrote."""

from __future__ import annotations

from typing import Any

import pytest
from iter8_release_chart import render_chart
from kubectl_iter8.builtin_tasks.ready import ReadyTask

from kubectl_iter8.errors import UsageError
from kubectl_iter8.testing import FakeKube


def expand(values: dict[str, Any]) -> list[dict[str, Any]]:
    return [entry["with"] for entry in ReadyTask.from_values(values)]


@pytest.mark.parametrize(
    ("key", "gvr", "conditions"),
    [
        ("ksvc", ("serving.knative.dev", "v1", "services"), ["Ready"]),
        ("vs", ("networking.istio.io", "v1beta1", "virtualservices"), None),
        ("cm", ("", "v1", "configmaps"), None),
        ("svc", ("", "v1", "services"), None),
        ("service", ("", "v1", "services"), None),
        ("deploy", ("apps", "v1", "deployments"), ["Available"]),
        ("isvc", ("serving.kserve.io", "v1beta1", "inferenceservices"), ["Ready"]),
        ("chaosengine", ("litmuschaos.io", "v1alpha1", "chaosengines"), None),
        ("httproute", ("gateway.networking.k8s.io", "v1", "httproutes"), None),
        ("serving.knative.dev/v1/services", ("serving.knative.dev", "v1", "services"), None),
        ("v1/configmaps", ("", "v1", "configmaps"), None),
    ],
)
def test_each_short_name_and_any_gvr_names_its_resource(
    key: str, gvr: tuple[str, str, str], conditions: list[str] | None
) -> None:
    [with_] = expand({key: "x", "timeout": "5s"})
    assert (with_["group"], with_["version"], with_["resource"]) == gvr
    assert with_.get("conditions") == conditions
    assert (with_["name"], with_["timeout"]) == ("x", "5s")


def test_entries_follow_iter8s_sorted_order_and_share_namespace_and_timeout() -> None:
    entries = expand({"svc": "a", "deploy": "b", "namespace": "shop", "timeout": "9s"})
    assert [(e["resource"], e["name"], e["namespace"], e["timeout"]) for e in entries] == [
        ("deployments", "b", "shop", "9s"),
        ("services", "a", "shop", "9s"),
    ]


def test_the_values_resource_types_in_iter8s_form_define_and_override_short_names() -> None:
    types = {
        "ksvc": {"Group": "serving.knative.dev", "Version": "v1", "Resource": "services", "conditions": ["Ready"]},
        "deploy": {"Group": "apps", "Version": "v1", "Resource": "deployments"},
        "rollout": {"group": "argoproj.io", "version": "v1alpha1", "resource": "rollouts", "conditions": [{"name": "Healthy"}]},
    }  # fmt: skip
    entries = expand({"resourceTypes": types, "rollout": "r", "deploy": "d"})
    assert entries == [
        {"name": "d", "group": "apps", "version": "v1", "resource": "deployments"},
        {"name": "r", "group": "argoproj.io", "version": "v1alpha1", "resource": "rollouts", "conditions": ["Healthy"]},
    ]  # fmt: skip


def test_chart_wide_resource_types_reach_the_ready_task(plugin_host) -> None:
    """Iter8's chart read ``.Values.resourceTypes`` at the top level of the chart values."""
    from kubectl_iter8.values import experiment_from_values

    types = {"rollout": {"Group": "argoproj.io", "Version": "v1alpha1", "Resource": "rollouts"}}
    values = {"tasks": ["ready"], "ready": {"rollout": "r"}, "resourceTypes": types}
    experiment = experiment_from_values(values, plugin_host().tasks)
    assert experiment.spec == [
        {
            "task": "ready",
            "with": {"name": "r", "group": "argoproj.io", "version": "v1alpha1", "resource": "rollouts"},
        }
    ]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"kvsc": "x"}, "ready.kvsc: unknown resource type (known: chaosengine, cm, deploy,"),
        ({"a/b/c/d": "x"}, "ready.a/b/c/d: expected GROUP/VERSION/RESOURCE"),
        ({"deploy": "x", "name": "y"}, "ready.name: give the object by type"),
        (
            {"resourceTypes": {"k": {"Group": "g"}}, "k": "x"},
            "resourceTypes.k: Version and Resource are required",
        ),
        ({"resourceTypes": {"k": {"Verison": "v1"}}, "k": "x"}, "resourceTypes.k: unknown keys verison"),
    ],
)
def test_bad_shorthand_is_refused_naming_the_key(values: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError) as caught:
        ReadyTask.from_values(values)
    assert str(caught.value).startswith(message)


def test_the_task_inputs_spelling_is_one_entry_as_before() -> None:
    values = {"name": "web", "group": "apps", "version": "v1", "resource": "deployments", "timeout": "3s"}
    assert expand(values) == [values]


def configmap(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {}}


def test_ready_cm_and_a_gvr_key_wait_for_existing_objects(cli, fake_kube: FakeKube) -> None:
    fake_kube.create(configmap("app-1-weight-config"))
    outcome = cli(
        "launch", "--local",
        "--set", "tasks={ready}",
        "--set", "ready.cm=app-1-weight-config",
        "--set", "ready.v1/configmaps=app-1-weight-config",
        "--set", "ready.timeout=5s",
    )  # fmt: skip
    assert outcome.code == 0, outcome.err
    assert "experiment completed: 2 of 2 tasks" in outcome.out


def test_ready_ksvc_is_the_knative_service_not_an_unknown_field(cli, fake_kube: FakeKube) -> None:
    """Iter8's ``ready.ksvc`` failed here with "unknown field"; now it waits for the Knative Service
    (which this cluster does not serve: it is not ready, and the failure names the right GVR)."""
    outcome = cli(
        "launch", "--local", "--set", "tasks={ready}", "--set", "ready.ksvc=hello", "--set", "ready.timeout=1s"
    )  # fmt: skip
    assert outcome.code != 0
    assert "unknown field" not in outcome.err
    assert 'service.serving.knative.dev "hello" in namespace "default" not ready after 1s' in outcome.err


def test_an_unknown_short_name_is_a_one_line_usage_error(cli, fake_kube: FakeKube) -> None:
    outcome = cli("launch", "--local", "--set", "tasks={ready}", "--set", "ready.kvsc=hello")
    assert outcome.code == 2
    [line] = outcome.err.strip().splitlines()
    assert "ready.kvsc: unknown resource type" in line
    assert "Traceback" not in outcome.err


def _normal(with_: dict[str, Any]) -> tuple[Any, ...]:
    conditions = with_.get("conditions") or ([with_["condition"]] if with_.get("condition") else [])
    return (with_.get("group", ""), with_["version"], with_["resource"], with_["name"], tuple(conditions))


def test_iter8s_experiment_chart_and_the_shorthand_expand_alike() -> None:
    """Iter8's experiment chart (v0.15.0: service, deploy, ksvc, isvc, chaosengine) and the shorthand
    name the same objects with the same conditions (the chart adds the release's namespace, and
    writes them in its fixed order; Iter8 v1.x's chart sorted them, as here)."""
    ready = {"service": "s", "deploy": "d", "ksvc": "k", "isvc": "i", "chaosengine": "c", "timeout": "7s"}
    [experiment] = render_chart("iter8", '{{ include "experiment" . }}', {"tasks": ["ready"], "ready": ready})
    from_chart = [entry["with"] for entry in experiment["spec"]]
    assert all(w["timeout"] == "7s" and w["namespace"] == "default" for w in from_chart)
    assert sorted(map(_normal, expand(ready))) == sorted(map(_normal, from_chart))
