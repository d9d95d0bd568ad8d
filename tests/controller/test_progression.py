"""The rollout state machine (pure): each rule of ``controller/progression.py`` on its own."""

from __future__ import annotations

from typing import Any

import pytest
from kubectl_iter8.controller.progression import AnalysisOutcome, Decision, Observed, decide, pass_gate
from pydantic import ValidationError

from kubectl_iter8.rollout import (
    ABORT_ANNOTATION,
    APPROVE_ANNOTATION,
    PAUSE_ANNOTATION,
    RETRY_ANNOTATION,
    RolloutPolicy,
    RolloutState,
)

ANALYSIS = {"experiment": {"configMap": "checks"}}


def policy(*steps: dict[str, Any], **more: Any) -> RolloutPolicy:
    return RolloutPolicy.model_validate({"steps": list(steps), "analysis": ANALYSIS, **more})


def seen(now: float = 100.0, **changes: Any) -> Observed:
    base: dict[str, Any] = {
        "now": now,
        "candidate": "c1",
        "candidate_name": "v2",
        "available": True,
        "applied_weight": 0,
        "annotations": {},
        "analysis": None,
        "run_prefix": "app",
    }
    return Observed(**{**base, **changes})


def run(p: RolloutPolicy, state: RolloutState, observed: Observed) -> Decision:
    """One decision, with every gate passed (as a webhook answering 2xx would)."""
    d = decide(p, state, observed)
    while d.gate is not None:
        d = decide(p, pass_gate(d.state, *d.gate), observed)
    return d


def settle(p: RolloutPolicy, state: RolloutState, observed: Observed) -> RolloutState:
    """Decide, then apply the weight asked for (as the routing would), until nothing changes."""
    for _ in range(20):
        d = run(p, state, observed)
        observed = seen(**{**observed.__dict__, "applied_weight": d.state.weight})
        if d.state == state:
            return state
        state = d.state
    raise AssertionError("did not settle")


def test_a_new_candidate_starts_at_the_first_step_and_weights_wait_for_the_routing() -> None:
    p = policy({"weight": 10}, {"weight": 30})
    d = decide(p, RolloutState(), seen())
    assert (d.state.phase, d.state.step, d.state.weight, d.requeue) == ("Progressing", 0, 10, 0)
    assert [e[0] for e in d.events] == ["RolloutStarted", "RolloutStep"]
    # The routing does not show 10 yet: the step holds.
    held = decide(p, d.state, seen(applied_weight=0))
    assert (held.state.step, held.state.weight) == (0, 10)
    moved = decide(p, d.state, seen(applied_weight=10))
    assert (moved.state.step, moved.state.weight) == (1, 30)


def test_the_last_step_done_promotes_once_everything_is_routed_to_the_candidate() -> None:
    p = policy({"weight": 50})
    state = settle(p, RolloutState(), seen())
    assert (state.phase, state.weight, state.step) == ("Promoting", 100, 1)
    assert not decide(p, state, seen(applied_weight=50)).promote
    assert decide(p, state, seen(applied_weight=100)).promote
    # The rewritten routemap has no candidate left.
    done = decide(p, state, seen(candidate="", candidate_name=""))
    assert done.state.phase == "Promoted"


def test_a_pause_for_a_duration_waits_exactly_that_long() -> None:
    p = policy({"pause": {"duration": "30s"}}, {"weight": 20})
    d = decide(p, RolloutState(), seen(now=100))
    assert d.state.step == 0
    assert d.requeue == pytest.approx(30)
    assert decide(p, d.state, seen(now=129.9)).state.step == 0
    assert decide(p, d.state, seen(now=130)).state.step == 1


def test_an_approval_step_takes_only_a_new_approval_of_that_step() -> None:
    p = policy({"weight": 10}, {"pause": {"approval": True}}, {"weight": 50})
    state = settle(p, RolloutState(), seen())
    assert (state.step, "approval" in state.message) == (1, True)
    assert settle(p, state, seen(applied_weight=10, annotations={APPROVE_ANNOTATION: "2/a"})).step == 1
    approved = settle(p, state, seen(applied_weight=10, annotations={APPROVE_ANNOTATION: "1/a"}))
    assert (approved.step, approved.approved) == (3, "1/a")


