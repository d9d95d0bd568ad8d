"""Durations as experiments write them: Go-style strings (``1m30s``, ``250ms``) or plain seconds.

Iter8's experiment files use Go's ``time.ParseDuration`` syntax, so the same strings must keep
working here; a bare number is read as seconds, which is what a YAML author expects.
"""

from __future__ import annotations

import re

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")


def parse_duration(value: str | float | int) -> float:
    """Return the number of seconds that ``value`` stands for.

    :param value: a Go duration string such as ``"1h2m3.5s"``, or a number of seconds.
    :returns: seconds, never negative.
    :raises ValueError: when ``value`` is not a duration.
    """
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")  # noqa: TRY004 - one error type for every bad duration
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"{value!r} is not a duration (negative)")
        return float(value)
    text = value.strip()
    if re.fullmatch(r"\d+(\.\d*)?", text):
        return float(text)
    pos, total = 0, 0.0
    while pos < len(text):
        match = _PART.match(text, pos)
        if match is None:
            raise ValueError(f"{value!r} is not a duration")
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if not text:
        raise ValueError(f"{value!r} is not a duration")
    return total


def format_duration(seconds: float) -> str:
    """Return a short human form of ``seconds`` (``1m30s``, ``250ms``) for messages and reports."""
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(int(minutes), 60)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else "", f"{secs:g}s" if secs else ""]
    return "".join(parts) or "0s"
