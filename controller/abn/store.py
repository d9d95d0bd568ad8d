"""The A/B/n metric store's contract, and the types and helpers its backends share.

The gRPC service writes every value a frontend sends (:meth:`MetricStore.write`) and records which
users were assigned to which version (:meth:`MetricStore.add_users`). ``/metrics`` and the
dashboard's summaries read :meth:`MetricStore.summary`, statistics the stores keep up to date as
values are written (:mod:`.aggregates`); the dashboard's histograms and ``/abnValues`` read
:meth:`MetricStore.recent`, at most :data:`WINDOW` latest values per metric and version. So no
read of the HTTP port grows with the number of values; only :meth:`MetricStore.values` (tests,
tools) reads them all. Both backends give the same numbers:

* :mod:`.sqlite_store`: an embedded SQLite file (``sqlite:PATH``, or a bare path); for one
  controller replica, or several on one machine sharing the file.
* :mod:`.redis_store`: a Redis server (``redis://`` or ``rediss://``) shared by every replica, so
  a value written through any replica is seen by all of them.

Both keep every value with its transaction id; writing a transaction id that is already stored
stores nothing, so a write can be retried safely. A closed store raises :class:`StoreClosedError`.

This module imports neither backend: they import it. ``--abn-store URL`` to a store (parsing the
URL, :func:`~.store_url.open_store`, the default URL, :func:`~.store_url.redact`) is
:mod:`.store_url`, which imports the backends.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, Self, runtime_checkable

from kubectl_iter8.errors import Iter8Error

if TYPE_CHECKING:
    from .summary import Summary

#: metric name -> version number -> user -> that user's values, in write order
Metrics = dict[str, dict[int, dict[str, list[float]]]]

#: Latest values kept readable per application, metric and version (:meth:`MetricStore.recent`).
WINDOW = 10_000


@dataclass(frozen=True)
class Values:
    """Everything stored for one application: its metric values and the users assigned per version."""

    metrics: Metrics = field(default_factory=dict)
    #: version number -> users recorded by :meth:`MetricStore.add_users`
    users: dict[int, set[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Recent:
    """The latest values of one metric and version, and what the read side needs with them."""

    #: The latest values (at most the limit asked for), oldest first.
    values: list[float]
    #: The current sum of each distinct user among those values (all of that user's values, not only
    #: those in the window), in the order the users first appear in the window.
    sums: list[float]
    #: How many distinct users wrote a value of this metric and version, in all.
    writers: int


#: metric name -> version number (with at least one value) -> its latest values
RecentValues = dict[str, dict[int, Recent]]


class StoreClosedError(Iter8Error):
    """The store was used after :meth:`MetricStore.close`."""

    def __init__(self) -> None:
        super().__init__("the A/B/n metric store is closed")


@runtime_checkable
class MetricStore(Protocol):
    """What the A/B/n service writes to and the read side reads from; thread-safe."""

    def write(
        self,
        application: str,
        version: int,
        metric: str,
        user: str,
        value: float,
        *,
        transaction: str | None = None,
        at: float | None = None,
    ) -> str:
        """Store one value durably (it survives a crash once this returns); returns its transaction id.

        ``transaction`` defaults to a fresh uuid4 hex, ``at`` (seconds since the epoch) to now.

        :raises ValueError: when ``value`` is not a finite number.
        """
        ...

    def add_users(self, application: str, version: int, users: Iterable[str]) -> None:
        """Record that ``users`` were assigned to ``version`` (a set: adding again only marks them seen
        now); beyond the store's ``max_users`` records of the application, the least recently seen go."""
        ...

    def metric_names(self, application: str) -> set[str]:
        """The metric names ``application`` has values of (cheap: kept apart from the values)."""
        ...

    def summary(self, application: str) -> Summary:
        """Statistics per metric and version, over transactions and over users, as
        :func:`.summary.summarize` computes them from :meth:`values`, but from aggregates kept as
        values are written: its cost does not grow with the number of values."""
        ...

    def recent(self, application: str, limit: int = WINDOW) -> RecentValues:
        """Per metric and version, the latest ``limit`` values (at most :data:`WINDOW`) and the sums
        of their users: its cost grows with ``limit`` and the number of series, not with the values."""
        ...

    def values(self, application: str) -> Values:
        """Every value and assigned user of ``application`` (empty when it has none): reads them all."""
        ...

    def applications(self) -> list[str]:
        """Every application with a value or a user, sorted."""
        ...

    def count(self, application: str | None = None) -> int:
        """How many values are stored for ``application``, or in all."""
        ...

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc: object) -> None: ...


def finite(value: float) -> float:
    """``value`` as a float; the check both backends make before storing."""
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"metric value must be a finite number, not {value!r}")
    return number


def new_transaction() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True)
class RedisAddress:
    """A parsed ``redis://`` or ``rediss://`` store URL (:func:`.store_url.parse_redis_url`), what
    :func:`.redis_store.connect` opens: here, so that the Redis backend needs only this module."""

    host: str
    port: int
    db: int
    username: str | None
    password: str | None
    ssl: bool
    #: the URL with its password hidden, for messages and logs
    shown: str
