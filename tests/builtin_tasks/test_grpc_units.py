"""Pure parts of the ``grpc`` task: templates, payload splitting, inputs, names; no server needed."""

from __future__ import annotations

import math
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2
from grpc_fixtures import ECHO_PROTO, PROTOS
from kubectl_iter8.builtin_tasks.grpc.channel import reason, split_host
from kubectl_iter8.builtin_tasks.grpc.descriptors import (
    DiscoveryError,
    catalog,
    compile_proto,
    find_method,
    load_protoset,
)
from kubectl_iter8.builtin_tasks.grpc.inputs import GrpcInputs, resolve
from kubectl_iter8.builtin_tasks.grpc.metrics import status_name
from kubectl_iter8.builtin_tasks.grpc.payload import Metadata, PayloadError, Payloads
from kubectl_iter8.builtin_tasks.grpc.plan import parse_call
from kubectl_iter8.builtin_tasks.grpc.templates import CallContext, MethodFacts, Template
from kubectl_iter8.builtin_tasks.loadgen.pacing import Schedule, requests_within
from pydantic import ValidationError

from kubectl_iter8.result import Insights, MetricInfo


@pytest.fixture(scope="module")
def echo():
    """The test proto's Unary method, compiled here (also covers compile_proto with importPaths)."""
    return find_method(
        catalog(compile_proto(str(ECHO_PROTO), [str(PROTOS)])), "iter8.test.Echo/Unary", "echo"
    )


# ---- templates ------------------------------------------------------------------------------------


def test_templates_render_ghz_fields_and_functions() -> None:
    facts = MethodFacts(fully_qualified_name="p.S.M", method_name="M", service_name="p.S")
    context = CallContext(7, "g3c0", facts)
    assert Template("{{.RequestNumber}}").render(context) == "7"  # text, as ghz renders it
    assert Template("req-{{ .RequestNumber }}-{{.WorkerID}}").render(context) == "req-7-g3c0"
    assert Template("{{.MethodName}}@{{.FullyQualifiedName}}").render(context) == "M@p.S.M"
    one = Template("{{.UUID}}")
    assert uuid.UUID(one.render(context)) == uuid.UUID(one.render(context))  # one per request
    assert Template("{{newUUID}}").render(context) != Template("{{newUUID}}").render(context)
    assert len(Template("{{randomString 12}}").render(context)) == 12
    assert Template("{{randomInt 3 5}}").render(context) in ("3", "4")
    assert abs(int(Template("{{.TimestampUnix}}").render(context)) - context.now_ns // 10**9) <= 1
    assert Template("{{.IsClientStreaming}}!").render(context) == "false!"


@pytest.mark.parametrize("text", ["{{.Nope}}", "{{ printf 1 }}", "{{randomInt 5 1}}", "{{randomString x}}"])
def test_unsupported_templates_are_refused_naming_what_is_supported(text: str) -> None:
    with pytest.raises(ValueError, match=r"unsupported template .*\.RequestNumber"):
        Template(text)


# ---- payloads -------------------------------------------------------------------------------------


def test_templated_data_is_split_and_merges_to_the_whole_message(echo) -> None:
    data = {
        "name": "user-{{.RequestNumber}}",
        "id": "{{.RequestNumber}}",
        "code": 0,
        "nested": {"worker": "{{.WorkerID}}", "tags": ["a", "b"]},
        "sent": "2024-05-01T00:00:00Z",
    }
    payloads = Payloads(echo.request_class, items=[data], facts=echo.facts())
    assert (payloads.constant, payloads.static_items) == (None, None)
    for n in (0, 1, 41):
        message = echo.request_class.FromString(payloads.get(n, n, "g2c0"))
        assert message.name == f"user-{n}"
        assert message.id == n
        assert message.nested.worker == "g2c0"
        assert list(message.nested.tags) == ["a", "b"]
        assert message.sent.seconds == 1714521600


def test_static_data_is_serialized_once_and_lists_cycle(echo) -> None:
    single = Payloads(echo.request_class, items=[{"name": "x"}])
    assert single.constant == echo.request_class(name="x").SerializeToString()
    cycled = Payloads(echo.request_class, items=[{"id": 1}, {"id": 2}, {"id": 3}])
    assert cycled.constant is None
    assert [echo.request_class.FromString(cycled.get(n, n, "")).id for n in range(5)] == [1, 2, 3, 1, 2]
    assert Payloads(echo.request_class).constant == b""  # no data: the empty message


def test_templated_list_fields_keep_their_order(echo) -> None:
    payloads = Payloads(echo.request_class, items=[{"nested": {"tags": ["a", "{{.RequestNumber}}", "c"]}}])
    assert list(echo.request_class.FromString(payloads.get(0, 5, "")).nested.tags) == ["a", "5", "c"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"nme": "x"},
            'data does not match iter8.test.EchoRequest: Message type "iter8.test.EchoRequest" has no field named "nme"',
        ),
        ({"id": "abc"}, "data does not match iter8.test.EchoRequest: Failed to parse id field"),
        ({"id": "{{.UUID}}"}, "data does not match iter8.test.EchoRequest: Failed to parse id field"),
        ({"nested": 5}, "data does not match iter8.test.EchoRequest"),
    ],
)
def test_data_that_does_not_fit_the_request_type_is_one_clear_error(echo, data, message) -> None:
    with pytest.raises(PayloadError) as error:
        Payloads(echo.request_class, items=[data])
    assert str(error.value).startswith(message)
    assert "\n" not in str(error.value)


