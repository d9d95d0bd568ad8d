"""The read side of A/B/n: statistics, dashboards, samples and Prometheus lines.

Pure functions, so both store backends give the same numbers and the HTTP handlers only fetch and
serialise. The HTTP port computes from what the stores keep bounded: :func:`dashboard_from` and
:func:`samples_from` take the aggregates (:meth:`~.store.MetricStore.summary`) and the latest
values (:meth:`~.store.MetricStore.recent`); :func:`dashboard`, :func:`samples` and
:func:`summarize` compute the same documents from every raw value (:class:`Values`), the
reference the tests compare with. Iter8's semantics (``storage/`` and ``metrics/server.go``):

* **over transactions**: every value written for a metric and version counts once;
* **over users**: a user's value is the SUM of that user's values for that metric and version, and a
  user assigned to that version (:meth:`~.store.MetricStore.add_users`) who wrote no value for the
  metric counts as 0, so "revenue over users" is revenue per assigned user, buyers or not.

A version appears under a metric once it has at least one value for it. Standard deviations are
sample ones (n - 1; 0 for a single value). Every number is finite (sums beyond the float range
saturate at its limits), so the results serialise as strict JSON.

**Approximations beyond the window.** The summaries (count, mean, stddev, min, max) are exact at
any number of values. A histogram's bucket edges are exact too (from the aggregates' least and
greatest values); its counts come from the latest values of each version (the dashboard reads
:data:`DASHBOARD_SAMPLE` of them), each standing for ``count / sampled`` values, rounded. Over
users, the sample is the users who wrote one of those values, with their whole sums, each
standing for ``writers / sampled``; users who wrote nothing are added as exact zeros. So while a
version has no more values than the sample, its histograms are exact; beyond, they are estimates
of the distribution, tilted toward recent values and toward users who write often.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..http import escape_label
from .store import RecentValues, Values

#: Buckets of a dashboard histogram (Iter8's default).
BUCKETS = 10
#: Latest values per version a dashboard's histograms are computed from.
DASHBOARD_SAMPLE = 2_000


def clamp(x: float) -> float:
    """``x`` within the float range (NaN as 0), so that it serialises as strict JSON."""
    if math.isnan(x):
        return 0.0
    return max(-sys.float_info.max, min(sys.float_info.max, x))


_clamp = clamp


def _sum(values: Iterable[float]) -> float:
    values = list(values)
    try:
        return _clamp(math.fsum(values))
    except OverflowError:  # fsum's intermediate overflow: the true sum is beyond the float range
        return _clamp(sum(values))


@dataclass(frozen=True)
class Stats:
    """Statistics of a non-empty sample; ``stddev`` is the sample standard deviation (n - 1)."""

    count: int
    mean: float
    stddev: float
    min: float
    max: float

    @classmethod
    def of(cls, values: list[float]) -> Stats:
        if not values:
            raise ValueError("no values")
        n = len(values)
        mean = _clamp(_sum(values) / n)
        # Two passes (mean, then squared deviations) keep the variance accurate for large values.
        # d * d, not d ** 2: the product saturates to inf (then clamped) where ** raises OverflowError.
        stddev = _clamp(math.sqrt(_sum((v - mean) * (v - mean) for v in values) / (n - 1))) if n > 1 else 0.0
        return cls(count=n, mean=mean, stddev=stddev, min=min(values), max=max(values))


@dataclass(frozen=True)
class VersionSummary:
    """One metric of one version: over every value (``transactions``) and over users (``users``)."""

    transactions: Stats
    users: Stats


#: metric name -> version number -> summary
Summary = dict[str, dict[int, VersionSummary]]


def per_user(values: Values, metric: str, version: int) -> list[float]:
    """Each user's value of ``metric`` in ``version``: their sum; then 0 per assigned user without one."""
    by_user = values.metrics.get(metric, {}).get(version, {})
    sums = [_sum(v) for v in by_user.values()]
    idle = sorted(values.users.get(version, set()) - by_user.keys())
    return sums + [0.0] * len(idle)


def transactions(values: Values, metric: str, version: int) -> list[float]:
    """Every value of ``metric`` in ``version``, user by user, each user's in write order."""
    by_user = values.metrics.get(metric, {}).get(version, {})
    return [v for user_values in by_user.values() for v in user_values]


def _versions(values: Values, metric: str) -> list[int]:
    return sorted(v for v, by_user in values.metrics.get(metric, {}).items() if any(by_user.values()))


