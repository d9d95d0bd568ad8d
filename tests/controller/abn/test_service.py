"""The A/B/n service over the real gRPC wire on 127.0.0.1, through the SDK clients."""

from __future__ import annotations

import asyncio
import logging
import socket
import subprocess
import sys
import threading
from collections.abc import Iterable, Iterator
from importlib import resources

import grpc
import pytest
from kubectl_iter8.controller.abn.assignment import assign
from kubectl_iter8.controller.abn.limits import Limits, positive, quote, read_token_file
from kubectl_iter8.controller.abn.service import (
    AbnService,
    Rejected,
    Served,
    application_key,
    parse_value,
    serve,
)
from kubectl_iter8.controller.abn.sqlite_store import SqliteStore
from kubectl_iter8.controller.abn.store import MetricStore
from kubectl_iter8.controller.abn.summary import summarize

from kubectl_iter8.sdk import LOOKUP, WRITE_METRIC, AsyncClient, Client, protocol

APP = "default/backend"


class Apps:
    """What the controller would answer: versions and weights per application."""

    def __init__(self) -> None:
        self.versions: dict[str, list[tuple[int, float]]] = {APP: [(0, 1.0), (1, 3.0)], "ns/idle": [(0, 0.0)]}
        self.gate: threading.Event | None = None

    def __call__(self, application: str) -> list[tuple[int, float]] | None:
        if self.gate is not None:
            self.gate.wait(10)
        return self.versions.get(application)


@pytest.fixture
def apps() -> Apps:
    return Apps()


@pytest.fixture
def store(tmp_path) -> Iterator[MetricStore]:
    s = SqliteStore(tmp_path / "abn.db")
    yield s
    s.close()


@pytest.fixture
def server(apps: Apps, store: MetricStore) -> Iterator[Served]:
    served = serve(0, apps, store, host="127.0.0.1", max_workers=4)
    yield served
    if apps.gate is not None:
        apps.gate.set()
    served.stop(None)


@pytest.fixture
def client(server: Served) -> Iterator[Client]:
    with Client(f"127.0.0.1:{server.port}", timeout=5) as c:
        yield c


def status_of(exc: pytest.ExceptionInfo[grpc.RpcError]) -> grpc.StatusCode:
    code = exc.value.code()  # type: ignore[attr-defined]
    assert isinstance(code, grpc.StatusCode)
    return code


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_lookup_is_sticky_and_weighted(client: Client, server: Served):
    users = [f"u{i}" for i in range(200)]
    first = [client.lookup(APP, u) for u in users]
    assert first == [assign(u, [(0, 1.0), (1, 3.0)], application=APP) for u in users]
    assert set(first) == {0, 1}
    # again, through another connection, and with the bare name (namespace default)
    with Client(f"127.0.0.1:{server.port}", timeout=5) as other:
        assert [other.lookup("backend", u) for u in users] == first


def test_same_version_after_restart(apps: Apps, store: MetricStore):
    users = [f"u{i}" for i in range(50)]
    answers = []
    for _ in range(2):
        served = serve(0, apps, store, host="127.0.0.1")
        try:
            with Client(f"127.0.0.1:{served.port}", timeout=5) as c:
                answers.append([c.lookup(APP, u) for u in users])
        finally:
            served.stop(None)
    assert answers[0] == answers[1]


def test_written_metric_is_in_the_store(client: Client, store: MetricStore):
    version = client.lookup(APP, "alice")
    client.write_metric(APP, "alice", "sales", 12.5)
    client.write_metric("backend", "alice", "sales", 7.5)  # the same application
    summary = summarize(store.values(APP))
    stats = summary["sales"][version].transactions
    assert (stats.count, stats.mean, stats.min, stats.max) == (2, 10.0, 7.5, 12.5)
    assert summary["sales"][version].users.count == 1


