"""A plugin used by the tests: a task that records given metric values, as a metrics source would.

Loaded through ``ITER8_PLUGINS=iter8_test_plugin`` (the tests folder is on the import path).
"""

from __future__ import annotations

from pydantic import Field

from kubectl_iter8 import MetricInfo, Task, TaskContext, TaskInputs, TaskRegistry, hookimpl


class RecordInputs(TaskInputs):
    #: metric name -> one value per version (None: no value for that version)
    values: dict[str, list[float | None]] = Field(default_factory=dict)
    versions: int = 1


class RecordMetrics(Task[RecordInputs]):
    name = "record-metrics"
    Inputs = RecordInputs

    async def run(self, ctx: TaskContext) -> None:
        insights = ctx.insights
        insights.num_versions = self.inputs.versions
        for metric, per_version in self.inputs.values.items():
            insights.register_metric(metric, MetricInfo(description=f"test metric {metric}", units="msec"))
            for version, value in enumerate(per_version):
                if value is not None:
                    insights.add_value(version, metric, value)


@hookimpl
def iter8_register_tasks(registry: TaskRegistry) -> None:
    registry.register(RecordMetrics)
