"""``kubectl iter8 k``: Iter8 v0.13-v0.15's group of cluster commands, kept for its scripts.

``iter8 k launch|assert|report|log|delete`` (and the hidden ``k run`` its Jobs ran) worked on
experiments in a cluster; the same commands here do the same without ``k`` (without ``--local`` they
work on a cluster too), so the group holds the very same command objects. It is hidden from
``--help``: new scripts should drop ``k``.
"""

from __future__ import annotations

import click

from . import assertion, cluster_group, launch, report, run_job


@click.group(
    name="k",
    hidden=True,
    help="Iter8 v0.13-v0.15 spelling of the cluster commands: 'k launch' is 'launch', and so on.",
)
def k() -> None:
    pass


for _command in (
    launch.launch,
    assertion.assert_,
    report.report,
    cluster_group.log,
    cluster_group.delete,
    run_job.run,  # hidden, as Iter8's 'k run' (what its Jobs ran)
):
    k.add_command(_command)
