"""A measured run -> Iter8's metrics and the task record: shared, see :mod:`..loadgen.metrics`."""

from __future__ import annotations

from ..loadgen.metrics import (
    DEFAULT_PERCENTILES,
    all_percentiles,
    details,
    metric_values,
    percentile_name,
    record,
)

__all__ = ["DEFAULT_PERCENTILES", "all_percentiles", "details", "metric_values", "percentile_name", "record"]
