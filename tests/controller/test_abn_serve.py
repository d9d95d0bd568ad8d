"""A/B/n through the gRPC wire against ``kubectl iter8 controller serve`` processes on the fake API server.

Each test runs the real command (with the SQLite store and with Redis: the same tests for both),
talks to it with the SDK over 127.0.0.1, and reads the HTTP read side. Users are looked up in
concurrent batches through :class:`~kubectl_iter8.sdk.AsyncClient`; a lookup that fell back to
version 0 would show up as a wrong share or a broken stickiness, and the fallback itself is
checked to be silent (no warning logged) in every test that counts versions.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from controller_helpers import app_versions, create_version, routemap, wait_until
from test_serve import free_port, http_get

from kubectl_iter8.sdk import AsyncClient, Client
from kubectl_iter8.testing import FakeKube

HERE = Path(__file__).resolve().parent
CONFIG = (
    "resourceTypes:\n"
    "  deploy: {group: apps, version: v1, resource: deployments, kind: Deployment, conditions: [Available]}\n"
    "  svc: {version: v1, resource: services, kind: Service}\n"
    "defaultResync: 2s\n"
)


class Serve:
    """One ``controller serve --abn-port`` process (a replica)."""

    def __init__(self, kube: FakeKube, workdir: Path, store: str, name: str) -> None:
        self.kube = kube
        self.workdir = workdir
        self.store = store
        self.name = name
        self.http_port = free_port()
        self.abn_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = workdir / f"{name}.log"
        self.env: dict[str, str] = {}
        self.args: list[str] = []

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.abn_port}"

    def start(self) -> Serve:
        config = self.workdir / "config.yaml"
        config.write_text(CONFIG)
        env = {
            **os.environ,
            **self.kube.env(),
            "ITER8_PLUGINS": "iter8_controller_test_plugin",
            "ITER8_ABN_STORE": self.store,  # the way a password stays off the command line
            "POD_NAME": self.name,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])),
            **self.env,
        }
        with self.log.open("a") as stderr:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "kubectl_iter8", "controller", "serve", "--namespace", "default",
                 "--config", str(config), "--http-port", str(self.http_port), "--leader-elect",
                 "--abn-port", str(self.abn_port), *self.args],
                env=env, stdout=subprocess.DEVNULL, stderr=stderr, cwd=self.workdir,
            )  # fmt: skip
        wait_until(
            lambda: self.http("/readyz")[0] == 200, timeout=30, what=f"/readyz of {self.name}: {self.logs()}"
        )
        return self

    def stop(self, *, kill: bool = False) -> None:
        if self.proc is None:
            return
        if kill:
            self.proc.kill()
            self.proc.wait(15)
        else:
            self.proc.send_signal(signal.SIGTERM)
            assert self.proc.wait(15) == 0, self.logs()
        self.proc = None

    def logs(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def http(self, path: str) -> tuple[int, str]:
        return http_get(self.http_port, path)

    def dashboard(self, application: str = "app") -> dict[str, object]:
        status, body = self.http(f"/abnDashboard?namespace=default&application={application}")
        assert status == 200, body
        return json.loads(body)  # type: ignore[no-any-return]


@pytest.fixture(params=["sqlite", "redis"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:{tmp_path / 'abn.sqlite'}"
    url: str = request.getfixturevalue("redis_url")
    return url


@pytest.fixture
def replicas(fake_kube: FakeKube, tmp_path: Path, store_url: str) -> Iterator[list[Serve]]:
    started: list[Serve] = []
    yield started
    for replica in started:
        replica.stop(kill=True)


def start(
    replicas: list[Serve], kube: FakeKube, tmp_path: Path, store: str, env: dict[str, str] | None = None
) -> Serve:
    replica = Serve(kube, tmp_path, store, f"replica-{len(replicas)}")
    replica.env = env or {}
    replica.start()
    replicas.append(replica)
    return replica


def app(kube: FakeKube, weights: list[int | None], *, ready: tuple[bool, ...] | None = None) -> None:
    names = [f"v{i}" for i in range(len(weights))]
    for index, name in enumerate(names):
        create_version(kube, name, ready=True if ready is None else ready[index])
    kube.create(routemap("app", app_versions(*names, weights=weights)))


def lookup_all(target: str, users: list[str], application: str = "default/app") -> list[int]:
    async def run() -> list[int]:
        async with AsyncClient(target, timeout=10) as client:
            out: list[int] = []
            for start in range(0, len(users), 500):
                batch = users[start : start + 500]
                out.extend(await asyncio.gather(*(client.lookup(application, u) for u in batch)))
            return out

    return asyncio.run(run())


def wait_serving(target: str) -> None:
    """Until Lookup answers OK (the routemap reconciled)."""

    def ok() -> bool:
        with grpc.insecure_channel(target) as channel:
            from kubectl_iter8.sdk import LOOKUP, protocol

            p = protocol()
            call = channel.unary_unary(LOOKUP, request_serializer=lambda m: m.SerializeToString(),
                                       response_deserializer=p.VersionRecommendation.FromString)  # fmt: skip
            try:
                call(p.Application(name="default/app", user="probe"), timeout=5)
            except grpc.RpcError:
                return False
            return True

    wait_until(ok, timeout=20, what=f"Lookup OK at {target}")


@pytest.fixture
def no_fallback(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    with caplog.at_level(logging.WARNING, logger="kubectl_iter8.sdk"):
        yield
    assert not [r for r in caplog.records if r.name == "kubectl_iter8.sdk"], "a lookup fell back to version 0"


USERS = [f"user-{i}" for i in range(10_000)]


@pytest.mark.usefixtures("no_fallback")
def test_sticky_across_a_restart_and_between_replicas(
    replicas: list[Serve], fake_kube: FakeKube, tmp_path: Path, store_url: str
) -> None:
    app(fake_kube, [30, 70])
    first = start(replicas, fake_kube, tmp_path, store_url)
    wait_serving(first.target)
    before = lookup_all(first.target, USERS)
    assert set(before) == {0, 1}

    second = start(replicas, fake_kube, tmp_path, store_url)  # a follower: it never writes, but answers
    wait_serving(second.target)
    assert lookup_all(second.target, USERS) == before

    first.stop(kill=True)  # a crash, then a new process
    replicas.remove(first)
    again = start(replicas, fake_kube, tmp_path, store_url)
    wait_serving(again.target)
    assert lookup_all(again.target, USERS) == before


@pytest.mark.usefixtures("no_fallback")
def test_shares_follow_the_weights_over_the_wire(
    replicas: list[Serve], fake_kube: FakeKube, tmp_path: Path, store_url: str
) -> None:
    app(fake_kube, [50, 30, 20])
    replica = start(replicas, fake_kube, tmp_path, store_url)
    wait_serving(replica.target)
    got = Counter(lookup_all(replica.target, [f"share-{i}" for i in range(20_000)]))
    for version, weight in enumerate((50, 30, 20)):
        share = 100 * got[version] / 20_000
        assert abs(share - weight) < 2, f"version {version}: {share:.2f}% of users for weight {weight}"


@pytest.mark.usefixtures("no_fallback")
def test_only_available_versions_are_recommended(
    replicas: list[Serve], fake_kube: FakeKube, tmp_path: Path, store_url: str
) -> None:
    app(fake_kube, [40, 30, 30], ready=(True, True, False))
    replica = start(replicas, fake_kube, tmp_path, store_url)
    wait_serving(replica.target)
    users = USERS[:3000]
    got = lookup_all(replica.target, users)
    assert set(got) == {0, 1}, "v2 is not available"
    # Users of v0 stay where they are when v1 goes away; only v1's users move (to v0).
    fake_kube.mark_unready("deployments", "v1")
    wait_until(lambda: 1 not in lookup_all(replica.target, users[:300]), what="v1 out of the recommendations")
    after = lookup_all(replica.target, users)
    assert set(after) == {0}
    # ...and come back to it when it is available again.
    fake_kube.mark_ready("deployments", "v1")
    wait_until(lambda: lookup_all(replica.target, users) == got, what="v1's users back on v1")


def test_bad_input_gets_the_right_status_codes(
    replicas: list[Serve], fake_kube: FakeKube, tmp_path: Path, store_url: str
) -> None:
    app(fake_kube, [1, 1])
    replica = start(replicas, fake_kube, tmp_path, store_url)
    wait_serving(replica.target)
    with Client(replica.target, timeout=5) as client:
        for application, user, name, value, code in [
            ("default/app", "", "sales", 1.0, grpc.StatusCode.INVALID_ARGUMENT),
            ("/", "u", "sales", 1.0, grpc.StatusCode.INVALID_ARGUMENT),
            ("default/app", "u", "", 1.0, grpc.StatusCode.INVALID_ARGUMENT),
            ("default/app", "u", "sales", float("nan"), grpc.StatusCode.INVALID_ARGUMENT),
            ("default/app", "u", "sales", float("inf"), grpc.StatusCode.INVALID_ARGUMENT),
            ("default/nope", "u", "sales", 1.0, grpc.StatusCode.NOT_FOUND),
            ("elsewhere/app", "u", "sales", 1.0, grpc.StatusCode.NOT_FOUND),  # not a watched namespace
        ]:
            with pytest.raises(grpc.RpcError) as raised:
                client.write_metric(application, user, name, value)
            assert raised.value.code() == code, (application, user, name, value)  # type: ignore[attr-defined]
        # A value that is not a number at all, as another SDK could send it.
        from kubectl_iter8.sdk import WRITE_METRIC, protocol

        p = protocol()
        with grpc.insecure_channel(replica.target) as channel:
            call = channel.unary_unary(WRITE_METRIC, request_serializer=lambda m: m.SerializeToString(),
                                       response_deserializer=p.Empty.FromString)  # fmt: skip
            with pytest.raises(grpc.RpcError) as raised:
                call(p.MetricValue(name="sales", value="ten", application="app", user="u"), timeout=5)
            assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
        # Lookup of an unknown application: the SDK falls back to the primary.
        assert client.lookup("default/nope", "u") == 0
        for user in ("u", "v", "w", "x"):
            assert client.lookup("app", user) == client.lookup("default/app", user)  # bare = default/
    status, body = replica.http("/metrics")
    assert status == 200
    assert 'iter8_abn_calls_total{code="INVALID_ARGUMENT",method="write_metric"} 6' in body
    assert 'iter8_abn_calls_total{code="NOT_FOUND",method="write_metric"} 2' in body


def test_metrics_written_before_a_restart_are_read_after_it(
    replicas: list[Serve], fake_kube: FakeKube, tmp_path: Path, store_url: str
) -> None:
    app(fake_kube, [1, 1])
    replica = start(replicas, fake_kube, tmp_path, store_url)
    wait_serving(replica.target)
    users = [f"buyer-{i}" for i in range(40)]
    assigned = dict(zip(users, lookup_all(replica.target, users), strict=True))
    with Client(replica.target, timeout=5) as client:
        for index, user in enumerate(users):
            client.write_metric("default/app", user, "sales", float(index))
            if index % 2 == 0:
                client.write_metric("app", user, "sales", 1.0)  # a second transaction, bare name
    expected: dict[int, list[float]] = {}
    for index, user in enumerate(users):
        expected.setdefault(assigned[user], []).extend([float(index)] + ([1.0] if index % 2 == 0 else []))

    replica.stop(kill=True)  # acknowledged writes survive a crash
    replicas.remove(replica)
    after = start(replicas, fake_kube, tmp_path, replica.store)
    board = after.dashboard()
    summary = {row["Version"]: row for row in board["sales"]["SummaryOverTransactions"]}  # type: ignore[index]
    for version, values in expected.items():
        assert summary[version]["Count"] == len(values)
        assert summary[version]["Mean"] == pytest.approx(sum(values) / len(values))
        assert summary[version]["Min"] == min(values)
        assert summary[version]["Max"] == max(values)
    status, body = after.http("/abnValues?application=default/app")
    assert status == 200
    stored = json.loads(body)["metrics"]["sales"]
    for version, values in expected.items():
        assert sorted(stored[str(version)]["transactions"]) == sorted(values)
    status, body = after.http("/metrics")
    assert (
        'iter8_abn_metric_count{namespace="default",application="app",metric="sales",version="0",over="transactions"}'
        in body
    )
    # The read side's errors.
    assert after.http("/abnDashboard?namespace=default")[0] == 400
    assert after.http("/abnDashboard?namespace=default&application=nope")[0] == 404


def test_replicas_sharing_redis_see_each_other_s_writes(
    fake_kube: FakeKube, tmp_path: Path, redis_url: str
) -> None:
    app(fake_kube, [1, 1])
    replicas: list[Serve] = []
    try:
        one = start(replicas, fake_kube, tmp_path, redis_url)
        two = start(replicas, fake_kube, tmp_path, redis_url)
        wait_serving(one.target)
        wait_serving(two.target)
        with Client(one.target, timeout=5) as a, Client(two.target, timeout=5) as b:
            a.write_metric("default/app", "alice", "sales", 10.0)
            b.write_metric("default/app", "bob", "sales", 20.0)
        counts = [
            sum(r["Count"] for r in s.dashboard()["sales"]["SummaryOverTransactions"]) for s in (one, two)
        ]  # type: ignore[index]
        assert counts == [2, 2]
    finally:
        for replica in replicas:
            replica.stop(kill=True)


def serve_fails(kube: FakeKube, cwd: Path, *flags: str) -> str:
    """Run ``controller serve`` with flags it must refuse; the whole stderr, after checking it is one line."""
    out = subprocess.run(
        [sys.executable, "-m", "kubectl_iter8", "controller", "serve", "--http-port", "0", *flags],
        env={**os.environ, **kube.env()}, capture_output=True, text=True, timeout=60, cwd=cwd,
    )  # fmt: skip
    assert out.returncode == 2, out.stderr
    assert out.stderr.startswith("error: "), out.stderr
    assert out.stderr.count("\n") == 1, out.stderr
    return out.stderr


def test_serve_refuses_a_bad_store_or_a_taken_port_in_one_line(fake_kube: FakeKube, tmp_path: Path) -> None:
    err = serve_fails(fake_kube, tmp_path, "--abn-port", "0", "--abn-store", "redis://:s3cret@127.0.0.1:1/0")
    assert "--abn-store" in err
    assert "s3cret" not in err
    err = serve_fails(fake_kube, tmp_path, "--abn-port", "0", "--abn-store", "mysql://db/abn")
    assert "--abn-store" in err
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        err = serve_fails(fake_kube, tmp_path, "--abn-port", str(port))
    assert err == f"error: --abn-port: cannot listen on 127.0.0.1:{port}: Address already in use\n"


def test_huge_names_are_refused_and_metric_names_capped(
    replicas: list[Serve], fake_kube: FakeKube, tmp_path: Path, store_url: str
) -> None:
    # Five 4 MiB metric names once made every /metrics scrape 199 MB, kept across restarts.
    app(fake_kube, [1, 1])
    replica = start(replicas, fake_kube, tmp_path, store_url, env={"ITER8_ABN_MAX_METRICS": "2"})
    wait_serving(replica.target)
    huge = "m" * ((4 << 20) - 1024)
    with Client(replica.target, timeout=10) as client:
        for _ in range(5):
            with pytest.raises(grpc.RpcError) as raised:
                client.write_metric("default/app", "u", huge, 1.0)
            assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
            assert len(raised.value.details()) < 200  # type: ignore[attr-defined]
        client.write_metric("default/app", "u", "sales", 1.0)
        client.write_metric("default/app", "u", "clicks", 1.0)
        with pytest.raises(grpc.RpcError) as raised:
            client.write_metric("default/app", "u", "refunds", -5.0)
        assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED  # type: ignore[attr-defined]
    status, body = replica.http("/metrics")
    assert status == 200
    assert len(body) < 64 * 1024
    assert 'metric="refunds"' not in body
    assert 'iter8_abn_calls_total{code="RESOURCE_EXHAUSTED",method="write_metric"} 1' in body
    assert 'iter8_abn_calls_total{code="INVALID_ARGUMENT",method="write_metric"} 5' in body


def test_serve_refuses_a_bad_limit_in_one_line(fake_kube: FakeKube, tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "kubectl_iter8", "controller", "serve", "--http-port", "0", "--abn-port", "0"],
        env={**os.environ, **fake_kube.env(), "ITER8_ABN_MAX_USERS": "lots"},
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 2, out.stderr
    assert out.stderr == "error: $ITER8_ABN_MAX_USERS: expected a positive integer, not 'lots'\n"


def abn_gauges(body: str) -> dict[str, float]:
    """The ``iter8_abn_metric_*`` samples of a /metrics body: the line's name and labels -> value."""
    return {
        line.rpartition(" ")[0]: float(line.rpartition(" ")[2])
        for line in body.splitlines()
        if line.startswith("iter8_abn_metric_")
    }


