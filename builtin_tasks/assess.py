"""The ``assess`` task: check metrics against SLOs for every version, pick reward winners, and judge
candidates against the baseline with statistical tests.

Iter8's semantics are kept: an upper SLO holds when the version's latest value is at most the
limit, a lower one when it is at least the limit, and a missing value never satisfies an SLO. Unlike
Iter8, rewards are judged even when no SLOs are given.

Additions (statistics in :mod:`kubectl_iter8.statistics`):

* ``judgeOn: bound`` (for the task, or per SLO) judges an SLO on a one-sided confidence bound
  instead of the point value, wherever raw observations lie behind the metric:
  ``<m>-pNN``/``<m>/pNN`` and ``<m>-mean`` from the histogram or samples of ``<m>`` (order-statistic
  and Student-t bounds), ``<prefix>/error-rate`` from its error and request counters
  (Clopper-Pearson). An upper SLO then needs the upper bound within the limit, a lower SLO the lower
  bound. A metric with only point values is judged on its value (and says so); one with too few
  observations (``minSamples``) does not satisfy.
* ``compare`` judges every other version against ``baseline`` (version index, default 0) on the
  listed metrics: ``pass``, ``fail`` or ``inconclusive``, with the numbers behind each verdict.

Both are stored in the insights next to Iter8's fields: ``SLOVerdicts`` (per SLO and version: the
basis, the value or bound and what it rests on) and ``comparisons`` (one item per metric and
candidate version).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from kubectl_iter8 import statistics as st
from kubectl_iter8.errors import TaskError
from kubectl_iter8.result import SLO, Insights, Result, Rewards, RewardsWinners, SLOs, SLOsSatisfied
from kubectl_iter8.task import Task, TaskContext, TaskInputs

JudgeOn = Literal["value", "bound"]


class SLOInput(TaskInputs):
    metric: str = Field(min_length=1)
    limit: float
    #: ``value`` (Iter8) or ``bound`` (a one-sided confidence bound); default: the task's ``judgeOn``.
    judge_on: JudgeOn | None = Field(default=None, alias="judgeOn")


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


def parse_margin(value: float | str) -> st.Margin:
    """``"10%"`` -> 10 % of the baseline's statistic; a number -> that absolute amount."""
    if isinstance(value, str):
        text = value.strip()
        if text.endswith("%"):
            try:
                return st.Margin(relative=float(text[:-1]) / 100.0)
            except ValueError:
                pass
        else:
            try:
                return st.Margin(absolute=float(text))
            except ValueError:
                pass
        raise ValueError(f"{value!r} is not a margin (use a number, or a percentage such as '10%')")
    return st.Margin(absolute=float(value))


class CompareInput(TaskInputs):
    """One metric to judge each candidate on, against the baseline."""

    metric: str = Field(min_length=1)
    #: mann-whitney, bootstrap, welch or beta-binomial; default from the metric's name.
    test: st.Method | None = None
    #: For ``bootstrap``: the percentile compared (default: from the name, e.g. ``-p95``, else 95).
    percentile: float | None = Field(default=None, gt=0, lt=100)
    better: Literal["lower", "higher"] = "lower"
    #: How much worse is still acceptable: a number in the metric's units, or a percentage of the
    #: baseline's statistic. Default 10% (0.01 absolute for error rates).
    margin: float | str | None = None
    confidence: float | None = Field(default=None, gt=0.5, lt=1)
    min_samples: int | None = Field(default=None, ge=1, alias="minSamples")

    @field_validator("margin")
    @classmethod
    def _margin(cls, value: float | str | None) -> float | str | None:
        if value is not None:
            margin = parse_margin(value)
            if margin.absolute < 0 or margin.relative < 0:
                raise ValueError("a margin cannot be negative")
        return value

    @model_validator(mode="after")
    def _test_fits_metric(self) -> CompareInput:
        if self.test == "beta-binomial" and not self.metric.endswith("/error-rate"):
            raise ValueError(
                f"test beta-binomial needs an error-rate metric ('<prefix>/error-rate'), got {self.metric!r}"
            )
        return self

    def method(self) -> str:
        if self.test:
            return self.test
        if self.metric.endswith("/error-rate"):
            return "beta-binomial"
        split = st.split_statistic(self.metric)
        if split and split[1] == "mean":
            return "welch"
        if split:
            return "bootstrap"
        return "mann-whitney"


