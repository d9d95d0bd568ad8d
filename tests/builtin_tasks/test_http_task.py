"""The ``http`` task end to end: ``launch --local`` through the CLI against the real sample app."""

from __future__ import annotations

import io
import json
import socket
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hdrh.histogram import HdrHistogram
from kubectl_iter8.builtin_tasks.http.metrics import percentile_name
from kubectl_iter8.builtin_tasks.http.progress import ProgressLine
from kubectl_iter8.builtin_tasks.http.stats import RunStats
from kubectl_iter8.builtin_tasks.http.task import HttpInputs, resolve

from kubectl_iter8.sample_app import SampleApp, running

LATENCIES = ["mean", "stddev", "min", "max", "p50", "p75", "p90", "p95", "p99", "p99.9"]


@pytest.fixture(scope="module")
def app() -> Iterator[SampleApp]:
    with running(keep_requests=20) as server:
        yield server


def launch(cli, tmp_path: Path, spec: list[dict[str, Any]], *extra: str):
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump({"spec": spec}))
    outcome = cli("launch", "--local", "-f", str(path), "--run-dir", str(tmp_path / "run"), *extra)
    doc = yaml.safe_load((tmp_path / "run" / "experiment.yaml").read_text()) if outcome.code != 2 else {}
    return outcome, doc.get("result", {})


def values(result: dict[str, Any]) -> dict[str, float]:
    return {k: v[-1] for k, v in result["insights"]["nonHistMetricValues"][0].items()}


def test_defaults_are_iter8s_and_every_metric_is_recorded(cli, tmp_path: Path, app: SampleApp) -> None:
    before = app.requests
    outcome, result = launch(cli, tmp_path, [{"task": "http", "with": {"url": f"{app.url}/get", "qps": 400}}])
    assert outcome.code == 0, outcome.err
    metrics = values(result)
    assert metrics["http/request-count"] == 100  # Iter8's default when neither count nor duration is set
    assert metrics["http/error-count"] == 0
    assert metrics["http/error-rate"] == 0
    assert sorted(metrics) == sorted(
        ["http/request-count", "http/error-count", "http/error-rate"]
        + [f"http/latency-{n}" for n in LATENCIES]
    )
    # Open-loop latencies count from the due time, so a busy machine may push them anywhere: the
    # unit (ms) is checked against the histogram's µs below, not with an upper bound.
    assert 0 < metrics["http/latency-min"] <= metrics["http/latency-p50"] <= metrics["http/latency-max"]
    info = result["insights"]["metricsInfo"]
    assert info["http/latency-p95"] == {
        "description": "95-th percentile of observed latency values",
        "units": "msec",
        "type": "Gauge",
    }
    assert info["http/request-count"]["type"] == "Counter"
    record = result["tasks"][0]["details"]["endpoints"]["http"]
    assert record["statusCodes"] == {"200": 100}
    assert record["connections"] == 4  # Iter8's default
    assert record["loadModel"] == "open"
    assert record["targetQPS"] == 400
    assert app.requests - before == 100  # the requests, and nothing unrecorded
    histogram = HdrHistogram.decode(result["insights"]["histograms"][0]["http/latency"])
    assert histogram.get_total_count() == 100
    assert histogram.get_max_value() / 1000 == pytest.approx(metrics["http/latency-max"])


def test_slos_on_http_metrics_are_assessed(cli, tmp_path: Path, app: SampleApp) -> None:
    spec = [
        {"task": "http", "with": {"url": f"{app.url}/get", "numRequests": 40, "qps": 0}},
        {
            "task": "assess",
            "with": {
                "SLOs": {
                    "upper": [
                        {"metric": "http/latency-p95", "limit": 500},
                        {"metric": "http/error-rate", "limit": 0},
                        {"metric": "http/latency-mean", "limit": 0.000001},
                    ]
                }
            },
        },
    ]
    outcome, result = launch(cli, tmp_path, spec)
    assert outcome.code == 0, outcome.err
    assert result["insights"]["SLOsSatisfied"]["upper"] == [[True], [True], [False]]


