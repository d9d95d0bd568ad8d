"""``kubectl iter8 log`` and ``delete``: a cluster experiment group's output, and its removal."""

from __future__ import annotations

import click

from .common import group_option, kube_options


@click.command()
@group_option
@kube_options
def log(group: str, kubeconfig: str | None, context: str | None, namespace: str | None) -> None:
    """Print the logs of the pods that ran the experiment group."""
    from .. import cluster
    from ..errors import Iter8Error
    from ..kube import Kube, KubeOptions

    with Kube(KubeOptions(kubeconfig, context, namespace)) as kube:
        pods = cluster.logs(kube, cluster.check_group(group), kube.namespace)
        if not pods:
            where = f'experiment group "{group}" in namespace "{kube.namespace}"'
            raise Iter8Error(f"{where} has no pods yet (its Job may not have started)")
    for name, text in pods:
        click.echo(f"--- pod {name}")
        click.echo(text, nl=not text.endswith("\n"))


@click.command()
@group_option
@kube_options
def delete(group: str, kubeconfig: str | None, context: str | None, namespace: str | None) -> None:
    """Delete the experiment group: its Secret, Job, ServiceAccount, Role and RoleBinding."""
    from .. import cluster
    from ..kube import Kube, KubeOptions

    with Kube(KubeOptions(kubeconfig, context, namespace)) as kube:
        cluster.delete(kube, cluster.check_group(group), kube.namespace)
        click.echo(f'experiment group "{group}" deleted from namespace "{kube.namespace}"')
