"""Rollout policies: how the controller walks a candidate version to promotion on its own.

A routemap with a ``rollout`` section and two versions (the primary and one candidate) is rolled
out step by step by the controller (``controller/rollouts.py``)::

    rollout:
      steps:                       # in order; after the last, the candidate is promoted
      - weight: 10                 # the candidate's share of the traffic, in percent
      - analysis: {}               # run the analysis experiment (the defaults below) and judge it
      - weight: 50
      - pause: {duration: 2m}      # wait; or {approval: true}: wait for `kubectl iter8 release approve`
      analysis:                    # what an `analysis: {}` step runs, unless it says otherwise
        experiment: {configMap: app-analysis}   # or {inline: {spec: [...]}}, or {group: NAME}
        conditions: [completed, nofailure, slos]
        timeout: 10m
      maxFailedAnalyses: 0         # failed analyses tolerated (each retried); one more rolls back
      inconclusive: retry          # an inconclusive verdict: retry | fail | pass
      stepDeadline: 30m            # a step (waiting for readiness included) must end within this
      unavailableTolerance: 15s    # the candidate, once available, may be unavailable this long
      webhooks:                    # gates: each must answer 2xx, or the step holds
      - {name: load-ok, url: "http://gate.ops:8080/check", on: [pre-step], timeout: 5s, retries: 2}
      notify:                      # told of each transition, best-effort (never holds a step)
      - {url: "https://hooks.example.com/iter8", on: [RolloutPromoted, RolloutRolledBack]}

This module holds the policy's model and the rollout's stored state (the controller keeps it in the
ConfigMap ``<routemap>-iter8-rollout``; ``kubectl iter8 release`` reads it). The state machine
that moves between states is pure and lives in ``controller/progression.py``.
"""

from __future__ import annotations

import functools
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from .task import Duration

#: Annotations on the routemap ConfigMap by which people steer a rollout (``kubectl iter8 release``
#: writes them). Approve and the tokens are compared with what the state says was handled, so each
#: request acts once, whenever the controller sees it (level-based, restart-safe).
APPROVE_ANNOTATION = "iter8.tools/rollout-approve"
PAUSE_ANNOTATION = "iter8.tools/rollout-paused"
ABORT_ANNOTATION = "iter8.tools/rollout-abort"
RETRY_ANNOTATION = "iter8.tools/rollout-retry"
ROLLOUT_SUFFIX = "-iter8-rollout"
ROLLOUT_KIND = "routemap-rollout"
STATE_KEY = "state"

Phase = Literal["Waiting", "Progressing", "Paused", "Promoting", "Promoted", "RolledBack", "Aborted"]
Verdict = Literal["pass", "fail", "inconclusive"]
Hook = Literal["pre-rollout", "pre-step", "pre-promotion"]
#: Phases after which nothing happens until a new candidate arrives or someone asks to retry.
FINAL_PHASES = ("Promoted", "RolledBack", "Aborted")


def rollout_name(routemap_name: str) -> str:
    return routemap_name + ROLLOUT_SUFFIX


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class ExperimentSource(_Model):
    """Where an analysis experiment comes from: exactly one of the three."""

    #: The experiment document itself (``spec:`` and optionally ``metadata:``).
    inline: dict[str, Any] | None = None
    #: A ConfigMap in the routemap's namespace holding the experiment document under ``key``.
    config_map: str | None = Field(default=None, alias="configMap", min_length=1)
    key: str = Field(default="experiment.yaml", min_length=1)
    #: An experiment group launched before (``kubectl iter8 launch -g NAME``): its spec is reused.
    group: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _one(self) -> ExperimentSource:
        given = [n for n in ("inline", "configMap", "group") if getattr(self, _attr(n)) is not None]
        if len(given) != 1:
            got = ", ".join(given) or "none"
            raise ValueError(f"give exactly one of inline, configMap, group (got {got})")
        return self


def _attr(name: str) -> str:
    return "config_map" if name == "configMap" else name


