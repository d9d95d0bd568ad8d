"""Bounds on what a frontend may send to the A/B/n service, and how a refused value is quoted.

Every application, user and metric name a frontend sends becomes a key in the store and a label on
``/metrics``; without bounds, a few calls with megabyte names made every scrape hundreds of
megabytes, kept across restarts. Bytes are counted in UTF-8 (what the store and the wire keep).

Per application, the number of metric names is capped (:attr:`Limits.max_metrics`) and the user
records kept from Lookup are capped (:attr:`Limits.max_users`, the least recently seen evicted).
Versions need no cap: they come from the routemap, not from the caller. ``controller serve`` sets
both caps (``--abn-max-metrics``, ``--abn-max-users``, checked by :func:`positive`).

:func:`read_token_file` reads the shared token the calls must carry from a file (``--abn-token-file``),
so that the token is mounted from a Secret and never on a command line or in a log.
"""

from __future__ import annotations

from dataclasses import dataclass

from kubectl_iter8.errors import UsageError

#: A Kubernetes namespace name (DNS label).
MAX_NAMESPACE_BYTES = 63
#: A routemap (ConfigMap) name (DNS subdomain).
MAX_APP_BYTES = 253
MAX_USER_BYTES = 256
MAX_METRIC_BYTES = 256
#: A float's text: ``repr`` of any double is at most 24 characters.
MAX_VALUE_TEXT = 64
#: Greatest magnitude of a value: beyond it, sums of many values lose the units (doubles have 53 bits).
MAX_MAGNITUDE = 1e15
#: Characters of a refused value quoted in a message.
QUOTED = 32

DEFAULT_MAX_METRICS = 100
DEFAULT_MAX_USERS = 1_000_000


def quote(text: str) -> str:
    """``text`` fit for a one-line message: its first :data:`QUOTED` characters, and its size when cut."""
    if len(text) <= QUOTED:
        return repr(text)
    return f"{text[:QUOTED]!r}... ({len(text.encode('utf-8', 'surrogatepass'))} bytes)"


def too_long(text: str, limit: int) -> bool:
    # A str of more than `limit` characters is too long whatever its encoding; encode only short ones.
    return len(text) > limit or len(text.encode("utf-8", "surrogatepass")) > limit


@dataclass(frozen=True)
class Limits:
    """The per-application caps of the service."""

    #: Distinct metric names per application; a new name beyond it is RESOURCE_EXHAUSTED.
    max_metrics: int = DEFAULT_MAX_METRICS
    #: User records (from Lookup) kept per application; the least recently seen go first.
    max_users: int = DEFAULT_MAX_USERS


def positive(text: str, name: str) -> int:
    """``text`` as a positive integer.

    :raises UsageError: naming ``name`` (a flag or ``$VARIABLE``) when it is not one.
    """
    text = text.strip()
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise UsageError(f"{name}: expected a positive integer, not {quote(text)}")
    return int(text)


def read_token_file(path: str, name: str) -> str:
    """The token in the file ``path`` (surrounding whitespace removed).

    :raises UsageError: naming ``name`` (a flag or ``$VARIABLE``) and the file (never its content)
        when the file cannot be read, is empty, or holds more than one line.
    """
    try:
        with open(path, encoding="utf-8") as file:
            token = file.read(4097).strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise UsageError(f"{name}: {path}: cannot read: {reason}") from None
    if not token:
        raise UsageError(f"{name}: {path}: empty")
    if len(token) > 4096 or not (token.isascii() and token.isprintable()):
        raise UsageError(f"{name}: {path}: expected one line of printable ASCII, at most 4096")
    return token