def test_metrics_scrape_does_not_grow_with_the_values(
    replicas: list[Serve], fake_kube: FakeKube, tmp_path: Path, store_url: str
) -> None:
    from kubectl_iter8.controller.abn.sqlite_store import SqliteStore
    from kubectl_iter8.controller.abn.store_url import open_store
    from kubectl_iter8.controller.abn.summary import summarize

    app(fake_kube, [1, 1])
    replica = start(replicas, fake_kube, tmp_path, store_url)
    wait_serving(replica.target)
    users = [f"buyer-{i}" for i in range(50)]
    assigned = dict(zip(users, lookup_all(replica.target, users), strict=True))
    with Client(replica.target, timeout=5) as client:
        for index, user in enumerate(users[:10]):
            client.write_metric("default/app", user, "sales", float(index) - 2.5)
    wait_until(lambda: replica.http("/abnValues?application=default/app")[0] == 200, what="values readable")
    small = replica.http("/metrics")[1]

    # Many more values from the same users, straight into the store the process serves from.
    # Without an fsync per value, only to write fast (the server's own writes keep theirs).
    with open_store(store_url) as store:
        if isinstance(store, SqliteStore):
            store._db.execute("PRAGMA synchronous=OFF")
        else:
            store.client.config_set("appendfsync", "no")  # type: ignore[attr-defined]
        try:
            for index in range(10_000):
                user = users[index % len(users)]
                store.write("default/app", assigned[user], "sales", user, (index % 97) * 1.25 - 30.0)
        finally:
            if not isinstance(store, SqliteStore):
                store.client.config_set("appendfsync", "always")  # type: ignore[attr-defined]
        expected = summarize(store.values("default/app"))
    status, big = replica.http("/metrics")
    assert status == 200
    gauges, before = abn_gauges(big), abn_gauges(small)
    assert gauges.keys() == before.keys()  # the same series...
    assert abs(len(big) - len(small)) < 1024  # ...so about the same size, whatever the number of values
    for version, summary in expected["sales"].items():
        for over in ("transactions", "users"):
            stats = getattr(summary, over)
            labels = f'namespace="default",application="app",metric="sales",version="{version}",over="{over}"'
            assert gauges[f"iter8_abn_metric_count{{{labels}}}"] == stats.count
            for stat in ("mean", "stddev", "min", "max"):
                assert gauges[f"iter8_abn_metric_{stat}{{{labels}}}"] == pytest.approx(
                    getattr(stats, stat), rel=1e-9
                )
    assert (
        sum(gauges[k] for k in gauges if k.startswith("iter8_abn_metric_count") and "transactions" in k)
        == 10_010
    )


