"""What one load run measured, in a form that merges exactly across processes and runs.

Latencies live in HDR histograms (microseconds, 1 µs to 1 h, 3 significant digits), so results of
several workers, or later of several pods, add up to the same histogram one process would have
recorded. A :class:`RunStats` travels between processes and into the experiment record as a plain
JSON-serialisable dict (:meth:`RunStats.to_wire`): the histograms in the standard compressed
``HISTFAAA...`` encoding that every HdrHistogram implementation reads.

Two histograms are always kept: ``latency``, one value per request that got a status (an HTTP
response of any status, or a gRPC call's final status; in the open loop measured from the request's
intended send time), and ``lag``, how late each open-loop request left compared with its schedule.
Requests that got no status at all (HTTP: refused, reset, timed out) are counted by reason in
``errors`` and have no latency, as in wrk2.

The ``http`` engine keeps a third, ``error_latency``: the duration of every request that failed (a
response whose status is an error, and one that got none), as Fortio's ``ErrorsDurationHistogram``
that Iter8's ``/httpDashboard`` showed as "Error durations". It travels on the wire only when it
holds something, so a record without it means no error was timed (and the ``grpc`` task never
records one: Iter8's gRPC dashboard had no such panel).

Shared by the ``http`` and ``grpc`` tasks; ``statuses`` holds HTTP status codes or gRPC status
code numbers.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, MutableSequence
from dataclasses import dataclass, field
from typing import Any

from hdrh.histogram import HdrHistogram  # type: ignore[import-untyped]

#: Histogram range in microseconds: 1 µs to one hour.
LOWEST_US = 1
HIGHEST_US = 3_600_000_000
SIGNIFICANT_DIGITS = 3


def new_histogram() -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)


def record_all(histogram: HdrHistogram, values: Iterable[int]) -> None:
    """Record many values; repeated values are counted first (C speed) and recorded once each."""
    for value, count in Counter(values).items():
        histogram.record_value(min(max(value, LOWEST_US), HIGHEST_US), count)


def flush(
    stats: RunStats,
    latencies: MutableSequence[int],
    lags: MutableSequence[int],
    error_latencies: MutableSequence[int] | None = None,
) -> None:
    """Move the latencies, schedule lags and failed requests' durations collected since the last
    flush into ``stats``' histograms (the arrays are emptied in place: the engines' callbacks hold
    their ``append``)."""
    for histogram, values in (
        (stats.latency, latencies),
        (stats.lag, lags),
        (stats.error_latency, error_latencies),
    ):
        if values:
            record_all(histogram, values)
            del values[:]


@dataclass(frozen=True)
class Summary:
    """A histogram's mean, standard deviation, extremes and percentiles (microseconds)."""

    mean: float
    stddev: float
    min: int
    max: int
    #: Requested percentile -> value.
    percentiles: dict[float, int]


def summarize(histogram: HdrHistogram, percentiles: Iterable[float]) -> Summary:
    """The same numbers as hdrh's ``get_mean_value``, ``get_stddev`` and ``get_value_at_percentile``,
    computed in one pass over the non-empty buckets.

    hdrh's own methods walk every bucket up to the largest value through its Python iterator, once
    per call: a tenth of a second per statistic at millisecond latencies, paid by every run. Here
    the counts are read at C speed and only non-empty buckets visited, in the same order and with
    the same arithmetic, so the results are identical (checked in the tests).
    """
    wanted = sorted({float(p) for p in percentiles})
    total_count = histogram.get_total_count()
    if not total_count:
        return Summary(
            0.0, 0.0, histogram.get_min_value(), histogram.get_max_value(), dict.fromkeys(wanted, 0)
        )
    buckets = [(index, count) for index, count in enumerate(histogram.counts[:]) if count]
    value_from_index = histogram.get_value_from_index
    highest = histogram.get_highest_equivalent_value
    median_equivalent = histogram._hdr_median_equiv_value
    medians = [median_equivalent(highest(value_from_index(index))) for index, _ in buckets]
    total = 0
    for (_, count), median in zip(buckets, medians, strict=True):
        total += count * median
    mean = float(total) / total_count
    deviations = 0.0
    for (_, count), median in zip(buckets, medians, strict=True):
        dev = (median * 1.0) - mean
        deviations += (dev * dev) * count
    values: dict[float, int] = {}
    targets = [(p, histogram.get_target_count_at_percentile(p)) for p in wanted]
    running = 0
    position = 0
    for index, count in buckets:
        running += count
        while position < len(targets) and running >= targets[position][1]:
            percentile = targets[position][0]
            value = value_from_index(index)
            values[percentile] = (
                highest(value) if percentile else histogram.get_lowest_equivalent_value(value)
            )
            position += 1
    for percentile, _ in targets[position:]:
        values[percentile] = 0
    return Summary(
        mean,
        math.sqrt(deviations / total_count),
        histogram.get_min_value(),
        histogram.get_max_value(),
        values,
    )


