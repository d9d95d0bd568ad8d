"""The Redis metric store: one Redis server shared by every controller replica.

Several replicas serve the A/B/n gRPC service; whichever one a frontend reaches, its writes go to
the same server, so every replica reads every value. Keys, with the application in a hash tag so
that one application's keys share a cluster slot::

    iter8:abn:apps                         set of applications with a value or a user
    iter8:abn:{APP}:values                 list of JSON rows [version, metric, user, txn, value, time]
    iter8:abn:{APP}:txns                   set of the transaction ids in that list
    iter8:abn:{APP}:user-versions          set of versions that have assigned users
    iter8:abn:{APP}:users:VERSION          set of users assigned to VERSION

A write is one Lua script (atomic: the transaction id is checked and the row appended together,
so a retried write is stored once), pipelined after the ``apps`` update in the same round trip;
it returns once the server has answered. How durable an answered write is depends on the server:
with ``appendonly yes`` and ``appendfsync always`` it survives a crash of Redis or of its machine,
and :func:`connect` logs a warning when it can see that the server does not persist every write.
The ``apps`` set is written before the row, so a value is never stored for an application that
:meth:`RedisStore.applications` does not list.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable
from typing import Any

import redis
from redis.backoff import EqualJitterBackoff
from redis.retry import Retry

from kubectl_iter8.errors import UsageError

from .store import RedisAddress, StoreClosedError, Values, finite, new_transaction

log = logging.getLogger(__name__)

APPS = "iter8:abn:apps"

# KEYS: values list, txns set. ARGV: txn, row. Appends the row unless the txn is already stored.
_WRITE = """
if redis.call('SADD', KEYS[2], ARGV[1]) == 1 then
  redis.call('RPUSH', KEYS[1], ARGV[2])
  return 1
end
return 0
"""

# Rows read per LRANGE, so that one read of a large application does not block the server long.
_PAGE = 10_000
# Users per SADD, so that one huge batch does not make one huge command.
_USERS_PER_COMMAND = 1_000


def _key(application: str, suffix: str) -> str:
    return f"iter8:abn:{{{application}}}:{suffix}"


def _text(data: bytes | str) -> str:
    return data.decode() if isinstance(data, bytes) else data


class RedisStore:
    """Metric values in the Redis server behind ``client`` (``name`` shows it in messages, no password)."""

    def __init__(self, client: redis.Redis, *, name: str = "redis") -> None:
        self.client = client
        self.name = name
        self._closed = False
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"RedisStore({self.name!r})"

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self.client.close()

    def __enter__(self) -> RedisStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _open(self) -> redis.Redis:
        if self._closed:
            raise StoreClosedError()
        return self.client

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
        """Store one value; returns its transaction id once the server has answered.

        A transaction id that is already stored keeps its first value.

        :raises ValueError: when ``value`` is not a finite number.
        """
        number = finite(value)
        txn = transaction or new_transaction()
        row = [int(version), metric, user, txn, number, time.time() if at is None else at]
        pipe = self._open().pipeline(transaction=False)
        pipe.sadd(APPS, application)
        pipe.eval(
            _WRITE,
            2,
            _key(application, "values"),
            _key(application, "txns"),
            txn,
            json.dumps(row, separators=(",", ":"), allow_nan=False),
        )
        pipe.execute()
        return txn

    def add_users(self, application: str, version: int, users: Iterable[str]) -> None:
        batch = list(dict.fromkeys(users))
        if not batch:
            return
        key = _key(application, f"users:{int(version)}")
        pipe = self._open().pipeline(transaction=False)
        pipe.sadd(APPS, application)
        pipe.sadd(_key(application, "user-versions"), int(version))
        for start in range(0, len(batch), _USERS_PER_COMMAND):
            pipe.sadd(key, *batch[start : start + _USERS_PER_COMMAND])
        pipe.execute()

    def values(self, application: str) -> Values:
        client = self._open()
        out = Values()
        key = _key(application, "values")
        # The list only grows (RPUSH), so reading it page by page never skips or repeats a row.
        start = 0
        while True:
            page = client.lrange(key, start, start + _PAGE - 1)
            for data in page:
                version, metric, user, _txn, value, _at = json.loads(data)
                out.metrics.setdefault(metric, {}).setdefault(int(version), {}).setdefault(user, []).append(
                    float(value)
                )
            if len(page) < _PAGE:
                break
            start += _PAGE
        versions = sorted(int(_text(v)) for v in client.smembers(_key(application, "user-versions")))
        if versions:
            pipe = client.pipeline(transaction=False)
            for version in versions:
                pipe.smembers(_key(application, f"users:{version}"))
            members: list[Any] = pipe.execute()
            for version, users in zip(versions, members, strict=True):
                if users:
                    out.users[version] = {_text(u) for u in users}
        return out

    def applications(self) -> list[str]:
        return sorted(_text(a) for a in self._open().smembers(APPS))

    def count(self, application: str | None = None) -> int:
        client = self._open()
        if application is not None:
            return int(client.llen(_key(application, "values")))
        apps = self.applications()
        if not apps:
            return 0
        pipe = client.pipeline(transaction=False)
        for app in apps:
            pipe.llen(_key(app, "values"))
        return sum(int(n) for n in pipe.execute())


def connect(address: RedisAddress) -> RedisStore:
    """A store on the server at ``address``, checked with a PING.

    :raises UsageError: naming the URL (password hidden) when the server does not answer.
    """
    client = redis.Redis(
        host=address.host,
        port=address.port,
        db=address.db,
        username=address.username,
        password=address.password,
        ssl=address.ssl,
        decode_responses=True,
        socket_connect_timeout=5,
        socket_timeout=10,
        health_check_interval=30,
        # Writes are idempotent (transaction ids), so a dropped connection is retried, briefly:
        # the service answers UNAVAILABLE soon rather than hold a frontend's call.
        retry=Retry(EqualJitterBackoff(cap=1.0, base=0.05), retries=3),
    )
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        message = str(exc)
        if address.password:
            message = message.replace(address.password, "***")
        raise UsageError(f"--abn-store {address.shown}: cannot connect: {message}") from None
    _warn_unless_persistent(client, address.shown)
    return RedisStore(client, name=address.shown)


def _warn_unless_persistent(client: redis.Redis, shown: str) -> None:
    try:
        config = client.config_get("append*")  # one pattern: servers before 7.0 take only one
    except redis.RedisError:
        return  # CONFIG is often disabled on managed servers; then only their documentation tells
    if config.get("appendonly") != "yes" or config.get("appendfsync") != "always":
        log.warning(
            "A/B/n store %s: appendonly=%s appendfsync=%s; acknowledged values may be lost if Redis"
            " crashes (use appendonly yes, appendfsync always)",
            shown,
            config.get("appendonly"),
            config.get("appendfsync"),
        )
