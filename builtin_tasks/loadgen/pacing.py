"""The open-loop schedule shared by the load engines: request *i* is due at ``t0 + phase + i / qps``.

Latency of an open-loop request counts from when it was *due* (wrk2's rule), so a stalled server
shows up in the percentiles instead of quietly lowering the rate (coordinated omission). Timers on
an event loop tick in milliseconds, so a request may leave up to :data:`EARLY_NS` before it is
due; its latency then counts from when it actually left, so early sends never flatter the result.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: How early (ns) an open-loop request may leave; it is then timed from its actual send.
EARLY_NS = 1_000_000


def requests_within(duration: float, qps: float, phase: float = 0.0) -> int:
    """How many requests are due within ``duration`` seconds: ``phase + i / qps < duration``."""
    if qps <= 0:
        raise ValueError("an open-loop schedule needs qps > 0")
    return max(0, math.ceil((duration * 1e9 - phase * 1e9) / (1e9 / qps)))


@dataclass(frozen=True)
class Schedule:
    """When each request of an open loop is due, in ``perf_counter_ns`` time."""

    t0: int
    qps: float
    phase: float = 0.0

    def due(self, index: int) -> int:
        return self.t0 + int(self.phase * 1e9 + index * (1e9 / self.qps))

    def start_of(self, index: int, now: int) -> tuple[int, int]:
        """``(start, lag)`` in ns for request ``index`` leaving at ``now``: latency counts from
        ``start`` (its due time when late, else the actual send), ``lag`` is how late it left."""
        due = self.due(index)
        if due < now:
            return due, now - due
        return now, 0
