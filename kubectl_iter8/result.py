"""The experiment result: what the runner records after every task, and what assert and report read.

The field names and shapes are Iter8's (v0.13/v0.14 ``result``), so tools written against Iter8's
experiment files keep working. Additions over Iter8 are marked below; unknown fields written by a
newer kubectl-iter8 are kept on read-modify-write rather than dropped.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

MetricType = Literal["Counter", "Gauge", "Histogram", "Sample", "Summary"]


class _Model(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="allow", validate_assignment=False)


class MetricInfo(_Model):
    """What a metric is: Iter8's ``metricsInfo`` entry."""

    description: str = ""
    units: str | None = None
    type: MetricType = "Gauge"


class VersionName(_Model):
    version: str | None = None
    track: str | None = None


class SLO(_Model):
    metric: str
    limit: float


class SLOs(_Model):
    upper: list[SLO] = Field(default_factory=list)
    lower: list[SLO] = Field(default_factory=list)


class SLOsSatisfied(_Model):
    """``upper[i][j]`` tells whether version ``j`` satisfies upper SLO ``i``."""

    upper: list[list[bool]] = Field(default_factory=list)
    lower: list[list[bool]] = Field(default_factory=list)


class Rewards(_Model):
    max: list[str] = Field(default_factory=list)
    min: list[str] = Field(default_factory=list)


class RewardsWinners(_Model):
    """Index of the winning version per reward metric, -1 where no version has a value."""

    max: list[int] = Field(default_factory=list)
    min: list[int] = Field(default_factory=list)


class Insights(_Model):
    """Metrics per version, the SLOs and their verdicts (Iter8's ``insights``)."""

    num_versions: int = Field(default=1, alias="numVersions")
    version_names: list[VersionName] | None = Field(default=None, alias="versionNames")
    metrics_info: dict[str, MetricInfo] = Field(default_factory=dict, alias="metricsInfo")
    non_hist_metric_values: list[dict[str, list[float]]] = Field(
        default_factory=list, alias="nonHistMetricValues"
    )
    slos: SLOs | None = Field(default=None, alias="SLOs")
    slos_satisfied: SLOsSatisfied | None = Field(default=None, alias="SLOsSatisfied")
    rewards: Rewards | None = None
    rewards_winners: RewardsWinners | None = Field(default=None, alias="rewardsWinners")
    #: New: per version, metric name -> an HDR histogram in the standard compressed encoding
    #: (``HISTFAAA...``, as ``hdrh`` writes it), so distributions can be merged and compared exactly.
    #: Latency histograms (``http/latency``, ``grpc/latency``, ...) record microseconds.
    histograms: list[dict[str, str]] = Field(default_factory=list)

    def version_label(self, index: int) -> str:
        """The name reports give version ``index``: its track or version name, else ``version i``."""
        names = self.version_names or []
        if index < len(names):
            name = names[index]
            if name.track and name.version:
                return f"{name.track} ({name.version})"
            if name.track or name.version:
                return str(name.track or name.version)
        return f"version {index}"

    def register_metric(self, name: str, info: MetricInfo) -> None:
        """Declare metric ``name``; declaring it again with different meta is a task bug."""
        known = self.metrics_info.get(name)
        if known is not None and (known.type, known.units) != (info.type, info.units):
            raise ValueError(f"metric {name!r} is already registered as {known.type} in {known.units}")
        self.metrics_info[name] = info

    def add_value(self, version: int, name: str, value: float) -> None:
        """Record an observation of metric ``name`` for version ``version`` (a registered metric)."""
        if name not in self.metrics_info:
            raise ValueError(f"metric {name!r} is not registered")
        if not 0 <= version < self.num_versions:
            raise ValueError(f"version {version} is out of range (experiment has {self.num_versions})")
        while len(self.non_hist_metric_values) < self.num_versions:
            self.non_hist_metric_values.append({})
        self.non_hist_metric_values[version].setdefault(name, []).append(float(value))

    def set_histogram(self, version: int, name: str, encoded: str) -> None:
        """Keep the encoded HDR histogram of metric ``name`` for version ``version``."""
        if not 0 <= version < self.num_versions:
            raise ValueError(f"version {version} is out of range (experiment has {self.num_versions})")
        while len(self.histograms) < self.num_versions:
            self.histograms.append({})
        self.histograms[version][name] = encoded

    def histogram(self, version: int, name: str) -> str | None:
        """The encoded HDR histogram of metric ``name`` for version ``version``, if one was kept."""
        return self.histograms[version].get(name) if version < len(self.histograms) else None

    def scalar(self, version: int, name: str) -> float | None:
        """The latest value of metric ``name`` for version ``version``, or None when there is none.

        Latency statistics resolve in every spelling Iter8 accepted (``http/latency-p50.0``,
        ``grpc/latency/p97.5``, ``http-login/latency/mean``): first as the gauge recorded under the
        normalised name (``http/latency-p50``), then, for a percentile, from the stored HDR histogram
        of ``<prefix>/latency`` (in milliseconds, by the rule the gauges use), so any percentile an
        SLO or report asks for has a value, not only those listed in the task's ``percentiles``.
        """
        if version >= len(self.non_hist_metric_values):
            return None
        values = self.non_hist_metric_values[version].get(name)
        if values is None and name not in self.metrics_info:
            latency = parse_latency_name(name)
            if latency is not None:
                prefix, stat, percent = latency
                values = self.non_hist_metric_values[version].get(f"{prefix}/latency-{stat}")
                if values is None and percent is not None:
                    return self._histogram_percentile(version, f"{prefix}/latency", percent)
        return values[-1] if values else None

    def info(self, name: str) -> MetricInfo | None:
        """What metric ``name`` is: its registered info, or for a latency statistic in another
        spelling (see :meth:`scalar`), the info of the gauge it resolves to or a percentile's."""
        known = self.metrics_info.get(name)
        if known is not None:
            return known
        latency = parse_latency_name(name)
        if latency is None:
            return None
        prefix, stat, percent = latency
        gauge = self.metrics_info.get(f"{prefix}/latency-{stat}")
        if gauge is not None or percent is None:
            return gauge
        if not any(f"{prefix}/latency" in hists for hists in self.histograms):
            return None
        return MetricInfo(
            description=f"{percent:g}-th percentile of observed latency values (from the histogram)",
            units="msec",
            type="Gauge",
        )

    def _histogram_percentile(self, version: int, name: str, percent: float) -> float | None:
        encoded = self.histogram(version, name)
        if encoded is None:
            return None
        info = self.metrics_info.get(name)
        to_ms = _TO_MSEC.get(info.units if info is not None and info.units else "usec")
        if to_ms is None:
            return None
        value = histogram_percentile(encoded, percent)
        return None if value is None else round(value * to_ms, 6)


