"""The rollout state machine, pure: from a stored state and what is observed now to the next state.

No API, no clock: :func:`decide` gets the policy (``kubectl_iter8.rollout``), the state the
controller stored, and an :class:`Observed` snapshot (the time, the candidate and whether it is
available, the weight the routing has, the steering annotations, the outcome of the running
analysis), and returns a :class:`Decision`: the new state and what to do about it. The rollout
reconciler (:mod:`.rollouts`) stores the state *before* acting on it, so a controller killed at any
point repeats at most an idempotent action: an analysis is launched under a name chosen and stored
beforehand (found, not launched twice, after a restart), a weight is a level the routing converges
to, and the promotion rewrite checks whether it already happened.

Phases: ``Progressing`` through the steps (``weight``: the routing must show it before the next
step; ``pause``: a duration or an approval; ``analysis``: an experiment and its verdict), then
``Promoting`` (all traffic to the candidate; once applied, the routemap is rewritten with the
candidate as its primary) and ``Promoted``. ``RolledBack`` (an analysis failed more often than
allowed, the step deadline passed, or the candidate, once available, stayed unavailable for longer
than ``unavailableTolerance``),
``Aborted`` (``release abort``) and ``Paused`` (``release pause``) send the candidate no new traffic
(``Paused`` holds the current weight). A new candidate (other resources, or a changed spec of
its resources) starts the policy again from its first step.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kubectl_iter8.rollout import (
    ABORT_ANNOTATION,
    APPROVE_ANNOTATION,
    FINAL_PHASES,
    MAX_VERDICTS,
    PAUSE_ANNOTATION,
    RETRY_ANNOTATION,
    AnalysisRun,
    Hook,
    Phase,
    RolloutPolicy,
    RolloutState,
    Verdict,
    VerdictRecord,
)

#: How often a running analysis is looked at when nothing wakes the reconciler sooner (its Job's
#: end does, through the Job informer).
ANALYSIS_POLL = 60.0
#: How soon to look again while the routing has not caught up with the state's weight.
ROUTING_POLL = 1.0


@dataclass(frozen=True)
class AnalysisOutcome:
    """What became of the current analysis run."""

    done: bool
    verdict: Verdict | None = None
    reason: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Observed:
    now: float
    #: The candidate's identity digest ("" when the routemap has no candidate) and display name.
    candidate: str
    candidate_name: str
    available: bool
    #: The candidate's weight (percent of the total) in the routing applied by this reconcile.
    applied_weight: int
    annotations: Mapping[str, str]
    #: The outcome of ``state.analysis`` (None: no run, or nothing known yet).
    analysis: AnalysisOutcome | None
    #: The prefix of analysis group names (from the routemap's name), at most 40 characters.
    run_prefix: str


@dataclass
class Decision:
    state: RolloutState
    #: Launch this analysis run (once the state is stored).
    launch: AnalysisRun | None = None
    #: Ask the webhooks of this hook before going on (for the step given).
    gate: tuple[Hook, int] | None = None
    #: Rewrite the routemap with the candidate as its only version (the routing already sends it everything).
    promote: bool = False
    #: (reason, message, warning) for Kubernetes Events.
    events: list[tuple[str, str, bool]] = field(default_factory=list)
    #: Reconcile again after this many seconds (None: only when something changes).
    requeue: float | None = None

    def transition(
        self, phase: Phase, now: float, message: str, reason: str, *, warning: bool = False
    ) -> None:
        changed = phase != self.state.phase
        self.state = self.state.model_copy(
            update={"phase": phase, "message": message, **({"changed": now} if changed else {})}
        )
        self.events.append((reason, message, warning))

    def update(self, **changes: Any) -> None:
        self.state = self.state.model_copy(update=changes)

    def soon(self, seconds: float) -> None:
        seconds = max(0.0, seconds)
        self.requeue = seconds if self.requeue is None else min(self.requeue, seconds)


def decide(policy: RolloutPolicy, state: RolloutState, seen: Observed) -> Decision:
    """The next state of the rollout, and what to do (see the module's docstring)."""
    d = Decision(state)
    if not seen.candidate:
        if state.phase == "Promoting":
            d.transition("Promoted", seen.now, f"{state.candidate_name} is the primary", "RolloutPromoted")
        return d
    if seen.candidate != state.candidate:
        _start(d, seen)
    if _steer(d, policy, seen) or d.state.phase in FINAL_PHASES or d.state.phase == "Paused":
        return d
    s = d.state
    if seen.available:
        if not s.was_available or s.unavailable_since:
            d.update(was_available=True, unavailable_since=0.0)
    elif s.was_available:
        # A blip (a scale-up makes a Deployment's status lag its generation for a moment) holds the
        # rollout; only unavailability that lasts rolls it back. The routing gives it 0 meanwhile.
        since = s.unavailable_since or seen.now
        if seen.now - since >= policy.unavailable_tolerance:
            _fail(d, seen, f"{s.candidate_name} stopped being available")
            return d
        d.update(unavailable_since=since, message=f"step {s.step}: {s.candidate_name} is not available")
        d.soon(since + policy.unavailable_tolerance - seen.now)
        return d
    if s.phase == "Promoting":
        if seen.applied_weight == 100 and seen.available:
            d.promote = True
        else:
            d.soon(ROUTING_POLL)
        return d
    deadline = s.step_started + policy.step_deadline
    if seen.now >= deadline:
        what = policy.steps[s.step].describe() if s.step < len(policy.steps) else "promotion"
        _fail(d, seen, f"step {s.step} ({what}) did not finish within {policy.step_deadline:g}s")
        return d
    d.soon(deadline - seen.now)
    _progress(d, policy, seen)
    return d


def _start(d: Decision, seen: Observed) -> None:
    # The steering annotations present now were meant for an earlier rollout: mark them handled.
    notes = seen.annotations
    d.state = RolloutState(
        candidate=seen.candidate,
        candidateName=seen.candidate_name,
        phase="Progressing",
        stepStarted=seen.now,
        changed=seen.now,
        approved=notes.get(APPROVE_ANNOTATION, ""),
        aborted=notes.get(ABORT_ANNOTATION, ""),
        retried=notes.get(RETRY_ANNOTATION, ""),
        message=f"rolling out {seen.candidate_name}",
    )
    d.events.append(("RolloutStarted", f"rolling out {seen.candidate_name}", False))


def _steer(d: Decision, policy: RolloutPolicy, seen: Observed) -> bool:
    """Act on abort, retry and pause requests; True when nothing else should happen now."""
    notes, s = seen.annotations, d.state
    abort = notes.get(ABORT_ANNOTATION, "")
    if abort and abort != s.aborted:
        d.update(aborted=abort, weight=0, analysis=None)
        if s.phase not in FINAL_PHASES:
            d.transition(
                "Aborted",
                seen.now,
                "aborted: all traffic back to the primary",
                "RolloutAborted",
                warning=True,
            )
        return True
    retry = notes.get(RETRY_ANNOTATION, "")
    if retry and retry != s.retried:
        d.update(retried=retry)
        if s.phase in ("RolledBack", "Aborted"):
            d.update(
                step=0, step_started=seen.now, weight=0, analysis=None, failed_analyses=0, gates=[],
                was_available=False,
            )  # fmt: skip
            d.transition("Progressing", seen.now, f"retrying {s.candidate_name}", "RolloutRetried")
    paused = notes.get(PAUSE_ANNOTATION, "") == "true"
    if d.state.phase == "Paused" and not paused:
        # The step's clock starts again: a pause must not use up its deadline.
        d.update(step_started=seen.now)
        phase: Phase = "Promoting" if d.state.step >= len(policy.steps) else "Progressing"
        d.transition(phase, seen.now, "resumed", "RolloutResumed")
    elif paused and d.state.phase in ("Progressing", "Promoting"):
        message = f"paused at step {d.state.step} (weight {d.state.weight})"
        d.transition("Paused", seen.now, message, "RolloutPaused")
        return True
    return False


def _progress(d: Decision, policy: RolloutPolicy, seen: Observed) -> None:
    """Work on the current step; moves on through as many steps as can finish now."""
    for _ in range(len(policy.steps) + 1):
        s = d.state
        if s.step == 0 and not _gate(d, policy, "pre-rollout", 0):
            return
        if s.step >= len(policy.steps):
            if not _gate(d, policy, "pre-promotion", s.step):
                return
            d.update(weight=100, analysis=None)
            d.transition("Promoting", seen.now, f"promoting {s.candidate_name}", "RolloutPromoting")
            d.soon(0)
            return
        if not _gate(d, policy, "pre-step", s.step):
            return
        if not seen.available:
            d.update(message=f"step {s.step}: waiting for {s.candidate_name} to be available")
            return
        if not _step_done(d, policy, seen):
            return
        d.update(step=s.step + 1, step_started=seen.now, analysis=None)


def _gate(d: Decision, policy: RolloutPolicy, hook: Hook, step: int) -> bool:
    if not policy.hooks(hook) or f"{hook}:{step}" in d.state.gates:
        return True
    d.gate = (hook, step)
    return False


def pass_gate(state: RolloutState, hook: Hook, step: int) -> RolloutState:
    """``state`` with the webhooks of ``hook`` at ``step`` recorded as passed."""
    return state.model_copy(update={"gates": [*state.gates, f"{hook}:{step}"]})


def _step_done(d: Decision, policy: RolloutPolicy, seen: Observed) -> bool:
    s = d.state
    step = policy.steps[s.step]
    if step.weight is not None:
        if s.weight != step.weight:
            d.update(weight=step.weight, message=f"step {s.step}: weight {step.weight}")
            d.events.append(("RolloutStep", f"step {s.step}: {s.candidate_name} weight {step.weight}", False))
            d.soon(0)
            return False
        if seen.applied_weight != step.weight:
            d.soon(ROUTING_POLL)
            return False
        return True
    if step.pause is not None:
        if step.pause.approval:
            token = seen.annotations.get(APPROVE_ANNOTATION, "")
            if token and token != s.approved and token.split("/")[0] == str(s.step):
                d.update(approved=token)
                d.events.append(("RolloutApproved", f"step {s.step} approved", False))
                return True
            d.update(message=f"step {s.step}: waiting for approval (kubectl iter8 release approve)")
            return False
        assert step.pause.duration is not None
        left = s.step_started + step.pause.duration - seen.now
        if left > 0:
            d.update(message=f"step {s.step}: pausing for {step.pause.duration:g}s")
            d.soon(left)
            return False
        return True
    return _analysis_done(d, policy, seen)


def _analysis_done(d: Decision, policy: RolloutPolicy, seen: Observed) -> bool:
    s = d.state
    step = policy.steps[s.step]
    assert step.analysis is not None
    analysis = step.analysis.merged(policy.analysis)
    run = s.analysis
    if run is None or run.step != s.step:
        attempt = run.attempt + 1 if run is not None and run.step == s.step else 1
        _launch(d, seen, attempt)
        return False
    outcome = seen.analysis
    if outcome is None or not outcome.done:
        assert analysis.timeout is not None
        if seen.now - run.started < analysis.timeout:
            d.update(message=f"step {s.step}: analysis {run.group} running")
            d.soon(min(ANALYSIS_POLL, run.started + analysis.timeout - seen.now))
            return False
        outcome = AnalysisOutcome(True, "fail", f"no verdict within {analysis.timeout:g}s")
    assert outcome.verdict is not None
    record = VerdictRecord(
        step=s.step, group=run.group, verdict=outcome.verdict, reason=outcome.reason, at=seen.now,
        metrics=outcome.metrics,
    )  # fmt: skip
    d.update(verdicts=[*s.verdicts, record][-MAX_VERDICTS:])
    verdict = outcome.verdict
    if verdict == "inconclusive" and policy.inconclusive != "retry":
        verdict = policy.inconclusive
    message = f"step {s.step}: analysis {run.group}: {outcome.verdict}"
    if outcome.reason:
        message += f" ({outcome.reason})"
    if verdict == "pass":
        d.events.append(("AnalysisPassed", message, False))
        return True
    if verdict == "inconclusive":
        d.events.append(("AnalysisInconclusive", message + "; running it again", False))
        _launch(d, seen, run.attempt + 1)
        return False
    failed = s.failed_analyses + 1
    d.update(failed_analyses=failed)
    if failed > policy.max_failed_analyses:
        _fail(d, seen, message)
        return False
    allowed = policy.max_failed_analyses
    d.events.append(
        ("AnalysisFailed", f"{message}; {failed} of {allowed} failures allowed, running it again", True)
    )
    _launch(d, seen, run.attempt + 1)
    return False


def _launch(d: Decision, seen: Observed, attempt: int) -> None:
    s = d.state
    group = f"{seen.run_prefix}-{s.candidate[:6]}-s{s.step}-a{attempt}"
    run = AnalysisRun(group=group, step=s.step, attempt=attempt, started=seen.now)
    # Worded as while it runs, so that the reconcile after the launch has nothing to store.
    d.update(analysis=run, message=f"step {s.step}: analysis {group} running")
    d.launch = run
    d.soon(ANALYSIS_POLL)


def _fail(d: Decision, seen: Observed, why: str) -> None:
    d.update(weight=0, analysis=None)
    d.transition("RolledBack", seen.now, f"rolled back: {why}", "RolloutRolledBack", warning=True)
    d.requeue = None
