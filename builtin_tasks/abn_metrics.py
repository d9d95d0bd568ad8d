"""The ``abnmetrics`` task (Iter8 v0.13/v0.14's name): the business metrics of an A/B/n test, per
version, read from the controller, so that ``assess`` can check SLOs on them and compare versions.

In an A/B/n test the application's frontend writes business values (sales, clicks, ...) through the
SDK, and the controller keeps every one. Iter8 v0.14 copied only a five-number summary per version
into the experiment, which allows SLOs on means but no statistical comparison; this task copies the
raw values, so ``assess`` can judge candidates with Mann-Whitney, Welch or the bootstrap.

Inputs::

    application: default/backend              # "namespace/name"; a bare name is in "default"
    endpoint: http://iter8-controller.iter8-system:8080  # the controller's HTTP port (host:port: http)
    over: users                               # or "transactions"
    metrics: [sales]                          # default: every metric the controller has
    versions: 2                               # default: as many as the data or the experiment has
    timeout: 10s
    tokenFrom: {secret: {name: abn-token, key: token}}  # when the controller wants its shared token

It sends ``GET <endpoint>/abnValues?namespace=NS&application=APP`` and records, for each metric and
each version (version index = the controller's version number):

* ``abn/<metric>``: a ``Sample``: the values over users (one per user assigned to the version, the
  sum of what that user wrote, 0 for a user who wrote nothing) or over transactions (every value
  written). The values are replaced on every run, as Iter8 replaced its summaries: the controller
  answers with the values so far, so appending would count them again in scheduled runs. The
  controller sends at most the latest 10,000 per metric and version (its ``/abnValues`` limit);
  where it had more, the sample is that window, and the task's details say so (``sampled``:
  metric, version, values kept, values in all) with a warning.
* ``abn/<metric>/count``, ``/mean``, ``/stddev``, ``/min``, ``/max``: ``Gauge`` values of that
  sample (Iter8's names), for SLOs judged on values. ``count`` is 0 for a version without values;
  the others are then missing, never 0 (``stddev`` needs two values).

An unreachable or failing controller, an unknown application and an answer that is not the
documented JSON fail the task with one line naming the endpoint and the application.
"""

from __future__ import annotations

import asyncio
import math
import re
import urllib.parse
from typing import Any, Literal

from pydantic import Field, field_validator

from kubectl_iter8 import statistics as st
from kubectl_iter8.durations import format_duration
from kubectl_iter8.errors import TaskError
from kubectl_iter8.result import Insights, MetricInfo
from kubectl_iter8.task import Duration, KubeAccess, Task, TaskContext, TaskInputs

from .credentials import Redactor, SecretValue, kube_access, resolve

DEFAULT_ENDPOINT = "http://iter8-controller.iter8-system:8080"
DEFAULT_TIMEOUT = 10.0
#: The controller's route with every value written, per metric and version.
VALUES_PATH = "/abnValues"
PREFIX = "abn"
#: A bound on version numbers, so that a broken answer cannot make the task allocate without end.
MAX_VERSIONS = 1000
#: Scalars recorded next to each sample (Iter8 v0.14 queried ``abn/<metric>/<statistic>``).
STATISTICS = ("count", "mean", "stddev", "min", "max")
_DNS_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
#: ``host:port`` (Iter8 v0.14's form of ``endpoint``): the controller's HTTP port at that address.
_HOST_PORT = re.compile(r"(?P<host>[A-Za-z0-9]([-A-Za-z0-9.]{0,251}[A-Za-z0-9])?):(?P<port>[0-9]{1,5})")
#: The A/B/n gRPC port (Iter8's chart and ``controller manifests``): no HTTP is served there.
ABN_GRPC_PORT = 50051


