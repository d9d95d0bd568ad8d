"""The ``notify`` task and its presets ``slack`` and ``github``: tell another system how the
experiment is going, through a webhook.

``notify`` (Iter8's inputs, plus payload templates inline or from a file, auth, timeout and retries)::

    url: https://hooks.example.com/iter8       # or urlFrom: {env: HOOK_URL} when the URL is a secret
    method: POST                               # default POST with a payload, GET without
    params: {source: iter8}                    # query parameters
    headers: {X-Team: checkout}
    payloadTemplate: '{"status": {{ summary.status | tojson }}}'   # or payloadTemplateFile / URL
    auth: {bearerToken: {env: HOOK_TOKEN}}     # or basic; from the environment or a Secret
    timeout: 10s                               # per attempt
    retries: 2                                 # more attempts after a connection error, 429 or 5xx
    backoff: 1s                                # before the first retry; doubles each time
    softFailure: false                         # true: a failed notification only logs a warning
    templateEngine: go                         # go, jinja2 or auto (default: detected)

The payload template is Jinja2 or Go's text/template (``templateEngine``, else detected: see
``docs/templates.md``), rendered in a sandbox. A Go template gets what Iter8's did: ``.Report``
with ``TimeStamp``, ``Completed``, ``NoTaskFailures``, ``NumTasks``, ``NumCompletedTasks``,
``NumLoops`` and ``Experiment`` (``.Spec``: one entry per task started so far, ``.Result``: the
experiment's result as stored), written by the JSON functions with Iter8's JSON names
(``{{ .Report | toPrettyJson }}``). A Jinja2 template gets ``summary`` (the report's summary:
status, failure, task counts, times, plus ``name``, ``versions``, ``slosSatisfied`` and
``noRegression``), ``report`` (the whole report document, see ``docs/report-json.md``) and Iter8's
``Summary`` (``timeStamp``, ``completed``, ``noTaskFailures``, ``numTasks``, ``numCompletedTasks``,
``numLoops``, ``experiment``). The task counts are those of the entries started so far: a
notification is sent from inside the run.

``slack``: ``url`` (or ``urlFrom``) of an incoming webhook; default payload ``{"text": ...}`` with a
one-line summary; ``softFailure`` defaults to true; ``method`` may only be ``POST`` (Iter8's Slack
tutorial set it, and its chart always sent POST). ``github``: ``owner``, ``repo``, ``token`` (a
string as in Iter8, or ``{env: ...}`` / ``{secret: ...}``), ``eventType`` (default ``iter8``); sends a
``repository_dispatch`` with ``client_payload`` = the summary; ``softFailure`` defaults to true.

Tokens, credentials and secret URLs are registered for redaction: they never appear in logs, the
task record, errors or reports.
"""

from __future__ import annotations

import asyncio
import json
import urllib.parse
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from kubectl_iter8 import gotemplate
from kubectl_iter8.errors import TaskError
from kubectl_iter8.task import Duration, KubeAccess, Task, TaskContext, TaskInputs

from .credentials import (
    AuthInput,
    Redactor,
    SecretValue,
    auth_headers,
    kube_access,
    resolve,
    split_query,
)

DEFAULT_TIMEOUT = 10.0
DEFAULT_RETRIES = 2
DEFAULT_BACKOFF = 1.0
#: The longest wait between attempts, whatever the back-off or Retry-After say.
MAX_DELAY = 30.0
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})

SLACK_PAYLOAD = (
    '{"text": {{ ("Iter8 experiment " ~ (summary.name or "(unnamed)") ~ ": " ~ summary.status'
    ' ~ "; " ~ summary.numCompletedTasks ~ " tasks completed"'
    ' ~ ("; SLOs satisfied" if summary.slosSatisfied else ("; SLOs not satisfied"'
    ' if summary.slosSatisfied is not none else ""))'
    ' ~ ("; failure: " ~ summary.failureMessage if summary.failureMessage else "")) | tojson }}}'
)
GITHUB_PAYLOAD = '{"event_type": {{ eventType | tojson }}, "client_payload": {{ summary | tojson }}}'


