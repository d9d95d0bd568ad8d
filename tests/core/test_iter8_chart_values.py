"""Iter8's chart values for the runner work as the chart used them, or are refused with a reason.

``runner``/``cronjobSchedule``, ``serviceAccountName``, ``iter8Image``, ``resources``, ``logLevel``
and ``metricsServerURL`` shape the Job of ``launch -g`` (checked on ``--dry-run``'s manifests, on the
fake API server, and against what Iter8's own chart renders for the same values); ``majorMinor`` is
checked and warned about; ``warmupNumRequests`` / ``warmupDuration`` expand as the chart expanded
them; ``abnmetrics`` takes Iter8's ``host:port``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from iter8_release_chart import render_chart

from kubectl_iter8.values import DEFAULT_RESOURCES, chart_settings, warmup_entries

URL = "http://httpbin.default/get"
HTTP = ["--set", "tasks={http}", "--set", f"http.url={URL}"]


@pytest.fixture
def dry(cli, fake_kube) -> Any:
    """``launch -g app --dry-run`` with these arguments: the manifests, by kind."""

    def run(*args: str) -> dict[str, dict[str, Any]]:
        outcome = cli("launch", "-g", "app", "--dry-run", *args)
        assert outcome.code == 0, outcome.err
        docs = [doc for doc in yaml.safe_load_all(outcome.out) if doc]
        by_kind = {doc["kind"]: doc for doc in docs}
        assert len(by_kind) == len(docs), [doc["kind"] for doc in docs]
        return by_kind

    return run


def pod_of(objects: dict[str, dict[str, Any]]) -> dict[str, Any]:
    if "CronJob" in objects:
        return objects["CronJob"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    spec: dict[str, Any] = objects["Job"]["spec"]["template"]["spec"]
    return spec


def chart(values: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """What Iter8's chart (v0.15.0, ``k8s.yaml``) renders for these values, by kind."""
    docs = render_chart("iter8", K8S, {"tasks": ["http"], "http": {"url": URL}, **values})
    return {doc["kind"]: doc for doc in docs}


#: The chart's k8s.yaml (the file Helm renders), read as the chart has it.
K8S = (
    Path(__file__).resolve().parent.parent / "builtin_tasks/iter8_templates/charts/iter8/templates/k8s.yaml"
).read_text()


def chart_pod(objects: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return pod_of(objects)


# --- runner and cronjobSchedule -----------------------------------------------------------------


def test_runner_cronjob_with_a_schedule_makes_a_cronjob_as_iter8s_chart_did(dry) -> None:
    values = ["--set", "runner=cronjob", "--set", "cronjobSchedule=*/10 * * * *"]
    ours = dry(*HTTP, *values)
    iter8 = chart({"runner": "cronjob", "cronjobSchedule": "*/10 * * * *"})
    assert "Job" not in ours
    assert "Job" not in iter8
    for key in ("schedule", "concurrencyPolicy"):
        assert ours["CronJob"]["spec"][key] == iter8["CronJob"]["spec"][key]
    assert ours["CronJob"]["metadata"]["name"] == "app-1-cronjob" == iter8["CronJob"]["metadata"]["name"]
    # Iter8 passed --reuseResult so each loop kept the results: --keep-results is this runner's name.
    assert pod_of(ours)["containers"][0]["command"][-1] == "--keep-results"
    assert "--reuseResult" in chart_pod(iter8)["containers"][0]["command"][-1]


def test_runner_job_is_a_job_and_the_schedule_flag_wins_over_the_values(dry) -> None:
    assert "Job" in dry(*HTTP, "--set", "runner=job")
    values = ["--set", "runner=cronjob", "--set", "cronjobSchedule=*/10 * * * *"]
    ours = dry(*HTTP, *values, "--schedule", "0 * * * *")
    assert ours["CronJob"]["spec"]["schedule"] == "0 * * * *"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["runner=cron"], "runner: must be one of job, cronjob, or none (got 'cron')"),
        (["runner=cronjob"], "runner=cronjob needs cronjobSchedule"),
        (["cronjobSchedule=* * * * *"], "cronjobSchedule: used only with runner=cronjob (runner is not set)"),
        (["runner=cronjob", "cronjobSchedule=hourly"], "cronjobSchedule: expected a cron schedule of five"),
        (["serviceAccountName=Not_A_Name"], "serviceAccountName: not a ServiceAccount name"),
        (["iter8Image=iter8/iter8:0.14"], "iter8Image: Iter8's own image has no kubectl-iter8"),
        (["iter8Image=ghcr.io/iter8-tools/iter8:1.1"], "iter8Image: Iter8's own image"),
        (["iter8Image=a b"], "iter8Image: not an image reference"),
        (["logLevel=loud"], "logLevel: expected one of trace, debug, info"),
        (
            ["resources.limits.cpu=lots"],
            "resources.limits.cpu: not a quantity (e.g. 250m, 1, 512Mi) (got 'lots')",
        ),
        (["resources.claims.x=1"], "resources: unknown key 'claims' (expected requests, limits)"),
        (["resources=big"], "resources: expected a mapping with requests and/or limits"),
        (["metricsServerURL=iter8.default:8080"], "metricsServerURL: expected an http:// or https:// URL"),
        (["metricsServerURL=ftp://iter8.default"], "metricsServerURL: expected an http:// or https:// URL"),
        (["metricsServerURL=http://:8080"], "metricsServerURL: the URL has no host"),
        (["metricsServerURL=http://iter8:port"], "metricsServerURL: not a URL: Port could not be cast"),
        (["metricsServerURL=http://iter8/?a=b"], "metricsServerURL: no query or fragment"),
        (["metricsServerURL=http://iter8/#top"], "metricsServerURL: no query or fragment"),
        (["metricsServerURL=http://it er8/"], "metricsServerURL: blanks or control characters in a URL"),
        (["metricsServerURL=true"], "metricsServerURL: expected a URL such as http://"),
        ([f"metricsServerURL=http://iter8/{'x' * 2100}"], "metricsServerURL: longer than 2048 characters"),
        (["majorMinor=latest"], "majorMinor: expected Iter8's major.minor version, such as v1.1"),
    ],
)
def test_a_value_that_cannot_work_is_refused_with_one_line_naming_it(
    cli, fake_kube, values: list[str], message: str
) -> None:
    sets = [arg for value in values for arg in ("--set", value)]
    for mode in (["-g", "app", "--dry-run"], ["--local", "--dry-run"]):
        outcome = cli("launch", *mode, *HTTP, *sets)
        assert outcome.code != 0
        assert message in outcome.err, outcome.err
        assert outcome.err.count("\n") <= 2
        assert "Traceback" not in outcome.err
        assert "x" * 300 not in outcome.err  # a long value is cut when echoed


