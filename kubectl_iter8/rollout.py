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

This module holds the policy's model and the rollout's stored state (the controller keeps it in the
ConfigMap ``<routemap>-iter8-rollout``; ``kubectl iter8 release`` reads it). The state machine
that moves between states is pure and lives in ``controller/progression.py``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

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


class Webhook(_Model):
    name: str = Field(min_length=1, max_length=63)
    url: str = Field(min_length=1, max_length=2048, pattern=r"^https?://")
    on: list[Hook] = Field(min_length=1)
    timeout: Duration = 5.0
    retries: int = Field(default=2, ge=0, le=10)


class RolloutPolicy(_Model):
    steps: list[Step] = Field(min_length=1, max_length=100)
    analysis: Analysis | None = None
    max_failed_analyses: int = Field(default=0, ge=0, alias="maxFailedAnalyses")
    inconclusive: Literal["retry", "fail", "pass"] = "retry"
    step_deadline: Duration = Field(default=1800.0, alias="stepDeadline")
    #: How long the candidate, once available, may be unavailable before the rollout rolls back.
    unavailable_tolerance: Duration = Field(default=15.0, alias="unavailableTolerance")
    webhooks: list[Webhook] = Field(default_factory=list, max_length=20)

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
