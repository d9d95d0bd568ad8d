"""What to call and how much: the parts of the inputs the engine needs, free of gRPC imports.

Kept apart so that validating an experiment (and ``kubectl iter8 --help``) never imports grpc.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_CALL = re.compile(r"([A-Za-z_][\w.]*)[./]([A-Za-z_]\w*)")


def parse_call(call: str) -> tuple[str, str]:
    """``pkg.Service/Method`` or ``pkg.Service.Method`` -> (``pkg.Service``, ``Method``)."""
    text = call.strip()
    match = _CALL.fullmatch(text)
    if match is None or ("." not in match.group(1) and "/" not in text):
        raise ValueError(f"call {call!r}: write it as package.Service/Method or package.Service.Method")
    return match.group(1), match.group(2)


@dataclass(frozen=True)
class Plan:
    """How much load, and how."""

    concurrency: int = 50
    #: Calls per second; 0 means the closed loop at maximum speed.
    qps: float = 0.0
    #: Exactly this many calls, unless ``duration`` is set.
    total: int | None = 200
    duration: float | None = None
    #: Deadline of each call, in seconds.
    timeout: float = 20.0
    #: Messages per client or bidirectional stream (None: one per data item, or unbounded while
    #: ``stream_duration`` lasts).
    stream_count: int | None = None
    stream_interval: float = 0.0
    stream_duration: float | None = None
    #: Offset of this process's open-loop schedule, when several shard pods share one rate.
    phase: float = 0.0
