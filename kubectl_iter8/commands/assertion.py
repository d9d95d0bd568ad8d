"""``kubectl iter8 assert``: exit 0 when the experiment meets the conditions, 1 when it does not."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from .common import CLIState, group_option, kube_options, local_option, pass_state, run_dir_option, store_for

if TYPE_CHECKING:
    from ..job_status import JobFailure
    from ..storage import ExperimentStore


@click.command(name="assert")
@local_option
@click.option(
    "-c",
    "--condition",
    "condition_values",
    multiple=True,
    required=True,
    metavar="CONDITION",
    help="completed, nofailure, slos or noregression; repeatable or comma-separated.",
)
@click.option(
    "--timeout",
    default="0s",
    show_default=True,
    help="How long to wait for the conditions while the experiment is still running.",
)
@run_dir_option
@group_option
@kube_options
@pass_state
def assert_(
    state: CLIState,
    local: bool,
    condition_values: tuple[str, ...],
    timeout: str,
    run_dir: str | None,
    group: str,
    kubeconfig: str | None,
    context: str | None,
    namespace: str | None,
) -> None:
    """Check that the experiment meets the conditions.

    Returns at once when the conditions hold or the experiment has ended; while it is still
    running, checks again until --timeout. In a cluster, a Job of the group that failed before
    its experiment ended (a crashed pod, a command that could not start, a deadline exceeded)
    stops the wait at once. Exit codes: 0 all hold, 1 some do not, 2 usage error.
    """
    import time

    from ..conditions import evaluate, has_ended, parse_conditions
    from ..durations import parse_duration
    from ..errors import Iter8Error, UsageError

    conditions = parse_conditions(condition_values)
    try:
        deadline = time.monotonic() + parse_duration(timeout)
    except ValueError:
        raise UsageError(f"--timeout: {timeout!r} is not a duration (use e.g. 60s, 2m)") from None
    with store_for(local, run_dir, group, kubeconfig, context, namespace) as store:
        stopped = _job_failure_check(store)
        while True:
            experiment = store.load()
            verdicts = evaluate(experiment, conditions)
            if all(verdicts.values()) or has_ended(experiment):
                break
            failure = stopped() if stopped is not None else None
            if failure is not None:
                # The runner may have saved its final result just before its pod ended.
                experiment = store.load()
                verdicts = evaluate(experiment, conditions)
                if not has_ended(experiment):
                    raise Iter8Error(failure.describe(wrote_result=experiment.result is not None))
                break
            if time.monotonic() >= deadline:
                break
            time.sleep(min(0.5 if local else 2.0, max(0.0, deadline - time.monotonic())))
    for name, ok in verdicts.items():
        click.echo(f"{name}: {'satisfied' if ok else 'not satisfied'}")
    failed = [name for name, ok in verdicts.items() if not ok]
    if failed:
        still = "" if has_ended(experiment) else " (the experiment is still running)"
        raise Iter8Error(f"assert conditions not satisfied: {', '.join(failed)}{still}")
    click.echo("all conditions satisfied")


def _job_failure_check(store: ExperimentStore) -> Callable[[], JobFailure | None] | None:
    """For a group in a cluster: what tells whether its current Job failed; None for a local run."""
    from ..cluster import SecretStore
    from ..job_status import JobWatch

    if not isinstance(store, SecretStore):
        return None
    watch = JobWatch(store.kube, store.group, store.namespace)
    return lambda: watch.failure(store.loaded_revision)
