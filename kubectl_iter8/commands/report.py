"""``kubectl iter8 report``: the experiment's summary, SLO verdicts and metrics."""

from __future__ import annotations

import click

from .common import CLIState, emit, local_option, output_option, pass_state, require_local, run_dir_option


@click.command()
@local_option
@output_option("text", "json")
@run_dir_option
@pass_state
def report(state: CLIState, local: bool, output: str, run_dir: str) -> None:
    """Show the experiment's summary, SLO verdicts and metrics.

    -o json prints the stable document described in docs/report-json.md.
    """
    from ..report import build_report, render_text
    from ..storage import LocalStore

    require_local(local)
    document = build_report(LocalStore(run_dir).load())
    if output == "json":
        emit(document, "json")
    else:
        click.echo(render_text(document), nl=False)
