"""The conditions ``assert`` checks, with Iter8's meanings.

``completed``: every spec entry has run or been skipped. ``nofailure``: there is a result and no
task failed. ``slos``: there are insights and every version satisfies every SLO (no SLOs at all, with
at least one version, counts as satisfied, as in Iter8). ``noregression`` (new): there are insights
and no candidate version is judged worse than the baseline by ``assess``'s ``compare`` (a ``fail``
verdict); ``pass`` and ``inconclusive`` verdicts, and no comparisons at all, do not break it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .errors import UsageError
from .experiment import Experiment

CONDITIONS = ("completed", "nofailure", "slos", "noregression")


def parse_conditions(values: Iterable[str]) -> list[str]:
    """Conditions from repeated and comma-separated ``-c`` values, case-insensitive."""
    conditions: list[str] = []
    for value in values:
        for part in value.split(","):
            name = part.strip().lower()
            if name not in CONDITIONS:
                raise UsageError(
                    f"-c/--condition: unknown condition {part.strip()!r} (use {', '.join(CONDITIONS)})"
                )
            if name not in conditions:
                conditions.append(name)
    if not conditions:
        raise UsageError(f"-c/--condition: give at least one of {', '.join(CONDITIONS)}")
    return conditions


def completed(experiment: Experiment) -> bool:
    result = experiment.result
    return result is not None and result.num_completed_tasks == len(experiment.spec)


def no_failure(experiment: Experiment) -> bool:
    return experiment.result is not None and not experiment.result.failure


def slos_satisfied(experiment: Experiment) -> bool:
    insights = experiment.result.insights if experiment.result else None
    if insights is None or insights.num_versions < 1:
        return False
    if insights.slos is None or not (insights.slos.upper or insights.slos.lower):
        return True
    satisfied = insights.slos_satisfied
    if satisfied is None:
        return False
    rows = [*satisfied.upper, *satisfied.lower]
    expected = len(insights.slos.upper) + len(insights.slos.lower)
    return len(rows) == expected and all(len(row) == insights.num_versions and all(row) for row in rows)


def comparison_items(experiment: Experiment) -> list[dict[str, Any]]:
    """The verdicts of ``assess``'s comparisons with the baseline, as stored in the insights."""
    insights = experiment.result.insights if experiment.result else None
    extra = (insights.model_extra or {}) if insights is not None else {}
    comparisons = extra.get("comparisons")
    items = comparisons.get("items") if isinstance(comparisons, dict) else None
    return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []


def no_regression(experiment: Experiment) -> bool:
    insights = experiment.result.insights if experiment.result else None
    if insights is None or insights.num_versions < 1:
        return False
    return all(item.get("verdict") != "fail" for item in comparison_items(experiment))


def has_ended(experiment: Experiment) -> bool:
    """Whether the run is over: it completed, failed, or recorded its end."""
    result = experiment.result
    return result is not None and (result.end_time is not None or result.failure or completed(experiment))


CHECKS = {
    "completed": completed,
    "nofailure": no_failure,
    "slos": slos_satisfied,
    "noregression": no_regression,
}


def evaluate(experiment: Experiment, conditions: Iterable[str]) -> dict[str, bool]:
    return {name: CHECKS[name](experiment) for name in conditions}