def test_binary_data_must_parse_as_the_request_type(echo) -> None:
    good = echo.request_class(name="bin").SerializeToString()
    assert Payloads(echo.request_class, binary=good).constant == good
    with pytest.raises(PayloadError, match="binary data is not a iter8.test.EchoRequest"):
        Payloads(echo.request_class, binary=b"\xff\xff\xff\xff")
    with pytest.raises(PayloadError, match=r"data\[1\] must be an object"):
        Payloads(echo.request_class, items=[{}, 3])


def test_metadata_constant_templated_and_checked() -> None:
    assert Metadata(None).get(0, "") is None
    fixed = Metadata([{"X-Team": "checkout", "x-n": 5}])
    assert (fixed.constant, fixed.varies) == ((("x-team", "checkout"), ("x-n", "5")), False)
    templated = Metadata([{"x-req": "r{{.RequestNumber}}", "x-trace-bin": "t"}])
    assert templated.varies
    assert templated.get(4, "g0c0") == (("x-req", "r4"), ("x-trace-bin", b"t"))
    cycled = Metadata([{"x-a": "1"}, {"x-a": "2"}])
    assert [cycled.get(n, "") for n in range(3)] == [(("x-a", "1"),), (("x-a", "2"),), (("x-a", "1"),)]
    with pytest.raises(PayloadError, match="not a valid metadata name"):
        Metadata([{"bad key": "x"}])


# ---- descriptors ----------------------------------------------------------------------------------


def test_calls_are_written_either_way() -> None:
    assert parse_call("iter8.test.Echo/Unary") == ("iter8.test.Echo", "Unary")
    assert parse_call("iter8.test.Echo.Unary") == ("iter8.test.Echo", "Unary")
    for bad in ("Unary", "iter8 test", "a.b/c/d", ""):
        with pytest.raises(ValueError, match="package.Service/Method"):
            parse_call(bad)


def test_unknown_services_and_methods_say_what_there_is(echo) -> None:
    found = catalog(compile_proto(str(ECHO_PROTO), [str(PROTOS)]))
    with pytest.raises(
        DiscoveryError,
        match=r"service 'iter8.test.Nope' not found in here \(services: iter8.test.Echo, iter8.test.Other\)",
    ):
        find_method(found, "iter8.test.Nope/Unary", "here")
    with pytest.raises(
        DiscoveryError, match=r"has no method 'Nope' \(methods: Bidi, ClientStream, ServerStream, Unary\)"
    ):
        find_method(found, "iter8.test.Echo/Nope", "here")
    assert find_method(found, "iter8.test.Echo.Bidi", "here").kind == "bidi-streaming"


def test_bad_protos_and_protosets_are_one_line_errors(tmp_path: Path) -> None:
    broken = tmp_path / "broken.proto"
    broken.write_text('syntax = "proto3";\nmessage A { strin name = 1; }\n')
    with pytest.raises(
        DiscoveryError,
        match=r"proto '.*broken.proto' does not compile: .*broken.proto:2:13: \"strin\" is not defined",
    ):
        compile_proto(str(broken))
    (tmp_path / "inc" / "lib").mkdir(parents=True)
    (tmp_path / "inc" / "lib" / "thing.proto").write_text('syntax = "proto3";\nmessage Thing {}\n')
    user = tmp_path / "user.proto"
    user.write_text('syntax = "proto3";\nimport "lib/thing.proto";\nmessage U { Thing t = 1; }\n')
    with pytest.raises(DiscoveryError, match="does not compile: lib/thing.proto: File not found"):
        compile_proto(str(user))  # its import needs importPaths
    assert [f.name for f in compile_proto(str(user), [str(tmp_path / "inc")])] == [
        "lib/thing.proto",
        "user.proto",
    ]
    with pytest.raises(DiscoveryError, match="cannot read proto 'nope.proto': no such file"):
        compile_proto("nope.proto")
    junk = tmp_path / "junk.protoset"
    junk.write_bytes(b"\xff\x00junk")
    with pytest.raises(DiscoveryError, match="is not a FileDescriptorSet"):
        load_protoset(str(junk))
    partial = tmp_path / "partial.protoset"
    files = compile_proto(str(ECHO_PROTO), [str(PROTOS)])
    partial.write_bytes(
        descriptor_pb2.FileDescriptorSet(
            file=[f for f in files if f.name == "echo.proto"]
        ).SerializeToString()
    )
    with pytest.raises(DiscoveryError, match="echo.proto imports 'common/types.proto', which is missing"):
        catalog(load_protoset(str(partial)))


