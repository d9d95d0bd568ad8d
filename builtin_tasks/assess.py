"""The ``assess`` task: check metrics against SLOs for every version, and pick reward winners.

Iter8's semantics: an upper SLO holds when the version's latest value is at most the limit, a lower
one when it is at least the limit, and a missing value never satisfies an SLO. Unlike Iter8,
rewards are judged even when no SLOs are given.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from kubectl_iter8.errors import TaskError
from kubectl_iter8.result import SLO, Rewards, RewardsWinners, SLOs, SLOsSatisfied
from kubectl_iter8.task import Task, TaskContext, TaskInputs


class SLOInput(TaskInputs):
    metric: str = Field(min_length=1)
    limit: float


class SLOsInput(TaskInputs):
    upper: list[SLOInput] = Field(default_factory=list)
    lower: list[SLOInput] = Field(default_factory=list)

    @field_validator("upper", "lower", mode="before")
    @classmethod
    def _from_mapping(cls, value: Any) -> Any:
        # Iter8's chart values write SLOs as {metric: limit} (what --set produces); the task takes a list.
        if isinstance(value, dict):
            return [{"metric": metric, "limit": limit} for metric, limit in value.items()]
        return value


class RewardsInput(TaskInputs):
    max: list[str] = Field(default_factory=list)
    min: list[str] = Field(default_factory=list)

    @field_validator("max", "min", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class AssessInputs(TaskInputs):
    slos: SLOsInput | None = Field(default=None, alias="SLOs")
    rewards: RewardsInput | None = None


class AssessTask(Task[AssessInputs]):
    """Evaluate SLOs and rewards over the metrics recorded so far."""

    name = "assess"
    Inputs = AssessInputs

    async def run(self, ctx: TaskContext) -> None:
        insights = ctx.result.insights
        if insights is None:
            raise TaskError(
                "no metrics to assess: run a task that collects metrics (such as http) before assess"
            )
        versions = range(insights.num_versions)
        if self.inputs.slos is not None:
            slos = SLOs(
                upper=[SLO(metric=s.metric, limit=s.limit) for s in self.inputs.slos.upper],
                lower=[SLO(metric=s.metric, limit=s.limit) for s in self.inputs.slos.lower],
            )
            insights.slos = slos
            insights.slos_satisfied = SLOsSatisfied(
                upper=[
                    [_holds(insights.scalar(v, s.metric), s.limit, upper=True) for v in versions]
                    for s in slos.upper
                ],
                lower=[
                    [_holds(insights.scalar(v, s.metric), s.limit, upper=False) for v in versions]
                    for s in slos.lower
                ],
            )
            for slo in [*slos.upper, *slos.lower]:
                if all(insights.scalar(v, slo.metric) is None for v in versions):
                    ctx.logger.warning("SLO metric %s has no value for any version", slo.metric)
        if self.inputs.rewards is not None:
            insights.rewards = Rewards(max=list(self.inputs.rewards.max), min=list(self.inputs.rewards.min))
            insights.rewards_winners = RewardsWinners(
                max=[
                    _winner([insights.scalar(v, m) for v in versions], max) for m in self.inputs.rewards.max
                ],
                min=[
                    _winner([insights.scalar(v, m) for v in versions], min) for m in self.inputs.rewards.min
                ],
            )


def _holds(value: float | None, limit: float, *, upper: bool) -> bool:
    if value is None:
        return False
    return value <= limit if upper else value >= limit


def _winner(values: list[float | None], pick: Any) -> int:
    """Index of the best value (``pick`` is ``max`` or ``min``); -1 when no version has one."""
    present = [(value, index) for index, value in enumerate(values) if value is not None]
    if not present:
        return -1
    best = pick(value for value, _ in present)
    return next(index for value, index in present if value == best)