def test_runner_none_runs_here_and_is_refused_for_a_cluster_with_the_reason(cli, fake_kube) -> None:
    local = cli("launch", "--local", "--dry-run", *HTTP, "--set", "runner=none")
    assert local.code == 0
    assert local.err == ""
    outcome = cli("launch", "-g", "app", "--dry-run", *HTTP, "--set", "runner=none")
    assert outcome.code == 2
    assert outcome.err.startswith("error: runner=none: Iter8's chart made no Job with it; use --local")


# --- serviceAccountName, iter8Image, resources, logLevel -----------------------------------------


def test_service_account_name_runs_the_job_as_it_and_makes_no_rbac_as_in_iter8(dry) -> None:
    ours = dry(*HTTP, "--set", "serviceAccountName=runner-sa", "--set", "ready.deploy=backend",
               "--set", "ready.namespace=other", "--set", "tasks={ready,http}")  # fmt: skip
    iter8 = chart({"serviceAccountName": "runner-sa", "runner": "job"})
    assert set(ours) == set(iter8) == {"Secret", "Job"}
    assert pod_of(ours)["serviceAccountName"] == "runner-sa" == chart_pod(iter8)["serviceAccountName"]
    # No Role in another namespace either, so none is named for delete -g to remove.
    assert "iter8.tools/extra-namespaces" not in ours["Secret"]["metadata"].get("annotations", {})
    default = dry(*HTTP)
    assert {"ServiceAccount", "Role", "RoleBinding"} <= set(default)
    assert pod_of(default)["serviceAccountName"] == "app-iter8"


def test_iter8_image_is_the_jobs_image_and_the_image_flag_wins(dry) -> None:
    ours = dry(*HTTP, "--set", "iter8Image=registry.example/kubectl-iter8:v9")
    container = pod_of(ours)["containers"][0]
    assert container["image"] == "registry.example/kubectl-iter8:v9"
    iter8 = chart({"iter8Image": "registry.example/kubectl-iter8:v9", "runner": "job"})
    assert chart_pod(iter8)["containers"][0]["image"] == container["image"]
    # Shard Jobs are started with the runner's image, which it reads from its environment.
    assert {"name": "ITER8_RUNNER_IMAGE", "value": "registry.example/kubectl-iter8:v9"} in container["env"]
    flagged = dry(*HTTP, "--set", "iter8Image=registry.example/kubectl-iter8:v9", "--image", "mine:1")
    assert pod_of(flagged)["containers"][0]["image"] == "mine:1"