# ---- inputs -------------------------------------------------------------------------------------


def test_defaults_are_ghzs_and_ghz_spellings_are_accepted() -> None:
    (endpoint,) = resolve(GrpcInputs.model_validate({"host": "127.0.0.1:1", "call": "a.B/C"}))
    plan = endpoint.plan
    assert (plan.total, plan.concurrency, plan.qps, plan.timeout) == (200, 50, 0.0, 20.0)
    assert (endpoint.connections, endpoint.connect_timeout, endpoint.security.tls) == (1, 10.0, False)
    ghz = GrpcInputs.model_validate(
        {
            "host": "h:1",
            "call": "a.B.C",
            "rps": 30,
            "import-paths": ["x"],
            "data-file": "d.json",
            "connect-timeout": "2s",
            "stream-interval": "10ms",
            "stream-call-count": 4,
            "numRequests": 9,
        }
    )
    (endpoint,) = resolve(ghz)
    assert (endpoint.plan.qps, endpoint.import_paths, endpoint.data_file) == (30, ("x",), "d.json")
    assert (endpoint.connect_timeout, endpoint.plan.stream_interval) == (2, 0.01)
    assert (endpoint.plan.stream_count, endpoint.plan.total) == (4, 9)


def test_a_duration_wins_over_the_count_as_in_ghz() -> None:
    (endpoint,) = resolve(
        GrpcInputs.model_validate({"host": "h:1", "call": "a.B/C", "total": 5, "duration": "2s"})
    )
    assert (endpoint.plan.total, endpoint.plan.duration) == (None, 2.0)


def test_endpoints_inherit_the_top_level_and_sources_go_whole() -> None:
    inputs = GrpcInputs.model_validate(
        {
            "host": "h:1",
            "call": "a.B/C",
            "proto": "top.proto",
            "importPaths": ["inc"],
            "data": {"name": "top"},
            "concurrency": 3,
            "cacert": "ca.crt",
            "endpoints": {
                "same": {},
                "other": {"call": "a.B/D", "protoset": "x.protoset", "dataFile": "d.json", "concurrency": 7},
                "plain": {"host": "h:2", "insecure": True},
            },
        }
    )
    same, other, plain = resolve(inputs)
    assert [e.prefix for e in (same, other, plain)] == ["grpc-same", "grpc-other", "grpc-plain"]
    assert (same.proto, same.protoset, same.data, same.plan.concurrency) == (
        "top.proto",
        None,
        {"name": "top"},
        3,
    )
    assert (other.proto, other.protoset, other.data, other.data_file) == (None, "x.protoset", None, "d.json")
    assert (other.call, other.plan.concurrency, other.import_paths) == ("a.B/D", 7, ("inc",))
    assert (same.security.tls, same.security.ca_file) == (True, "ca.crt")
    assert (plain.security.tls, plain.host) == (False, "h:2")


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"call": "a.B/C"}, "please set the host"),
        ({"host": "h:1"}, "please set the call"),
        ({"host": "nohost", "call": "a.B/C"}, "write it as host:port"),
        ({"host": "h:1", "call": "Method"}, "package.Service/Method"),
        (
            {"host": "h:1", "call": "a.B/C", "proto": "p", "protoset": "s"},
            "give one of proto, protoset, protoURL, not proto and protoset",
        ),
        ({"host": "h:1", "call": "a.B/C", "data": {}, "dataFile": "f"}, "not data and dataFile"),
        ({"host": "h:1", "call": "a.B/C", "protoURL": "file:///x.proto"}, "only http:// and https://"),
        ({"host": "h:1", "call": "a.B/C", "insecure": True, "skipTLS": True}, "does not go with TLS"),
        ({"host": "h:1", "call": "a.B/C", "cert": "c.crt"}, "needs both cert and key"),
        ({"host": "h:1", "call": "a.B/C", "data": {"id": "{{.Bad}}"}}, "unsupported template"),
        ({"host": "h:1", "call": "a.B/C", "total": 0}, "greater than or equal to 1"),
        ({"host": "h:1", "call": "a.B/C", "duraton": "1s"}, "Extra inputs are not permitted"),
        ({"endpoints": {"x": {"call": "a.B/C"}}}, "endpoint 'x' has no host"),
    ],
)
def test_bad_inputs_are_refused_before_anything_runs(inputs, message) -> None:
    with pytest.raises(ValidationError, match=message):
        GrpcInputs.model_validate(inputs)


