"""Running the product's async code: on uvloop where it is installed, else on asyncio's own loop.

uvloop roughly doubles what one core can drive in the load engines; everything else works the same
on either loop, so nothing but this module knows which one runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency except on Windows
        return None
    return uvloop.new_event_loop


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion in a fresh event loop (Ctrl-C cancels it cleanly)."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(coro)
