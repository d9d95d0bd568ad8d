"""Provider specs: where a provider's template comes from, how it is rendered, and what it must say.

A provider spec is a template of YAML, in Jinja2 or in Go's text/template (Iter8's own templates,
unmodified): the task's ``templateEngine`` says which, else it is detected (``docs/templates.md``).
Both render in a sandbox (no attribute access to Python internals, no file or network access,
bounded time and output).

A Go template gets what Iter8 gave it: the merged values at the top (``.labels``,
``.istioPromURL``, ``.latencyPercentiles``, ...) plus ``.elapsedTimeSeconds``, with sprig's
functions and ``toYaml``. A Jinja2 template gets:

* ``values``: the task's ``values`` deep-merged with this version's ``versionValues`` (the version
  wins), as Iter8 merged them;
* ``versionValues``: this version's own map (empty when none is given);
* ``version``: the version's index;
* ``elapsedTimeSeconds``: whole seconds since ``values.startingTime`` (RFC 3339) or else the
  experiment's start, at least 1 (a Prometheus range cannot be empty).

Filters beyond Jinja's own: ``prom_matchers`` (a map of labels -> ``a="x",b="y"``, values quoted as
PromQL strings) and ``toYaml``; ``fail(message)`` stops rendering with that message.

The rendered YAML (Iter8's ProviderSpec, extended with provider-level ``params``)::

    url: http://prometheus:9090/api/v1/query
    provider: istio-prom             # Iter8's templates name themselves; ignored
    method: GET                      # or POST
    headers: {X-Scope-OrgID: team-a}
    params: [{name: timeout, value: 10s}]      # sent with every metric (new)
    metrics:
    - name: request-count            # recorded as <provider>/request-count
      type: counter                  # counter or gauge
      units: msec                    # optional
      description: ...
      params: [{name: query, value: "sum(...)"}]   # or a {name: value} map
      body: '{"query": "..."}'       # optional request body (JSON)
      jqExpression: .data.result[0].value[1] | tonumber
"""

from __future__ import annotations

import datetime as dt
import importlib.resources
import json
import math
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from kubectl_iter8 import boundedyaml, gotemplate
from kubectl_iter8.validation import validation_problems

BUILTIN_PROVIDERS = ("istio-prom", "prometheus")
#: Iter8's published template URLs that name a built-in provider here.
_ITER8_TEMPLATE = re.compile(
    r"^https://raw\.githubusercontent\.com/iter8-tools/.*/custommetrics/([a-z-]+)\.tpl$"
)
METRIC_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


class SpecError(Exception):
    """A provider spec that cannot be fetched, rendered or understood; the message is one line."""


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


def _params(value: Any) -> Any:
    """Parameters as ``[{name, value}]`` (Iter8) or as a ``{name: value}`` map."""
    if isinstance(value, dict):
        return [{"name": k, "value": v} for k, v in value.items()]
    return value


class Param(_Spec):
    name: str = Field(min_length=1)
    value: str | int | float | bool

    def text(self) -> str:
        if isinstance(self.value, bool):
            return "true" if self.value else "false"
        return str(self.value)


