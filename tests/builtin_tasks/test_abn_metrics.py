"""``abnmetrics`` end to end: ``launch --local`` against a real HTTP server on 127.0.0.1 that answers
``/abnValues`` as the controller does, then ``assert`` and ``report``, for the values recorded, the
verdicts of ``assess`` on them, and the one-line errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from kubectl_iter8.builtin_tasks.abn_metrics import BadAnswer, parse_values
from prom_fixtures import Reply, Request, Server, free_port

EXAMPLE = Path(__file__).parents[2] / "examples" / "abn-experiment.yaml"


def users(mean: float, n: int, seed: int, idle: int = 0) -> list[float]:
    """Per-user sales: ``n`` buyers spending around ``mean``, then ``idle`` assigned users at 0."""
    rng = np.random.default_rng(seed)
    spent = np.round(rng.gamma(4.0, mean / 4.0, n), 2)
    return [float(v) for v in spent] + [0.0] * idle


# Version 1 sells clearly more than the baseline, version 2 clearly less.
SALES = {
    "0": {"users": users(10, 200, 1, idle=20), "transactions": [4.0, 6.0, 2.5]},
    "1": {"users": users(16, 200, 2, idle=20), "transactions": [7.0, 9.5]},
    "2": {"users": users(6, 200, 3, idle=20), "transactions": [1.0]},
}
CLICKS = {"0": {"users": [1.0, 2.0], "transactions": [1.0, 1.0, 1.0]}, "1": {"users": [], "transactions": []}}
VALUES = {"application": "default/shop", "metrics": {"sales": SALES, "clicks": CLICKS}}


def controller(request: Request) -> Reply:
    """``/abnValues`` as the controller answers it, for application default/shop only."""
    if request.path != "/abnValues":
        return Reply(404, "not found\n", {"Content-Type": "text/plain"})
    namespace = request.query.get("namespace", [""])[0]
    application = request.query.get("application", [""])[0]
    if not application:
        return Reply(400, {"error": "the query parameter application is required"})
    if (namespace, application) != ("default", "shop"):
        return Reply(404, {"error": f"application '{namespace}/{application}' not found"})
    return Reply(200, VALUES)


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with Server(controller) as running:
        yield running


def launch(cli, tmp_path: Path, spec: list[dict[str, Any]], *extra: str):
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump({"metadata": {"name": "abn"}, "spec": spec}))
    outcome = cli("launch", "--local", "-f", str(path), "--run-dir", str(tmp_path / "run"), *extra)
    stored = tmp_path / "run" / "experiment.yaml"
    doc = yaml.safe_load(stored.read_text()) if stored.exists() else {}
    return outcome, doc.get("result", {})


def abn(server: Server, **inputs: Any) -> dict[str, Any]:
    return {"task": "abnmetrics", "with": {"application": "shop", "endpoint": server.url, **inputs}}


def values(result: dict[str, Any], version: int) -> dict[str, list[float]]:
    return result["insights"]["nonHistMetricValues"][version]


def test_values_per_user_are_recorded_and_the_versions_compared(cli, tmp_path: Path, server: Server) -> None:
    assess = {
        "task": "assess",
        "with": {
            "SLOs": {
                "lower": [
                    {"metric": "abn/sales/mean", "limit": 8},
                    {"metric": "abn/sales/count", "limit": 100},
                ]
            },
            "compare": [
                {"metric": "abn/sales", "better": "higher"},
                {"metric": "abn/sales/mean", "better": "higher"},
                {"metric": "abn/sales-p50", "better": "higher"},
            ],
        },
    }
    outcome, result = launch(cli, tmp_path, [abn(server, metrics=["sales"]), assess])
    assert outcome.code == 0, outcome.err
    insights = result["insights"]
    assert insights["numVersions"] == 3
    for version in range(3):
        recorded = values(result, version)
        expected = SALES[str(version)]["users"]
        assert recorded["abn/sales"] == expected
        assert recorded["abn/sales/count"] == [220.0]
        assert recorded["abn/sales/mean"] == [pytest.approx(np.mean(expected))]
        assert recorded["abn/sales/stddev"] == [pytest.approx(np.std(expected, ddof=1))]
        assert (recorded["abn/sales/min"], recorded["abn/sales/max"]) == ([0.0], [max(expected)])
        assert "abn/clicks" not in recorded  # not asked for
    assert insights["metricsInfo"]["abn/sales"] == {"description": "sales per user (A/B/n)", "type": "Sample"}
    assert insights["metricsInfo"]["abn/sales/count"]["type"] == "Gauge"
    # The request names the application as the controller reads it: a bare name is in "default".
    assert server.requests[-1].query == {"namespace": ["default"], "application": ["shop"]}
    assert result["tasks"][0]["details"] == {
        "application": "default/shop",
        "over": "users",
        "observations": {"abn/sales": [220, 220, 220]},
    }

    verdicts = {
        (c["metric"], c["version"]): (c["method"], c["verdict"]) for c in insights["comparisons"]["items"]
    }
    assert verdicts == {
        ("abn/sales", 1): ("mann-whitney", "pass"),
        ("abn/sales", 2): ("mann-whitney", "fail"),
        ("abn/sales/mean", 1): ("welch", "pass"),
        ("abn/sales/mean", 2): ("welch", "fail"),
        ("abn/sales-p50", 1): ("bootstrap", "pass"),
        ("abn/sales-p50", 2): ("bootstrap", "fail"),
    }
    # Version 2's mean (about 6) is below the SLO limit of 8; all have 220 users.
    assert insights["SLOsSatisfied"]["lower"] == [[True, True, False], [True, True, True]]

    run = str(tmp_path / "run")
    assert cli("assert", "--local", "--run-dir", run, "-c", "completed,nofailure").code == 0
    failed = cli("assert", "--local", "--run-dir", run, "-c", "slos,noregression")
    assert failed.code == 1
    assert "slos: not satisfied" in failed.out
    assert "noregression: not satisfied" in failed.out
    report = json.loads(cli("report", "--local", "--run-dir", run, "-o", "json").out)
    assert report["versions"] == ["version 0", "version 1", "version 2"]
    assert report["slos"]["satisfied"] is False
    counts = next(m for m in report["metrics"] if m["name"] == "abn/sales/count")
    assert counts["values"] == [220.0, 220.0, 220.0]
    mann_whitney = next(
        c for c in report["comparisons"]["items"] if c["metric"] == "abn/sales" and c["version"] == 1
    )
    assert mann_whitney["baselineN"] == mann_whitney["candidateN"] == 220
    assert mann_whitney["better"] == "higher"
    assert report["comparisons"]["noRegression"] is False


def test_the_example_experiment_runs_against_the_controller(cli, tmp_path: Path, server: Server) -> None:
    doc = yaml.safe_load(EXAMPLE.read_text())
    doc["spec"][0]["with"]["application"] = "default/shop"
    path = tmp_path / "abn.yaml"
    path.write_text(yaml.safe_dump(doc))
    run = str(tmp_path / "run")
    outcome = cli(
        "launch", "--local", "-f", str(path), "--run-dir", run, "--set", f"spec[0].with.endpoint={server.url}"
    )
    assert outcome.code == 0, outcome.err
    # Version 2 earns less than the baseline; version 1 more.
    report = json.loads(cli("report", "--local", "--run-dir", run, "-o", "json").out)
    assert {(c["metric"], c["versionLabel"], c["verdict"]) for c in report["comparisons"]["items"]} == {
        ("abn/sales", "version 1", "pass"),
        ("abn/sales", "version 2", "fail"),
        ("abn/sales/mean", "version 1", "pass"),
        ("abn/sales/mean", "version 2", "fail"),
    }
    assert [item["satisfied"] for item in report["slos"]["items"]] == [[True, True, True], [True, True, True]]
    assert cli("assert", "--local", "--run-dir", run, "-c", "completed,nofailure,slos").code == 0
    assert cli("assert", "--local", "--run-dir", run, "-c", "noregression").code == 1


def test_iter8_chart_values_shorthand(cli, tmp_path: Path, server: Server) -> None:
    run = str(tmp_path / "run")
    outcome = cli(
        "launch", "--local", "--run-dir", run,
        "--set", "tasks={abnmetrics,assess}",
        "--set", "abnmetrics.application=default/shop",
        "--set", f"abnmetrics.endpoint={server.url}",
        "--set", "assess.SLOs.upper.abn/clicks/count=5",
    )  # fmt: skip
    assert outcome.code == 0, outcome.err
    assert cli("assert", "--local", "--run-dir", run, "-c", "completed,nofailure,slos").code == 0


def test_over_transactions_missing_metrics_and_versions_without_values(
    cli, tmp_path: Path, server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    outcome, result = launch(
        cli, tmp_path, [abn(server, over="transactions", metrics=["clicks", "refunds"], versions=3)]
    )
    assert outcome.code == 0, outcome.err
    assert result["insights"]["numVersions"] == 3
    assert values(result, 0) == {
        "abn/clicks": [1.0, 1.0, 1.0],
        "abn/clicks/count": [3.0],
        "abn/clicks/mean": [1.0],
        "abn/clicks/stddev": [0.0],
        "abn/clicks/min": [1.0],
        "abn/clicks/max": [1.0],
    }
    # No values: a count of 0, the rest missing (never 0).
    assert values(result, 1) == values(result, 2) == {"abn/clicks/count": [0.0]}
    assert result["insights"]["metricsInfo"]["abn/clicks"]["description"] == "clicks per transaction (A/B/n)"
    reason = "the controller has no values of 'refunds' for application default/shop"
    assert result["tasks"][0]["details"]["missing"] == [{"metric": "abn/refunds", "reason": reason}]
    assert f"abn/refunds: missing: {reason}" in caplog.text
    report = json.loads(cli("report", "--local", "--run-dir", str(tmp_path / "run"), "-o", "json").out)
    assert report["missingMetrics"] == [
        {"metric": "abn/refunds", "version": None, "reason": reason, "task": 0}
    ]
    assert next(m for m in report["metrics"] if m["name"] == "abn/clicks/mean")["values"] == [1.0, None, None]


def test_fewer_versions_than_the_data_ignores_the_rest(cli, tmp_path: Path, server: Server) -> None:
    outcome, result = launch(cli, tmp_path, [abn(server, versions=2)])
    assert outcome.code == 0, outcome.err
    assert result["insights"]["numVersions"] == 2
    assert len(result["insights"]["nonHistMetricValues"]) == 2
    details = result["tasks"][0]["details"]
    assert details["ignoredVersions"] == [2]
    assert details["observations"] == {"abn/clicks": [2, 0], "abn/sales": [220, 220]}


def test_a_second_read_replaces_the_samples_and_adds_a_value_to_the_gauges(
    cli, tmp_path: Path, server: Server
) -> None:
    # What a scheduled experiment does every loop: the controller answers with every value so far.
    outcome, result = launch(
        cli, tmp_path, [abn(server, metrics=["clicks"]), abn(server, metrics=["clicks"])]
    )
    assert outcome.code == 0, outcome.err
    assert values(result, 0)["abn/clicks"] == [1.0, 2.0]
    assert values(result, 0)["abn/clicks/count"] == [2.0, 2.0]


def test_the_version_count_of_earlier_tasks_is_kept(
    cli, tmp_path: Path, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ITER8_PLUGINS", "iter8_test_plugin")
    record = {"task": "record-metrics", "with": {"versions": 4, "values": {"app/x": [1, 2, 3, 4]}}}
    outcome, result = launch(cli, tmp_path, [record, abn(server, metrics=["clicks"])])
    assert outcome.code == 0, outcome.err
    assert result["insights"]["numVersions"] == 4
    assert result["tasks"][1]["details"]["observations"] == {"abn/clicks": [2, 0, 0, 0]}


def failure(cli, tmp_path: Path, step: dict[str, Any]) -> tuple[str, str]:
    """The stored failure message and the CLI's stderr of a run whose only task fails."""
    outcome, result = launch(cli, tmp_path, [step])
    assert outcome.code == 1
    assert "Traceback" not in outcome.err
    return result["failureMessage"], outcome.err


