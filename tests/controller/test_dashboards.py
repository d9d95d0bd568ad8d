"""Iter8 v1.x's ``/testResult``, ``/httpDashboard`` and ``/grpcDashboard`` through the real entry points.

A ``controller serve`` process (on the fake API server) receives the result that ``kubectl-iter8
launch --local`` sends when ``METRICS_SERVER_URL`` points at it, after a load test against the sample
app (http) or the test gRPC server (grpc) on 127.0.0.1; the dashboards it then serves are checked
against the experiment's own result. Bad input and the bounds get their 4xx; the bucket rules
(Fortio's bounds, ghz's marks) are checked on histograms of known values.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc_fixtures
import pytest
import yaml
from controller_helpers import wait_until
from grpc_fixtures import Server
from hdrh.histogram import HdrHistogram
from kubectl_iter8.controller.http import HTTPServer, Metrics
from kubectl_iter8.controller.testresults import Latencies, TestResults, dashboards
from test_serve import free_port

from kubectl_iter8.sample_app import SampleApp, running
from kubectl_iter8.testing import FakeKube

HERE = Path(__file__).resolve().parent
CONFIG = "resourceTypes:\n  svc: {version: v1, resource: services, kind: Service}\n"
TOKEN = "t0ken-for-results"
#: A load that takes a fraction of a second (the default is 100 requests at 8 per second).
QUICK = {"numRequests": 20, "qps": 400}


class Controller:
    """One ``controller serve`` process and its HTTP port."""

    def __init__(self, workdir: Path, *args: str) -> None:
        self.kube = FakeKube(directory=workdir / "fake-kube")
        self.kube.start()
        self.port = free_port()
        self.log = workdir / "controller.log"
        config = workdir / "config.yaml"
        config.write_text(CONFIG)
        env = {
            **os.environ,
            **self.kube.env(),
            "ITER8_PLUGINS": "iter8_controller_test_plugin",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])),
        }
        with self.log.open("w") as stderr:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "kubectl_iter8", "controller", "serve", "--namespace", "default",
                 "--config", str(config), "--http-port", str(self.port), *args],
                env=env, stdout=subprocess.DEVNULL, stderr=stderr, cwd=workdir,
            )  # fmt: skip
        try:
            wait_until(lambda: self.call("GET", "/readyz")[0] == 200, timeout=30, what="/readyz")
        except AssertionError:
            self.proc.kill()
            self.proc.wait(15)
            self.kube.stop()
            raise AssertionError(f"controller serve did not get ready: {self.logs()}") from None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def logs(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def call(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, str]:
        request = urllib.request.Request(self.url + path, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()
        except (urllib.error.URLError, ConnectionError):
            return 0, ""

    def dashboard(self, kind: str, namespace: str, test: str, **headers: str) -> dict[str, Any]:
        status, text = self.call(
            "GET", f"/{kind}Dashboard?namespace={namespace}&test={test}", headers=headers
        )
        assert status == 200, text
        document: dict[str, Any] = json.loads(text)
        return document

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            assert self.proc.wait(15) == 0, self.logs()
        finally:
            self.kube.stop()


@pytest.fixture(scope="module")
def controller(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Controller]:
    serving = Controller(tmp_path_factory.mktemp("controller"))
    yield serving
    serving.stop()


@pytest.fixture(scope="module")
def app() -> Iterator[SampleApp]:
    with running() as server:
        yield server


@pytest.fixture(scope="module")
def grpc_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    stubs = grpc_fixtures.compile_stubs(tmp_path_factory.mktemp("stubs"))
    with grpc_fixtures.running(stubs, reflection=True) as server:
        yield server


def launch(cli: Any, tmp_path: Path, name: str, spec: list[dict[str, Any]]) -> tuple[Any, dict[str, Any]]:
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump({"metadata": {"name": name, "namespace": "team"}, "spec": spec}))
    outcome = cli("launch", "--local", "-f", str(path), "--run-dir", str(tmp_path / "run"))
    result = yaml.safe_load((tmp_path / "run" / "experiment.yaml").read_text())["result"]
    return outcome, result


def gauges(result: dict[str, Any]) -> dict[str, float]:
    return {k: v[-1] for k, v in result["insights"]["nonHistMetricValues"][0].items()}


def check_headline(headline: dict[str, Any], name: str, tasks: int, failure: bool = False) -> None:
    assert headline["Name"] == name
    assert headline["Namespace"] == "team"
    assert headline["Completed tasks"] == tasks
    assert headline["Failure"] is failure
    assert re.fullmatch(r"\d\d [A-Z][a-z]{2} \d\d \d\d:\d\d UTC", headline["Start time"])
    assert headline["Insights"]["numVersions"] == 1
    assert "histograms" not in headline["Insights"]
    assert isinstance(headline["Iter8 version"], str)


def test_an_http_test_s_result_reaches_the_http_dashboard(
    cli: Any, tmp_path: Path, controller: Controller, app: SampleApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("METRICS_SERVER_URL", controller.url)
    url = f"{app.url}/get"
    outcome, result = launch(
        cli, tmp_path, "perf", [{"task": "http", "with": {"url": url, "numRequests": 60, "qps": 400}}]
    )
    assert outcome.code == 0, outcome.err
    board = controller.dashboard("http", "team", "perf")
    check_headline(board["ExperimentResult"], "perf", 1)
    [(key, row)] = board["Endpoints"].items()
    assert key == url  # Iter8's key for a task with one URL
    metrics = gauges(result)
    stats = row["Statistics"]
    assert stats["Count"] == 60
    assert stats["Mean"] == pytest.approx(metrics["http/latency-mean"], abs=1e-6)
    assert stats["StdDev"] == pytest.approx(metrics["http/latency-stddev"], abs=1e-6)
    assert stats["Min"] == pytest.approx(metrics["http/latency-min"], abs=1e-6)
    assert stats["Max"] == pytest.approx(metrics["http/latency-max"], abs=1e-6)
    assert row["Return codes"] == {"200": 60}
    assert sum(bucket["Value"] for bucket in row["Durations"]) == 60
    assert {bucket["Version"] for bucket in row["Durations"]} == {"0"}
    first, last = row["Durations"][0]["Bucket"], row["Durations"][-1]["Bucket"]
    assert float(first.split(" - ")[0]) == pytest.approx(int(metrics["http/latency-min"] * 10) / 10)
    assert float(last.split(" - ")[1]) == pytest.approx(int(metrics["http/latency-max"] * 10) / 10)
    assert row["Error durations"] == []  # none failed: Fortio's empty histogram
    assert row["Error statistics"] == {"Count": 0, "Mean": 0.0, "StdDev": 0.0, "Min": 0.0, "Max": 0.0}
    # Iter8 served either dashboard for any stored test: this one has no grpc endpoint.
    assert controller.dashboard("grpc", "team", "perf")["Endpoints"] == {}


def test_named_endpoints_are_keyed_by_name_and_errors_counted(
    cli: Any, tmp_path: Path, controller: Controller, app: SampleApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("METRICS_SERVER_URL", controller.url + "/")  # a trailing slash is fine
    inputs = {
        "numRequests": 20,
        "qps": 400,
        "endpoints": {
            "ok": {"url": f"{app.url}/get"},
            "broken": {"url": f"{app.url}/status/503", "allowInitialErrors": True},
            # Answers of at least 15 ms that errorRanges call errors: their durations are the errors'.
            "slow": {"url": f"{app.url}/delay/15", "errorRanges": [{"lower": 200, "upper": 299}],
                     "allowInitialErrors": True, "qps": 0},
        },
    }  # fmt: skip
    outcome, _ = launch(cli, tmp_path, "two-endpoints", [{"task": "http", "with": inputs}])
    assert outcome.code == 0, outcome.err
    board = controller.dashboard("http", "team", "two-endpoints")
    assert set(board["Endpoints"]) == {"ok", "broken", "slow"}
    broken = board["Endpoints"]["broken"]
    assert broken["Return codes"] == {"503": 20}
    assert broken["Error statistics"]["Count"] == 20
    assert sum(bucket["Value"] for bucket in broken["Error durations"]) == 20
    assert board["Endpoints"]["ok"]["Error statistics"]["Count"] == 0
    assert board["Endpoints"]["ok"]["Error durations"] == []
    slow = board["Endpoints"]["slow"]
    # Every request failed, so the errors' histogram and statistics are the durations' own.
    assert slow["Error durations"] == slow["Durations"]
    assert slow["Error statistics"] == slow["Statistics"]
    assert slow["Error statistics"]["Count"] == 20
    assert slow["Error statistics"]["Min"] >= 15
    assert float(slow["Error durations"][0]["Bucket"].split(" - ")[0]) >= 15


def test_a_grpc_test_s_result_reaches_the_grpc_dashboard(
    cli: Any, tmp_path: Path, controller: Controller, grpc_server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("METRICS_SERVER_URL", controller.url)
    call = "iter8.test.Echo/Unary"
    inputs = {"host": grpc_server.host, "call": call, "data": {"name": "x"}, "total": 40}
    outcome, result = launch(cli, tmp_path, "grpc-perf", [{"task": "grpc", "with": inputs}])
    assert outcome.code == 0, outcome.err
    board = controller.dashboard("grpc", "team", "grpc-perf")
    check_headline(board["ExperimentResult"], "grpc-perf", 1)
    [(key, row)] = board["Endpoints"].items()
    assert key == call  # Iter8's key for a task with one call
    assert row["Statistics"] == {"Count": 40, "ErrorCount": 0.0}
    assert row["Status codes"] == {"OK": 40}
    durations = row["Durations"]
    assert len(durations) == 11  # ghz: ten steps between the fastest and the slowest, both marked
    assert sum(bucket["Value"] for bucket in durations) == 40
    metrics = gauges(result)
    assert float(durations[0]["Bucket"]) == pytest.approx(int(metrics["grpc/latency-min"] * 1000) / 1000)
    assert float(durations[-1]["Bucket"]) == pytest.approx(int(metrics["grpc/latency-max"] * 1000) / 1000)
    assert controller.dashboard("http", "team", "grpc-perf")["Endpoints"] == {}


def test_a_failed_load_test_is_sent_too(
    cli: Any, tmp_path: Path, controller: Controller, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("METRICS_SERVER_URL", controller.url)
    dead = f"http://127.0.0.1:{free_port()}/get"
    outcome, result = launch(cli, tmp_path, "failed", [{"task": "http", "with": {"url": dead}}])
    assert outcome.code != 0
    assert result["failure"] is True
    board = controller.dashboard("http", "team", "failed")
    assert board["ExperimentResult"]["Failure"] is True
    assert board["Endpoints"] == {}


def test_an_unreachable_metrics_server_is_a_warning_not_a_failure(
    cli: Any,
    tmp_path: Path,
    app: SampleApp,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("METRICS_SERVER_URL", f"http://127.0.0.1:{free_port()}")
    started = time.monotonic()
    outcome, result = launch(
        cli, tmp_path, "nowhere", [{"task": "http", "with": QUICK | {"url": f"{app.url}/get"}}]
    )
    assert outcome.code == 0, outcome.err
    assert result["failure"] is False
    [warning] = [r for r in caplog.records if r.levelname == "WARNING"]
    assert warning.getMessage().startswith("METRICS_SERVER_URL: cannot send the result to http://127.0.0.1:")
    assert warning.exc_info is None
    assert time.monotonic() - started < 20


def put(controller: Controller, query: str, body: bytes, **headers: str) -> tuple[int, dict[str, Any]]:
    status, text = controller.call("PUT", f"/testResult?{query}", body, headers)
    return status, json.loads(text) if text.startswith("{") else {"text": text}


def minimal_result(histogram: str = "") -> dict[str, Any]:
    if not histogram:
        recorded = HdrHistogram(1, 3_600_000_000, 3)
        recorded.record_value(1500)
        histogram = recorded.encode().decode()
    details = {"endpoints": {"http": {"url": "http://x/", "latencyHistogram": histogram, "errors": 0}}}
    return {"numCompletedTasks": 1, "tasks": [{"task": "http", "status": "completed", "details": details}]}


@pytest.mark.parametrize(
    ("query", "body", "status", "error"),
    [
        ("namespace=team", b"{}", 400, "the query parameter test is required"),
        ("test=x", b"{}", 400, "the query parameter namespace is required"),
        ("namespace=Team&test=x", b"{}", 400, "namespace: 'Team' is not a Kubernetes name"),
        ("namespace=team&test=" + "x" * 300, b"{}", 400, "test: 'xxxxx"),
        ("namespace=team&test=x", b"{not json", 400, "body: not JSON: "),
        ("namespace=team&test=x", b"[" * 100_000, 400, "body: not JSON: "),
        ("namespace=team&test=x", b"[]", 400, "the body must be a JSON object"),
        ("namespace=team&test=x", b'{"numCompletedTasks": "many"}', 400, "numCompletedTasks: "),
        (
            "namespace=team&test=x",
            json.dumps(minimal_result("HISTFAAAnonsense")).encode(),
            400,
            "tasks[0].details.endpoints['http'].latencyHistogram: not an encoded HDR histogram",
        ),
        (
            "namespace=team&test=x",
            json.dumps(minimal_result("H" * 300_000)).encode(),
            400,
            "tasks[0].details.endpoints['http'].latencyHistogram: over 262144 characters",
        ),
    ],
)
def test_bad_puts_get_a_clear_400(
    controller: Controller, query: str, body: bytes, status: int, error: str
) -> None:
    got, answer = put(controller, query, body)
    assert got == status, answer
    assert answer["error"].startswith(error), answer
    assert len(answer["error"]) < 400


def test_a_minimal_result_is_stored_and_unknown_tests_are_404(controller: Controller) -> None:
    assert put(controller, "namespace=team&test=minimal", json.dumps(minimal_result()).encode()) == (
        200,
        {"namespace": "team", "test": "minimal"},
    )
    row = controller.dashboard("http", "team", "minimal")["Endpoints"]["http://x/"]
    assert row["Durations"] == [{"Version": "0", "Bucket": "1.5 - 1.5", "Value": 1.0}]
    for kind in ("http", "grpc"):
        status, text = controller.call("GET", f"/{kind}Dashboard?namespace=team&test=no-such-test")
        assert (status, json.loads(text)) == (
            404,
            {"error": "no result for test 'no-such-test' in namespace 'team'"},
        )


def test_oversized_or_unframed_bodies_are_refused_unread(controller: Controller) -> None:
    def raw(request: bytes) -> bytes:
        with socket.create_connection(("127.0.0.1", controller.port), timeout=10) as sock:
            sock.sendall(request)
            sock.shutdown(socket.SHUT_WR)
            return b"".join(iter(lambda: sock.recv(65536), b""))

    head = b"PUT /testResult?namespace=team&test=big HTTP/1.1\r\nHost: x\r\n"
    # Announced as 1 GiB, and none of it sent: answered at once, not waited for.
    started = time.monotonic()
    assert raw(head + b"Content-Length: 1073741824\r\n\r\n").startswith(b"HTTP/1.0 413")
    assert time.monotonic() - started < 2
    assert raw(head + b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n").startswith(b"HTTP/1.0 411")
    assert raw(head + b"\r\n").startswith(b"HTTP/1.0 411")
    assert raw(head + b"Content-Length: -5\r\n\r\n").startswith(b"HTTP/1.0 400")
    assert controller.call("GET", "/testResult")[0] == 405
    assert controller.call("POST", "/httpDashboard", b"{}")[0] == 405
    assert controller.call("GET", "/healthz")[0] == 200  # still serving


def test_a_trickled_body_is_cut_at_its_deadline() -> None:
    results = TestResults()
    server = HTTPServer(
        "127.0.0.1", 0, metrics=Metrics(), healthy=lambda: True, ready=lambda: True,
        routes=results.routes(), put_routes=results.put_routes(), body_timeout=0.5,
    )  # fmt: skip
    server.start()
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(
                b"PUT /testResult?namespace=a&test=b HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"
            )
            started = time.monotonic()
            closed = False
            for _ in range(40):  # a byte every 0.1 s: each read is quick, the whole body is not
                try:
                    sock.sendall(b" ")
                except OSError:
                    closed = True
                    break
                time.sleep(0.1)
            if not closed:
                closed = sock.recv(1024) == b""
            assert closed
            assert time.monotonic() - started < 2.5
        assert len(results) == 0
    finally:
        server.stop()


def test_the_store_keeps_the_latest_results_within_its_bounds() -> None:
    body = json.dumps(minimal_result()).encode()
    store = TestResults(max_results=2)
    put_route = store.put_routes()["/testResult"]
    get = store.routes()["/httpDashboard"]
    for name in ("a", "b", "c"):
        assert put_route({"namespace": "ns", "test": name}, {}, body)[0] == 200
    assert len(store) == 2
    assert get({"namespace": "ns", "test": "a"}, {})[0] == 404  # the least recently written went
    assert get({"namespace": "ns", "test": "c"}, {})[0] == 200
    assert put_route({"namespace": "ns", "test": "b"}, {}, body)[0] == 200  # rewritten: now the newest
    assert put_route({"namespace": "ns", "test": "d"}, {}, body)[0] == 200
    assert get({"namespace": "ns", "test": "b"}, {})[0] == 200
    assert get({"namespace": "ns", "test": "c"}, {})[0] == 404
    tiny = TestResults(max_bytes=100)
    status, text, _ = tiny.put_routes()["/testResult"]({"namespace": "ns", "test": "a"}, {}, body)
    assert status == 400
    assert "its dashboards would take over 100 bytes" in text


def test_a_token_guards_the_results_and_the_tasks_send_it(
    cli: Any,
    tmp_path: Path,
    app: SampleApp,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    token = tmp_path / "token"
    token.write_text(TOKEN + "\n")
    monkeypatch.setenv("ITER8_ABN_STORE", f"sqlite:{tmp_path / 'abn.sqlite'}")
    guarded = Controller(tmp_path, "--abn-port", str(free_port()), "--abn-token-file", str(token))
    try:
        body = json.dumps(minimal_result()).encode()
        assert put(guarded, "namespace=team&test=t", body)[0] == 401
        assert put(guarded, "namespace=team&test=t", body, Authorization="Bearer wrong")[0] == 401
        monkeypatch.setenv("METRICS_SERVER_URL", guarded.url)
        spec = [{"task": "http", "with": QUICK | {"url": f"{app.url}/get"}}]
        outcome, _ = launch(cli, tmp_path, "guarded", spec)
        assert "refused the result: 401" in caplog.text
        caplog.clear()
        monkeypatch.setenv("METRICS_SERVER_TOKEN", TOKEN)
        outcome, _ = launch(cli, tmp_path, "guarded", spec)
        assert outcome.code == 0, outcome.err
        assert "refused" not in caplog.text
        assert TOKEN not in caplog.text
        assert guarded.call("GET", "/httpDashboard?namespace=team&test=guarded")[0] == 401
        board = guarded.dashboard("http", "team", "guarded", Authorization=f"Bearer {TOKEN}")
        assert board["ExperimentResult"]["Name"] == "guarded"
        assert TOKEN not in outcome.err
    finally:
        guarded.stop()
    assert TOKEN not in guarded.logs()


def histogram_of(values_us: list[int]) -> Latencies:
    recorded = HdrHistogram(1, 3_600_000_000, 3)
    for value in values_us:
        recorded.record_value(value)
    return Latencies(recorded.encode().decode(), "test")


def test_error_durations_come_from_the_errors_histogram_in_the_durations_form() -> None:
    def result(**endpoint: Any) -> dict[str, Any]:
        data = {"url": "http://x/", "latencyHistogram": encoded([1200, 1700, 30_000]), **endpoint}
        return {"tasks": [{"task": "http", "status": "completed", "details": {"endpoints": {"http": data}}}]}

    def encoded(values_us: list[int]) -> str:
        recorded = HdrHistogram(1, 3_600_000_000, 3)
        for value in values_us:
            recorded.record_value(value)
        return str(recorded.encode().decode())

    http, _ = dashboards(result(errors=2, errorLatencyHistogram=encoded([1700, 30_000])), "ns", "t")
    row = http["Endpoints"]["http://x/"]
    assert row["Error durations"] == [
        {"Version": "0", "Bucket": "1.7 - 2", "Value": 1.0},
        {"Version": "0", "Bucket": "30 - 30", "Value": 1.0},
    ]
    assert row["Error statistics"]["Count"] == 2
    assert (row["Error statistics"]["Min"], row["Error statistics"]["Max"]) == (
        1.7,
        pytest.approx(30.0, abs=0.05),
    )
    assert row["Error statistics"]["Mean"] == pytest.approx((1.7 + 30.0) / 2, abs=0.05)
    # A record from before failures were timed: their number, and nothing made up.
    http, _ = dashboards(result(errors=2), "ns", "t")
    assert http["Endpoints"]["http://x/"]["Error durations"] == []
    assert http["Endpoints"]["http://x/"]["Error statistics"] == {
        "Count": 2, "Mean": None, "StdDev": None, "Min": None, "Max": None,
    }  # fmt: skip
    with pytest.raises(ValueError, match=r"errorLatencyHistogram: not an encoded HDR histogram"):
        dashboards(result(errors=2, errorLatencyHistogram="HISTFAAAnonsense"), "ns", "t")


def test_fortio_buckets_use_fortio_s_bounds_from_the_minimum_to_the_maximum() -> None:
    latencies = histogram_of([1200, 1700, 2500, 13_000, 13_900, 150_000])
    assert latencies.fortio_buckets() == [
        {"Version": "0", "Bucket": "1.2 - 2", "Value": 2.0},
        {"Version": "0", "Bucket": "2 - 3", "Value": 1.0},
        {"Version": "0", "Bucket": "12 - 14", "Value": 2.0},
        {"Version": "0", "Bucket": "140 - 150", "Value": 1.0},
    ]
    stats = latencies.statistics_ms()
    assert stats["Count"] == 6
    assert (stats["Min"], stats["Max"]) == (1.2, pytest.approx(150.015, abs=0.1))


def test_ghz_buckets_mark_ten_equal_steps_from_the_fastest_to_the_slowest() -> None:
    latencies = histogram_of([1000, 1000, 1500, 2000, 11_000])
    buckets = latencies.ghz_buckets()
    # The slowest is 11.007 ms as the histogram holds it (3 significant digits): steps of 1.0007 ms.
    labels = ["1", "2", "3.001", "4.002", "5.002", "6.003", "7.004", "8.004", "9.005", "10.006", "11.007"]
    assert [b["Bucket"] for b in buckets] == labels
    assert [b["Value"] for b in buckets] == [2.0, 2.0, 0, 0, 0, 0, 0, 0, 0, 0, 1.0]


def test_grpc_status_names_are_go_s_and_task_records_pick_the_last_run() -> None:
    recorded = HdrHistogram(1, 3_600_000_000, 3)
    recorded.record_value(900)
    encoded = recorded.encode().decode()

    def record(count: int, warmup: bool = False) -> dict[str, Any]:
        data = {"call": "p.S/M", "latencyHistogram": encoded, "requests": count, "errors": 1,
                "statusCodes": {"OK": count - 1, "UNAVAILABLE": 1}}  # fmt: skip
        details: dict[str, Any] = {"endpoints": {"grpc": data}}
        if warmup:
            details["warmup"] = True
        return {"task": "grpc", "status": "completed", "details": details}

    result = {
        "tasks": [record(5), record(7), record(99, warmup=True)],
        "startTime": "2024-03-01T10:20:30+02:00",
    }
    _, grpc = dashboards(result, "ns", "t")
    assert grpc["Endpoints"]["p.S/M"]["Status codes"] == {"OK": 6, "Unavailable": 1}
    assert grpc["Endpoints"]["p.S/M"]["Statistics"] == {"Count": 7, "ErrorCount": 1.0}
    assert grpc["ExperimentResult"]["Start time"] == "01 Mar 24 08:20 UTC"
    assert grpc["ExperimentResult"]["Name"] == "t"
