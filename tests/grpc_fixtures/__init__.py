"""Test helpers for the ``grpc`` task: the test .proto, stubs and protosets made at test time, and
the test server (``server.py``) run as a child process on 127.0.0.1.

Nothing generated is kept in the repository: :func:`compile_stubs` runs grpcio-tools into a
temporary folder, and :func:`make_protoset` writes a descriptor set the way ``protoc -o`` does.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PROTOS = HERE / "protos"
#: The test proto; it imports ``common/types.proto``, so ``importPaths`` must name :data:`PROTOS`.
ECHO_PROTO = PROTOS / "echo.proto"
SERVER = HERE / "server.py"


def _protoc(*args: str) -> None:
    import grpc_tools

    include = Path(grpc_tools.__file__).parent / "_proto"
    proc = subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTOS}", f"-I{include}", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"protoc failed: {proc.stderr}")


def compile_stubs(dest: Path) -> Path:
    """Generate ``echo_pb2*.py`` and ``common/types_pb2.py`` into ``dest``; returns ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    _protoc(f"--python_out={dest}", f"--grpc_python_out={dest}", "echo.proto", "common/types.proto")
    return dest


def make_protoset(path: Path) -> Path:
    """Write a descriptor set of the test proto with its imports (``protoc -o --include_imports``)."""
    _protoc(f"--descriptor_set_out={path}", "--include_imports", "echo.proto")
    return path


def free_port() -> int:
    """A port of 127.0.0.1 nothing listens on (bound and released at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


_EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


def make_pki(d: Path) -> Path:
    """A throw-away CA, a server certificate for 127.0.0.1 and ``localhost``, a client certificate
    (``ca.crt``, ``server.crt/key``, ``client.crt/key`` in ``d``), made with the openssl command."""
    if shutil.which("openssl") is None:
        raise RuntimeError("the openssl command is needed to make test certificates")

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    openssl("req", "-x509", *_EC, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=iter8 grpc test CA",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")  # fmt: skip
    for name, ext in (
        ("server", "subjectAltName=DNS:localhost,IP:127.0.0.1"),
        ("client", "extendedKeyUsage=clientAuth"),
    ):
        openssl("req", *_EC, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}")
        (d / f"{name}.ext").write_text(ext + "\n")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", f"{name}.crt", "-days", "2", "-extfile", f"{name}.ext")  # fmt: skip
    return d


@dataclass
class Server:
    """A running test server."""

    port: int
    log: Path | None
    process: subprocess.Popen[str]

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def requests(self) -> list[dict[str, Any]]:
        """Every request logged so far (needs ``log=True``)."""
        if self.log is None or not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines() if line]

    def clear(self) -> None:
        if self.log is not None:
            self.log.write_text("")


@contextmanager
def running(
    stubs: Path,
    *,
    reflection: bool = False,
    log: Path | None = None,
    cert: Path | None = None,
    key: Path | None = None,
    client_ca: Path | None = None,
    cpu: int | None = None,
) -> Iterator[Server]:
    """Start the test server on a free port of 127.0.0.1; stop it on exit."""
    args = [sys.executable, str(SERVER), "--stubs", str(stubs)]
    if reflection:
        args.append("--reflection")
    if log is not None:
        log.write_text("")
        args += ["--log", str(log)]
    if cert is not None and key is not None:
        args += ["--cert", str(cert), "--key", str(key)]
    if client_ca is not None:
        args += ["--client-ca", str(client_ca)]
    if cpu is not None:
        args = ["taskset", "-c", str(cpu), *args]
    process = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError(f"the test gRPC server did not start (exit code {process.wait(10)})")
        yield Server(int(line.split()[1]), log, process)
    finally:
        assert process.stdin is not None
        process.stdin.close()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:  # pragma: no cover
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