def test_an_unknown_application_fails_with_one_line(cli, tmp_path: Path, server: Server) -> None:
    step = {"task": "abnmetrics", "with": {"application": "store/cart", "endpoint": server.url + "/"}}
    message, err = failure(cli, tmp_path, step)
    assert message == (
        f"spec[0] (abnmetrics): {server.url}/abnValues (application store/cart): "
        "unknown application: application 'store/cart' not found"
    )
    stored = tmp_path / "run" / "experiment.yaml"
    assert err.splitlines() == [f"error: experiment failed: {message} (result in {stored})"]


def test_an_unreachable_controller_fails_with_one_line(cli, tmp_path: Path) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    message, _ = failure(
        cli, tmp_path, {"task": "abnmetrics", "with": {"application": "shop", "endpoint": endpoint}}
    )
    prefix = f"spec[0] (abnmetrics): {endpoint}/abnValues (application default/shop): cannot reach the controller: "
    assert message.startswith(prefix)
    assert "\n" not in message
    assert len(message) > len(prefix)


@pytest.mark.parametrize(
    ("reply", "problem"),
    [
        (Reply(200, "<html>hello</html>"), "unexpected answer: not JSON"),
        (Reply(200, {"metrics": []}), "unexpected answer: expected an object with a 'metrics' object"),
        (
            Reply(200, {"metrics": {"sales": {"v1": {"users": [1]}}}}),
            "unexpected answer: metrics.sales.v1: 'v1' is not a version number",
        ),
        (
            Reply(200, {"metrics": {"sales": {"0": {"transactions": [1]}}}}),
            "unexpected answer: metrics.sales.0: expected an object with a 'users' list",
        ),
        (
            Reply(200, {"metrics": {"sales": {"0": {"users": [1, "2"]}}}}),
            "unexpected answer: metrics.sales.0.users[1]: '2' is not a finite number",
        ),
        (
            Reply(404, "not found\n", {"Content-Type": "text/plain"}),
            "HTTP 404: no A/B/n values endpoint there",
        ),
        (Reply(400, {"error": "no application provided ('/')"}), "HTTP 400: no application provided ('/')"),
        (Reply(503, {"error": "store unavailable\nretry later"}), "HTTP 503: store unavailable"),
        (Reply(502, "bad gateway"), "HTTP 502"),
        (Reply(200, {"metrics": {}}, delay=1.0), "no answer within 200ms"),
    ],
)
def test_bad_answers_fail_with_one_line_naming_endpoint_and_application(
    cli, tmp_path: Path, reply: Reply, problem: str
) -> None:
    with Server(lambda _: reply) as broken:
        step = {
            "task": "abnmetrics",
            "with": {"application": "shop", "endpoint": broken.url, "timeout": "200ms"},
        }
        message, _ = failure(cli, tmp_path, step)
    assert message == f"spec[0] (abnmetrics): {broken.url}/abnValues (application default/shop): {problem}"


