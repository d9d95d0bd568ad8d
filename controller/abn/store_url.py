"""``--abn-store URL`` to a metric store: parsing store URLs and opening the store one names.

:func:`open_store` is the factory the controller calls (:mod:`.runtime`); :func:`default_store_url`
is the URL it uses when none is given. They live apart from :mod:`.store`, the contract both
backends implement, so that the dependencies point one way: this module imports the backends
(:mod:`.redis_store` only when a ``redis://`` URL asks for it, so the ``redis`` package is not
loaded for SQLite), the backends import :mod:`.store`, and :mod:`.store` imports neither.

Passwords in store URLs never reach a message or a log: use :func:`redact` to show a URL.
"""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import unquote, urlsplit

from kubectl_iter8.errors import UsageError

from .limits import DEFAULT_MAX_USERS
from .sqlite_store import SqliteStore
from .store import MetricStore, RedisAddress

#: What ``--abn-store`` accepts, for messages.
URL_FORMS = "sqlite:PATH, a bare PATH, or redis[s]://[[user]:password@]host[:port][/db]"

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
    try:
        return SqliteStore(sqlite_path(url), max_users=keep)
    except (OSError, sqlite3.Error) as exc:
        raise UsageError(f"--abn-store {redact(url)}: cannot open: {exc}") from None
