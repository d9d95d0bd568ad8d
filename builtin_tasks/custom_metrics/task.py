"""The ``custom-metrics`` task (Iter8's ``custommetrics``): fetch metrics per version from
Prometheus or any REST/JSON source described by a provider spec (see :mod:`.spec`).

Inputs (Iter8's, plus ``auth`` and ``timeout``)::

    templates: {istio-prom: istio-prom}      # provider name -> built-in name, URL or file
    values: {...}                            # for every version
    versionValues: [{...}, {...}]            # one map per version (the number of versions)
    auth: {bearerToken: {env: PROM_TOKEN}}   # or {basic: {username, password}}; or a Secret key
    timeout: 10s                             # per HTTP request
    templateEngine: go                       # go, jinja2 or auto (default: detected per template)

For each provider and version the spec is rendered, then each metric is fetched (one HTTP request),
the JSON response goes through the metric's ``jqExpression`` (the ``jq`` library) and the first
result, a finite number, is recorded as ``<provider>/<metric>``. A metric that cannot be fetched or
extracted is recorded as missing with the reason (task record ``details.missing`` and a warning),
never as zero; the task goes on, as Iter8's did. A spec that cannot be fetched, rendered or parsed
fails the task.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import re
import urllib.parse
from typing import Any, Literal

from pydantic import Field, field_validator

from kubectl_iter8 import gotemplate
from kubectl_iter8.errors import TaskError
from kubectl_iter8.result import MetricInfo
from kubectl_iter8.task import Duration, KubeAccess, Task, TaskContext, TaskInputs
from kubectl_iter8.values import deep_merge

from ..credentials import AuthInput, Redactor, auth_headers, kube_access, split_query
from . import spec as specs

DEFAULT_TIMEOUT = 10.0
#: Iter8 sent this content type with every provider request.
CONTENT_TYPE = "application/json;charset=utf-8"


class CustomMetricsInputs(TaskInputs):
    templates: dict[str, str] = Field(min_length=1)
    values: dict[str, Any] = Field(default_factory=dict)
    version_values: list[dict[str, Any]] = Field(default_factory=list, alias="versionValues")
    auth: AuthInput | None = None
    timeout: Duration = Field(default=DEFAULT_TIMEOUT, gt=0)
    template_engine: Literal["go", "jinja2", "auto"] = Field(default="auto", alias="templateEngine")

    @field_validator("templates")
    @classmethod
    def _names(cls, value: dict[str, str]) -> dict[str, str]:
        for name, source in value.items():
            if not specs.METRIC_NAME.match(name):
                raise ValueError(f"provider name {name!r}: use letters, digits, '.', '_' and '-'")
            if not source.strip():
                raise ValueError(f"provider {name!r}: give a built-in name, a URL or a file")
        return value


class CustomMetricsTask(Task[CustomMetricsInputs]):
    """Fetch metrics for each version from Prometheus or any REST/JSON source."""

    name = "custom-metrics"
    aliases = ("custommetrics",)
    Inputs = CustomMetricsInputs

    def kube_access(self) -> list[KubeAccess]:
        return kube_access(self.inputs.auth.refs()) if self.inputs.auth else []

    async def run(self, ctx: TaskContext) -> None:
        inputs = self.inputs
        redact = Redactor()
        auth = await asyncio.to_thread(auth_headers, inputs.auth, "auth", ctx.kube_options, redact)
        num_versions = max(1, len(inputs.version_values))
        insights = ctx.insights
        if insights.num_versions < num_versions:
            insights.num_versions = num_versions
        elif insights.num_versions > num_versions and inputs.version_values:
            ctx.logger.warning(
                "versionValues has %d entries but the experiment has %d versions; fetching %d",
                num_versions,
                insights.num_versions,
                num_versions,
            )
        missing: list[dict[str, Any]] = []
        fetched = 0
        now = dt.datetime.now(dt.UTC)
        async with ctx.http_client(timeout=inputs.timeout, follow_redirects=True) as client:
            for provider, source in inputs.templates.items():
                try:
                    template = await _template(client, source)
                except specs.SpecError as exc:
                    raise TaskError(redact(f"templates.{provider}: {exc}")) from None
                engine = gotemplate.choose_engine(template, inputs.template_engine)
                for version in range(num_versions):
                    own = inputs.version_values[version] if inputs.version_values else {}
                    values = deep_merge(inputs.values, own)
                    try:
                        elapsed = specs.elapsed_seconds(values, ctx.result.start_time, now)
                        rendered = specs.render_spec(
                            template,
                            engine,
                            name=provider,
                            values=values,
                            own=own,
                            version=version,
                            elapsed=elapsed,
                        )
                        provider_spec = specs.parse(rendered)
                    except specs.SpecError as exc:
                        raise TaskError(redact(f"templates.{provider} (version {version}): {exc}")) from None
                    for metric in provider_spec.metrics:
                        full = f"{provider}/{metric.name}"
                        insights.register_metric(
                            full,
                            MetricInfo(
                                description=metric.description,
                                units=metric.units,
                                type="Counter" if metric.type == "counter" else "Gauge",
                            ),
                        )
                        value, reason = await _fetch(client, provider_spec, metric, auth)
                        if value is None:
                            reason = redact(reason)
                            missing.append({"metric": full, "version": version, "reason": reason})
                            ctx.logger.warning("%s (version %d): missing: %s", full, version, reason)
                        else:
                            insights.add_value(version, full, value)
                            fetched += 1
        ctx.details["fetched"] = fetched
        if missing:
            ctx.details["missing"] = missing
        ctx.log(f"custom metrics: {fetched} fetched, {len(missing)} missing")


async def _template(client: Any, source: str) -> str:
    """The template text of a provider source: built-in, URL or file."""
    import httpx

    name = specs.builtin_name(source)
    if name is not None:
        return specs.builtin_template(name)
    if source.startswith(("http://", "https://")):
        try:
            response = await client.get(source)
        except httpx.HTTPError as exc:
            raise specs.SpecError(f"cannot fetch {_where(source)}: {_reason(exc)}") from None
        if response.status_code != 200:
            raise specs.SpecError(f"cannot fetch {_where(source)}: HTTP {response.status_code}")
        return str(response.text)
    return await asyncio.to_thread(specs.read_file, source)


async def _fetch(
    client: Any, provider: specs.ProviderSpec, metric: specs.MetricSpec, auth: dict[str, str]
) -> tuple[float | None, str]:
    """The metric's value, or None and why it is missing."""
    import httpx
    import jq  # type: ignore[import-not-found]

    headers = {"Content-Type": CONTENT_TYPE, **provider.headers, **auth}
    # httpx replaces a URL's query with ``params``: the URL's own query goes first.
    url, query = split_query(provider.url)
    params = [*query, *((p.name, p.text()) for p in (*provider.params, *metric.params))]
    try:
        response = await client.request(
            provider.method, url, params=params, headers=headers, content=metric.body
        )
    except httpx.HTTPError as exc:
        return None, f"request to {_where(provider.url)} failed: {_reason(exc)}"
    if not 200 <= response.status_code < 300:
        detail = _error_detail(response)
        return None, f"HTTP {response.status_code} from {_where(provider.url)}{detail}"
    try:
        document = response.json()
    except ValueError:
        return None, f"the response from {_where(provider.url)} is not JSON"
    try:
        program = jq.compile(sandboxed_jq(metric.jq_expression))
    except ValueError as exc:
        return None, f"jqExpression {metric.jq_expression!r} does not compile: {_compile_error(exc)}"
    try:
        result = program.input_value(document).first()
    except StopIteration:
        return None, f"jqExpression {metric.jq_expression!r} produced no value"
    except ValueError as exc:
        return None, f"jqExpression {metric.jq_expression!r} failed: {_first_line(exc)[:200]}"
    # The result is described by its type, never echoed: it may hold anything the response held.
    if isinstance(result, bool) or not isinstance(result, int | float | str):
        return None, f"jqExpression {metric.jq_expression!r} gave {_jq_type(result)}, not a number"
    try:
        value = float(result)
    except ValueError:
        return None, f"jqExpression {metric.jq_expression!r} gave a string, not a number"
    if not math.isfinite(value):
        return None, f"the value is not a finite number ({value})"
    return value, ""


