"""The ``grpc`` task: load a gRPC method and record Iter8's ``grpc/...`` metrics.

For each endpoint, in order: describe the method (``proto``, ``protoset``, else server
reflection), check the call data against its request type, open ``connections`` channels and
connect within ``connectTimeout``, run the load (:mod:`.engine`), record metrics and the details.

Errors, each a one-line message, never a traceback:

* problems of the experiment itself (a proto that does not compile, an unreadable protoset or data
  file, a service or method that is not there, data that does not fit the request type) fail the
  task before any load is sent;
* a host that cannot be reached fails the task with a single endpoint; among named endpoints the
  failing one is logged and recorded and the others still run (as the ``http`` task does), and the
  task fails only when all of them do;
* calls that fail during the run (deadline exceeded, unavailable, unimplemented, ...) are counted
  per status code and never fail the task: SLOs on ``grpc/error-rate`` judge them.

``warmup: true`` runs the load and keeps no metrics (Iter8's rule); the record still tells.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubectl_iter8.errors import TaskError
from kubectl_iter8.task import Task, TaskContext

from ..loadgen.report_result import run_and_report
from .inputs import Endpoint, GrpcInputs, resolve
from .sources import Sources as _Sources

if TYPE_CHECKING:
    from ..loadgen.stats import RunStats
    from .descriptors import Method


#: A file fetched from ``protoURL``, ``dataURL``, ... may not be larger than this.
MAX_DOWNLOAD_BYTES = 64 * 1024 * 1024


class _Unreachable(Exception):
    """The endpoint's host cannot be reached: skipped among several endpoints."""


class GrpcTask(Task[GrpcInputs]):
    """Load-test gRPC methods and record latency and error metrics (Iter8's ``grpc``)."""

    name = "grpc"
    Inputs = GrpcInputs

    @classmethod
    def from_values(cls, values: Any) -> list[dict[str, Any]]:
        """Iter8's chart: ``warmupNumRequests`` / ``warmupDuration`` add a warm-up entry first."""
        from kubectl_iter8.values import warmup_entries

        return warmup_entries(cls.name, values, "total") or super().from_values(values)

    async def run(self, ctx: TaskContext) -> None:
        # Iter8 v1.x's dashboards: the result goes to $METRICS_SERVER_URL when that is set.
        await run_and_report(ctx, self._run)

    async def _run(self, ctx: TaskContext) -> None:
        # gRPC's C core logs connection failures to the standard error; the task reports them.
        os.environ.setdefault("GRPC_VERBOSITY", "NONE")
        endpoints = resolve(self.inputs)
        multi = bool(self.inputs.endpoints)
        records: dict[str, Any] = {}
        ctx.details["endpoints"] = records
        if self.inputs.warmup:
            ctx.details["warmup"] = True
        # Everything that needs no server is checked first, for every endpoint.
        local = [await asyncio.to_thread(_read_sources, endpoint, multi) for endpoint in endpoints]
        failures: list[str] = []
        for endpoint, sources in zip(endpoints, local, strict=True):
            record: dict[str, Any] = {"host": endpoint.host, "call": endpoint.call}
            records[endpoint.prefix] = record
            try:
                if self.inputs.pods > 1:
                    from .shard import load_in_pods

                    stats, extra = await load_in_pods(ctx, self.inputs, endpoint, sources)
                else:
                    stats, extra = await _load(ctx, endpoint, sources, record, multi)
            except _Unreachable as exc:
                message = str(exc)
                record["error"] = message
                if not multi:
                    raise TaskError(message) from None
                ctx.logger.warning("%s: skipped: %s", endpoint.prefix, message)
                failures.append(f"{endpoint.prefix}: {message}")
                continue
            from . import metrics

            record.update(metrics.details(stats, extra))
            if not self.inputs.warmup:
                metrics.record(ctx.insights, endpoint.prefix, stats, endpoint.percentiles)
            errors = stats.error_count(metrics.is_error)
            ctx.log(f"{endpoint.prefix}: {stats.requests} calls, {errors} errors, {stats.achieved_qps:.1f}/s")
        if failures and len(failures) == len(endpoints):
            raise TaskError(f"every endpoint failed; first: {failures[0]}")

    @staticmethod
    def run_shard(kube: Any, group: str, namespace: str, index: int) -> None:
        """A shard pod's part of a load spread over ``pods`` (``kubectl-iter8 run --shard``)."""
        from .shard import run_shard

        run_shard(kube, group, namespace, index, _load)


