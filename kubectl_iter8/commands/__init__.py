"""The core commands of ``kubectl iter8``, contributed as an essential plugin (tox's shape).

Each command lives in its own module and imports its heavy dependencies only when it runs.
"""

from __future__ import annotations

import click

from ..hookspecs import hookimpl
from . import (
    assertion,
    cluster_group,
    iter8_k,
    launch,
    plugins_list,
    report,
    run_job,
    sample_app,
    version,
)


@hookimpl
def iter8_register_commands(cli: click.Group) -> None:
    for command in (
        launch.launch,
        assertion.assert_,
        report.report,
        cluster_group.log,
        cluster_group.delete,
        run_job.run,
        version.version,
        plugins_list.plugins,
        sample_app.sample_app,
        iter8_k.k,
    ):
        cli.add_command(command)