def test_write_metric_unknown_application_is_not_found(client: Client, store: MetricStore):
    with pytest.raises(grpc.RpcError) as exc:
        client.write_metric("ns/nope", "alice", "sales", 1.0)
    assert status_of(exc) == grpc.StatusCode.NOT_FOUND
    assert "ns/nope" in exc.value.details()  # type: ignore[attr-defined]
    assert store.count() == 0


@pytest.mark.parametrize(
    ("application", "user", "name", "value"),
    [
        (APP, "alice", "sales", "abc"),
        (APP, "alice", "sales", ""),
        (APP, "alice", "sales", "nan"),
        (APP, "alice", "sales", "-inf"),
        (APP, "", "sales", "1"),
        (APP, "alice", "", "1"),
        ("", "alice", "sales", "1"),
        ("/", "alice", "sales", "1"),
        ("ns/", "alice", "sales", "1"),
        ("a/b/c", "alice", "sales", "1"),
    ],
)
def test_write_metric_bad_input_is_invalid_argument(
    server: Served, store: MetricStore, application, user, name, value
):
    p = protocol()
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        call = channel.unary_unary(
            WRITE_METRIC,
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=p.Empty.FromString,
        )
        with pytest.raises(grpc.RpcError) as exc:
            call(p.MetricValue(application=application, user=user, name=name, value=value), timeout=5)
    assert status_of(exc) == grpc.StatusCode.INVALID_ARGUMENT
    assert store.count() == 0


def test_write_metric_non_finite_float_from_the_sdk(client: Client):
    with pytest.raises(grpc.RpcError) as exc:
        client.write_metric(APP, "alice", "sales", float("inf"))
    assert status_of(exc) == grpc.StatusCode.INVALID_ARGUMENT


def test_lookup_status_codes_on_the_wire(server: Served):
    p = protocol()
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        call = channel.unary_unary(
            LOOKUP,
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=p.VersionRecommendation.FromString,
        )
        assert call(p.Application(name=APP, user="bob"), timeout=5).versionNumber in (0, 1)
        for request, code in [
            (p.Application(name="ns/nope", user="bob"), grpc.StatusCode.NOT_FOUND),
            (p.Application(name=APP, user=""), grpc.StatusCode.INVALID_ARGUMENT),
            (p.Application(name="/", user="bob"), grpc.StatusCode.INVALID_ARGUMENT),
            (p.Application(name="ns/idle", user="bob"), grpc.StatusCode.FAILED_PRECONDITION),
        ]:
            with pytest.raises(grpc.RpcError) as exc:
                call(request, timeout=5)
            assert status_of(exc) == code, request


def test_lookup_unknown_application_falls_back_to_0(client: Client, caplog: pytest.LogCaptureFixture):
    with caplog.at_level(logging.WARNING, logger="kubectl_iter8.sdk"):
        assert client.lookup("ns/nope", "alice") == 0
    assert "NOT_FOUND" in caplog.text


def test_lookup_falls_back_to_0_when_the_server_is_down(caplog: pytest.LogCaptureFixture):
    with Client(f"127.0.0.1:{free_port()}", timeout=2) as c, caplog.at_level(logging.WARNING):
        assert c.lookup(APP, "alice") == 0
        with pytest.raises(grpc.RpcError) as exc:
            c.write_metric(APP, "alice", "sales", 1.0)
    assert status_of(exc) == grpc.StatusCode.UNAVAILABLE
    assert "UNAVAILABLE" in caplog.text


def test_lookup_falls_back_to_0_on_timeout(apps: Apps, server: Served, caplog: pytest.LogCaptureFixture):
    apps.gate = threading.Event()  # the service hangs until the fixture releases it
    with Client(f"127.0.0.1:{server.port}", timeout=0.2) as c, caplog.at_level(logging.WARNING):
        assert c.lookup(APP, "alice") == 0
    assert "DEADLINE_EXCEEDED" in caplog.text