def test_an_approval_left_from_an_earlier_rollout_does_not_approve_the_next() -> None:
    p = policy({"pause": {"approval": True}})
    old = {APPROVE_ANNOTATION: "0/x"}
    state = settle(p, RolloutState(candidate="c0", phase="Promoted"), seen(annotations=old))
    assert (state.candidate, state.step, state.phase) == ("c1", 0, "Progressing")


def test_a_passing_analysis_moves_on_and_keeps_its_verdict() -> None:
    p = policy({"weight": 10}, {"analysis": {}}, {"weight": 40})
    state = settle(p, RolloutState(), seen())
    assert state.analysis is not None
    assert state.analysis.group == "app-c1-s1-a1"
    d = decide(p, state, seen(applied_weight=10))
    assert d.launch is None, "a run stored in the state is never launched twice"
    done = AnalysisOutcome(True, "pass", "satisfied", {"http/error-rate": [0.0, 0.0]})
    moved = decide(p, state, seen(applied_weight=10, analysis=done))
    assert (moved.state.step, moved.state.weight) == (2, 40)
    assert [(v.step, v.verdict, v.metrics) for v in moved.state.verdicts] == [
        (1, "pass", {"http/error-rate": [0.0, 0.0]})
    ]


def test_a_failed_analysis_rolls_back_unless_failures_are_allowed() -> None:
    failed = AnalysisOutcome(True, "fail", "not satisfied: slos")
    strict = policy({"weight": 10}, {"analysis": {}})
    state = settle(strict, RolloutState(), seen())
    d = decide(strict, state, seen(applied_weight=10, analysis=failed))
    assert (d.state.phase, d.state.weight) == ("RolledBack", 0)
    assert "not satisfied: slos" in d.state.message
    assert d.events[-1][2] is True
    lenient = policy({"weight": 10}, {"analysis": {}}, maxFailedAnalyses=1)
    state = settle(lenient, RolloutState(), seen())
    again = decide(lenient, state, seen(applied_weight=10, analysis=failed))
    assert again.state.phase == "Progressing"
    assert again.launch is not None
    assert again.launch.group == "app-c1-s1-a2"
    final = decide(lenient, again.state, seen(applied_weight=10, analysis=failed))
    assert final.state.phase == "RolledBack"
    assert final.state.failed_analyses == 2


@pytest.mark.parametrize(
    ("rule", "phase", "step"),
    [("retry", "Progressing", 1), ("pass", "Progressing", 2), ("fail", "RolledBack", 1)],
)
def test_an_inconclusive_verdict_follows_the_policy(rule: str, phase: str, step: int) -> None:
    p = policy({"weight": 10}, {"analysis": {}}, {"weight": 20}, inconclusive=rule)
    state = settle(p, RolloutState(), seen())
    d = decide(p, state, seen(applied_weight=10, analysis=AnalysisOutcome(True, "inconclusive")))
    assert (d.state.phase, d.state.step) == (phase, step)
    if rule == "retry":
        assert d.launch is not None
        assert d.launch.attempt == 2
        assert d.state.failed_analyses == 0


def test_an_analysis_without_a_verdict_in_time_fails() -> None:
    p = policy({"analysis": {"timeout": "60s"}})
    state = settle(p, RolloutState(), seen(now=0))
    assert decide(p, state, seen(now=59, analysis=AnalysisOutcome(False))).state.phase == "Progressing"
    late = decide(p, state, seen(now=60, analysis=AnalysisOutcome(False)))
    assert late.state.phase == "RolledBack"
    assert "no verdict within 60s" in late.state.message


def test_a_step_past_its_deadline_rolls_back() -> None:
    p = policy({"pause": {"approval": True}}, stepDeadline="10m")
    state = settle(p, RolloutState(), seen(now=0))
    assert decide(p, state, seen(now=599)).state.phase == "Progressing"
    d = decide(p, state, seen(now=600))
    assert d.state.phase == "RolledBack"
    assert "did not finish within 600s" in d.state.message


