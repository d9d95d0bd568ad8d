"""The traffic controller (``kubectl iter8 controller serve``), contributed as a built-in plugin.

Modules, each small and documented with its concurrency role: :mod:`.config` (settings),
:mod:`.cache` (informers), :mod:`.queue` (de-duplicating work queue with back-off),
:mod:`.state` (what the threads share), :mod:`.plan` (availability, weights, rendering: pure),
:mod:`.routemaps` (a routemap's reconcile), :mod:`.finalizers` (a resource's reconcile),
:mod:`.writer` (leader-gated writes and Events), :mod:`.status` (the status ConfigMap),
:mod:`.errors`, :mod:`.leader` (Lease election), :mod:`.http` (health and metrics),
:mod:`.manager` (the process that wires them), :mod:`.manifests` and :mod:`.commands`. Only the
commands module is imported when the CLI starts; the rest is imported when ``serve`` or
``manifests`` runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kubectl_iter8.hookspecs import hookimpl

if TYPE_CHECKING:
    import click


@hookimpl
def iter8_register_commands(cli: click.Group) -> None:
    from .commands import controller
    from .release import release

    cli.add_command(controller)
    cli.add_command(release)
