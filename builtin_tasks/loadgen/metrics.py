"""From what a run measured to Iter8's metrics and the task record.

Iter8's names and meanings are kept so that existing SLOs keep working: ``<prefix>/request-count``
(every request of the measured run, answered or not), ``error-count`` (responses whose status is
an error, e.g. in the ``http`` task's ``errorRanges``, plus requests that got no response),
``error-rate`` (their ratio; only when there were requests), and
``latency-mean|stddev|min|max|pNN`` in milliseconds over the requests that got a response.
``<prefix>`` is the task's name (``http``, ``grpc``), or ``<task>-<endpoint>`` for named endpoints.
Percentile names print the number as Iter8 did (``p50``, ``p99.9``).

The encoded latency histogram (microseconds) is also kept in the insights as ``<prefix>/latency``.
The record (:func:`details`) adds what Iter8 lacked: status-code and error-reason counts, achieved
versus asked-for rate, how far the open loop fell behind its schedule, and the encoded HDR
histograms, from which any other percentile can be read and results merged exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from kubectl_iter8.result import Insights, MetricInfo

from .stats import RunStats, summarize

#: Always reported, whatever the experiment asks for in addition (Iter8's list).
DEFAULT_PERCENTILES = (50.0, 75.0, 90.0, 95.0, 99.0, 99.9)


E = TypeVar("E")


def named_endpoints(
    protocol: str, endpoints: Mapping[str, E] | None, default: Callable[[], E]
) -> list[tuple[str, E]]:
    """Metric prefixes with their endpoints: ``<protocol>-<name>`` per named endpoint, else ``<protocol>``."""
    if endpoints:
        return [(f"{protocol}-{key}", endpoint) for key, endpoint in endpoints.items()]
    return [(protocol, default())]


def percentile_name(percentile: float) -> str:
    """``50.0`` -> ``p50``, ``99.9`` -> ``p99.9`` (Iter8's normalised spelling)."""
    text = f"{percentile:f}".rstrip("0").rstrip(".")
    return f"p{text}"


def all_percentiles(extra: Iterable[float]) -> list[float]:
    return sorted({*DEFAULT_PERCENTILES, *(float(p) for p in extra)})


def _ms(microseconds: float) -> float:
    return round(microseconds / 1000.0, 6)


def metric_values(
    stats: RunStats, is_error: Callable[[int], bool], percentiles: Iterable[float]
) -> list[tuple[str, float, MetricInfo]]:
    """``(name without prefix, value, info)`` for every metric the run yields."""
    requests = stats.requests
    errors = stats.error_count(is_error)
    out: list[tuple[str, float, MetricInfo]] = [
        ("request-count", requests, MetricInfo(description="number of requests sent", type="Counter")),
        (
            "error-count",
            errors,
            MetricInfo(description="number of responses that were errors", type="Counter"),
        ),
    ]
    if requests > 0:
        out.append(
            (
                "error-rate",
                errors / requests,
                MetricInfo(description="fraction of responses that were errors"),
            )
        )
    latency = stats.latency
    if latency.get_total_count() > 0:

        def gauge(what: str) -> MetricInfo:
            return MetricInfo(description=f"{what} of observed latency values", units="msec", type="Gauge")

        wanted = all_percentiles(percentiles)
        summary = summarize(latency, wanted)
        out += [
            ("latency-mean", _ms(summary.mean), gauge("mean")),
            ("latency-stddev", _ms(summary.stddev), gauge("standard deviation")),
            ("latency-min", _ms(summary.min), gauge("minimum")),
            ("latency-max", _ms(summary.max), gauge("maximum")),
        ]
        for percentile in wanted:
            value = _ms(summary.percentiles[percentile])
            out.append(
                (f"latency-{percentile_name(percentile)}", value, gauge(f"{percentile:g}-th percentile"))
            )
    return out


def record(
    insights: Insights,
    prefix: str,
    stats: RunStats,
    is_error: Callable[[int], bool],
    percentiles: Iterable[float],
) -> dict[str, float]:
    """Register and add the run's metrics for version 0; returns them by full name."""
    values: dict[str, float] = {}
    for name, value, info in metric_values(stats, is_error, percentiles):
        full = f"{prefix}/{name}"
        insights.register_metric(full, info)
        insights.add_value(0, full, value)
        values[full] = value
    # The whole distribution too, mergeable across runs: ``<prefix>/latency``, in microseconds.
    insights.set_histogram(0, f"{prefix}/latency", stats.latency.encode().decode("ascii"))
    return values


def details(stats: RunStats, is_error: Callable[[int], bool]) -> dict[str, Any]:
    """The facts kept in the task record for one endpoint (JSON/YAML-serialisable)."""
    requests = stats.requests
    errors = stats.error_count(is_error)
    data: dict[str, Any] = {
        "loadModel": "open" if stats.target_qps > 0 else "closed",
        "requests": requests,
        "responses": stats.responses,
        "errors": errors,
        "errorRate": errors / requests if requests else None,
        "achievedQPS": round(stats.achieved_qps, 3),
    }
    if stats.target_qps > 0:
        lag = summarize(stats.lag, [99.0])
        counted = stats.lag.get_total_count() > 0
        data["scheduleLag"] = {
            "meanMs": _ms(lag.mean) if counted else 0.0,
            "p99Ms": _ms(lag.percentiles[99.0]) if counted else 0.0,
            "maxMs": _ms(lag.max) if counted else 0.0,
        }
    data.update(stats.to_wire())
    if stats.target_qps <= 0:
        data.pop("lagHistogram")
    return data
