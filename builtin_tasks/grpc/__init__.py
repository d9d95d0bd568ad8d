"""Iter8's ``grpc`` task: load-test a gRPC method (unary or streaming), as Iter8 did with ghz.

Modules, from the outside in:

* :mod:`.task`: the task's ``run``: endpoints one after the other, errors as one-line messages;
* :mod:`.inputs`: the inputs (ghz's names and defaults) and their resolution per endpoint;
* :mod:`.metrics`: a measured run -> ``grpc/...`` metrics and the task record;
* :mod:`.engine`: the ``grpc.aio`` load loops (closed and open, unary and streaming);
* :mod:`.descriptors`: the method from a .proto, a protoset or server reflection;
* :mod:`.payload`: call data and metadata, serialized once or per request;
* :mod:`.templates`: ghz's ``{{.RequestNumber}}``-style templates;
* :mod:`.channel`: plaintext and TLS channels, connecting with a clear error;
* :mod:`.plan`: the load plan and call-name parsing (no gRPC import).

Nothing here imports grpc or protobuf until a ``grpc`` task runs: ``GrpcTask`` and its inputs load
without them, and the engine is imported inside ``run``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .inputs import GrpcInputs
    from .task import GrpcTask

__all__ = ["GrpcInputs", "GrpcTask"]


def __getattr__(name: str) -> Any:
    if name == "GrpcTask":
        from .task import GrpcTask

        return GrpcTask
    if name == "GrpcInputs":
        from .inputs import GrpcInputs

        return GrpcInputs
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
