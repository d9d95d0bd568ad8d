"""The ``grpc`` task end to end: ``launch --local`` through the CLI against real gRPC servers.

The servers (tests/grpc_fixtures/server.py) run as child processes on 127.0.0.1, with and without
reflection; their stubs are generated into a temporary folder by grpcio-tools.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc_fixtures
import pytest
import yaml
from grpc_fixtures import ECHO_PROTO, PROTOS, Server
from hdrh.histogram import HdrHistogram
from kubectl_iter8.builtin_tasks.loadgen.pacing import EARLY_NS

UNARY = "iter8.test.Echo/Unary"
LATENCIES = ["mean", "stddev", "min", "max", "p50", "p75", "p90", "p95", "p99", "p99.9"]


@pytest.fixture(scope="module")
def stubs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return grpc_fixtures.compile_stubs(tmp_path_factory.mktemp("stubs"))


@pytest.fixture(scope="module")
def server(stubs: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """With reflection; logs every request."""
    log = tmp_path_factory.mktemp("log") / "requests.jsonl"
    with grpc_fixtures.running(stubs, reflection=True, log=log) as running:
        yield running


@pytest.fixture(scope="module")
def bare(stubs: Path) -> Iterator[Server]:
    """Without reflection."""
    with grpc_fixtures.running(stubs) as running:
        yield running


@pytest.fixture(scope="module")
def protoset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return grpc_fixtures.make_protoset(tmp_path_factory.mktemp("protoset") / "echo.protoset")


def launch(cli, tmp_path: Path, spec: list[dict[str, Any]]):
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump({"spec": spec}))
    outcome = cli("launch", "--local", "-f", str(path), "--run-dir", str(tmp_path / "run"))
    doc = yaml.safe_load((tmp_path / "run" / "experiment.yaml").read_text()) if outcome.code != 2 else {}
    return outcome, doc.get("result", {})


def grpc_task(**inputs: Any) -> list[dict[str, Any]]:
    return [{"task": "grpc", "with": inputs}]


def values(result: dict[str, Any]) -> dict[str, float]:
    return {k: v[-1] for k, v in result["insights"]["nonHistMetricValues"][0].items()}


def record(result: dict[str, Any], prefix: str = "grpc") -> dict[str, Any]:
    return result["tasks"][0]["details"]["endpoints"][prefix]


def error_line(outcome) -> str:
    lines = [line for line in outcome.err.splitlines() if "error" in line.lower()]
    return "\n".join(lines)


# ---- discovery, data and metadata ---------------------------------------------------------------


def test_reflection_templated_data_and_metadata_exact_count(cli, tmp_path: Path, server: Server) -> None:
    server.clear()
    spec = grpc_task(
        host=server.host,
        call=UNARY,
        total=60,
        concurrency=4,
        data={
            "name": "user-{{.RequestNumber}}",
            "id": "{{.RequestNumber}}",
            "nested": {"worker": "{{.WorkerID}}"},
        },
        metadata={"x-request-id": "{{.UUID}}", "x-team": "checkout"},
    )
    outcome, result = launch(cli, tmp_path, spec)
    assert outcome.code == 0, outcome.err
    metrics = values(result)
    assert sorted(metrics) == sorted(
        ["grpc/request-count", "grpc/error-count", "grpc/error-rate"]
        + [f"grpc/latency-{n}" for n in LATENCIES]
    )
    assert (metrics["grpc/request-count"], metrics["grpc/error-count"], metrics["grpc/error-rate"]) == (
        60,
        0,
        0,
    )
    assert (
        0 < metrics["grpc/latency-min"] <= metrics["grpc/latency-p50"] <= metrics["grpc/latency-max"] < 1000
    )
    info = result["insights"]["metricsInfo"]
    assert info["grpc/latency-p95"]["units"] == "msec"
    assert info["grpc/request-count"]["type"] == "Counter"
    details = record(result)
    assert details["statusCodes"] == {"OK": 60}
    assert (details["kind"], details["descriptors"], details["loadModel"]) == (
        "unary",
        "reflection",
        "closed",
    )
    histogram = HdrHistogram.decode(result["insights"]["histograms"][0]["grpc/latency"])
    assert histogram.get_total_count() == 60
    requests = [r for r in server.requests() if r["method"] == "Unary"]
    assert len(requests) == 60  # exactly total: no pre-flight calls
    assert sorted(r["request"]["name"] for r in requests) == sorted(f"user-{n}" for n in range(60))
    assert {int(r["request"].get("id", 0)) for r in requests} == set(range(60))
    assert {r["request"]["nested"]["worker"] for r in requests} == {f"g{w}c0" for w in range(4)}
    assert len({r["metadata"]["x-request-id"] for r in requests}) == 60
    assert {r["metadata"]["x-team"] for r in requests} == {"checkout"}


def test_proto_with_import_paths_and_data_file(cli, tmp_path: Path, bare: Server) -> None:
    data = tmp_path / "data.json"
    data.write_text(json.dumps([{"name": "a"}, {"name": "b", "code": 5}]))
    spec = grpc_task(
        host=bare.host, call="iter8.test.Echo.Unary", proto=str(ECHO_PROTO), importPaths=[str(PROTOS)],
        dataFile=str(data), total=10, concurrency=2,
    )  # fmt: skip
    outcome, result = launch(cli, tmp_path, spec)
    assert outcome.code == 0, outcome.err
    details = record(result)
    assert details["descriptors"] == "proto"
    assert details["statusCodes"] == {"OK": 5, "NOT_FOUND": 5}  # the list is cycled per request


def test_protoset_and_binary_file(cli, tmp_path: Path, bare: Server, protoset: Path, stubs: Path) -> None:
    binary = tmp_path / "request.bin"
    binary.write_bytes(b"\x18\x03")  # EchoRequest{code: 3}: INVALID_ARGUMENT
    spec = grpc_task(
        host=bare.host, call=UNARY, protoset=str(protoset), binaryFile=str(binary), total=7, concurrency=3
    )
    outcome, result = launch(cli, tmp_path, spec)
    assert outcome.code == 0, outcome.err
    assert record(result)["descriptors"] == "protoset"
    assert record(result)["statusCodes"] == {"INVALID_ARGUMENT": 7}
    assert values(result)["grpc/error-rate"] == 1


# ---- load models, status codes, deadlines, warm-up ----------------------------------------------


def test_open_loop_counts_latency_from_the_intended_send_time(cli, tmp_path: Path, server: Server) -> None:
    # 50 calls/s for 0.4 s: exactly 20 calls, on schedule.
    outcome, result = launch(cli, tmp_path, grpc_task(host=server.host, call=UNARY, qps=50, duration="400ms"))
    assert outcome.code == 0, outcome.err
    details = record(result)
    assert (values(result)["grpc/request-count"], details["loadModel"], details["targetQPS"]) == (
        20,
        "open",
        50,
    )
    # The last call is due at 380 ms and may leave up to EARLY_NS before.
    assert details["elapsedSeconds"] >= 0.38 - EARLY_NS / 1e9
    # One worker, each call 30 ms, one due every 10 ms: the schedule slips and latencies count from
    # when each call was due, so they grow far past 30 ms (a closed loop would report ~30 ms).
    spec = grpc_task(host=server.host, call=UNARY, qps=100, total=12, concurrency=1, data={"delay_ms": 30})
    outcome, result = launch(cli, tmp_path, spec)
    assert outcome.code == 0, outcome.err
    metrics = values(result)
    assert metrics["grpc/latency-min"] >= 25
    assert metrics["grpc/latency-max"] > 180  # the 12th call: due at 110 ms, done near 360 ms
    assert record(result)["scheduleLag"]["maxMs"] > 150


def test_status_codes_are_counted_and_deadlines_expire(cli, tmp_path: Path, server: Server) -> None:
    spec = grpc_task(
        host=server.host,
        call=UNARY,
        total=12,
        concurrency=4,
        # Far above what an answered call takes on a busy machine; far below the server's delay.
        timeout="1s",
        data=[{"code": 0}, {"code": 14}, {"delay_ms": 20000}, {"code": 7}],
    )
    outcome, result = launch(cli, tmp_path, spec)
    assert outcome.code == 0, outcome.err  # failed calls are measured, not task failures
    details = record(result)
    assert details["statusCodes"] == {
        "OK": 3,
        "PERMISSION_DENIED": 3,
        "UNAVAILABLE": 3,
        "DEADLINE_EXCEEDED": 3,
    }
    assert details["errorMessages"]["UNAVAILABLE: asked to fail with 14"] == 3
    assert details["errorMessages"]["DEADLINE_EXCEEDED: Deadline Exceeded"] == 3
    metrics = values(result)
    assert (metrics["grpc/error-count"], metrics["grpc/error-rate"]) == (9, 0.75)
    # Cut at the deadline: a call that waited for the server's answer would take its 20 s.
    assert 990 <= metrics["grpc/latency-max"] < 20000


def test_warmup_keeps_no_metrics(cli, tmp_path: Path, server: Server) -> None:
    outcome, result = launch(cli, tmp_path, grpc_task(host=server.host, call=UNARY, total=5, warmup=True))
    assert outcome.code == 0, outcome.err
    assert not (result.get("insights") or {}).get("nonHistMetricValues")
    assert result["tasks"][0]["details"]["warmup"] is True
    assert record(result)["statusCodes"] == {"OK": 5}


# ---- streams and endpoints ----------------------------------------------------------------------


def test_streaming_endpoints_inherit_the_top_level(cli, tmp_path: Path, server: Server, caplog) -> None:
    server.clear()
    down = grpc_fixtures.free_port()
    spec = grpc_task(
        host=server.host,
        call=UNARY,
        total=6,
        concurrency=2,
        data={"name": "s{{.RequestNumber}}", "count": 4},
        endpoints={
            "unary": {},
            "client": {"call": "iter8.test.Echo/ClientStream", "streamCallCount": 3},
            "server": {"call": "iter8.test.Echo/ServerStream", "total": 5},
            "bidi": {"call": "iter8.test.Echo/Bidi", "streamCallCount": 3, "streamInterval": "5ms"},
            "down": {"host": f"127.0.0.1:{down}", "connectTimeout": "2s"},
        },
    )
    outcome, result = launch(cli, tmp_path, spec)
    assert outcome.code == 0, outcome.err
    metrics = values(result)
    assert {k for k in metrics if k.endswith("/request-count")} == {
        "grpc-unary/request-count",
        "grpc-client/request-count",
        "grpc-server/request-count",
        "grpc-bidi/request-count",
    }
    assert (metrics["grpc-unary/request-count"], metrics["grpc-server/request-count"]) == (6, 5)
    assert all(metrics[f"grpc-{e}/error-count"] == 0 for e in ("unary", "client", "server", "bidi"))
    client, srv, bidi = (record(result, f"grpc-{e}") for e in ("client", "server", "bidi"))
    assert (client["kind"], client["messagesSent"], client["messagesReceived"]) == ("client-streaming", 18, 6)
    assert (srv["kind"], srv["messagesSent"], srv["messagesReceived"]) == ("server-streaming", 5, 20)
    assert (bidi["kind"], bidi["messagesSent"], bidi["messagesReceived"]) == ("bidi-streaming", 18, 18)
    assert bidi["latencyHistogram"]
    assert "Connection refused" in record(result, "grpc-down")["error"]
    methods = Counter(r["method"] for r in server.requests())
    assert methods == {"Unary": 6, "ClientStream": 18, "ServerStream": 5, "Bidi": 18}
    assert "grpc-down: skipped: cannot connect" in caplog.text


def test_stream_call_duration_bounds_each_stream(cli, tmp_path: Path, server: Server) -> None:
    server.clear()
    spec = grpc_task(
        host=server.host, call="iter8.test.Echo/Bidi", total=2, concurrency=2,
        streamInterval="20ms", streamCallDuration="110ms", metadata={"x-call": "{{.RequestNumber}}"},
    )  # fmt: skip
    outcome, result = launch(cli, tmp_path, spec)
    assert outcome.code == 0, outcome.err
    details = record(result)
    assert details["statusCodes"] == {"OK": 2}
    # Messages are due at 0, 20, ..., 100 ms, within the 110 ms: at most 6 per stream. A busy
    # machine may wake a stream too late for its last ones (the first goes out at once).
    per_stream = Counter(r["metadata"]["x-call"] for r in server.requests() if r["method"] == "Bidi")
    assert sorted(per_stream) == ["0", "1"]
    assert all(1 <= n <= 6 for n in per_stream.values()), per_stream
    assert details["messagesSent"] == details["messagesReceived"] == sum(per_stream.values())
    # A stream lasts its duration (to within half a millisecond), even when its messages are out.
    assert values(result)["grpc/latency-min"] >= 109


def test_streams_that_fail_are_counted_by_status(cli, tmp_path: Path, server: Server) -> None:
    spec = grpc_task(
        host=server.host,
        call=UNARY,
        total=4,
        concurrency=2,
        timeout="2s",
        data={"code": 9},
        streamCallCount=5,
        endpoints={
            "client": {"call": "iter8.test.Echo/ClientStream"},
            "server": {"call": "iter8.test.Echo/ServerStream"},
            "bidi": {"call": "iter8.test.Echo/Bidi"},
            "slow": {"call": "iter8.test.Echo/Bidi", "data": {"delay_ms": 20000}, "timeout": "100ms"},
        },
    )
    outcome, result = launch(cli, tmp_path, spec)
    assert outcome.code == 0, outcome.err
    for name in ("client", "server", "bidi"):
        assert record(result, f"grpc-{name}")["statusCodes"] == {"FAILED_PRECONDITION": 4}, name
    assert record(result, "grpc-slow")["statusCodes"] == {"DEADLINE_EXCEEDED": 4}
    assert values(result)["grpc-slow/latency-max"] < 20000  # cut at the deadline, not the server's 20 s


# ---- errors: one line each, never a traceback ---------------------------------------------------


def test_unreachable_host_is_one_line(cli, tmp_path: Path) -> None:
    port = grpc_fixtures.free_port()
    outcome, result = launch(
        cli, tmp_path, grpc_task(host=f"127.0.0.1:{port}", call=UNARY, connectTimeout="3s")
    )
    assert outcome.code == 1
    assert result["failureMessage"].startswith(f"spec[0] (grpc): cannot connect to 127.0.0.1:{port}: ")
    assert "Connection refused" in result["failureMessage"]
    assert "Traceback" not in outcome.err


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        (
            {"call": "iter8.test.Nope/Unary"},
            "service 'iter8.test.Nope' not found by server reflection (services: iter8.test.Echo, iter8.test.Other)",
        ),
        (
            {"call": "iter8.test.Echo/Nope"},
            "service iter8.test.Echo has no method 'Nope' (methods: Bidi, ClientStream, ServerStream, Unary)",
        ),
        (
            {"data": {"nme": "x"}},
            'data does not match iter8.test.EchoRequest: Message type "iter8.test.EchoRequest" has no field named "nme"',
        ),
        (
            {"data": {"id": "{{.WorkerID}}"}},
            "data does not match iter8.test.EchoRequest: Failed to parse id field",
        ),
        (
            {"dataFile": "/nonexistent/data.json"},
            "cannot read dataFile '/nonexistent/data.json': No such file or directory",
        ),
    ],
)
def test_experiment_errors_are_one_line(cli, tmp_path: Path, server: Server, inputs, message) -> None:
    outcome, result = launch(cli, tmp_path, grpc_task(**{"host": server.host, "call": UNARY, **inputs}))
    assert outcome.code == 1
    assert result["failureMessage"].startswith(f"spec[0] (grpc): {message}"), result["failureMessage"]
    assert "\n" not in result["failureMessage"]
    assert "Traceback" not in outcome.err


def test_bad_proto_and_missing_reflection(cli, tmp_path: Path, bare: Server) -> None:
    broken = tmp_path / "broken.proto"
    broken.write_text('syntax = "proto3";\nservice S { rpc M(Missing) returns (Missing); }\n')
    outcome, result = launch(cli, tmp_path, grpc_task(host=bare.host, call="S/M", proto=str(broken)))
    assert outcome.code == 1
    assert "does not compile: " in result["failureMessage"]
    assert '"Missing" is not defined' in result["failureMessage"]
    outcome, result = launch(cli, tmp_path, grpc_task(host=bare.host, call=UNARY))
    assert outcome.code == 1
    assert result["failureMessage"] == (
        "spec[0] (grpc): the server does not offer reflection (UNIMPLEMENTED); give the proto or protoset"
    )


def test_a_server_without_the_method_counts_unimplemented(cli, tmp_path: Path, bare: Server) -> None:
    extra = tmp_path / "extra.proto"
    extra.write_text(
        'syntax = "proto3";\npackage iter8.test;\nmessage E {}\nservice Echo { rpc Missing(E) returns (E); }\n'
    )
    spec = grpc_task(host=bare.host, call="iter8.test.Echo/Missing", proto=str(extra), total=4)
    outcome, result = launch(cli, tmp_path, spec)
    assert outcome.code == 0, outcome.err
    assert record(result)["statusCodes"] == {"UNIMPLEMENTED": 4}


# ---- TLS ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return grpc_fixtures.make_pki(tmp_path_factory.mktemp("pki"))


def test_tls_ca_skip_verify_cname_and_client_certificates(
    cli, tmp_path: Path, stubs: Path, pki: Path
) -> None:
    with grpc_fixtures.running(
        stubs, reflection=True, cert=pki / "server.crt", key=pki / "server.key"
    ) as tls:
        ok = {"host": tls.host, "call": UNARY, "total": 3, "concurrency": 1, "connectTimeout": "3s"}
        for extra in (
            {"cacert": str(pki / "ca.crt")},
            {"caFile": str(pki / "ca.crt"), "cname": "localhost", "authority": "localhost"},
            {"skipTLS": True},
        ):
            outcome, result = launch(cli, tmp_path, grpc_task(**ok, **extra))
            assert outcome.code == 0, (extra, outcome.err)
            assert record(result)["statusCodes"] == {"OK": 3}
        outcome, result = launch(cli, tmp_path, grpc_task(**ok))  # plaintext to a TLS server
        assert outcome.code == 1
        assert result["failureMessage"].startswith(f"spec[0] (grpc): cannot connect to {tls.host}")
        outcome, result = launch(cli, tmp_path, grpc_task(**ok, insecure=False))  # system roots
        assert outcome.code == 1
        assert "CERTIFICATE_VERIFY_FAILED" in result["failureMessage"]
    mutual = grpc_fixtures.running(
        stubs, reflection=True, cert=pki / "server.crt", key=pki / "server.key", client_ca=pki / "ca.crt"
    )
    with mutual as tls:
        ok = {
            "host": tls.host,
            "call": UNARY,
            "total": 2,
            "cacert": str(pki / "ca.crt"),
            "connectTimeout": "3s",
        }
        outcome, result = launch(
            cli, tmp_path, grpc_task(**ok, cert=str(pki / "client.crt"), key=str(pki / "client.key"))
        )
        assert outcome.code == 0, outcome.err
        assert record(result)["statusCodes"] == {"OK": 2}
        outcome, result = launch(cli, tmp_path, grpc_task(**ok))
        assert outcome.code == 1
        assert result["failureMessage"].startswith(f"spec[0] (grpc): cannot connect to {tls.host}")


# ---- end to end through kubectl -----------------------------------------------------------------


def test_grpc_and_assess_through_kubectl(kubectl, tmp_path: Path, server: Server) -> None:
    experiment = {
        "spec": [
            {
                "task": "grpc",
                "with": {
                    "host": server.host,
                    "call": UNARY,
                    "total": 50,
                    "qps": 500,
                    "data": {"name": "e2e"},
                },
            },
            {
                "task": "assess",
                "with": {
                    "SLOs": {
                        "upper": [
                            # Limits no busy machine reaches: these two are about the names.
                            {"metric": "grpc/latency/p95", "limit": 60000},  # Iter8's sample-style name
                            {"metric": "grpc/latency-mean", "limit": 60000},
                            {"metric": "grpc/error-rate", "limit": 0},
                            {"metric": "grpc/latency/max", "limit": 0.0001},
                        ]
                    }
                },
            },
        ]
    }
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump(experiment))
    outcome = kubectl("launch", "--local", "-f", "exp.yaml")
    assert outcome.code == 0, outcome.err
    result = yaml.safe_load((tmp_path / "experiment.yaml").read_text())["result"]
    assert result["insights"]["SLOsSatisfied"]["upper"] == [[True], [True], [True], [False]]
    assert values(result)["grpc/request-count"] == 50
    assert kubectl("assert", "--local", "-c", "completed,nofailure").code == 0
    assert kubectl("assert", "--local", "-c", "slos").code == 1
    report = kubectl("report", "--local")
    assert report.code == 0, report.err
    assert "grpc/latency-p95" in report.out


# ---- Iter8's chart values: --set and the *URL inputs ------------------------------------------


@pytest.fixture(scope="module")
def files_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An HTTP server on 127.0.0.1 serving the test protos, a data file and a metadata file."""
    import functools
    import shutil
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    root = tmp_path_factory.mktemp("www")
    shutil.copytree(PROTOS, root, dirs_exist_ok=True)
    (root / "data.json").write_text(json.dumps({"name": "from-url-{{.RequestNumber}}"}))
    (root / "metadata.json").write_text(json.dumps({"x-source": "url"}))

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def test_chart_values_with_proto_data_and_metadata_urls(
    cli, tmp_path: Path, bare: Server, files_url: str
) -> None:
    outcome = cli(
        "launch", "--local", "--run-dir", str(tmp_path / "run"),
        "--set", "tasks={grpc,assess}",
        "--set", f"grpc.host={bare.host}",
        "--set", "grpc.call=iter8.test.Echo.Unary",
        "--set", f"grpc.protoURL={files_url}/echo.proto",
        "--set", f"grpc.importPaths={{{PROTOS}}}",
        "--set", f"grpc.dataURL={files_url}/data.json",
        "--set", f"grpc.metadataURL={files_url}/metadata.json",
        "--set", "grpc.total=12",
        "--set", "grpc.rps=100",
        "--set", "assess.SLOs.upper.grpc/error-rate=0",
    )  # fmt: skip
    assert outcome.code == 0, outcome.err
    result = yaml.safe_load((tmp_path / "run" / "experiment.yaml").read_text())["result"]
    assert values(result)["grpc/request-count"] == 12
    assert record(result)["descriptors"] == "proto"
    assert record(result)["loadModel"] == "open"
    assert result["insights"]["SLOsSatisfied"]["upper"] == [[True]]
    outcome, result = launch(
        cli,
        tmp_path,
        grpc_task(
            host=bare.host, call=UNARY, protoURL=f"{files_url}/missing.proto", importPaths=[str(PROTOS)]
        ),
    )
    assert outcome.code == 1
    assert result["failureMessage"].startswith(
        f"spec[0] (grpc): cannot fetch protoURL {files_url}/missing.proto: "
    )


def test_data_and_metadata_from_urls_reach_the_server(
    cli, tmp_path: Path, server: Server, files_url: str
) -> None:
    server.clear()
    spec = grpc_task(
        host=server.host, call=UNARY, total=3, concurrency=1,
        dataURL=f"{files_url}/data.json", metadataURL=f"{files_url}/metadata.json",
    )  # fmt: skip
    outcome, _ = launch(cli, tmp_path, spec)
    assert outcome.code == 0, outcome.err
    requests = server.requests()
    assert [r["request"]["name"] for r in requests] == ["from-url-0", "from-url-1", "from-url-2"]
    assert {r["metadata"]["x-source"] for r in requests} == {"url"}