class Analysis(_Model):
    """An analysis: an experiment run in the cluster, judged by ``assert``'s conditions."""

    experiment: ExperimentSource | None = None
    conditions: list[Literal["completed", "nofailure", "slos", "noregression"]] | None = None
    timeout: Duration | None = None

    def merged(self, default: Analysis | None) -> Analysis:
        """This analysis with what it leaves out taken from the policy's default."""
        base = default or Analysis()
        return Analysis(
            experiment=self.experiment or base.experiment,
            conditions=self.conditions or base.conditions or ["completed", "nofailure", "slos"],
            timeout=self.timeout if self.timeout is not None else (base.timeout or DEFAULT_ANALYSIS_TIMEOUT),
        )


DEFAULT_ANALYSIS_TIMEOUT = 600.0


class Pause(_Model):
    duration: Duration | None = None
    approval: bool = False

    @model_validator(mode="after")
    def _one(self) -> Pause:
        if (self.duration is None) == (not self.approval):
            raise ValueError("give either duration or approval: true")
        return self


class Step(_Model):
    """One step: exactly one of ``weight``, ``pause``, ``analysis``."""

    weight: int | None = Field(default=None, ge=0, le=100)
    pause: Pause | None = None
    analysis: Analysis | None = None

    @model_validator(mode="after")
    def _one(self) -> Step:
        given = [n for n in ("weight", "pause", "analysis") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError(f"a step is one of weight, pause, analysis (got {', '.join(given) or 'none'})")
        return self

    def describe(self) -> str:
        if self.weight is not None:
            return f"weight {self.weight}"
        if self.pause is not None:
            return "pause until approved" if self.pause.approval else f"pause {self.pause.duration:g}s"
        return "analysis"


def _yaml_on(value: Any) -> Any:
    """YAML 1.1 reads an unquoted ``on:`` key as ``true``: take it back as ``on``."""
    if isinstance(value, dict) and True in value and "on" not in value:
        value = {("on" if key is True else key): item for key, item in value.items()}
    return value


class Webhook(_Model):
    @model_validator(mode="before")
    @classmethod
    def _on(cls, value: Any) -> Any:
        return _yaml_on(value)

    name: str = Field(min_length=1, max_length=63)
    url: str = Field(min_length=1, max_length=2048, pattern=r"^https?://")
    on: list[Hook] = Field(min_length=1)
    timeout: Duration = 5.0
    retries: int = Field(default=2, ge=0, le=10)


#: What a transition is called: the reason of its Event, and what ``notify[].on`` selects.
Reason = Literal[
    "RolloutStarted",
    "RolloutStep",
    "AnalysisPassed",
    "AnalysisFailed",
    "AnalysisInconclusive",
    "RolloutApproved",
    "RolloutPaused",
    "RolloutResumed",
    "RolloutPromoting",
    "RolloutPromoted",
    "RolloutRolledBack",
    "RolloutAborted",
    "RolloutRetried",
]
#: The longest notify payload template (characters).
MAX_NOTIFY_TEMPLATE = 8192
_HEADER_NAME = r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$"


class SecretKey(_Model):
    """A key of a Secret in the routemap's own namespace (never another: the controller's rights
    to read Secrets are not the routemap author's)."""

    name: str = Field(min_length=1, max_length=253)
    key: str = Field(min_length=1, max_length=253)


class Notification(_Model):
    """A webhook told of each transition (best-effort: a failed call never holds the rollout)."""

    @model_validator(mode="before")
    @classmethod
    def _on(cls, value: Any) -> Any:
        return _yaml_on(value)

    url: str | None = Field(default=None, max_length=2048, pattern=r"^https?://")
    #: The URL from a Secret (a Slack incoming webhook's URL is its credential).
    url_from: SecretKey | None = Field(default=None, alias="urlFrom")
    method: Literal["POST", "PUT", "PATCH"] = "POST"
    headers: dict[str, str] = Field(default_factory=dict, max_length=20)
    #: Headers whose values come from Secrets (an ``Authorization`` token); never logged.
    headers_from: dict[str, SecretKey] = Field(default_factory=dict, alias="headersFrom", max_length=10)
    #: Before ``payloadTemplate``, whose check reads it.
    template_engine: Literal["go", "jinja2", "auto"] = Field(default="auto", alias="templateEngine")
    payload_template: str | None = Field(
        default=None, alias="payloadTemplate", min_length=1, max_length=MAX_NOTIFY_TEMPLATE
    )
    #: The transitions to send (default: all).
    on: list[Reason] | None = Field(default=None, min_length=1)
    timeout: Duration = 5.0
    retries: int = Field(default=2, ge=0, le=10)

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("headers", "headers_from")
    @classmethod
    def _header_names(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name, text in value.items():
            if not re.match(_HEADER_NAME, name):
                raise ValueError(f"{name[:64]!r} is not a header name")
            if isinstance(text, str) and (len(text) > 4096 or "\r" in text or "\n" in text):
                raise ValueError(f"header {name!r}: at most 4096 characters, on one line")
        return value

    @field_validator("payload_template")
    @classmethod
    def _template(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None:
            check_notify_template(value, info.data.get("template_engine", "auto"))
        return value

    @field_validator("timeout")
    @classmethod
    def _timeout(cls, value: float) -> float:
        if not 0 < value <= 60:
            raise ValueError("give more than 0s and at most 60s")
        return value

    @model_validator(mode="after")
    def _checked(self) -> Notification:
        if (self.url is None) == (self.url_from is None):
            raise ValueError("give exactly one of url or urlFrom")
        return self

    def wants(self, reason: str) -> bool:
        return self.on is None or reason in self.on


def check_notify_template(template: str, declared: str) -> None:
    """Refuse a payload template that does not parse, or (Jinja2) that uses more than the subset
    notifications allow: values, attributes, ``~``, filters of :data:`NOTIFY_FILTERS`, ``if`` and
    un-nested ``for`` over the payload. No calls, no arithmetic: the controller renders it in its
    own process, and none of those can then grow a value or spin (see :mod:`plugins.sandbox` for
    what a full sandbox takes).

    :raises ValueError: one line, with the template's own words.
    """
    from . import gotemplate

    if gotemplate.choose_engine(template, declared) == "go":
        try:
            gotemplate.parse(template, name="payloadTemplate")
        except gotemplate.TemplateError as exc:
            raise ValueError(str(exc)) from None
        return
    import jinja2
    from jinja2 import nodes
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    try:
        tree = ImmutableSandboxedEnvironment().parse(template)
    except jinja2.TemplateSyntaxError as exc:
        raise ValueError(f"line {exc.lineno}: {exc.message}") from None

    def visit(node: nodes.Node, loops: int) -> None:
        if isinstance(node, nodes.For):
            if loops or node.recursive or node.test is not None:
                raise ValueError("only one level of for, without recursive or if, is allowed")
            loops += 1
        elif isinstance(node, nodes.Filter | nodes.Test):
            allowed = NOTIFY_FILTERS if isinstance(node, nodes.Filter) else NOTIFY_TESTS
            if node.name not in allowed:
                kind = "filter" if isinstance(node, nodes.Filter) else "test"
                raise ValueError(f"the {kind} {node.name!r} is not allowed here")
            if (node.args and node.name not in NOTIFY_FILTER_ARGS) or node.kwargs or node.dyn_args:
                raise ValueError(f"{node.name!r} takes no arguments here")
        elif not _jinja_allowed(node):
            raise ValueError(f"{type(node).__name__.lower()} is not allowed in a notify template")
        for child in node.iter_child_nodes():
            visit(child, loops)

    visit(tree, 0)


#: The Jinja2 filters (and tests) a notify template may use; only those in ``NOTIFY_FILTER_ARGS``
#: take arguments (their output is never longer than their input or a literal).
NOTIFY_FILTERS = frozenset(
    {"tojson", "default", "d", "upper", "lower", "title", "capitalize", "trim", "string", "int",
     "float", "round", "length", "count", "first", "last", "abs", "truncate", "list"}
)  # fmt: skip
NOTIFY_FILTER_ARGS = frozenset({"default", "d", "round", "truncate"})
NOTIFY_TESTS = frozenset(
    {"defined", "undefined", "none", "number", "string", "mapping", "sequence", "true", "false",
     "eq", "ne", "lt", "le", "gt", "ge", "in", "boolean", "integer", "float"}
)  # fmt: skip


def _jinja_allowed(node: Any) -> bool:
    return isinstance(node, _jinja_nodes())


@functools.cache
def _jinja_nodes() -> tuple[type, ...]:
    from jinja2 import nodes

    return (
        nodes.Template, nodes.Output, nodes.TemplateData, nodes.Const, nodes.Name, nodes.Getattr,
        nodes.Getitem, nodes.Concat, nodes.CondExpr, nodes.If, nodes.Compare, nodes.Operand,
        nodes.And, nodes.Or, nodes.Not, nodes.Neg, nodes.List, nodes.Tuple, nodes.Dict,
        nodes.Pair, nodes.For,
    )  # fmt: skip


class RolloutPolicy(_Model):
    steps: list[Step] = Field(min_length=1, max_length=100)
    analysis: Analysis | None = None
    max_failed_analyses: int = Field(default=0, ge=0, alias="maxFailedAnalyses")
    inconclusive: Literal["retry", "fail", "pass"] = "retry"
    step_deadline: Duration = Field(default=1800.0, alias="stepDeadline")
    #: How long the candidate, once available, may be unavailable before the rollout rolls back.
    unavailable_tolerance: Duration = Field(default=15.0, alias="unavailableTolerance")
    webhooks: list[Webhook] = Field(default_factory=list, max_length=20)
    #: Webhooks told of each transition (see :class:`Notification`).
    notify: list[Notification] = Field(default_factory=list, max_length=10)

    @model_validator(mode="after")
    def _analyses_have_experiments(self) -> RolloutPolicy:
        for index, step in enumerate(self.steps):
            if step.analysis is not None and step.analysis.merged(self.analysis).experiment is None:
                raise ValueError(f"steps[{index}].analysis: no experiment (and rollout.analysis gives none)")
        return self

    def hooks(self, when: Hook) -> list[Webhook]:
        return [hook for hook in self.webhooks if when in hook.on]


class AnalysisRun(_Model):
    """The analysis experiment of the current step: its group name is chosen before it is launched,
    so a controller that restarts finds it instead of launching another."""

    group: str
    step: int
    attempt: int
    started: float


class VerdictRecord(_Model):
    step: int
    group: str
    verdict: Verdict
    reason: str
    at: float
    #: The numbers behind the verdict (the SLOs' metric values per version), when it has them.
    metrics: dict[str, Any] = Field(default_factory=dict)


class RolloutState(_Model):
    """What the controller stores about one routemap's rollout (``<routemap>-iter8-rollout``)."""

    #: Which candidate this is about (a digest of its resources and their specs); "" before any.
    candidate: str = ""
    candidate_name: str = Field(default="", alias="candidateName")
    phase: Phase = "Waiting"
    #: The index of the current step; ``len(steps)`` once promoting.
    step: int = 0
    step_started: float = Field(default=0.0, alias="stepStarted")
    #: The candidate's share of the traffic the routing should have now (percent).
    weight: int = 0
    #: Whether the candidate was available at some point of this rollout (losing it then fails).
    was_available: bool = Field(default=False, alias="wasAvailable")
    #: Since when the candidate, once available, has not been (0: it is available).
    unavailable_since: float = Field(default=0.0, alias="unavailableSince")
    analysis: AnalysisRun | None = None
    failed_analyses: int = Field(default=0, alias="failedAnalyses")
    verdicts: list[VerdictRecord] = Field(default_factory=list)
    #: Webhook gates passed in this rollout, as ``<hook>:<step>``, so none is asked twice.
    gates: list[str] = Field(default_factory=list)
    #: The steering annotations' values already acted on.
    approved: str = ""
    aborted: str = ""
    retried: str = ""
    message: str = ""
    #: When the phase last changed (seconds since the epoch).
    changed: float = 0.0

    def dump(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_defaults=True)


def stored_state(configmap: dict[str, Any] | None) -> RolloutState | None:
    """The state in a ``<routemap>-iter8-rollout`` ConfigMap (None: no ConfigMap, or no state yet).

    :raises ValueError: when the state is not readable (bounded YAML of a :class:`RolloutState`).
    """
    from . import boundedyaml

    text = ((configmap or {}).get("data") or {}).get(STATE_KEY)
    if not text:
        return None
    try:
        return RolloutState.model_validate(boundedyaml.load(str(text)))
    except boundedyaml.BoundedYAMLError as exc:
        raise ValueError(str(exc)) from None


#: How many verdicts the state keeps (the newest).
MAX_VERDICTS = 20
