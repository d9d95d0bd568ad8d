"""A plugin used by the tests: a task that records raw observations for several versions, as a load
generator per version would: HDR latency histograms (microseconds, like the ``http`` task's), the
scalar latency metrics derived from them (milliseconds), request and error counters, and ``Sample``
metrics. The draws are seeded, so every run records the same data.

Loaded through ``ITER8_PLUGINS=iter8_samples_plugin`` (the tests folder is on the import path).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from hdrh.histogram import HdrHistogram
from pydantic import Field

from kubectl_iter8 import MetricInfo, Task, TaskContext, TaskInputs, TaskRegistry, hookimpl


class Distribution(TaskInputs):
    """``n`` draws (milliseconds) from a log-normal with this median and shape, or a normal."""

    kind: Literal["lognormal", "normal"] = "lognormal"
    median: float = Field(gt=0)
    sigma: float = Field(default=0.25, ge=0)
    n: int = Field(default=1000, ge=0)
    seed: int = 0

    def draw(self) -> np.ndarray:
        rng = np.random.default_rng(self.seed)
        if self.kind == "normal":
            return np.clip(rng.normal(self.median, self.sigma, self.n), 0.001, None)
        return self.median * np.exp(rng.normal(0.0, self.sigma, self.n))


class Counts(TaskInputs):
    requests: int = Field(ge=0)
    errors: int = Field(ge=0)


class SamplesInputs(TaskInputs):
    versions: int = Field(default=2, ge=1)
    #: histogram metric name (e.g. ``http/latency``) -> one distribution per version (None: no data)
    histograms: dict[str, list[Distribution | None]] = Field(default_factory=dict)
    #: prefix (e.g. ``http``) -> request and error counts per version
    counts: dict[str, list[Counts | None]] = Field(default_factory=dict)
    #: ``Sample`` metric -> raw values per version
    samples: dict[str, list[list[float]]] = Field(default_factory=dict)


class RecordSamples(Task[SamplesInputs]):
    name = "record-samples"
    Inputs = SamplesInputs

    async def run(self, ctx: TaskContext) -> None:
        insights = ctx.insights
        insights.num_versions = self.inputs.versions
        for name, per_version in self.inputs.histograms.items():
            insights.register_metric(
                name, MetricInfo(description="latency histogram", units="usec", type="Histogram")
            )
            prefix = name.rsplit("/", 1)[0]
            for version, dist in enumerate(per_version):
                if dist is None or dist.n == 0:
                    continue
                histogram = HdrHistogram(1, 3_600_000_000, 3)
                for value in dist.draw():
                    histogram.record_value(max(1, round(float(value) * 1000)))
                insights.set_histogram(version, name, histogram.encode().decode("ascii"))
                scalars = {
                    "latency-mean": histogram.get_mean_value() / 1000,
                    **{
                        f"latency-p{q:g}": histogram.get_value_at_percentile(q) / 1000
                        for q in (50, 90, 95, 99)
                    },
                }
                for metric, value in scalars.items():
                    full = f"{prefix}/{metric}"
                    insights.register_metric(full, MetricInfo(description=metric, units="msec"))
                    insights.add_value(version, full, round(value, 6))
        for prefix, counts in self.inputs.counts.items():
            for metric, kind in (
                ("request-count", "Counter"),
                ("error-count", "Counter"),
                ("error-rate", "Gauge"),
            ):
                insights.register_metric(f"{prefix}/{metric}", MetricInfo(description=metric, type=kind))  # type: ignore[arg-type]
            for version, count in enumerate(counts):
                if count is None:
                    continue
                insights.add_value(version, f"{prefix}/request-count", count.requests)
                insights.add_value(version, f"{prefix}/error-count", count.errors)
                if count.requests:
                    insights.add_value(version, f"{prefix}/error-rate", count.errors / count.requests)
        for name, per_version in self.inputs.samples.items():
            insights.register_metric(name, MetricInfo(description="raw samples", type="Sample"))
            for version, values in enumerate(per_version):
                for value in values:
                    insights.add_value(version, name, value)


@hookimpl
def iter8_register_tasks(registry: TaskRegistry) -> None:
    registry.register(RecordSamples)
