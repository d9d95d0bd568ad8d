"""The statistics behind verdicts, on synthetic samples with known answers: clearly different,
clearly equal, too few samples; and every statistic pinned to reference values that do not come
from the code under test: published worked examples (R's documentation, Wilks' 59-sample rule) or
numbers computed once by a different method (exact enumeration, rational arithmetic, numerical
integration) and written here as literals, with where each comes from."""

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
    # With the guard lowered the same samples are judged: the same distribution passes, the same
    # ten observations 30 worse fail.
    assert test(BASE, FEW, min_samples=5).verdict == "pass"
    assert test(BASE, st.Samples(FEW.values + 30.0, FEW.counts), min_samples=5).verdict == "fail"


@pytest.mark.parametrize("test", SAMPLE_TESTS)
def test_a_small_shift_inside_a_zero_margin_is_inconclusive(test) -> None:
    # 2 % slower with few samples and no margin: neither worse nor non-inferior can be shown.
    a = normal(100, 10, 40, 7)
    b = st.Samples(a.values + 2.0, a.counts)
    assert test(a, b, margin=st.Margin()).verdict == "inconclusive"


# R's documentation example of wilcox.test (Hollander & Wolfe, permeability constants):
# wilcox.test(x, y, alternative = "greater") gives W = 35, p-value = 0.1272. No ties and fewer than
# nine observations in y, so the p-values are exact.
MW_X = [0.80, 0.83, 1.89, 1.04, 1.45, 1.38, 1.91, 1.64, 0.73, 1.46]
MW_Y = [1.15, 0.88, 0.90, 0.74, 1.21]


def test_mann_whitney_exact_p_values_match_r_and_exact_enumeration() -> None:
    candidate, baseline = st.Samples.of(MW_X), st.Samples.of(MW_Y)
    result = st.mann_whitney(baseline, candidate, margin=st.Margin(), min_samples=1)
    # The counts are from enumerating all C(15, 5) = 3003 equally likely rank assignments of the
    # pooled sample and counting those with U >= 35 (382) and U <= 35 (2693); 382/3003 = 0.12721
    # is R's 0.1272.
    assert result.p_worse == pytest.approx(382 / 3003)
    assert result.p_worse == pytest.approx(0.1272, abs=5e-5)  # R, as printed
    assert result.p_not_worse == pytest.approx(2693 / 3003)
    assert result.extra["u"] == 35.0  # R's W
    assert result.extra["probabilityCandidateGreater"] == pytest.approx(35 / 50)
    assert result.verdict == "inconclusive"

    # A 20 % margin on the baseline's nearest-rank median (0.90, the 3rd of 5) is 0.18; the
    # candidate shifted by it (x - 0.18, no ties with y) has U = 30, and the enumeration gives
    # P(U >= 30) = 892/3003, P(U <= 30) = 2232/3003.
    shifted = st.mann_whitney(baseline, candidate, margin=st.Margin(relative=0.2), min_samples=1)
    assert shifted.margin == pytest.approx(0.18)
    assert shifted.baseline_value == 0.90
    assert shifted.p_worse == pytest.approx(892 / 3003)
    assert shifted.p_not_worse == pytest.approx(2232 / 3003)
    assert shifted.extra["u"] == 35.0  # the statistic reported is of the unshifted samples
    assert shifted.verdict == "inconclusive"

    # Higher is better: the candidate is shifted up (x + 0.18, U = 44); the enumeration gives
    # P(U <= 44) = 2984/3003 (worse) and P(U >= 44) = 29/3003 = 0.0097 < 0.05, so it passes.
    higher = st.mann_whitney(
        baseline, candidate, better="higher", margin=st.Margin(relative=0.2), min_samples=1
    )
    assert higher.p_worse == pytest.approx(2984 / 3003)
    assert higher.p_not_worse == pytest.approx(29 / 3003)
    assert higher.verdict == "pass"

    data = st.mann_whitney(BASE, WORSE).to_dict()
    assert data["method"] == "mann-whitney"
    assert data["baselineN"] == data["candidateN"] == 400
    assert 0.95 < data["probabilityCandidateGreater"] <= 1.0