class AssessInputs(TaskInputs):
    slos: SLOsInput | None = Field(default=None, alias="SLOs")
    rewards: RewardsInput | None = None
    judge_on: JudgeOn = Field(default="value", alias="judgeOn")
    confidence: float = Field(default=st.DEFAULT_CONFIDENCE, gt=0.5, lt=1)
    min_samples: int = Field(default=st.DEFAULT_MIN_SAMPLES, ge=1, alias="minSamples")
    baseline: int = Field(default=0, ge=0)
    compare: list[CompareInput] = Field(default_factory=list)

    @field_validator("compare", mode="before")
    @classmethod
    def _names(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list):
            return [{"metric": item} if isinstance(item, str) else item for item in value]
        return value


def set_extra(insights: Insights, key: str, value: Any) -> None:
    """Store a field Iter8's insights did not have (kept on read-modify-write)."""
    extra = insights.__pydantic_extra__
    if extra is None:
        extra = {}
        object.__setattr__(insights, "__pydantic_extra__", extra)
    extra[key] = value


class AssessTask(Task[AssessInputs]):
    """Evaluate SLOs, rewards and comparisons with the baseline over the metrics recorded so far."""

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
            self._slos(ctx, insights, self.inputs.slos)
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
        if self.inputs.compare:
            self._compare(ctx, insights)

    def _slos(self, ctx: TaskContext, insights: Insights, given: SLOsInput) -> None:
        versions = range(insights.num_versions)
        slos = SLOs(
            upper=[SLO(metric=s.metric, limit=s.limit) for s in given.upper],
            lower=[SLO(metric=s.metric, limit=s.limit) for s in given.lower],
        )
        insights.slos = slos
        verdicts: dict[str, list[list[dict[str, Any]]]] = {"upper": [], "lower": []}
        for bound, items in (("upper", given.upper), ("lower", given.lower)):
            for slo in items:
                basis = slo.judge_on or self.inputs.judge_on
                verdicts[bound].append(
                    [
                        self._judge_slo(ctx.result, v, slo, upper=bound == "upper", basis=basis)
                        for v in versions
                    ]
                )
        insights.slos_satisfied = SLOsSatisfied(
            upper=[[cell["satisfied"] for cell in row] for row in verdicts["upper"]],
            lower=[[cell["satisfied"] for cell in row] for row in verdicts["lower"]],
        )
        set_extra(insights, "SLOVerdicts", verdicts)
        for name in {s.metric for s in [*slos.upper, *slos.lower]}:
            if all(insights.scalar(v, name) is None for v in versions):
                ctx.logger.warning("SLO metric %s has no value for any version", name)

    def _judge_slo(
        self, result: Result, version: int, slo: SLOInput, *, upper: bool, basis: JudgeOn
    ) -> dict[str, Any]:
        assert result.insights is not None
        value = result.insights.scalar(version, slo.metric)
        cell: dict[str, Any] = {"basis": "value", "value": value}
        if basis == "bound":
            bound = _slo_bound(result, version, slo.metric, upper=upper, confidence=self.inputs.confidence)
            if bound is None:
                cell["note"] = "no observations behind this metric: judged on its value"
            else:
                cell.update(basis="bound", **bound.to_dict())
                cell["value"] = value
                if bound.bound is None:
                    cell["satisfied"] = False
                    return cell
                if bound.n < self.inputs.min_samples:
                    cell["satisfied"] = False
                    cell["reason"] = (
                        f"too few observations ({bound.n} < minSamples {self.inputs.min_samples})"
                    )
                    return cell
                cell["satisfied"] = _holds(bound.bound, slo.limit, upper=upper)
                return cell
        cell["satisfied"] = _holds(value, slo.limit, upper=upper)
        if value is None:
            cell["reason"] = "no value"
        return cell

    def _compare(self, ctx: TaskContext, insights: Insights) -> None:
        baseline = self.inputs.baseline
        if baseline >= insights.num_versions:
            raise TaskError(
                f"baseline: version {baseline} does not exist (the experiment has {insights.num_versions})"
            )
        items: list[dict[str, Any]] = []
        for spec in self.inputs.compare:
            for version in range(insights.num_versions):
                if version == baseline:
                    continue
                comparison = _comparison(ctx.result, spec, baseline, version, self.inputs)
                item = {
                    "metric": spec.metric,
                    "baseline": baseline,
                    "version": version,
                    **comparison.to_dict(),
                }
                items.append(item)
                versus = f"{insights.version_label(version)} vs {insights.version_label(baseline)}"
                ctx.log(f"{spec.metric}: {versus}: {comparison.verdict} ({comparison.reason})")
        if insights.num_versions < 2:
            ctx.logger.warning("compare: the experiment has one version; there is nothing to compare")
        set_extra(insights, "comparisons", {"baseline": baseline, "items": items})
        counts = {v: sum(1 for i in items if i["verdict"] == v) for v in ("pass", "fail", "inconclusive")}
        ctx.details["comparisons"] = counts


