"""Counts and HDR histograms of one run: shared with the ``grpc`` task, see :mod:`..loadgen.stats`."""

from __future__ import annotations

from ..loadgen.stats import (
    HIGHEST_US,
    LOWEST_US,
    SIGNIFICANT_DIGITS,
    RunStats,
    new_histogram,
    record_all,
)

__all__ = ["HIGHEST_US", "LOWEST_US", "SIGNIFICANT_DIGITS", "RunStats", "new_histogram", "record_all"]
