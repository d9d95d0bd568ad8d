"""The A/B/n service over the real gRPC wire on 127.0.0.1, through the SDK clients."""

from __future__ import annotations

import asyncio
import logging
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from importlib import resources

import grpc
import pytest
from kubectl_iter8.controller.abn.assignment import assign
from kubectl_iter8.controller.abn.service import Rejected, Served, application_key, parse_value, serve
from kubectl_iter8.controller.abn.store import MetricStore

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
    s = MetricStore(tmp_path / "abn.db")
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
    summary = store.summary(APP)
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
    assert store.summary(APP)["latency"][version].transactions.count == 1


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
    for bad in ("", "x", "nan", "inf", "1,5"):
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
    assert store.summary(APP)["m"][version].transactions.mean == 2.5