@dataclass
class RunStats:
    """Counts and histograms of one load run (one endpoint, one or more processes)."""

    latency: HdrHistogram = field(default_factory=new_histogram)
    lag: HdrHistogram = field(default_factory=new_histogram)
    #: Durations of the requests that failed (error status or no response), when the engine times them.
    error_latency: HdrHistogram = field(default_factory=new_histogram)
    #: Responses by status code (HTTP status, or gRPC status code number).
    statuses: dict[int, int] = field(default_factory=dict)
    #: Requests that got no response, by reason (``connection refused``, ``timeout``, ...).
    errors: dict[str, int] = field(default_factory=dict)
    #: Seconds from the first scheduled request to the last completion.
    elapsed: float = 0.0
    #: The rate asked for (0 for the closed loop).
    target_qps: float = 0.0
    connections: int = 0
    workers: int = 1

    @property
    def responses(self) -> int:
        return sum(self.statuses.values())

    @property
    def requests(self) -> int:
        """Every request of the measured run: those with a response and those without."""
        return self.responses + sum(self.errors.values())

    def error_count(self, is_error: Any) -> int:
        """Requests without a response plus responses whose status ``is_error(status)``."""
        bad = sum(count for status, count in self.statuses.items() if is_error(status))
        return bad + sum(self.errors.values())

    @property
    def achieved_qps(self) -> float:
        return self.requests / self.elapsed if self.elapsed > 0 else 0.0

    def merge(self, other: RunStats) -> None:
        """Add ``other`` (run at the same time, by another process) into this one."""
        self.latency.add(other.latency)
        self.lag.add(other.lag)
        self.error_latency.add(other.error_latency)
        for status, count in other.statuses.items():
            self.statuses[status] = self.statuses.get(status, 0) + count
        for reason, count in other.errors.items():
            self.errors[reason] = self.errors.get(reason, 0) + count
        self.elapsed = max(self.elapsed, other.elapsed)
        self.target_qps += other.target_qps
        self.connections += other.connections
        self.workers += other.workers

    def to_wire(self) -> dict[str, Any]:
        """A JSON-serialisable dict; :meth:`from_wire` restores it exactly."""
        wire: dict[str, Any] = {
            "latencyHistogram": self.latency.encode().decode("ascii"),
            "lagHistogram": self.lag.encode().decode("ascii"),
            "histogramUnits": "usec",
            "statusCodes": {str(k): v for k, v in sorted(self.statuses.items())},
            "errorReasons": dict(sorted(self.errors.items())),
            "elapsedSeconds": self.elapsed,
            "targetQPS": self.target_qps,
            "connections": self.connections,
            "workers": self.workers,
        }
        if self.error_latency.get_total_count():
            wire["errorLatencyHistogram"] = self.error_latency.encode().decode("ascii")
        return wire

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> RunStats:
        stats = cls(
            statuses={int(k): int(v) for k, v in data["statusCodes"].items()},
            errors={str(k): int(v) for k, v in data["errorReasons"].items()},
            elapsed=float(data["elapsedSeconds"]),
            target_qps=float(data["targetQPS"]),
            connections=int(data["connections"]),
            workers=int(data["workers"]),
        )
        stats.latency.decode_and_add(data["latencyHistogram"])
        if data.get("lagHistogram"):
            stats.lag.decode_and_add(data["lagHistogram"])
        if data.get("errorLatencyHistogram"):
            stats.error_latency.decode_and_add(data["errorLatencyHistogram"])
        return stats