def test_endpoints_inherit_the_top_level_and_get_their_own_metrics(
    cli, tmp_path: Path, app: SampleApp
) -> None:
    spec = [
        {
            "task": "http",
            "with": {
                "url": f"{app.url}/get",
                "qps": 0,
                "numRequests": 12,
                "headers": {"X-Team": "checkout"},
                "percentiles": [99.99],
                "endpoints": {
                    "home": {},
                    "broken": {"url": f"{app.url}/status/500", "allowInitialErrors": True, "numRequests": 5},
                    "post": {
                        "url": f"{app.url}/anything",
                        "payloadStr": "hello",
                        "contentType": "text/plain",
                    },
                },
            },
        }
    ]
    outcome, result = launch(cli, tmp_path, spec)
    assert outcome.code == 0, outcome.err
    metrics = values(result)
    assert metrics["http-home/request-count"] == 12
    assert metrics["http-broken/request-count"] == 5
    assert metrics["http-broken/error-rate"] == 1
    assert metrics["http-post/error-count"] == 0
    assert "http-home/latency-p99.99" in metrics
    assert not any(name.startswith("http/") for name in metrics)
    method, path, headers, body = app.recent[-1]
    assert (method, path, body) == ("POST", "/anything", b"hello")  # a payload makes it a POST
    assert headers["X-Team"] == "checkout"
    assert headers["Content-Type"] == "text/plain"


def test_payload_file_and_error_ranges(cli, tmp_path: Path, app: SampleApp) -> None:
    payload = tmp_path / "payload.json"
    payload.write_bytes(b'{"order": 42}')
    spec = [
        {
            "task": "http",
            "with": {
                "url": f"{app.url}/status/404",
                "payloadFile": str(payload),
                "method": "put",
                "numRequests": 10,
                "qps": 0,
                "errorRanges": [{"lower": 500}],
            },
        }
    ]
    outcome, result = launch(cli, tmp_path, spec)
    assert outcome.code == 0, outcome.err
    assert values(result)["http/error-count"] == 0  # 404 is not in 500..
    assert app.recent[-1][0] == "PUT"
    assert app.recent[-1][3] == b'{"order": 42}'


def test_payload_url_is_fetched_once_and_sent(cli, tmp_path: Path, app: SampleApp) -> None:
    spec = [{"task": "http", "with": {"url": f"{app.url}/anything", "payloadURL": f"{app.url}/bytes/300",
                                      "numRequests": 3, "qps": 0}}]  # fmt: skip
    outcome, _ = launch(cli, tmp_path, spec)
    assert outcome.code == 0, outcome.err
    assert app.recent[-1][3] == b"x" * 300


