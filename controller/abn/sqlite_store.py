"""The SQLite metric store: every value in an embedded file, for a single controller replica.

One row per write (application, version number, metric, user, transaction id, value, time), one
row per metric name of an application (so the service checks its cap without scanning the values),
and one row per assigned user with when it was last seen; beyond ``max_users`` rows of an
application, the least recently seen are deleted. Each write also updates, in the same
transaction, the running statistics of its (application, metric, version) (``series``, see
:mod:`.aggregates`) and its writer's sum (``user_sums``, indexed by sum for the least and
greatest), which :meth:`SqliteStore.summary` reads without touching the values. A file from an
earlier version gets its aggregates computed from its values once, when opened.
:meth:`SqliteStore.recent` reads the latest values of a series backwards along the index on
(application, metric, version), whose entries end with the rowid: it stops after ``limit`` rows.

:meth:`SqliteStore.write` commits before it returns, with
``synchronous=FULL`` in WAL mode, so a write the service has acknowledged survives a crash of the
process or of the machine. Rows are read back in insertion order (``rowid``), which is write order.

The store is safe to share between threads (one connection behind a lock); SQLite serialises
writers between processes, so two stores on one file (two replicas on one machine) see each
other's writes.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .aggregates import Running, over_users
from .limits import DEFAULT_MAX_USERS
from .store import WINDOW, Recent, RecentValues, StoreClosedError, Values, finite, new_transaction
from .summary import Summary, VersionSummary

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
CREATE TABLE IF NOT EXISTS users (
    application TEXT NOT NULL,
    version     INTEGER NOT NULL,
    user        TEXT NOT NULL,
    seen        REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (application, version, user)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS series (
    application TEXT NOT NULL,
    metric      TEXT NOT NULL,
    version     INTEGER NOT NULL,
    n INTEGER NOT NULL, mean REAL NOT NULL, m2 REAL NOT NULL, min REAL NOT NULL, max REAL NOT NULL,
    wn INTEGER NOT NULL, wmean REAL NOT NULL, wm2 REAL NOT NULL,
    PRIMARY KEY (application, metric, version)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS user_sums (
    application TEXT NOT NULL,
    metric      TEXT NOT NULL,
    version     INTEGER NOT NULL,
    user        TEXT NOT NULL,
    total       REAL NOT NULL,
    PRIMARY KEY (application, metric, version, user)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS user_sums_by_total ON user_sums (application, metric, version, total);
CREATE TABLE IF NOT EXISTS metric_names (
    application TEXT NOT NULL,
    metric      TEXT NOT NULL,
    PRIMARY KEY (application, metric)
) WITHOUT ROWID;
"""

# After the columns and tables files made by earlier versions lack (each step is idempotent).
_MIGRATE = """
INSERT OR IGNORE INTO metric_names SELECT DISTINCT application, metric FROM metric_values;
CREATE INDEX IF NOT EXISTS users_by_seen ON users (application, seen);
"""

# Users per IN (...): well below SQLite's limit on bound parameters (999 before 3.32).
_PARAMETERS = 500


