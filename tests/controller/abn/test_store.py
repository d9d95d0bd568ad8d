"""The SQLite metric store: durable writes, summaries over transactions and over users."""

from __future__ import annotations

import math
import statistics
import subprocess
import sys

import pytest
from kubectl_iter8.controller.abn.store import MetricStore, Stats


def test_values_survive_reopening(tmp_path):
    path = tmp_path / "sub" / "abn.db"
    with MetricStore(path) as store:
        txn = store.write("default/app", 1, "sales", "alice", 12.5)
        store.write("default/app", 0, "sales", "bob", 3.0)
    with MetricStore(path) as store:
        assert store.count() == 2
        assert store.count("default/app") == 2
        assert store.count("other/app") == 0
        s = store.summary("default/app")
    assert s["sales"][1].transactions == Stats(1, 12.5, 0.0, 12.5, 12.5)
    assert s["sales"][0].transactions.mean == 3.0
    assert len(txn) == 32


def test_write_is_committed_for_another_connection(tmp_path):
    # A second process sees the value as soon as write() returned (nothing buffered).
    path = tmp_path / "abn.db"
    store = MetricStore(path)
    try:
        store.write("ns/app", 2, "latency", "u", 0.25)
        code = (
            "import sqlite3, sys; db = sqlite3.connect(sys.argv[1]);"
            "print(db.execute('SELECT COUNT(*), SUM(value) FROM metric_values').fetchone())"
        )
        out = subprocess.run(
            [sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True, timeout=60
        ).stdout
        assert out.strip() == "(1, 0.25)"
    finally:
        store.close()


def test_summary_numbers(tmp_path):
    with MetricStore(tmp_path / "abn.db") as store:
        # version 1: alice writes 1, 2, 3; bob writes 10
        for value in (1.0, 2.0, 3.0):
            store.write("ns/app", 1, "m", "alice", value)
        store.write("ns/app", 1, "m", "bob", 10.0)
        # version 0: one value; another metric and another application are kept apart
        store.write("ns/app", 0, "m", "carol", -4.0)
        store.write("ns/app", 1, "other", "alice", 7.0)
        store.write("ns/else", 1, "m", "alice", 1000.0)
        s = store.summary("ns/app")
    assert set(s) == {"m", "other"}
    assert set(s["m"]) == {0, 1}
    tx = s["m"][1].transactions
    assert (tx.count, tx.mean, tx.min, tx.max) == (4, 4.0, 1.0, 10.0)
    assert tx.stddev == pytest.approx(math.sqrt(((3**2) + (2**2) + (1**2) + (6**2)) / 3))
    users = s["m"][1].users  # per-user means: alice 2, bob 10
    assert (users.count, users.mean, users.min, users.max) == (2, 6.0, 2.0, 10.0)
    assert users.stddev == pytest.approx(statistics.stdev([2.0, 10.0]))
    assert s["m"][0].transactions == Stats(1, -4.0, 0.0, -4.0, -4.0)
    assert s["m"][0].users == Stats(1, -4.0, 0.0, -4.0, -4.0)
    assert s["other"][1].transactions.count == 1


def test_rejects_non_finite_values(tmp_path):
    with MetricStore(tmp_path / "abn.db") as store:
        for bad in (math.nan, math.inf, -math.inf):
            with pytest.raises(ValueError, match="finite"):
                store.write("ns/app", 0, "m", "u", bad)
        assert store.count() == 0
        assert store.summary("ns/app") == {}


def test_wal_mode(tmp_path):
    with MetricStore(tmp_path / "abn.db") as store:
        (mode,) = store._db.execute("PRAGMA journal_mode").fetchone()
    assert mode == "wal"