#: Put before every jqExpression, on its first line: shadows the builtins that reach outside the
#: response (``env``, ``$ENV``, ``input``, ``inputs``, module metadata), so a provider template cannot
#: copy a credential of this process into a metric, a log line or a report. ``import`` and
#: ``include`` are only valid at the very start of a program, so after this prefix they are
#: syntax errors and no module or data file is ever read.
JQ_SANDBOX = (
    "def env: {}; def input: empty; def inputs: empty; def input_filename: null;"
    ' def get_search_list: []; def modulemeta: error("modules are not available"); {} as $ENV | ('
)


def sandboxed_jq(expression: str) -> str:
    """``expression`` with no access to the environment, other inputs or modules."""
    # The newline keeps a trailing comment in the expression from commenting out the parenthesis.
    return f"{JQ_SANDBOX}{expression}\n)"


def _compile_error(exc: ValueError) -> str:
    """jq's first error line, with columns counted in the user's expression, not the sandbox's."""
    line = _first_line(exc)
    return re.sub(
        r"line 1, column (\d+)", lambda m: f"line 1, column {max(1, int(m[1]) - len(JQ_SANDBOX))}", line
    )


def _jq_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    return f"a {type(value).__name__}"


def _where(url: str) -> str:
    """A URL for messages: scheme, host and path, never its query or credentials."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}"


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return _first_line(text)


def _first_line(exc: object) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _error_detail(response: Any) -> str:
    """Prometheus' own error text, when it sent one."""
    try:
        doc = response.json()
    except ValueError:
        return ""
    if isinstance(doc, dict) and isinstance(doc.get("error"), str):
        return f": {doc['error'][:200]}"
    return ""
