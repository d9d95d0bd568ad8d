"""The hooks a kubectl-iter8 plugin may implement.

A plugin is a module or object with functions named after these specs and decorated with
``kubectl_iter8.hookimpl``; a distribution exposes it through the entry-point group ``iter8``::

    [project.entry-points.iter8]
    my-tasks = "my_package.iter8_plugin"

Built-in tasks, routers and commands are plugins written the same way. An implementation may take
any subset of a spec's arguments (pluggy's rule), so specs can grow arguments without breaking
plugins. Every hook name starts with ``iter8_``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import click

    from .experiment import Experiment
    from .registry import ResourceTypeRegistry, RouterRegistry, TaskRegistry
    from .result import TaskRecord

#: The pluggy project name, and the entry-point group plugins are found through.
PROJECT_NAME = "iter8"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


# -------------------------------------------------------------------------------------------------
# Registration hooks: called once per process, when the host first needs the registry.
# -------------------------------------------------------------------------------------------------


@hookspec
def iter8_register_tasks(registry: TaskRegistry) -> None:
    """Add task classes that experiments can name in ``task:`` entries.

    :param registry: call ``registry.register(TaskClass)`` once per task. A name or alias already
        registered by any plugin is refused with :class:`~kubectl_iter8.errors.DuplicateNameError`.

    Import heavy modules inside the implementation, not at the top of the plugin module: the hook
    runs only when an experiment is validated, while the plugin module is imported on every start.
    """


@hookspec
def iter8_register_routers(registry: RouterRegistry) -> None:
    """Add route plugins the traffic controller can render routing objects with.

    :param registry: call ``registry.register(router)`` with an object that has a ``name``, a
        ``Config`` model, a pure ``render(routemap, state, config)`` method (see
        :class:`~kubectl_iter8.routemap.Router`) and ``kinds``: the (API group, kind) pairs it
        renders. The controller writes with its own rights, so it refuses any other kind; a router
        without ``kinds`` may write nothing (``None``: the kinds the controller's configuration allows).
    """


@hookspec
def iter8_register_resource_types(registry: ResourceTypeRegistry) -> None:
    """Add kinds the traffic controller can watch, with the conditions that make one ready.

    :param registry: call ``registry.register(ResourceType(...))`` once per kind.
    """


@hookspec
def iter8_register_commands(cli: click.Group) -> None:
    """Add subcommands or subcommand groups to ``kubectl iter8``.

    :param cli: the root click group; use ``cli.add_command(...)`` or ``@cli.command()``.

    Called on every start, including ``--help``: keep imports inside the command functions so the
    CLI stays fast to start.
    """


# -------------------------------------------------------------------------------------------------
# Event hooks: observers of a run. An exception raised here fails the experiment.
# -------------------------------------------------------------------------------------------------


@hookspec
def iter8_experiment_started(experiment: Experiment) -> None:
    """Called after the result was initialised and before the first task runs.

    :param experiment: the experiment, with its fresh ``result``.
    """


@hookspec
def iter8_task_finished(experiment: Experiment, index: int, record: TaskRecord) -> None:
    """Called after each spec entry ended (completed, skipped or failed) and the result was saved.

    :param experiment: the experiment, with its result so far.
    :param index: the position of the entry in ``spec``.
    :param record: what happened to the entry (status, duration, message, details).
    """


@hookspec
def iter8_experiment_finished(experiment: Experiment) -> None:
    """Called once the run has ended, whether it completed or failed, after the last save.

    :param experiment: the experiment with its final result.
    """
