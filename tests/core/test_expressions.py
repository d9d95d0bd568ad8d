from __future__ import annotations

import pytest

from kubectl_iter8.expressions import Expression, ExpressionError

RESULT = {"failure": False, "numCompletedTasks": 2, "numLoops": 1, "insights": {"numVersions": 2}}
NAMES = {"result": RESULT, "completed": lambda: True, "slos": lambda: False}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("not result.failure", True),
        ("Result.Failure", False),
        ("!Result.Failure && Result.NumLoops == 1", True),
        ("result.failure || result.numCompletedTasks >= 2", True),
        ("result.insights.numVersions == 2 and Completed()", True),
        ("SLOs()", False),
        ("1 < result.numLoops + 1 <= 2", True),
        ("result['numLoops'] == 1", True),
        ("'a' in ['a', 'b']", True),
        ("result.failure == false", True),
        ("'&&' == '&&'", True),
    ],
)
def test_evaluates_iter8_and_python_spellings(text: str, expected: bool) -> None:
    assert Expression(text).evaluate(NAMES) is expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("__import__('os').system('true')", "Attribute|not allowed|plain function"),
        ("result.__class__", "not allowed"),
        ("(lambda: 1)()", "not allowed|plain function"),
        ("[x for x in result]", "not allowed"),
        ("result.failure ==", "invalid expression"),
        ("open('/etc/passwd')", "no field 'open'"),
    ],
)
def test_refuses_anything_beyond_data_and_given_functions(text: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=message):
        Expression(text).evaluate(NAMES)


def test_unknown_fields_and_bad_operations_are_errors_not_false() -> None:
    with pytest.raises(ExpressionError, match="has no field 'nope'"):
        Expression("result.nope").evaluate(NAMES)
    with pytest.raises(ExpressionError, match="unsupported operand|not supported"):
        Expression("result.insights + 1").evaluate(NAMES)
