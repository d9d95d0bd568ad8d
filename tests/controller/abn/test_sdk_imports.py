"""The client SDK imports only grpcio and protobuf, and its messages are generated from abn.proto."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import resources
from pathlib import Path

PROBE = """
import json, sys
def third_party():
    return {m.split(".")[0] for m in sys.modules} - set(sys.stdlib_module_names)
import grpc, grpc.aio, google.protobuf.message, google.protobuf.empty_pb2
baseline = third_party()
import kubectl_iter8.sdk
print(json.dumps({"added": sorted(third_party() - baseline), "all": sorted(sys.modules)}))
"""


def test_the_sdk_needs_only_grpc_and_protobuf() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=60
    )
    seen = json.loads(out.stdout)
    assert seen["added"] == ["kubectl_iter8"]
    heavy = {"pluggy", "click", "pydantic", "yaml", "kubernetes", "jinja2", "httpx", "numpy", "grpc_tools"}
    # grpc itself imports grpc_tools when it is installed; the SDK must not need it for anything.
    ours = [m for m in seen["all"] if m.startswith("kubectl_iter8")]
    assert set(ours) <= {"kubectl_iter8", "kubectl_iter8.sdk", "kubectl_iter8.abn_pb2", "kubectl_iter8.errors",
                         "kubectl_iter8.version"}, ours  # fmt: skip
    assert not heavy & {m.split(".")[0] for m in seen["all"]} - {"grpc_tools"}


def test_the_generated_messages_match_the_proto(tmp_path: Path) -> None:
    from google.protobuf import descriptor_pb2

    from kubectl_iter8 import abn_pb2

    proto = resources.files("kubectl_iter8.controller.abn").joinpath("abn.proto").read_text()
    generated = descriptor_pb2.FileDescriptorProto()
    abn_pb2.DESCRIPTOR.CopyToProto(generated)
    assert generated.package == "main"
    fields = {m.name: [(f.name, f.number) for f in m.field] for m in generated.message_type}
    assert fields == {
        "Application": [("name", 1), ("user", 2)],
        "VersionRecommendation": [("versionNumber", 1)],
        "MetricValue": [("name", 1), ("value", 2), ("application", 3), ("user", 4)],
    }
    (service,) = generated.service
    assert [(m.name, m.input_type, m.output_type) for m in service.method] == [
        ("Lookup", ".main.Application", ".main.VersionRecommendation"),
        ("WriteMetric", ".main.MetricValue", ".google.protobuf.Empty"),
    ]
    # The installed module is what the .proto compiles to now (a stale build would differ).
    import grpc_tools
    from grpc_tools import protoc

    (tmp_path / "abn.proto").write_text(proto)
    out = tmp_path / "abn.pb"
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    assert (
        protoc.main(
            ["protoc", f"-I{tmp_path}", f"-I{well_known}", f"--descriptor_set_out={out}", "abn.proto"]
        )
        == 0
    )
    (fresh,) = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file
    for message in fresh.message_type:
        for field in message.field:
            field.ClearField("json_name")  # protoc leaves it out of generated Python
    assert fresh == descriptor_pb2.FileDescriptorProto.FromString(abn_pb2.DESCRIPTOR.serialized_pb)
