"""Running statistics kept as values are written, so ``/metrics`` costs the same at any number of values.

Per application, metric and version a store keeps two :class:`Running` records, updated by every
write (Welford's method, stable for large values):

* over transactions: every value;
* over the users who wrote (writers): each writer's sum, updated in place when a writer writes again,
  plus the least and greatest sums (the stores keep the sums in an ordered index).

Users assigned to the version who wrote nothing count as 0 over users (:mod:`.summary`'s
semantics); how many there are is only known at read time, so :func:`over_users` merges them in
as a group of zeros. The Redis store runs the same arithmetic in Lua (:mod:`.redis_store`); keep
the two in step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .summary import Stats, clamp


@dataclass(frozen=True)
class Running:
    """Count, mean and sum of squared deviations (``m2``) of a sample, and its least and greatest values."""

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0
    min: float = math.inf
    max: float = -math.inf

    def add(self, value: float) -> Running:
        """The record with ``value`` added to the sample."""
        n = self.n + 1
        delta = value - self.mean
        mean = clamp(self.mean + delta / n)
        m2 = clamp(self.m2 + delta * (value - mean))
        return Running(n, mean, m2, min(self.min, value), max(self.max, value))

    def grow(self, old: float, by: float) -> Running:
        """The record with one member of the sample changed from ``old`` to ``old + by`` (a writer's sum).

        ``min`` and ``max`` are left as they were: the stores read them from their index of sums.
        """
        mean = clamp(self.mean + by / self.n)
        # sum of squares grows by new^2 - old^2, n * mean^2 by by * (mean' + mean): their difference.
        m2 = clamp(self.m2 + by * ((old + by - mean) + (old - self.mean)))
        return Running(self.n, mean, max(m2, 0.0), self.min, self.max)

    def stats(self) -> Stats:
        stddev = math.sqrt(max(self.m2, 0.0) / (self.n - 1)) if self.n > 1 else 0.0
        return Stats(self.n, clamp(self.mean), clamp(stddev), self.min, self.max)


def over_users(writers: Running, idle: int) -> Stats:
    """Statistics over users: the writers' sums and ``idle`` assigned users counted as 0."""
    if idle <= 0:
        return writers.stats()
    n = writers.n + idle
    mean = writers.n * writers.mean / n
    # Chan et al.'s merge of two groups; the group of zeros has mean 0 and no spread.
    m2 = writers.m2 + writers.mean * writers.mean * writers.n * idle / n
    low = min(writers.min, 0.0) if writers.n else 0.0
    high = max(writers.max, 0.0) if writers.n else 0.0
    return Running(n, mean, m2, low, high).stats()
