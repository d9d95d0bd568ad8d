"""The progress line of a load run: on a terminal only, rewritten in place, on standard error.

``12,400/50,000 requests  8,210/s  3 errors  4s left``: what a user watching a long run wants to
know, refreshed a few times a second. When standard error is not a terminal (CI logs, pipes,
tests) nothing is written at all, so logs stay clean.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import Callable
from typing import TextIO

#: Seconds between refreshes.
PERIOD = 0.25


class ProgressLine:
    """Polls ``counts()`` -> ``(done, errors)`` and redraws one line until :meth:`stop`."""

    def __init__(
        self,
        label: str,
        counts: Callable[[], tuple[int, int]],
        *,
        total: int | None = None,
        duration: float | None = None,
        stream: TextIO | None = None,
    ) -> None:
        self.label = label
        self.counts = counts
        self.total = total
        self.duration = duration
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = _isatty(self.stream)
        self._task: asyncio.Task[None] | None = None
        self._started = time.monotonic()
        self._last = (self._started, 0)
        self._width = 0

    def start(self) -> None:
        if self.enabled:
            self._started = time.monotonic()
            self._last = (self._started, 0)
            self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(PERIOD)
            self.draw()

    def render(self, now: float, done: int, errors: int) -> str:
        last_time, last_done = self._last
        rate = (done - last_done) / (now - last_time) if now > last_time else 0.0
        self._last = (now, done)
        parts = [self.label, f"{done:,}/{self.total:,} requests" if self.total else f"{done:,} requests"]
        parts += [f"{rate:,.0f}/s", f"{errors:,} errors"]
        left: float | None = None
        if self.duration is not None:
            left = max(0.0, self.duration - (now - self._started))
        elif self.total and rate > 0:
            left = max(0, self.total - done) / rate
        if left is not None:
            parts.append(f"{left:.0f}s left")
        return "  ".join(parts)

    def draw(self) -> None:
        done, errors = self.counts()
        line = self.render(time.monotonic(), done, errors)
        self._width = max(self._width, len(line))
        self.stream.write("\r" + line.ljust(self._width))
        self.stream.flush()


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
