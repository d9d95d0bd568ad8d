"""launch, assert and report on a local run directory, through the CLI entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

EXPERIMENT = """
metadata: {name: checkout}
spec:
- task: record-metrics
  with:
    versions: 2
    values:
      app/latency-mean: [20, 45]
      app/error-rate: [0.0, 0.02]
      app/conversions: [10, 12]
- task: assess
  with:
    SLOs:
      upper:
      - {metric: app/latency-mean, limit: 30}
      - {metric: app/error-rate, limit: 0.01}
      lower:
      - {metric: app/conversions, limit: 5}
    rewards: {max: [app/conversions]}
- run: [echo, done]
"""


@pytest.fixture(autouse=True)
def _test_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ITER8_PLUGINS", "iter8_test_plugin")


def launch(cli, tmp_path: Path, text: str, *extra: str):
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    return cli("launch", "--local", "-f", str(path), "--run-dir", str(tmp_path / "run"), *extra)


def test_launch_runs_every_task_and_stores_the_iter8_result(cli, tmp_path: Path) -> None:
    outcome = launch(cli, tmp_path, EXPERIMENT)
    assert outcome.code == 0, outcome.err
    assert "experiment completed: 3 of 3 tasks" in outcome.out
    doc = yaml.safe_load((tmp_path / "run" / "experiment.yaml").read_text())
    assert doc["metadata"] == {"name": "checkout"}
    assert doc["spec"] == yaml.safe_load(EXPERIMENT)["spec"]
    result = doc["result"]
    assert result["numCompletedTasks"] == 3
    assert result["failure"] is False
    assert result["iter8Version"] == "v0.1"
    insights = result["insights"]
    assert insights["numVersions"] == 2
    assert insights["nonHistMetricValues"][1]["app/latency-mean"] == [45.0]
    assert insights["SLOsSatisfied"] == {"upper": [[True, False], [True, False]], "lower": [[True, True]]}
    assert insights["rewardsWinners"] == {"max": [1], "min": []}
    assert [t["status"] for t in result["tasks"]] == ["completed"] * 3
    assert result["tasks"][2]["details"]["output"] == "done\n"


def test_assert_exit_codes_follow_the_conditions(cli, tmp_path: Path) -> None:
    assert launch(cli, tmp_path, EXPERIMENT).code == 0
    run_dir = str(tmp_path / "run")
    ok = cli("assert", "--local", "--run-dir", run_dir, "-c", "completed", "-c", "nofailure")
    assert ok.code == 0
    assert "completed: satisfied" in ok.out
    slos = cli("assert", "--local", "--run-dir", run_dir, "-c", "completed,nofailure,SLOs")
    assert slos.code == 1
    assert "slos: not satisfied" in slos.out
    assert "error: assert conditions not satisfied: slos" in slos.err


def test_slos_hold_when_every_version_meets_them(cli, tmp_path: Path) -> None:
    text = EXPERIMENT.replace("limit: 30", "limit: 50").replace("limit: 0.01", "limit: 0.05")
    assert launch(cli, tmp_path, text).code == 0
    assert cli("assert", "--local", "--run-dir", str(tmp_path / "run"), "-c", "slos").code == 0


def test_a_missing_metric_value_never_satisfies_an_slo(cli, tmp_path: Path) -> None:
    text = EXPERIMENT.replace("app/latency-mean: [20, 45]", "app/latency-mean: [20, null]").replace(
        "limit: 30", "limit: 50"
    )
    assert launch(cli, tmp_path, text).code == 0
    doc = yaml.safe_load((tmp_path / "run" / "experiment.yaml").read_text())
    assert doc["result"]["insights"]["SLOsSatisfied"]["upper"][0] == [True, False]


def test_failing_task_stops_the_run_and_names_the_entry(cli, tmp_path: Path) -> None:
    text = "spec:\n- run: [sh, -c, 'echo boom; exit 3']\n- run: [echo, never]\n"
    outcome = launch(cli, tmp_path, text)
    assert outcome.code == 1
    assert "error: experiment failed: spec[0] (run): command exited with code 3: boom" in outcome.err
    result = yaml.safe_load((tmp_path / "run" / "experiment.yaml").read_text())["result"]
    assert result["failure"] is True
    assert result["numCompletedTasks"] == 0
    assert len(result["tasks"]) == 1
    run_dir = str(tmp_path / "run")
    assert cli("assert", "--local", "--run-dir", run_dir, "-c", "nofailure").code == 1
    assert cli("assert", "--local", "--run-dir", run_dir, "-c", "completed").code == 1


def test_if_skips_an_entry_but_counts_it_completed(cli, tmp_path: Path) -> None:
    text = """
