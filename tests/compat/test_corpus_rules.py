"""The corpus's difference rules on small specs: each changes only what its reason names, and the
preset rule turns back nothing but the chart's own expansion."""

from __future__ import annotations

import pytest

from .corpus import (
    canonical,
    downloads_in_task,
    presets_kept,
    ready_conditions_list,
    ready_core_group_explicit,
    ready_namespace_at_run_time,
    ready_sorted_by_key,
    task_name_custom_metrics,
    warmup_options_dropped,
)

SERVICE = {
    "task": "ready",
    "with": {"name": "a", "version": "v1", "resource": "services", "namespace": "default"},
}
DEPLOY = {
    "task": "ready",
    "with": {
        "name": "a",
        "group": "apps",
        "version": "v1",
        "resource": "deployments",
        "condition": "Available",
    },
}
HTTP = {"task": "http", "with": {"url": "http://a/get"}}


def test_ready_entries_are_sorted_by_their_key_in_their_own_slots() -> None:
    chaos = {"task": "ready", "with": {"name": "c", "group": "litmuschaos.io", "resource": "chaosengines"}}
    spec = [SERVICE, HTTP, DEPLOY, chaos]
    assert ready_sorted_by_key(spec) == [chaos, HTTP, DEPLOY, SERVICE]
    assert spec == [SERVICE, HTTP, DEPLOY, chaos]


def test_ready_inputs_rules() -> None:
    assert ready_conditions_list([DEPLOY])[0]["with"]["conditions"] == ["Available"]
    assert "condition" not in ready_conditions_list([DEPLOY])[0]["with"]
    assert "namespace" not in ready_namespace_at_run_time([SERVICE])[0]["with"]
    other = {"task": "ready", "with": {**SERVICE["with"], "namespace": "shop"}}
    assert ready_namespace_at_run_time([other]) == [other]
    assert ready_core_group_explicit([SERVICE])[0]["with"]["group"] == ""
    assert ready_core_group_explicit([DEPLOY]) == [DEPLOY]


def test_downloads_drop_only_the_charts_curl_steps_and_tmp_files() -> None:
    spec = [
        {"run": "curl -o /tmp/ghz.proto https://x/a.proto\n"},
        {"run": "echo hello"},
        {
            "task": "grpc",
            "with": {
                "protoURL": "https://x/a.proto",
                "proto": "/tmp/ghz.proto",
                "endpoints": {"e": {"dataURL": "https://x/d.json", "data-file": "/tmpe_data.json"}},
                "metadata-file": "meta.json",
            },
        },
    ]
    assert downloads_in_task(spec) == [
        {"run": "echo hello"},
        {
            "task": "grpc",
            "with": {"protoURL": "https://x/a.proto", "endpoints": {"e": {"dataURL": "https://x/d.json"}},
                     "metadata-file": "meta.json"},
        },
    ]  # fmt: skip


def test_warmup_options_go_only_from_the_main_entries() -> None:
    warm = {"task": "http", "with": {"url": "u", "warmup": True, "numRequests": 5}}
    main = {"task": "http", "with": {"url": "u", "warmupNumRequests": 5}}
    assert warmup_options_dropped([warm, main]) == [warm, {"task": "http", "with": {"url": "u"}}]


SLACK_TPL = (
    "https://raw.githubusercontent.com/iter8-tools/iter8/iter8-0.13.7/templates/notify/_payload-slack.tpl"
)
GITHUB_TPL = SLACK_TPL.replace("slack", "github")


def test_presets_turn_back_only_the_charts_expansion() -> None:
    slack = {"task": "notify", "if": "SLOs()",
             "with": {"url": "https://h/s", "method": "POST", "payloadTemplateURL": SLACK_TPL, "softFailure": True}}  # fmt: skip
    assert presets_kept([slack]) == [
        {"task": "slack", "if": "SLOs()", "with": {"url": "https://h/s", "method": "POST"}}
    ]
    github = {
        "task": "notify",
        "with": {
            "url": "https://api.github.com/repos/o/r/dispatches",
            "method": "POST",
            "headers": {"Authorization": "token t", "Accept": "application/vnd.github+json"},
            "payloadTemplateURL": GITHUB_TPL,
            "softFailure": True,
        },
    }
    assert presets_kept([github]) == [{"task": "github", "with": {"owner": "o", "repo": "r", "token": "t"}}]
    # A notify written by hand, or with a payload template of its own, stays a notify.
    own = {
        "task": "notify",
        "with": {"url": "https://h/s", "payloadTemplateURL": "https://x/t.tpl", "softFailure": True},
    }
    assert presets_kept([own]) == [own]
    extra = {"task": "notify", "with": {**github["with"], "headers": {**github["with"]["headers"], "X": "1"}}}  # type: ignore[dict-item]
    with pytest.raises(AssertionError):
        presets_kept([extra])


def test_names_and_the_canonical_slos() -> None:
    assert task_name_custom_metrics([{"task": "custommetrics", "with": {}}]) == [
        {"task": "custom-metrics", "with": {}}
    ]
    ours = [{"task": "assess", "with": {"SLOs": {"upper": {"b/x": 1, "a/y": 2}}}}]
    iter8 = [
        {
            "task": "assess",
            "with": {"SLOs": {"upper": [{"metric": "a/y", "limit": 2}, {"metric": "b/x", "limit": 1}]}},
        }
    ]
    assert canonical(ours) == canonical(iter8) == iter8
