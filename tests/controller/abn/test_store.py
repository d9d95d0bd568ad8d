"""The metric stores: one set of behaviour tests for both backends (SQLite file, real Redis server),
then what is particular to each, and ``--abn-store`` URLs."""

from __future__ import annotations

import json
import logging
import math
import random
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from kubectl_iter8.controller.abn.redis_store import RedisStore
from kubectl_iter8.controller.abn.sqlite_store import SqliteStore
from kubectl_iter8.controller.abn.store import WINDOW, MetricStore, Recent, StoreClosedError, Values
from kubectl_iter8.controller.abn.store_url import (
    default_sqlite_file,
    open_store,
    parse_redis_url,
    private_folder,
    redact,
    sqlite_path,
)
from kubectl_iter8.controller.abn.summary import (
    DASHBOARD_SAMPLE,
    Summary,
    dashboard,
    dashboard_from,
    samples,
    samples_from,
    summarize,
)

from kubectl_iter8.errors import UsageError

APP = "ns/app"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Backend:
    name: str
    url: str

    def open(self) -> MetricStore:
        return open_store(self.url)


@pytest.fixture(params=["sqlite", "redis"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "sqlite":
        return Backend("sqlite", f"sqlite:{tmp_path / 'sub' / 'abn.db'}")
    return Backend("redis", request.getfixturevalue("redis_url"))


@pytest.fixture
def store(backend: Backend) -> Iterator[MetricStore]:
    with backend.open() as s:
        yield s


# --- behaviour, on both backends ----------------------------------------------------------------


def test_backend_type(backend: Backend, store: MetricStore):
    assert isinstance(store, {"sqlite": SqliteStore, "redis": RedisStore}[backend.name])
    assert isinstance(store, MetricStore)


def test_write_is_durable_for_another_process(backend: Backend, store: MetricStore):
    # Nothing buffered: a fresh process opening the same URL sees the value as soon as write() returned.
    txn = store.write(APP, 2, "latency", "u", 0.25)
    assert len(txn) == 32
    code = (
        "import json, sys\n"
        "from kubectl_iter8.controller.abn.store_url import open_store\n"
        "with open_store(sys.argv[1]) as s:\n"
        "    print(json.dumps([s.count(), s.values(sys.argv[2]).metrics]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, backend.url, APP], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert json.loads(out) == [1, {"latency": {"2": {"u": [0.25]}}}]


def test_values_survive_reopening(backend: Backend):
    with backend.open() as store:
        store.write(APP, 1, "sales", "alice", 12.5)
        store.add_users(APP, 1, ["alice", "bob"])
    with backend.open() as store:
        assert store.count() == 1
        assert store.values(APP) == Values({"sales": {1: {"alice": [12.5]}}}, {1: {"alice", "bob"}})


def test_values_grouping(store: MetricStore):
    store.write(APP, 1, "m", "alice", 3.0, at=300.0)
    store.write(APP, 1, "m", "bob", 10.0)
    store.write(APP, 1, "m", "alice", 1.0, at=100.0)  # write order, not time order
    store.write(APP, 1, "m", "alice", 2.0)
    store.write(APP, 0, "m", "carol", -4.0)
    store.write(APP, 1, "other", "alice", 7.0)
    store.write("ns/else", 1, "m", "alice", 1000.0)
    store.add_users(APP, 0, ["carol", "dave"])
    values = store.values(APP)
    assert values.metrics == {
        "m": {1: {"alice": [3.0, 1.0, 2.0], "bob": [10.0]}, 0: {"carol": [-4.0]}},
        "other": {1: {"alice": [7.0]}},
    }
    assert values.users == {0: {"carol", "dave"}}
    assert store.values("ns/else").metrics == {"m": {1: {"alice": [1000.0]}}}
    assert store.values("ns/none") == Values()


def test_add_users_is_idempotent(store: MetricStore):
    store.add_users(APP, 1, ["a", "b", "a"])
    store.add_users(APP, 1, iter(["b", "c"]))
    store.add_users(APP, 2, ["a"])
    store.add_users(APP, 3, [])
    store.add_users("ns/nobody", 0, [])
    assert store.values(APP).users == {1: {"a", "b", "c"}, 2: {"a"}}
    assert store.count() == 0
    assert store.applications() == [APP]


def test_many_users_in_one_call(store: MetricStore):
    users = [f"user-{i}" for i in range(2500)]
    store.add_users(APP, 0, users)
    assert store.values(APP).users == {0: set(users)}


def test_applications(store: MetricStore):
    assert store.applications() == []
    store.write("zz/values-only", 0, "m", "u", 1.0)
    store.add_users("aa/users-only", 0, ["u"])
    store.write("mm/both", 0, "m", "u", 1.0)
    store.add_users("mm/both", 0, ["u"])
    assert store.applications() == ["aa/users-only", "mm/both", "zz/values-only"]


def test_count(store: MetricStore):
    assert store.count() == 0
    for i in range(3):
        store.write(APP, i, "m", "u", float(i))
    store.write("ns/b", 0, "m", "u", 1.0)
    assert (store.count(), store.count(APP), store.count("ns/b"), store.count("ns/none")) == (4, 3, 1, 0)


def test_concurrent_writes(store: MetricStore):
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(200):
                store.write(APP, n % 2, "m", f"user-{n}", float(i))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.count() == store.count(APP) == 1600
    values = store.values(APP).metrics["m"]
    for n in range(8):
        assert values[n % 2][f"user-{n}"] == [float(i) for i in range(200)]


def test_two_stores_see_each_others_writes(backend: Backend):
    # Two replicas of the controller on one backend.
    with backend.open() as one, backend.open() as two:
        one.write(APP, 0, "m", "alice", 1.0)
        two.write(APP, 1, "m", "bob", 2.0)
        one.add_users(APP, 1, ["carol"])
        for store in (one, two):
            assert store.values(APP) == Values(
                {"m": {0: {"alice": [1.0]}, 1: {"bob": [2.0]}}}, {1: {"carol"}}
            )
            assert store.count() == 2
            assert store.applications() == [APP]


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_rejects_non_finite_values(store: MetricStore, bad: float):
    with pytest.raises(ValueError, match="finite"):
        store.write(APP, 0, "m", "u", bad)
    assert store.count() == 0
    assert store.applications() == []


def test_a_transaction_is_stored_once(store: MetricStore):
    # A retried write (same transaction id) does not count twice; the first value stays.
    assert store.write(APP, 0, "m", "u", 1.0, transaction="t-1") == "t-1"
    assert store.write(APP, 0, "m", "u", 2.0, transaction="t-1") == "t-1"
    assert store.write(APP, 0, "m", "u", 3.0) != store.write(APP, 0, "m", "u", 3.0)
    assert store.count() == 3
    assert store.values(APP).metrics == {"m": {0: {"u": [1.0, 3.0, 3.0]}}}


def test_closed_store_raises(backend: Backend):
    store = backend.open()
    store.close()
    store.close()  # twice is fine
    with pytest.raises(StoreClosedError, match="closed"):
        store.write(APP, 0, "m", "u", 1.0)
    with pytest.raises(StoreClosedError):
        store.values(APP)


def test_metric_names(store: MetricStore):
    assert store.metric_names(APP) == set()
    store.write(APP, 0, "sales", "u", 1.0)
    store.write(APP, 1, "sales", "v", 1.0)
    store.write(APP, 1, "clicks", "v", 1.0)
    store.write("ns/else", 1, "other", "v", 1.0)
    assert store.metric_names(APP) == {"sales", "clicks"}


def test_user_records_are_capped_least_recently_seen_first(backend: Backend):
    with open_store(backend.url, max_users=3) as store:
        store.add_users(APP, 0, ["a"])
        store.add_users(APP, 1, ["b"])
        store.add_users(APP, 0, ["c"])
        store.add_users(APP, 0, ["a"])  # seen again: now the most recent
        store.add_users(APP, 1, ["d"])  # b, the least recently seen, goes
        assert store.values(APP).users == {0: {"a", "c"}, 1: {"d"}}
        store.add_users(APP, 2, ["e", "f", "g", "h"])  # more than the cap in one call
        assert sum(len(users) for users in store.values(APP).users.values()) == 3
        store.add_users("ns/other", 0, ["x"])  # per application
        assert store.values("ns/other").users == {0: {"x"}}


def assert_same_summary(got: Summary, expected: Summary) -> None:
    assert {m: list(v) for m, v in got.items()} == {m: list(v) for m, v in expected.items()}
    for metric, versions in expected.items():
        for version, summary in versions.items():
            for over in ("transactions", "users"):
                a, b = getattr(got[metric][version], over), getattr(summary, over)
                assert a.count == b.count, (metric, version, over)
                # A user's sum is kept as a running sum, the reference is fsum: the last digit may differ.
                assert (a.min, a.max) == pytest.approx((b.min, b.max), rel=1e-15), (metric, version, over)
                assert a.mean == pytest.approx(b.mean, rel=1e-9, abs=1e-9), (metric, version, over)
                assert a.stddev == pytest.approx(b.stddev, rel=1e-9, abs=1e-9), (metric, version, over)


def test_summary_from_aggregates_matches_the_values(store: MetricStore):
    rng = random.Random(7)
    users = [f"user-{i}" for i in range(40)]
    store.add_users(APP, 0, users[:30])
    store.add_users(APP, 10, users[20:])  # version 10 sorts after 2, not after 1
    store.add_users(APP, 2, ["idle-only"])
    for _ in range(600):
        metric = rng.choice(["sales", "refunds", "a:b"])
        value = rng.choice([rng.uniform(-50, 500), float(rng.randint(-3, 3)), 1e12 + rng.random()])
        store.write(APP, rng.choice([0, 10, 2]), metric, rng.choice(users), value)
    store.write(APP, 0, "sales", "u", 5.0, transaction="t")
    store.write(APP, 0, "sales", "u", 99.0, transaction="t")  # a retry: stored once, counted once
    expected = summarize(store.values(APP))
    assert_same_summary(store.summary(APP), expected)
    assert list(store.summary(APP)["sales"]) == [0, 2, 10]
    assert store.summary("ns/none") == {}


# --- SQLite only -------------------------------------------------------------------------------


def test_sqlite_scrape_queries_never_touch_the_values(tmp_path: Path):
    with SqliteStore(tmp_path / "abn.db") as store:
        store.write(APP, 0, "sales", "u", 1.0)
        store.add_users("ns/users-only", 0, ["v"])
        statements: list[str] = []
        store._db.set_trace_callback(statements.append)
        assert store.applications() == [APP, "ns/users-only"]
        assert store.summary(APP)["sales"][0].transactions.count == 1
        store._db.set_trace_callback(None)
    assert statements
    assert not [sql for sql in statements if "metric_values" in sql]


def test_sqlite_file_of_an_earlier_version_is_upgraded(tmp_path: Path):
    import sqlite3

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        db.executescript(
            "CREATE TABLE metric_values (application TEXT NOT NULL, version INTEGER NOT NULL,"
            " metric TEXT NOT NULL, user TEXT NOT NULL, txn TEXT NOT NULL PRIMARY KEY, value REAL NOT NULL,"
            " time REAL NOT NULL);"
            "CREATE TABLE users (application TEXT NOT NULL, version INTEGER NOT NULL, user TEXT NOT NULL,"
            " PRIMARY KEY (application, version, user)) WITHOUT ROWID;"
            "INSERT INTO metric_values VALUES ('ns/app', 0, 'sales', 'u', 't', 1.5, 1.0);"
            "INSERT INTO users VALUES ('ns/app', 0, 'u');"
        )
    db.close()
    with SqliteStore(path, max_users=2) as store:
        assert store.metric_names(APP) == {"sales"}
        assert store.summary(APP)["sales"][0].transactions.count == 1  # aggregated from the old values
        store.write(APP, 0, "sales", "u", 2.5)
        assert store.summary(APP)["sales"][0].users.mean == 4.0
        store.add_users(APP, 1, ["v", "w"])  # the old record, never seen since, goes first
        assert store.values(APP) == Values({"sales": {0: {"u": [1.5, 2.5]}}}, {1: {"v", "w"}})


def test_sqlite_settings_and_rows(tmp_path: Path):
    with SqliteStore(tmp_path / "abn.db") as store:
        txn = store.write(APP, 1, "m", "u", 2.5, at=123.0)
        (mode,) = store._db.execute("PRAGMA journal_mode").fetchone()
        (sync,) = store._db.execute("PRAGMA synchronous").fetchone()
        row = store._db.execute("SELECT * FROM metric_values").fetchone()
    assert (mode, sync) == ("wal", 2)  # 2 is FULL
    assert row == (APP, 1, "m", "u", txn, 2.5, 123.0)


# --- Redis only --------------------------------------------------------------------------------


def test_redis_keys(redis_url: str):
    with open_store(redis_url) as store:
        store.write(APP, 1, "m", "u", 2.5, transaction="t", at=123.0)
        store.add_users(APP, 1, ["u"])
        assert isinstance(store, RedisStore)
        client = store.client
        assert sorted(client.keys("*")) == [
            "iter8:abn:apps",
            "iter8:abn:{ns/app}:agg:1:m",
            "iter8:abn:{ns/app}:aggregated",
            "iter8:abn:{ns/app}:metrics",
            "iter8:abn:{ns/app}:recent:1:m",
            "iter8:abn:{ns/app}:series",
            "iter8:abn:{ns/app}:sums:1:m",
            "iter8:abn:{ns/app}:txns",
            "iter8:abn:{ns/app}:user-versions",
            "iter8:abn:{ns/app}:users-seen",
            "iter8:abn:{ns/app}:users:1",
            "iter8:abn:{ns/app}:values",
            "iter8:abn:{ns/app}:windowed",
        ]
        assert client.lrange("iter8:abn:{ns/app}:values", 0, -1) == ['[1,"m","u","t",2.5,123.0]']
        assert client.lrange("iter8:abn:{ns/app}:recent:1:m", 0, -1) == ['[1,"m","u","t",2.5,123.0]']


def test_redis_values_written_before_aggregates_are_aggregated(redis_url: str):
    with open_store(redis_url) as store:
        assert isinstance(store, RedisStore)
        for i in range(20):
            store.write(APP, i % 3, "sales", f"u{i % 7}", float(i) - 4.5)
        expected = summarize(store.values(APP))
        client = store.client
        stale = [*client.keys("iter8:abn:{ns/app}:agg:*"), *client.keys("iter8:abn:{ns/app}:sums:*")]
        client.delete(*stale, "iter8:abn:{ns/app}:series", "iter8:abn:{ns/app}:aggregated")
        assert_same_summary(store.summary(APP), expected)  # aggregated on read...
        client.delete(*stale, "iter8:abn:{ns/app}:series", "iter8:abn:{ns/app}:aggregated")
        store.write(APP, 1, "sales", "u1", 3.0)  # ...or on the next write
        assert_same_summary(store.summary(APP), summarize(store.values(APP)))


def test_redis_restart_keeps_acknowledged_values(redis_server):
    store = open_store(redis_server.url)
    try:
        store.write(APP, 1, "m", "alice", 4.0)
        store.add_users(APP, 1, ["alice", "bob"])
        redis_server.kill()  # a crash: only what was fsynced survives
        redis_server.start()
        with open_store(redis_server.url) as fresh:
            assert fresh.values(APP) == Values({"m": {1: {"alice": [4.0]}}}, {1: {"alice", "bob"}})
        # The store opened before the restart reconnects by itself.
        store.write(APP, 1, "m", "bob", 1.0)
        assert store.count(APP) == 2
    finally:
        store.close()


def test_redis_down_fails_the_write(redis_server):
    with open_store(redis_server.url) as store:
        redis_server.stop()
        with pytest.raises(redis.ConnectionError):
            store.write(APP, 0, "m", "u", 1.0)


def test_redis_warns_when_writes_are_not_persisted(redis_url: str, caplog: pytest.LogCaptureFixture):
    admin = redis.Redis.from_url(redis_url, decode_responses=True)
    admin.config_set("appendfsync", "everysec")
    try:
        with caplog.at_level(logging.WARNING, logger="kubectl_iter8.controller.abn.redis_store"):
            open_store(redis_url).close()
    finally:
        admin.config_set("appendfsync", "always")
        admin.close()
    assert "appendfsync=everysec" in caplog.text
    assert "may be lost" in caplog.text


# --- --abn-store URLs --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:abn.db", "abn.db"),
        ("sqlite:/var/lib/abn.db", "/var/lib/abn.db"),
        ("sqlite:///var/lib/abn.db", "/var/lib/abn.db"),
        ("sqlite://data/abn.db", "data/abn.db"),
        ("SQLite:x.db", "x.db"),
        ("/var/lib/abn.db", "/var/lib/abn.db"),
        ("data/abn.db", "data/abn.db"),
    ],
)
def test_sqlite_paths(url: str, path: str):
    assert sqlite_path(url) == Path(path)


def test_open_store_sqlite(tmp_path: Path):
    for url in (f"sqlite:{tmp_path}/a/abn.db", str(tmp_path / "b" / "abn.db"), f" sqlite://{tmp_path}/c.db "):
        with open_store(url) as store:
            assert isinstance(store, SqliteStore)
            store.write(APP, 0, "m", "u", 1.0)
    assert sorted(p.name for p in tmp_path.rglob("*.db")) == ["abn.db", "abn.db", "c.db"]


def test_open_store_sqlite_cannot_open(tmp_path: Path):
    (tmp_path / "file").write_text("")
    with pytest.raises(UsageError, match=r"^--abn-store sqlite:.*/file/abn.db: cannot open: "):
        open_store(f"sqlite:{tmp_path}/file/abn.db")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "",
            "--abn-store: empty; expected sqlite:PATH, a bare PATH, or redis[s]://[[user]:password@]host[:port][/db]",
        ),
        ("sqlite:", "--abn-store sqlite:: no file name; expected"),
        ("sqlite://", "--abn-store sqlite://: no file name"),
        ("postgres://u:pw@db/x", "--abn-store postgres://u:***@db/x: unknown scheme 'postgres'"),
        ("redis:localhost", "--abn-store redis:localhost: expected redis://host[:port][/db]"),
        ("redis://", "--abn-store redis://: no host; expected redis[s]://[[user]:password@]host[:port][/db]"),
        ("redis://:pw@", "--abn-store redis://:***@: no host"),
        (
            "redis://:pw@host:99999",
            "--abn-store redis://:***@host:99999: bad host or port (Port out of range 0-65535)",
        ),
        ("redis://:pw@host:port", "--abn-store redis://:***@host:port: bad host or port"),
        ("redis://host/one", "--abn-store redis://host/one: the database must be a number, not 'one'"),
        (
            "redis://host/0?ssl_cert_reqs=none",
            "--abn-store redis://host/0?ssl_cert_reqs=none: query parameters are not supported",
        ),
        (
            "redis://pw@host",
            "--abn-store redis://***@host: put the password after a colon (redis://:password@host)",
        ),
    ],
)
def test_bad_urls(url: str, message: str):
    with pytest.raises(UsageError) as exc:
        open_store(url)
    assert str(exc.value).startswith(message)
    assert "\n" not in str(exc.value)
    assert "pw" not in str(exc.value).replace("postgres", "")


