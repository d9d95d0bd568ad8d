"""The Iter8 corpus (``iter8_corpus.yaml``) and how its cases are compared: what Iter8's experiment
chart renders for a case's ``--set`` arguments, and the rules that turn it into what this project
builds where the two deliberately differ.

Kept apart from the tests so that the rules, pure functions over an experiment's ``spec``, are
tested on their own (``test_corpus_rules.py``) and the corpus test only reads like the corpus.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from iter8_release_chart import CHARTS, render_chart

from kubectl_iter8.values import parse_into

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "iter8_corpus.yaml"
FILES = HERE / "files"
#: The charts of the corpus: v0.15.0 with the other Iter8 charts, the two others here.
CHART_FOLDERS = {
    "iter8-v0.15.0": CHARTS / "iter8",
    "iter8-v0.14.5": HERE / "charts" / "iter8-v0.14.5",
    "iter8-v1.1.2": HERE / "charts" / "iter8-v1.1.2",
}
#: The hosts the tutorials had, for comparing what is rendered (the runs use the test's servers).
TUTORIAL_HOSTS = {
    "$APP": "http://httpbin.default",
    "$GRPC": "routeguide.default:50051",
    "$FILES": "https://raw.githubusercontent.com/iter8-tools/docs/v0.13.13/samples",
    "$HOOK": "https://hooks.slack.com/services/T0/B0/X",
    "$PROM": "http://prometheus.istio-system:9090",
    "$ABN": "iter8-controller.iter8-system:8080",
}
#: The namespace Helm rendered the chart in: the tutorials' release namespace.
RELEASE_NAMESPACE = "default"

Spec = list[dict[str, Any]]


def cases() -> list[dict[str, Any]]:
    loaded: list[dict[str, Any]] = yaml.safe_load(CORPUS.read_text())["cases"]
    return loaded


def substitute(text: str, hosts: dict[str, str]) -> str:
    for placeholder, value in hosts.items():
        text = text.replace(placeholder, value)
    return text


def set_args(sets: list[str], hosts: dict[str, str]) -> list[str]:
    """``--set`` arguments for the command line."""
    return [arg for value in sets for arg in ("--set", substitute(value, hosts))]


def iter8_experiment(case: dict[str, Any], hosts: dict[str, str] = TUTORIAL_HOSTS) -> dict[str, Any]:
    """What Iter8 produces: the case's chart's ``experiment`` template for its values, as Helm
    renders it. The values are parsed by this project's port of Helm's ``strvals`` (tested on
    Helm's own parser cases in ``tests/core``), so a difference in parsing shows in the runs, not
    here."""
    values: dict[str, Any] = {}
    for value in case["set"]:
        parse_into(substitute(value, hosts), values)
    folder = CHART_FOLDERS[case.get("chart", "iter8-v0.15.0")]
    [experiment] = render_chart(
        os.path.relpath(folder, CHARTS), '{{ include "experiment" . }}', values, namespace=RELEASE_NAMESPACE
    )
    return experiment


# --- canonical form: one spelling of what both sides mean the same way ---------------------------


def canonical(spec: Spec) -> Spec:
    """``assess`` SLOs as Iter8's chart wrote them, a list of ``{metric, limit}`` sorted by metric
    (Go ranges over a map in key order); the chart's map form ``{metric: limit}``, which this
    project keeps as given, says the same."""
    out = copy.deepcopy(spec)
    for entry in out:
        slos = entry.get("with", {}).get("SLOs") if entry.get("task") == "assess" else None
        for side in ("upper", "lower"):
            if isinstance(slos, dict) and isinstance(slos.get(side), dict):
                slos[side] = [{"metric": m, "limit": limit} for m, limit in sorted(slos[side].items())]
    return out


# --- the expected differences: each turns Iter8's spec into this project's; the reasons are in the
# corpus (``differences:``) ---------------------------------------------------------------------------

#: A ``ready`` entry of Iter8's v0.15 chart, by resource, back to the values key that made it.
_READY_KEYS = {
    ("", "services"): "service",
    ("apps", "deployments"): "deploy",
    ("serving.knative.dev", "services"): "ksvc",
    ("serving.kserve.io", "inferenceservices"): "isvc",
    ("litmuschaos.io", "chaosengines"): "chaosengine",
}


def _ready(spec: Spec) -> list[dict[str, Any]]:
    return [entry["with"] for entry in spec if entry.get("task") == "ready"]


def ready_sorted_by_key(spec: Spec) -> Spec:
    """The ``ready`` entries in the order of their values keys (the slots of the others kept)."""
    out = copy.deepcopy(spec)
    slots = [i for i, entry in enumerate(out) if entry.get("task") == "ready"]
    entries = sorted(
        (out[i] for i in slots),
        key=lambda e: _READY_KEYS[(e["with"].get("group", ""), e["with"]["resource"])],
    )
    for slot, entry in zip(slots, entries, strict=True):
        out[slot] = entry
    return out


def ready_conditions_list(spec: Spec) -> Spec:
    """``condition: X`` as ``conditions: [X]``."""
    out = copy.deepcopy(spec)
    for inputs in _ready(out):
        if "condition" in inputs:
            inputs["conditions"] = [inputs.pop("condition")]
    return out


def ready_namespace_at_run_time(spec: Spec) -> Spec:
    """No ``namespace`` in a ``ready`` entry where the chart wrote the release's own."""
    out = copy.deepcopy(spec)
    for inputs in _ready(out):
        if inputs.get("namespace") == RELEASE_NAMESPACE:
            del inputs["namespace"]
    return out


def ready_core_group_explicit(spec: Spec) -> Spec:
    """``group: ''`` in each ``ready`` entry that has no group."""
    out = copy.deepcopy(spec)
    for inputs in _ready(out):
        inputs.setdefault("group", "")
    return out


#: A URL input of Iter8's chart and the file input its ``run: curl`` step filled from it.
_DOWNLOADS = {
    "payloadURL": "payloadFile",
    "protoURL": "proto",
    "dataURL": "data-file",
    "binaryDataURL": "binary-file",
    "metadataURL": "metadata-file",
}
_CURL = re.compile(r"curl -o \S+ \S+\n?")


def downloads_in_task(spec: Spec) -> Spec:
    """Without the chart's ``run: curl -o /tmp/...`` entries and the file inputs they filled (only
    where the URL is there too and the file is the chart's /tmp one)."""
    out = [
        copy.deepcopy(e) for e in spec if not (isinstance(e.get("run"), str) and _CURL.fullmatch(e["run"]))
    ]
    for entry in out:
        inputs = entry.get("with", {})
        for scope in [inputs, *inputs.get("endpoints", {}).values()]:
            for url, file in _DOWNLOADS.items():
                if url in scope and str(scope.get(file, "")).startswith("/tmp"):
                    del scope[file]
    return out


def warmup_options_dropped(spec: Spec) -> Spec:
    """Without ``warmupNumRequests``/``warmupDuration`` in the entries that are not the warm-up."""
    out = copy.deepcopy(spec)
    for entry in out:
        inputs = entry.get("with", {})
        if entry.get("task") in ("http", "grpc") and not inputs.get("warmup"):
            inputs.pop("warmupNumRequests", None)
            inputs.pop("warmupDuration", None)
    return out


#: The payload templates Iter8's charts named by default (v0.15 and v1.x).
_DEFAULT_PAYLOADS = re.compile(
    r"https://raw\.githubusercontent\.com/iter8-tools/iter8/(iter8-0\.13\.7|v0\.16\.5)/templates/notify/"
    r"_payload-(slack|github)\.tpl"
)
_GITHUB_URL = re.compile(r"https://api\.github\.com/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)/dispatches")


def presets_kept(spec: Spec) -> Spec:
    """The chart's ``notify`` expansions of ``slack`` and ``github`` turned back into those tasks.
    Only the chart's own expansion is: anything else in the entry stays and fails the comparison."""
    out: Spec = []
    for entry in copy.deepcopy(spec):
        inputs = entry.get("with", {})
        template = str(inputs.get("payloadTemplateURL", ""))
        preset = _DEFAULT_PAYLOADS.fullmatch(template)
        if entry.get("task") != "notify" or preset is None or inputs.get("softFailure") is not True:
            out.append(entry)
            continue
        del inputs["payloadTemplateURL"], inputs["softFailure"]
        if preset.group(2) == "github":
            github = _GITHUB_URL.fullmatch(inputs.pop("url"))
            headers = inputs.pop("headers")
            assert github is not None
            assert headers["Accept"] == "application/vnd.github+json"
            assert inputs.pop("method") == "POST"
            token = headers.pop("Authorization").removeprefix("token ")
            assert headers == {"Accept": "application/vnd.github+json"}
            inputs.update(owner=github["owner"], repo=github["repo"], token=token)
        entry["task"] = preset.group(2)
        out.append(entry)
    return out


def task_name_custom_metrics(spec: Spec) -> Spec:
    """``custommetrics`` entries named ``custom-metrics``."""
    out = copy.deepcopy(spec)
    for entry in out:
        if entry.get("task") == "custommetrics":
            entry["task"] = "custom-metrics"
    return out


RULES: dict[str, Callable[[Spec], Spec]] = {
    "ready-sorted-by-key": ready_sorted_by_key,
    "ready-conditions-list": ready_conditions_list,
    "ready-namespace-at-run-time": ready_namespace_at_run_time,
    "ready-core-group-explicit": ready_core_group_explicit,
    "downloads-in-task": downloads_in_task,
    "warmup-options-dropped": warmup_options_dropped,
    "presets-kept": presets_kept,
    "task-name-custom-metrics": task_name_custom_metrics,
}


def expected_spec(case: dict[str, Any], iter8_spec: Spec) -> Spec:
    """Iter8's spec with the case's recorded differences applied, in canonical form."""
    spec = iter8_spec
    for name in case["differences"]:
        spec = RULES[name](spec)
    return canonical(spec)