def test_no_metrics_yet_records_nothing(cli, tmp_path: Path) -> None:
    with Server(lambda _: Reply(200, {"application": "default/shop", "metrics": {}})) as empty:
        outcome, result = launch(
            cli, tmp_path, [{"task": "abnmetrics", "with": {"application": "shop", "endpoint": empty.url}}]
        )
    assert outcome.code == 0, outcome.err
    assert result["insights"]["numVersions"] == 1
    assert result["insights"].get("metricsInfo", {}) == {}
    assert result["tasks"][0]["details"]["observations"] == {}


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({}, "application: required field is missing"),
        ({"application": "shop", "endpont": "http://x"}, "endpont: unknown field"),
        (
            {"application": "a/b/c"},
            "application: give 'namespace/name' or 'name' of a routemap (got 'a/b/c')",
        ),
        ({"application": "Shop"}, "application: give 'namespace/name' or 'name' of a routemap (got 'Shop')"),
        (
            {"application": "shop", "endpoint": "iter8-abn:50051"},
            "endpoint: give the controller's HTTP URL, such as http://iter8-controller.iter8-system:8080 (got 'iter8-abn:50051')",
        ),
        (
            {"application": "shop", "over": "sessions"},
            "over: input should be 'users' or 'transactions' (got 'sessions')",
        ),
        (
            {"application": "shop", "metrics": []},
            "metrics: list should have at least 1 item after validation, not 0 (got [])",
        ),
        ({"application": "shop", "metrics": [" "]}, "metrics: metric names cannot be empty"),
        (
            {"application": "shop", "versions": 0},
            "versions: input should be greater than or equal to 1 (got 0)",
        ),
        (
            {"application": "shop", "timeout": "soon"},
            "timeout: 'soon' is not a duration (use e.g. 30s, 1m30s, 250ms)",
        ),
    ],
)
def test_bad_inputs_are_one_line_errors_naming_the_field(cli, tmp_path: Path, inputs, message: str) -> None:
    outcome, _ = launch(cli, tmp_path, [{"task": "abnmetrics", "with": inputs}])
    assert outcome.code == 2
    assert f"error: spec[0] (abnmetrics): {message}" in outcome.err.splitlines()


