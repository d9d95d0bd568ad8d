"""``assess`` end to end: SLOs on values and on confidence bounds, comparisons with the baseline, and
the ``noregression`` condition, through ``launch``/``assert``/``report`` on seeded synthetic data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hdrh.histogram import HdrHistogram

from kubectl_iter8 import statistics as st
from kubectl_iter8.result import Result


@pytest.fixture(autouse=True)
def _test_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ITER8_PLUGINS", "iter8_test_plugin,iter8_samples_plugin")


def latency(median: float, n: int, seed: int, sigma: float = 0.3) -> dict[str, Any]:
    return {"median": median, "sigma": sigma, "n": n, "seed": seed}


SAMPLES = {
    "task": "record-samples",
    "with": {
        "versions": 3,
        "histograms": {"http/latency": [latency(20, 800, 1), latency(20, 800, 2), latency(30, 800, 3)]},
        "counts": {
            "http": [
                {"requests": 2000, "errors": 4},
                {"requests": 2000, "errors": 3},
                {"requests": 2000, "errors": 90},
            ]
        },
    },
}


def launch(cli, tmp_path: Path, spec: list[dict[str, Any]]):
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump({"metadata": {"name": "canary"}, "spec": spec}))
    outcome = cli("launch", "--local", "-f", str(path), "--run-dir", str(tmp_path / "run"))
    stored = tmp_path / "run" / "experiment.yaml"
    doc = yaml.safe_load(stored.read_text()) if stored.exists() else {}
    return outcome, doc.get("result", {})


def test_candidates_are_judged_against_the_baseline_with_the_numbers_kept(cli, tmp_path: Path) -> None:
    assess = {"task": "assess", "with": {"compare": ["http/latency", "http/latency-p95", "http/error-rate"]}}
    outcome, result = launch(cli, tmp_path, [SAMPLES, assess])
    assert outcome.code == 0, outcome.err
    comparisons = result["insights"]["comparisons"]
    assert comparisons["baseline"] == 0
    verdicts = {(c["metric"], c["version"]): (c["method"], c["verdict"]) for c in comparisons["items"]}
    assert verdicts == {
        ("http/latency", 1): ("mann-whitney", "pass"),
        ("http/latency", 2): ("mann-whitney", "fail"),
        ("http/latency-p95", 1): ("bootstrap", "pass"),
        ("http/latency-p95", 2): ("bootstrap", "fail"),
        ("http/error-rate", 1): ("beta-binomial", "pass"),
        ("http/error-rate", 2): ("beta-binomial", "fail"),
    }
    p95 = next(c for c in comparisons["items"] if c["metric"] == "http/latency-p95" and c["version"] == 2)
    # The numbers behind the verdict, in milliseconds (the histogram is kept in microseconds).
    assert p95["statistic"] == "p95"
    assert 30 < p95["baselineValue"] < 40 < p95["candidateValue"] < 60
    assert p95["interval"][0] > p95["margin"] > 0
    assert p95["confidence"] == 0.95
    assert p95["baselineN"] == p95["candidateN"] == 800
    assert result["tasks"][1]["details"] == {"comparisons": {"pass": 3, "fail": 3, "inconclusive": 0}}
    run = str(tmp_path / "run")
    failed = cli("assert", "--local", "--run-dir", run, "-c", "completed,noregression")
    assert failed.code == 1
    assert "noregression: not satisfied" in failed.out
    report = json.loads(cli("report", "--local", "--run-dir", run, "-o", "json").out)
    assert report["comparisons"]["noRegression"] is False
    assert report["comparisons"]["baseline"] == "version 0"
    assert {(c["versionLabel"], c["verdict"]) for c in report["comparisons"]["items"]} == {
        ("version 1", "pass"),
        ("version 2", "fail"),
    }
    text = cli("report", "--local", "--run-dir", run).out
    assert "Compared with baseline" in text
    assert "version 2 vs version 0  fail" in text


def test_noregression_holds_when_no_version_is_worse(cli, tmp_path: Path) -> None:
    samples = json.loads(json.dumps(SAMPLES))
    samples["with"].update(versions=2, counts={})
    samples["with"]["histograms"]["http/latency"].pop()
    assess = {
        "task": "assess",
        "with": {"compare": [{"metric": "http/latency", "margin": "5%"}], "baseline": 1},
    }
    outcome, result = launch(cli, tmp_path, [samples, assess])
    assert outcome.code == 0, outcome.err
    [item] = result["insights"]["comparisons"]["items"]
    assert (item["baseline"], item["version"], item["verdict"]) == (1, 0, "pass")
    ok = cli("assert", "--local", "--run-dir", str(tmp_path / "run"), "-c", "noregression,slos")
    assert ok.code == 0, ok.err


def test_too_few_samples_are_inconclusive_which_is_not_a_regression(cli, tmp_path: Path) -> None:
    samples = {
        "task": "record-samples",
        "with": {"versions": 2, "histograms": {"http/latency": [latency(20, 500, 1), latency(40, 12, 2)]}},
    }
    assess = {"task": "assess", "with": {"compare": ["http/latency-mean"], "minSamples": 20}}
    outcome, result = launch(cli, tmp_path, [samples, assess])
    assert outcome.code == 0, outcome.err
    [item] = result["insights"]["comparisons"]["items"]
    assert item["method"] == "welch"
    assert item["verdict"] == "inconclusive"
    assert item["reason"] == "too few observations (baseline 500, candidate 12; at least 20 each needed)"
    assert cli("assert", "--local", "--run-dir", str(tmp_path / "run"), "-c", "noregression").code == 0


def test_slos_on_confidence_bounds(cli, tmp_path: Path) -> None:
    samples = {
        "task": "record-samples",
        "with": {
            "versions": 2,
            # Both medians are 20 ms; version 1 has few observations, so its p90 is uncertain.
            "histograms": {"http/latency": [latency(20, 3000, 1), latency(20, 40, 2)]},
            "counts": {"http": [{"requests": 1000, "errors": 5}, {"requests": 100, "errors": 0}]},
        },
    }
    record = {"task": "record-metrics", "with": {"versions": 2, "values": {"app/score": [3, 4]}}}
    assess = {
        "task": "assess",
        "with": {
            "judgeOn": "bound",
            "minSamples": 30,
            "SLOs": {
                "upper": [
                    {"metric": "http/latency-p90", "limit": 30},
                    {"metric": "http/error-rate", "limit": 0.02},
                    {"metric": "http/latency-p90", "limit": 30, "judgeOn": "value"},
                ],
                "lower": [{"metric": "app/score", "limit": 3}],
            },
        },
    }
    outcome, result = launch(cli, tmp_path, [samples, record, assess])
    assert outcome.code == 0, outcome.err
    insights = result["insights"]
    # Version 1: 0 errors in 100 requests is a point value of 0 but an upper bound near 3 % > 2 %.
    assert insights["SLOsSatisfied"]["upper"][1] == [True, False]
    assert insights["SLOsSatisfied"]["upper"][2] == [True, True]  # on the point value
    assert insights["SLOsSatisfied"]["lower"] == [[True, True]]
    p90 = insights["SLOVerdicts"]["upper"][0][0]
    assert p90["basis"] == "bound"
    assert p90["method"] == "order statistic (binomial ranks)"
    assert p90["side"] == "upper"
    assert p90["n"] == 3000
    assert p90["estimate"] <= p90["bound"] < 30
    rate = insights["SLOVerdicts"]["upper"][1][1]
    assert rate["method"] == "clopper-pearson"
    assert rate["value"] == 0.0
    assert rate["bound"] == pytest.approx(1 - 0.05 ** (1 / 100))
    score = insights["SLOVerdicts"]["lower"][0][0]
    assert score == {
        "basis": "value",
        "value": 3.0,
        "note": "no observations behind this metric: judged on its value",
        "satisfied": True,
    }
    report = json.loads(cli("report", "--local", "--run-dir", str(tmp_path / "run"), "-o", "json").out)
    item = report["slos"]["items"][1]
    assert item["verdicts"][1]["bound"] == pytest.approx(rate["bound"])
    assert "verdicts" not in report["slos"]["items"][2]  # judged on values only: Iter8's shape


def test_the_minimum_sample_guard_applies_to_bounds(cli, tmp_path: Path) -> None:
    samples = {
        "task": "record-samples",
        "with": {"versions": 1, "histograms": {"http/latency": [latency(20, 25, 1)]}},
    }
    assess = {
        "task": "assess",
        "with": {"judgeOn": "bound", "SLOs": {"upper": [{"metric": "http/latency-mean", "limit": 1000}]}},
    }
    outcome, result = launch(cli, tmp_path, [samples, assess])
    assert outcome.code == 0, outcome.err
    cell = result["insights"]["SLOVerdicts"]["upper"][0][0]
    assert cell["satisfied"] is False
    assert cell["reason"] == "too few observations (25 < minSamples 30)"


def test_a_missing_value_fails_and_rewards_pick_a_winner(cli, tmp_path: Path) -> None:
    record = {"task": "record-metrics", "with": {"versions": 3, "values": {"app/x": [1, None, 3]}}}
    assess = {
        "task": "assess",
        "with": {"SLOs": {"upper": {"app/x": 5}}, "rewards": {"min": "app/x", "max": ["app/x"]}},
    }
    outcome, result = launch(cli, tmp_path, [record, assess])
    assert outcome.code == 0, outcome.err
    assert result["insights"]["SLOsSatisfied"]["upper"] == [[True, False, True]]
    assert result["insights"]["rewardsWinners"] == {"max": [2], "min": [0]}
    assert result["insights"]["SLOVerdicts"]["upper"][0][1] == {
        "basis": "value",
        "value": None,
        "satisfied": False,
        "reason": "no value",
    }


def test_a_baseline_that_does_not_exist_fails_the_task(cli, tmp_path: Path) -> None:
    record = {"task": "record-metrics", "with": {"versions": 2, "values": {"app/x": [1, 2]}}}
    outcome, result = launch(
        cli, tmp_path, [record, {"task": "assess", "with": {"compare": "app/x", "baseline": 2}}]
    )
    assert outcome.code == 1
    assert (
        result["failureMessage"]
        == "spec[1] (assess): baseline: version 2 does not exist (the experiment has 2)"
    )


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"judgeOn": "median"}, "judgeOn: input should be 'value' or 'bound' (got 'median')"),
        ({"confidence": 1.5}, "confidence: input should be less than 1 (got 1.5)"),
        ({"minSamples": 0}, "minSamples: input should be greater than or equal to 1 (got 0)"),
        (
            {"compare": [{"metric": "app/x", "test": "t-test"}]},
            "compare[0].test: input should be 'mann-whitney', 'bootstrap', 'welch' or 'beta-binomial' (got 't-test')",
        ),
        (
            {"compare": [{"metric": "app/x", "test": "beta-binomial"}]},
            "compare[0]: test beta-binomial needs an error-rate metric ('<prefix>/error-rate'), got 'app/x'",
        ),
        (
            {"compare": [{"metric": "app/x", "margin": "lots"}]},
            "compare[0].margin: 'lots' is not a margin (use a number, or a percentage such as '10%')",
        ),
        ({"compare": [{"metric": "app/x", "margin": -1}]}, "compare[0].margin: a margin cannot be negative"),
        (
            {"compare": [{"metric": "app/x", "percentile": 100}]},
            "compare[0].percentile: input should be less than 100 (got 100)",
        ),
        (
            {"SLOs": {"upper": [{"metric": "a/b", "limit": 1, "judgeOn": "mean"}]}},
            "SLOs.upper[0].judgeOn: input should be 'value' or 'bound' (got 'mean')",
        ),
    ],
)
def test_bad_inputs_are_one_line_errors_naming_the_field(cli, tmp_path: Path, inputs, message: str) -> None:
    outcome, _ = launch(cli, tmp_path, [{"task": "assess", "with": inputs}])
    assert outcome.code == 2
    assert f"error: spec[0] (assess): {message}" in outcome.err.splitlines()


def test_latency_histograms_of_the_http_task_record_are_used_for_version_0() -> None:
    histogram = HdrHistogram(1, 3_600_000_000, 3)
    for value in range(1000, 51000, 1000):
        histogram.record_value(value)
    result = Result.model_validate(
        {
            "tasks": [
                {
                    "task": "http",
                    "status": "completed",
                    "details": {"warmup": True, "endpoints": {"http": {"latencyHistogram": "x"}}},
                },
                {
                    "task": "http",
                    "status": "completed",
                    "details": {
                        "endpoints": {
                            "http-cart": {
                                "latencyHistogram": histogram.encode().decode(),
                                "histogramUnits": "usec",
                            }
                        }
                    },
                },
            ],
            "insights": {"numVersions": 1},
        }
    )
    source = st.sample_source(result, 0, "http-cart/latency")
    assert source is not None
    assert (source.units, source.origin, source.samples.n) == ("msec", "histogram", 50)
    assert source.samples.percentile(50) == pytest.approx(25.0, rel=1e-3)
    assert st.sample_source(result, 0, "http/latency") is None  # the warm-up's record is ignored