def _fail(endpoint: Endpoint, multi: bool, message: str) -> TaskError:
    return TaskError(f"{endpoint.prefix}: {message}" if multi else message)


def _read_sources(endpoint: Endpoint, multi: bool) -> _Sources:
    from .descriptors import DiscoveryError, compile_proto, load_protoset

    sources = _Sources()
    try:
        if endpoint.proto:
            sources.files = compile_proto(endpoint.proto, endpoint.import_paths)
            sources.source, sources.kind = f"proto {endpoint.proto!r}", "proto"
        elif endpoint.protoset:
            sources.files = load_protoset(endpoint.protoset)
            sources.source, sources.kind = f"protoset {endpoint.protoset!r}", "protoset"
        elif endpoint.proto_url:
            text = _fetch(endpoint, multi, endpoint.proto_url, "protoURL")
            name = Path(urllib.parse.urlsplit(endpoint.proto_url).path).name or "fetched.proto"
            with tempfile.TemporaryDirectory(prefix="iter8-grpc-") as tmp:
                (Path(tmp) / name).write_bytes(text)
                sources.files = compile_proto(str(Path(tmp) / name), endpoint.import_paths)
            sources.source, sources.kind = f"protoURL {endpoint.proto_url}", "proto"
    except DiscoveryError as exc:
        raise _fail(endpoint, multi, str(exc)) from None
    if endpoint.binary_file:
        sources.binary = _read_bytes(endpoint, multi, endpoint.binary_file, "binaryFile")
    elif endpoint.binary_data_url:
        sources.binary = _fetch(endpoint, multi, endpoint.binary_data_url, "binaryDataURL")
    elif endpoint.data_file:
        sources.items = _as_items(
            _json(endpoint, multi, _read_bytes(endpoint, multi, endpoint.data_file, "dataFile"), "dataFile")
        )
    elif endpoint.data_url:
        sources.items = _as_items(
            _json(endpoint, multi, _fetch(endpoint, multi, endpoint.data_url, "dataURL"), "dataURL")
        )
    elif endpoint.data is not None:
        sources.items = _as_items(endpoint.data)
    metadata = endpoint.metadata
    if endpoint.metadata_file:
        metadata = _json(
            endpoint,
            multi,
            _read_bytes(endpoint, multi, endpoint.metadata_file, "metadataFile"),
            "metadataFile",
        )
    elif endpoint.metadata_url:
        metadata = _json(
            endpoint, multi, _fetch(endpoint, multi, endpoint.metadata_url, "metadataURL"), "metadataURL"
        )
    if metadata is not None:
        sources.metadata = metadata if isinstance(metadata, list) else [metadata]
    return sources


def _as_items(data: Any) -> list[Any]:
    return data if isinstance(data, list) else [data]


def _read_bytes(endpoint: Endpoint, multi: bool, path: str, what: str) -> bytes:
    try:
        return Path(path).expanduser().read_bytes()
    except OSError as exc:
        raise _fail(endpoint, multi, f"cannot read {what} {path!r}: {exc.strerror or exc}") from None


