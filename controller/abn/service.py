"""The gRPC ``ABN`` service (``abn.proto``, wire-compatible with Iter8 v1.1): Lookup and WriteMetric.

Which versions an application has, and their weights, come from an injected ``versions_for``
callable (the controller answers from its routing state): ``(version number, weight)`` pairs, of
which those with weight > 0 take part, or ``None`` for an application it does not know.

Status codes:

* ``INVALID_ARGUMENT``: no application (``""``, ``"/"``, ``"ns/"``, ``"/app"``, more than one
  ``/``), no user, no metric name, or a value that is not a finite number.
* ``NOT_FOUND``: ``versions_for`` does not know the application.
* ``FAILED_PRECONDITION``: the application has no version with weight > 0.
* ``UNAVAILABLE``: ``versions_for`` or the store failed; the value was **not** stored.

WriteMetric answers OK only once the value is committed to the store, so an acknowledged write is
never lost. An application name ``app`` means ``default/app``; both spellings are the same
application (in assignment and in the store).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, NoReturn

import grpc

from kubectl_iter8.sdk import LOOKUP, SERVICE, WRITE_METRIC, protocol

from .assignment import assign
from .store import MetricStore

log = logging.getLogger(__name__)

VersionsFor = Callable[[str], Sequence[tuple[int, float]] | None]


class Rejected(Exception):
    """A request the service refuses, with the gRPC status code to answer."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code


def application_key(name: str) -> str:
    """``namespace/name`` for an application as clients name it (a bare ``name`` is in ``default``).

    :raises Rejected: (``INVALID_ARGUMENT``) when no application is named.
    """
    namespace, slash, app = name.strip().rpartition("/")
    if not slash:
        namespace = "default"
    if not app or (slash and not namespace) or "/" in namespace:
        raise Rejected(grpc.StatusCode.INVALID_ARGUMENT, f"no application provided (got {name!r})")
    return f"{namespace}/{app}"


def parse_value(text: str) -> float:
    """The metric value in ``text``: a finite number.

    :raises Rejected: (``INVALID_ARGUMENT``) otherwise.
    """
    try:
        value = float(text.strip())
    except ValueError:
        raise Rejected(grpc.StatusCode.INVALID_ARGUMENT, f"metric value {text!r} is not a number") from None
    if not math.isfinite(value):
        raise Rejected(grpc.StatusCode.INVALID_ARGUMENT, f"metric value {text!r} is not a finite number")
    return value


class AbnService:
    """The logic of the two RPCs, independent of gRPC plumbing (see :func:`handler`)."""

    def __init__(self, versions_for: VersionsFor, store: MetricStore) -> None:
        self.versions_for = versions_for
        self.store = store

    def version(self, application: str, user: str) -> int:
        """The version of ``application`` (a key from :func:`application_key`) that ``user`` gets."""
        if not user:
            raise Rejected(grpc.StatusCode.INVALID_ARGUMENT, "no user provided")
        try:
            versions = self.versions_for(application)
        except Exception:
            log.exception("A/B/n: cannot get the versions of %s", application)
            raise Rejected(grpc.StatusCode.UNAVAILABLE, f"versions of {application} unavailable") from None
        if versions is None:
            raise Rejected(grpc.StatusCode.NOT_FOUND, f"application {application!r} not found")
        chosen = assign(user, versions, application=application)
        if chosen is None:
            raise Rejected(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"application {application!r} has no version with traffic",
            )
        return chosen

    def lookup(self, name: str, user: str) -> int:
        return self.version(application_key(name), user)

    def write_metric(self, application: str, user: str, name: str, value: str) -> None:
        key = application_key(application)
        if not user:
            raise Rejected(grpc.StatusCode.INVALID_ARGUMENT, "no user provided")
        if not name:
            raise Rejected(grpc.StatusCode.INVALID_ARGUMENT, "no metric name provided")
        number = parse_value(value)
        version = self.version(key, user)
        try:
            self.store.write(key, version, name, user, number)
        except Exception:
            log.exception("A/B/n: cannot store metric %s of %s", name, key)
            raise Rejected(grpc.StatusCode.UNAVAILABLE, "the metric store failed; value not stored") from None


def handler(service: AbnService) -> grpc.GenericRpcHandler:
    """The gRPC handler of ``main.ABN`` for ``service``."""
    p = protocol()

    def abort(context: grpc.ServicerContext, rejected: Rejected) -> NoReturn:
        context.abort(rejected.code, str(rejected))
        raise AssertionError("unreachable: abort raises")

    def lookup(request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return p.VersionRecommendation(versionNumber=service.lookup(request.name, request.user))
        except Rejected as rejected:
            abort(context, rejected)

    def write_metric(request: Any, context: grpc.ServicerContext) -> Any:
        try:
            service.write_metric(request.application, request.user, request.name, request.value)
        except Rejected as rejected:
            abort(context, rejected)
        return p.Empty()

    def serialize(message: Any) -> bytes:
        return bytes(message.SerializeToString())

    return grpc.method_handlers_generic_handler(
        SERVICE,
        {
            LOOKUP.rsplit("/", 1)[1]: grpc.unary_unary_rpc_method_handler(
                lookup, request_deserializer=p.Application.FromString, response_serializer=serialize
            ),
            WRITE_METRIC.rsplit("/", 1)[1]: grpc.unary_unary_rpc_method_handler(
                write_metric, request_deserializer=p.MetricValue.FromString, response_serializer=serialize
            ),
        },
    )


@dataclass
class Served:
    """A running A/B/n server: the port it listens on, and how to stop it."""

    server: grpc.Server
    port: int
    executor: ThreadPoolExecutor

    def stop(self, grace: float | None = None) -> None:
        """Stop serving (after ``grace`` seconds for calls in flight) and end the worker threads."""
        self.server.stop(grace).wait()
        self.executor.shutdown(wait=True)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the server stops (or ``timeout``); True when it stopped."""
        return bool(self.server.wait_for_termination(timeout))


def serve(
    port: int,
    versions_for: VersionsFor,
    store: MetricStore,
    *,
    host: str = "[::]",
    max_workers: int = 8,
) -> Served:
    """Start the A/B/n service on ``host:port`` (port 0: any free port, see :attr:`Served.port`)."""
    executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="abn-grpc")
    server = grpc.server(executor, handlers=[handler(AbnService(versions_for, store))])
    try:
        # grpc raises RuntimeError when it cannot bind; older versions returned port 0
        bound = server.add_insecure_port(f"{host}:{port}")
        if bound:
            server.start()
    except BaseException:
        server.stop(None)
        executor.shutdown(wait=False)
        raise
    if not bound:
        server.stop(None)
        executor.shutdown(wait=False)
        raise OSError(f"cannot listen on {host}:{port}")
    log.info("A/B/n service listening on %s:%d", host, bound)
    return Served(server, bound, executor)
