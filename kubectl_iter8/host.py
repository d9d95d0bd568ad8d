"""The plugin host: builds a plugin manager and calls hooks through a typed facade.

(Named ``host`` because ``kubectl_iter8.plugins`` is the package of built-in route plugins.)

Loading order (pytest's and tox's): the essential core plugins, the default built-in plugins (by
dotted name only, so the core never imports them statically), then third-party plugins from the
``iter8`` entry-point group. Built-ins register first so that a third-party plugin that claims a
built-in name is the one the duplicate error names. A third-party plugin that fails to import is
reported and skipped: one broken plugin must not take ``kubectl iter8`` down.

Environment:

``ITER8_DISABLE_PLUGINS``
    Comma-separated plugin names (entry-point names or built-in dotted names) not to load.
    Essential plugins cannot be disabled.
``ITER8_NO_AUTOLOAD=1``
    Load no third-party plugins from entry points.
``ITER8_PLUGINS``
    Comma-separated importable module names to load as plugins as well: a plugin under
    development, or one used by tests, without packaging it (pytest's ``-p``).
``ITER8_TRACE_PLUGINS=1``
    Print every hook call, its arguments and results to standard error.

Start-up: the host is built on every run, ``--help`` included, and ``importlib.metadata`` (with
``email``, ``zipfile`` and ``pathlib``) was a quarter of ``--help``. So it is imported only when a
distribution may declare an ``iter8`` entry point: :func:`may_declare_entry_points` first reads the
``entry_points.txt`` files that the scan would read, without parsing them. The frozen application
(the Krew archive) does not scan at all: it holds only the distributions it was built with, none of
which declares an ``iter8`` entry point (the build checks that, packaging/kubectl-iter8.spec), and
nothing can be installed into it. Built-in plugins load by dotted name either way, and
``ITER8_PLUGINS`` still works.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

import pluggy

from . import hookspecs
from .errors import Iter8Error, PluginError, PluginHookError
from .registry import Registry, ResourceTypeRegistry, RouterRegistry, TaskRegistry
from .version import __version__

if TYPE_CHECKING:
    import click

    from .experiment import Experiment
    from .result import TaskRecord

#: Core plugins that make up the CLI itself; they cannot be disabled.
ESSENTIAL_PLUGINS = ("kubectl_iter8.commands",)
#: Built-in plugins, registered exactly like third-party ones.
DEFAULT_PLUGINS = ("kubectl_iter8.builtin_tasks", "kubectl_iter8.plugins", "kubectl_iter8.controller")

R = TypeVar("R", bound=Registry[Any])


@dataclass
class PluginInfo:
    """One loaded (or failed) plugin, as ``kubectl iter8 plugins`` shows it."""

    name: str
    #: ``builtin`` or the name of the distribution that provides the plugin.
    source: str
    version: str
    hooks: list[str] = field(default_factory=list)
    tasks: list[str] = field(default_factory=list)
    routers: list[str] = field(default_factory=list)
    resource_types: list[str] = field(default_factory=list)
    #: Why the plugin did not load; None when it did.
    error: str | None = None


def _env_flag(env: Mapping[str, str], name: str) -> bool:
    return env.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


class Iter8Hooks:
    """Typed access to the plugin manager: every hook call of the host goes through here."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        self.manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.manager.add_hookspecs(hookspecs)
        self._sources: dict[str, tuple[str, str]] = {}
        self.failed: dict[str, PluginInfo] = {}
        blocked = {name.strip() for name in env.get("ITER8_DISABLE_PLUGINS", "").split(",") if name.strip()}
        for dotted in ESSENTIAL_PLUGINS + tuple(p for p in DEFAULT_PLUGINS if p not in blocked):
            self._register(importlib.import_module(dotted), dotted, ("builtin", __version__))
        if not _env_flag(env, "ITER8_NO_AUTOLOAD"):
            self._load_entry_points(blocked)
        for dotted in (name.strip() for name in env.get("ITER8_PLUGINS", "").split(",")):
            if dotted and dotted not in self._sources:
                try:
                    module = importlib.import_module(dotted)
                except ImportError as exc:
                    raise PluginError(f"ITER8_PLUGINS: cannot import: {exc}", plugin=dotted) from None
                self._register(module, dotted, ("ITER8_PLUGINS", "-"))
        try:
            self.manager.check_pending()
        except pluggy.PluginValidationError as exc:
            raise PluginError(str(exc), plugin=str(self.manager.get_name(exc.plugin))) from exc
        if _env_flag(env, "ITER8_TRACE_PLUGINS"):
            self.manager.trace.root.setwriter(sys.stderr.write)
            self.manager.enable_tracing()

    def _register(self, plugin: object, name: str, source: tuple[str, str]) -> None:
        try:
            self.manager.register(plugin, name=name)
        except pluggy.PluginValidationError as exc:
            raise PluginError(str(exc), plugin=name) from exc
        self._sources[name] = source

    def _load_entry_points(self, blocked: set[str]) -> None:
        if getattr(sys, "frozen", False) or not may_declare_entry_points(hookspecs.PROJECT_NAME):
            return
        import importlib.metadata

        for ep in importlib.metadata.entry_points(group=hookspecs.PROJECT_NAME):
            if ep.name in blocked or ep.name in self._sources:
                continue
            dist = ep.dist
            source = (dist.name, dist.version) if dist is not None else ("unknown", "unknown")
            try:
                plugin = ep.load()
            except Exception as exc:
                message = f"failed to load {ep.value}: {type(exc).__name__}: {exc}"
                self.failed[ep.name] = PluginInfo(ep.name, source[0], source[1], error=message)
                print(f"warning: plugin {ep.name!r} skipped: {message}", file=sys.stderr)
                continue
            self._register(plugin, ep.name, source)

    def _fill(self, registry: R, hook_name: str) -> R:
        """Call one registration hook plugin by plugin, so errors and names are attributed.

        Each call goes through pluggy (a caller restricted to that plugin), not straight to the
        implementation, so hook-call monitoring (``ITER8_TRACE_PLUGINS``) sees these hooks too.
        """
        impls = getattr(self.manager.hook, hook_name).get_hookimpls()
        # Registration order, so a duplicate name is blamed on the later plugin; a plugin that
        # implements the hook twice (pluggy's ``specname``) is still called once.
        for name in dict.fromkeys(impl.plugin_name for impl in impls):
            others = [plugin for other, plugin in self.manager.list_name_plugin() if other != name]
            caller = self.manager.subset_hook_caller(hook_name, others)
            registry.current_plugin = name
            try:
                caller(registry=registry)
            except Iter8Error:
                raise
            except Exception as exc:
                raise PluginError(f"{hook_name} failed: {type(exc).__name__}: {exc}", plugin=name) from exc
        registry.current_plugin = "<unknown>"
        return registry

    @cached_property
    def tasks(self) -> TaskRegistry:
        """Every registered task class by name (the hook runs on first use)."""
        return self._fill(TaskRegistry(), "iter8_register_tasks")

    @cached_property
    def routers(self) -> RouterRegistry:
        return self._fill(RouterRegistry(), "iter8_register_routers")

    @cached_property
    def resource_types(self) -> ResourceTypeRegistry:
        return self._fill(ResourceTypeRegistry(), "iter8_register_resource_types")

    def register_commands(self, cli: click.Group) -> None:
        self.manager.hook.iter8_register_commands(cli=cli)

    def experiment_started(self, experiment: Experiment) -> None:
        """:raises PluginHookError: a plugin's hook raised."""
        self._event("iter8_experiment_started", experiment=experiment)

    def task_finished(self, experiment: Experiment, index: int, record: TaskRecord) -> None:
        """:raises PluginHookError: a plugin's hook raised."""
        self._event("iter8_task_finished", experiment=experiment, index=index, record=record)

    def experiment_finished(self, experiment: Experiment) -> None:
        """:raises PluginHookError: a plugin's hook raised."""
        self._event("iter8_experiment_finished", experiment=experiment)

    def _event(self, name: str, **kwargs: Any) -> None:
        caller = getattr(self.manager.hook, name)
        try:
            caller(**kwargs)
        except Exception as exc:
            import logging

            plugin = _culprit(caller.get_hookimpls(), exc)
            logging.getLogger(__name__).debug("%s of plugin %r raised", name, plugin, exc_info=True)
            text = " ".join(str(exc).split())
            text = text if len(text) <= 200 else f"{text[:197]}..."
            message = f"{name} raised {type(exc).__name__}" + (f": {text}" if text else "")
            raise PluginHookError(message, plugin=plugin, hook=name) from exc

    def plugin_infos(self) -> list[PluginInfo]:
        """Every plugin with its source, version, hooks and the names it registered."""
        infos = []
        for name, plugin in self.manager.list_name_plugin():
            if plugin is None:
                continue
            source, version = self._sources.get(name, ("unknown", "unknown"))
            hooks = sorted(caller.name for caller in self.manager.get_hookcallers(plugin) or [])
            infos.append(
                PluginInfo(
                    name=name,
                    source=source,
                    version=version,
                    hooks=hooks,
                    tasks=self.tasks.provided_by(name),
                    routers=self.routers.provided_by(name),
                    resource_types=self.resource_types.provided_by(name),
                )
            )
        return infos + list(self.failed.values())


