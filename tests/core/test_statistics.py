"""The statistics behind verdicts, on synthetic samples with known answers: clearly different,
clearly equal, too few samples; and confidence bounds against their definitions."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hdrh.histogram import HdrHistogram

from kubectl_iter8 import statistics as st


def normal(mean: float, sd: float, n: int, seed: int) -> st.Samples:
    return st.Samples.of(np.random.default_rng(seed).normal(mean, sd, n))


BASE = normal(100, 10, 400, 1)
SAME = normal(100, 10, 400, 2)
WORSE = normal(130, 10, 400, 3)
BETTER = normal(80, 10, 400, 4)
FEW = normal(100, 10, 10, 5)

SAMPLE_TESTS = [st.mann_whitney, st.bootstrap_percentile, st.welch]


@pytest.mark.parametrize("test", SAMPLE_TESTS)
def test_clearly_worse_fails_clearly_equal_or_better_passes(test) -> None:
    assert test(BASE, WORSE).verdict == "fail"
    assert test(BASE, SAME).verdict == "pass"
    assert test(BASE, BETTER).verdict == "pass"


@pytest.mark.parametrize("test", SAMPLE_TESTS)
def test_higher_is_better_flips_the_direction(test) -> None:
    assert test(BASE, WORSE, better="higher").verdict == "pass"
    assert test(BASE, BETTER, better="higher").verdict == "fail"


@pytest.mark.parametrize("test", SAMPLE_TESTS)
def test_too_few_samples_is_inconclusive_and_says_why(test) -> None:
    verdict = test(BASE, FEW)
    assert verdict.verdict == "inconclusive"
    assert verdict.reason == "too few observations (baseline 400, candidate 10; at least 30 each needed)"
    assert test(BASE, st.Samples.of([])).reason == "no observations for the candidate"
    assert test(BASE, FEW, min_samples=5).verdict != "inconclusive" or test is st.bootstrap_percentile


@pytest.mark.parametrize("test", SAMPLE_TESTS)
def test_a_small_shift_inside_a_zero_margin_is_inconclusive(test) -> None:
    # 2 % slower with few samples and no margin: neither worse nor non-inferior can be shown.
    a = normal(100, 10, 40, 7)
    b = st.Samples(a.values + 2.0, a.counts)
    assert test(a, b, margin=st.Margin()).verdict == "inconclusive"


def test_mann_whitney_numbers_match_scipy() -> None:
    from scipy import stats

    result = st.mann_whitney(BASE, WORSE, margin=st.Margin(relative=0.1))
    delta = 0.1 * BASE.percentile(50)
    expected = stats.mannwhitneyu(WORSE.expanded() - delta, BASE.expanded(), alternative="greater").pvalue
    assert result.p_worse == pytest.approx(expected)
    assert result.margin == pytest.approx(delta)
    data = result.to_dict()
    assert data["method"] == "mann-whitney"
    assert data["baselineN"] == data["candidateN"] == 400
    assert 0.95 < data["probabilityCandidateGreater"] <= 1.0


def test_bootstrap_interval_of_the_difference_of_p95() -> None:
    result = st.bootstrap_percentile(BASE, WORSE, percentile=95)
    assert result.interval is not None
    lo, hi = result.interval
    assert result.difference is not None
    assert 20 < lo <= result.difference <= hi < 40  # true difference of the 95th percentiles: 30
    assert result.statistic == "p95"
    again = st.bootstrap_percentile(BASE, WORSE, percentile=95)
    assert again.interval == result.interval  # seeded: the same data gives the same verdict


def test_welch_interval_matches_the_textbook_formula() -> None:
    result = st.welch(BASE, WORSE, confidence=0.9)
    assert result.interval is not None
    diff = WORSE.mean() - BASE.mean()
    assert result.interval[0] < diff < result.interval[1]
    assert result.difference == pytest.approx(diff)


def test_beta_binomial_on_error_counts() -> None:
    assert st.beta_binomial(10, 1000, 60, 1000).verdict == "fail"
    assert st.beta_binomial(10, 1000, 10, 1000).verdict == "pass"
    assert st.beta_binomial(10, 1000, 2, 1000).verdict == "pass"
    close = st.beta_binomial(10, 1000, 18, 1000, margin=st.Margin(absolute=0.005))
    assert close.verdict == "inconclusive"
    few = st.beta_binomial(0, 10, 5, 10)
    assert few.verdict == "inconclusive"
    assert few.reason.startswith("too few observations")
    bad = st.beta_binomial(5, 4, 1, 10, min_samples=1)
    assert bad.reason == "counts are inconsistent (more events than trials, or negative)"
    data = st.beta_binomial(10, 1000, 60, 1000).to_dict()
    assert data["prior"] == "Beta(0.5, 0.5)"
    assert data["fisherExactP"] < 1e-6
    assert data["pWorse"] == 1.0


def test_percentile_bound_has_the_stated_coverage() -> None:
    # Over many samples of a known distribution, the 95 % upper bound of p90 lies above the true
    # p90 at least 95 % of the time (it is exact, so not much more either).
    true_p90 = 100 + 10 * 1.2815515655446004
    rng = np.random.default_rng(11)
    covered = 0
    trials = 400
    for _ in range(trials):
        sample = st.Samples.of(rng.normal(100, 10, 200))
        bound = st.percentile_bound(sample, 90, side="upper", confidence=0.95)
        assert bound.bound is not None
        covered += bound.bound >= true_p90
    assert 0.93 <= covered / trials <= 0.995


def test_bounds_from_their_definitions() -> None:
    from scipy import stats

    ordered = st.Samples.of(range(1, 101))  # 1..100
    upper = st.percentile_bound(ordered, 50, side="upper", confidence=0.95)
    rank = int(stats.binom.ppf(0.95, 100, 0.5)) + 1
    assert upper.bound == float(rank)
    assert stats.binom.cdf(rank - 1, 100, 0.5) >= 0.95
    lower = st.percentile_bound(ordered, 50, side="lower", confidence=0.95)
    assert lower.bound is not None
    assert lower.bound < 50 < upper.bound
    assert st.percentile_bound(st.Samples.of([1, 2, 3]), 99, side="upper").reason == "too few observations"
    mean = st.mean_bound(ordered, side="upper", confidence=0.95)
    half = stats.t.ppf(0.95, 99) * np.std(np.arange(1, 101), ddof=1) / 10
    assert mean.bound == pytest.approx(50.5 + half)
    rate = st.proportion_bound(3, 100, side="upper", confidence=0.95)
    assert rate.bound == pytest.approx(stats.beta.ppf(0.95, 4, 97))
    assert st.proportion_bound(0, 100, side="lower").bound == 0.0
    assert st.proportion_bound(100, 100, side="upper").bound == 1.0


def test_samples_from_hdr_histograms_and_units() -> None:
    histogram = HdrHistogram(1, 3_600_000_000, 3)
    for value in (1000, 2000, 2000, 3000):
        histogram.record_value(value)
    samples = st.Samples.from_hdr(
        histogram.encode().decode("ascii"), scale=st.unit_factor("usec", "msec") or 1
    )
    assert samples.n == 4
    assert samples.values.tolist() == pytest.approx([1.0, 2.0, 3.0], rel=1e-3)
    assert samples.percentile(50) == pytest.approx(2.0, rel=1e-3)
    assert samples.mean() == pytest.approx(2.0, rel=1e-3)
    assert st.unit_factor("sec", "msec") == 1000
    assert st.unit_factor("msec", "requests") is None
    assert math.isnan(st.Samples.of([]).mean())


def test_metric_names_split_into_base_and_statistic() -> None:
    assert st.split_statistic("http/latency-p95") == ("http/latency", "p95")
    assert st.split_statistic("http/latency/p99.9") == ("http/latency", "p99.9")
    assert st.split_statistic("http-cart/latency-mean") == ("http-cart/latency", "mean")
    assert st.split_statistic("http/error-rate") is None
    assert st.split_statistic("latency-p95") is None


def test_overall_verdict() -> None:
    assert st.overall(["pass", "pass"]) == "pass"
    assert st.overall(["pass", "inconclusive"]) == "inconclusive"
    assert st.overall(["inconclusive", "fail"]) == "fail"
    assert st.overall([]) == "inconclusive"


def test_bootstrap_on_histograms_resamples_counts_and_agrees_with_scipy_on_raw_data() -> None:
    rng = np.random.default_rng(21)
    base = st.Samples.of(np.round(20 * np.exp(rng.normal(0, 0.3, 3000)), 1))  # heavy ties, like HDR buckets
    cand = st.Samples.of(np.round(24 * np.exp(rng.normal(0, 0.3, 3000)), 1))
    tied = st.bootstrap_percentile(base, cand, percentile=95)
    assert tied.extra["resampling"] == "multinomial over distinct values"
    # The same observations made distinct by a negligible jitter go through scipy.stats.bootstrap.
    jitter = np.random.default_rng(1)
    raw_base = st.Samples.of(base.expanded() + jitter.uniform(0, 1e-9, base.n))
    raw_cand = st.Samples.of(cand.expanded() + jitter.uniform(0, 1e-9, cand.n))
    raw = st.bootstrap_percentile(raw_base, raw_cand, percentile=95)
    assert raw.extra["resampling"] == "observations"
    assert tied.interval is not None
    assert raw.interval is not None
    assert tied.interval == pytest.approx(raw.interval, abs=0.5)
    assert tied.verdict == raw.verdict == "fail"