def test_mann_whitney_with_ties_uses_the_corrected_normal_approximation() -> None:
    baseline = st.Samples.of([1, 2, 2, 3, 3, 3, 4, 4, 5, 5, 6, 2])
    candidate = st.Samples.of([2, 3, 3, 4, 4, 4, 5, 5, 5, 6, 7, 4])
    result = st.mann_whitney(baseline, candidate, margin=st.Margin(), min_samples=1)
    # Computed once by hand with R's wilcox.test formulas (exact = FALSE, correct = TRUE), in plain
    # Python without scipy: U = 99 (counting pairs, ties as 1/2), mean 12 * 12 / 2 = 72, tie groups
    # of sizes 1, 1, 2, 4, 5, 5, 6 give sigma = sqrt(144/12 * (25 - sum(t^3 - t) / (24 * 23)))
    # = 16.993604935258798; p = Q((99 - 72 - 0.5) / sigma) and Phi((99 - 72 + 0.5) / sigma).
    assert result.extra["u"] == 99.0
    assert result.p_worse == pytest.approx(0.05944966789367049, rel=1e-9)
    assert result.p_not_worse == pytest.approx(0.947196260632642, rel=1e-9)
    assert result.verdict == "inconclusive"  # 0.059 > 0.05 ...
    lenient = st.mann_whitney(baseline, candidate, margin=st.Margin(), min_samples=1, confidence=0.9)
    assert lenient.verdict == "fail"  # ... < 0.10


def test_bootstrap_interval_of_the_difference_of_p95() -> None:
    result = st.bootstrap_percentile(BASE, WORSE, percentile=95)
    assert result.interval is not None
    lo, hi = result.interval
    assert result.difference is not None
    assert 20 < lo <= result.difference <= hi < 40  # true difference of the 95th percentiles: 30
    assert result.statistic == "p95"
    again = st.bootstrap_percentile(BASE, WORSE, percentile=95)
    assert again.interval == result.interval  # seeded: the same data gives the same verdict


@pytest.mark.parametrize("seed", [st.BOOTSTRAP_SEED, 1, 2, 3])
def test_bootstrap_interval_matches_the_exact_bootstrap_distribution(seed: int) -> None:
    # The ideal bootstrap (infinitely many resamples) is known exactly: a resample's nearest-rank
    # percentile is <= the j-th distinct value v_j when at least `rank` of its n draws are, so
    # P(percentile <= v_j) = P(Bin(n, C_j / n) >= rank) with C_j the count up to v_j. The
    # distribution of the difference is the convolution of the two. Its quantiles were computed once
    # that way (binomial tails, outer product of the two distributions; checked against a rational
    # arithmetic version on a small case). With 2000 resamples the 5 % and 95 % ends must lie within
    # the exact 3.5 %..6.5 % and 93.5 %..96.5 % quantiles (3 standard errors), for any seed.
    # Distinct observations go through scipy.stats.bootstrap: p90 of 1..200 and of 2, 4, ..., 400.
    raw = st.bootstrap_percentile(
        st.Samples.of(range(1, 201)), st.Samples.of(range(2, 401, 2)), percentile=90, seed=seed
    )
    assert raw.extra["resampling"] == "observations"
    assert raw.difference == 180.0  # 360 - 180
    assert raw.interval is not None
    lo, hi = raw.interval
    assert 161.0 <= lo <= 165.0  # exact: 3.5 % 161, 5 % 163, 6.5 % 165
    assert 194.0 <= hi <= 196.0  # exact: 93.5 % 194, 95 % 195, 96.5 % 196
    # Histograms go through the multinomial resampling: values 1..400 with counts 2 + v % 7
    # (n = 1998), and 4..403 with counts 2 + v % 5 (n = 1600).
    tied = st.bootstrap_percentile(
        st.Samples.from_pairs((float(v), 2 + v % 7) for v in range(1, 401)),
        st.Samples.from_pairs((float(v + 3), 2 + v % 5) for v in range(1, 401)),
        percentile=90,
        seed=seed,
    )
    assert tied.extra["resampling"] == "multinomial over distinct values"
    assert tied.interval is not None
    lo, hi = tied.interval
    assert -4.0 <= lo <= -3.0  # exact: 3.5 % -4, 5 % -4, 6.5 % -3
    assert 9.0 <= hi <= 10.0  # exact: 93.5 % 9, 95 % 10, 96.5 % 10