def test_a_token_file_guards_the_grpc_calls(
    replicas: list[Serve], fake_kube: FakeKube, tmp_path: Path, store_url: str
) -> None:
    token = tmp_path / "token"
    token.write_text("t0ken-from-a-secret\n")
    app(fake_kube, [1, 1])
    replica = start(replicas, fake_kube, tmp_path, store_url, env={"ITER8_ABN_TOKEN_FILE": str(token)})
    with Client(replica.target, timeout=5, token="t0ken-from-a-secret") as client:
        wait_until(lambda: client.lookup("default/app", "probe") in (0, 1), what="Lookup with the token")
        client.write_metric("default/app", "alice", "sales", 3.0)
    with Client(replica.target, timeout=5) as client, pytest.raises(grpc.RpcError) as raised:
        client.write_metric("default/app", "alice", "sales", 3.0)
    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]
    body = replica.http("/metrics")[1]
    assert 'iter8_abn_calls_total{code="UNAUTHENTICATED",method="write_metric"} 1' in body
    assert 'iter8_abn_calls_total{code="OK",method="write_metric"} 1' in body
    replica.stop()
    replicas.remove(replica)
    assert "t0ken-from-a-secret" not in replica.logs()


def http_with(port: int, path: str, headers: dict[str, str]) -> tuple[int, str]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_a_token_file_flag_guards_the_http_reads_too(
    replicas: list[Serve], fake_kube: FakeKube, tmp_path: Path, store_url: str
) -> None:
    token = tmp_path / "token"
    token.write_text("s3cret-t0ken\n")
    app(fake_kube, [1, 1])
    replica = Serve(fake_kube, tmp_path, store_url, "replica-0")
    replica.args = ["--abn-token-file", str(token), "--abn-max-metrics", "1"]
    replicas.append(replica.start())
    with Client(replica.target, timeout=5, token="s3cret-t0ken") as client:
        wait_until(lambda: client.lookup("default/app", "probe") in (0, 1), what="Lookup with the token")
        client.write_metric("default/app", "alice", "sales", 3.0)
        with pytest.raises(grpc.RpcError) as raised:  # --abn-max-metrics 1
            client.write_metric("default/app", "alice", "clicks", 1.0)
        assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED  # type: ignore[attr-defined]
    port = replica.http_port
    for path in ("/abnValues?application=default/app", "/abnDashboard?application=default/app"):
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret-t0ken"}):
            status, body = http_with(port, path, headers)
            assert status == 401, (path, headers)
            assert json.loads(body) == {"error": "missing or wrong Authorization: Bearer token"}
        status, body = http_with(port, path, {"Authorization": "Bearer s3cret-t0ken"})
        assert status == 200, body
        assert "sales" in json.loads(body).get("metrics", json.loads(body))
    for path in ("/healthz", "/readyz", "/metrics"):
        assert http_with(port, path, {})[0] == 200, path
    replica.stop()
    replicas.remove(replica)
    assert "s3cret-t0ken" not in replica.logs()


