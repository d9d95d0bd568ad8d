"""Input checks the load tasks share (``http`` and ``grpc``): pydantic validators call these.

A module of its own, importing only ``re``, so that validating an experiment does not load the
statistics and histogram machinery of :mod:`.metrics`.
"""

from __future__ import annotations

import re

_ENDPOINT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def check_endpoint_name(name: str) -> None:
    """Endpoint names become metric prefixes (``http-<name>/``): refuse what would not read as one.

    :raises ValueError: naming the endpoint (for an input validator).
    """
    if not _ENDPOINT_ID.fullmatch(name):
        raise ValueError(f"endpoint name {name!r}: use letters, digits, '.', '_' and '-'")


def check_percentiles(value: list[float] | None) -> list[float] | None:
    """The ``percentiles`` input, unchanged, once each is in (0, 100].

    :raises ValueError: naming the percentile (for an input validator).
    """
    for percentile in value or []:
        if not 0 < percentile <= 100:
            raise ValueError(f"percentile {percentile:g} is not in (0, 100]")
    return value