def test_parse_redis_url():
    a = parse_redis_url("rediss://us%40er:p%3Aw@d@[::1]:7000/3")
    assert (a.host, a.port, a.db, a.username, a.password, a.ssl) == ("::1", 7000, 3, "us@er", "p:w@d", True)
    assert a.shown == "rediss://us%40er:***@[::1]:7000/3"
    b = parse_redis_url("redis://:secret@redis")
    assert (b.host, b.port, b.db, b.username, b.password, b.ssl) == ("redis", 6379, 0, None, "secret", False)
    c = parse_redis_url("redis://cache.svc:6380/")
    assert (c.host, c.port, c.db, c.username, c.password) == ("cache.svc", 6380, 0, None, None)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://user:pw@host:1/0", "redis://user:***@host:1/0"),
        ("redis://:p@ss/w@host", "redis://:***@host"),
        ("rediss://:pw@host", "rediss://:***@host"),
        ("redis://pw@host", "redis://***@host"),
        ("redis://host:6379/0", "redis://host:6379/0"),
        ("sqlite:/var/lib/a@b.db", "sqlite:/var/lib/a@b.db"),
        ("sqlite:///var/lib/a@b.db", "sqlite:///var/lib/a@b.db"),
        ("/plain/path", "/plain/path"),
    ],
)
def test_redact(url: str, shown: str):
    assert redact(url) == shown


