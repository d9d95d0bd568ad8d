"""The A/B/n metric store's contract, and ``--abn-store URL`` to a store.

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

Passwords in store URLs never reach a message or a log: use :func:`redact` to show a URL.
"""

from __future__ import annotations

import math
import os
import re
import sqlite3
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, Self, runtime_checkable
from urllib.parse import unquote, urlsplit

from kubectl_iter8.errors import UsageError

if TYPE_CHECKING:
    from .sqlite_store import SqliteStore as SqliteStore
    from .summary import Summary

#: metric name -> version number -> user -> that user's values, in write order
Metrics = dict[str, dict[int, dict[str, list[float]]]]

#: Latest values kept readable per application, metric and version (:meth:`MetricStore.recent`).
WINDOW = 10_000

#: What ``--abn-store`` accepts, for messages.
URL_FORMS = "sqlite:PATH, a bare PATH, or redis[s]://[[user]:password@]host[:port][/db]"


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


class StoreClosedError(RuntimeError):
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


# scheme://userinfo@rest, where userinfo runs to the LAST "@" so that an unencoded "@" or "/" in a
# password is still hidden.
_USERINFO = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>.*)@(?P<rest>[^@]*)$", re.DOTALL)


def redact(url: str) -> str:
    """``url`` fit to show: a password (``user:password@``) becomes ``***``.

    Userinfo without a colon is hidden whole: Redis users often put the password there.
    """
    m = _USERINFO.match(url)
    if m is None or m["scheme"].lower() == "sqlite://":  # a file name may hold an "@"
        return url
    user, colon, _ = m["userinfo"].partition(":")
    shown = f"{user}:***" if colon else "***"
    return f"{m['scheme']}{shown}@{m['rest']}"


@dataclass(frozen=True)
class RedisAddress:
    """A parsed ``redis://`` or ``rediss://`` store URL."""

    host: str
    port: int
    db: int
    username: str | None
    password: str | None
    ssl: bool
    #: the URL with its password hidden, for messages and logs
    shown: str


def parse_redis_url(url: str) -> RedisAddress:
    """``redis[s]://[[user]:password@]host[:port][/db]``; user and password may be %-encoded.

    :raises UsageError: naming ``--abn-store`` and what is wrong, never the password.
    """
    shown = redact(url)

    def bad(what: str) -> UsageError:
        return UsageError(
            f"--abn-store {shown}: {what}; expected redis[s]://[[user]:password@]host[:port][/db]"
        )

    scheme, _, rest = url.partition("://")
    userinfo, at, hostpart = rest.rpartition("@")
    username = password = None
    if at:
        if ":" not in userinfo:
            raise bad("put the password after a colon (redis://:password@host)")
        user, _, secret = userinfo.partition(":")
        username, password = unquote(user) or None, unquote(secret)
    if "?" in hostpart or "#" in hostpart:
        raise bad("query parameters are not supported")
    try:
        parts = urlsplit(f"//{hostpart}")
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        raise bad(f"bad host or port ({exc})") from None
    if not host:
        raise bad("no host")
    db_text = parts.path.removeprefix("/")
    if db_text and not (db_text.isascii() and db_text.isdigit()):
        raise bad(f"the database must be a number, not {db_text!r}")
    return RedisAddress(
        host=host,
        port=6379 if port is None else port,
        db=int(db_text or 0),
        username=username,
        password=password,
        ssl=scheme.lower() == "rediss",
        shown=shown,
    )


def sqlite_path(url: str) -> Path:
    """The file of ``sqlite:PATH`` / ``sqlite://PATH`` (so ``sqlite:///abs`` is absolute) or a bare path."""
    if url.lower().startswith("sqlite:"):
        path = url[len("sqlite:") :]
        path = path[2:] if path.startswith("//") else path
    else:
        path = url
    if not path:
        raise UsageError(f"--abn-store {url}: no file name; expected {URL_FORMS}")
    return Path(path)


def default_sqlite_file(env: Mapping[str, str] | None = None) -> Path:
    """Where ``controller serve`` keeps A/B/n values by default: ``$XDG_STATE_HOME/kubectl-iter8/abn.sqlite``,
    or ``~/.local/state/kubectl-iter8/abn.sqlite`` (XDG's default) when the variable is unset.

    Not the current directory: a run in a checkout once left ``iter8-abn.sqlite*`` files there.
    """
    env = os.environ if env is None else env
    base = env.get("XDG_STATE_HOME", "").strip()
    # The XDG specification: a relative path is invalid and is ignored.
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".local" / "state"
    return root / "kubectl-iter8" / "abn.sqlite"


def private_folder(path: Path) -> None:
    """Create ``path`` (and its parents) when missing, the folder itself readable by its owner only
    (mode 0700): the values are the business's figures. An existing folder is left as it is."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)


def default_store_url() -> str:
    """``sqlite:`` and :func:`default_sqlite_file`, its folder created.

    :raises UsageError: naming ``--abn-store`` when the folder cannot be created.
    """
    path = default_sqlite_file()
    try:
        private_folder(path.parent)
    except OSError as exc:
        raise UsageError(f"--abn-store: cannot create {path.parent}: {exc.strerror}") from None
    return f"sqlite:{path}"


def open_store(url: str, *, max_users: int | None = None) -> MetricStore:
    """The store ``--abn-store url`` names: ``sqlite:PATH``, a bare path, or ``redis[s]://...``;
    keeping at most ``max_users`` user records per application (default :data:`.limits.DEFAULT_MAX_USERS`).

    :raises UsageError: one line naming ``--abn-store`` and what is wrong (a bad URL, or a Redis
        server that does not answer); a password never appears in it.
    """
    from .limits import DEFAULT_MAX_USERS

    keep = DEFAULT_MAX_USERS if max_users is None else max_users
    url = url.strip()
    if not url:
        raise UsageError(f"--abn-store: empty; expected {URL_FORMS}")
    scheme = url.partition(":")[0].lower() if re.match(r"[A-Za-z][A-Za-z0-9+.-]*:", url) else ""
    if scheme in ("redis", "rediss"):
        if not url[len(scheme) :].startswith("://"):
            raise UsageError(f"--abn-store {redact(url)}: expected {scheme}://host[:port][/db]")
        from .redis_store import connect  # imports redis only when asked for

        return connect(parse_redis_url(url), max_users=keep)
    if "://" in url and scheme != "sqlite":
        raise UsageError(f"--abn-store {redact(url)}: unknown scheme {scheme!r}; expected {URL_FORMS}")
    from .sqlite_store import SqliteStore

    try:
        return SqliteStore(sqlite_path(url), max_users=keep)
    except (OSError, sqlite3.Error) as exc:
        raise UsageError(f"--abn-store {redact(url)}: cannot open: {exc}") from None


def __getattr__(name: str) -> object:
    # ``from .store import SqliteStore`` keeps working without a circular import at load time.
    if name == "SqliteStore":
        from .sqlite_store import SqliteStore

        return SqliteStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