class WebhookOptions(TaskInputs):
    """What every webhook task takes."""

    payload_template: str | None = Field(default=None, alias="payloadTemplate")
    payload_template_file: str | None = Field(default=None, alias="payloadTemplateFile")
    payload_template_url: str | None = Field(default=None, alias="payloadTemplateURL", pattern=r"^https?://")
    timeout: Duration = Field(default=DEFAULT_TIMEOUT, gt=0)
    retries: int = Field(default=DEFAULT_RETRIES, ge=0, le=10)
    backoff: Duration = Field(default=DEFAULT_BACKOFF, ge=0)
    soft_failure: bool = Field(default=False, alias="softFailure")
    template_engine: Literal["go", "jinja2", "auto"] = Field(default="auto", alias="templateEngine")

    @model_validator(mode="after")
    def _one_template(self) -> WebhookOptions:
        given = [self.payload_template, self.payload_template_file, self.payload_template_url]
        if sum(x is not None for x in given) > 1:
            raise ValueError(
                "give at most one of payloadTemplate, payloadTemplateFile and payloadTemplateURL"
            )
        return self


class NotifyInputs(WebhookOptions):
    url: str | None = Field(default=None, pattern=r"^https?://")
    url_from: SecretValue | None = Field(default=None, alias="urlFrom")
    method: Literal["GET", "POST", "PUT", "PATCH"] | None = None
    params: dict[str, str | int | float | bool] = Field(default_factory=dict)
    headers: dict[str, str] = Field(default_factory=dict)
    auth: AuthInput | None = None

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_url(self) -> NotifyInputs:
        if (self.url is None) == (self.url_from is None):
            raise ValueError("give exactly one of 'url' or 'urlFrom' (a secret URL from {env} or {secret})")
        return self


class SlackInputs(WebhookOptions):
    url: str | None = Field(default=None, pattern=r"^https?://")
    url_from: SecretValue | None = Field(default=None, alias="urlFrom")
    soft_failure: bool = Field(default=True, alias="softFailure")
    #: Iter8's Slack tutorial sets ``slack.method=POST``; its chart always sent POST whatever was given.
    method: Literal["POST"] | None = None

    @field_validator("method", mode="before")
    @classmethod
    def _post_only(cls, value: Any) -> Any:
        if isinstance(value, str) and value.upper() == "POST":
            return "POST"
        raise ValueError(f"a Slack webhook takes POST only (got {str(value)[:40]!r})")

    @model_validator(mode="after")
    def _one_url(self) -> SlackInputs:
        if (self.url is None) == (self.url_from is None):
            raise ValueError(
                "give exactly one of 'url' or 'urlFrom' (the webhook URL from {env} or {secret})"
            )
        return self


class GithubInputs(WebhookOptions):
    owner: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    repo: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    token: SecretValue | str
    event_type: str = Field(default="iter8", alias="eventType", min_length=1)
    #: The GitHub API's address (GitHub Enterprise, or a test server).
    api_url: str = Field(default="https://api.github.com", alias="apiURL", pattern=r"^https?://")
    soft_failure: bool = Field(default=True, alias="softFailure")

    @field_validator("token")
    @classmethod
    def _token(cls, value: SecretValue | str) -> SecretValue | str:
        if isinstance(value, str) and not value.strip():
            raise ValueError("the token is empty")
        return value


class Webhook:
    """One notification, resolved: everything needed to send it, and what to hide."""

    def __init__(self, method: str, url: str, *, secret_url: bool, redact: Redactor) -> None:
        self.method = method
        self.url = url
        self.secret_url = secret_url
        self.params: list[tuple[str, str | int | float | bool | None]] = []
        self.headers: dict[str, str] = {}
        self.payload: str | None = None
        self.redact = redact

    def where(self) -> str:
        """The URL for messages: scheme, host and path (the path hidden when the URL is a secret)."""
        parts = urllib.parse.urlsplit(self.url)
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        path = "/***" if self.secret_url else parts.path
        return self.redact(f"{parts.scheme}://{host}{path}")


