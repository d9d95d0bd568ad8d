"""Every bad input gives one-line errors naming what is wrong, a non-zero exit, and no traceback.

These run through the real kubectl binary, as a user would meet them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kubectl_iter8.conditions import CONDITIONS
from kubectl_iter8.host import Iter8Hooks

KNOWN = ", ".join(Iter8Hooks(env={"ITER8_NO_AUTOLOAD": "1"}).tasks.names())


def check(outcome, code: int, *lines: str) -> None:
    assert outcome.code == code, (outcome.code, outcome.err)
    assert "Traceback" not in outcome.err + outcome.out
    errors = [line for line in outcome.err.splitlines() if line.startswith("error: ")]
    for line in lines:
        assert f"error: {line}" in errors, outcome.err


@pytest.mark.parametrize(
    ("text", "lines"),
    [
        ("spec: [\n- run: x\n", ["-f exp.yaml: invalid YAML at line 2, column 1: did not find expected node content"]),
        ("- run: x\n", ["-f exp.yaml: expected a mapping at the top level, got list"]),
        ("metadata: {name: x}\n", ["-f exp.yaml: spec: required (a list of tasks)"]),
        ("spec: {run: x}\n", ["-f exp.yaml: spec: expected a list of tasks, got a mapping"]),
        ("spec: [{run: [echo]}]\nspecs: []\n", ["-f exp.yaml: unknown top-level key 'specs' (allowed: metadata, spec, result)"]),
        ("spec: [{task: htp}]\n", [f"spec[0]: unknown task 'htp' (known: {KNOWN})"]),
        ("spec: [{task: run, with: {cmd: [echo], timout: 3s}}]\n", ["spec[0] (run): timout: unknown field"]),
        (
            "spec: [{task: run, with: {cmd: [echo], timeout: ten seconds}}]\n",
            ["spec[0] (run): timeout: 'ten seconds' is not a duration (use e.g. 30s, 1m30s, 250ms)"],
        ),
        ("spec: [{task: run, with: {cmd: [echo], env: [a]}}]\n", ["spec[0] (run): env: input should be a valid dictionary (got ['a'])"]),
        ("spec: [{task: run}]\n", ["spec[0] (run): cmd: required field is missing"]),
        ("spec: [{task: run, with: [echo]}]\n", ["spec[0] (run): with: expected a mapping of inputs, got a list"]),
        ("spec: [{run: [echo], task: run}]\n", ["spec[0]: an entry needs exactly one of 'task:' or 'run:'"]),
        ("spec: [{run: [echo], wiht: {}}]\n", ["spec[0]: unknown key 'wiht' (allowed: task, with, run, shell, if)"]),
        ("spec: [{run: [echo], if: 'result.failure =='}]\n", ["spec[0] (run): if: invalid expression 'result.failure ==': invalid syntax"]),
        ("spec: [echo]\n", ["spec[0]: expected a mapping with 'task:' or 'run:', got a string"]),
        ("spec: [{run: [echo], shell: true}]\n",
         ["spec[0] (run): a list runs without a shell; for bash, give the script as one string (shell: is not needed)"]),
        ("spec: [{task: assess, with: {SLOs: {upper: [{metric: a/b, limit: low}]}}}]\n",
         ["spec[0] (assess): SLOs.upper[0].limit: input should be a valid number, unable to parse string as a number (got 'low')"]),
    ],
)  # fmt: skip
def test_invalid_experiments_are_refused_before_anything_runs(
    kubectl, tmp_path: Path, text: str, lines: list[str]
) -> None:
    (tmp_path / "exp.yaml").write_text(text)
    outcome = kubectl("launch", "--local", "-f", "exp.yaml")
    check(outcome, 2, *lines)
    assert not (tmp_path / "experiment.yaml").exists()


def test_every_problem_is_reported_at_once(kubectl, tmp_path: Path) -> None:
    (tmp_path / "exp.yaml").write_text(
        "spec:\n- task: nope\n- task: run\n  with: {cmd: [echo], timeout: soon, extra: 1}\n- task: assess\n"
    )
    outcome = kubectl("launch", "--local", "-f", "exp.yaml")
    check(
        outcome, 2,
        f"spec[0]: unknown task 'nope' (known: {KNOWN})",
        "spec[1] (run): timeout: 'soon' is not a duration (use e.g. 30s, 1m30s, 250ms)",
        "spec[1] (run): extra: unknown field",
    )  # fmt: skip
    assert len(outcome.err.strip().splitlines()) == 3


@pytest.mark.parametrize(
    ("args", "code", "line"),
    [
        (["launch", "--local", "-f", "missing.yaml"], 2, "-f missing.yaml: no such file"),
        (["launch", "--local", "-f", "."], 2, "-f .: is a directory, not a file"),
        (["launch", "--local"], 2, "no experiment given: use -f FILE (or -f - for standard input) and/or --set"),
        (["launch", "--local", "--set", "tasks={run}", "--set", "rnu.cmd=x"], 2,
         "unknown key 'rnu' in values (not a task, nor an Iter8 chart setting)"),
        (["launch", "--local", "--set", "tasks"], 2, "--set 'tasks': key 'tasks' has no value (expected KEY=VALUE)"),
        (["launch", "-f", "exp.yaml", "--kubeconfig", "nokube.yaml"], 2, "--kubeconfig: nokube.yaml: no such file"),
        (["launch", "-f", "exp.yaml", "-g", "Bad_Group"], 2, "-g/--group 'Bad_Group': use lower-case letters, digits and '-', "
         "starting and ending with a letter or digit, at most 40 characters"),
        (["report", "--run-dir", "empty"], 2, "--run-dir goes with --local"),
        (["launch", "--local", "--set", "tasks={run}", "--set", "run.cmd=echo", "--run-dir", "exp.yaml/sub"], 2,
         "--run-dir exp.yaml/sub: cannot create: Not a directory"),
        (["assert", "--local", "-c", "finished"], 2, f"-c/--condition: unknown condition 'finished' (use {', '.join(CONDITIONS)})"),
        (["assert", "--local", "-c", "completed", "--timeout", "soon"], 2, "--timeout: 'soon' is not a duration (use e.g. 60s, 2m)"),
        (["assert", "--local", "-c", "completed", "--run-dir", "nowhere"], 2, "--run-dir nowhere: no such directory"),
        (["report", "--local", "--run-dir", "empty"], 1, "no experiment in empty (experiment.yaml not found)"),
        (["report", "--local", "--run-dir", "corrupt"], 1, "corrupt/experiment.yaml is not a valid experiment: "
         "corrupt/experiment.yaml: spec: required (a list of tasks)"),
    ],
)  # fmt: skip
def test_bad_flags_files_and_run_dirs(kubectl, tmp_path: Path, args: list[str], code: int, line: str) -> None:
    (tmp_path / "exp.yaml").write_text("spec: [{run: [echo]}]\n")
    (tmp_path / "empty").mkdir()
    (tmp_path / "corrupt").mkdir()
    (tmp_path / "corrupt" / "experiment.yaml").write_text("result: {}\n")
    check(kubectl(*args), code, line)


def test_click_usage_errors_exit_2_without_traceback(kubectl) -> None:
    outcome = kubectl("report", "--local", "-o", "pdf")
    assert outcome.code == 2
    assert "Invalid value for '-o' / '--output'" in outcome.err
    assert "Traceback" not in outcome.err
    assert kubectl("nosuchcommand").code == 2


def test_debug_shows_the_traceback_of_an_expected_error(kubectl) -> None:
    outcome = kubectl("--debug", "launch", "--local", "-f", "missing.yaml")
    assert outcome.code == 2
    assert "Traceback" in outcome.err
    assert "error: -f missing.yaml: no such file" in outcome.err
