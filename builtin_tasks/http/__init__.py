"""Iter8's ``http`` task: a fast HTTP/1.1 load generator with open- and closed-loop models.

Modules, from the outside in:

* :mod:`.task`: the task's inputs (Iter8's names and defaults) and its ``run``;
* :mod:`.metrics`: measured run -> Iter8 metrics and the task record;
* :mod:`.workers`: several processes sharing one load, merged exactly;
* :mod:`.engine`: the asyncio/httptools client and the two load loops;
* :mod:`.stats`: counts and HDR histograms, mergeable and serialisable;
* :mod:`.target`: one endpoint's pre-encoded request and TLS settings;
* :mod:`.progress`: the progress line on a terminal.

``HttpTask`` is imported on first use, so that importing the engine alone stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .task import HttpInputs, HttpTask

__all__ = ["HttpInputs", "HttpTask"]


def __getattr__(name: str) -> Any:
    # Lazy: worker processes and benchmarks import the engine alone, without pydantic and the
    # task's models (a quarter of a second of start-up per process).
    if name in __all__:
        from . import task

        return getattr(task, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
