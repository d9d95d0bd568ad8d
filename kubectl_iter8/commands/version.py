"""``kubectl iter8 version``."""

from __future__ import annotations

import platform
import sys

import click

from ..version import __version__
from .common import emit, output_option


@click.command()
@click.option("--short", is_flag=True, help="Print only the version number.")
@output_option("text", "json", "yaml")
def version(short: bool, output: str) -> None:
    """Print the version of kubectl-iter8."""
    if short:
        click.echo(f"v{__version__}")
        return
    info = {
        "version": f"v{__version__}",
        "python": platform.python_version(),
        "platform": f"{sys.platform}/{platform.machine().lower()}",
    }
    if output == "text":
        click.echo(f"kubectl-iter8 {info['version']} (python {info['python']}, {info['platform']})")
    else:
        emit(info, output)
