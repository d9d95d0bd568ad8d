"""What a gRPC run measured -> Iter8's ``grpc/...`` metrics and the task record.

The metrics are the shared ones (:mod:`..loadgen.metrics`): ``<prefix>/request-count``,
``error-count`` (calls that did not end OK), ``error-rate``, ``latency-mean|stddev|min|max|pNN``
in milliseconds, and the encoded latency histogram (microseconds) as ``<prefix>/latency``. The
prefix is ``grpc``, or ``grpc-<endpoint>`` for named endpoints.

The record adds what ghz reported and Iter8 dropped: the distribution of status codes by name
(``{"OK": 198, "DEADLINE_EXCEEDED": 2}``), the distinct error messages, and for streams the
messages sent and received.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kubectl_iter8.result import Insights

from ..loadgen import metrics as shared
from ..loadgen.stats import RunStats

#: gRPC's status codes by number (they are fixed by the protocol).
STATUS_NAMES = (
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
)


def status_name(code: int) -> str:
    return STATUS_NAMES[code] if 0 <= code < len(STATUS_NAMES) else f"CODE_{code}"


def is_error(code: int) -> bool:
    """Every status but OK is an error (ghz's and Iter8's rule)."""
    return code != 0


def record(
    insights: Insights, prefix: str, stats: RunStats, percentiles: Iterable[float]
) -> dict[str, float]:
    """Register and add the run's metrics for version 0; returns them by full name."""
    return shared.record(insights, prefix, stats, is_error, percentiles)


def details(stats: RunStats, extra: dict[str, Any]) -> dict[str, Any]:
    """The facts kept in the task record for one endpoint (JSON/YAML-serialisable)."""
    data = shared.details(stats, is_error)
    data["statusCodes"] = {status_name(code): count for code, count in sorted(stats.statuses.items())}
    if not stats.errors:
        data.pop("errorReasons", None)
    data.update(extra)
    return data