def _summary(ctx: TaskContext) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(summary, report, Iter8's Summary) of the experiment so far, for payload templates."""
    from kubectl_iter8.experiment import Experiment, Metadata
    from kubectl_iter8.report import build_report

    known = {"name", "namespace", "labels"}
    metadata = Metadata.model_validate({k: v for k, v in dict(ctx.metadata).items() if k in known and v})
    experiment = Experiment(metadata=metadata, spec=[{} for _ in ctx.result.tasks], result=ctx.result)
    report = build_report(experiment)
    summary = dict(report["summary"])
    summary["status"] = "failed" if ctx.result.failure else "running"
    summary.update(
        name=metadata.name,
        namespace=metadata.namespace,
        versions=report["versions"],
        slosSatisfied=report["slos"]["satisfied"],
        noRegression=report["comparisons"]["noRegression"],
    )
    import datetime as dt

    iter8 = {
        "timeStamp": dt.datetime.now(dt.UTC).isoformat(),
        "completed": summary["completed"],
        "noTaskFailures": not ctx.result.failure,
        "numTasks": summary["numTasks"],
        "numCompletedTasks": summary["numCompletedTasks"],
        "numLoops": summary["numLoops"],
        "experiment": {"name": metadata.name, "namespace": metadata.namespace},
    }
    return summary, report, iter8


def _go_report(ctx: TaskContext, iter8: dict[str, Any]) -> gotemplate.GoStruct:
    """Iter8's ``.Report`` (base.Report): Go field names for templates, JSON names for toJson."""
    result = ctx.result.dump()
    if isinstance(result.get("insights"), dict):
        result["insights"] = gotemplate.GoStruct("*base.Insights", result["insights"])
    experiment = gotemplate.GoStruct(
        "*base.Experiment",
        {
            "spec": [{"task": record.task} for record in ctx.result.tasks],
            "result": gotemplate.GoStruct("*base.ExperimentResult", result),
        },
    )
    fields = {k: v for k, v in iter8.items() if k != "experiment"}
    return gotemplate.GoStruct("base.Report", {**fields, "experiment": experiment})


def render_payload(
    template: str, context: dict[str, Any], engine: gotemplate.Engine = "jinja2", data: Any = None
) -> str:
    """Render a payload template (Jinja2 over ``context``, Go over ``data``); errors are one line."""
    if engine == "go":
        try:
            return gotemplate.render(template, data, name="payload")
        except gotemplate.TemplateError as exc:
            raise TaskError(f"payload template: {exc}") from None
    return _render_jinja2(template, context)


def _render_jinja2(template: str, context: dict[str, Any]) -> str:
    import jinja2
    from jinja2.exceptions import SecurityError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False)
    try:
        return env.from_string(template).render(**context)
    except jinja2.TemplateSyntaxError as exc:
        raise TaskError(f"payload template line {exc.lineno}: {exc.message}") from None
    except (jinja2.TemplateError, SecurityError, ValueError, TypeError) as exc:
        raise TaskError(f"payload template: {exc}") from None


async def _template(options: WebhookOptions, default: str | None, ctx: TaskContext) -> str | None:
    if options.payload_template is not None:
        return options.payload_template
    if options.payload_template_file is not None:
        path = Path(options.payload_template_file).expanduser()
        try:
            return await asyncio.to_thread(path.read_text, encoding="utf-8")
        except OSError as exc:
            raise TaskError(f"payloadTemplateFile: cannot read {path}: {exc.strerror or exc}") from None
    if options.payload_template_url is not None:
        import httpx

        try:
            async with ctx.http_client(timeout=options.timeout, follow_redirects=True) as client:
                response = await client.get(options.payload_template_url)
        except httpx.HTTPError as exc:
            raise TaskError(
                f"payloadTemplateURL: cannot fetch it: {str(exc) or type(exc).__name__}"
            ) from None
        if response.status_code != 200:
            raise TaskError(f"payloadTemplateURL: cannot fetch it: HTTP {response.status_code}")
        return str(response.text)
    return default