#: Factors from the units a latency histogram may record to milliseconds (Iter8's latency units).
_TO_MSEC = {"nsec": 1e-6, "usec": 1e-3, "msec": 1.0, "sec": 1e3}

#: ``<prefix>/latency`` then ``-`` or ``/`` then a statistic: Iter8 wrote http's ``latency-p95`` and
#: grpc's sample aggregations ``latency/p95``; percentiles in any decimal spelling (``p95.0``).
_LATENCY_NAME = re.compile(
    r"(?P<prefix>[^/]+)/latency[-/](?:(?P<stat>mean|stddev|min|max)|p(?P<p>[0-9]{1,3}(?:\.[0-9]{1,6})?))"
)


def parse_latency_name(name: str) -> tuple[str, str, float | None] | None:
    """``http/latency-p95.0`` -> (``http``, ``p95``, 95.0); ``grpc/latency/mean`` -> (``grpc``,
    ``mean``, None); None for anything else, or a percentile outside (0, 100]."""
    match = _LATENCY_NAME.fullmatch(name)
    if match is None:
        return None
    if match["stat"]:
        return match["prefix"], match["stat"], None
    percent = float(match["p"])
    if not 0 < percent <= 100:
        return None
    return match["prefix"], percentile_name(percent), percent


def percentile_name(percent: float) -> str:
    """``50.0`` -> ``p50``, ``99.9`` -> ``p99.9``: the spelling the load tasks record gauges under."""
    return "p" + f"{percent:f}".rstrip("0").rstrip(".")


def histogram_percentile(encoded: str, percent: float) -> float | None:
    """The ``percent``-th percentile of an encoded HDR histogram, in its recorded units.

    hdrh's ``get_value_at_percentile`` rule (the one the load tasks' gauges use, so ``p50.0`` read
    here equals the recorded ``p50``), walking only the non-empty buckets: hdrh's own method walks
    every bucket in Python, a tenth of a second per call at millisecond latencies. None for a
    histogram that does not decode or has no values.
    """
    from hdrh.histogram import HdrHistogram  # type: ignore[import-untyped]

    try:
        histogram = HdrHistogram.decode(encoded)
    except Exception:  # a hand-edited or truncated result: the metric is then unavailable
        return None
    if histogram is None or not histogram.get_total_count():
        return None
    target = histogram.get_target_count_at_percentile(percent)
    running = 0
    for index, count in enumerate(histogram.counts[:]):
        if not count:
            continue
        running += count
        if running >= target:
            return float(histogram.get_highest_equivalent_value(histogram.get_value_from_index(index)))
    return None


TaskStatus = Literal["running", "completed", "skipped", "failed"]


class TaskRecord(_Model):
    """What happened to one spec entry (new in kubectl-iter8; Iter8 kept only counters)."""

    task: str
    status: TaskStatus
    start_time: dt.datetime | None = Field(default=None, alias="startTime")
    duration_seconds: float | None = Field(default=None, alias="durationSeconds")
    message: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class Result(_Model):
    """The ``result`` block of an experiment."""

    start_time: dt.datetime | None = Field(default=None, alias="startTime")
    #: New: set when the run has ended, whether it completed or failed.
    end_time: dt.datetime | None = Field(default=None, alias="endTime")
    num_loops: int = Field(default=0, alias="numLoops")
    num_completed_tasks: int = Field(default=0, alias="numCompletedTasks")
    failure: bool = False
    #: New: why the run failed, naming the entry and task.
    failure_message: str | None = Field(default=None, alias="failureMessage")
    insights: Insights | None = None
    iter8_version: str | None = Field(default=None, alias="iter8Version")
    revision: int | None = None
    #: New: one record per spec entry that has started.
    tasks: list[TaskRecord] = Field(default_factory=list)

    def dump(self) -> dict[str, Any]:
        """The result as it is stored: Iter8's camelCase keys, empty optional fields left out."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)
