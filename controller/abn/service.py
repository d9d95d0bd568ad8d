"""The gRPC ``ABN`` service (``abn.proto``, wire-compatible with Iter8 v1.1): Lookup and WriteMetric.

Which versions an application has, and their weights, come from an injected ``versions_for``
callable (the controller answers from its routing state): ``(version number, weight)`` pairs, of
which those with weight > 0 take part, or ``None`` for an application it does not know.

Status codes:

* ``INVALID_ARGUMENT``: no application (``""``, ``"/"``, ``"ns/"``, ``"/app"``, more than one
  ``/``), no user, no metric name, a name or user beyond its length limit (:mod:`.limits`), or a
  value that is not a finite number of magnitude at most :data:`~.limits.MAX_MAGNITUDE`. Messages
  quote a refused value cut short (:func:`~.limits.quote`).
* ``UNAUTHENTICATED``: the service has a token (``$ITER8_ABN_TOKEN_FILE``) and the call's metadata
  has no ``authorization: Bearer TOKEN`` with it (the token never reaches a message or a log).
* ``RESOURCE_EXHAUSTED``: a new metric name for an application that has
  :attr:`~.limits.Limits.max_metrics` of them already.
* ``NOT_FOUND``: ``versions_for`` does not know the application.
* ``FAILED_PRECONDITION``: the application has no version with weight > 0.
* ``UNAVAILABLE``: ``versions_for`` or the store failed (or the controller is not ready: its
  caches are not synced); a value was **not** stored.

WriteMetric answers OK only once the value is committed to the store, so an acknowledged write is
never lost. An application name ``app`` means ``default/app``; both spellings are the same
application (in assignment and in the store).

Calls are counted per method and status code (:meth:`AbnService.calls`, for the controller's
``/metrics``). Users are recorded best-effort: a successful Lookup puts (application, version,
user) in a pending set (a set lookup under a lock: the call never waits for the store), which a
background thread hands to ``store.add_users``, grouped per (application, version), about once a
second and when the server stops. A store failure there is logged and that batch dropped; beyond
:data:`MAX_PENDING_USERS` pending users, new ones are dropped (one warning until the next flush),
so a slow or failing store cannot grow the process's memory.

Serving: a synchronous ``grpc.server`` with a thread pool. The service's own work is a few
microseconds per Lookup against gRPC's 150-200 µs, so the serving stack decides the throughput;
measured (``benchmarks/README-abn.md``), this server answers Lookup about as fast as a bare
``grpc.aio`` echo server on the same core, while a ``grpc.aio`` server on its own event loop
thread took more CPU per call (about 210 µs against 175). WriteMetric blocks on the store (an
fsync, a Redis round trip), which a worker thread simply waits for.
"""

from __future__ import annotations

import hmac
import logging
import math
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, NoReturn

import grpc

from kubectl_iter8.sdk import LOOKUP, SERVICE, WRITE_METRIC, protocol

from ..errors import NotReadyError
from .assignment import AppVersions, assign
from .limits import (
    MAX_APP_BYTES,
    MAX_MAGNITUDE,
    MAX_METRIC_BYTES,
    MAX_NAMESPACE_BYTES,
    MAX_USER_BYTES,
    MAX_VALUE_TEXT,
    Limits,
    quote,
    too_long,
)
from .store import MetricStore

log = logging.getLogger(__name__)


#: The versions of an application (plain pairs, or :class:`AppVersions`), or None when unknown.
VersionsFor = Callable[[str], AppVersions | Sequence[tuple[int, float]] | None]

#: Users waiting for :meth:`AbnService.flush_users` beyond which new ones are dropped.
MAX_PENDING_USERS = 100_000
#: Seconds between two flushes of the pending users while serving.
FLUSH_INTERVAL = 1.0


