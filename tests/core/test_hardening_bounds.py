"""Bounded work: ``if:`` expressions, ``--set`` indexes and ``workers`` cannot make a small input
take gigabytes or crash; each is a one-line usage error (exit 2) quoting at most a short excerpt."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kubectl_iter8.expressions import MAX_SIZE, Expression, ExpressionError


def check_usage_error(outcome, line: str) -> None:
    assert outcome.code == 2, (outcome.code, outcome.err[-2000:])
    assert "Traceback" not in outcome.err + outcome.out
    errors = [text for text in outcome.err.splitlines() if text.startswith("error: ")]
    assert any(line in text for text in errors), outcome.err[-2000:]
    assert all(len(text) < 400 for text in errors)


def launch(cli, tmp_path: Path, text: str):
    (tmp_path / "exp.yaml").write_text(text)
    return cli("launch", "--local", "-f", str(tmp_path / "exp.yaml"), "--run-dir", str(tmp_path / "run"))


def laughs(levels: int) -> str:
    """A flow mapping whose last key holds 10**levels leaves behind ``levels`` levels of aliases."""
    parts = ["a0: &a0 [v]"] + [
        f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, levels + 1)
    ]
    return "{" + ", ".join(parts) + "}"


def test_an_if_made_of_aliases_is_refused_without_rendering_it(cli, tmp_path: Path) -> None:
    outcome = launch(cli, tmp_path, f"spec:\n- run: [echo, hi]\n  if: {laughs(3)}\n")
    check_usage_error(outcome, "spec[0] (run): if: expected an expression (a string), got a mapping")


def test_an_experiment_of_nested_aliases_is_refused_before_it_is_expanded(cli, tmp_path: Path) -> None:
    # 600 bytes that expand to a million leaves: 350 MB of error message and 2 GB before the fix.
    text = f"spec:\n- run: [echo, hi]\n  with: {laughs(6)}\n"
    assert len(text) < 700
    outcome = launch(cli, tmp_path, text)
    check_usage_error(outcome, "invalid YAML: YAML expands to more than 200000 nodes (aliases)")
    assert len(outcome.err) < 1000
    assert not (tmp_path / "run").exists()


def test_a_values_file_of_nested_aliases_is_refused(cli, tmp_path: Path) -> None:
    (tmp_path / "values.yaml").write_text(f"tasks: [http]\nhttp: {laughs(6)}\n")
    outcome = cli(
        "launch", "--local", "-f", str(tmp_path / "values.yaml"), "--run-dir", str(tmp_path / "run")
    )
    check_usage_error(outcome, "more than 200000 nodes")


def test_a_stored_result_of_nested_aliases_is_refused(cli, tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "experiment.yaml").write_text(f"spec: []\nresult: {laughs(7)}\n")
    outcome = cli("report", "--local", "--run-dir", str(run))
    assert outcome.code != 0
    assert "more than 1000000 nodes" in outcome.err
    assert "Traceback" not in outcome.err
    assert len(outcome.err) < 1000


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("'x' * 1500000000 == ''", f"'x' * 1500000000: the result would hold 1500000000 items (at most {MAX_SIZE})"),
        ("'%1000000000d' % 1 == ''", "'%1000000000d' % 1: '%' works on numbers only"),
        ("not " * 2400 + "true", "if: expression nested too deeply (at most 100 levels)"),
        ("not " * 5000 + "true", "if: expression too long (20004 characters; at most 10000)"),
    ],
)  # fmt: skip
def test_expensive_if_expressions_are_usage_errors(
    cli, tmp_path: Path, expression: str, message: str
) -> None:
    outcome = launch(cli, tmp_path, f'spec:\n- run: [echo, hi]\n  if: "{expression}"\n')
    check_usage_error(outcome, message)


def test_scalar_ifs_still_work(cli, tmp_path: Path) -> None:
    outcome = launch(cli, tmp_path, "spec:\n- run: [echo, hi]\n  if: false\n- run: [echo, hi]\n  if: true\n")
    assert outcome.code == 0, outcome.err


def test_sizes_are_bounded_at_run_time_too() -> None:
    expression = Expression("result.text * result.n")
    assert expression.evaluate({"result": {"text": "ab", "n": 3}}) == "ababab"
    with pytest.raises(ExpressionError, match=r"the result would hold 3000000000 items"):
        expression.evaluate({"result": {"text": "ab", "n": 1500000000}})
    with pytest.raises(ExpressionError, match=r"would hold 200000 items"):
        Expression("[result.text] * 100000 + [1] * 100000").evaluate({"result": {"text": "a"}})


def test_error_messages_quote_a_short_excerpt() -> None:
    with pytest.raises(ExpressionError) as info:
        Expression("'" + "y" * 5000 + "' ==")
    assert len(str(info.value)) < 300
    with pytest.raises(ExpressionError) as info:
        Expression("result['" + "k" * 5000 + "']").evaluate({"result": {}})
    assert len(str(info.value)) < 300


def test_a_huge_set_index_is_a_usage_error(cli, tmp_path: Path) -> None:
    outcome = cli("launch", "--local", "--set", "spec[300000000].run=true", "--run-dir", str(tmp_path / "r"))
    check_usage_error(
        outcome, "--set 'spec[300000000].run=true': index '300000000' is too large (at most 65536)"
    )
    outcome = cli(
        "launch", "--local", "--set", f"spec[{'9' * 5000}].run=true", "--run-dir", str(tmp_path / "r")
    )
    check_usage_error(outcome, "is too large (at most 65536)")


def test_workers_are_capped_at_four_per_core(cli, tmp_path: Path) -> None:
    limit = 4 * len(os.sched_getaffinity(0))
    text = f"spec:\n- task: http\n  with: {{url: 'http://127.0.0.1:9/', workers: {limit + 1}}}\n"
    outcome = launch(cli, tmp_path, text)
    check_usage_error(outcome, f"spec[0] (http): workers: at most {limit} (4 per core available")


def test_a_huge_value_is_named_not_echoed(cli, tmp_path: Path) -> None:
    outcome = launch(cli, tmp_path, f"metadata: {'a' * 2_000_000}\nspec: []\n")
    check_usage_error(
        outcome, "metadata: input should be a valid dictionary or instance of Metadata (got 'aaaa"
    )
    assert len(outcome.err) < 1000


def test_a_thousand_problems_print_twenty_lines(cli, tmp_path: Path) -> None:
    outcome = launch(cli, tmp_path, "spec:\n" + "- {run: [echo], wiht: 1}\n" * 1000)
    assert outcome.code == 2
    lines = outcome.err.splitlines()
    assert len(lines) == 21
    assert lines[-1] == "error: ... and 980 more problems"