@pytest.mark.parametrize(
    ("flags", "env", "message"),
    [
        (["--abn-max-users", "lots"], {}, "error: --abn-max-users: expected a positive integer, not 'lots'\n"),
        (["--abn-max-metrics", "0"], {}, "error: --abn-max-metrics: expected a positive integer, not '0'\n"),
        ([], {"ITER8_ABN_MAX_METRICS": "-1"}, "error: $ITER8_ABN_MAX_METRICS: expected a positive integer, not '-1'\n"),
        (["--abn-token-file", "/no/such/token"], {}, "error: --abn-token-file: /no/such/token: cannot read: No such file or directory\n"),
        ([], {"ITER8_ABN_TOKEN_FILE": "/no/such/token"}, "error: $ITER8_ABN_TOKEN_FILE: /no/such/token: cannot read: No such file or directory\n"),
    ],
)  # fmt: skip
def test_serve_refuses_bad_abn_flags_in_one_line(
    fake_kube: FakeKube, tmp_path: Path, flags: list[str], env: dict[str, str], message: str
) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "kubectl_iter8", "controller", "serve", "--http-port", "0", "--abn-port", "0", *flags],
        env={**os.environ, **fake_kube.env(), **env}, capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 2, out.stderr
    assert out.stderr == message


def test_abn_values_are_capped_per_call(
    replicas: list[Serve], fake_kube: FakeKube, tmp_path: Path, store_url: str
) -> None:
    app(fake_kube, [1, 0])
    replica = start(replicas, fake_kube, tmp_path, store_url)
    wait_serving(replica.target)
    with Client(replica.target, timeout=5) as client:
        for index in range(30):
            client.write_metric("default/app", f"u{index % 5}", "sales", float(index))
    status, body = replica.http("/abnValues?application=default/app&limit=10")
    assert status == 200, body
    data = json.loads(body)["metrics"]["sales"]["0"]
    assert data["transactions"] == [float(i) for i in range(20, 30)]  # the latest ten
    assert data["count"] == {"transactions": 30, "users": 5}
    assert (
        len(
            json.loads(replica.http("/abnValues?application=default/app")[1])["metrics"]["sales"]["0"][
                "transactions"
            ]
        )
        == 30
    )
    for bad in ("0", "x", "10001"):
        status, body = replica.http(f"/abnValues?application=default/app&limit={bad}")
        assert status == 400, body
        assert "limit" in json.loads(body)["error"], body