class SqliteStore:
    """Metric values in the SQLite file ``path`` (created with its folder when missing); at most
    ``max_users`` user records per application."""

    def __init__(self, path: str | Path, *, max_users: int = DEFAULT_MAX_USERS) -> None:
        self.path = Path(path)
        self.max_users = max_users
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._closed = False
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30, isolation_level=None)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(users)")}
            if "seen" not in columns:
                self._db.execute("ALTER TABLE users ADD COLUMN seen REAL NOT NULL DEFAULT 0")
            if self._db.execute("SELECT 1 FROM metric_names LIMIT 1").fetchone() is None:
                self._db.executescript(_MIGRATE)
            else:
                self._db.execute("CREATE INDEX IF NOT EXISTS users_by_seen ON users (application, seen)")
            if self._db.execute("SELECT 1 FROM series LIMIT 1").fetchone() is None:
                with self._db:
                    self._db.execute("BEGIN IMMEDIATE")
                    self._aggregate_all(self._db)
        except BaseException:
            self._db.close()
            raise

    def __repr__(self) -> str:
        return f"SqliteStore({str(self.path)!r})"

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._db.close()

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._closed:
                raise StoreClosedError()
            yield self._db

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        # The connection as context manager commits on success and rolls back on an exception;
        # IMMEDIATE takes the write lock up front, so a busy file waits (timeout) instead of failing late.
        with self._connection() as db, db:
            db.execute("BEGIN IMMEDIATE")
            yield db

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
        """Store one value, committed when this returns; returns its transaction id.

        A transaction id that is already stored keeps its first value.

        :raises ValueError: when ``value`` is not a finite number.
        """
        number = finite(value)
        txn = transaction or new_transaction()
        row = (application, int(version), metric, user, txn, number, time.time() if at is None else at)
        with self._transaction() as db:
            stored = db.execute(
                "INSERT OR IGNORE INTO metric_values VALUES (?, ?, ?, ?, ?, ?, ?)", row
            ).rowcount
            if stored:
                db.execute("INSERT OR IGNORE INTO metric_names VALUES (?, ?)", (application, metric))
                self._aggregate(db, application, metric, int(version), user, number)
        return txn

    @staticmethod
    def _aggregate(
        db: sqlite3.Connection, application: str, metric: str, version: int, user: str, value: float
    ) -> None:
        key = (application, metric, version)
        row = db.execute(
            "SELECT n, mean, m2, min, max, wn, wmean, wm2 FROM series"
            " WHERE application = ? AND metric = ? AND version = ?",
            key,
        ).fetchone()
        tx, writers = (Running(*row[:5]), Running(row[5], row[6], row[7])) if row else (Running(), Running())
        old = db.execute(
            "SELECT total FROM user_sums WHERE application = ? AND metric = ? AND version = ? AND user = ?",
            (*key, user),
        ).fetchone()
        if old is None:
            writers = writers.add(value)
            db.execute("INSERT INTO user_sums VALUES (?, ?, ?, ?, ?)", (*key, user, value))
        else:
            writers = writers.grow(old[0], value)
            db.execute(
                "UPDATE user_sums SET total = ?"
                " WHERE application = ? AND metric = ? AND version = ? AND user = ?",
                (old[0] + value, *key, user),
            )
        tx = tx.add(value)
        db.execute(
            "INSERT OR REPLACE INTO series VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (*key, tx.n, tx.mean, tx.m2, tx.min, tx.max, writers.n, writers.mean, writers.m2),
        )

    def _aggregate_all(self, db: sqlite3.Connection) -> None:
        """Compute the aggregates of every stored value (a file written before they were kept)."""
        rows = db.execute(
            "SELECT application, metric, version, user, value FROM metric_values ORDER BY rowid"
        )
        for application, metric, version, user, value in rows.fetchall():
            self._aggregate(db, application, metric, int(version), user, float(value))

    def summary(self, application: str) -> Summary:
        out: Summary = {}
        with self._connection() as db:
            rows = db.execute(
                "SELECT metric, version, n, mean, m2, min, max, wn, wmean, wm2 FROM series"
                " WHERE application = ? ORDER BY metric, version",
                (application,),
            ).fetchall()
            for metric, version, n, mean, m2, low, high, wn, wmean, wm2 in rows:
                key = (application, metric, version)
                by_total = (
                    "FROM user_sums WHERE application = ? AND metric = ? AND version = ? ORDER BY total"
                )
                (wmin,) = db.execute(f"SELECT total {by_total} LIMIT 1", key).fetchone()
                (wmax,) = db.execute(f"SELECT total {by_total} DESC LIMIT 1", key).fetchone()
                (idle,) = db.execute(
                    "SELECT COUNT(*) FROM users u WHERE u.application = ? AND u.version = ? AND NOT EXISTS"
                    " (SELECT 1 FROM user_sums s WHERE s.application = u.application AND s.metric = ?"
                    " AND s.version = u.version AND s.user = u.user)",
                    (application, version, metric),
                ).fetchone()
                out.setdefault(metric, {})[int(version)] = VersionSummary(
                    Running(n, mean, m2, low, high).stats(),
                    over_users(Running(wn, wmean, wm2, wmin, wmax), idle),
                )
        return out

    def recent(self, application: str, limit: int = WINDOW) -> RecentValues:
        limit = max(1, min(limit, WINDOW))
        out: RecentValues = {}
        with self._connection() as db:
            series = db.execute(
                "SELECT metric, version, wn FROM series WHERE application = ? ORDER BY metric, version",
                (application,),
            ).fetchall()
            for metric, version, writers in series:
                key = (application, metric, version)
                rows = db.execute(
                    "SELECT user, value FROM metric_values"
                    " WHERE application = ? AND metric = ? AND version = ? ORDER BY rowid DESC LIMIT ?",
                    (*key, limit),
                ).fetchall()
                rows.reverse()
                users = list(dict.fromkeys(user for user, _ in rows))
                sums: dict[str, float] = {}
                for start in range(0, len(users), _PARAMETERS):
                    chunk = users[start : start + _PARAMETERS]
                    sums.update(
                        db.execute(
                            "SELECT user, total FROM user_sums WHERE application = ? AND metric = ?"
                            f" AND version = ? AND user IN ({','.join('?' * len(chunk))})",
                            (*key, *chunk),
                        ).fetchall()
                    )
                out.setdefault(metric, {})[int(version)] = Recent(
                    [float(value) for _, value in rows], [float(sums[user]) for user in users], int(writers)
                )
        return out

    def add_users(self, application: str, version: int, users: Iterable[str]) -> None:
        now = time.time()
        rows = [(application, int(version), user, now) for user in users]
        if not rows:
            return
        with self._transaction() as db:
            db.executemany(
                "INSERT INTO users VALUES (?, ?, ?, ?) ON CONFLICT DO UPDATE SET seen = excluded.seen", rows
            )
            (n,) = db.execute("SELECT COUNT(*) FROM users WHERE application = ?", (application,)).fetchone()
            if n > self.max_users:
                db.execute(
                    "DELETE FROM users WHERE (application, version, user) IN (SELECT application, version,"
                    " user FROM users WHERE application = ? ORDER BY seen LIMIT ?)",
                    (application, n - self.max_users),
                )

    def metric_names(self, application: str) -> set[str]:
        with self._connection() as db:
            rows = db.execute("SELECT metric FROM metric_names WHERE application = ?", (application,))
            return {metric for (metric,) in rows}

    def values(self, application: str) -> Values:
        with self._connection() as db:
            rows = db.execute(
                "SELECT metric, version, user, value FROM metric_values WHERE application = ? ORDER BY rowid",
                (application,),
            ).fetchall()
            assigned = db.execute(
                "SELECT version, user FROM users WHERE application = ?", (application,)
            ).fetchall()
        out = Values()
        for metric, version, user, value in rows:
            out.metrics.setdefault(metric, {}).setdefault(int(version), {}).setdefault(user, []).append(value)
        for version, user in assigned:
            out.users.setdefault(int(version), set()).add(user)
        return out

    def applications(self) -> list[str]:
        with self._connection() as db:
            rows = db.execute(
                # metric_names, not metric_values: every application with a value has a name there,
                # and a scrape must not scan the values.
                "SELECT application FROM metric_names UNION SELECT application FROM users"
            ).fetchall()
        return sorted(application for (application,) in rows)

    def count(self, application: str | None = None) -> int:
        with self._connection() as db:
            if application is None:
                (n,) = db.execute("SELECT COUNT(*) FROM metric_values").fetchone()
            else:
                (n,) = db.execute(
                    "SELECT COUNT(*) FROM metric_values WHERE application = ?", (application,)
                ).fetchone()
        return int(n)