async def send(hook: Webhook, options: WebhookOptions, ctx: TaskContext) -> None:
    """Send ``hook`` with retries and back-off; raise (or, with softFailure, log) when it fails."""
    import httpx

    redact = hook.redact
    attempts = 1 + options.retries
    record: dict[str, Any] = {"method": hook.method, "url": hook.where(), "attempts": 0}
    ctx.details["notification"] = record
    failure = ""
    headers = dict(hook.headers)
    if hook.payload is not None and not any(k.lower() == "content-type" for k in headers):
        headers["Content-Type"] = (
            "application/json" if _is_json(hook.payload) else "text/plain; charset=utf-8"
        )
    # httpx replaces a URL's query with ``params`` (even empty ones): a webhook authenticated by a
    # query token would lose it, so the URL's own query is sent first, then the task's params.
    url, query = split_query(hook.url)
    params = [*query, *hook.params]
    async with ctx.http_client(timeout=options.timeout) as client:
        for attempt in range(attempts):
            record["attempts"] = attempt + 1
            delay = options.backoff * 2**attempt
            try:
                response = await client.request(
                    hook.method, url, params=params, headers=headers, content=hook.payload
                )
            except httpx.HTTPError as exc:
                failure = f"{hook.method} {hook.where()} failed: {redact(str(exc) or type(exc).__name__)}"
            else:
                record["status"] = response.status_code
                if 200 <= response.status_code < 300:
                    ctx.log(f"notification sent: {hook.method} {hook.where()}: HTTP {response.status_code}")
                    record.pop("error", None)
                    return
                failure = f"{hook.method} {hook.where()}: HTTP {response.status_code}"
                if response.status_code not in RETRY_STATUSES:
                    record["error"] = failure
                    break
                delay = max(delay, _retry_after(response.headers.get("Retry-After")))
            record["error"] = failure
            if attempt + 1 < attempts:
                ctx.logger.info("%s; retrying in %.1fs", failure, min(delay, MAX_DELAY))
                await asyncio.sleep(min(delay, MAX_DELAY))
    message = f"notification failed after {record['attempts']} attempt(s): {failure}"
    if options.soft_failure:
        record["softFailure"] = True
        ctx.logger.warning("%s (softFailure: going on)", message)
        return
    raise TaskError(message)


def _retry_after(value: str | None) -> float:
    try:
        return float(value) if value else 0.0
    except ValueError:
        return 0.0


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


async def _url(url: str | None, url_from: SecretValue | None, ctx: TaskContext, redact: Redactor) -> str:
    if url is None:
        assert url_from is not None
        url = await asyncio.to_thread(resolve, url_from, "urlFrom", ctx.kube_options, redact)
        if not url.startswith(("http://", "https://")):
            raise TaskError(f"urlFrom: the {url_from.describe()} does not hold an http(s) URL")
        path = urllib.parse.urlsplit(url).path
        if path:
            redact.add(path)
    # A webhook's query often carries its token (``?access_token=``), even in a plain ``url``.
    query = urllib.parse.urlsplit(url).query
    if query:
        redact.add(query)
        for _, value in split_query(url)[1]:
            if len(value) >= 4:
                redact.add(value)
    return url


def _context(ctx: TaskContext, **more: Any) -> dict[str, Any]:
    summary, report, iter8 = _summary(ctx)
    return {"summary": summary, "report": report, "Summary": iter8, "Report": iter8, **more}


def _payload(template: str, options: WebhookOptions, ctx: TaskContext, **more: Any) -> str:
    """The payload: ``template`` rendered by its engine (declared or detected)."""
    # The presets' own default payloads are Jinja2 whatever the user's templates are written in.
    if template in (SLACK_PAYLOAD, GITHUB_PAYLOAD):
        engine: gotemplate.Engine = "jinja2"
    else:
        engine = gotemplate.choose_engine(template, options.template_engine)
    context = _context(ctx, **more)
    data = {"Report": _go_report(ctx, context["Report"])} if engine == "go" else None
    return render_payload(template, context, engine, data)