def test_store_failure_is_unavailable_and_not_acknowledged(client: Client, store: MetricStore):
    store.close()
    with pytest.raises(grpc.RpcError) as exc:
        client.write_metric(APP, "alice", "sales", 1.0)
    assert status_of(exc) == grpc.StatusCode.UNAVAILABLE


def test_async_client(server: Served, store: MetricStore, caplog: pytest.LogCaptureFixture):
    async def main() -> tuple[int, int, int]:
        async with AsyncClient(f"127.0.0.1:{server.port}", timeout=5) as c:
            version = await c.lookup(APP, "carol")
            await c.write_metric(APP, "carol", "latency", 0.5)
            unknown = await c.lookup("ns/nope", "carol")
            with pytest.raises(grpc.RpcError) as exc:
                await c.write_metric(APP, "carol", "latency", float("nan"))
            assert status_of(exc) == grpc.StatusCode.INVALID_ARGUMENT
        async with AsyncClient(f"127.0.0.1:{free_port()}", timeout=2) as down:
            fallback = await down.lookup(APP, "carol")
        return version, unknown, fallback

    with caplog.at_level(logging.WARNING, logger="kubectl_iter8.sdk"):
        version, unknown, fallback = asyncio.run(main())
    assert version == assign("carol", [(0, 1.0), (1, 3.0)], application=APP)
    assert (unknown, fallback) == (0, 0)
    assert summarize(store.values(APP))["latency"][version].transactions.count == 1


@pytest.mark.parametrize(
    ("name", "key"),
    [("app", "default/app"), ("ns/app", "ns/app"), (" ns/app ", "ns/app"), ("default/app", "default/app")],
)
def test_application_key(name: str, key: str):
    assert application_key(name) == key


@pytest.mark.parametrize("name", ["", "/", "ns/", "/app", "a/b/c"])
def test_application_key_rejects(name: str):
    with pytest.raises(Rejected) as exc:
        application_key(name)
    assert exc.value.code == grpc.StatusCode.INVALID_ARGUMENT


def test_parse_value():
    assert parse_value(" 1.5e3 ") == 1500.0
    assert parse_value("-2") == -2.0
    assert parse_value("-1e15") == -1e15
    for bad in ("", "x", "nan", "inf", "1,5", "1e308", "1.0000001e15", " " * 100 + "1"):
        with pytest.raises(Rejected):
            parse_value(bad)


def test_stubs_generated_the_iter8_way_talk_to_the_service(tmp_path, server: Served, store: MetricStore):
    # What Iter8's docs tell frontends to do: generate abn_pb2 / abn_pb2_grpc with grpc_tools and
    # call ABNStub. In a child process, so the generated module's global registration stays there.
    proto = resources.files("kubectl_iter8.controller.abn").joinpath("abn.proto").read_text()
    (tmp_path / "abn.proto").write_text(proto)
    code = f"""
import sys
import grpc
from grpc_tools import protoc
import grpc_tools, pathlib
well_known = pathlib.Path(grpc_tools.__file__).parent / "_proto"
assert protoc.main(["protoc", "-I.", f"-I{{well_known}}", "--python_out=.", "--grpc_python_out=.", "abn.proto"]) == 0
sys.path.insert(0, ".")
import abn_pb2, abn_pb2_grpc
with grpc.insecure_channel("127.0.0.1:{server.port}") as channel:
    stub = abn_pb2_grpc.ABNStub(channel)
    print(stub.Lookup(abn_pb2.Application(name="{APP}", user="dave"), timeout=5).versionNumber)
    stub.WriteMetric(abn_pb2.MetricValue(name="m", value="2.5", application="{APP}", user="dave"), timeout=5)
"""
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True, timeout=120
    ).stdout
    version = assign("dave", [(0, 1.0), (1, 3.0)], application=APP)
    assert out.strip() == str(version)
    assert summarize(store.values(APP))["m"][version].transactions.mean == 2.5


# --- call counters and user recording ----------------------------------------------------------