class Rejected(Exception):
    """A request the service refuses, with the gRPC status code to answer."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code


def application_key(name: str) -> str:
    """``namespace/name`` for an application as clients name it (a bare ``name`` is in ``default``).

    :raises Rejected: (``INVALID_ARGUMENT``) when no application is named, or a part is too long.
    """
    if too_long(name, MAX_NAMESPACE_BYTES + 1 + MAX_APP_BYTES + 64):  # before any work on a huge name
        raise Rejected(grpc.StatusCode.INVALID_ARGUMENT, f"application {quote(name)} is too long")
    namespace, slash, app = name.strip().rpartition("/")
    if not slash:
        namespace = "default"
    if not app or (slash and not namespace) or "/" in namespace:
        raise Rejected(grpc.StatusCode.INVALID_ARGUMENT, f"no application provided (got {quote(name)})")
    if too_long(namespace, MAX_NAMESPACE_BYTES):
        raise Rejected(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"application namespace {quote(namespace)} is longer than {MAX_NAMESPACE_BYTES} bytes",
        )
    if too_long(app, MAX_APP_BYTES):
        raise Rejected(
            grpc.StatusCode.INVALID_ARGUMENT, f"application {quote(app)} is longer than {MAX_APP_BYTES} bytes"
        )
    return f"{namespace}/{app}"


def check_user(user: str) -> None:
    """:raises Rejected: (``INVALID_ARGUMENT``) when ``user`` is empty or too long."""
    if not user:
        raise Rejected(grpc.StatusCode.INVALID_ARGUMENT, "no user provided")
    if too_long(user, MAX_USER_BYTES):
        raise Rejected(
            grpc.StatusCode.INVALID_ARGUMENT, f"user {quote(user)} is longer than {MAX_USER_BYTES} bytes"
        )


def check_metric(name: str) -> None:
    """:raises Rejected: (``INVALID_ARGUMENT``) when the metric ``name`` is empty or too long."""
    if not name:
        raise Rejected(grpc.StatusCode.INVALID_ARGUMENT, "no metric name provided")
    if too_long(name, MAX_METRIC_BYTES):
        raise Rejected(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"metric name {quote(name)} is longer than {MAX_METRIC_BYTES} bytes",
        )


def parse_value(text: str) -> float:
    """The metric value in ``text``: a finite number of magnitude at most :data:`~.limits.MAX_MAGNITUDE`
    (negatives are fine: refunds, deltas).

    :raises Rejected: (``INVALID_ARGUMENT``) otherwise.
    """
    if len(text) > MAX_VALUE_TEXT:
        raise Rejected(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"metric value {quote(text)} is longer than {MAX_VALUE_TEXT} characters",
        )
    try:
        value = float(text.strip())
    except ValueError:
        raise Rejected(
            grpc.StatusCode.INVALID_ARGUMENT, f"metric value {quote(text)} is not a number"
        ) from None
    if not math.isfinite(value):
        raise Rejected(grpc.StatusCode.INVALID_ARGUMENT, f"metric value {quote(text)} is not a finite number")
    if abs(value) > MAX_MAGNITUDE:
        raise Rejected(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"metric value {quote(text)} is beyond the limit of {MAX_MAGNITUDE:g} in magnitude",
        )
    return value


class AbnService:
    """The logic of the two RPCs, independent of gRPC plumbing (see :func:`handler`); thread-safe."""

    def __init__(self, versions_for: VersionsFor, store: MetricStore, limits: Limits | None = None) -> None:
        self.versions_for = versions_for
        self.store = store
        self.limits = limits or Limits()
        self._calls: Counter[tuple[str, str]] = Counter()
        self._calls_lock = threading.Lock()
        self._pending: set[tuple[str, int, str]] = set()
        self._pending_lock = threading.Lock()
        self._dropping = False
        self.max_pending = MAX_PENDING_USERS

    def calls(self) -> dict[tuple[str, str], int]:
        """Calls so far per (method, status code name), e.g. ``("lookup", "OK")`` or
        ``("write_metric", "NOT_FOUND")``."""
        with self._calls_lock:
            return dict(self._calls)

    def _count(self, method: str, code: str) -> None:
        with self._calls_lock:
            self._calls[method, code] += 1

    def version(self, application: str, user: str) -> int:
        """The version of ``application`` (a key from :func:`application_key`) that ``user`` gets."""
        check_user(user)
        try:
            versions = self.versions_for(application)
        except NotReadyError as exc:
            raise Rejected(grpc.StatusCode.UNAVAILABLE, str(exc)) from None
        except Exception:
            log.exception("A/B/n: cannot get the versions of %s", application)
            raise Rejected(grpc.StatusCode.UNAVAILABLE, f"versions of {application} unavailable") from None
        if versions is None:
            raise Rejected(grpc.StatusCode.NOT_FOUND, f"application {application!r} not found")
        hashed = application
        if isinstance(versions, AppVersions):
            hashed = f"{application}#{versions.seed}" if versions.seed else application
            versions = versions.versions
        chosen = assign(user, versions, application=hashed)
        if chosen is None:
            raise Rejected(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"application {application!r} has no version with traffic",
            )
        return chosen

    def lookup(self, name: str, user: str) -> int:
        try:
            application = application_key(name)
            version = self.version(application, user)
        except Rejected as rejected:
            self._count("lookup", rejected.code.name)
            raise
        except BaseException:
            self._count("lookup", grpc.StatusCode.UNKNOWN.name)  # what grpc answers for an exception
            raise
        self._count("lookup", "OK")
        self._remember(application, version, user)
        return version

    def write_metric(self, application: str, user: str, name: str, value: str) -> None:
        try:
            self._write_metric(application, user, name, value)
        except Rejected as rejected:
            self._count("write_metric", rejected.code.name)
            raise
        except BaseException:
            self._count("write_metric", grpc.StatusCode.UNKNOWN.name)
            raise
        self._count("write_metric", "OK")

    def _write_metric(self, application: str, user: str, name: str, value: str) -> None:
        key = application_key(application)
        check_user(user)
        check_metric(name)
        number = parse_value(value)
        version = self.version(key, user)
        try:
            names = self.store.metric_names(key)
        except Exception:
            log.exception("A/B/n: cannot read the metric names of %s", key)
            raise Rejected(grpc.StatusCode.UNAVAILABLE, "the metric store failed; value not stored") from None
        if name not in names and len(names) >= self.limits.max_metrics:
            # Replicas check concurrently, so a burst of new names may pass the cap by a few.
            raise Rejected(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"application {key} has {len(names)} metrics already (the limit); {quote(name)} not stored",
            )
        try:
            self.store.write(key, version, name, user, number)
        except Exception:
            log.exception("A/B/n: cannot store metric %s of %s", name, key)
            raise Rejected(grpc.StatusCode.UNAVAILABLE, "the metric store failed; value not stored") from None

    # --- user recording ----------------------------------------------------------------------

    def _remember(self, application: str, version: int, user: str) -> None:
        entry = (application, version, user)
        with self._pending_lock:
            if len(self._pending) < self.max_pending or entry in self._pending:
                self._pending.add(entry)
                return
            warn, self._dropping = not self._dropping, True
        if warn:
            log.warning(
                "A/B/n: %d users wait to be recorded; dropping new ones until the next flush",
                self.max_pending,
            )

    def flush_users(self) -> int:
        """Hand the pending users to ``store.add_users``, one call per (application, version).

        Returns how many users were handed over. Never raises: a store failure is logged and that
        group dropped (recording users is best effort; Lookup has answered already).
        """
        with self._pending_lock:
            pending, self._pending = self._pending, set()
            self._dropping = False
        if not pending:
            return 0
        groups: defaultdict[tuple[str, int], list[str]] = defaultdict(list)
        for application, version, user in pending:
            groups[application, version].append(user)
        done = 0
        for (application, version), users in sorted(groups.items()):
            try:
                self.store.add_users(application, version, sorted(users))
            except Exception:
                log.exception(
                    "A/B/n: cannot record %d users of %s version %d; dropped",
                    len(users),
                    application,
                    version,
                )
            else:
                done += len(users)
        return done


class _Flusher:
    """The background thread calling :meth:`AbnService.flush_users` every ``interval`` seconds."""

    def __init__(self, service: AbnService, interval: float) -> None:
        self.service = service
        self.interval = interval
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="abn-users", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopping.wait(self.interval):
            self.service.flush_users()

    def stop(self) -> None:
        """Stop the thread, then flush what is left (call once no more Lookups can arrive)."""
        self._stopping.set()
        self._thread.join()
        self.service.flush_users()


def authorized(metadata: Sequence[tuple[str, str | bytes]] | None, token: str | None) -> bool:
    """Whether call ``metadata`` carries ``authorization: Bearer TOKEN`` (always, without a token)."""
    if token is None:
        return True
    expected = f"Bearer {token}".encode()
    for key, value in metadata or ():
        if key.lower() == "authorization":
            given = value if isinstance(value, bytes) else value.encode()
            if hmac.compare_digest(given, expected):  # constant time: no timing hint at the token
                return True
    return False


def handler(service: AbnService, token: str | None = None) -> grpc.GenericRpcHandler:
    """The gRPC handler of ``main.ABN`` for ``service``; with ``token``, calls must carry it."""
    p = protocol()

    def abort(context: grpc.ServicerContext, rejected: Rejected) -> NoReturn:
        context.abort(rejected.code, str(rejected))
        raise AssertionError("unreachable: abort raises")

    def check(method: str, context: grpc.ServicerContext) -> None:
        if not authorized(context.invocation_metadata(), token):
            service._count(method, grpc.StatusCode.UNAUTHENTICATED.name)
            abort(
                context,
                Rejected(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong authorization: Bearer token"),
            )

    def lookup(request: Any, context: grpc.ServicerContext) -> Any:
        check("lookup", context)
        try:
            return p.VersionRecommendation(versionNumber=service.lookup(request.name, request.user))
        except Rejected as rejected:
            abort(context, rejected)

    def write_metric(request: Any, context: grpc.ServicerContext) -> Any:
        check("write_metric", context)
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
    """A running A/B/n server: the port it listens on, its service (for counters), how to stop it."""

    server: grpc.Server
    port: int
    executor: ThreadPoolExecutor
    service: AbnService
    flusher: _Flusher

    def stop(self, grace: float | None = None) -> None:
        """Stop serving (after ``grace`` seconds for calls in flight), end the worker threads, and
        record the users still pending."""
        self.server.stop(grace).wait()
        self.executor.shutdown(wait=True)
        self.flusher.stop()

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
    limits: Limits | None = None,
    token: str | None = None,
) -> Served:
    """Start the A/B/n service on ``host:port`` (port 0: any free port, see :attr:`Served.port`);
    with ``token``, every call must carry ``authorization: Bearer TOKEN``."""
    service = AbnService(versions_for, store, limits)
    executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="abn-grpc")
    server = grpc.server(executor, handlers=[handler(service, token)])
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
    return Served(server, bound, executor, service, _Flusher(service, FLUSH_INTERVAL))
