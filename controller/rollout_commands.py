"""``kubectl iter8 release approve|pause|resume|retry`` (and ``abort`` of a rollout): steering a
running rollout (see ``docs/progressive.md``).

Each command writes one annotation on the routemap ConfigMap and the controller acts on it
(level-based: the value is a token the controller records once handled, so a request acts exactly
once, whenever the controller sees it, restarts included). The commands read the rollout's state
(``<routemap>-iter8-rollout``, written by the controller) to refuse what cannot apply now, such as
approving a rollout that is not waiting for approval.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import click

from kubectl_iter8.commands.common import kube_options
from kubectl_iter8.errors import Iter8Error, UsageError

from .release_common import connect, load_routemap

if TYPE_CHECKING:
    from kubectl_iter8.kube import Kube
    from kubectl_iter8.rollout import RolloutState
    from kubectl_iter8.routemap import RouteMap


def rollout_state(kube: Kube, name: str) -> RolloutState | None:
    """The state the controller stored for the routemap's rollout (None: none yet, or unreadable)."""
    from kubectl_iter8.kube import CONFIGMAPS
    from kubectl_iter8.rollout import rollout_name, stored_state

    try:
        return stored_state(kube.find(CONFIGMAPS, rollout_name(name)))
    except ValueError:
        return None


def describe(routemap: RouteMap, state: RolloutState | None) -> dict[str, Any]:
    """The rollout as ``release get`` shows it."""
    policy = routemap.spec.rollout
    assert policy is not None
    if state is None or not state.candidate:
        return {"phase": "Waiting", "message": "the controller has not started a rollout yet"}
    step = policy.steps[state.step].describe() if state.step < len(policy.steps) else "promotion"
    last = state.verdicts[-1] if state.verdicts else None
    return {
        "candidate": state.candidate_name,
        "phase": state.phase,
        "step": state.step,
        "steps": len(policy.steps),
        "current": step,
        "weight": state.weight,
        "failedAnalyses": state.failed_analyses,
        "lastVerdict": None if last is None else last.model_dump(by_alias=True),
        "message": state.message,
    }


def line(info: dict[str, Any]) -> str:
    """One line for the text view."""
    if "step" not in info:
        return f"rollout: {info['phase']}: {info['message']}"
    text = (
        f"rollout: {info['phase']} {info['candidate']}: step {info['step']}/{info['steps']} "
        f"({info['current']}), weight {info['weight']}"
    )
    verdict = info.get("lastVerdict")
    if verdict:
        text += f"; last verdict {verdict['verdict']} ({verdict['reason']})"
    return f"{text}\n{info['message']}" if info.get("message") else text


def _steer(kube: Kube, name: str, annotations: dict[str, str | None]) -> None:
    from kubectl_iter8.kube import CONFIGMAPS

    kube.patch(CONFIGMAPS, name, {"metadata": {"annotations": annotations}})


def _token() -> str:
    return str(time.time_ns())


def _running(kube: Kube, name: str) -> tuple[RouteMap, RolloutState]:
    _, routemap = load_routemap(kube, name)
    if routemap.spec.rollout is None:
        raise UsageError(f'release "{name}" has no rollout policy')
    state = rollout_state(kube, name)
    if state is None or not state.candidate:
        raise Iter8Error(f'release "{name}": the controller has not started a rollout yet (is it running?)')
    return routemap, state


@click.command("approve")
@click.argument("name")
@kube_options
def approve(name: str, kubeconfig: str | None, context: str | None, namespace: str | None) -> None:
    """Approve the rollout's current step (a pause that waits for approval)."""
    from kubectl_iter8.rollout import APPROVE_ANNOTATION

    with connect(kubeconfig, context, namespace) as kube:
        routemap, state = _running(kube, name)
        assert routemap.spec.rollout is not None
        steps = routemap.spec.rollout.steps
        step = steps[state.step] if state.step < len(steps) else None
        if state.phase != "Progressing" or step is None or step.pause is None or not step.pause.approval:
            now = step.describe() if step is not None else "promotion"
            raise Iter8Error(
                f'release "{name}" is not waiting for approval ({state.phase}, step {state.step}: {now})'
            )
        _steer(kube, name, {APPROVE_ANNOTATION: f"{state.step}/{_token()}"})
    click.echo(f'release "{name}": step {state.step} approved')


@click.command("pause")
@click.argument("name")
@kube_options
def pause(name: str, kubeconfig: str | None, context: str | None, namespace: str | None) -> None:
    """Hold the rollout at its current weight until ``resume``."""
    from kubectl_iter8.rollout import PAUSE_ANNOTATION

    with connect(kubeconfig, context, namespace) as kube:
        _running(kube, name)
        _steer(kube, name, {PAUSE_ANNOTATION: "true"})
    click.echo(f'release "{name}": pause requested')


@click.command("resume")
@click.argument("name")
@kube_options
def resume(name: str, kubeconfig: str | None, context: str | None, namespace: str | None) -> None:
    """Let a paused rollout go on (its current step starts its clock again)."""
    from kubectl_iter8.rollout import PAUSE_ANNOTATION

    with connect(kubeconfig, context, namespace) as kube:
        _running(kube, name)
        _steer(kube, name, {PAUSE_ANNOTATION: None})
    click.echo(f'release "{name}": resume requested')


@click.command("retry")
@click.argument("name")
@kube_options
def retry(name: str, kubeconfig: str | None, context: str | None, namespace: str | None) -> None:
    """Start a rolled-back or aborted rollout again from its first step."""
    from kubectl_iter8.rollout import RETRY_ANNOTATION

    with connect(kubeconfig, context, namespace) as kube:
        _, state = _running(kube, name)
        if state.phase not in ("RolledBack", "Aborted"):
            raise Iter8Error(
                f'release "{name}" is {state.phase}: only a rolled-back or aborted rollout is retried'
            )
        _steer(kube, name, {RETRY_ANNOTATION: _token()})
    click.echo(f'release "{name}": retry requested')


def abort_rollout(kube: Kube, name: str) -> None:
    """``release abort`` of a routemap with a rollout policy: the controller sends the candidate nothing."""
    from kubectl_iter8.rollout import ABORT_ANNOTATION

    _steer(kube, name, {ABORT_ANNOTATION: _token()})


COMMANDS = (approve, pause, resume, retry)