class RecordingStore:
    """A fake store: keeps what the service hands it; ``fail`` makes every call raise."""

    def __init__(self) -> None:
        self.written: list[tuple[str, int, str, str, float]] = []
        self.added: list[tuple[str, int, list[str]]] = []
        self.fail = False
        self.lock = threading.Lock()

    def write(self, application: str, version: int, metric: str, user: str, value: float, **_: object) -> str:
        if self.fail:
            raise OSError("store down")
        with self.lock:
            self.written.append((application, version, metric, user, value))
        return "txn"

    def metric_names(self, application: str) -> set[str]:
        if self.fail:
            raise OSError("store down")
        with self.lock:
            return {metric for app, _, metric, _, _ in self.written if app == application}

    def add_users(self, application: str, version: int, users: Iterable[str]) -> None:
        if self.fail:
            raise OSError("store down")
        with self.lock:
            self.added.append((application, version, list(users)))

    def groups(self) -> dict[tuple[str, int], set[str]]:
        out: dict[tuple[str, int], set[str]] = {}
        with self.lock:
            for application, version, users in self.added:
                out.setdefault((application, version), set()).update(users)
        return out


@pytest.fixture
def recording() -> RecordingStore:
    return RecordingStore()


@pytest.fixture
def recorded(apps: Apps, recording: RecordingStore) -> Iterator[Served]:
    apps.versions["ns/other"] = [(2, 1.0)]
    apps.versions["ns/broken"] = [(0, "heavy")]  # type: ignore[list-item]  # assign raises: UNKNOWN
    served = serve(0, apps, recording, host="127.0.0.1", max_workers=4)  # type: ignore[arg-type]
    yield served
    served.stop(None)


def test_call_counters_over_the_wire(recorded: Served, caplog: pytest.LogCaptureFixture):
    p = protocol()
    with grpc.insecure_channel(f"127.0.0.1:{recorded.port}") as channel:
        lookup = channel.unary_unary(
            LOOKUP,
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=p.VersionRecommendation.FromString,
        )
        write = channel.unary_unary(
            WRITE_METRIC,
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=p.Empty.FromString,
        )
        for user in ("a", "b", "c"):
            lookup(p.Application(name=APP, user=user), timeout=5)
        write(p.MetricValue(application=APP, user="a", name="sales", value="1"), timeout=5)
        failing = [
            (lookup, p.Application(name="ns/nope", user="a")),
            (lookup, p.Application(name="ns/nope", user="b")),
            (lookup, p.Application(name=APP, user="")),
            (lookup, p.Application(name="ns/idle", user="a")),
            (lookup, p.Application(name="ns/broken", user="a")),
            (write, p.MetricValue(application="ns/nope", user="a", name="sales", value="1")),
            (write, p.MetricValue(application=APP, user="a", name="sales", value="x")),
        ]
        with caplog.at_level(logging.CRITICAL):  # grpc logs the exception behind UNKNOWN
            for call, request in failing:
                with pytest.raises(grpc.RpcError):
                    call(request, timeout=5)
    assert recorded.service.calls() == {
        ("lookup", "OK"): 3,
        ("lookup", "NOT_FOUND"): 2,
        ("lookup", "INVALID_ARGUMENT"): 1,
        ("lookup", "FAILED_PRECONDITION"): 1,
        ("lookup", "UNKNOWN"): 1,
        ("write_metric", "OK"): 1,
        ("write_metric", "NOT_FOUND"): 1,
        ("write_metric", "INVALID_ARGUMENT"): 1,
    }


def test_store_failure_is_counted_unavailable(recorded: Served, recording: RecordingStore):
    recording.fail = True
    with Client(f"127.0.0.1:{recorded.port}", timeout=5) as c, pytest.raises(grpc.RpcError) as exc:
        c.write_metric(APP, "alice", "sales", 1.0)
    assert status_of(exc) == grpc.StatusCode.UNAVAILABLE
    assert recorded.service.calls() == {("write_metric", "UNAVAILABLE"): 1}


