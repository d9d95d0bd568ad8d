"""Fuzzing what users and attackers hand the CLI: experiment files, ``--set`` strings, ``if:`` expressions.

Each property feeds generated input through the real entry point (``kubectl iter8 launch --local
--dry-run``, which validates everything and runs nothing) or the expression evaluator, and checks
what the hardening promises: exit code 0 or 2, never a traceback, errors of a few KB at most, and
time and memory bounded whatever the input. Generated inputs mix Iter8's vocabulary (task names,
inputs, SLO metric names) with random text, YAML syntax and alias bombs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from fuzzing import FUZZ, MAX_ERROR_CHARS, bounded
from hypothesis import given
from hypothesis import strategies as st

from kubectl_iter8.expressions import Expression, ExpressionError

TASKS = [
    "http",
    "grpc",
    "assess",
    "custom-metrics",
    "custommetrics",
    "notify",
    "ready",
    "run",
    "abnmetrics",
    "htp",
]
KEYS = [
    "spec", "task", "run", "with", "if", "metadata", "result", "tasks", "url", "numRequests", "qps",
    "connections", "duration", "workers", "SLOs", "upper", "lower", "metric", "limit", "headers",
    "payloadStr", "percentiles", "endpoints", "templates", "values", "cmd", "timeout", "host", "call",
    "total", "rounds", "http/latency-p99", "http/error-rate", "name", "versions",
]  # fmt: skip
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    st.text(max_size=40),
    st.sampled_from(
        [
            "http://127.0.0.1:1/",
            "1s",
            "-5m",
            "1e308",
            "NaN",
            "{{ .Values }}",
            "${HOME}",
            "p99",
            "a" * 5000,
            "[]",
        ]
    ),
)
TREES = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=30,
)
ENTRIES = st.fixed_dictionaries(
    {},
    optional={
        "task": st.sampled_from(TASKS) | SCALARS,
        "run": st.lists(st.sampled_from(["echo", "true", "x"]), max_size=3) | SCALARS,
        "with": st.dictionaries(st.sampled_from(KEYS), TREES, max_size=5) | TREES,
        "if": SCALARS | TREES,
    },
)
EXPERIMENTS = st.fixed_dictionaries(
    {"spec": st.lists(ENTRIES, max_size=4) | TREES},
    optional={"metadata": TREES, "result": TREES, "tasks": TREES, "http": TREES},
)


@st.composite
def alias_bomb(draw: st.DrawFn) -> str:
    levels = draw(st.integers(1, 9))
    fanout = draw(st.integers(2, 12))
    parts = ["a0: &a0 [v]"] + [
        f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * fanout)}]" for i in range(1, levels + 1)
    ]
    where = draw(st.sampled_from(["with", "if", "metadata"]))
    return f"spec:\n- run: [echo]\n  {where}: {{{', '.join(parts)}}}\n"


YAML_TEXT = st.one_of(
    EXPERIMENTS.map(lambda doc: yaml.safe_dump(doc, allow_unicode=True)),
    st.text(alphabet="&*[]{}:-,|>!%@ '\"\n\tabc01", max_size=300),
    alias_bomb(),
)


def check_outcome(outcome: Any, given_size: int) -> None:
    assert outcome.code in (0, 2), (outcome.code, outcome.err[-2000:])
    assert "Traceback" not in outcome.err + outcome.out
    assert len(outcome.err) <= MAX_ERROR_CHARS, outcome.err[:300]
    # A dry run prints the validated experiment: what it was given, and a few KB more at most.
    assert len(outcome.out) <= 2 * given_size + MAX_ERROR_CHARS


@FUZZ
@given(text=YAML_TEXT)
def test_any_experiment_file_is_validated_or_refused_in_one_line(
    cli: Callable[..., Any], tmp_path: Path, text: str
) -> None:
    path = tmp_path / "exp.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    with bounded():
        outcome = cli("launch", "--local", "--dry-run", "-f", str(path), "--run-dir", str(tmp_path / "run"))
    check_outcome(outcome, len(text))
    assert not (tmp_path / "run").exists()


SET_TEXT = st.text(alphabet="abcspe.[]{},=\\0123456789 ", min_size=1, max_size=60) | st.sampled_from(
    ["spec[65537].run=x", "spec[0].with.qps=5", "tasks={http,assess}", "a.b[1][2]=c", "x={", "=", "\\"]
)


@FUZZ
@given(sets=st.lists(SET_TEXT, min_size=1, max_size=4))
def test_any_set_string_is_applied_or_refused_in_one_line(
    cli: Callable[..., Any], tmp_path: Path, sets: list[str]
) -> None:
    args = [arg for text in sets for arg in ("--set", text)]
    with bounded():
        outcome = cli("launch", "--local", "--dry-run", "--run-dir", str(tmp_path / "run"), *args)
    check_outcome(outcome, sum(map(len, sets)))


TOKENS = [
    "not ", " and ", " or ", " * ", " % ", " ** ", " + ", " == ", " < ", "(", ")", "[", "]", "1", "1500000000",
    "'x'", "'%1000000000d'", "result", ".failure", ".text", "True", "None", "-", "1e308", ",", "if ", " else ",
    "lambda", "__class__", "[0]", "{", "}", ":", "'a' * 100000",
]  # fmt: skip
EXPRESSIONS = st.lists(st.sampled_from(TOKENS), max_size=40).map("".join) | st.text(max_size=60)


@FUZZ
@given(text=EXPRESSIONS)
def test_any_if_expression_evaluates_or_fails_with_an_expression_error(text: str) -> None:
    names = {"result": {"failure": False, "text": "ab", "n": 3}}
    with bounded():
        try:
            Expression(text).evaluate(names)
        except ExpressionError as exc:
            message = str(exc)
        else:
            message = ""
    assert len(message) <= 1000


@FUZZ
@given(text=EXPRESSIONS)
def test_any_if_in_an_experiment_is_validated_or_refused_in_one_line(
    cli: Callable[..., Any], tmp_path: Path, text: str
) -> None:
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump({"spec": [{"run": ["echo"], "if": text}]}))
    with bounded():
        outcome = cli("launch", "--local", "--dry-run", "-f", str(path), "--run-dir", str(tmp_path / "run"))
    check_outcome(outcome, len(text))
