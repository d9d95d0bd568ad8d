"""The ``http`` task: its inputs (Iter8's, plus what wrk/fortio/k6 users expect) and its run.

Inputs keep Iter8's camelCase names and defaults so its users' experiments keep working: ``url``,
``headers``, ``numRequests`` (100 when neither it nor ``duration`` is given; it wins over
``duration``), ``duration``, ``qps`` (8; ``0`` = closed loop at maximum speed), ``connections`` (4),
``payloadStr``/``payloadFile``/``payloadURL`` (in rising precedence; a payload makes the default
method POST), ``contentType``, ``errorRanges`` (default: status >= 400), ``percentiles`` (added to
50/75/90/95/99/99.9), ``allowInitialErrors``, ``warmup`` and ``endpoints``: named endpoints, each
taking every unset field from the top level. Added: ``method``, ``timeout`` (10s), TLS
(``caFile``, ``certFile``, ``keyFile``, ``insecureSkipVerify``), ``workers`` (processes; 0 =
one per core; at most 4 per core) and ``pods`` (in a cluster experiment: shard pods sharing each
endpoint's load with one start instant, merged exactly; see :mod:`.shard`).

Semantics, following Iter8 where it had any:

* Endpoints run one after the other, each with the whole load; metrics are ``http/...`` for a
  single URL and ``http-<endpoint>/...`` for named endpoints (then ``url`` is only a default).
* ``numRequests: N`` sends exactly N requests, whatever the connections and workers: the server
  sees N and the result records N (nothing unrecorded is sent; with fewer requests than
  connections some connections stay unused).
* Initial errors: every connection is opened before the load starts, and the first response on
  each is checked (Fortio's warm-up call checked the same, with an extra unrecorded request; here
  it is one of the N, recorded and scheduled like the others). If a connection cannot be opened,
  or its first request gets no response or an error status, and ``allowInitialErrors`` is false,
  the endpoint fails: with a single URL the task fails; among endpoints the failing one is logged
  and recorded, the others still run, and the task fails only if all of them do. With
  ``allowInitialErrors: true`` the run goes ahead and whatever fails is counted (a dead target
  then yields error-rate 1).
* ``warmup: true`` runs the load and keeps no metrics (Iter8: results thrown away); the record
  still says what happened.
* Connection errors, timeouts and resets during the run are counted with their reason and never
  fail the task; SLOs on ``http/error-rate`` judge them.
"""

from __future__ import annotations

import asyncio
import re
import urllib.request
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator

from kubectl_iter8.errors import TaskError
from kubectl_iter8.task import Duration, Task, TaskContext, TaskInputs

from ..loadgen.checks import check_endpoint_name, check_percentiles
from ..loadgen.report_result import run_and_report
from . import metrics
from .engine import InitialError, LoadEngine, LoadPlan
from .progress import ProgressLine
from .stats import RunStats
from .target import Target

DEFAULT_NUM_REQUESTS = 100
DEFAULT_QPS = 8.0
DEFAULT_CONNECTIONS = 4
DEFAULT_TIMEOUT = 10.0
#: A payload fetched from ``payloadURL`` may not be larger than this.
MAX_PAYLOAD_URL_BYTES = 64 * 1024 * 1024
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


class ErrorRange(TaskInputs):
    """Status codes from ``lower`` to ``upper`` (both inclusive, either open) are errors."""

    lower: int | None = None
    upper: int | None = None


