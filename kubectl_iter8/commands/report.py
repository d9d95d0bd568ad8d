"""``kubectl iter8 report``: the experiment's summary, SLO verdicts and metrics."""

from __future__ import annotations

import click

from .common import (
    CLIState,
    emit,
    group_option,
    kube_options,
    local_option,
    output_option,
    pass_state,
    run_dir_option,
    store_for,
)


@click.command()
@local_option
@output_option("text", "json")
@run_dir_option
@group_option
@kube_options
@pass_state
def report(
    state: CLIState,
    local: bool,
    output: str,
    run_dir: str | None,
    group: str,
    kubeconfig: str | None,
    context: str | None,
    namespace: str | None,
) -> None:
    """Show the experiment's summary, SLO verdicts and metrics.

    -o json prints the stable document described in docs/report-json.md.
    """
    from ..report import build_report, render_text

    with store_for(local, run_dir, group, kubeconfig, context, namespace) as store:
        document = build_report(store.load())
    if output == "json":
        emit(document, "json")
    else:
        click.echo(render_text(document), nl=False)