class AbnMetricsInputs(TaskInputs):
    application: str = Field(min_length=1)
    endpoint: str = DEFAULT_ENDPOINT
    over: Literal["users", "transactions"] = "users"
    metrics: list[str] | None = Field(default=None, min_length=1)
    versions: int | None = Field(default=None, ge=1)
    timeout: Duration = Field(default=DEFAULT_TIMEOUT, gt=0)
    #: The controller's shared token (``controller serve --abn-token-file``), sent as a bearer token.
    token_from: SecretValue | None = Field(default=None, alias="tokenFrom")

    @field_validator("application")
    @classmethod
    def _application(cls, value: str) -> str:
        namespace, slash, name = value.strip().rpartition("/")
        parts = [name, namespace] if slash else [name]
        if not all(_DNS_NAME.match(part) for part in parts):
            raise ValueError(f"give 'namespace/name' or 'name' of a routemap (got {value!r})")
        return value.strip()

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        value = value.strip()
        address = _HOST_PORT.fullmatch(value)
        # Iter8 v0.14 took the A/B/n service's address, host:port. That port served gRPC (the chart's
        # default, iter8-abn:50051, as the A/B/n port here), where no HTTP is served: refused below.
        if address and int(address["port"]) != ABN_GRPC_PORT:
            if not 0 < int(address["port"]) < 65536:
                raise ValueError(f"{value!r}: the port must be 1 to 65535")
            value = f"http://{value}"
        parts = urllib.parse.urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
            # Iter8 v0.14's chart default was the gRPC address iter8-abn:50051; say what is wanted now.
            raise ValueError(f"give the controller's HTTP URL, such as {DEFAULT_ENDPOINT} (got {value!r})")
        return value.strip().rstrip("/")

    @field_validator("metrics")
    @classmethod
    def _metrics(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not all(name.strip() for name in value):
            raise ValueError("metric names cannot be empty")
        return value

    @property
    def namespace_and_name(self) -> tuple[str, str]:
        """The application's namespace and name; a bare name is in ``default``, as the controller
        reads it."""
        namespace, slash, name = self.application.rpartition("/")
        return (namespace if slash else "default"), name


class BadAnswer(Exception):
    """The controller's answer is not the documented ``/abnValues`` JSON; the message says where."""


#: metric -> version number -> values
Values = dict[str, dict[int, list[float]]]


def parse_values(document: Any, over: str) -> Values:
    """The ``over`` values (``users`` or ``transactions``) of every metric and version in an
    ``/abnValues`` answer.

    :raises BadAnswer: naming the first thing that does not fit.
    """
    if not isinstance(document, dict) or not isinstance(document.get("metrics"), dict):
        raise BadAnswer("expected an object with a 'metrics' object")
    values: Values = {}
    for metric, per_version in document["metrics"].items():
        if not isinstance(per_version, dict):
            raise BadAnswer(f"metrics.{metric}: expected an object of versions")
        values[metric] = {}
        for key, data in per_version.items():
            where = f"metrics.{metric}.{key}"
            if not (key.isascii() and key.isdigit()):
                raise BadAnswer(f"{where}: {key!r} is not a version number")
            if int(key) >= MAX_VERSIONS:
                raise BadAnswer(f"{where}: version numbers stop at {MAX_VERSIONS - 1}")
            if not isinstance(data, dict) or not isinstance(data.get(over), list):
                raise BadAnswer(f"{where}: expected an object with a '{over}' list")
            numbers = []
            for i, item in enumerate(data[over]):
                if isinstance(item, bool) or not isinstance(item, int | float) or not math.isfinite(item):
                    raise BadAnswer(f"{where}.{over}[{i}]: {item!r} is not a finite number")
                numbers.append(float(item))
            values[metric][int(key)] = numbers
    return values


class AbnMetricsTask(Task[AbnMetricsInputs]):
    """Read the A/B/n business metrics of an application, per version, from the controller."""

    name = "abnmetrics"
    aliases = ("abn-metrics",)
    Inputs = AbnMetricsInputs

    def kube_access(self) -> list[KubeAccess]:
        return kube_access(list(filter(None, [self.inputs.token_from])))

    async def run(self, ctx: TaskContext) -> None:
        inputs = self.inputs
        namespace, app = inputs.namespace_and_name
        application = f"{namespace}/{app}"
        headers = {}
        if inputs.token_from is not None:
            token = await asyncio.to_thread(
                resolve, inputs.token_from, "tokenFrom", ctx.kube_options, Redactor()
            )
            headers["Authorization"] = f"Bearer {token}"
        document = await self._fetch(ctx, namespace, app, headers)
        try:
            data = parse_values(document, inputs.over)
        except BadAnswer as exc:
            raise TaskError(f"{self._source(application)}: unexpected answer: {exc}") from None
        sampled = _sampled(document, inputs.over, data)
        if sampled:
            ctx.details["sampled"] = sampled
            ctx.logger.warning(
                "the controller sent the latest values only (%s)",
                ", ".join(f"{s['metric']} v{s['version']}: {s['kept']} of {s['of']}" for s in sampled[:5]),
            )

        missing: list[dict[str, Any]] = []
        if inputs.metrics is not None:
            for metric in inputs.metrics:
                if metric not in data:
                    reason = f"the controller has no values of {metric!r} for application {application}"
                    missing.append({"metric": f"{PREFIX}/{metric}", "reason": reason})
                    ctx.logger.warning("%s/%s: missing: %s", PREFIX, metric, reason)
            data = {m: data[m] for m in inputs.metrics if m in data}

        seen = {version for per_version in data.values() for version in per_version}
        existing = ctx.result.insights.num_versions if ctx.result.insights is not None else 0
        num_versions = inputs.versions or max(1 + max(seen, default=-1), existing, 1)
        ignored = sorted(v for v in seen if v >= num_versions)
        if ignored:
            ctx.logger.warning(
                "versions: %d asked for; ignoring the values of version(s) %s",
                num_versions,
                ", ".join(map(str, ignored)),
            )
            ctx.details["ignoredVersions"] = ignored
        insights = ctx.insights
        if insights.num_versions < num_versions:
            insights.num_versions = num_versions

        observations: dict[str, list[int]] = {}
        for metric in sorted(data):
            try:
                counts = _record(insights, metric, data[metric], num_versions, inputs.over)
            except ValueError as exc:  # another task registered the same name with another type
                raise TaskError(str(exc)) from None
            observations[f"{PREFIX}/{metric}"] = counts
        ctx.details.update(application=application, over=inputs.over, observations=observations)
        if missing:
            ctx.details["missing"] = missing
        if not data:
            ctx.log(f"A/B/n metrics of {application}: none recorded yet")
        else:
            ctx.log(f"A/B/n metrics of {application}: {len(data)} metric(s) over {inputs.over}")

    def _source(self, application: str) -> str:
        return f"{_where(self.inputs.endpoint)}{VALUES_PATH} (application {application})"

    async def _fetch(self, ctx: TaskContext, namespace: str, app: str, headers: dict[str, str]) -> Any:
        """The decoded JSON of ``/abnValues`` for the application."""
        import httpx

        source = self._source(f"{namespace}/{app}")
        url = f"{self.inputs.endpoint}{VALUES_PATH}"
        try:
            async with ctx.http_client(timeout=self.inputs.timeout) as client:
                response = await client.get(
                    url, params={"namespace": namespace, "application": app}, headers=headers
                )
        except httpx.TimeoutException:
            raise TaskError(f"{source}: no answer within {format_duration(self.inputs.timeout)}") from None
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise TaskError(f"{source}: cannot reach the controller: {_first_line(exc)}") from None
        if response.status_code == 200:
            try:
                return response.json()
            except ValueError:
                raise TaskError(f"{source}: unexpected answer: not JSON") from None
        error = _error_text(response)
        if response.status_code == 404:
            if error is None:
                # Not the controller's JSON: something else answers there, or a version without A/B/n.
                raise TaskError(f"{source}: HTTP 404: no A/B/n values endpoint there")
            raise TaskError(f"{source}: unknown application: {error}")
        detail = f": {error}" if error else ""
        raise TaskError(f"{source}: HTTP {response.status_code}{detail}")


def _sampled(document: dict[str, Any], over: str, data: Values) -> list[dict[str, Any]]:
    """Where the answer's ``count`` says the controller had more values than it sent."""
    out = []
    for metric, per_version in sorted(data.items()):
        for version, values in sorted(per_version.items()):
            count = document["metrics"][metric][str(version)].get("count")
            total = count.get(over) if isinstance(count, dict) else None
            if isinstance(total, int) and not isinstance(total, bool) and total > len(values):
                out.append(
                    {"metric": f"{PREFIX}/{metric}", "version": version, "kept": len(values), "of": total}
                )
    return out


def _record(
    insights: Insights, metric: str, per_version: dict[int, list[float]], versions: int, over: str
) -> list[int]:
    """Record the sample and its statistics for every version; the number of values of each."""
    name = f"{PREFIX}/{metric}"
    unit = "user" if over == "users" else "transaction"
    insights.register_metric(name, MetricInfo(description=f"{metric} per {unit} (A/B/n)", type="Sample"))
    for stat in STATISTICS:
        insights.register_metric(
            f"{name}/{stat}", MetricInfo(description=f"{stat} of {metric} per {unit} (A/B/n)", type="Gauge")
        )
    counts = []
    for version in range(versions):
        values = per_version.get(version, [])
        _replace_sample(insights, version, name, values)
        samples = st.Samples.of(values)
        scalars = {"count": float(samples.n)}
        if samples.n:
            scalars.update(mean=samples.mean(), min=min(values), max=max(values))
        if samples.n >= 2:
            scalars["stddev"] = samples.stddev()
        for stat, value in scalars.items():
            insights.add_value(version, f"{name}/{stat}", value)
        counts.append(samples.n)
    return counts


def _replace_sample(insights: Insights, version: int, name: str, values: list[float]) -> None:
    while len(insights.non_hist_metric_values) < insights.num_versions:
        insights.non_hist_metric_values.append({})
    recorded = insights.non_hist_metric_values[version]
    if values:
        recorded[name] = list(values)
    else:
        recorded.pop(name, None)


def _where(url: str) -> str:
    """The endpoint for messages: scheme, host, port and path, never credentials."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}"


def _error_text(response: Any) -> str | None:
    """The controller's ``{"error": ...}`` text, on one line, if it sent one."""
    try:
        document = response.json()
    except ValueError:
        return None
    if isinstance(document, dict) and isinstance(document.get("error"), str):
        return _first_line(document["error"])[:200]
    return None


def _first_line(text: object) -> str:
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[0] if lines else type(text).__name__
