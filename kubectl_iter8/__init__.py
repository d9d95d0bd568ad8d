"""kubectl-iter8: the Kubernetes release optimizer, as a kubectl plugin.

What a plugin author imports lives here. Everything but the errors is loaded on first use, so that
importing this package stays fast and light: the A/B/n client SDK (:mod:`kubectl_iter8.sdk`)
must not pull in pluggy or pydantic.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import (
    DuplicateNameError,
    ExitCode,
    InvalidExperimentError,
    Iter8Error,
    PluginError,
    StorageError,
    TaskError,
    UsageError,
)
from .version import __version__

if TYPE_CHECKING:
    from .hookspecs import hookimpl
    from .registry import ResourceType, TaskRegistry
    from .result import Insights, MetricInfo, Result
    from .routemap import RouteMap, Router, RoutingState
    from .task import Duration, Task, TaskContext, TaskInputs

_LAZY = {
    "Duration": "task",
    "hookimpl": "hookspecs",
    "Insights": "result",
    "MetricInfo": "result",
    "ResourceType": "registry",
    "Result": "result",
    "RouteMap": "routemap",
    "Router": "routemap",
    "RoutingState": "routemap",
    "Task": "task",
    "TaskContext": "task",
    "TaskInputs": "task",
    "TaskRegistry": "registry",
}

__all__ = [
    "DuplicateNameError",
    "Duration",
    "ExitCode",
    "Insights",
    "InvalidExperimentError",
    "Iter8Error",
    "MetricInfo",
    "PluginError",
    "ResourceType",
    "Result",
    "RouteMap",
    "Router",
    "RoutingState",
    "StorageError",
    "Task",
    "TaskContext",
    "TaskError",
    "TaskInputs",
    "TaskRegistry",
    "UsageError",
    "__version__",
    "hookimpl",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
