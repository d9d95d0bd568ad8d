"""The statistics behind ``assess`` verdicts: pure functions over samples, counts and histograms.

Two questions are answered here, both with scipy's implementations:

* **Is a candidate worse than the baseline?** (:func:`compare`) Each comparison has a margin
  ``delta`` (how much worse is still acceptable, absolute or a fraction of the baseline's statistic)
  and a confidence ``c``; with the one-sided ``(1 - c)`` level the verdict is

  - ``fail``: the candidate is worse than baseline + delta with confidence ``c``;
  - ``pass``: the candidate is at most baseline + delta with confidence ``c`` (non-inferiority);
  - ``inconclusive``: neither can be claimed, or a version has fewer than ``min_samples``
    observations (the minimum-sample guard), or there is no data.

  Methods: ``mann-whitney`` (rank test of a location shift, :func:`scipy.stats.mannwhitneyu`, run
  on the candidate shifted by the margin, once per side), ``bootstrap`` (percentile bootstrap
  interval of the difference of a percentile, :func:`scipy.stats.bootstrap`), ``welch`` (Welch's
  t interval of the difference of means, :func:`scipy.stats.ttest_ind`) and ``beta-binomial``
  (error rates: Beta posteriors of both rates under the Jeffreys prior Beta(1/2, 1/2),
  :data:`scipy.stats.beta`, and the posterior probability that the candidate's rate exceeds the
  baseline's plus the margin; Fisher's exact test is reported alongside).

* **Does a version meet an SLO limit with confidence?** (:func:`percentile_bound`,
  :func:`mean_bound`, :func:`proportion_bound`) One-sided confidence bounds: distribution-free
  order-statistic bounds for percentiles (binomial ranks, :data:`scipy.stats.binom`), Student's t
  for means, Clopper-Pearson for proportions.

Samples are weighted (value, count) pairs so that HDR histograms are used without expanding them
for bounds; rank tests and the bootstrap expand them.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

Verdict = Literal["pass", "fail", "inconclusive"]
Better = Literal["lower", "higher"]
Method = Literal["mann-whitney", "bootstrap", "welch", "beta-binomial"]

DEFAULT_CONFIDENCE = 0.95
DEFAULT_MIN_SAMPLES = 30
#: Bootstrap resamples; the seed makes a verdict reproducible from the same data.
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 20231128
#: Posterior draws for the beta-binomial comparison.
BETA_DRAWS = 200_000
BETA_SEED = 20231129
#: Jeffreys prior for binomial rates.
BETA_PRIOR = (0.5, 0.5)

#: Factors to milliseconds, for histograms recorded in other time units.
_TIME_UNITS = {
    "nsec": 1e-6,
    "ns": 1e-6,
    "usec": 1e-3,
    "us": 1e-3,
    "msec": 1.0,
    "ms": 1.0,
    "sec": 1e3,
    "s": 1e3,
}


def unit_factor(source: str | None, target: str | None) -> float | None:
    """The factor that converts ``source`` units into ``target`` units; None when not convertible."""
    if source == target:
        return 1.0
    a, b = _TIME_UNITS.get(source or ""), _TIME_UNITS.get(target or "")
    if a is None or b is None:
        return None
    return a / b


@dataclass(frozen=True)
class Samples:
    """Observations as distinct values with counts (an expanded sample has all counts 1)."""

    values: npt.NDArray[np.float64]
    counts: npt.NDArray[np.int64]

    @classmethod
    def of(cls, values: Iterable[float]) -> Samples:
        array = np.asarray(list(values), dtype=np.float64)
        array = array[np.isfinite(array)]
        uniq, counts = np.unique(array, return_counts=True)
        return cls(uniq.astype(np.float64), counts.astype(np.int64))

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[float, int]]) -> Samples:
        merged: dict[float, int] = {}
        for value, count in pairs:
            if count > 0 and math.isfinite(value):
                merged[float(value)] = merged.get(float(value), 0) + int(count)
        keys = sorted(merged)
        return cls(np.asarray(keys, dtype=np.float64), np.asarray([merged[k] for k in keys], dtype=np.int64))

    @classmethod
    def from_hdr(cls, encoded: str, scale: float = 1.0) -> Samples:
        """The distinct values of an encoded HDR histogram, multiplied by ``scale``."""
        from hdrh.histogram import HdrHistogram  # type: ignore[import-untyped]

        histogram = HdrHistogram.decode(encoded)
        # The values hdrh's recorded iterator yields, without its Python walk over every bucket.
        value_of, highest = histogram.get_value_from_index, histogram.get_highest_equivalent_value
        return cls.from_pairs(
            (float(highest(value_of(index))) * scale, int(count))
            for index, count in enumerate(histogram.counts[:])
            if count
        )

    @property
    def n(self) -> int:
        return int(self.counts.sum())

    def expanded(self) -> npt.NDArray[np.float64]:
        return np.repeat(self.values, self.counts)

    def mean(self) -> float:
        return float(np.average(self.values, weights=self.counts)) if self.n else math.nan

    def stddev(self) -> float:
        """Sample standard deviation (Bessel's correction)."""
        n = self.n
        if n < 2:
            return math.nan
        mean = self.mean()
        return math.sqrt(float(np.sum(self.counts * (self.values - mean) ** 2)) / (n - 1))

    def order_statistic(self, rank: int) -> float:
        """The ``rank``-th smallest observation, 1-based."""
        cumulative = np.cumsum(self.counts)
        return float(self.values[int(np.searchsorted(cumulative, rank))])

    def percentile(self, q: float) -> float:
        """The ``q``-th percentile by the nearest-rank rule (HDR histograms' rule)."""
        n = self.n
        if n == 0:
            return math.nan
        rank = max(1, math.ceil(q / 100.0 * n))
        return self.order_statistic(min(rank, n))

    def scaled(self, factor: float) -> Samples:
        return Samples(self.values * factor, self.counts)


# --- confidence bounds for SLOs -----------------------------------------------------------------


@dataclass(frozen=True)
class Bound:
    """A one-sided confidence bound of a statistic, with what it rests on."""

    statistic: str
    estimate: float | None
    bound: float | None
    side: Literal["upper", "lower"]
    confidence: float
    n: int
    method: str
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def percentile_bound(
    samples: Samples, q: float, *, side: Literal["upper", "lower"], confidence: float = DEFAULT_CONFIDENCE
) -> Bound:
    """Distribution-free bound of the ``q``-th percentile: an order statistic whose rank comes from
    the binomial distribution Bin(n, q/100), so that it lies on the asked side of the true
    percentile with probability at least ``confidence``."""
    from scipy import stats  # type: ignore[import-untyped]

    n = samples.n
    estimate = samples.percentile(q) if n else None
    method = "order statistic (binomial ranks)"
    p = q / 100.0
    if n == 0:
        return Bound(f"p{q:g}", None, None, side, confidence, 0, method, "no observations")
    if side == "upper":
        rank = int(stats.binom.ppf(confidence, n, p)) + 1
        if rank > n:
            return Bound(f"p{q:g}", estimate, None, side, confidence, n, method, "too few observations")
    else:
        k = int(stats.binom.ppf(1.0 - confidence, n, p))
        if stats.binom.cdf(k, n, p) > 1.0 - confidence:
            k -= 1
        rank = k + 1
        if rank < 1:
            return Bound(f"p{q:g}", estimate, None, side, confidence, n, method, "too few observations")
    return Bound(f"p{q:g}", estimate, samples.order_statistic(rank), side, confidence, n, method)


def mean_bound(
    samples: Samples, *, side: Literal["upper", "lower"], confidence: float = DEFAULT_CONFIDENCE
) -> Bound:
    """Student's t bound of the mean: mean ± t(confidence, n-1) · s / √n."""
    from scipy import stats

    n = samples.n
    method = "student t"
    if n < 2:
        estimate = samples.mean() if n else None
        return Bound("mean", estimate, None, side, confidence, n, method, "too few observations")
    mean, sd = samples.mean(), samples.stddev()
    half = float(stats.t.ppf(confidence, n - 1)) * sd / math.sqrt(n)
    return Bound("mean", mean, mean + half if side == "upper" else mean - half, side, confidence, n, method)


def proportion_bound(
    successes: int, n: int, *, side: Literal["upper", "lower"], confidence: float = DEFAULT_CONFIDENCE
) -> Bound:
    """Clopper-Pearson (exact binomial) one-sided bound of a proportion."""
    from scipy import stats

    method = "clopper-pearson"
    if n <= 0:
        return Bound("rate", None, None, side, confidence, 0, method, "no observations")
    estimate = successes / n
    if side == "upper":
        bound = 1.0 if successes >= n else float(stats.beta.ppf(confidence, successes + 1, n - successes))
    else:
        bound = 0.0 if successes <= 0 else float(stats.beta.ppf(1 - confidence, successes, n - successes + 1))
    return Bound("rate", estimate, bound, side, confidence, n, method)


# --- comparisons with the baseline --------------------------------------------------------------


@dataclass(frozen=True)
class Margin:
    """How much worse than the baseline is still acceptable: ``absolute + relative · |baseline|``."""

    absolute: float = 0.0
    relative: float = 0.0

    def of(self, baseline_statistic: float) -> float:
        base = abs(baseline_statistic) if math.isfinite(baseline_statistic) else 0.0
        return self.absolute + self.relative * base

    def describe(self) -> str:
        parts = []
        if self.relative:
            parts.append(f"{self.relative * 100:g}% of the baseline")
        if self.absolute or not parts:
            parts.append(f"{self.absolute:g}")
        return " + ".join(parts)


@dataclass(frozen=True)
class Comparison:
    """A candidate judged against the baseline, with the numbers behind the verdict.

    ``difference`` and ``interval`` are candidate minus baseline of ``statistic`` (for
    ``beta-binomial``: of the error rate), in the metric's units; ``interval`` is the two-sided
    ``2c - 1`` interval whose ends are the one-sided ``c`` bounds the verdict uses.
    """

    method: str
    verdict: Verdict
    reason: str
    statistic: str
    better: Better
    confidence: float
    min_samples: int
    margin: float
    baseline_n: int
    candidate_n: int
    baseline_value: float | None = None
    candidate_value: float | None = None
    difference: float | None = None
    interval: tuple[float, float] | None = None
    p_worse: float | None = None
    p_not_worse: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = {
            "method": self.method,
            "verdict": self.verdict,
            "reason": self.reason,
            "statistic": self.statistic,
            "better": self.better,
            "confidence": self.confidence,
            "minSamples": self.min_samples,
            "margin": _clean(self.margin),
            "baselineN": self.baseline_n,
            "candidateN": self.candidate_n,
            "baselineValue": _clean(self.baseline_value),
            "candidateValue": _clean(self.candidate_value),
            "difference": _clean(self.difference),
            "interval": [_clean(self.interval[0]), _clean(self.interval[1])] if self.interval else None,
            "pWorse": _clean(self.p_worse),
            "pNotWorse": _clean(self.p_not_worse),
        }
        data.update({k: _clean(v) if isinstance(v, float) else v for k, v in self.extra.items()})
        return {k: v for k, v in data.items() if v is not None}


def _start(
    method: str,
    statistic: str,
    better: Better,
    confidence: float,
    min_samples: int,
    margin: float,
    n_b: int,
    n_c: int,
    baseline_value: float | None,
    candidate_value: float | None,
) -> Comparison:
    """The comparison before any verdict: inconclusive, with the numbers every method reports."""
    both = baseline_value is not None and candidate_value is not None
    return Comparison(
        method=method,
        verdict="inconclusive",
        reason="",
        statistic=statistic,
        better=better,
        confidence=confidence,
        min_samples=min_samples,
        margin=margin,
        baseline_n=n_b,
        candidate_n=n_c,
        baseline_value=baseline_value,
        candidate_value=candidate_value,
        difference=candidate_value - baseline_value if both else None,  # type: ignore[operator]
    )


def _clean(value: float | None) -> float | None:
    """JSON-safe floats: NaN and infinities become None; tiny float noise is rounded away."""
    if value is None or not math.isfinite(value):
        return None
    return float(f"{value:.10g}")


def _too_few(n_b: int, n_c: int, min_samples: int) -> str | None:
    if n_b == 0 or n_c == 0:
        which = "baseline" if n_b == 0 else "candidate"
        return f"no observations for the {which}"
    if min(n_b, n_c) < min_samples:
        return f"too few observations (baseline {n_b}, candidate {n_c}; at least {min_samples} each needed)"
    return None


def _decide_interval(
    worse_lo: float, worse_hi: float, margin: float, confidence: float
) -> tuple[Verdict, str]:
    """Verdict from the one-sided bounds of "how much worse" (candidate minus baseline, signed so
    that positive is worse)."""
    if worse_lo > margin:
        return "fail", f"worse than the baseline by more than the margin at {confidence:.0%} confidence"
    if worse_hi <= margin:
        return "pass", f"not worse than the baseline beyond the margin at {confidence:.0%} confidence"
    return "inconclusive", "the confidence interval straddles the margin: more data is needed"


def mann_whitney(
    baseline: Samples,
    candidate: Samples,
    *,
    better: Better = "lower",
    confidence: float = DEFAULT_CONFIDENCE,
    margin: Margin = Margin(relative=0.1),
    min_samples: int = DEFAULT_MIN_SAMPLES,
) -> Comparison:
    """Mann-Whitney U tests of a location shift beyond the margin, one per side.

    With ``delta`` the margin on the baseline's median and the candidate shifted by it (towards
    better): ``fail`` when the shifted candidate is still stochastically worse than the baseline
    (one-sided p < 1 - c), ``pass`` when it is stochastically better (the candidate is within the
    margin; one-sided p < 1 - c). Asymptotic p-values with tie and continuity corrections (exact
    ones for small samples without ties), as scipy's ``method="auto"`` chooses.
    """
    from scipy import stats

    n_b, n_c = baseline.n, candidate.n
    med_b = baseline.percentile(50) if n_b else None
    med_c = candidate.percentile(50) if n_c else None
    delta = margin.of(med_b) if med_b is not None else 0.0
    base = _start("mann-whitney", "median", better, confidence, min_samples, delta, n_b, n_c, med_b, med_c)
    short = _too_few(n_b, n_c, min_samples)
    if short:
        return replace(base, reason=short)
    x_b, x_c = baseline.expanded(), candidate.expanded()
    alpha = 1.0 - confidence
    # Shift the candidate towards "better" by the margin, then ask both one-sided questions.
    shifted = x_c - delta if better == "lower" else x_c + delta
    worse_alt, better_alt = ("greater", "less") if better == "lower" else ("less", "greater")
    p_worse = float(stats.mannwhitneyu(shifted, x_b, alternative=worse_alt).pvalue)
    p_not_worse = float(stats.mannwhitneyu(shifted, x_b, alternative=better_alt).pvalue)
    u = float(stats.mannwhitneyu(x_c, x_b, alternative="two-sided").statistic)
    if p_worse < alpha:
        verdict: Verdict = "fail"
        reason = f"worse than the baseline by more than the margin (p = {p_worse:.3g} < {alpha:.3g})"
    elif p_not_worse < alpha:
        verdict = "pass"
        reason = f"not worse than the baseline beyond the margin (p = {p_not_worse:.3g} < {alpha:.3g})"
    else:
        verdict = "inconclusive"
        reason = f"no significant difference either way (p = {p_worse:.3g} and {p_not_worse:.3g})"
    return replace(
        base,
        verdict=verdict,
        reason=reason,
        p_worse=p_worse,
        p_not_worse=p_not_worse,
        extra={"u": u, "probabilityCandidateGreater": u / (n_b * n_c)},
    )


def bootstrap_percentile(
    baseline: Samples,
    candidate: Samples,
    *,
    percentile: float = 95.0,
    better: Better = "lower",
    confidence: float = DEFAULT_CONFIDENCE,
    margin: Margin = Margin(relative=0.1),
    min_samples: int = DEFAULT_MIN_SAMPLES,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> Comparison:
    """Percentile-bootstrap interval of ``percentile(candidate) - percentile(baseline)``
    (independent resampling of each version, ``resamples`` times, fixed seed), at level ``2c - 1``
    so that each end is a one-sided ``c`` bound; judged against the margin on the baseline's
    percentile."""
    from scipy import stats

    n_b, n_c = baseline.n, candidate.n
    stat_b = baseline.percentile(percentile) if n_b else None
    stat_c = candidate.percentile(percentile) if n_c else None
    delta = margin.of(stat_b) if stat_b is not None else 0.0
    base = _start(
        "bootstrap", f"p{percentile:g}", better, confidence, min_samples, delta, n_b, n_c, stat_b, stat_c
    )
    diff = base.difference
    short = _too_few(n_b, n_c, min_samples)
    if short or diff is None:
        return replace(base, reason=short or "no data")

    def statistic(c: npt.NDArray[np.float64], b: npt.NDArray[np.float64], axis: int = -1) -> Any:
        pc = np.percentile(c, percentile, axis=axis, method="inverted_cdf")
        pb = np.percentile(b, percentile, axis=axis, method="inverted_cdf")
        return pc - pb

    rng = np.random.default_rng(seed)
    resampling = "observations"
    if len(baseline.values) == 1 and len(candidate.values) == 1:
        lo = hi = diff
    elif len(baseline.values) * 4 <= n_b and len(candidate.values) * 4 <= n_c:
        # Histograms: many equal values. Resampling n observations with replacement is the same as
        # drawing their counts from Multinomial(n, counts / n) over the distinct values, which costs
        # O(distinct values) per resample instead of O(n).
        resampling = "multinomial over distinct values"
        diffs = _resampled_percentile(candidate, percentile, resamples, rng) - _resampled_percentile(
            baseline, percentile, resamples, rng
        )
        alpha = 1.0 - confidence
        lo, hi = (float(v) for v in np.quantile(diffs, [alpha, 1.0 - alpha]))
    else:
        x_c, x_b = candidate.expanded(), baseline.expanded()
        batch = max(1, min(resamples, 20_000_000 // max(1, len(x_c) + len(x_b))))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # degenerate resamples (all equal) are expected with ties
            result = stats.bootstrap(
                (x_c, x_b),
                statistic,
                n_resamples=resamples,
                batch=batch,
                vectorized=True,
                confidence_level=2 * confidence - 1,
                method="percentile",
                rng=rng,
            )
        lo, hi = float(result.confidence_interval.low), float(result.confidence_interval.high)
        if not (math.isfinite(lo) and math.isfinite(hi)):
            lo = hi = diff
    worse_lo, worse_hi = (lo, hi) if better == "lower" else (-hi, -lo)
    verdict, reason = _decide_interval(worse_lo, worse_hi, delta, confidence)
    return replace(
        base,
        verdict=verdict,
        reason=reason,
        interval=(lo, hi),
        extra={
            "resamples": resamples,
            "seed": seed,
            "intervalMethod": "percentile bootstrap",
            "resampling": resampling,
        },
    )


def _resampled_percentile(
    samples: Samples, percentile: float, resamples: int, rng: np.random.Generator
) -> npt.NDArray[np.float64]:
    """The ``percentile`` of ``resamples`` bootstrap resamples of ``samples`` (nearest rank, as
    ``np.percentile(..., method="inverted_cdf")``), drawn as multinomial counts."""
    n = samples.n
    counts = rng.multinomial(n, samples.counts / n, size=resamples)
    cumulative = np.cumsum(counts, axis=1)
    rank = max(1, math.ceil(percentile / 100.0 * n))
    index = np.argmax(cumulative >= rank, axis=1)
    return np.asarray(samples.values[index], dtype=np.float64)


def welch(
    baseline: Samples,
    candidate: Samples,
    *,
    better: Better = "lower",
    confidence: float = DEFAULT_CONFIDENCE,
    margin: Margin = Margin(relative=0.1),
    min_samples: int = DEFAULT_MIN_SAMPLES,
) -> Comparison:
    """Welch's t interval of ``mean(candidate) - mean(baseline)`` at level ``2c - 1``."""
    from scipy import stats

    n_b, n_c = baseline.n, candidate.n
    m_b = baseline.mean() if n_b else None
    m_c = candidate.mean() if n_c else None
    delta = margin.of(m_b) if m_b is not None else 0.0
    base = _start("welch", "mean", better, confidence, min_samples, delta, n_b, n_c, m_b, m_c)
    short = _too_few(n_b, n_c, max(2, min_samples))
    if short or m_b is None or m_c is None:
        return replace(base, reason=short or "no data")
    sd_b, sd_c = baseline.stddev(), candidate.stddev()
    if sd_b == 0 and sd_c == 0:
        lo = hi = m_c - m_b
        p_value = math.nan
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = stats.ttest_ind_from_stats(m_c, sd_c, n_c, m_b, sd_b, n_b, equal_var=False)
        se = math.sqrt(sd_c**2 / n_c + sd_b**2 / n_b)
        df = se**4 / ((sd_c**2 / n_c) ** 2 / (n_c - 1) + (sd_b**2 / n_b) ** 2 / (n_b - 1))
        half = float(stats.t.ppf(confidence, df)) * se
        lo, hi = m_c - m_b - half, m_c - m_b + half
        p_value = float(result.pvalue)
    worse_lo, worse_hi = (lo, hi) if better == "lower" else (-hi, -lo)
    verdict, reason = _decide_interval(worse_lo, worse_hi, delta, confidence)
    return replace(
        base,
        verdict=verdict,
        reason=reason,
        interval=(lo, hi),
        extra={"pTwoSided": p_value},
    )


def beta_binomial(
    baseline_errors: int,
    baseline_total: int,
    candidate_errors: int,
    candidate_total: int,
    *,
    better: Better = "lower",
    confidence: float = DEFAULT_CONFIDENCE,
    margin: Margin = Margin(absolute=0.01),
    min_samples: int = DEFAULT_MIN_SAMPLES,
    draws: int = BETA_DRAWS,
    seed: int = BETA_SEED,
) -> Comparison:
    """Bayesian comparison of two rates: posteriors Beta(1/2 + k, 1/2 + n - k) (Jeffreys prior),
    ``draws`` joint draws (fixed seed); ``fail`` when P(candidate - baseline > margin) >= c,
    ``pass`` when P(candidate - baseline <= margin) >= c (signs flipped when higher is better).
    Fisher's exact one-sided p-value (no margin) is reported alongside."""
    from scipy import stats

    n_b, n_c = int(baseline_total), int(candidate_total)
    k_b, k_c = int(baseline_errors), int(candidate_errors)
    r_b = k_b / n_b if n_b > 0 else None
    r_c = k_c / n_c if n_c > 0 else None
    delta = margin.of(r_b) if r_b is not None else margin.absolute
    base = _start("beta-binomial", "rate", better, confidence, min_samples, delta, n_b, n_c, r_b, r_c)
    problem = None
    if not (0 <= k_b <= n_b) or not (0 <= k_c <= n_c):
        problem = "counts are inconsistent (more events than trials, or negative)"
    problem = problem or _too_few(n_b, n_c, min_samples)
    if problem:
        return replace(base, reason=problem)
    rng = np.random.default_rng(seed)
    a0, b0 = BETA_PRIOR
    post_c = stats.beta.rvs(a0 + k_c, b0 + n_c - k_c, size=draws, random_state=rng)
    post_b = stats.beta.rvs(a0 + k_b, b0 + n_b - k_b, size=draws, random_state=rng)
    diff = post_c - post_b
    worse = diff if better == "lower" else -diff
    p_worse = float(np.mean(worse > delta))
    alpha = 1.0 - confidence
    lo, hi = (float(v) for v in np.quantile(diff, [alpha, 1.0 - alpha]))
    fisher = stats.fisher_exact(
        [[k_c, n_c - k_c], [k_b, n_b - k_b]], alternative="greater" if better == "lower" else "less"
    )
    if p_worse >= confidence:
        verdict: Verdict = "fail"
        reason = f"P(worse than the baseline beyond the margin) = {p_worse:.3f} >= {confidence:g}"
    elif 1.0 - p_worse >= confidence:
        verdict = "pass"
        reason = f"P(not worse than the baseline beyond the margin) = {1 - p_worse:.3f} >= {confidence:g}"
    else:
        verdict = "inconclusive"
        reason = f"P(worse than the baseline beyond the margin) = {p_worse:.3f}: more data is needed"
    return replace(
        base,
        verdict=verdict,
        reason=reason,
        interval=(lo, hi),
        p_worse=p_worse,
        p_not_worse=1.0 - p_worse,
        extra={
            "baselineEvents": k_b,
            "candidateEvents": k_c,
            "prior": "Beta(0.5, 0.5)",
            "draws": draws,
            "seed": seed,
            "fisherExactP": float(fisher.pvalue),
        },
    )


def overall(verdicts: Sequence[Verdict]) -> Verdict:
    """``fail`` if any fails, else ``inconclusive`` if any is, else ``pass``."""
    if "fail" in verdicts:
        return "fail"
    if "inconclusive" in verdicts or not verdicts:
        return "inconclusive"
    return "pass"


# --- finding the data behind a metric -----------------------------------------------------------

#: Units of an HDR histogram kept without a registered metric (the http task records microseconds).
DEFAULT_HISTOGRAM_UNITS = "usec"


@dataclass(frozen=True)
class SampleSource:
    """Where the observations of a metric come from, converted to ``units``."""

    samples: Samples
    units: str | None
    origin: str


def _display_units(units: str | None) -> str | None:
    """Time histograms are judged and shown in milliseconds, as Iter8's latency metrics are."""
    return "msec" if units in _TIME_UNITS else units


def histogram_sources(result: Any, version: int) -> dict[str, tuple[str, str | None]]:
    """Encoded HDR histograms for ``version``: metric name -> (encoded, units).

    They come from the insights (``histograms``); for version 0, the latency histograms the ``http``
    task keeps in its record (``<prefix>/latency``) fill in the ones the insights lack.
    """
    insights = getattr(result, "insights", None)
    found: dict[str, tuple[str, str | None]] = {}
    for record in getattr(result, "tasks", None) or []:
        if version != 0 or record.task != "http" or record.status != "completed":
            continue
        if record.details.get("warmup"):
            continue
        for prefix, data in (record.details.get("endpoints") or {}).items():
            if isinstance(data, dict) and isinstance(data.get("latencyHistogram"), str):
                found[f"{prefix}/latency"] = (
                    data["latencyHistogram"],
                    str(data.get("histogramUnits", "usec")),
                )
    if insights is not None and version < len(insights.histograms):
        for name, encoded in insights.histograms[version].items():
            info = insights.metrics_info.get(name)
            units = info.units if info is not None and info.units else DEFAULT_HISTOGRAM_UNITS
            found[name] = (encoded, units)
    return found


def sample_source(result: Any, version: int, name: str) -> SampleSource | None:
    """The raw observations of metric ``name`` for ``version``: an HDR histogram, or the values of a
    ``Sample`` metric; None when the metric has only point values (or nothing)."""
    insights = getattr(result, "insights", None)
    hist = histogram_sources(result, version).get(name)
    if hist is not None:
        encoded, units = hist
        target = _display_units(units)
        factor = unit_factor(units, target) or 1.0
        return SampleSource(Samples.from_hdr(encoded, factor), target, "histogram")
    if insights is None:
        return None
    info = insights.metrics_info.get(name)
    if info is not None and info.type == "Sample" and version < len(insights.non_hist_metric_values):
        values = insights.non_hist_metric_values[version].get(name) or []
        return SampleSource(Samples.of(values), info.units, "samples")
    return None


#: A statistic's spelling at the end of a metric name: ``mean``, or ``p`` and a percentage in any
#: decimal spelling (``p95``, ``p95.0``, ``p99.95``); ``pnan``, ``p1e2`` and ``p-5`` are not.
_STATISTIC = re.compile(r"mean|p[0-9]{1,3}(?:\.[0-9]{1,6})?")


def split_statistic(name: str) -> tuple[str, str] | None:
    """``http/latency-p95`` or ``http/latency/p95`` -> (``http/latency``, ``p95``); same for ``mean``.

    The percentile keeps its spelling (``p95.0``); one outside (0, 100] is no statistic.
    """
    for sep in ("/", "-"):
        base, _, stat = name.rpartition(sep)
        real = _STATISTIC.fullmatch(stat) and (stat == "mean" or 0 < float(stat[1:]) <= 100)
        if base and "/" in base and real:
            return base, stat
    return None


def rate_counts(result: Any, version: int, name: str) -> tuple[int, int] | None:
    """(errors, requests) behind an ``<prefix>/error-rate`` metric, from its counters."""
    insights = getattr(result, "insights", None)
    if insights is None or not name.endswith("/error-rate"):
        return None
    prefix = name.removesuffix("/error-rate")
    errors = insights.scalar(version, f"{prefix}/error-count")
    total = insights.scalar(version, f"{prefix}/request-count")
    if errors is None or total is None:
        return None
    return round(errors), round(total)