def _per_version(values: Values) -> dict[str, dict[int, tuple[list[float], list[float]]]]:
    """Per metric with values, per version with values: (its values, its per-user values)."""
    return {
        metric: {
            version: (transactions(values, metric, version), per_user(values, metric, version))
            for version in versions
        }
        for metric in sorted(values.metrics)
        if (versions := _versions(values, metric))
    }


def summarize(values: Values) -> Summary:
    """Statistics per metric and version, over transactions and over users."""
    return {
        metric: {
            version: VersionSummary(Stats.of(tx), Stats.of(users))
            for version, (tx, users) in versions.items()
        }
        for metric, versions in _per_version(values).items()
    }


def _stats_row(version: int, stats: Stats) -> dict[str, Any]:
    return {
        "Version": version,
        "Count": stats.count,
        "Mean": stats.mean,
        "StdDev": stats.stddev,
        "Min": stats.min,
        "Max": stats.max,
    }


def _floor1(x: float) -> str:
    if abs(x) >= 1e15:  # no decimals left to floor; "1e+20", not 21 digits
        return repr(x)
    return f"{math.floor(x * 10) / 10 + 0.0:.1f}"  # "+ 0.0" turns -0.0 into 0.0


def histogram(by_version: Mapping[int, list[float]], buckets: int = BUCKETS) -> list[dict[str, Any]]:
    """Iter8's dashboard histogram: equal-width buckets from the least to the greatest value of all
    versions, every version x bucket listed (zeros too); one bucket when all values are equal."""
    every = [v for vs in by_version.values() for v in vs]
    if not every:
        return []
    points = {version: [(v, 1.0) for v in vs] for version, vs in by_version.items()}
    return weighted_histogram(min(every), max(every), points, buckets)


def weighted_histogram(
    lo: float,
    hi: float,
    by_version: Mapping[int, Sequence[tuple[float, float]]],
    buckets: int = BUCKETS,
) -> list[dict[str, Any]]:
    """:func:`histogram` over ``[lo, hi]`` of (value, weight) points: a bucket's ``Value`` is the sum
    of its points' weights, rounded (each point of a sample stands for ``weight`` values)."""
    n = buckets if hi > lo else 1
    width = (hi - lo) / n
    if not math.isfinite(width):  # a span beyond the float range: scale before subtracting
        width = hi / n - lo / n
    edges = [lo + i * width for i in range(n)] + [hi]
    edges = [e if math.isfinite(e) else lo / n * (n - i) + hi / n * i for i, e in enumerate(edges)]
    labels = [f"{_floor1(edges[i])} - {_floor1(edges[i + 1])}" for i in range(n)]
    rows: list[dict[str, Any]] = []
    for version in sorted(by_version):
        counts = [0.0] * n
        for v, weight in by_version[version]:
            position = (v - lo) / width if width > 0 else 0.0
            if not math.isfinite(position):
                position = v / width - lo / width
            # Like gonum's plotter.Hist (Iter8): the greatest value falls in the last bucket.
            counts[max(0, min(int(position), n - 1))] += weight
        rows.extend(
            {"Version": str(version), "Bucket": label, "Value": round(count)}
            for label, count in zip(labels, counts, strict=True)
        )
    return rows


def dashboard(values: Values) -> dict[str, Any]:
    """Iter8's ``/abnDashboard`` document: per metric, summaries and histograms (transactions, users)."""
    out: dict[str, Any] = {}
    for metric, versions in _per_version(values).items():
        over_tx = {version: tx for version, (tx, _) in versions.items()}
        over_users = {version: users for version, (_, users) in versions.items()}
        out[metric] = {
            "SummaryOverTransactions": [_stats_row(v, Stats.of(tx)) for v, tx in over_tx.items()],
            "SummaryOverUsers": [_stats_row(v, Stats.of(users)) for v, users in over_users.items()],
            "HistogramsOverTransactions": histogram(over_tx),
            "HistogramsOverUsers": histogram(over_users),
        }
    return out


def samples(application: str, values: Values) -> dict[str, Any]:
    """The ``/abnValues`` document: every value per metric and version, over transactions and over users."""
    return {
        "application": application,
        "metrics": {
            metric: {
                str(version): {"transactions": tx, "users": users}
                for version, (tx, users) in versions.items()
            }
            for metric, versions in _per_version(values).items()
        },
    }


def _scale(total: int, sampled: int) -> float:
    """What one sampled item stands for: 1 when the sample is everything."""
    return total / sampled if sampled and total > sampled else 1.0


