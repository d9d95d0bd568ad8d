"""Finding the method to call: from a .proto (compiled now), a protoset, or server reflection.

Whichever the source, the outcome is a descriptor pool of its own (nothing is added to protobuf's
default pool) and a :class:`Method`: the call's path, whether it streams, and the request class
built from the descriptors. No generated code is involved.

* ``proto``: compiled at run time by grpcio-tools' protoc into a descriptor set (with imports).
  Import paths are ``importPaths``, then the proto's own folder, then protobuf's well-known types.
* ``protoset``: a ``FileDescriptorSet`` as ``protoc --descriptor_set_out --include_imports`` writes.
* reflection (neither given): the gRPC server reflection service, v1alpha then v1, asked for the
  file defining the service and, one by one, the files it imports.

Every failure is a :class:`DiscoveryError` with a one-line message: a proto that does not
compile (protoc's first error), an unreadable protoset, a service or method that is not there
(with what is), a server without reflection.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import DecodeError, Message

from .plan import parse_call
from .templates import MethodFacts

if TYPE_CHECKING:
    import grpc.aio

REFLECTION_SERVICES = ("grpc.reflection.v1alpha.ServerReflection", "grpc.reflection.v1.ServerReflection")


class DiscoveryError(Exception):
    """The method cannot be found or described; the message is one line."""


@dataclass(frozen=True)
class Method:
    """A method to call, described by its descriptors."""

    service: str
    name: str
    descriptor: MethodDescriptor
    request_class: type[Message]

    @property
    def path(self) -> str:
        return f"/{self.service}/{self.name}"

    @property
    def client_streaming(self) -> bool:
        return bool(self.descriptor.client_streaming)

    @property
    def server_streaming(self) -> bool:
        return bool(self.descriptor.server_streaming)

    @property
    def kind(self) -> str:
        """``unary``, ``client-streaming``, ``server-streaming`` or ``bidi-streaming``."""
        if self.client_streaming and self.server_streaming:
            return "bidi-streaming"
        if self.client_streaming:
            return "client-streaming"
        return "server-streaming" if self.server_streaming else "unary"

    def facts(self) -> MethodFacts:
        return MethodFacts(
            fully_qualified_name=f"{self.service}.{self.name}",
            method_name=self.name,
            service_name=self.service,
            input_name=self.descriptor.input_type.full_name,
            output_name=self.descriptor.output_type.full_name,
            client_streaming=self.client_streaming,
            server_streaming=self.server_streaming,
        )


@dataclass(frozen=True)
class Catalog:
    """Descriptor files loaded into a pool of their own."""

    pool: descriptor_pool.DescriptorPool
    files: tuple[descriptor_pb2.FileDescriptorProto, ...]

    def services(self) -> list[str]:
        return sorted(f"{f.package}.{s.name}" if f.package else s.name for f in self.files for s in f.service)


def catalog(files: Iterable[descriptor_pb2.FileDescriptorProto]) -> Catalog:
    """A fresh pool holding ``files``, added dependencies first (whatever order they came in)."""
    by_name = {f.name: f for f in files}
    pool = descriptor_pool.DescriptorPool()
    added: set[str] = set()

    def add(name: str, chain: tuple[str, ...]) -> None:
        if name in added:
            return
        if name in chain:
            raise DiscoveryError(f"import cycle: {' -> '.join((*chain, name))}")
        proto = by_name.get(name)
        if proto is None:
            raise DiscoveryError(f"{chain[-1] if chain else name} imports {name!r}, which is missing")
        for dependency in proto.dependency:
            add(dependency, (*chain, name))
        try:
            pool.AddSerializedFile(proto.SerializeToString())
        except (TypeError, ValueError) as exc:
            raise DiscoveryError(f"{name}: {_first_line(exc)}") from None
        added.add(name)

    for name in by_name:
        add(name, ())
    return Catalog(pool, tuple(by_name.values()))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def find_method(found: Catalog, call: str, source: str) -> Method:
    """The method ``call`` among ``found``'s services; ``source`` names where they came from."""
    service_name, method_name = parse_call(call)
    try:
        service = found.pool.FindServiceByName(service_name)
    except KeyError:
        listing = ", ".join(found.services()) or "none"
        raise DiscoveryError(
            f"service {service_name!r} not found in {source} (services: {listing})"
        ) from None
    method = service.methods_by_name.get(method_name)
    if method is None:
        names = ", ".join(sorted(service.methods_by_name))
        raise DiscoveryError(f"service {service_name} has no method {method_name!r} (methods: {names})")
    request_class = message_factory.GetMessageClass(method.input_type)
    return Method(service_name, method_name, method, request_class)


# ---- sources ---------------------------------------------------------------------------------


def load_protoset(path: str) -> list[descriptor_pb2.FileDescriptorProto]:
    """The files of a protoset (a serialized ``FileDescriptorSet``)."""
    try:
        data = Path(path).expanduser().read_bytes()
    except OSError as exc:
        raise DiscoveryError(f"cannot read protoset {path!r}: {exc.strerror or exc}") from None
    descriptor_set = descriptor_pb2.FileDescriptorSet()
    try:
        descriptor_set.ParseFromString(data)
    except (DecodeError, RuntimeError):
        raise DiscoveryError(f"protoset {path!r} is not a FileDescriptorSet") from None
    if not descriptor_set.file:
        raise DiscoveryError(f"protoset {path!r} holds no files")
    return list(descriptor_set.file)


