"""Build hook: generate the A/B/n protobuf messages from ``controller/abn/abn.proto``.

The .proto is the contract; ``kubectl_iter8/abn_pb2.py`` (and its ``.pyi``) are generated here by
every build, wheel or editable, with the protoc bundled in grpcio-tools, and never committed or
edited. Everything else about the package is declared in pyproject.toml.
"""

from __future__ import annotations

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).parent
PROTO_DIR = ROOT / "controller" / "abn"
OUT_DIR = ROOT / "kubectl_iter8"


def generate_abn_messages() -> None:
    import grpc_tools
    from grpc_tools import protoc

    well_known = Path(grpc_tools.__file__).parent / "_proto"
    code = protoc.main(
        [
            "protoc",
            f"--proto_path={PROTO_DIR}",
            f"--proto_path={well_known}",
            f"--python_out={OUT_DIR}",
            f"--pyi_out={OUT_DIR}",
            str(PROTO_DIR / "abn.proto"),
        ]
    )
    if code != 0:
        raise SystemExit(f"protoc failed on {PROTO_DIR / 'abn.proto'} (exit code {code})")


class BuildPy(build_py):
    def run(self) -> None:
        generate_abn_messages()
        super().run()


setup(cmdclass={"build_py": BuildPy})