def test_bootstrap_of_single_values_is_the_difference_itself() -> None:
    one = st.bootstrap_percentile(st.Samples.from_pairs([(5.0, 40)]), st.Samples.from_pairs([(7.0, 40)]))
    assert one.interval == (2.0, 2.0)
    assert one.margin == pytest.approx(0.5)  # 10 % of 5
    assert one.verdict == "fail"


# R's sleep data (Student 1908); R's documentation example t.test(extra ~ group, data = sleep) gives
# t = -1.8608, df = 17.776, p-value = 0.07939, 95 percent confidence interval -3.3654832 0.2054832
# (group 1 minus group 2), means 0.75 and 2.33.
SLEEP_1 = [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0]
SLEEP_2 = [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4]


def test_welch_interval_matches_r_on_the_sleep_data() -> None:
    candidate, baseline = st.Samples.of(SLEEP_1), st.Samples.of(SLEEP_2)
    # One-sided 97.5 % bounds are the ends of R's two-sided 95 % interval.
    result = st.welch(baseline, candidate, confidence=0.975, margin=st.Margin(), min_samples=1)
    assert result.difference == pytest.approx(0.75 - 2.33)
    assert result.interval == pytest.approx((-3.3654832, 0.2054832), abs=1e-7)  # R
    assert result.extra["pTwoSided"] == pytest.approx(0.07939, abs=5e-6)  # R
    assert result.verdict == "inconclusive"  # the interval straddles 0
    # A 10 % margin on the baseline's mean 2.33 is 0.233 > 0.2054832: not worse beyond it.
    within = st.welch(baseline, candidate, confidence=0.975, margin=st.Margin(relative=0.1), min_samples=1)
    assert within.margin == pytest.approx(0.233)
    assert within.verdict == "pass"

    # The 90 % interval, computed once from first principles in plain Python: the Welch standard
    # error sqrt(s1^2/10 + s2^2/10) = 0.849091017238762 and Welch-Satterthwaite df = 17.7764735161785,
    # and the t quantile t(0.95, 17.776) = 1.7352456537852183 by bisection on Simpson's integral of
    # the t density (the same route gives R's 95 % interval above to 1e-10).
    ninety = st.welch(baseline, candidate, confidence=0.95, margin=st.Margin(), min_samples=1)
    assert ninety.interval == pytest.approx((-3.0533814973316313, -0.10661850266836792), abs=1e-9)
    assert ninety.verdict == "pass"  # the upper end is below 0
    # Higher is better: the same candidate is now worse beyond a zero margin.
    assert st.welch(baseline, candidate, better="higher", margin=st.Margin(), min_samples=1).verdict == "fail"

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