# ---- small helpers ------------------------------------------------------------------------------


def test_status_names_and_connection_reasons() -> None:
    assert [status_name(c) for c in (0, 4, 14, 16, 99)] == [
        "OK",
        "DEADLINE_EXCEEDED",
        "UNAVAILABLE",
        "UNAUTHENTICATED",
        "CODE_99",
    ]
    details = (
        "failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:1: "
        "Failed to connect to remote host: Connection refused"
    )
    assert reason(details) == "Failed to connect to remote host: Connection refused"
    assert split_host("[::1]:50051") == ("::1", 50051)


def test_the_open_loop_schedule_is_the_http_tasks() -> None:
    assert requests_within(0.5, 100) == 50
    assert requests_within(1.0, 3, phase=0.5) == 2
    assert requests_within(1.0, 7) == math.ceil(7.0)
    schedule = Schedule(t0=1_000, qps=100)
    assert schedule.due(3) == 1_000 + 30_000_000
    assert schedule.start_of(3, 40_000_000) == (30_001_000, 9_999_000)  # late: timed from its due time
    assert schedule.start_of(3, 20_000_000) == (20_000_000, 0)  # early: timed from the actual send


def test_sample_style_latency_names_are_aliases_in_insights() -> None:
    insights = Insights.model_validate({"numVersions": 1})
    insights.register_metric("grpc/latency-p95", MetricInfo(units="msec"))
    insights.add_value(0, "grpc/latency-p95", 4.5)
    insights.register_metric("grpc-a/latency-mean", MetricInfo(units="msec"))
    insights.add_value(0, "grpc-a/latency-mean", 2.0)
    assert insights.scalar(0, "grpc/latency/p95") == 4.5
    assert insights.scalar(0, "grpc-a/latency/mean") == 2.0
    assert insights.scalar(0, "grpc/latency/p99") is None
    assert insights.scalar(0, "grpc/latency-p95") == 4.5
    # A metric really named that way wins over the alias.
    insights.register_metric("grpc/latency/p95", MetricInfo(type="Sample"))
    assert insights.scalar(0, "grpc/latency/p95") is None


def test_the_plugin_and_its_inputs_load_without_grpc() -> None:
    code = (
        "import contextlib, io, sys\n"
        "from kubectl_iter8.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    main(['--help'])\n"
        "assert 'grpc' not in sys.modules\n"
        "from kubectl_iter8.host import Iter8Hooks\n"
        "assert 'grpc' in Iter8Hooks().tasks.names()\n"
        "from kubectl_iter8.builtin_tasks.grpc import GrpcInputs, GrpcTask\n"
        "GrpcInputs.model_validate({'host': 'h:1', 'call': 'a.B/C', 'data': {'x': '{{.UUID}}'}})\n"
        "bad = [m for m in sys.modules if m == 'grpc' or m.startswith(('grpc.', 'google.protobuf'))]\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_summaries_equal_hdrhs_own_statistics(seed: int) -> None:
    import random

    from kubectl_iter8.builtin_tasks.loadgen.stats import new_histogram, record_all, summarize

    rng = random.Random(seed)
    cases = [
        [int(rng.lognormvariate(7, 1.5)) + 1 for _ in range(5_000)],
        [1_234],
        [1, 3_600_000_000, 2_047, 2_048, 2_049, 65_535, 65_536],
        [],
    ]
    wanted = [0.0, 1.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.9, 99.99, 100.0]
    for values in cases:
        histogram = new_histogram()
        record_all(histogram, values)
        summary = summarize(histogram, wanted)
        assert summary.mean == histogram.get_mean_value()
        assert summary.stddev == histogram.get_stddev()
        assert (summary.min, summary.max) == (histogram.get_min_value(), histogram.get_max_value())
        assert summary.percentiles == {p: histogram.get_value_at_percentile(p) for p in wanted}