def test_resources_are_the_runner_containers_merged_over_the_defaults_as_helm_merges(dry) -> None:
    full = {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "2", "memory": "1Gi"}}
    ours = dry(*HTTP, "--set-json", f"resources={json.dumps(full)}")
    iter8 = chart({"resources": full, "runner": "job"})
    assert (
        pod_of(ours)["containers"][0]["resources"] == full == chart_pod(iter8)["containers"][0]["resources"]
    )
    # --set types 2 as a number (Helm does too); a null removes a default, as in Helm.
    partial = dry(*HTTP, "--set", "resources.limits.cpu=2", "--set", "resources.requests.memory=null")
    assert pod_of(partial)["containers"][0]["resources"] == {
        "requests": {"cpu": DEFAULT_RESOURCES["requests"]["cpu"]},
        "limits": {"cpu": "2", "memory": DEFAULT_RESOURCES["limits"]["memory"]},
    }
    assert pod_of(dry(*HTTP))["containers"][0]["resources"] == DEFAULT_RESOURCES


@pytest.mark.parametrize(
    ("level", "runner_level"), [("debug", "debug"), ("trace", "debug"), ("warn", "warning")]
)
def test_log_level_is_the_runners_log_level(dry, level: str, runner_level: str) -> None:
    command = pod_of(dry(*HTTP, "--set", f"logLevel={level}"))["containers"][0]["command"]
    assert command[:4] == ["kubectl-iter8", "--loglevel", runner_level, "run"]
    iter8 = chart({"logLevel": level, "runner": "job"})
    assert f"-l {level}" in chart_pod(iter8)["containers"][0]["command"][-1]
    assert pod_of(dry(*HTTP))["containers"][0]["command"][:2] == ["kubectl-iter8", "run"]


def test_cluster_values_are_ignored_here_with_one_warning_line(cli, tmp_path: Path) -> None:
    sets = ["runner=job", "iter8Image=registry.example/kubectl-iter8:v9", "logLevel=debug",
            "serviceAccountName=sa", "resources.limits.cpu=2", "metricsServerURL=http://iter8:8080"]  # fmt: skip
    args = [arg for value in sets for arg in ("--set", value)]
    outcome = cli("launch", "--local", "--dry-run", *HTTP, *args)
    assert outcome.code == 0, outcome.err
    assert outcome.err == (
        "warning: runner, serviceAccountName, iter8Image, resources, logLevel, metricsServerURL: chart "
        "values for an experiment in a cluster; ignored with --local\n"
    )
    assert yaml.safe_load(outcome.out)["spec"] == [{"task": "http", "with": {"url": URL}}]


def test_values_of_an_unlisted_task_are_ignored_with_a_warning_and_null_is_no_value(
    cli, caplog: pytest.LogCaptureFixture
) -> None:
    """As Helm renders Iter8's chart: a values file keeps ``ready`` for when ``tasks`` lists it."""
    outcome = cli(
        "launch", "--local", "--dry-run", *HTTP, "--set", "ready.deploy=httpbin", "--set", "assess=null"
    )
    assert outcome.code == 0, outcome.err
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == ["values of ready ignored: not listed in 'tasks'"]
    assert yaml.safe_load(outcome.out)["spec"] == [{"task": "http", "with": {"url": URL}}]
    listed = cli("launch", "--local", "--dry-run", "--set", "tasks={ready}", "--set", "ready=null")
    assert listed.code != 0
    assert listed.err == (
        "error: spec[0] (ready): name: required field is missing\n"
        "error: spec[0] (ready): resource: required field is missing\n"
    )


# --- metricsServerURL, majorMinor ----------------------------------------------------------------

#: Iter8 v1.1's chart (``charts/iter8/templates/_k-job.tpl``) gave the runner container this env;
#: the fixture chart is v0.15's, from before the value existed.
ITER8_V1_JOB_ENV = """env:
- name: METRICS_SERVER_URL
  value: "{{ .Values.metricsServerURL }}"
"""
CONTROLLER = "http://iter8-controller.iter8-system:8080"


def iter8_v1_env(values: dict[str, Any]) -> list[dict[str, Any]]:
    from kubectl_iter8 import gotemplate

    rendered = gotemplate.parse(ITER8_V1_JOB_ENV, name="k.job").execute({"Values": values})
    env: list[dict[str, Any]] = yaml.safe_load(rendered)["env"]
    return env