def dashboard_from(summary: Summary, recent: RecentValues) -> dict[str, Any]:
    """:func:`dashboard` from the aggregates and the latest values, at a cost that does not grow with
    the number of values (the module's docstring says where it is an estimate)."""
    out: dict[str, Any] = {}
    for metric, versions in sorted(summary.items()):
        latest = recent.get(metric, {})
        over_tx: dict[int, list[tuple[float, float]]] = {}
        over_users: dict[int, list[tuple[float, float]]] = {}
        for version, stats in versions.items():
            sample = latest.get(version)
            if sample is None:  # its first value arrived between the two reads
                continue
            weight = _scale(stats.transactions.count, len(sample.values))
            over_tx[version] = [(v, weight) for v in sample.values]
            weight = _scale(sample.writers, len(sample.sums))
            idle = max(stats.users.count - sample.writers, 0)
            over_users[version] = [(v, weight) for v in sample.sums] + ([(0.0, float(idle))] if idle else [])
        ordered = sorted(versions)
        out[metric] = {
            "SummaryOverTransactions": [_stats_row(v, versions[v].transactions) for v in ordered],
            "SummaryOverUsers": [_stats_row(v, versions[v].users) for v in ordered],
            "HistogramsOverTransactions": weighted_histogram(
                min(versions[v].transactions.min for v in ordered),
                max(versions[v].transactions.max for v in ordered),
                over_tx,
            ),
            "HistogramsOverUsers": weighted_histogram(
                min(versions[v].users.min for v in ordered),
                max(versions[v].users.max for v in ordered),
                over_users,
            ),
        }
    return out


def samples_from(application: str, summary: Summary, recent: RecentValues, limit: int) -> dict[str, Any]:
    """:func:`samples` bounded by ``limit`` values per metric, version and list: over transactions
    the latest values; over users the sums of their users, and the assigned users who wrote nothing
    as zeros in the same proportion as among all users (cut in proportion to ``limit`` if need be).
    ``count`` gives the sizes of the whole populations, so a reader knows when it got a sample."""
    metrics: dict[str, Any] = {}
    for metric, versions in sorted(summary.items()):
        latest = recent.get(metric, {})
        out: dict[str, Any] = {}
        for version, stats in sorted(versions.items()):
            sample = latest.get(version)
            if sample is None:
                continue
            sums = sample.sums
            idle = max(stats.users.count - sample.writers, 0)
            zeros = idle if len(sums) >= sample.writers else round(idle * len(sums) / sample.writers)
            if len(sums) + zeros > limit:
                keep = round(limit * len(sums) / (len(sums) + zeros))
                sums, zeros = sums[len(sums) - keep :], limit - keep
            out[str(version)] = {
                "transactions": sample.values[-limit:],
                "users": sums + [0.0] * zeros,
                "count": {"transactions": stats.transactions.count, "users": stats.users.count},
            }
        if out:
            metrics[metric] = out
    return {"application": application, "limit": limit, "metrics": metrics}


_FAMILIES = (
    ("count", "Number of values of an A/B/n metric (over transactions) or of users (over users)"),
    ("mean", "Mean of an A/B/n metric"),
    ("stddev", "Sample standard deviation of an A/B/n metric"),
    ("min", "Least value of an A/B/n metric"),
    ("max", "Greatest value of an A/B/n metric"),
)


def _number(x: float) -> str:
    return str(x) if isinstance(x, int) else repr(float(x))


def prometheus_lines(summaries: Mapping[str, Summary]) -> list[str]:
    """Gauges ``iter8_abn_metric_{count,mean,stddev,min,max}`` in Prometheus text format 0.0.4.

    ``summaries`` maps ``"namespace/application"`` (a bare name means namespace ``default``) to
    :func:`summarize` of its values. HELP and TYPE come once per family, even with no samples.
    """
    lines: list[str] = []
    for stat, text in _FAMILIES:
        name = f"iter8_abn_metric_{stat}"
        lines += [f"# HELP {name} {text}.", f"# TYPE {name} gauge"]
        for key in sorted(summaries):
            namespace, slash, application = key.partition("/")
            if not slash:
                namespace, application = "default", key
            for metric, versions in sorted(summaries[key].items()):
                for version, summary in sorted(versions.items()):
                    for over, stats in (("transactions", summary.transactions), ("users", summary.users)):
                        labels = (
                            f'namespace="{escape_label(namespace)}",application="{escape_label(application)}",'
                            f'metric="{escape_label(metric)}",version="{version}",over="{over}"'
                        )
                        lines.append(f"{name}{{{labels}}} {_number(getattr(stats, stat))}")
    return lines