spec:
- run: [echo, one]
- run: [sh, -c, 'exit 1']
  if: Result.NumCompletedTasks == 7
- run: [echo, three]
  if: "!Result.Failure && Completed() == false"
"""
    assert launch(cli, tmp_path, text).code == 0
    result = yaml.safe_load((tmp_path / "run" / "experiment.yaml").read_text())["result"]
    assert [t["status"] for t in result["tasks"]] == ["completed", "skipped", "completed"]
    assert result["numCompletedTasks"] == 3


def test_chart_values_shorthand_builds_and_runs_the_same_spec(cli, tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text("tasks: [record-metrics, assess]\nrecord-metrics:\n  values: {app/x: [3]}\n")
    run_dir = tmp_path / "run"
    outcome = cli(
        "launch", "--local", "-f", str(values), "--run-dir", str(run_dir),
        "--set", "assess.SLOs.upper.app/x=5", "--set", "assess.SLOs.lower.app/x=4",
    )  # fmt: skip
    assert outcome.code == 0, outcome.err
    doc = yaml.safe_load((run_dir / "experiment.yaml").read_text())
    assert doc["spec"][1] == {
        "task": "assess",
        "with": {"SLOs": {"upper": {"app/x": 5}, "lower": {"app/x": 4}}},  # typed as Helm types them
    }
    assert doc["result"]["insights"]["SLOsSatisfied"] == {"upper": [[True]], "lower": [[False]]}


def test_stdin_and_dry_run(cli, tmp_path: Path) -> None:
    outcome = cli(
        "launch", "--local", "-f", "-", "--dry-run", "--run-dir", str(tmp_path / "r"), stdin=EXPERIMENT
    )
    assert outcome.code == 0, outcome.err
    assert yaml.safe_load(outcome.out)["spec"] == yaml.safe_load(EXPERIMENT)["spec"]
    assert not (tmp_path / "r").exists()


def test_report_text_and_json(cli, tmp_path: Path) -> None:
    assert launch(cli, tmp_path, EXPERIMENT).code == 0
    run_dir = str(tmp_path / "run")
    text = cli("report", "--local", "--run-dir", run_dir)
    assert text.code == 0
    assert "app/latency-mean (msec) <= 30" in text.out
    assert "5 <= app/conversions (msec)" in text.out
    assert "max app/conversions" in text.out
    rows = text.out.splitlines()
    latency_row = next(r for r in rows if r.startswith("app/latency-mean (msec)") and "<=" not in r)
    assert latency_row.split()[-2:] == ["20.00", "45.00"]
    report = json.loads(cli("report", "--local", "--run-dir", run_dir, "-o", "json").out)
    assert report["apiVersion"] == "kubectl-iter8/v1"
    assert report["summary"]["status"] == "completed"
    assert report["versions"] == ["version 0", "version 1"]
    assert report["slos"]["satisfied"] is False
    assert report["slos"]["items"][0] == {
        "bound": "upper", "metric": "app/latency-mean", "limit": 30.0, "satisfied": [True, False]
    }  # fmt: skip
    assert {m["name"]: m["values"] for m in report["metrics"]}["app/error-rate"] == [0.0, 0.02]
    assert report["rewards"] == [{"direction": "max", "metric": "app/conversions", "winner": "version 1"}]


def test_assert_waits_while_running_and_returns_when_the_run_has_ended(cli, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "experiment.yaml").write_text(
        "spec: [{run: [echo]}, {run: [echo]}]\nresult: {numCompletedTasks: 1, failure: false}\n"
    )
    waited = cli("assert", "--local", "--run-dir", str(run_dir), "-c", "completed", "--timeout", "1s")
    assert waited.code == 1
    assert "still running" in waited.err
    (run_dir / "experiment.yaml").write_text(
        "spec: [{run: [echo]}, {run: [echo]}]\nresult: {numCompletedTasks: 1, failure: true}\n"
    )
    ended = cli("assert", "--local", "--run-dir", str(run_dir), "-c", "completed", "--timeout", "30s")
    assert ended.code == 1
    assert "still running" not in ended.err