def test_a_dead_url_fails_the_task_with_one_line(cli, tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/get"
    outcome, result = launch(cli, tmp_path, [{"task": "http", "with": {"url": url, "numRequests": 5}}])
    assert outcome.code == 1
    assert result["failure"] is True
    assert f"{url}: initial request failed: connection refused" in result["failureMessage"]
    assert "Traceback" not in outcome.err


def test_a_dead_url_with_initial_errors_allowed_is_measured(cli, tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/get"
    spec = [{"task": "http", "with": {"url": url, "numRequests": 6, "qps": 0, "allowInitialErrors": True}}]
    outcome, result = launch(cli, tmp_path, spec)
    assert outcome.code == 0, outcome.err
    metrics = values(result)
    assert (metrics["http/request-count"], metrics["http/error-count"], metrics["http/error-rate"]) == (
        6,
        6,
        1,
    )
    assert "http/latency-mean" not in metrics  # no response, no latency
    assert result["tasks"][0]["details"]["endpoints"]["http"]["errorReasons"] == {"connection refused": 6}


def test_a_failing_endpoint_is_skipped_but_all_failing_fails(cli, tmp_path: Path, app: SampleApp) -> None:
    endpoints = {"ok": {"url": f"{app.url}/get"}, "bad": {"url": f"{app.url}/status/503"}}
    spec = [{"task": "http", "with": {"numRequests": 5, "qps": 0, "endpoints": endpoints}}]
    outcome, result = launch(cli, tmp_path, spec)
    assert outcome.code == 0, outcome.err
    assert values(result)["http-ok/request-count"] == 5
    assert "HTTP status 503" in result["tasks"][0]["details"]["endpoints"]["http-bad"]["error"]
    del endpoints["ok"]
    outcome, result = launch(cli, tmp_path, spec)
    assert outcome.code == 1
    assert "every endpoint failed" in result["failureMessage"]


def test_timeouts_are_errors_with_their_reason(cli, tmp_path: Path, app: SampleApp) -> None:
    spec = [{"task": "http", "with": {"url": f"{app.url}/delay/2000", "timeout": "100ms", "numRequests": 4,
                                      "qps": 0, "allowInitialErrors": True}}]  # fmt: skip
    outcome, result = launch(cli, tmp_path, spec)
    assert outcome.code == 0, outcome.err
    assert values(result)["http/error-rate"] == 1
    assert result["tasks"][0]["details"]["endpoints"]["http"]["errorReasons"] == {"timeout": 4}


def error_durations(result: dict[str, Any], prefix: str = "http") -> HdrHistogram:
    return RunStats.from_wire(result["tasks"][0]["details"]["endpoints"][prefix]).error_latency


def test_failed_requests_durations_are_recorded_apart(cli, tmp_path: Path, app: SampleApp) -> None:
    # 20 ms answers that errorRanges call errors, beside quick ones that are not: only the slow
    # ones are timed as failed, each with at least its 20 ms.
    endpoints = {
        "slow-error": {"url": f"{app.url}/delay/20", "errorRanges": [{"lower": 200, "upper": 299}]},
        "quick-404": {"url": f"{app.url}/status/404", "errorRanges": [{"lower": 500}]},
        "quick-503": {"url": f"{app.url}/status/503"},
    }
    spec = [{"task": "http", "with": {"numRequests": 6, "qps": 0, "connections": 2,
                                      "allowInitialErrors": True, "endpoints": endpoints}}]  # fmt: skip
    outcome, result = launch(cli, tmp_path, spec)
    assert outcome.code == 0, outcome.err
    slow = error_durations(result, "http-slow-error")
    assert slow.get_total_count() == 6 == values(result)["http-slow-error/error-count"]
    assert slow.get_min_value() >= 20_000  # µs
    record = result["tasks"][0]["details"]["endpoints"]
    assert "errorLatencyHistogram" not in record["http-quick-404"]  # none failed, none timed
    quick = error_durations(result, "http-quick-503")
    assert quick.get_total_count() == 6
    assert quick.get_max_value() < slow.get_min_value()
    # The same requests, all answered, are in the latency histogram too (Fortio's rule).
    assert RunStats.from_wire(record["http-quick-503"]).latency.get_total_count() == 6


def test_requests_without_a_response_are_timed_until_given_up(cli, tmp_path: Path, app: SampleApp) -> None:
    spec = [{"task": "http", "with": {"url": f"{app.url}/delay/2000", "timeout": "100ms", "numRequests": 3,
                                      "qps": 0, "connections": 1, "allowInitialErrors": True}}]  # fmt: skip
    outcome, result = launch(cli, tmp_path, spec)
    assert outcome.code == 0, outcome.err
    timed = error_durations(result)
    assert timed.get_total_count() == 3
    assert 100_000 <= timed.get_min_value() < 2_000_000  # cut at the timeout, not at the answer
    assert (
        RunStats.from_wire(result["tasks"][0]["details"]["endpoints"]["http"]).latency.get_total_count() == 0
    )
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/get"
    spec = [{"task": "http", "with": {"url": url, "numRequests": 4, "qps": 0, "allowInitialErrors": True}}]
    outcome, result = launch(cli, tmp_path, spec)
    assert outcome.code == 0, outcome.err
    refused = error_durations(result)
    assert refused.get_total_count() == 4 == values(result)["http/error-count"]
    assert refused.get_max_value() < 1_000_000  # a refused connection fails at once


def test_warmup_keeps_no_metrics(cli, tmp_path: Path, app: SampleApp) -> None:
    spec = [{"task": "http", "with": {"url": f"{app.url}/get", "numRequests": 7, "qps": 0, "warmup": True}}]
    outcome, result = launch(cli, tmp_path, spec)
    assert outcome.code == 0, outcome.err
    assert not result.get("insights", {}).get("nonHistMetricValues")
    details = result["tasks"][0]["details"]
    assert details["warmup"] is True
    assert details["endpoints"]["http"]["requests"] == 7


def test_duration_and_workers(cli, tmp_path: Path, app: SampleApp) -> None:
    spec = [{"task": "http", "with": {"url": f"{app.url}/get", "duration": "500ms", "qps": 60, "workers": 2}}]
    outcome, result = launch(cli, tmp_path, spec)
    assert outcome.code == 0, outcome.err
    assert values(result)["http/request-count"] == 30
    record = result["tasks"][0]["details"]["endpoints"]["http"]
    assert record["workers"] == 2
    assert RunStats.from_wire(record).latency.get_total_count() == 30  # the record keeps the merged histogram


def test_chart_values_shorthand(cli, tmp_path: Path, app: SampleApp) -> None:
    outcome = cli("launch", "--local", "--run-dir", str(tmp_path), "--set", "tasks={http}",
                  "--set", f"http.url={app.url}/get", "--set", "http.numRequests=9", "--set", "http.qps=0")  # fmt: skip
    assert outcome.code == 0, outcome.err
    doc = yaml.safe_load((tmp_path / "experiment.yaml").read_text())
    assert values(doc["result"])["http/request-count"] == 9


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({}, "please set the url or the endpoints"),
        ({"url": "ftp://x/"}, "only http:// and https://"),
        ({"url": "http://x/", "qps": -1}, "qps"),
        ({"url": "http://x/", "percentiles": [150]}, "not in (0, 100]"),
        ({"url": "http://x/", "numRequest": 5}, "numRequest"),
        ({"endpoints": {"a": {}}}, "endpoint 'a' has no url"),
        ({"url": "http://x/", "endpoints": {"a b": {}}}, "endpoint name 'a b'"),
    ],
)
def test_bad_inputs_are_refused_before_anything_runs(
    cli, tmp_path: Path, inputs: dict[str, Any], message: str
) -> None:
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump({"spec": [{"task": "http", "with": inputs}]}))
    outcome = cli("launch", "--local", "-f", str(path), "--run-dir", str(tmp_path / "run"))
    assert outcome.code == 2
    assert message in outcome.err
    assert not (tmp_path / "run" / "experiment.yaml").exists()