def test_parse_values_reads_the_chosen_side() -> None:
    document = {
        "metrics": {
            "m": {"0": {"users": [1, 2.5], "transactions": [1]}, "3": {"users": [], "transactions": []}}
        }
    }
    assert parse_values(document, "users") == {"m": {0: [1.0, 2.5], 3: []}}
    assert parse_values(document, "transactions") == {"m": {0: [1.0], 3: []}}
    with pytest.raises(BadAnswer, match=r"metrics\.m\.0\.users\[0\]: True is not a finite number"):
        parse_values({"metrics": {"m": {"0": {"users": [True]}}}}, "users")
    with pytest.raises(BadAnswer, match="metrics.m.99999: version numbers stop at 999"):
        parse_values({"metrics": {"m": {"99999": {"users": []}}}}, "users")


def test_slos_on_confidence_bounds_of_the_samples(cli, tmp_path: Path, server: Server) -> None:
    assess = {
        "task": "assess",
        "with": {
            "judgeOn": "bound",
            "SLOs": {
                "lower": [{"metric": "abn/sales/mean", "limit": 8.5}, {"metric": "abn/sales/p50", "limit": 5}]
            },
        },
    }
    outcome, result = launch(cli, tmp_path, [abn(server, metrics=["sales"]), assess])
    assert outcome.code == 0, outcome.err
    verdicts = result["insights"]["SLOVerdicts"]["lower"]
    mean = verdicts[0][0]
    assert (mean["basis"], mean["method"], mean["side"], mean["n"]) == ("bound", "student t", "lower", 220)
    # Version 0's mean is about 8.8, but its lower 95% bound is below 8.5: not satisfied on the bound.
    assert mean["value"] > 8.5 > mean["bound"]
    assert result["insights"]["SLOsSatisfied"]["lower"][0] == [False, True, False]
    p50 = verdicts[1][1]
    assert (p50["basis"], p50["method"], p50["statistic"]) == (
        "bound",
        "order statistic (binomial ranks)",
        "p50",
    )
