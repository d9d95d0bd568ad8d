"""The metric store: every value a frontend writes, in an embedded SQLite file.

One table, one row per write (application, version number, metric, user, transaction id, value,
time). :meth:`MetricStore.write` commits before it returns, with ``synchronous=FULL`` in WAL mode,
so a write the service has acknowledged survives a crash of the process or of the machine.
:meth:`MetricStore.summary` aggregates per metric and version, over transactions (every write
counts) and over users (each user's mean first, then statistics over users).

The store is safe to share between threads (one connection behind a lock); SQLite serialises
writers between processes.
"""

from __future__ import annotations

import math
import sqlite3
import statistics
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS metric_values (
    application TEXT NOT NULL,
    version     INTEGER NOT NULL,
    metric      TEXT NOT NULL,
    user        TEXT NOT NULL,
    txn         TEXT NOT NULL PRIMARY KEY,
    value       REAL NOT NULL,
    time        REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS metric_values_by_app ON metric_values (application, metric, version);
"""


@dataclass(frozen=True)
class Stats:
    """Statistics of a sample; ``stddev`` is the sample standard deviation (n - 1), 0 for one value."""

    count: int
    mean: float
    stddev: float
    min: float
    max: float

    @classmethod
    def of(cls, values: list[float]) -> Stats:
        if not values:
            raise ValueError("no values")
        return cls(
            count=len(values),
            mean=statistics.fmean(values),
            stddev=statistics.stdev(values) if len(values) > 1 else 0.0,
            min=min(values),
            max=max(values),
        )


@dataclass(frozen=True)
class VersionSummary:
    """One metric of one version: over every write (``transactions``) and over users' means (``users``)."""

    transactions: Stats
    users: Stats


#: metric name -> version number -> summary
Summary = dict[str, dict[int, VersionSummary]]


class MetricStore:
    """Metric values in the SQLite file ``path`` (created with its folder when missing)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> MetricStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def write(
        self,
        application: str,
        version: int,
        metric: str,
        user: str,
        value: float,
        *,
        transaction: str | None = None,
        at: float | None = None,
    ) -> str:
        """Store one value, durably (committed when this returns); returns its transaction id.

        :raises ValueError: when ``value`` is not a finite number.
        """
        if not math.isfinite(value):
            raise ValueError(f"metric value must be a finite number, not {value!r}")
        txn = transaction or uuid.uuid4().hex
        row = (application, version, metric, user, txn, float(value), time.time() if at is None else at)
        with self._lock, self._db:  # the connection as context manager: BEGIN ... COMMIT
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("INSERT INTO metric_values VALUES (?, ?, ?, ?, ?, ?, ?)", row)
        return txn

    def count(self, application: str | None = None) -> int:
        """How many values are stored (for ``application``, or in all)."""
        with self._lock:
            if application is None:
                (n,) = self._db.execute("SELECT COUNT(*) FROM metric_values").fetchone()
            else:
                (n,) = self._db.execute(
                    "SELECT COUNT(*) FROM metric_values WHERE application = ?", (application,)
                ).fetchone()
        return int(n)

    def summary(self, application: str) -> Summary:
        """Per metric and version of ``application``: statistics over transactions and over users."""
        with self._lock:
            rows = self._db.execute(
                "SELECT metric, version, user, value FROM metric_values WHERE application = ?"
                " ORDER BY metric, version, user, time, txn",
                (application,),
            ).fetchall()
        grouped: dict[str, dict[int, dict[str, list[float]]]] = {}
        for metric, version, user, value in rows:
            grouped.setdefault(metric, {}).setdefault(int(version), {}).setdefault(user, []).append(value)
        out: Summary = {}
        for metric, versions in grouped.items():
            for version, by_user in versions.items():
                every = [v for values in by_user.values() for v in values]
                means = [statistics.fmean(values) for values in by_user.values()]
                out.setdefault(metric, {})[version] = VersionSummary(Stats.of(every), Stats.of(means))
        return out
