"""What a ``grpc`` endpoint reads before it connects: descriptors, data and metadata.

Read once by the process that runs the task (from files or URLs) and handed as they are to shard pods
when the load is spread over pods, so every shard sends exactly the same calls.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from google.protobuf import descriptor_pb2


class Sources:
    """What an endpoint reads from files before connecting (handed as is to shard pods)."""

    def __init__(self) -> None:
        self.files: list[descriptor_pb2.FileDescriptorProto] | None = None
        self.source = "server reflection"
        #: ``proto``, ``protoset`` or ``reflection``.
        self.kind = "reflection"
        self.items: list[Any] | None = None
        self.binary: bytes | None = None
        self.metadata: list[dict[str, Any]] | None = None