def may_declare_entry_points(group: str) -> bool:
    """Whether a distribution that ``importlib.metadata`` finds may declare entry points of ``group``.

    Looks where the scan looks (the ``*.dist-info`` and ``*.egg-info`` folders of each ``sys.path``
    folder) for an ``entry_points.txt`` with a ``[group]`` section. What it cannot judge this way (a
    zip or an egg on ``sys.path``, a finder of distributions other than the standard one) answers
    yes, and the scan decides: a false yes costs time, never a missed plugin.
    """
    import importlib.machinery

    standard = importlib.machinery.PathFinder
    if any(hasattr(finder, "find_distributions") and finder is not standard for finder in sys.meta_path):
        return True
    for entry in sys.path:
        folder = entry or "."
        try:
            with os.scandir(folder) as children:
                names = [child.name for child in children]
        except NotADirectoryError:
            return True  # a zip archive
        except OSError:
            continue  # missing or unreadable: the scan skips it too
        if folder.lower().endswith(".egg"):
            return True
        for name in names:
            if not name.lower().endswith((".dist-info", ".egg-info")):
                continue
            try:
                with open(os.path.join(folder, name, "entry_points.txt"), "rb") as declared:
                    text = declared.read()
            except OSError:
                continue  # no entry points (or an .egg-info file): nothing the scan would find
            if group.encode() in text and _has_section(text.decode("utf-8", "replace"), group):
                return True
    return False


def _has_section(text: str, group: str) -> bool:
    """Whether ``text`` has a ``[group]`` line, read as loosely as ``importlib.metadata`` reads it
    (lines stripped, then the brackets) or more so (blanks inside the brackets too)."""
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("[") and line.endswith("]") and line.strip("[]").strip() == group:
            return True
    return False


def _culprit(impls: list[Any], exc: BaseException) -> str:
    """The plugin whose hook implementation raised ``exc``: the innermost frame of its traceback
    that runs one of ``impls``."""
    owners = {getattr(impl.function, "__code__", None): impl.plugin_name for impl in impls}
    culprit = "unknown"
    tb = exc.__traceback__
    while tb is not None:
        culprit = owners.get(tb.tb_frame.f_code, culprit)
        tb = tb.tb_next
    return culprit
