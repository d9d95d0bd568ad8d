"""``kubectl iter8 run`` (hidden): what the experiment's Job runs inside the cluster."""

from __future__ import annotations

import click

from .common import CLIState, group_option, kube_options, pass_state


@click.command(hidden=True)
@group_option
@kube_options
@click.option(
    "--keep-results", is_flag=True, help="Add this loop's metrics to the previous loops' (scheduled runs)."
)
@pass_state
def run(
    state: CLIState,
    group: str,
    kubeconfig: str | None,
    context: str | None,
    namespace: str | None,
    keep_results: bool,
) -> None:
    """Run the experiment stored in the group's Secret, saving the result there after every task."""
    from .. import cluster
    from ..aio import run_async
    from ..errors import Iter8Error
    from ..experiment import prepare
    from ..kube import Kube, KubeOptions
    from ..runner import Runner

    hooks = state.require_hooks()
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