class EndpointInputs(TaskInputs):
    """What one endpoint may set; anything unset comes from the task's top level."""

    url: str | None = None
    method: str | None = None
    headers: dict[str, str] | None = None
    num_requests: int | None = Field(None, alias="numRequests", ge=1)
    duration: Duration | None = None
    qps: float | None = Field(None, ge=0)
    connections: int | None = Field(None, ge=1)
    payload_str: str | None = Field(None, alias="payloadStr")
    payload_file: str | None = Field(None, alias="payloadFile")
    payload_url: str | None = Field(None, alias="payloadURL")
    content_type: str | None = Field(None, alias="contentType")
    error_ranges: list[ErrorRange] | None = Field(None, alias="errorRanges")
    percentiles: list[float] | None = None
    allow_initial_errors: bool | None = Field(None, alias="allowInitialErrors")
    timeout: Duration | None = None
    ca_file: str | None = Field(None, alias="caFile")
    cert_file: str | None = Field(None, alias="certFile")
    key_file: str | None = Field(None, alias="keyFile")
    insecure_skip_verify: bool | None = Field(None, alias="insecureSkipVerify")

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is not None:
            Target(url=value).request_bytes()  # raises ValueError with a clear message
        return value

    @field_validator("method")
    @classmethod
    def _check_method(cls, value: str | None) -> str | None:
        if value is not None:
            if not _TOKEN.fullmatch(value):
                raise ValueError(f"{value!r} is not an HTTP method")
            value = value.upper()
        return value

    @field_validator("percentiles")
    @classmethod
    def _check_percentiles(cls, value: list[float] | None) -> list[float] | None:
        return check_percentiles(value)

    @field_validator("timeout")
    @classmethod
    def _check_timeout(cls, value: float | None) -> float | None:
        if value is not None and value <= 0:
            raise ValueError("timeout must be more than 0")
        return value

    @field_validator("headers")
    @classmethod
    def _check_headers(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        for name, text in (value or {}).items():
            if not _TOKEN.fullmatch(name) or "\r" in text or "\n" in text:
                raise ValueError(f"invalid header {name!r}")
        return value


class HttpInputs(EndpointInputs):
    """The ``with:`` block of an ``http`` task."""

    warmup: bool = False
    #: Worker processes sharing the load; 0 = one per core.
    workers: int = Field(1, ge=0)
    #: Pods sharing each endpoint's load (cluster experiments only).
    pods: int = Field(1, ge=1)
    endpoints: dict[str, EndpointInputs] = Field(default_factory=dict)
    #: Chart values that Iter8's chart also left in the main entry of the experiment it rendered
    #: (it had made the warm-up entry already, and Iter8's task ignored them): ignored, with a warning.
    warmup_num_requests: int | None = Field(None, validation_alias="warmupNumRequests", exclude=True)
    warmup_duration: str | float | None = Field(None, validation_alias="warmupDuration", exclude=True)

    @field_validator("pods")
    @classmethod
    def _pods(cls, value: int) -> int:
        from kubectl_iter8.cluster import MAX_SHARDS

        if value > MAX_SHARDS:
            raise ValueError(f"at most {MAX_SHARDS}")
        return value

    @field_validator("workers")
    @classmethod
    def _workers(cls, value: int) -> int:
        from .workers import max_workers

        limit = max_workers()
        if value > limit:
            raise ValueError(f"at most {limit} (4 per core available; 0 means one per core)")
        return value

    @model_validator(mode="after")
    def _check(self) -> HttpInputs:
        if not self.endpoints and not self.url:
            raise ValueError("please set the url or the endpoints")
        for key, endpoint in self.endpoints.items():
            check_endpoint_name(key)
            if not (endpoint.url or self.url):
                raise ValueError(f"endpoint {key!r} has no url (and there is no top-level url)")
        if self.pods > 1:
            self._check_pods()
        return self

    def _check_pods(self) -> None:
        """Each pod needs a connection, and a request when the count is fixed: a share of 0 would
        be a shard with nothing to do."""
        if self.workers != 1:
            raise ValueError("pods: use workers: 1 with pods (each shard pod runs one process)")
        for key, endpoint in {"": self, **self.endpoints}.items():
            where = f" (endpoint {key!r})" if key else ""
            connections = endpoint.connections or self.connections or DEFAULT_CONNECTIONS
            if connections < self.pods:
                raise ValueError(
                    f"pods: {self.pods} pods need at least as many connections, not {connections}{where}"
                )
            count = endpoint.num_requests or self.num_requests
            if count is not None and count < self.pods:
                raise ValueError(
                    f"pods: {self.pods} pods need at least as many numRequests, not {count}{where}"
                )


@dataclass(frozen=True)
class Endpoint:
    """One endpoint with every default applied: what to send, how much, and what to report."""

    prefix: str
    target: Target
    plan: LoadPlan
    percentiles: tuple[float, ...]
    payload_url: str | None
    payload_file: str | None


def resolve(inputs: HttpInputs) -> list[Endpoint]:
    """The endpoints to load, in order, each merged with the top level and given defaults."""
    from ..loadgen.metrics import named_endpoints

    named = named_endpoints("http", inputs.endpoints, lambda: EndpointInputs.model_validate({}))
    return [_resolve_one(prefix, endpoint, inputs) for prefix, endpoint in named]


def _resolve_one(prefix: str, endpoint: EndpointInputs, top: HttpInputs) -> Endpoint:
    def pick(name: str) -> Any:
        value = getattr(endpoint, name)
        return getattr(top, name) if value is None else value

    num_requests, duration = pick("num_requests"), pick("duration")
    if num_requests is None and duration is None:
        num_requests = DEFAULT_NUM_REQUESTS
    if num_requests is not None:
        duration = None  # Iter8: numRequests wins
    payload_str, payload_file, payload_url = pick("payload_str"), pick("payload_file"), pick("payload_url")
    has_payload = bool(payload_str) or bool(payload_file) or bool(payload_url)
    ranges = pick("error_ranges")
    error_ranges = (
        ((400, 999),)
        if ranges is None
        else tuple((r.lower or 0, 999 if r.upper is None else r.upper) for r in ranges)
    )
    qps = pick("qps")
    target = Target(
        url=pick("url"),
        method=pick("method") or ("POST" if has_payload else "GET"),
        headers=tuple((pick("headers") or {}).items()),
        body=payload_str.encode() if payload_str else None,
        content_type=pick("content_type"),
        timeout=pick("timeout") or DEFAULT_TIMEOUT,
        ca_file=pick("ca_file"),
        cert_file=pick("cert_file"),
        key_file=pick("key_file"),
        insecure_skip_verify=bool(pick("insecure_skip_verify")),
        error_ranges=error_ranges,
    )
    plan = LoadPlan(
        connections=pick("connections") or DEFAULT_CONNECTIONS,
        qps=DEFAULT_QPS if qps is None else float(qps),
        num_requests=num_requests,
        duration=duration,
        allow_initial_errors=bool(pick("allow_initial_errors")),
    )
    percentiles = tuple(metrics.all_percentiles(pick("percentiles") or ()))
    return Endpoint(prefix, target, plan, percentiles, payload_url, payload_file)


class HttpTask(Task[HttpInputs]):
    """Load-test HTTP endpoints and record latency and error metrics (Iter8's ``http``)."""

    name = "http"
    Inputs = HttpInputs

    @classmethod
    def from_values(cls, values: Any) -> list[dict[str, Any]]:
        """Iter8's chart: ``warmupNumRequests`` / ``warmupDuration`` add a warm-up entry first."""
        from kubectl_iter8.values import warmup_entries

        return warmup_entries(cls.name, values, "numRequests") or super().from_values(values)

    async def run(self, ctx: TaskContext) -> None:
        # Iter8 v1.x's dashboards: the result goes to $METRICS_SERVER_URL when that is set.
        await run_and_report(ctx, self._run)

    async def _run(self, ctx: TaskContext) -> None:
        endpoints = resolve(self.inputs)
        multi = bool(self.inputs.endpoints)
        records: dict[str, Any] = {}
        ctx.details["endpoints"] = records
        if self.inputs.warmup:
            ctx.details["warmup"] = True
        if self.inputs.warmup_num_requests is not None or self.inputs.warmup_duration is not None:
            ctx.logger.warning(
                "warmupNumRequests/warmupDuration do nothing in an experiment's task, as in Iter8 (its "
                "chart made the warm-up entry from them); use an entry with warmup: true"
            )
        failures: list[str] = []
        self._timings: dict[str, dict[str, Any]] = {}
        for endpoint in endpoints:
            target = await _with_payload(endpoint)
            record: dict[str, Any] = {"url": target.url, "method": target.method}
            records[endpoint.prefix] = record
            try:
                stats = await self._load(ctx, endpoint, target)
            except InitialError as exc:
                message = f"{target.url}: initial request failed: {exc} (allowInitialErrors: true goes on)"
                record["error"] = message
                if not multi:
                    raise TaskError(message) from None
                ctx.logger.warning("%s: skipped: %s", endpoint.prefix, message)
                failures.append(message)
                continue
            record.update(metrics.details(stats, target.is_error))
            if endpoint.prefix in self._timings:
                record["pods"] = self._timings[endpoint.prefix]
            if not self.inputs.warmup:
                metrics.record(ctx.insights, endpoint.prefix, stats, target.is_error, endpoint.percentiles)
            ctx.log(
                f"{endpoint.prefix}: {stats.requests} requests, {stats.error_count(target.is_error)} errors, "
                f"{stats.achieved_qps:.1f}/s"
            )
        if failures and len(failures) == len(endpoints):
            raise TaskError(f"every endpoint failed; first: {failures[0]}")

    @staticmethod
    def run_shard(kube: Any, group: str, namespace: str, index: int) -> None:
        """A shard pod's part of a load spread over ``pods`` (``kubectl-iter8 run --shard``)."""
        from .shard import run_shard

        run_shard(kube, group, namespace, index)

    async def _load(self, ctx: TaskContext, endpoint: Endpoint, target: Target) -> RunStats:
        plan = endpoint.plan
        workers = self.inputs.workers
        label = f"{endpoint.prefix}:"
        total = plan.num_requests
        if total is None and plan.qps > 0 and plan.duration is not None:
            total = round(plan.duration * plan.qps)
        if self.inputs.pods > 1:
            from .shard import load_in_pods

            stats, timing = await load_in_pods(ctx.kube_options, target, plan, self.inputs.pods, ctx.log)
            self._timings[endpoint.prefix] = timing
            return stats
        if workers == 1:
            engine = LoadEngine(target, plan)
            progress = ProgressLine(
                label,
                lambda: (engine.completed, engine.errors_so_far()),
                total=total,
                duration=plan.duration,
            )
            progress.start()
            try:
                return await engine.run()
            finally:
                await progress.stop()
        from .workers import run_parallel, worker_count

        counts: list[Any] = []
        progress = ProgressLine(
            label, lambda: counts[0]() if counts else (0, 0), total=total, duration=plan.duration
        )
        progress.start()
        try:
            return await asyncio.to_thread(run_parallel, target, plan, worker_count(workers), counts.append)
        finally:
            await progress.stop()


async def _with_payload(endpoint: Endpoint) -> Target:
    """The endpoint's target with the payload from ``payloadURL`` or ``payloadFile`` (relative to
    the current directory) loaded."""
    target = endpoint.target
    body: bytes | None = None
    if endpoint.payload_url:
        body = await asyncio.to_thread(_fetch, endpoint.payload_url, target.timeout)
    elif endpoint.payload_file:
        path = Path(endpoint.payload_file).expanduser()
        try:
            body = path.read_bytes()
        except OSError as exc:
            raise TaskError(f"cannot read payloadFile {str(path)!r}: {exc.strerror or exc}") from None
    return target if body is None else replace(target, body=body)


def _fetch(url: str, timeout: float) -> bytes:
    # A control-plane call, once per run: the standard library is enough.
    if not url.startswith(("http://", "https://")):
        raise TaskError(f"payloadURL {url!r}: only http:// and https:// URLs are supported")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            data: bytes = response.read(MAX_PAYLOAD_URL_BYTES + 1)
    except OSError as exc:
        raise TaskError(f"cannot fetch payloadURL {url}: {getattr(exc, 'reason', None) or exc}") from None
    if len(data) > MAX_PAYLOAD_URL_BYTES:
        raise TaskError(f"payloadURL {url}: payload larger than {MAX_PAYLOAD_URL_BYTES} bytes")
    return data