def test_a_candidate_waits_to_be_available_but_losing_it_for_long_rolls_back() -> None:
    p = policy({"weight": 10}, {"pause": {"duration": "1h"}})
    waiting = settle(p, RolloutState(), seen(available=False))
    assert (waiting.phase, waiting.step, waiting.weight) == ("Progressing", 0, 0)
    state = settle(p, waiting, seen())
    assert (state.step, state.weight, state.was_available) == (1, 10, True)
    blip = decide(p, state, seen(now=100, available=False, applied_weight=0))
    assert (blip.state.phase, blip.state.step, blip.requeue) == ("Progressing", 1, pytest.approx(15))
    back = decide(p, blip.state, seen(now=110, applied_weight=10))
    assert (back.state.phase, back.state.unavailable_since) == ("Progressing", 0.0)
    still = decide(p, blip.state, seen(now=114.9, available=False, applied_weight=0))
    assert still.state.phase == "Progressing"
    d = decide(p, still.state, seen(now=115, available=False, applied_weight=0))
    assert (d.state.phase, d.state.weight) == ("RolledBack", 0)
    assert "stopped being available" in d.state.message


def test_abort_retry_pause_and_resume() -> None:
    p = policy({"weight": 10}, {"pause": {"approval": True}})
    state = settle(p, RolloutState(), seen())
    paused = decide(p, state, seen(applied_weight=10, annotations={PAUSE_ANNOTATION: "true"}))
    assert (paused.state.phase, paused.state.weight) == ("Paused", 10)
    resumed = decide(p, paused.state, seen(now=200, applied_weight=10))
    assert (resumed.state.phase, resumed.state.step_started) == ("Progressing", 200)
    aborted = decide(p, resumed.state, seen(applied_weight=10, annotations={ABORT_ANNOTATION: "t1"}))
    assert (aborted.state.phase, aborted.state.weight) == ("Aborted", 0)
    # Seen again, the same abort does nothing more; a retry starts from the first step.
    same = {ABORT_ANNOTATION: "t1"}
    assert decide(p, aborted.state, seen(annotations=same)).state == aborted.state
    retried = decide(p, aborted.state, seen(annotations={**same, RETRY_ANNOTATION: "r1"}))
    assert (retried.state.phase, retried.state.step, retried.state.weight) == ("Progressing", 0, 10)


def test_a_changed_candidate_starts_over() -> None:
    p = policy({"weight": 10}, {"pause": {"approval": True}})
    state = settle(p, RolloutState(), seen())
    assert state.step == 1
    d = decide(p, state, seen(candidate="c2", applied_weight=10))
    assert (d.state.candidate, d.state.step, d.state.weight) == ("c2", 0, 10)
    assert d.events[0][0] == "RolloutStarted"


def test_gates_are_asked_before_the_rollout_each_step_and_the_promotion() -> None:
    hook = {"name": "g", "url": "http://127.0.0.1:1/", "on": ["pre-rollout", "pre-step", "pre-promotion"]}
    p = policy({"weight": 10}, webhooks=[hook])
    d = decide(p, RolloutState(), seen())
    assert d.gate == ("pre-rollout", 0)
    assert d.state.weight == 0
    d = decide(p, pass_gate(d.state, "pre-rollout", 0), seen())
    assert d.gate == ("pre-step", 0)
    d = decide(p, pass_gate(d.state, "pre-step", 0), seen())
    assert d.gate is None
    assert d.state.weight == 10
    d = decide(p, d.state, seen(applied_weight=10))
    assert d.gate == ("pre-promotion", 1)
    assert d.state.phase == "Progressing"
    d = decide(p, pass_gate(d.state, "pre-promotion", 1), seen(applied_weight=10))
    assert d.state.phase == "Promoting"


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ([{"weight": 10, "pause": {"duration": "1s"}}], "a step is one of weight, pause, analysis"),
        ([{"pause": {}}], "give either duration or approval"),
        ([{"weight": 101}], "less than or equal to 100"),
    ],
)
def test_policies_are_checked(steps: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        policy(*steps)


def test_an_analysis_step_needs_an_experiment() -> None:
    with pytest.raises(ValidationError, match=r"steps\[0\].analysis: no experiment"):
        RolloutPolicy.model_validate({"steps": [{"analysis": {}}]})
