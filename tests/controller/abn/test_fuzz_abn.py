"""Fuzzing the A/B/n port: whatever a client sends on the gRPC wire, the service answers a documented
status in bounded time, stores nothing beyond its limits, and echoes no input at length.

Raw protobuf messages (not the SDK, which checks some fields itself) with generated applications,
users, metric names and values: known and unknown applications, names of every length around the
limits, numbers the service must refuse (NaN, infinities, 1e308, text, 100 KB strings).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from fuzzing import FUZZ
from hypothesis import event, given
from hypothesis import strategies as st
from kubectl_iter8.controller.abn.limits import MAX_METRIC_BYTES, MAX_USER_BYTES, Limits
from kubectl_iter8.controller.abn.service import Served, serve
from kubectl_iter8.controller.abn.sqlite_store import SqliteStore

from kubectl_iter8.sdk import LOOKUP, WRITE_METRIC, protocol

APPS = {"default/backend": [(0, 1.0), (1, 3.0)], "ns/idle": [(0, 0.0)]}
LIMITS = Limits(max_metrics=5, max_users=50)
#: What the service may answer; anything else (UNKNOWN, INTERNAL) is a bug.
DOCUMENTED = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
}


def texts(*samples: str) -> st.SearchStrategy[str]:
    # Mostly the samples (so that calls get through and reach the caps), some random or huge text.
    known = st.sampled_from(samples)
    return st.one_of(known, known, known, st.text(max_size=40), st.integers(0, 70_000).map(lambda n: "é" * n))


APPLICATIONS = texts("default/backend", "default/backend", "ns/idle", "ns/nope", "backend", "/", "a/b/c", "")
USERS = texts("alice", "bob", "carol", "", "u" * MAX_USER_BYTES, "u" * (MAX_USER_BYTES + 1))
METRICS = texts("sales", "clicks", "", "m" * MAX_METRIC_BYTES, "m" * (MAX_METRIC_BYTES + 1)) | st.from_regex(
    r"m[0-9]{1,3}", fullmatch=True
)
VALUES = st.one_of(
    st.floats(min_value=-1e15, max_value=1e15).map(repr),
    st.floats(min_value=-1e15, max_value=1e15).map(repr),
    st.floats().map(repr),
    st.integers(-(10**20), 10**20).map(str),
    st.sampled_from(
        ["nan", "inf", "-inf", "1e308", "-1e16", "1e15", "", " 1 ", "0x10", "1_000", "x" * 100_000]
    ),
    st.text(max_size=20),
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, SqliteStore]]:
    store = SqliteStore(tmp_path_factory.mktemp("abn") / "abn.db", max_users=LIMITS.max_users)
    served = serve(0, APPS.get, store, host="127.0.0.1", limits=LIMITS)
    yield served, store
    served.stop(None)
    store.close()


def call(served: Served, method: str, request: Any, answer: Any) -> tuple[grpc.StatusCode, str]:
    with grpc.insecure_channel(f"127.0.0.1:{served.port}") as channel:
        stub = channel.unary_unary(
            method, request_serializer=lambda m: m.SerializeToString(), response_deserializer=answer
        )
        try:
            stub(request, timeout=10)
        except grpc.RpcError as exc:
            return exc.code(), exc.details() or ""  # type: ignore[attr-defined]
    return grpc.StatusCode.OK, ""


@FUZZ
@given(application=APPLICATIONS, user=USERS, metric=METRICS, value=VALUES, lookup=st.booleans())
def test_any_request_gets_a_documented_status_and_bounded_storage(
    server: tuple[Served, SqliteStore], application: str, user: str, metric: str, value: str, lookup: bool
) -> None:
    served, store = server
    p = protocol()
    started = time.monotonic()
    if lookup:
        code, details = call(
            served, LOOKUP, p.Application(name=application, user=user), p.VersionRecommendation.FromString
        )
    else:
        message = p.MetricValue(application=application, user=user, name=metric, value=value)
        code, details = call(served, WRITE_METRIC, message, p.Empty.FromString)
    assert time.monotonic() - started < 5.0
    event(f"{'Lookup' if lookup else 'WriteMetric'}: {code.name}")
    assert code in DOCUMENTED, (code, details[:300])
    assert len(details) <= 1024, details[:300]
    for app in store.applications():
        names = store.metric_names(app)
        assert len(names) <= LIMITS.max_metrics
        assert all(len(name.encode()) <= MAX_METRIC_BYTES for name in names)