def test_looked_up_users_reach_the_store_grouped(apps: Apps, recording: RecordingStore):
    apps.versions["ns/other"] = [(2, 1.0)]
    served = serve(0, apps, recording, host="127.0.0.1")  # type: ignore[arg-type]
    users = [f"u{i}" for i in range(60)]
    try:
        with Client(f"127.0.0.1:{served.port}", timeout=5) as c:
            for user in users:
                c.lookup(APP, user)
                c.lookup("backend", user)  # the same application: recorded once
                c.lookup("ns/other", user)
            c.lookup("ns/idle", "nobody")  # failed lookups record nobody
            c.write_metric(APP, "writer", "sales", 1.0)  # nor do writes
    finally:
        served.stop(None)  # flushes what is still pending
    expected: dict[tuple[str, int], set[str]] = {}
    for user in users:
        expected.setdefault((APP, assign(user, [(0, 1.0), (1, 3.0)], application=APP)), set()).add(user)  # type: ignore[arg-type]
    expected[("ns/other", 2)] = set(users)
    assert recording.groups() == expected
    for application, version, batch in recording.added:  # one group per call, no user twice
        assert batch == sorted(set(batch))
        assert set(batch) <= expected[application, version]


def test_users_are_flushed_while_serving(recorded: Served, recording: RecordingStore):
    with Client(f"127.0.0.1:{recorded.port}", timeout=5) as c:
        version = c.lookup("ns/other", "zoe")
    assert version == 2
    for _ in range(100):  # the flush runs about once a second, without a stop
        if recording.added:
            break
        threading.Event().wait(0.05)
    assert recording.added == [("ns/other", 2, ["zoe"])]


def test_user_flush_drops_on_store_error(
    apps: Apps, recording: RecordingStore, caplog: pytest.LogCaptureFixture
):
    service = AbnService(apps, recording)  # type: ignore[arg-type]
    service.lookup(APP, "a")
    recording.fail = True
    with caplog.at_level(logging.ERROR, logger="kubectl_iter8.controller.abn.service"):
        assert service.flush_users() == 0
    assert "cannot record 1 users" in caplog.text
    recording.fail = False
    assert service.flush_users() == 0  # dropped, not retried
    service.lookup(APP, "b")
    assert service.flush_users() == 1
    assert recording.groups() == {(APP, assign("b", [(0, 1.0), (1, 3.0)], application=APP)): {"b"}}


def test_pending_users_are_bounded(apps: Apps, recording: RecordingStore, caplog: pytest.LogCaptureFixture):
    service = AbnService(apps, recording)  # type: ignore[arg-type]
    service.max_pending = 3
    with caplog.at_level(logging.WARNING, logger="kubectl_iter8.controller.abn.service"):
        for user in ("a", "b", "c", "d", "e", "a"):  # "a" again: already pending, not a new one
            assert service.lookup(APP, user) in (0, 1)
        assert len(caplog.records) == 1  # one warning, not one per dropped user
        assert service.flush_users() == 3
        for user in ("f", "g", "h", "i"):
            service.lookup(APP, user)
        assert len(caplog.records) == 2  # a new episode after the flush warns again
    assert service.flush_users() == 3
    assert set().union(*recording.groups().values()) == {"a", "b", "c", "f", "g", "h"}
    assert service.calls() == {("lookup", "OK"): 10}


def test_a_controller_not_ready_yet_answers_unavailable_quietly(store, caplog):
    from kubectl_iter8.controller.errors import NotReadyError

    def not_ready(application: str) -> None:
        raise NotReadyError("the controller's caches are not synced yet")

    served = serve(0, not_ready, store, host="127.0.0.1", max_workers=2)
    try:
        with Client(f"127.0.0.1:{served.port}", timeout=5) as client, pytest.raises(grpc.RpcError) as exc:
            client.write_metric(APP, "u", "sales", 1.0)
        assert exc.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "not synced" in exc.value.details()
        assert "Traceback" not in caplog.text  # a normal moment at start-up, not an error
    finally:
        served.stop(None)