def test_cannot_connect_names_the_url_without_password(caplog: pytest.LogCaptureFixture):
    port = free_port()
    with caplog.at_level(logging.DEBUG), pytest.raises(UsageError) as exc:
        open_store(f"redis://:s3cret@127.0.0.1:{port}/0")
    message = str(exc.value)
    assert message.startswith(f"--abn-store redis://:***@127.0.0.1:{port}/0: cannot connect: ")
    assert "\n" not in message
    assert "s3cret" not in message + caplog.text


def test_wrong_password_is_not_shown(redis_url: str, caplog: pytest.LogCaptureFixture):
    url = redis_url.replace("redis://", "redis://nobody:s3cret@")
    with caplog.at_level(logging.DEBUG), pytest.raises(UsageError, match="cannot connect") as exc:
        open_store(url)
    assert "s3cret" not in str(exc.value) + caplog.text
    assert "nobody:***@" in str(exc.value)


def test_importing_the_store_does_not_import_redis():
    code = (
        "import sys, tempfile\n"
        "from kubectl_iter8.controller.abn.store_url import open_store\n"
        "open_store(tempfile.mkdtemp() + '/abn.db').close()\n"
        "print('redis' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "False"


def test_the_contract_imports_no_backend():
    code = (
        "import sys\n"
        "import kubectl_iter8.controller.abn.store as store\n"
        "print(sorted(m.rpartition('.')[2] for m in sys.modules if m.endswith('_store')), hasattr(store, 'SqliteStore'))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[] False"


# --- the bounded read side: latest values, dashboards and samples from them ----------------------


def written(store: MetricStore, n: int, seed: int = 3) -> None:
    rng = random.Random(seed)
    users = [f"user-{i}" for i in range(60)]
    store.add_users(APP, 0, users[:40])
    store.add_users(APP, 1, [*users[40:], "idle-1", "idle-2"])
    for _ in range(n):
        user = rng.choice(users)
        store.write(APP, 0 if users.index(user) < 40 else 1, rng.choice(["sales", "clicks"]), user,
                    round(rng.uniform(-20, 300), 2))  # fmt: skip


def assert_close(got: object, expected: object, where: str = "") -> None:
    """Equal documents, floats to 1e-9 (aggregates keep running sums; the reference uses fsum)."""
    if isinstance(expected, dict):
        assert isinstance(got, dict), where
        assert got.keys() == expected.keys(), where
        for key in expected:
            assert_close(got[key], expected[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(got, list), where
        assert len(got) == len(expected), where
        for index, (a, b) in enumerate(zip(got, expected, strict=True)):
            assert_close(a, b, f"{where}[{index}]")
    elif isinstance(expected, float):
        assert got == pytest.approx(expected, rel=1e-9, abs=1e-9), where
    else:
        assert got == expected, where


def test_recent_values_are_the_latest_with_their_users_sums(store: MetricStore):
    for i in range(12):
        store.write(APP, i % 2, "m", f"u{i % 3}", float(i))
    store.write(APP, 5, "other", "w", 1.0)
    assert store.recent(APP, 3)["other"] == {5: Recent([1.0], [1.0], 1)}
    got = store.recent(APP, 3)["m"][0]
    assert got.values == [6.0, 8.0, 10.0]
    assert got.sums == [0.0 + 6.0, 2.0 + 8.0, 4.0 + 10.0]  # u0, u2, u1 wrote 6, 8, 10: their whole sums
    assert got.writers == 3
    assert store.recent(APP)["m"][1].values == [1.0, 3.0, 5.0, 7.0, 9.0, 11.0]
    assert store.recent("ns/none") == {}


def test_dashboard_and_samples_within_the_window_are_those_of_every_value(store: MetricStore):
    written(store, 400)
    values = store.values(APP)
    got = dashboard_from(store.summary(APP), store.recent(APP, DASHBOARD_SAMPLE))
    assert_close(got, dashboard(values))
    assert got.keys() == {"sales", "clicks"}
    bounded = samples_from(APP, store.summary(APP), store.recent(APP), WINDOW)
    reference = samples(APP, values)
    assert bounded["limit"] == WINDOW
    for metric, versions in reference["metrics"].items():
        for version, data in versions.items():
            mine = bounded["metrics"][metric][version]
            assert sorted(mine["transactions"]) == sorted(data["transactions"])  # write order, not by user
            assert_close(mine["users"], data["users"])
            assert mine["count"] == {"transactions": len(data["transactions"]), "users": len(data["users"])}


def test_beyond_the_window_summaries_stay_exact_and_histograms_estimate(store: MetricStore):
    written(store, 3000)
    values, summary = store.values(APP), store.summary(APP)
    exact = dashboard(values)
    got = dashboard_from(summary, store.recent(APP, 300))  # 300 of about 1,500 values per series
    for metric in exact:
        for key in ("SummaryOverTransactions", "SummaryOverUsers"):
            assert_close(got[metric][key], exact[metric][key])
        for key in ("HistogramsOverTransactions", "HistogramsOverUsers"):
            assert [(r["Version"], r["Bucket"]) for r in got[metric][key]] == [
                (r["Version"], r["Bucket"]) for r in exact[metric][key]
            ]  # the same edges: from the exact least and greatest values
            for version in ("0", "1"):
                mine = [r["Value"] for r in got[metric][key] if r["Version"] == version]
                theirs = [r["Value"] for r in exact[metric][key] if r["Version"] == version]
                assert abs(sum(mine) - sum(theirs)) <= 5  # rounding only
                # Uniform values: every bucket within a quarter of the total of the exact one's.
                assert all(abs(a - b) <= sum(theirs) / 4 for a, b in zip(mine, theirs, strict=True))
    small = samples_from(APP, summary, store.recent(APP, 100), 100)
    for versions in small["metrics"].values():
        for data in versions.values():
            assert len(data["transactions"]) == 100
            assert len(data["users"]) <= 100
            assert data["count"]["transactions"] > 400


def test_sqlite_dashboard_reads_are_bounded(tmp_path: Path):
    with SqliteStore(tmp_path / "abn.db") as store:
        written(store, 50)
        statements: list[str] = []
        store._db.set_trace_callback(statements.append)
        store.summary(APP)
        store.recent(APP, 7)
        store._db.set_trace_callback(None)
        reads = [sql for sql in statements if "metric_values" in sql]
        assert reads
        assert all("LIMIT 7" in sql for sql in reads), reads
        (plan,) = {
            row[3]
            for row in store._db.execute(
                "EXPLAIN QUERY PLAN SELECT user, value FROM metric_values"
                " WHERE application = ? AND metric = ? AND version = ? ORDER BY rowid DESC LIMIT ?",
                (APP, "m", 0, 7),
            )
        }
    assert "USING INDEX metric_values_by_app" in plan
    assert "TEMP B-TREE" not in plan


def test_redis_recent_lists_are_filled_for_data_written_before_them(redis_url: str):
    with open_store(redis_url) as store:
        assert isinstance(store, RedisStore)
        for i in range(30):
            store.write(APP, i % 2, "m", f"u{i % 4}", float(i))
        expected = store.recent(APP, 5)
        client = store.client
        client.delete(*client.keys("iter8:abn:{ns/app}:recent:*"), "iter8:abn:{ns/app}:windowed")
        assert store.recent(APP, 5) == expected  # filled on read...
        client.delete(*client.keys("iter8:abn:{ns/app}:recent:*"), "iter8:abn:{ns/app}:windowed")
        store.write(APP, 1, "m", "u1", 100.0)  # ...or on the next write, the aggregates untouched
        assert store.recent(APP, 2)["m"][1].values == [29.0, 100.0]
        assert_same_summary(store.summary(APP), summarize(store.values(APP)))
        assert client.llen("iter8:abn:{ns/app}:recent:1:m") == 16


def test_default_sqlite_file_is_in_the_state_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    assert default_sqlite_file({"XDG_STATE_HOME": str(tmp_path)}) == tmp_path / "kubectl-iter8" / "abn.sqlite"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    fallback = tmp_path / "home" / ".local" / "state" / "kubectl-iter8" / "abn.sqlite"
    assert default_sqlite_file({}) == fallback
    assert default_sqlite_file({"XDG_STATE_HOME": "relative/dir"}) == fallback  # invalid per XDG: ignored
    private_folder(fallback.parent)
    assert fallback.parent.stat().st_mode & 0o777 == 0o700