def _slo_bound(
    result: Result, version: int, metric: str, *, upper: bool, confidence: float
) -> st.Bound | None:
    """The confidence bound behind an SLO metric, or None when it has only point values."""
    side: Literal["upper", "lower"] = "upper" if upper else "lower"
    counts = st.rate_counts(result, version, metric)
    if counts is not None:
        return st.proportion_bound(counts[0], counts[1], side=side, confidence=confidence)
    split = st.split_statistic(metric)
    if split is None:
        return None
    base, stat = split
    source = st.sample_source(result, version, base)
    if source is None:
        return None
    assert result.insights is not None
    info = result.insights.metrics_info.get(metric)
    factor = st.unit_factor(source.units, info.units if info else source.units) or 1.0
    samples = source.samples.scaled(factor)
    if stat == "mean":
        return st.mean_bound(samples, side=side, confidence=confidence)
    return st.percentile_bound(samples, float(stat[1:]), side=side, confidence=confidence)


def _comparison(
    result: Result, spec: CompareInput, baseline: int, version: int, inputs: AssessInputs
) -> st.Comparison:
    method = spec.method()
    confidence = spec.confidence or inputs.confidence
    min_samples = spec.min_samples or inputs.min_samples
    if method == "beta-binomial":
        margin = parse_margin(spec.margin) if spec.margin is not None else st.Margin(absolute=0.01)
        b = st.rate_counts(result, baseline, spec.metric) or (0, 0)
        c = st.rate_counts(result, version, spec.metric) or (0, 0)
        return st.beta_binomial(
            b[0],
            b[1],
            c[0],
            c[1],
            better=spec.better,
            confidence=confidence,
            margin=margin,
            min_samples=min_samples,
        )
    margin = parse_margin(spec.margin) if spec.margin is not None else st.Margin(relative=0.1)
    split = st.split_statistic(spec.metric)
    base_metric = spec.metric
    percentile = spec.percentile
    # A name like http/latency-p95 is a statistic of http/latency's samples, unless the name itself has them.
    src_b = st.sample_source(result, baseline, spec.metric) if split is not None else None
    if split is not None and src_b is None:
        base_metric = split[0]
        if split[1] != "mean" and percentile is None:
            percentile = float(split[1][1:])
    empty = st.Samples.of([])
    if src_b is None:
        src_b = st.sample_source(result, baseline, base_metric)
    src_c = st.sample_source(result, version, base_metric)
    x_b = src_b.samples if src_b else empty
    x_c = src_c.samples if src_c else empty
    common: dict[str, Any] = {
        "better": spec.better,
        "confidence": confidence,
        "margin": margin,
        "min_samples": min_samples,
    }
    if method == "bootstrap":
        return st.bootstrap_percentile(x_b, x_c, percentile=percentile or 95.0, **common)
    if method == "welch":
        return st.welch(x_b, x_c, **common)
    return st.mann_whitney(x_b, x_c, **common)


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