# --- limits ----------------------------------------------------------------------------------------

HUGE = "x" * ((4 << 20) - 1024)  # about 4 MiB, what made every /metrics scrape 199 MB


def write_call(channel: grpc.Channel):  # type: ignore[no-untyped-def]
    p = protocol()
    return channel.unary_unary(
        WRITE_METRIC,
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=p.Empty.FromString,
    )


def lookup_call(channel: grpc.Channel):  # type: ignore[no-untyped-def]
    p = protocol()
    return channel.unary_unary(
        LOOKUP,
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=p.VersionRecommendation.FromString,
    )


@pytest.mark.parametrize(
    ("application", "user", "name", "value", "field"),
    [
        (APP, "alice", HUGE, "1", "metric name"),
        (APP, "alice", "n" * 257, "1", "metric name"),
        (APP, "é" * 129, "sales", "1", "user"),  # 258 bytes in UTF-8
        (APP, HUGE, "sales", "1", "user"),
        ("default/" + "a" * 254, "alice", "sales", "1", "application"),
        ("n" * 64 + "/backend", "alice", "sales", "1", "namespace"),
        (HUGE, "alice", "sales", "1", "application"),
        (APP, "alice", "sales", "1e308", "beyond the limit"),
        (APP, "alice", "sales", "-1000000000000001", "beyond the limit"),
        (APP, "alice", "sales", "1" * 65, "longer than 64 characters"),
    ],
)
def test_write_metric_beyond_the_limits_is_invalid_argument_with_a_short_message(
    server: Served, store: MetricStore, application, user, name, value, field
):
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel, pytest.raises(grpc.RpcError) as exc:
        write_call(channel)(
            protocol().MetricValue(application=application, user=user, name=name, value=value), timeout=10
        )
    assert status_of(exc) == grpc.StatusCode.INVALID_ARGUMENT
    details = exc.value.details()  # type: ignore[attr-defined]
    assert field in details
    assert len(details) < 200, details
    assert store.count() == 0


def test_values_at_the_limits_are_stored(client: Client, store: MetricStore):
    for value in (-12.5, 1e15, -1e15, 0.0):  # negatives: refunds
        client.write_metric(APP, "é" * 128, "n" * 256, value)
    assert store.count() == 4


def test_lookup_of_a_too_long_user_is_invalid_argument(server: Served):
    p = protocol()
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel, pytest.raises(grpc.RpcError) as exc:
        lookup_call(channel)(p.Application(name=APP, user="u" * 257), timeout=5)
    assert status_of(exc) == grpc.StatusCode.INVALID_ARGUMENT
    assert "longer than 256 bytes" in exc.value.details()  # type: ignore[attr-defined]


def test_a_new_metric_beyond_the_cap_is_resource_exhausted(apps: Apps, store: MetricStore):
    served = serve(0, apps, store, host="127.0.0.1", limits=Limits(max_metrics=2))
    try:
        with Client(f"127.0.0.1:{served.port}", timeout=5) as c:
            c.write_metric(APP, "alice", "sales", 1.0)
            c.write_metric(APP, "alice", "clicks", 1.0)
            with pytest.raises(grpc.RpcError) as exc:
                c.write_metric(APP, "alice", "refunds", 1.0)
            assert status_of(exc) == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "'refunds' not stored" in exc.value.details()  # type: ignore[attr-defined]
            c.write_metric(APP, "bob", "sales", 2.0)  # known names still take values
    finally:
        served.stop(None)
    assert store.metric_names(APP) == {"sales", "clicks"}
    assert store.count() == 3


def test_quote_cuts_long_values():
    assert quote("abc") == "'abc'"
    assert quote("x" * 1000) == f"{'x' * 32!r}... (1000 bytes)"
    assert quote("é" * 40).endswith("(80 bytes)")


