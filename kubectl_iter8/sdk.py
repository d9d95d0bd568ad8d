"""Client SDK of the A/B/n service: which version a user gets, and metric values written back.

::

    from kubectl_iter8.sdk import Client

    with Client("iter8-controller.iter8-system:50051", timeout=0.5) as abn:
        version = abn.lookup("default/backend", user_id)      # 0 when the service cannot answer
        ...
        abn.write_metric("default/backend", user_id, "sales", 12.5)

:class:`AsyncClient` has the same methods as coroutines (``grpc.aio``). When the service requires a
token (``$ITER8_ABN_TOKEN_FILE``), pass it as ``token=``: every call sends it as
``authorization: Bearer TOKEN`` metadata (use TLS ``credentials`` where the network is not trusted).

**Fallback.** :meth:`Client.lookup` never raises an RPC error: when the service cannot answer
(unreachable, timed out after ``timeout`` seconds, unknown application, any other gRPC error) it
logs a warning on the ``kubectl_iter8.sdk`` logger and returns version **0**, the routemap's
primary, so a frontend keeps working when the service is down. :meth:`Client.write_metric` raises
:class:`grpc.RpcError` (with the service's status code: ``INVALID_ARGUMENT``, ``NOT_FOUND``,
``UNAVAILABLE``, ``DEADLINE_EXCEEDED``...); a write that returned without error is stored.

The wire contract is ``abn.proto`` (Iter8 v1.1's), shipped in :mod:`kubectl_iter8.controller.abn`.
Its message classes, :mod:`kubectl_iter8.abn_pb2`, are generated from it by the package build
(``setup.py``, with grpcio-tools' protoc); nothing generated is committed. Importing this module
imports only grpcio and protobuf (and the standard library): a frontend installs kubectl-iter8
for the SDK without paying for the rest at run time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc
import grpc.aio
from google.protobuf import empty_pb2
from google.protobuf.message import Message

from . import abn_pb2

__all__ = [
    "FALLBACK_VERSION",
    "LOOKUP",
    "SERVICE",
    "WRITE_METRIC",
    "AsyncClient",
    "Client",
    "Protocol",
    "protocol",
]

if TYPE_CHECKING:
    _AioCall = grpc.aio.UnaryUnaryMultiCallable[Any, Any]

log = logging.getLogger(__name__)

SERVICE = "main.ABN"
LOOKUP = f"/{SERVICE}/Lookup"
WRITE_METRIC = f"/{SERVICE}/WriteMetric"
#: What :meth:`Client.lookup` returns when the service cannot answer: the routemap's primary.
FALLBACK_VERSION = 0


@dataclass(frozen=True)
class Protocol:
    """The message classes of ``abn.proto``."""

    Application: type[abn_pb2.Application]
    VersionRecommendation: type[abn_pb2.VersionRecommendation]
    MetricValue: type[abn_pb2.MetricValue]
    Empty: type[empty_pb2.Empty]


_PROTOCOL = Protocol(
    Application=abn_pb2.Application,
    VersionRecommendation=abn_pb2.VersionRecommendation,
    MetricValue=abn_pb2.MetricValue,
    Empty=empty_pb2.Empty,
)


def protocol() -> Protocol:
    """The message classes (generated from ``abn.proto`` when the package was built)."""
    return _PROTOCOL


def _serializer(message: Message) -> bytes:
    return message.SerializeToString()


def _calls(channel: Any) -> tuple[Any, Any]:
    """The Lookup and WriteMetric calls of a channel (sync or grpc.aio: the same method)."""
    return (
        channel.unary_unary(
            LOOKUP,
            request_serializer=_serializer,
            response_deserializer=_PROTOCOL.VersionRecommendation.FromString,
        ),
        channel.unary_unary(
            WRITE_METRIC, request_serializer=_serializer, response_deserializer=_PROTOCOL.Empty.FromString
        ),
    )


def _metadata(token: str | None) -> tuple[tuple[str, str], ...] | None:
    return (("authorization", f"Bearer {token}"),) if token else None


def _metric(p: Protocol, application: str, user: str, name: str, value: float) -> abn_pb2.MetricValue:
    return p.MetricValue(name=name, value=repr(float(value)), application=application, user=user)


def _warn_fallback(application: str, user: str, exc: grpc.RpcError) -> None:
    # The errors grpc raises for calls are also grpc.Call (code, details); the stubs cannot say so.
    code: Any = getattr(exc, "code", None)
    details: Any = getattr(exc, "details", None)
    log.warning(
        "A/B/n lookup for application %r, user %r failed (%s: %s); using version %d",
        application,
        user,
        getattr(code(), "name", "error") if callable(code) else "error",
        details() if callable(details) else str(exc),
        FALLBACK_VERSION,
    )


class Client:
    """A synchronous client of the A/B/n service at ``target`` (``host:port``).

    Each call waits at most ``timeout`` seconds. Without ``credentials`` the channel is plaintext.
    ``token``: the service's shared token, sent with every call.
    """

    def __init__(
        self,
        target: str,
        *,
        timeout: float = 1.0,
        credentials: grpc.ChannelCredentials | None = None,
        token: str | None = None,
    ) -> None:
        self.target = target
        self.timeout = timeout
        self._metadata = _metadata(token)
        self._protocol = protocol()
        self._channel = (
            grpc.secure_channel(target, credentials) if credentials else grpc.insecure_channel(target)
        )
        self._lookup, self._write = _calls(self._channel)

    def lookup(self, application: str, user: str) -> int:
        """The version number for ``user`` of ``application`` (``namespace/name``); 0 on any failure."""
        try:
            answer: Any = self._lookup(
                self._protocol.Application(name=application, user=user),
                timeout=self.timeout,
                metadata=self._metadata,
            )
        except grpc.RpcError as exc:
            _warn_fallback(application, user, exc)
            return FALLBACK_VERSION
        return int(answer.versionNumber)

    def write_metric(self, application: str, user: str, name: str, value: float) -> None:
        """Record ``value`` of metric ``name`` for ``user``'s version.

        :raises grpc.RpcError: when the service did not store it.
        """
        self._write(
            _metric(self._protocol, application, user, name, value),
            timeout=self.timeout,
            metadata=self._metadata,
        )

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncClient:
    """:class:`Client` for asyncio: the same methods, as coroutines. The channel opens on first use."""

    def __init__(
        self,
        target: str,
        *,
        timeout: float = 1.0,
        credentials: grpc.ChannelCredentials | None = None,
        token: str | None = None,
    ) -> None:
        self.target = target
        self.timeout = timeout
        self._metadata = _metadata(token)
        self._credentials = credentials
        self._protocol = protocol()
        self._channel: grpc.aio.Channel | None = None
        self._calls: tuple[_AioCall, _AioCall] | None = None

    def _open(self) -> tuple[_AioCall, _AioCall]:
        """The channel's two calls, made once (a grpc.aio channel must be made inside the event loop)."""
        if self._calls is None:
            self._channel = (
                grpc.aio.secure_channel(self.target, self._credentials)
                if self._credentials
                else grpc.aio.insecure_channel(self.target)
            )
            self._calls = _calls(self._channel)
        return self._calls

    async def lookup(self, application: str, user: str) -> int:
        """The version number for ``user`` of ``application`` (``namespace/name``); 0 on any failure."""
        lookup, _ = self._open()
        try:
            answer: Any = await lookup(
                self._protocol.Application(name=application, user=user),
                timeout=self.timeout,
                metadata=self._metadata,
            )
        except grpc.RpcError as exc:
            _warn_fallback(application, user, exc)
            return FALLBACK_VERSION
        return int(answer.versionNumber)

    async def write_metric(self, application: str, user: str, name: str, value: float) -> None:
        """Record ``value`` of metric ``name`` for ``user``'s version.

        :raises grpc.RpcError: (``grpc.aio.AioRpcError``) when the service did not store it.
        """
        _, write = self._open()
        await write(
            _metric(self._protocol, application, user, name, value),
            timeout=self.timeout,
            metadata=self._metadata,
        )

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = None
            self._calls = None

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
