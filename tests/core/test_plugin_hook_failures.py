"""A plugin whose event hook raises fails the experiment (hookspecs.py): the failure is recorded and
saved, attributed to the plugin, with an end time, and the CLI exits 1 with one line, no traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

PLUGIN = """\
import os

from kubectl_iter8 import hookimpl


@hookimpl
def {hook}({args}):
    if os.environ.get("BOOM_AT", "") in ("", str({index})):
        raise RuntimeError("observer broke " + "x" * 1000)
"""


def write_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hook: str, args: str, index: str) -> None:
    # One module per hook: the in-process CLI keeps imported plugin modules between tests.
    module = f"boom_{hook}"
    (tmp_path / f"{module}.py").write_text(PLUGIN.format(hook=hook, args=args, index=index))
    monkeypatch.syspath_prepend(str(tmp_path))
    events = tmp_path / "events.jsonl"
    monkeypatch.setenv("ITER8_PLUGINS", f"iter8_test_observer,{module}")
    monkeypatch.setenv("ITER8_TEST_EVENTS", str(events))


def launch(cli, tmp_path: Path):
    (tmp_path / "exp.yaml").write_text("spec:\n- run: [echo, one]\n- run: [echo, two]\n")
    run = tmp_path / "run"
    outcome = cli("launch", "--local", "-f", str(tmp_path / "exp.yaml"), "--run-dir", str(run))
    result = yaml.safe_load((run / "experiment.yaml").read_text())["result"]
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    return outcome, result, events


def check_one_line(outcome, message: str) -> None:
    assert outcome.code == 1, outcome.err
    assert "Traceback" not in outcome.err + outcome.out
    errors = [line for line in outcome.err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, outcome.err
    assert message in errors[0], outcome.err
    assert len(errors[0]) < 500


def test_a_raising_task_finished_hook_fails_the_experiment_and_is_saved(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_plugin(tmp_path, monkeypatch, "iter8_task_finished", "index", "index")
    monkeypatch.setenv("BOOM_AT", "0")
    outcome, result, events = launch(cli, tmp_path)
    expected = "spec[0] (run): plugin 'boom_iter8_task_finished': iter8_task_finished raised RuntimeError: observer broke xxx"
    check_one_line(outcome, expected)
    assert result["failure"] is True
    assert result["failureMessage"].startswith(expected)
    assert len(result["failureMessage"]) < 300
    assert result["endTime"]
    assert result["numCompletedTasks"] == 1
    assert [t["status"] for t in result["tasks"]] == ["completed"]
    # The second task never ran; the other observers still saw the end, as failed.
    assert events[-1] == {"event": "finished", "failure": True}
    assert {"event": "task", "index": 1, "status": "completed"} not in events


def test_a_raising_experiment_started_hook_runs_no_task(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_plugin(tmp_path, monkeypatch, "iter8_experiment_started", "experiment", "0")
    outcome, result, events = launch(cli, tmp_path)
    check_one_line(
        outcome, "plugin 'boom_iter8_experiment_started': iter8_experiment_started raised RuntimeError"
    )
    assert (result["failure"], result["numCompletedTasks"], result.get("tasks") or []) == (True, 0, [])
    assert result["endTime"]
    assert events[-1] == {"event": "finished", "failure": True}


def test_a_raising_experiment_finished_hook_fails_a_completed_run(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_plugin(tmp_path, monkeypatch, "iter8_experiment_finished", "experiment", "0")
    outcome, result, _ = launch(cli, tmp_path)
    check_one_line(
        outcome, "plugin 'boom_iter8_experiment_finished': iter8_experiment_finished raised RuntimeError"
    )
    assert (result["failure"], result["numCompletedTasks"]) == (True, 2)
    assert result["failureMessage"].startswith(
        "plugin 'boom_iter8_experiment_finished': iter8_experiment_finished raised"
    )