def test_beta_binomial_posterior_matches_numerical_integration() -> None:
    # Jeffreys posteriors Beta(10.5, 990.5) (baseline) and Beta(18.5, 982.5) (candidate). Reference
    # values computed once by numerical integration, not by sampling: P(c - b > d) is the integral
    # of f_b(x) * (1 - F_c(x + d)) dx (scipy.integrate.quad over scipy.stats.beta pdf/sf, agreeing
    # to 1e-10 with a plain-numpy trapezoid on a 400001-point grid of the lgamma densities); the
    # quantiles of c - b by root-finding on that integral.
    close = st.beta_binomial(10, 1000, 18, 1000, margin=st.Margin(absolute=0.005))
    # 200000 draws: the Monte Carlo standard error of a probability is at most 0.0011.
    assert close.p_worse == pytest.approx(0.7127212181318883, abs=0.005)
    assert close.p_not_worse == pytest.approx(1 - 0.7127212181318883, abs=0.005)
    assert close.interval == pytest.approx((-0.0006123909318747216, 0.016900574480176667), abs=3e-4)
    assert close.verdict == "inconclusive"
    no_margin = st.beta_binomial(10, 1000, 18, 1000, margin=st.Margin())
    assert no_margin.p_worse == pytest.approx(0.9367856667779464, abs=0.005)
    assert no_margin.verdict == "inconclusive"  # 0.937 < 0.95
    assert st.beta_binomial(10, 1000, 18, 1000, margin=st.Margin(), confidence=0.9).verdict == "fail"
    # Higher is better (success counts): the mirror image.
    mirror = st.beta_binomial(18, 1000, 10, 1000, better="higher", margin=st.Margin())
    assert mirror.p_worse == pytest.approx(0.9367856667779464, abs=0.005)
    assert mirror.interval == pytest.approx((-0.016900574480176667, 0.0006123909318747216), abs=3e-4)
    # Fisher's exact one-sided p of [[18, 982], [10, 990]]: the hypergeometric tail summed in
    # rational arithmetic with math.comb.
    assert close.extra["fisherExactP"] == pytest.approx(0.09092016559840668, rel=1e-9)
    assert mirror.extra["fisherExactP"] == pytest.approx(0.09092016559840668, rel=1e-9)
    # R's fisher.test documentation example (Fisher's tea tasting, [[3, 1], [1, 3]],
    # alternative = "greater"): p-value = 0.2429, exactly 17/70.
    tea = st.beta_binomial(1, 4, 3, 4, min_samples=1)
    assert tea.extra["fisherExactP"] == pytest.approx(17 / 70)


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
    ordered = st.Samples.of(range(1, 101))  # 1..100: the r-th order statistic is r
    # Ranks found once by brute force in rational arithmetic (math.comb, fractions): the upper
    # bound is the smallest r with P(Bin(100, 1/2) <= r - 1) >= 0.95 (that is r = 59: 0.9557,
    # while r = 58 gives 0.9334); the lower bound is the largest r with P(Bin(100, 1/2) >= r) >= 0.95
    # (r = 42). The same brute force agrees with the code for every n < 120 and n = 200, 400, 1000,
    # percentiles 10, 50, 90, 95, 99, 99.9 and confidences 0.9, 0.95, 0.99.
    upper = st.percentile_bound(ordered, 50, side="upper", confidence=0.95)
    assert upper.bound == 59.0
    lower = st.percentile_bound(ordered, 50, side="lower", confidence=0.95)
    assert lower.bound == 42.0
    assert st.percentile_bound(ordered, 90, side="upper", confidence=0.95).bound == 96.0
    assert st.percentile_bound(ordered, 90, side="lower", confidence=0.95).bound == 85.0
    assert st.percentile_bound(st.Samples.of(range(1, 1001)), 99, side="upper", confidence=0.9).bound == 995.0
    assert st.percentile_bound(st.Samples.of(range(1, 1001)), 99, side="lower", confidence=0.9).bound == 986.0
    # Wilks' rule (1941): the maximum of 59 observations is a 95 % upper bound of the 95th
    # percentile (1 - 0.95^59 = 0.9515), and 58 are too few (1 - 0.95^58 = 0.9490).
    assert st.percentile_bound(st.Samples.of(range(1, 60)), 95, side="upper").bound == 59.0
    assert st.percentile_bound(st.Samples.of(range(1, 59)), 95, side="upper").reason == "too few observations"
    assert st.percentile_bound(st.Samples.of([1, 2, 3]), 99, side="upper").reason == "too few observations"
    # ... while the largest of 3 is a 95 % lower bound of p99 (0.99^3 = 0.9703 >= 0.95).
    assert st.percentile_bound(st.Samples.of([1, 2, 3]), 99, side="lower").bound == 3.0
    # Student's t: mean 50.5, s = sqrt(100 * 101 / 12) = 29.011491975882016 and t(0.95, 99) =
    # 1.660391 (t tables; 1.6603911560 by bisection on Simpson's integral of the t density).
    mean = st.mean_bound(ordered, side="upper", confidence=0.95)
    assert mean.bound == pytest.approx(50.5 + 1.6603911560 * 29.011491975882016 / 10, rel=1e-9)
    assert mean.bound == pytest.approx(55.31704246996098, rel=1e-9)
    # Clopper-Pearson from its definition, solved once by bisection on exact binomial sums: the upper
    # bound p of 3/100 has P(Bin(100, p) <= 3) = 0.05, the lower one P(Bin(100, p) >= 3) = 0.05.
    rate = st.proportion_bound(3, 100, side="upper", confidence=0.95)
    assert rate.bound == pytest.approx(0.07571079374983009, rel=1e-9)
    assert st.proportion_bound(3, 100, side="lower").bound == pytest.approx(0.008225829107652627, rel=1e-9)
    # None of 100: the closed form 1 - 0.05^(1/100) (the "rule of three", 3/100, approximately).
    assert st.proportion_bound(0, 100, side="upper").bound == pytest.approx(1 - 0.05 ** (1 / 100))
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
