"""A string ``run:`` is a bash script, as in Iter8 (``/bin/bash -c``, with ``TEMP_DIR`` set); a list
is executed directly and never reaches a shell. Through the CLI, on real processes."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubectl_iter8.builtin_tasks.run import RunInputs, RunTask


def launch(cli, tmp_path: Path, spec: list[dict[str, Any]]) -> tuple[Any, dict[str, Any] | None]:
    tmp_path.mkdir(exist_ok=True)
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump({"spec": spec}))
    outcome = cli("launch", "--local", "-f", str(path), "--run-dir", str(tmp_path / "run"))
    stored = tmp_path / "run" / "experiment.yaml"
    return outcome, yaml.safe_load(stored.read_text())["result"] if stored.exists() else None


def test_the_issues_script_runs_through_bash_with_iter8s_temp_dir(cli, tmp_path: Path) -> None:
    outcome, result = launch(cli, tmp_path, [{"run": 'echo "temp is $TEMP_DIR" && ls / | head -1'}])
    assert outcome.code == 0, outcome.err
    assert result is not None
    output = result["tasks"][0]["details"]["output"].splitlines()
    assert output[0] == f"temp is {tempfile.gettempdir()}"
    assert len(output) == 2
    assert output[1] in os.listdir("/")


def test_bash_features_work_and_a_failing_script_fails_the_task(cli, tmp_path: Path) -> None:
    script = 'for i in 1 2; do echo "n=$((i * 21))"; done; [[ -n "$HOME" ]] && echo ok >&2; exit 7'
    outcome, result = launch(cli, tmp_path, [{"run": script}, {"run": ["echo", "never"]}])
    assert outcome.code == 1
    assert result is not None
    assert result["tasks"][0]["details"]["output"] == "n=21\nn=42\nok\n"
    assert result["failureMessage"] == "spec[0] (run): command exited with code 7: ok"
    assert len(result["tasks"]) == 1


def test_a_list_is_executed_directly_and_never_reaches_a_shell(cli, tmp_path: Path) -> None:
    words = ["$TEMP_DIR", "&&", "ls", "|", "head", "`id`", "$(id)", ";", "exit", "3"]
    outcome, result = launch(cli, tmp_path, [{"run": ["echo", *words]}])
    assert outcome.code == 0, outcome.err
    assert result is not None
    assert result["tasks"][0]["details"]["output"] == " ".join(words) + "\n"


def test_a_list_runs_its_program_as_argv0_not_bash(monkeypatch: pytest.MonkeyPatch) -> None:
    task = RunTask(RunInputs.model_validate({"cmd": ["printf", "%s", "a b; c"]}))
    assert task.argv() == ["printf", "%s", "a b; c"]
    script = RunTask(RunInputs.model_validate({"cmd": "echo $0"}))
    assert script.argv() == ["/bin/bash", "-c", "echo $0"]


def test_shell_is_still_accepted_and_a_list_with_shell_true_is_refused(cli, tmp_path: Path) -> None:
    outcome, result = launch(cli, tmp_path, [{"run": "echo a | tr a b", "shell": True}])
    assert outcome.code == 0, outcome.err
    assert result is not None
    assert result["tasks"][0]["details"]["output"] == "b\n"
    outcome, result = launch(cli, tmp_path / "2", [{"run": ["echo", "x"], "shell": True}])
    assert outcome.code == 2
    assert result is None
    assert outcome.err.strip().splitlines() == [
        "error: spec[0] (run): a list runs without a shell; for bash, give the script as one string "
        "(shell: is not needed)"
    ]


def test_env_and_cwd_inputs_reach_the_script(cli, tmp_path: Path) -> None:
    spec = [
        {
            "task": "run",
            "with": {"cmd": 'echo "$GREETING from $(basename "$PWD")"', "env": {"GREETING": "hi"}},
        }
    ]
    outcome, result = launch(cli, tmp_path, spec)
    assert outcome.code == 0, outcome.err
    assert result is not None
    assert result["tasks"][0]["details"]["output"] == "hi from run\n"


def test_a_timeout_kills_the_script_and_its_children(cli, tmp_path: Path) -> None:
    marker = tmp_path / "late"
    script = f"(sleep 2; touch {marker}) & sleep 20 | cat"
    started = time.monotonic()
    outcome, result = launch(cli, tmp_path, [{"task": "run", "with": {"cmd": script, "timeout": "300ms"}}])
    assert time.monotonic() - started < 5
    assert outcome.code == 1
    assert result is not None
    assert result["failureMessage"] == "spec[0] (run): command timed out after 300ms"
    time.sleep(2.5)
    assert not marker.exists()