def _json(endpoint: Endpoint, multi: bool, text: bytes, what: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise _fail(endpoint, multi, f"{what} is not JSON: {exc}") from None


def _fetch(endpoint: Endpoint, multi: bool, url: str, what: str) -> bytes:
    """A control-plane download, once per run (Iter8's chart fetched these with curl)."""
    try:
        with urllib.request.urlopen(url, timeout=endpoint.connect_timeout) as response:
            data: bytes = response.read(MAX_DOWNLOAD_BYTES + 1)
    except (OSError, ValueError) as exc:
        raise _fail(
            endpoint, multi, f"cannot fetch {what} {url}: {getattr(exc, 'reason', None) or exc}"
        ) from None
    if len(data) > MAX_DOWNLOAD_BYTES:
        raise _fail(endpoint, multi, f"{what} {url}: larger than {MAX_DOWNLOAD_BYTES} bytes")
    return data


async def _load(
    ctx: TaskContext,
    endpoint: Endpoint,
    sources: _Sources,
    record: dict[str, Any],
    multi: bool,
    before_start: Callable[[], Awaitable[None]] | None = None,
) -> tuple[RunStats, dict[str, Any]]:
    """Connect, describe, check the data, run the load; close the channels whatever happens.

    ``before_start`` is awaited once connected and described, just before the first call.
    """
    from ..loadgen.progress import ProgressLine
    from .channel import ConnectError, fetch_certificate, open_channel, wait_ready
    from .descriptors import DiscoveryError, ReflectionRpcError, catalog, find_method, reflect
    from .engine import CallEngine
    from .payload import Metadata, PayloadError, Payloads

    security = endpoint.security
    pinned = None
    if security.tls and security.skip_verify:
        try:
            pinned = await asyncio.to_thread(
                fetch_certificate, endpoint.host, security, endpoint.connect_timeout
            )
        except ConnectError as exc:
            raise _Unreachable(str(exc)) from None
    try:
        channels = [open_channel(endpoint.host, security, pinned=pinned) for _ in range(endpoint.connections)]
    except ConnectError as exc:  # an unreadable certificate file
        raise _fail(endpoint, multi, str(exc)) from None
    try:
        try:
            await asyncio.gather(
                *(wait_ready(channel, endpoint.host, endpoint.connect_timeout) for channel in channels)
            )
        except ConnectError as exc:
            raise _Unreachable(str(exc)) from None
        files = sources.files
        try:
            if files is None:
                from .plan import parse_call

                reflect_metadata = tuple(
                    (k.lower(), str(v)) for k, v in (endpoint.reflect_metadata or {}).items()
                )
                try:
                    files = await reflect(
                        channels[0],
                        parse_call(endpoint.call)[0],
                        metadata=reflect_metadata or None,
                        timeout=endpoint.connect_timeout,
                    )
                except ReflectionRpcError as exc:
                    raise _Unreachable(f"server reflection on {endpoint.host} failed: {exc}") from None
            method: Method = find_method(catalog(files), endpoint.call, sources.source)
        except DiscoveryError as exc:
            raise _fail(endpoint, multi, str(exc)) from None
        record.update(kind=method.kind, descriptors=sources.kind)
        facts = method.facts()
        try:
            payloads = Payloads(method.request_class, items=sources.items, binary=sources.binary, facts=facts)
            metadata = Metadata(sources.metadata, facts)
        except PayloadError as exc:
            raise _fail(endpoint, multi, str(exc)) from None
        engine = CallEngine(channels, method, payloads, metadata, endpoint.plan)
        plan = endpoint.plan
        total = plan.total
        if total is None and plan.qps > 0 and plan.duration is not None:
            total = round(plan.duration * plan.qps)
        progress = ProgressLine(
            f"{endpoint.prefix}:",
            lambda: (engine.completed, engine.failed),
            total=total,
            duration=plan.duration,
        )
        progress.start()
        try:
            stats = await engine.run(before_start)
        finally:
            await progress.stop()
        extra: dict[str, Any] = {"concurrency": plan.concurrency}
        if method.kind != "unary":
            extra["messagesSent"] = engine.messages_sent
            extra["messagesReceived"] = engine.messages_received
        if engine.messages:
            extra["errorMessages"] = dict(sorted(engine.messages.items(), key=lambda kv: -kv[1]))
        return stats, extra
    finally:
        await asyncio.gather(*(channel.close() for channel in channels), return_exceptions=True)
