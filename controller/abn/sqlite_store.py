"""The SQLite metric store: every value in an embedded file, for a single controller replica.

One row per write (application, version number, metric, user, transaction id, value, time) and one
row per assigned user. :meth:`SqliteStore.write` commits before it returns, with
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

from .store import StoreClosedError, Values, finite, new_transaction

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
    PRIMARY KEY (application, version, user)
) WITHOUT ROWID;
"""


class SqliteStore:
    """Metric values in the SQLite file ``path`` (created with its folder when missing)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._closed = False
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30, isolation_level=None)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
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
            db.execute("INSERT OR IGNORE INTO metric_values VALUES (?, ?, ?, ?, ?, ?, ?)", row)
        return txn

    def add_users(self, application: str, version: int, users: Iterable[str]) -> None:
        rows = [(application, int(version), user) for user in users]
        if not rows:
            return
        with self._transaction() as db:
            db.executemany("INSERT OR IGNORE INTO users VALUES (?, ?, ?)", rows)

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
                "SELECT application FROM metric_values UNION SELECT application FROM users"
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
