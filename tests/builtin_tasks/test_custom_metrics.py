"""``custom-metrics`` end to end: ``launch --local`` against a real Prometheus scraping a test exporter
that serves known values for two versions, and against small JSON sources."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubectl_iter8.builtin_tasks.custom_metrics import spec as specs
from prom_fixtures import Prometheus, Reply, Request, Server, exporter, start_prometheus

# Two versions, in Istio's shape (istio_requests_total by response code, and the duration histogram),
# plus two plain series for the generic provider.
EXPOSITION = """\
# TYPE app_requests_total counter
app_requests_total{version="v1"} 100
app_requests_total{version="v2"} 250
# TYPE app_latency_seconds gauge
app_latency_seconds{version="v1"} 0.125
app_latency_seconds{version="v2"} 0.25
# TYPE istio_requests_total counter
istio_requests_total{destination_workload="httpbin-v1",reporter="destination",response_code="200"} 95
istio_requests_total{destination_workload="httpbin-v1",reporter="destination",response_code="500"} 5
istio_requests_total{destination_workload="httpbin-v2",reporter="destination",response_code="200"} 198
istio_requests_total{destination_workload="httpbin-v2",reporter="destination",response_code="503"} 2
# TYPE istio_request_duration_milliseconds histogram
istio_request_duration_milliseconds_bucket{destination_workload="httpbin-v1",reporter="destination",le="5"} 0
istio_request_duration_milliseconds_bucket{destination_workload="httpbin-v1",reporter="destination",le="10"} 50
istio_request_duration_milliseconds_bucket{destination_workload="httpbin-v1",reporter="destination",le="20"} 100
istio_request_duration_milliseconds_bucket{destination_workload="httpbin-v1",reporter="destination",le="+Inf"} 100
istio_request_duration_milliseconds_sum{destination_workload="httpbin-v1",reporter="destination"} 1250
istio_request_duration_milliseconds_count{destination_workload="httpbin-v1",reporter="destination"} 100
istio_request_duration_milliseconds_bucket{destination_workload="httpbin-v2",reporter="destination",le="5"} 100
istio_request_duration_milliseconds_bucket{destination_workload="httpbin-v2",reporter="destination",le="10"} 150
istio_request_duration_milliseconds_bucket{destination_workload="httpbin-v2",reporter="destination",le="20"} 200
istio_request_duration_milliseconds_bucket{destination_workload="httpbin-v2",reporter="destination",le="+Inf"} 200
istio_request_duration_milliseconds_sum{destination_workload="httpbin-v2",reporter="destination"} 1600
istio_request_duration_milliseconds_count{destination_workload="httpbin-v2",reporter="destination"} 200
"""


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    folder = tmp_path_factory.mktemp("prom")
    with exporter(EXPOSITION) as source, start_prometheus(f"127.0.0.1:{source.port}", folder) as prom:
        prom.wait_for('app_requests_total{job="exporter"}', 2)
        prom.wait_for("istio_request_duration_milliseconds_count", 2)
        yield prom


def launch(cli, tmp_path: Path, spec: list[dict[str, Any]]):
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump({"metadata": {"name": "cm"}, "spec": spec}))
    outcome = cli("launch", "--local", "-f", str(path), "--run-dir", str(tmp_path / "run"))
    stored = tmp_path / "run" / "experiment.yaml"
    doc = yaml.safe_load(stored.read_text()) if stored.exists() else {}
    return outcome, doc.get("result", {})


def latest(result: dict[str, Any], version: int) -> dict[str, float]:
    return {k: v[-1] for k, v in result["insights"]["nonHistMetricValues"][version].items()}


def started_minutes_ago() -> str:
    return (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)).isoformat()


def test_generic_prometheus_provider_returns_exactly_the_exported_values(
    cli, tmp_path: Path, prometheus: Prometheus
) -> None:
    spec = [
        {
            "task": "custommetrics",  # Iter8's name
            "with": {
                "templates": {"app": "prometheus"},
                "values": {
                    "prometheusURL": prometheus.url,
                    "startingTime": started_minutes_ago(),
                    "queries": {
                        "requests": {
                            "query": "sum(last_over_time(app_requests_total{$labels}[$elapsed]))",
                            "type": "counter",
                        },
                        "latency": {"query": "app_latency_seconds{$labels}", "units": "sec"},
                    },
                },
                "versionValues": [{"labels": {"version": "v1"}}, {"labels": {"version": "v2"}}],
            },
        }
    ]
    outcome, result = launch(cli, tmp_path, spec)
    assert outcome.code == 0, outcome.err
    assert result["insights"]["numVersions"] == 2
    assert latest(result, 0) == {"app/requests": 100.0, "app/latency": 0.125}
    assert latest(result, 1) == {"app/requests": 250.0, "app/latency": 0.25}
    info = result["insights"]["metricsInfo"]
    assert info["app/requests"]["type"] == "Counter"
    assert info["app/latency"] == {
        "description": "PromQL: app_latency_seconds{$labels}",
        "units": "sec",
        "type": "Gauge",
    }
    assert result["tasks"][0]["details"] == {"fetched": 4}


def test_istio_prom_provider_on_istio_shaped_series(cli, tmp_path: Path, prometheus: Prometheus) -> None:
    spec = [
        {
            "task": "custom-metrics",
            "with": {
                "templates": {
                    # Iter8's published template URL names the built-in provider.
                    "istio-prom": "https://raw.githubusercontent.com/iter8-tools/iter8/v0.13.18/templates/custommetrics/istio-prom.tpl"
                },
                "values": {
                    "istioPromURL": f"{prometheus.url}/api/v1/query",
                    "latencyPercentiles": [50, 90],
                    "startingTime": started_minutes_ago(),
                },
                "versionValues": [
                    {"labels": {"destination_workload": "httpbin-v1", "reporter": "destination"}},
                    {"labels": {"destination_workload": "httpbin-v2", "reporter": "destination"}},
                ],
            },
        },
        {
            "task": "assess",
            "with": {"SLOs": {"upper": {"istio-prom/error-rate": 0.02, "istio-prom/latency-p90": 17}}},
        },
    ]
    outcome, result = launch(cli, tmp_path, spec)
    assert outcome.code == 0, outcome.err
    v1, v2 = latest(result, 0), latest(result, 1)
    assert {
        k: v1[f"istio-prom/{k}"] for k in ("request-count", "error-count", "error-rate", "latency-mean")
    } == {
        "request-count": 100.0,
        "error-count": 5.0,
        "error-rate": 0.05,
        "latency-mean": 12.5,
    }
    assert {
        k: v2[f"istio-prom/{k}"] for k in ("request-count", "error-count", "error-rate", "latency-mean")
    } == {
        "request-count": 200.0,
        "error-count": 2.0,
        "error-rate": 0.01,
        "latency-mean": 8.0,
    }
    # histogram_quantile interpolates inside the bucket: v1 p50 = 10, p90 = 18; v2 p50 = 5, p90 = 16.
    assert v1["istio-prom/latency-p50"] == pytest.approx(10.0, rel=1e-9)
    assert v1["istio-prom/latency-p90"] == pytest.approx(18.0, rel=1e-9)
    assert v2["istio-prom/latency-p50"] == pytest.approx(5.0, rel=1e-9)
    assert v2["istio-prom/latency-p90"] == pytest.approx(16.0, rel=1e-9)
    assert result["insights"]["metricsInfo"]["istio-prom/latency-p90"]["units"] == "msec"
    assert result["insights"]["SLOsSatisfied"] == {"upper": [[False, True], [False, True]], "lower": []}


def test_a_metric_that_cannot_be_fetched_is_missing_with_its_reason(
    cli, tmp_path: Path, prometheus: Prometheus, caplog: pytest.LogCaptureFixture
) -> None:
    spec = [
        {
            "task": "custom-metrics",
            "with": {
                "templates": {"app": "builtin:prometheus"},
                "values": {
                    "prometheusURL": prometheus.url,
                    "queries": {
                        "absent": "nothing_here_total{$labels}",
                        "broken": "sum(app_requests_total",
                        "ok": "app_requests_total{$labels}",
                    },
                },
                "versionValues": [{"labels": {"version": "v1"}}],
            },
        }
    ]
    outcome, result = launch(cli, tmp_path, spec)
    assert outcome.code == 0, outcome.err
    assert latest(result, 0) == {"app/ok": 100.0}
    missing = {m["metric"]: m["reason"] for m in result["tasks"][0]["details"]["missing"]}
    assert missing["app/absent"] == (
        "jqExpression '.data.result[0].value[1] | tonumber' failed: null (null) cannot be parsed as a number"
    )
    assert missing["app/broken"].startswith(f"HTTP 400 from {prometheus.url}/api/v1/query: ")
    assert "app/absent (version 0): missing: jqExpression" in caplog.text
    report = json.loads(cli("report", "--local", "--run-dir", str(tmp_path / "run"), "-o", "json").out)
    values = {m["name"]: m["values"] for m in report["metrics"]}
    assert values["app/absent"] == [None]  # missing, never zero
    assert {m["metric"] for m in report["missingMetrics"]} == {"app/absent", "app/broken"}


@pytest.fixture
def json_source() -> Iterator[Server]:
    """A REST source that wants a bearer token and answers a POST with JSON statistics."""

    def answer(request: Request) -> Reply:
        if request.headers.get("authorization") != "Bearer s3cret-token":
            return Reply(403, {"error": f"forbidden: got {request.headers.get('authorization')}"})
        if request.path == "/stats" and request.method == "POST":
            body = json.loads(request.body)
            version = body["version"]
            return Reply(
                200, {"stats": {"v1": {"p95": 41.5, "n": "12"}, "v2": {"p95": 39.25, "n": "15"}}[version]}
            )
        return Reply(404, {"error": "no such path"})

    with Server(answer) as server:
        yield server


PROVIDER = """\
url: {{ values.url }}/stats
method: POST
headers: {X-Team: "{{ values.team }}"}
params: {window: "{{ elapsedTimeSeconds }}s"}
metrics:
- name: latency-p95
  type: gauge
  units: msec
  body: '{"version": "{{ versionValues.name }}"}'
  jqExpression: .stats.p95