def compile_proto(proto: str, import_paths: Sequence[str] = ()) -> list[descriptor_pb2.FileDescriptorProto]:
    """Compile ``proto`` (with everything it imports) with grpcio-tools' protoc.

    protoc runs as a child process so that its messages (written by C++ straight to the standard
    error) are captured and the first one becomes the error.
    """
    import grpc_tools  # type: ignore[import-untyped]

    source = Path(proto).expanduser()
    if not source.is_file():
        raise DiscoveryError(f"cannot read proto {proto!r}: no such file")
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    roots = [Path(p).expanduser() for p in import_paths]
    for root in roots:
        if not root.is_dir():
            raise DiscoveryError(f"import path {str(root)!r} is not a folder")
    roots.append(source.parent)
    # The proto's name inside protoc: relative to the first root that holds it.
    name = source.name
    for root in roots:
        try:
            name = source.resolve().relative_to(root.resolve()).as_posix()
            break
        except ValueError:
            continue
    with tempfile.TemporaryDirectory(prefix="iter8-grpc-") as tmp:
        out = Path(tmp) / "set.pb"
        args = [sys.executable, "-m", "grpc_tools.protoc"]
        args += [f"--proto_path={root}" for root in roots]
        args += [f"--proto_path={well_known}", f"--descriptor_set_out={out}", "--include_imports", name]
        # The child sees the modules this process sees (also when it runs from a zipped archive).
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        proc = subprocess.run(args, capture_output=True, text=True, check=False, timeout=120, env=env)
        if proc.returncode != 0 or not out.exists():
            lines = [line for line in (proc.stderr or proc.stdout).splitlines() if line.strip()]
            first = lines[0] if lines else f"protoc exited with code {proc.returncode}"
            raise DiscoveryError(f"proto {proto!r} does not compile: {first}")
        descriptor_set = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    return list(descriptor_set.file)


async def reflect(
    channel: grpc.aio.Channel,
    service: str,
    *,
    metadata: Sequence[tuple[str, str]] | None,
    timeout: float,
) -> list[descriptor_pb2.FileDescriptorProto]:
    """The files describing ``service`` (and their imports), from the server's reflection service."""
    import grpc
    from grpc_reflection.v1alpha import reflection_pb2

    last: tuple[grpc.StatusCode, str] = (grpc.StatusCode.UNIMPLEMENTED, "")
    for reflection_service in REFLECTION_SERVICES:
        # v1 and v1alpha messages are the same on the wire: v1alpha's classes serve both.
        stream = channel.stream_stream(
            f"/{reflection_service}/ServerReflectionInfo",
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
        )
        call = stream(metadata=metadata, timeout=timeout)
        try:
            return await _reflect_files(call, service, reflection_pb2)
        except grpc.aio.AioRpcError as exc:
            last = (exc.code(), exc.details() or "")
            if last == (grpc.StatusCode.INTERNAL, "Internal error from Core"):
                # Our first write raced with the server's answer (typically UNIMPLEMENTED), and
                # grpc.aio reported INTERNAL instead; ask again without writing anything.
                last = await _status_of_empty_stream(stream, metadata, timeout)
            if last[0] != grpc.StatusCode.UNIMPLEMENTED:
                break
        finally:
            call.cancel()
    if last[0] == grpc.StatusCode.UNIMPLEMENTED:
        raise DiscoveryError(
            "the server does not offer reflection (UNIMPLEMENTED); give the proto or protoset"
        )
    raise ReflectionRpcError(last[1] or last[0].name)


async def _status_of_empty_stream(stream: Any, metadata: Any, timeout: float) -> tuple[Any, str]:
    """The status a server gives a stream that sends no message (closing writes does not race)."""
    call = stream(metadata=metadata, timeout=timeout)
    with contextlib.suppress(Exception):  # the call may already have ended: its status is below
        await call.done_writing()
    return await call.code(), await call.details() or ""


class ReflectionRpcError(Exception):
    """The reflection call itself failed (unreachable, timed out, ...): not a discovery problem."""


async def _reflect_files(call: Any, service: str, pb: Any) -> list[descriptor_pb2.FileDescriptorProto]:
    files: dict[str, descriptor_pb2.FileDescriptorProto] = {}

    async def ask(request: Any) -> Any:
        await call.write(request)
        response = await call.read()
        if response is None or not hasattr(response, "WhichOneof"):
            raise DiscoveryError("the reflection stream ended early")
        if response.WhichOneof("message_response") == "error_response":
            return response.error_response
        return response

    def keep(response: Any) -> list[str]:
        new: list[str] = []
        for blob in response.file_descriptor_response.file_descriptor_proto:
            proto = descriptor_pb2.FileDescriptorProto.FromString(blob)
            if proto.name not in files:
                files[proto.name] = proto
                new.append(proto.name)
        return new

    answer = await ask(pb.ServerReflectionRequest(file_containing_symbol=service))
    if isinstance(answer, pb.ErrorResponse):
        listed = await ask(pb.ServerReflectionRequest(list_services=""))
        names = (
            sorted(s.name for s in listed.list_services_response.service if s.name not in REFLECTION_SERVICES)
            if not isinstance(listed, pb.ErrorResponse)
            else []
        )
        raise DiscoveryError(
            f"service {service!r} not found by server reflection (services: {', '.join(names) or 'none'})"
        )
    pending = keep(answer)
    while pending:
        name = pending.pop()
        for dependency in files[name].dependency:
            if dependency in files:
                continue
            answer = await ask(pb.ServerReflectionRequest(file_by_filename=dependency))
            if isinstance(answer, pb.ErrorResponse):
                raise DiscoveryError(f"server reflection cannot give {dependency!r} ({answer.error_message})")
            pending += keep(answer)
    await call.done_writing()
    return list(files.values())