def metrics_env(objects: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    env = pod_of(objects)["containers"][0]["env"]
    return [var for var in env if var["name"] == "METRICS_SERVER_URL"]


@pytest.mark.parametrize("runner", [[], ["--set", "runner=cronjob", "--set", "cronjobSchedule=0 * * * *"]])
def test_metrics_server_url_is_the_runners_env_as_in_iter8_v1s_chart(dry, runner: list[str]) -> None:
    ours = dry(*HTTP, *runner, "--set", f"metricsServerURL={CONTROLLER}")
    assert metrics_env(ours) == iter8_v1_env({"metricsServerURL": CONTROLLER})
    assert metrics_env(ours) == [{"name": "METRICS_SERVER_URL", "value": CONTROLLER}]
    # Iter8's chart defaulted it to http://iter8.default:8080; here no value sends nothing.
    assert metrics_env(dry(*HTTP, *runner)) == []
    assert metrics_env(dry(*HTTP, *runner, "--set", "metricsServerURL=")) == []


def test_metrics_server_url_with_a_path_is_kept_and_credentials_are_never_echoed(cli, fake_kube, dry) -> None:
    ours = dry(*HTTP, "--set", "metricsServerURL=https://proxy.example/iter8/")
    assert metrics_env(ours) == [{"name": "METRICS_SERVER_URL", "value": "https://proxy.example/iter8/"}]
    for url, problem in [
        ("http://me:s3cr3t@iter8/", "metricsServerURL: no credentials in the URL"),
        ("http://me:s3cr3t@iter8:port/", "metricsServerURL: not a URL"),
        ("http://me:s3cr3t@it er8/", "metricsServerURL: blanks or control characters"),
    ]:
        outcome = cli("launch", "-g", "app", "--dry-run", *HTTP, "--set", f"metricsServerURL={url}")
        assert outcome.code != 0
        assert problem in outcome.err
        assert "(got 'http://***@" in outcome.err
        assert "s3cr3t" not in outcome.err


def test_major_minor_is_accepted_with_a_warning_that_it_has_no_effect(
    dry, caplog: pytest.LogCaptureFixture
) -> None:
    ours = dry(*HTTP, "--set", "majorMinor=v1.1")
    [warning] = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warning.startswith("majorMinor: no effect: the result's iter8Version records the kubectl-iter8")
    # Iter8's chart wrote it into the initial result, which the runner here writes when it starts.
    [experiment] = render_chart(
        "iter8",
        '{{ include "experiment" . }}',
        {"tasks": ["http"], "http": {"url": URL}, "majorMinor": "v1.1"},
    )
    assert experiment["result"]["iter8Version"] == "v1.1"
    assert "result" not in yaml.safe_load(ours["Secret"]["stringData"]["experiment.yaml"])
    caplog.clear()
    dry(*HTTP)
    assert not [r for r in caplog.records if r.levelname == "WARNING"]


# --- warmupNumRequests / warmupDuration ---------------------------------------------------------


def chart_spec(values: dict[str, Any]) -> list[dict[str, Any]]:
    [experiment] = render_chart("iter8", '{{ include "experiment" . }}', values)
    spec: list[dict[str, Any]] = experiment["spec"]
    # The chart copied the values before dropping the warm-up options, so its main entry kept them;
    # Iter8's task ignored them there (its inputs had no such fields).
    for entry in spec:
        if not entry["with"].get("warmup"):
            entry["with"].pop("warmupNumRequests", None)
            entry["with"].pop("warmupDuration", None)
    return spec


GRPC = {"host": "hello.default:50051", "call": "helloworld.Greeter.SayHello"}


@pytest.mark.parametrize(
    "values",
    [
        {"tasks": ["http"], "http": {"url": URL, "warmupNumRequests": 10}},
        {"tasks": ["http"], "http": {"url": URL, "warmupDuration": "5s", "qps": 20}},
        # Both: the count wins, as in the chart.
        {"tasks": ["http"], "http": {"url": URL, "warmupNumRequests": 7, "warmupDuration": "5s"}},
        {"tasks": ["grpc"], "grpc": {**GRPC, "warmupNumRequests": 10}},
        {"tasks": ["grpc"], "grpc": {**GRPC, "warmupDuration": "3s", "total": 500}},
    ],
    ids=["http-count", "http-duration", "http-both", "grpc-count", "grpc-duration"],
)
def test_warmup_values_add_the_warmup_entry_iter8s_chart_added(
    cli, tmp_path: Path, values: dict[str, Any]
) -> None:
    (tmp_path / "values.yaml").write_text(yaml.safe_dump(values))
    outcome = cli("launch", "--local", "--dry-run", "-f", str(tmp_path / "values.yaml"))
    assert outcome.code == 0, outcome.err
    spec = yaml.safe_load(outcome.out)["spec"]
    assert len(spec) == 2
    assert spec[0]["with"]["warmup"] is True
    assert spec == chart_spec(values)


def test_a_warmup_runs_first_and_only_the_main_run_counts(cli, tmp_path: Path) -> None:
    from prom_fixtures import Reply, Request, Server

    seen: list[str] = []

    def answer(request: Request) -> Reply:
        seen.append(request.path)
        return Reply(200, b"ok")

    with Server(answer) as server:
        outcome = cli(
            "launch", "--local", "--run-dir", str(tmp_path), "--set", "tasks={http}",
            "--set", f"http.url={server.url}/get", "--set", "http.warmupNumRequests=3",
            "--set", "http.numRequests=5", "--set", "http.qps=0",
        )  # fmt: skip
    assert outcome.code == 0, outcome.err
    assert len(seen) == 8
    stored = yaml.safe_load((tmp_path / "experiment.yaml").read_text())
    first, second = stored["result"].get("tasks", (None, None))
    assert first is not None
    assert first["details"].get("warmup") is True
    assert second is not None
    assert "warmup" not in second["details"]
    assert stored["result"]["insights"]["nonHistMetricValues"][0]["http/request-count"] == [5]


def test_warmup_entries_leave_other_values_alone() -> None:
    assert warmup_entries("http", {"url": URL}, "numRequests") is None
    assert warmup_entries("http", None, "numRequests") is None
    assert warmup_entries("http", {"url": URL, "warmupNumRequests": 0}, "numRequests") is None


# --- abnmetrics endpoint as host:port ------------------------------------------------------------


def test_abnmetrics_takes_iter8s_host_port_as_the_controllers_http_address() -> None:
    from kubectl_iter8.builtin_tasks.abn_metrics import AbnMetricsInputs

    inputs = AbnMetricsInputs.model_validate({"application": "default/backend", "endpoint": "iter8:8080"})
    assert inputs.endpoint == "http://iter8:8080"
    # Iter8's chart default was the A/B/n gRPC port, where the controller serves no HTTP.
    with pytest.raises(ValueError, match="give the controller's HTTP URL, such as http://iter8-controller"):
        AbnMetricsInputs.model_validate({"application": "default/backend", "endpoint": "iter8-abn:50051"})
    with pytest.raises(ValueError, match="the port must be 1 to 65535"):
        AbnMetricsInputs.model_validate({"application": "a", "endpoint": "iter8:70000"})


def test_abnmetrics_reads_the_controller_at_iter8s_host_port(cli, tmp_path: Path) -> None:
    from prom_fixtures import Reply, Request, Server

    def answer(request: Request) -> Reply:
        return Reply(200, {"metrics": {"sales": {"0": {"users": [1, 2], "transactions": [1, 2]}}}})

    with Server(answer) as server:
        outcome = cli(
            "launch", "--local", "--run-dir", str(tmp_path), "--set", "tasks={abnmetrics}",
            "--set", "abnmetrics.application=default/backend",
            "--set", f"abnmetrics.endpoint=127.0.0.1:{server.port}",
        )  # fmt: skip
    assert outcome.code == 0, outcome.err
    assert [(r.path, r.query["application"]) for r in server.requests] == [("/abnValues", ["backend"])]
    base = ["launch", "--local", "--dry-run", "--set", "tasks={abnmetrics}"]
    refused = cli(*base, "--set", "abnmetrics.application=a", "--set", "abnmetrics.endpoint=iter8-abn:50051")
    assert refused.code != 0
    assert "endpoint: give the controller's HTTP URL" in refused.err
    assert refused.err.count("\n") == 1


# --- pure logic -----------------------------------------------------------------------------------


def test_chart_settings_of_values_without_any_are_empty() -> None:
    settings = chart_settings({"tasks": ["http"]})
    assert settings.cluster_only() == []
    assert settings.metrics_server_url is None
    assert chart_settings({"runner": "none"}).cluster_only() == []


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("http://iter8.default:8080", "http://iter8.default:8080"),
        ("  HTTPS://[::1]:8443/x  ", "HTTPS://[::1]:8443/x"),
        ("", None),
        (None, None),
    ],
)
def test_metrics_server_url_is_read_as_given(given: str | None, kept: str | None) -> None:
    assert chart_settings({"metricsServerURL": given}).metrics_server_url == kept
