"""``/abnDashboard`` at 10 and at 1,000,000 stored values: from every value (before) and from the
aggregates and the latest values (now), on the SQLite store.

One command::

    python benchmarks/abn_dashboard.py              # 10 and 1,000,000 values
    python benchmarks/abn_dashboard.py --values 10 100000 --json

One application, one metric, two versions, 1,000 users. The values are inserted into a fresh file
with plain SQL (a million acknowledged writes would take minutes), then the store is opened, which
computes the aggregates once from them as it does for a file of an earlier version. Per size, the
median over ``--rounds`` of: the old way (``dashboard(store.values(app))``, every row read into
Python), the new way (``dashboard_from(store.summary(app), store.recent(app, DASHBOARD_SAMPLE))``),
and the new ``/abnValues`` (``samples_from`` with the default limit); with the peak of Python
memory (tracemalloc) of one run of each.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kubectl_iter8.controller.abn.sqlite_store import SqliteStore
from kubectl_iter8.controller.abn.store import WINDOW
from kubectl_iter8.controller.abn.summary import (
    DASHBOARD_SAMPLE,
    dashboard,
    dashboard_from,
    samples_from,
)

APP = "default/shop"


def fill(path: Path, n: int) -> None:
    SqliteStore(path).close()  # the schema
    rng = random.Random(1)
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA synchronous=OFF")
        db.executemany(
            "INSERT INTO metric_values VALUES (?, ?, 'sales', ?, ?, ?, 0)",
            (
                (APP, i % 2, f"user-{rng.randrange(1000)}", f"t{i}", round(rng.uniform(0, 200), 2))
                for i in range(n)
            ),
        )
    db.close()


def measure(run: Callable[[], Any], rounds: int) -> tuple[float, float]:
    """(median seconds, peak MB of Python memory)."""
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    tracemalloc.start()
    run()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return statistics.median(times), peak / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--values", type=int, nargs="+", default=[10, 1_000_000])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for n in args.values:
            path = Path(folder) / f"abn-{n}.sqlite"
            fill(path, n)
            with SqliteStore(path) as store:  # aggregates the values once
                assert store.count(APP) == n
                rounds = 1 if n > 100_000 else args.rounds
                old = measure(lambda: dashboard(store.values(APP)), rounds)
                new = measure(
                    lambda: dashboard_from(store.summary(APP), store.recent(APP, DASHBOARD_SAMPLE)),
                    args.rounds,
                )
                values = measure(
                    lambda: samples_from(APP, store.summary(APP), store.recent(APP, WINDOW), WINDOW),
                    args.rounds,
                )
            results.append({"values": n, "old_dashboard": old, "dashboard": new, "abnValues": values})
    if args.json:
        print(json.dumps(results))
        return
    print(f"{'values':>10}  {'dashboard before':>22}  {'dashboard now':>20}  {'/abnValues now':>20}")
    for r in results:
        cells = [
            f"{r[k][0] * 1000:9.1f} ms {r[k][1]:6.1f} MB" for k in ("old_dashboard", "dashboard", "abnValues")
        ]
        print(f"{r['values']:>10,}  " + "  ".join(f"{c:>20}" for c in cells))


if __name__ == "__main__":
    main()