def test_resolve_applies_iter8_defaults_and_precedence() -> None:
    inputs = HttpInputs.model_validate(
        {"url": "http://h/", "duration": "2s", "endpoints": {"a": {"numRequests": 5, "qps": 0}, "b": {}}}
    )
    a, b = resolve(inputs)
    assert (a.prefix, a.plan.num_requests, a.plan.duration, a.plan.qps) == ("http-a", 5, None, 0)
    assert (b.prefix, b.plan.num_requests, b.plan.duration, b.plan.qps, b.plan.connections) == (
        "http-b",
        None,
        2,
        8,
        4,
    )
    assert b.target.error_ranges == ((400, 999),)
    assert b.percentiles == (50, 75, 90, 95, 99, 99.9)
    assert [percentile_name(p) for p in (50, 99.9, 99.99)] == ["p50", "p99.9", "p99.99"]


def test_resolve_maps_the_added_inputs() -> None:
    inputs = HttpInputs.model_validate(
        {
            "url": "https://h:8443/x?y=1",
            "method": "delete",
            "timeout": "1.5s",
            "caFile": "/ca.pem",
            "certFile": "/c.pem",
            "keyFile": "/k.pem",
            "insecureSkipVerify": "true",  # --set gives strings
            "errorRanges": [{"lower": 500, "upper": 503}, {"upper": 99}],
            "workers": "0",
        }
    )
    (endpoint,) = resolve(inputs)
    target = endpoint.target
    assert (target.method, target.timeout, target.ca_file, target.cert_file, target.key_file) == (
        "DELETE", 1.5, "/ca.pem", "/c.pem", "/k.pem",
    )  # fmt: skip
    assert target.insecure_skip_verify is True
    assert target.error_ranges == ((500, 503), (0, 99))
    assert [target.is_error(code) for code in (99, 200, 500, 504)] == [True, False, True, False]
    assert target.request_bytes().startswith(b"DELETE /x?y=1 HTTP/1.1\r\nHost: h:8443\r\n")
    assert inputs.workers == 0


def test_through_the_real_kubectl(kubectl, tmp_path: Path, app: SampleApp) -> None:
    (tmp_path / "exp.yaml").write_text(
        textwrap.dedent(f"""
        spec:
        - task: http
          with: {{url: "{app.url}/get", numRequests: 20, qps: 0}}
        """)
    )
    outcome = kubectl("launch", "--local", "-f", "exp.yaml")
    assert outcome.code == 0, outcome.err
    report = kubectl("report", "--local", "-o", "json")
    assert report.code == 0, report.err
    assert "http/latency-p99" in report.out
    assert json.loads(report.out)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_line_only_on_a_terminal() -> None:
    quiet = ProgressLine("http:", lambda: (5, 0), total=10, stream=io.StringIO())
    assert not quiet.enabled
    tty = _Terminal()
    line = ProgressLine("http:", lambda: (500, 2), total=1000, stream=tty)
    assert line.enabled
    line._last = (0.0, 0)
    line._started = 0.0
    assert line.render(1.0, 500, 2) == "http:  500/1,000 requests  500/s  2 errors  1s left"
    line.draw()
    assert tty.getvalue().startswith("\rhttp:  500/1,000 requests")
