"""Any latency percentile resolves, in every spelling Iter8 accepted (``http/latency-p50.0``,
``grpc/latency/p97.5``, per endpoint), from the stored HDR histograms: for SLOs, ``assert`` and the
report. Iter8's own test experiment runs unmodified (but for its URL) and ends "SLOs satisfied"."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc_fixtures
import pytest
import yaml
from grpc_fixtures import Server
from hdrh.histogram import HdrHistogram

from kubectl_iter8.result import Insights, MetricInfo, parse_latency_name
from kubectl_iter8.sample_app import SampleApp, running
from kubectl_iter8.statistics import split_statistic

ITER8_TESTDATA = Path(__file__).parent / "data" / "iter8-v0.15.0-experiment.yaml"


@pytest.fixture(scope="module")
def app() -> Iterator[SampleApp]:
    with running() as server:
        yield server


def launch(cli, run_dir: Path, doc: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "exp.yaml"
    path.write_text(yaml.safe_dump(doc))
    outcome = cli("launch", "--local", "-f", str(path), "--run-dir", str(run_dir))
    return outcome, yaml.safe_load((run_dir / "experiment.yaml").read_text())["result"]


def hdr_ms(result: dict[str, Any], name: str, percent: float) -> float:
    histogram = HdrHistogram.decode(result["insights"]["histograms"][0][name])
    return round(histogram.get_value_at_percentile(percent) / 1000, 6)


def test_iter8s_own_test_experiment_ends_slos_satisfied(cli, tmp_path: Path, app: SampleApp) -> None:
    text = ITER8_TESTDATA.read_text().replace("https://httpbin.org/get", f"{app.url}/get")
    outcome, result = launch(cli, tmp_path, yaml.safe_load(text))
    assert outcome.code == 0, outcome.err
    printed = [(t["status"], t["details"].get("output")) for t in result["tasks"][2:]]
    assert printed == [("completed", "SLOs satisfied\n"), ("skipped", None)]
    assert result["insights"]["SLOsSatisfied"]["upper"] == [[True]] * 6
    checked = cli("assert", "--local", "--run-dir", str(tmp_path), "-c", "completed,nofailure,slos")
    assert checked.code == 0, checked.err

    report = json.loads(cli("report", "--local", "--run-dir", str(tmp_path), "-o", "json").out)
    metrics = {m["name"]: m for m in report["metrics"]}
    recorded = result["insights"]["nonHistMetricValues"][0]
    assert metrics["http/latency-p50.0"]["values"] == [recorded["http/latency-p50"][-1]]
    assert metrics["http/latency-p95.0"]["values"] == [recorded["http/latency-p95"][-1]]
    assert metrics["http/latency-p95.0"]["units"] == "msec"
    text_report = cli("report", "--local", "--run-dir", str(tmp_path)).out
    p95 = next(line for line in text_report.splitlines() if line.startswith("http/latency-p95.0 (msec)"))
    assert "unavailable" not in p95


def test_unlisted_percentiles_of_http_endpoints_come_from_their_histograms(
    cli, tmp_path: Path, app: SampleApp
) -> None:
    spec = [
        {
            "task": "http",
            "with": {"numRequests": 40, "qps": 0, "endpoints": {"get": {"url": f"{app.url}/get"}}},
        },
        {
            "task": "assess",
            "with": {
                "SLOs": {
                    "upper": [
                        {"metric": "http-get/latency-p97.5", "limit": 5000},
                        {"metric": "http-get/latency/p33.3", "limit": 5000},
                        {"metric": "http-get/latency-p100", "limit": 5000},
                        {"metric": "http-get/latency/mean", "limit": 5000},
                    ],
                    "lower": [{"metric": "http-get/latency-p97.5", "limit": 1e6}],
                }
            },
        },
    ]
    outcome, result = launch(cli, tmp_path, {"spec": spec})
    assert outcome.code == 0, outcome.err
    insights = result["insights"]
    assert insights["SLOsSatisfied"] == {"upper": [[True]] * 4, "lower": [[False]]}
    assert "http-get/latency-p97.5" not in insights["nonHistMetricValues"][0]
    report = json.loads(cli("report", "--local", "--run-dir", str(tmp_path), "-o", "json").out)
    metrics = {m["name"]: m["values"][0] for m in report["metrics"]}
    assert metrics["http-get/latency-p97.5"] == hdr_ms(result, "http-get/latency", 97.5)
    assert metrics["http-get/latency/p33.3"] == hdr_ms(result, "http-get/latency", 33.3)
    assert metrics["http-get/latency-p100"] == insights["nonHistMetricValues"][0]["http-get/latency-max"][-1]
    assert metrics["http-get/latency/mean"] == insights["nonHistMetricValues"][0]["http-get/latency-mean"][-1]


@pytest.fixture(scope="module")
def grpc_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    stubs = grpc_fixtures.compile_stubs(tmp_path_factory.mktemp("stubs"))
    with grpc_fixtures.running(stubs, reflection=True) as server:
        yield server


def test_grpc_sample_style_percentiles_resolve_in_any_slo(cli, tmp_path: Path, grpc_server: Server) -> None:
    spec = [
        {"task": "grpc", "with": {"host": grpc_server.host, "call": "iter8.test.Echo/Unary", "total": 40}},
        {
            "task": "assess",
            "with": {
                "SLOs": {
                    "upper": [
                        {"metric": "grpc/latency/p97.5", "limit": 5000},
                        {"metric": "grpc/latency-p12.5", "limit": 5000},
                        {"metric": "grpc/latency/p95.0", "limit": 5000},
                        {"metric": "grpc/error-rate", "limit": 0},
                    ]
                }
            },
        },
    ]
    outcome, result = launch(cli, tmp_path, {"spec": spec})
    assert outcome.code == 0, outcome.err
    assert result["insights"]["SLOsSatisfied"]["upper"] == [[True]] * 4
    report = json.loads(cli("report", "--local", "--run-dir", str(tmp_path), "-o", "json").out)
    metrics = {m["name"]: m["values"][0] for m in report["metrics"]}
    assert metrics["grpc/latency/p97.5"] == hdr_ms(result, "grpc/latency", 97.5)
    assert metrics["grpc/latency-p12.5"] == hdr_ms(result, "grpc/latency", 12.5)
    assert (
        metrics["grpc/latency/p95.0"] == result["insights"]["nonHistMetricValues"][0]["grpc/latency-p95"][-1]
    )


@pytest.mark.parametrize(
    ("name", "parsed"),
    [
        ("http/latency-p50.0", ("http", "p50", 50.0)),
        ("http/latency-p95", ("http", "p95", 95.0)),
        ("grpc/latency/p97.5", ("grpc", "p97.5", 97.5)),
        ("http-login/latency/p99.90", ("http-login", "p99.9", 99.9)),
        ("grpc/latency/p100", ("grpc", "p100", 100.0)),
        ("grpc/latency/mean", ("grpc", "mean", None)),
        ("http/latency-stddev", ("http", "stddev", None)),
        ("http/latency-p0", None),
        ("http/latency-p100.5", None),
        ("http/latency-pnan", None),
        ("http/latency-p1e2", None),
        ("http/latency-p-5", None),
        ("http/latency-p", None),
        ("http/latency", None),
        ("http/error-rate", None),
        ("a/b/latency-p50", None),
    ],
)
def test_latency_names_in_iter8s_spellings(name: str, parsed: tuple[str, str, float | None] | None) -> None:
    assert parse_latency_name(name) == parsed


@pytest.mark.parametrize(
    ("name", "split"),
    [
        ("http/latency-p95.0", ("http/latency", "p95.0")),
        ("grpc/latency/p97.5", ("grpc/latency", "p97.5")),
        ("app/score-mean", ("app/score", "mean")),
        ("http/latency-pnan", None),
        ("http/latency-pinf", None),
        ("http/latency-p0", None),
        ("http/latency-p101", None),
    ],
)
def test_split_statistic_takes_only_real_percentiles(name: str, split: tuple[str, str] | None) -> None:
    assert split_statistic(name) == split


def test_a_percentile_without_a_histogram_or_gauge_stays_unavailable() -> None:
    insights = Insights(numVersions=2)
    insights.register_metric("http/latency-p50", MetricInfo(units="msec"))
    insights.add_value(0, "http/latency-p50", 7.0)
    assert insights.scalar(0, "http/latency-p50.000") == 7.0
    assert insights.scalar(0, "http/latency-p90") is None
    assert insights.scalar(1, "http/latency-p50.0") is None
    assert insights.info("http/latency-p90") is None
    insights.set_histogram(0, "http/latency", "not an HDR histogram")
    assert insights.scalar(0, "http/latency-p90") is None