class MetricSpec(_Spec):
    name: str
    description: str = ""
    type: Literal["counter", "gauge"] = "gauge"
    units: str | None = None
    params: list[Param] = Field(default_factory=list)
    body: str | None = None
    jq_expression: str = Field(alias="jqExpression", min_length=1)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not METRIC_NAME.match(value):
            raise ValueError(f"metric name {value!r}: use letters, digits, '.', '_' and '-'")
        return value

    @field_validator("type", mode="before")
    @classmethod
    def _type(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @field_validator("params", mode="before")
    @classmethod
    def _params(cls, value: Any) -> Any:
        return _params(value)

    @field_validator("body", mode="before")
    @classmethod
    def _body(cls, value: Any) -> Any:
        return json.dumps(value) if isinstance(value, dict | list) else value


class ProviderSpec(_Spec):
    url: str = Field(pattern=r"^https?://")
    #: Iter8's templates say which provider they are; the task's own name for it is used instead.
    provider: str | None = None
    method: Literal["GET", "POST"] = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    params: list[Param] = Field(default_factory=list)
    metrics: list[MetricSpec] = Field(min_length=1)

    @field_validator("method", mode="before")
    @classmethod
    def _method(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("params", mode="before")
    @classmethod
    def _params(cls, value: Any) -> Any:
        return _params(value)


def builtin_name(source: str) -> str | None:
    """The built-in provider a source names: ``istio-prom``, ``builtin:istio-prom``, or Iter8's URL of it."""
    name = source.removeprefix("builtin:")
    if name in BUILTIN_PROVIDERS:
        return name
    match = _ITER8_TEMPLATE.match(source)
    if match and match.group(1) in BUILTIN_PROVIDERS:
        return match.group(1)
    return None


def builtin_template(name: str) -> str:
    resource = importlib.resources.files(__package__).joinpath("providers", f"{name}.yaml")
    return resource.read_text(encoding="utf-8")


def read_file(source: str) -> str:
    path = Path(source.removeprefix("file://")).expanduser()
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"cannot read {path}: {exc.strerror or exc}") from None


# --- rendering ------------------------------------------------------------------------------------


def _prom_string(value: Any) -> str:
    if isinstance(value, dict | list) or value is None:
        raise ValueError(f"label values must be scalars, got {value!r}")
    text = str(value).lower() if isinstance(value, bool) else str(value)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def prom_matchers(labels: Any) -> str:
    """``{app: x, version: v1}`` -> ``app="x",version="v1"`` (sorted, PromQL-quoted)."""
    if not isinstance(labels, dict):
        raise TypeError(f"labels must be a map of label names to values, got {labels!r}")
    parts = []
    for key in sorted(labels):
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", str(key)):
            raise ValueError(f"{key!r} is not a Prometheus label name")
        parts.append(f"{key}={_prom_string(labels[key])}")
    return ",".join(parts)


class _Fail(Exception):
    pass


def _fail(message: str) -> str:
    raise _Fail(message)


def _to_yaml(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True, sort_keys=False).strip()


def render(template: str, context: dict[str, Any]) -> str:
    """Render a provider template in Jinja2's sandbox; errors become one-line :class:`SpecError`."""
    import jinja2
    from jinja2.exceptions import SecurityError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False)
    env.filters["prom_matchers"] = prom_matchers
    env.filters["toYaml"] = _to_yaml
    env.globals["fail"] = _fail
    try:
        return env.from_string(template).render(**context)
    except _Fail as exc:
        raise SpecError(str(exc)) from None
    except jinja2.TemplateSyntaxError as exc:
        raise SpecError(f"template line {exc.lineno}: {exc.message}") from None
    except (jinja2.TemplateError, SecurityError, ValueError, TypeError) as exc:
        raise SpecError(f"template: {exc}") from None


def render_go(template: str, data: dict[str, Any], name: str) -> str:
    """Render a Go provider template over Iter8's data; errors become one-line :class:`SpecError`."""
    try:
        return gotemplate.render(template, data, name=name)
    except gotemplate.TemplateError as exc:
        raise SpecError(str(exc)) from None


def go_data(values: dict[str, Any], elapsed: int) -> dict[str, Any]:
    """What Iter8 executed its provider templates over: the merged values and elapsedTimeSeconds."""
    return {**values, "elapsedTimeSeconds": elapsed}


def render_spec(
    template: str,
    engine: gotemplate.Engine,
    *,
    name: str,
    values: dict[str, Any],
    own: dict[str, Any],
    version: int,
    elapsed: int,
) -> str:
    """Render a provider template with ``engine``, giving it the data that engine's templates expect."""
    if engine == "go":
        return render_go(template, go_data(values, elapsed), name)
    context = {"values": values, "versionValues": own, "version": version, "elapsedTimeSeconds": elapsed}
    return render(template, context)


def parse(text: str) -> ProviderSpec:
    """The rendered YAML as a :class:`ProviderSpec`; problems name the field."""
    try:
        doc = boundedyaml.load(text, boundedyaml.INPUT_LIMITS)
    except boundedyaml.BoundedYAMLError as exc:
        raise SpecError(f"the rendered spec is not YAML: {exc}") from None
    if not isinstance(doc, dict):
        raise SpecError("the rendered spec is not a mapping with url and metrics")
    try:
        return ProviderSpec.model_validate(doc)
    except ValidationError as exc:
        raise SpecError("; ".join(validation_problems(exc))) from None


def elapsed_seconds(values: dict[str, Any], start: dt.datetime | None, now: dt.datetime) -> int:
    """Whole seconds since ``values.startingTime`` (RFC 3339) or ``start``; at least 1."""
    starting = values.get("startingTime")
    if starting is not None:
        if isinstance(starting, dt.datetime):
            begin = starting
        else:
            try:
                begin = dt.datetime.fromisoformat(str(starting).replace("Z", "+00:00"))
            except ValueError:
                raise SpecError(f"values.startingTime: {starting!r} is not an RFC 3339 time") from None
        if begin.tzinfo is None:
            begin = begin.replace(tzinfo=dt.UTC)
    elif start is not None:
        begin = start if start.tzinfo else start.replace(tzinfo=dt.UTC)
    else:
        begin = now
    return max(1, math.floor((now - begin).total_seconds()))
