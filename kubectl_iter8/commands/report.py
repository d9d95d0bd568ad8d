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
@output_option("text", "json", "html")
@click.option(
    "-O",
    "--output-file",
    metavar="PATH",
    help="Write the report to PATH (atomically) instead of standard output.",
)
@run_dir_option
@group_option
@kube_options
@pass_state
def report(
    state: CLIState,
    local: bool,
    output: str,
    output_file: str | None,
    run_dir: str | None,
    group: str,
    kubeconfig: str | None,
    context: str | None,
    namespace: str | None,
) -> None:
    """Show the experiment's summary, SLO verdicts and metrics.

    -o json prints the stable document described in docs/report-json.md; -o html one
    self-contained page (no network needed to view it), best written with -O report.html.
    """
    import json

    from ..report import build_report, render_text

    with store_for(local, run_dir, group, kubeconfig, context, namespace) as store:
        document = build_report(store.load())
    output = output.lower()
    if output == "json":
        if output_file is None:
            emit(document, "json")
            return
        text = json.dumps(document, indent=2) + "\n"
    elif output == "html":
        from ..report_html import render_html

        text = render_html(document)
    else:
        text = render_text(document)
    if output_file is None:
        click.echo(text, nl=False)
        return
    _write(output_file, text)
    click.echo(f"report written to {output_file}", err=True)


def _write(path: str, text: str) -> None:
    import os
    from pathlib import Path

    from ..errors import UsageError
    from ..storage import atomic_write

    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise UsageError(f"-O/--output-file: {folder}: no such folder")
    umask = os.umask(0)
    os.umask(umask)
    try:
        # a report is a normal file (umask applies), not a private temporary one
        atomic_write(folder / target.name, text, mode=0o666 & ~umask, fsync=False)
    except OSError as exc:
        raise UsageError(f"-O/--output-file: cannot write {path}: {exc.strerror or exc}") from None