def _iter8_values(values: Any, name: str) -> list[dict[str, Any]]:
    """Iter8's chart presets: ``--set slack.url=...`` (and ``slack.if``) give one entry."""
    entry: dict[str, Any] = {"task": name}
    if isinstance(values, dict):
        values = dict(values)
        if "if" in values:
            entry["if"] = values.pop("if")
    if values:
        entry["with"] = values
    return [entry]


class NotifyTask(Task[NotifyInputs]):
    """Call a webhook with a payload rendered from the experiment's summary."""

    name = "notify"
    Inputs = NotifyInputs

    def kube_access(self) -> list[KubeAccess]:
        refs = [*(self.inputs.auth.refs() if self.inputs.auth else []), *filter(None, [self.inputs.url_from])]
        return kube_access(refs)

    async def run(self, ctx: TaskContext) -> None:
        inputs = self.inputs
        redact = Redactor()
        url = await _url(inputs.url, inputs.url_from, ctx, redact)
        template = await _template(inputs, None, ctx)
        hook = Webhook(
            inputs.method or ("POST" if template is not None else "GET"),
            url,
            secret_url=inputs.url_from is not None,
            redact=redact,
        )
        hook.params = [(k, _text(v)) for k, v in inputs.params.items()]
        hook.headers = dict(inputs.headers)
        hook.headers.update(
            await asyncio.to_thread(auth_headers, inputs.auth, "auth", ctx.kube_options, redact)
        )
        if template is not None:
            hook.payload = _payload(template, inputs, ctx)
        await send(hook, inputs, ctx)


class SlackTask(Task[SlackInputs]):
    """Iter8's ``slack`` preset: a Slack incoming webhook with a one-line summary."""

    name = "slack"
    Inputs = SlackInputs

    @classmethod
    def from_values(cls, values: Any) -> list[dict[str, Any]]:
        return _iter8_values(values, cls.name)

    def kube_access(self) -> list[KubeAccess]:
        return kube_access([self.inputs.url_from] if self.inputs.url_from else [])

    async def run(self, ctx: TaskContext) -> None:
        redact = Redactor()
        url = await _url(self.inputs.url, self.inputs.url_from, ctx, redact)
        template = await _template(self.inputs, SLACK_PAYLOAD, ctx)
        assert template is not None
        hook = Webhook("POST", url, secret_url=True, redact=redact)
        hook.payload = _payload(template, self.inputs, ctx)
        await send(hook, self.inputs, ctx)


class GithubTask(Task[GithubInputs]):
    """Iter8's ``github`` preset: a ``repository_dispatch`` event carrying the summary."""

    name = "github"
    Inputs = GithubInputs
    _ACCEPT: ClassVar[str] = "application/vnd.github+json"

    @classmethod
    def from_values(cls, values: Any) -> list[dict[str, Any]]:
        return _iter8_values(values, cls.name)

    def kube_access(self) -> list[KubeAccess]:
        token = self.inputs.token
        return kube_access([token] if isinstance(token, SecretValue) else [])

    async def run(self, ctx: TaskContext) -> None:
        inputs = self.inputs
        redact = Redactor()
        token = inputs.token
        if isinstance(token, SecretValue):
            secret = await asyncio.to_thread(resolve, token, "token", ctx.kube_options, redact)
        else:
            secret = redact.add(token.strip())
        url = f"{inputs.api_url.rstrip('/')}/repos/{inputs.owner}/{inputs.repo}/dispatches"
        hook = Webhook("POST", url, secret_url=False, redact=redact)
        hook.headers = {"Accept": self._ACCEPT, "Authorization": f"token {secret}"}
        template = await _template(inputs, GITHUB_PAYLOAD, ctx)
        assert template is not None
        hook.payload = _payload(template, inputs, ctx, eventType=inputs.event_type)
        await send(hook, inputs, ctx)


def _text(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
