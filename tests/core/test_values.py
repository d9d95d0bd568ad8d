"""Iter8's chart-values shorthand: --set parsing, merging, and the spec it builds."""

from __future__ import annotations

import pytest

from kubectl_iter8.errors import InvalidExperimentError, UsageError
from kubectl_iter8.host import Iter8Hooks
from kubectl_iter8.values import deep_merge, experiment_from_values, parse_set, set_path


def apply(*sets: str) -> dict:
    doc: dict = {}
    for expression in sets:
        for path, value in parse_set(expression):
            set_path(doc, path, value, expression)
    return doc


def test_set_builds_nested_values_like_helm() -> None:
    doc = apply(
        "tasks={http,assess}",
        "http.url=http://127.0.0.1:8080/get?a=b",
        "assess.SLOs.upper.http/latency-mean=50",
        r"assess.SLOs.upper.http/latency-p99\.9=80,http.qps=20",
        "spec[1].with.x=y",
        "empty={}",
        "gone=null",
    )
    assert doc == {
        "tasks": ["http", "assess"],
        "http": {"url": "http://127.0.0.1:8080/get?a=b", "qps": "20"},
        "assess": {"SLOs": {"upper": {"http/latency-mean": "50", "http/latency-p99.9": "80"}}},
        "spec": [None, {"with": {"x": "y"}}],
        "empty": [],
        "gone": None,
    }


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("novalue", "expected KEY=VALUE"),
        ("a..b=1", "empty key"),
        ("a[x]=1", "bad index"),
        ("=1", "empty key"),
    ],
)
def test_bad_set_syntax_is_a_usage_error(expression: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        apply(expression)


def test_set_into_a_scalar_is_refused() -> None:
    with pytest.raises(UsageError, match="'a.b=y': a is not a mapping"):
        apply("a[0]=x", "a.b=y")
    with pytest.raises(UsageError, match="'a\\[0\\]=y': a is not a list"):
        apply("a.b=x", "a[0]=y")


def test_deep_merge_merges_mappings_and_replaces_the_rest() -> None:
    base = {"a": {"b": 1, "c": [1]}, "d": 1}
    assert deep_merge(base, {"a": {"c": [2], "e": 3}}) == {"a": {"b": 1, "c": [2], "e": 3}, "d": 1}
    assert base == {"a": {"b": 1, "c": [1]}, "d": 1}


def test_values_build_the_same_spec_as_the_iter8_chart() -> None:
    tasks = Iter8Hooks(env={"ITER8_NO_AUTOLOAD": "1"}).tasks
    values = apply("tasks={run,assess}", "run.cmd=true", "assess.SLOs.upper.x/y=1", "runner=job")
    experiment = experiment_from_values(values, tasks)
    assert experiment.spec == [
        {"task": "run", "with": {"cmd": "true"}},
        {"task": "assess", "with": {"SLOs": {"upper": {"x/y": "1"}}}},
    ]


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (["tasks={run}", "rnu.cmd=true"], "unknown key 'rnu' in values"),
        (["tasks={nope}"], "tasks: unknown task 'nope'"),
        (["run.cmd=true"], "tasks: expected a list of task names"),
    ],
)
def test_bad_values_name_the_key(sets: list[str], message: str) -> None:
    tasks = Iter8Hooks(env={"ITER8_NO_AUTOLOAD": "1"}).tasks
    with pytest.raises(InvalidExperimentError, match=message):
        experiment_from_values(apply(*sets), tasks)
