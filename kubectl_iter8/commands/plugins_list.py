"""``kubectl iter8 plugins``: what loaded, from where, and what each plugin provides."""

from __future__ import annotations

import dataclasses

import click

from .common import CLIState, emit, output_option, pass_state


@click.command()
@output_option("text", "json", "yaml")
@pass_state
def plugins(state: CLIState, output: str) -> None:
    """List plugins with their version, source and the tasks and routers they provide."""
    infos = state.require_hooks().plugin_infos()
    if output != "text":
        emit({"plugins": [dataclasses.asdict(info) for info in infos]}, output)
        return
    from tabulate import tabulate

    rows = []
    for info in infos:
        provides = [
            f"{kind}: {', '.join(names)}"
            for kind, names in (
                ("tasks", info.tasks),
                ("routers", info.routers),
                ("resource types", info.resource_types),
            )
            if names
        ]
        rows.append(
            [info.name, info.source, info.version, "; ".join(provides) or "-", info.error or "loaded"]
        )
    click.echo(tabulate(rows, headers=["NAME", "SOURCE", "VERSION", "PROVIDES", "STATUS"], tablefmt="plain"))