def test_caps_are_positive_integers():
    from kubectl_iter8.errors import UsageError

    assert positive(" 10 ", "--abn-max-users") == 10
    for bad in ("0", "-1", "ten", "1.5", "١٠"):
        with pytest.raises(UsageError, match=r"^--abn-max-users: expected a positive integer"):
            positive(bad, "--abn-max-users")


# --- the shared token ------------------------------------------------------------------------------

TOKEN = "s3cret-token"


def test_a_token_is_required_when_set(apps: Apps, store: MetricStore, caplog: pytest.LogCaptureFixture):
    served = serve(0, apps, store, host="127.0.0.1", token=TOKEN)
    target = f"127.0.0.1:{served.port}"
    try:
        with caplog.at_level(logging.DEBUG):
            for token in (None, "wrong", TOKEN + "x"):
                with Client(target, timeout=5, token=token) as c:
                    assert c.lookup(APP, "alice") == 0  # the fallback
                    with pytest.raises(grpc.RpcError) as exc:
                        c.write_metric(APP, "alice", "sales", 1.0)
                    assert status_of(exc) == grpc.StatusCode.UNAUTHENTICATED
            assert "UNAUTHENTICATED" in caplog.text
            with Client(target, timeout=5, token=TOKEN) as c:
                version = c.lookup(APP, "alice")
                assert version == assign("alice", [(0, 1.0), (1, 3.0)], application=APP)
                c.write_metric(APP, "alice", "sales", 1.0)

            async def run() -> int:
                async with AsyncClient(target, timeout=5, token=TOKEN) as ac:
                    await ac.write_metric(APP, "bob", "sales", 2.0)
                    return await ac.lookup(APP, "bob")

            assert asyncio.run(run()) == assign("bob", [(0, 1.0), (1, 3.0)], application=APP)
        calls = served.service.calls()
    finally:
        served.stop(None)
    assert store.count() == 2
    assert calls[("lookup", "UNAUTHENTICATED")] == 3
    assert calls[("write_metric", "UNAUTHENTICATED")] == 3
    assert TOKEN not in caplog.text


def test_read_token_file(tmp_path):
    from kubectl_iter8.errors import UsageError

    path = tmp_path / "token"
    path.write_text(f"  {TOKEN}\n")
    assert read_token_file(str(path), "--abn-token-file") == TOKEN
    for content, message in [("\n", "empty"), ("a\nb", "one line"), ("tok\x00en", "one line")]:
        path.write_text(content)
        with pytest.raises(UsageError, match=message) as exc:
            read_token_file(str(path), "--abn-token-file")
        assert str(exc.value).startswith(f"--abn-token-file: {path}: ")
        assert content.strip() not in str(exc.value) or not content.strip()
    with pytest.raises(UsageError, match="cannot read: No such file"):
        read_token_file(str(tmp_path / "none"), "--abn-token-file")


def test_metrics_collect_reads_aggregates_not_values(tmp_path, monkeypatch: pytest.MonkeyPatch):
    from kubectl_iter8.controller.abn.runtime import AbnRuntime
    from kubectl_iter8.controller.config import Settings

    settings = Settings(abn_port=0, abn_store=f"sqlite:{tmp_path / 'abn.db'}")
    runtime = AbnRuntime(settings, versions_for=Apps(), known=lambda _: True)
    try:
        for index in range(30):
            runtime.store.write(APP, index % 2, "sales", f"u{index % 7}", float(index))
        expected = summarize(runtime.store.values(APP))

        def no_values(application: str) -> None:
            raise AssertionError("a scrape must not read the values")

        monkeypatch.setattr(runtime.store, "values", no_values)
        lines = runtime.collect()
    finally:
        runtime.stop()
    labels = 'namespace="default",application="backend",metric="sales",version="1",over="transactions"'
    assert f"iter8_abn_metric_count{{{labels}}} {expected['sales'][1].transactions.count}" in lines
    assert f"iter8_abn_metric_max{{{labels}}} {expected['sales'][1].transactions.max!r}" in lines
