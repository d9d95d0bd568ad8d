"""``kubectl iter8 run`` (hidden): what the experiment's Job runs inside the cluster.

With ``--shard K`` it is what shard K's Job runs instead, for a task that spreads its load over pods:
the task named by the group's shard plan does its part (its class's ``run_shard``); nothing of the
experiment is read, as the shard's ServiceAccount may read only the plan and write its own result.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from .common import AliasedOption, CLIState, group_option, kube_options, pass_state

if TYPE_CHECKING:
    from ..kube import KubeOptions


@click.command(hidden=True)
@group_option
@kube_options
@click.option(
    "--keep-results",
    cls=AliasedOption,
    aliases=["--reuseResult"],
    is_flag=True,
    help="Add this loop's metrics to the previous loops' (scheduled runs).",
)
@click.option(
    "--shard", type=click.IntRange(min=0), metavar="K", help="Run shard K of a load spread over pods."
)
@pass_state
def run(
    state: CLIState,
    group: str,
    kubeconfig: str | None,
    context: str | None,
    namespace: str | None,
    keep_results: bool,
    shard: int | None,
) -> None:
    """Run the experiment stored in the group's Secret, saving the result there after every task."""
    from .. import cluster
    from ..aio import run_async
    from ..errors import Iter8Error
    from ..experiment import prepare
    from ..kube import Kube, KubeOptions
    from ..runner import Runner

    hooks = state.require_hooks()
    if shard is not None:
        _run_shard(state, group, KubeOptions(kubeconfig, context, namespace), shard)
        return
    with Kube(KubeOptions(kubeconfig, context, namespace)) as kube:
        store = cluster.SecretStore(kube, cluster.check_group(group), kube.namespace)
        secret = store.secret()
        experiment = cluster.experiment_of(secret, store.description)
        store.revision = cluster.revision_of(secret)
        previous = experiment.result if keep_results else None
        prepared = prepare(experiment, hooks.tasks)
        options = KubeOptions(kubeconfig, context, kube.namespace)
        runner = Runner(
            experiment,
            prepared,
            store,
            hooks,
            kube_options=options,
            revision=store.revision,
            previous=previous,
        )
        result = run_async(runner.run())
    if result.failure:
        raise Iter8Error(f"experiment failed: {result.failure_message}")
    click.echo(f"experiment completed: {result.num_completed_tasks} of {len(prepared)} tasks")


def _run_shard(state: CLIState, group: str, options: KubeOptions, index: int) -> None:
    from .. import cluster
    from ..errors import Iter8Error
    from ..kube import Kube

    with Kube(options) as kube:
        group = cluster.check_group(group)
        name = cluster.shard_task(kube, group, kube.namespace)
        tasks = state.require_hooks().tasks
        runner = getattr(tasks.get(name), "run_shard", None) if name and name in tasks else None
        if runner is None:
            raise Iter8Error(f"shard {index}: no shard plan for a task that runs in pods in group {group!r}")
        runner(kube, group, kube.namespace, index)
    click.echo(f"shard {index} done")