- name: samples
  type: counter
  body: {version: "{{ versionValues.name }}"}
  jqExpression: .stats.n | tonumber
"""


def test_rest_source_from_a_file_with_a_bearer_token_from_the_environment(
    cli, tmp_path: Path, json_source: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOP_TOKEN", "s3cret-token")
    (tmp_path / "shop.yaml").write_text(PROVIDER)
    spec = [
        {
            "task": "custom-metrics",
            "with": {
                "templates": {"shop": str(tmp_path / "shop.yaml")},
                "values": {"url": json_source.url, "team": "checkout"},
                "versionValues": [{"name": "v1"}, {"name": "v2"}],
                "auth": {"bearerToken": {"env": "SHOP_TOKEN"}},
            },
        }
    ]
    outcome, result = launch(cli, tmp_path, spec)
    assert outcome.code == 0, outcome.err
    assert latest(result, 0) == {"shop/latency-p95": 41.5, "shop/samples": 12.0}
    assert latest(result, 1) == {"shop/latency-p95": 39.25, "shop/samples": 15.0}
    first = json_source.requests[0]
    assert first.headers["x-team"] == "checkout"
    assert first.headers["content-type"] == "application/json;charset=utf-8"
    assert first.query["window"][0].endswith("s")


def test_credentials_never_appear_in_logs_results_reports_or_errors(
    cli,
    tmp_path: Path,
    json_source: Server,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The source echoes the Authorization header it got into its error; the token must be masked.
    monkeypatch.setenv("SHOP_TOKEN", "s3cret-token-but-wrong")
    (tmp_path / "shop.yaml").write_text(PROVIDER)
    spec = [
        {
            "task": "custom-metrics",
            "with": {
                "templates": {"shop": str(tmp_path / "shop.yaml")},
                "values": {"url": json_source.url, "team": "t"},
                "versionValues": [{"name": "v1"}],
                "auth": {"bearerToken": {"env": "SHOP_TOKEN"}},
            },
        }
    ]
    outcome, result = launch(cli, tmp_path, spec)
    assert outcome.code == 0, outcome.err
    reasons = [m["reason"] for m in result["tasks"][0]["details"]["missing"]]
    assert reasons[0] == f"HTTP 403 from {json_source.url}/stats: forbidden: got Bearer ***"
    run = tmp_path / "run"
    texts = [
        outcome.out,
        outcome.err,
        caplog.text,
        (run / "experiment.yaml").read_text(),
        cli("report", "--local", "--run-dir", str(run), "-o", "json").out,
        cli("report", "--local", "--run-dir", str(run)).out,
    ]
    assert all("s3cret" not in text for text in texts)
    assert "Bearer ***" in caplog.text


def test_basic_auth_and_a_missing_variable(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []

    def answer(request: Request) -> Reply:
        seen.append(request.headers.get("authorization", ""))
        return Reply(200, {"value": 7})

    (tmp_path / "p.yaml").write_text(
        "url: {{ values.url }}\nmetrics:\n- {name: seven, jqExpression: .value}\n"
    )
    auth = {"basic": {"username": "iter8", "password": {"env": "P_PASSWORD"}}}
    with Server(answer) as server:
        spec = [
            {
                "task": "custom-metrics",
                "with": {
                    "templates": {"p": str(tmp_path / "p.yaml")},
                    "values": {"url": server.url},
                    "auth": auth,
                },
            }
        ]
        outcome, _ = launch(cli, tmp_path, spec)
        assert outcome.code == 1
        assert (
            "error: experiment failed: spec[0] (custom-metrics): auth.basic.password: environment variable P_PASSWORD is not set"
            in outcome.err
        )
        monkeypatch.setenv("P_PASSWORD", "pa55word")
        outcome, result = launch(cli, tmp_path, spec)
    assert outcome.code == 0, outcome.err
    assert latest(result, 0) == {"p/seven": 7.0}
    assert seen == ["Basic aXRlcjg6cGE1NXdvcmQ="]  # base64("iter8:pa55word")


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({}, "spec[0] (custom-metrics): templates: required field is missing"),
        (
            {"templates": {}},
            "spec[0] (custom-metrics): templates: dictionary should have at least 1 item after validation, not 0 (got {})",
        ),
        (
            {"templates": {"a b": "prometheus"}},
            "spec[0] (custom-metrics): templates: provider name 'a b': use letters, digits, '.', '_' and '-'",
        ),
        (
            {"templates": {"a": "prometheus"}, "auth": {"bearerToken": {}}},
            "spec[0] (custom-metrics): auth.bearerToken: give exactly one of 'env' (a variable name) or 'secret' ({name, key})",
        ),
        (
            {"templates": {"a": "prometheus"}, "timeout": "soon"},
            "spec[0] (custom-metrics): timeout: 'soon' is not a duration (use e.g. 30s, 1m30s, 250ms)",
        ),
    ],
)
def test_bad_inputs_are_one_line_errors_naming_the_field(cli, tmp_path: Path, inputs, message) -> None:
    outcome, _ = launch(cli, tmp_path, [{"task": "custom-metrics", "with": inputs}])
    assert outcome.code == 2
    assert f"error: {message}" in outcome.err.splitlines()


@pytest.mark.parametrize(
    ("template", "message"),
    [
        (
            "url: {{ values.nope }}\n",
            "templates.p (version 0): template: 'dict object' has no attribute 'nope'",
        ),
        (
            "url: {{ ''.__class__ }}\n",
            "templates.p (version 0): template: access to attribute '__class__' of 'str' object is unsafe.",
        ),
        (
            "url: ftp://x\nmetrics: []\n",
            "templates.p (version 0): url: string should match pattern '^https?://' (got 'ftp://x'); metrics: list should have at least 1 item after validation, not 0 (got [])",
        ),
        (
            "url: http://x\nmetrics:\n- {name: a}\n",
            "templates.p (version 0): metrics[0].jqExpression: required field is missing",
        ),
        (
            "{% if %}",
            "templates.p (version 0): template line 1: Expected an expression, got 'end of statement block'",
        ),
    ],
)
def test_bad_provider_specs_fail_the_task_with_one_line(
    cli, tmp_path: Path, template: str, message: str
) -> None:
    (tmp_path / "p.yaml").write_text(template)
    spec = [{"task": "custom-metrics", "with": {"templates": {"p": str(tmp_path / "p.yaml")}}}]
    outcome, result = launch(cli, tmp_path, spec)
    assert outcome.code == 1
    assert result["failureMessage"] == f"spec[0] (custom-metrics): {message}"


def test_elapsed_time_and_label_quoting() -> None:
    now = dt.datetime(2026, 1, 1, 12, 0, 30, tzinfo=dt.UTC)
    start = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.UTC)
    assert specs.elapsed_seconds({}, start, now) == 30
    assert specs.elapsed_seconds({"startingTime": "2026-01-01T11:59:00Z"}, start, now) == 90
    assert specs.elapsed_seconds({}, now, now) == 1  # never an empty range
    assert specs.prom_matchers({"b": 'say "hi"', "a": 1}) == 'a="1",b="say \\"hi\\""'
    with pytest.raises(ValueError, match="not a Prometheus label name"):
        specs.prom_matchers({"bad-name": "x"})


def test_a_bearer_token_from_a_kubernetes_secret(cli, tmp_path: Path, json_source: Server, fake_kube) -> None:
    created = fake_kube.kubectl(
        "create", "secret", "generic", "shop-creds", "--from-literal=token=s3cret-token"
    )
    assert created.returncode == 0, created.stderr
    (tmp_path / "shop.yaml").write_text(PROVIDER)
    spec = [
        {
            "task": "custom-metrics",
            "with": {
                "templates": {"shop": str(tmp_path / "shop.yaml")},
                "values": {"url": json_source.url, "team": "t"},
                "versionValues": [{"name": "v2"}],
                "auth": {"bearerToken": {"secret": {"name": "shop-creds", "key": "token"}}},
            },
        }
    ]
    outcome, result = launch(cli, tmp_path, spec)
    assert outcome.code == 0, outcome.err
    assert latest(result, 0) == {"shop/latency-p95": 39.25, "shop/samples": 15.0}
    assert "s3cret" not in (tmp_path / "run" / "experiment.yaml").read_text()
    spec[0]["with"]["auth"]["bearerToken"]["secret"]["key"] = "nope"
    outcome, result = launch(cli, tmp_path, spec)
    assert outcome.code == 1
    assert (
        result["failureMessage"]
        == "spec[0] (custom-metrics): auth.bearerToken: Secret 'shop-creds' has no key 'nope'"
    )
