"""The progress line of a load run: shared with the ``grpc`` task, see :mod:`..loadgen.progress`."""

from __future__ import annotations

from ..loadgen.progress import PERIOD, ProgressLine

__all__ = ["PERIOD", "ProgressLine"]
