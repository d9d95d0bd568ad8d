"""The Redis metric store: one Redis server shared by every controller replica.

Several replicas serve the A/B/n gRPC service; whichever one a frontend reaches, its writes go to
the same server, so every replica reads every value. Keys, with the application in a hash tag so
that one application's keys share a cluster slot::

    iter8:abn:apps                         set of applications with a value or a user
    iter8:abn:{APP}:values                 list of JSON rows [version, metric, user, txn, value, time]
    iter8:abn:{APP}:txns                   set of the transaction ids in that list
    iter8:abn:{APP}:user-versions          set of versions that have assigned users
    iter8:abn:{APP}:users:VERSION          set of users assigned to VERSION
    iter8:abn:{APP}:users-seen             sorted set of JSON [version, user], scored by when last seen
    iter8:abn:{APP}:metrics                set of the application's metric names
    iter8:abn:{APP}:series                 set of VERSION:METRIC with values
    iter8:abn:{APP}:agg:VERSION:METRIC     hash: running statistics (:mod:`.aggregates`)
    iter8:abn:{APP}:sums:VERSION:METRIC    sorted set: each writer's sum
    iter8:abn:{APP}:aggregated             set once the aggregates hold every value of the list
    iter8:abn:{APP}:recent:VERSION:METRIC  list: the latest WINDOW rows of that series (as in values)
    iter8:abn:{APP}:windowed               set once the recent lists hold the tail of every series

The aggregates are updated by the same Lua script that appends a value, with the arithmetic of
:class:`~.aggregates.Running` (Lua numbers are doubles, written back with 17 digits, so both
backends give the same numbers). Data written before the aggregates existed is aggregated by the
first script that finds ``aggregated`` missing, from the list, atomically; likewise the recent
lists (:meth:`RedisStore.recent`, what the dashboard and ``/abnValues`` read) are filled from the
list by the first script that finds ``windowed`` missing.

Beyond ``max_users`` members of ``users-seen``, the least recently seen are removed from it and from
their ``users:VERSION`` set (users recorded by versions before ``users-seen`` existed are kept).

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

from .aggregates import Running, over_users
from .limits import DEFAULT_MAX_USERS
from .store import (
    WINDOW,
    Recent,
    RecentValues,
    RedisAddress,
    StoreClosedError,
    Values,
    finite,
    new_transaction,
)
from .summary import Summary, VersionSummary

log = logging.getLogger(__name__)

APPS = "iter8:abn:apps"

# KEYS: values list, marker. ARGV: key prefix "iter8:abn:{APP}:". Defines add(version, metric, user,
# value) and remember(version, metric, row); brings the aggregates and the recent lists up to date.
_AGGREGATE = """
local prefix = ARGV[1]
local function f(x) return string.format('%.17g', x) end
local function remember(version, metric, row)
  local recent = prefix .. 'recent:' .. tostring(version) .. ':' .. metric
  redis.call('RPUSH', recent, row)
  redis.call('LTRIM', recent, -WINDOW, -1)
end
local function add(version, metric, user, value)
  local series = tostring(version) .. ':' .. metric
  local agg = prefix .. 'agg:' .. series
  local sums = prefix .. 'sums:' .. series
  redis.call('SADD', prefix .. 'series', series)
  local a = redis.call('HMGET', agg, 'n', 'mean', 'm2', 'min', 'max', 'wn', 'wmean', 'wm2')
  local n, mean, m2 = tonumber(a[1]) or 0, tonumber(a[2]) or 0, tonumber(a[3]) or 0
  local lo, hi = tonumber(a[4]) or value, tonumber(a[5]) or value
  local wn, wmean, wm2 = tonumber(a[6]) or 0, tonumber(a[7]) or 0, tonumber(a[8]) or 0
  n = n + 1
  local d = value - mean
  mean = mean + d / n
  m2 = m2 + d * (value - mean)
  if value < lo then lo = value end
  if value > hi then hi = value end
  local old = redis.call('ZSCORE', sums, user)
  if old then
    old = tonumber(old)
    local wmean2 = wmean + value / wn
    wm2 = wm2 + value * ((old + value - wmean2) + (old - wmean))
    if wm2 < 0 then wm2 = 0 end
    wmean = wmean2
    redis.call('ZADD', sums, f(old + value), user)
  else
    wn = wn + 1
    local e = value - wmean
    wmean = wmean + e / wn
    wm2 = wm2 + e * (value - wmean)
    redis.call('ZADD', sums, f(value), user)
  end
  redis.call('HSET', agg, 'n', n, 'mean', f(mean), 'm2', f(m2), 'min', f(lo), 'max', f(hi),
             'wn', wn, 'wmean', f(wmean), 'wm2', f(wm2))
end
local aggregate = redis.call('EXISTS', KEYS[2]) == 0
local fill = redis.call('EXISTS', prefix .. 'windowed') == 0
if aggregate or fill then
  local rows = redis.call('LRANGE', KEYS[1], 0, -1)
  for _, data in ipairs(rows) do
    local row = cjson.decode(data)
    if aggregate then add(row[1], row[2], row[3], tonumber(row[5])) end
    if fill then remember(row[1], row[2], data) end
  end
  redis.call('SET', KEYS[2], '1')
  redis.call('SET', prefix .. 'windowed', '1')
end
""".replace("WINDOW", str(WINDOW))

# KEYS: values list, marker, txns set. ARGV: prefix, txn, row, version, metric, user, value.
# Appends the row and updates the aggregates unless the txn is already stored.
_WRITE = (
    _AGGREGATE
    + """
if redis.call('SADD', KEYS[3], ARGV[2]) == 1 then
  redis.call('RPUSH', KEYS[1], ARGV[3])
  add(tonumber(ARGV[4]), ARGV[5], ARGV[6], tonumber(ARGV[7]))
  remember(tonumber(ARGV[4]), ARGV[5], ARGV[3])
  return 1
end
return 0
"""
)

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

    def __init__(
        self, client: redis.Redis, *, name: str = "redis", max_users: int = DEFAULT_MAX_USERS
    ) -> None:
        self.client = client
        self.name = name
        self.max_users = max_users
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
        pipe.sadd(_key(application, "metrics"), metric)
        pipe.eval(
            _WRITE,
            3,
            _key(application, "values"),
            _key(application, "aggregated"),
            _key(application, "txns"),
            _key(application, ""),
            txn,
            json.dumps(row, separators=(",", ":"), allow_nan=False),
            int(version),
            metric,
            user,
            repr(number),
        )
        pipe.execute()
        return txn

    def add_users(self, application: str, version: int, users: Iterable[str]) -> None:
        batch = list(dict.fromkeys(users))
        if not batch:
            return
        key = _key(application, f"users:{int(version)}")
        seen_key = _key(application, "users-seen")
        now = time.time()
        client = self._open()
        pipe = client.pipeline(transaction=False)
        pipe.sadd(APPS, application)
        pipe.sadd(_key(application, "user-versions"), int(version))
        for start in range(0, len(batch), _USERS_PER_COMMAND):
            chunk = batch[start : start + _USERS_PER_COMMAND]
            pipe.sadd(key, *chunk)
            pipe.zadd(seen_key, {json.dumps([int(version), user]): now for user in chunk})
        pipe.zcard(seen_key)
        count = int(pipe.execute()[-1])
        if count > self.max_users:
            # ZPOPMIN is atomic: replicas evicting at once each remove different records.
            evicted: list[Any] = client.zpopmin(seen_key, count - self.max_users)
            by_version: dict[int, list[str]] = {}
            for member, _score in evicted:
                old_version, user = json.loads(member)
                by_version.setdefault(int(old_version), []).append(user)
            pipe = client.pipeline(transaction=False)
            for old_version, users_out in by_version.items():
                for start in range(0, len(users_out), _USERS_PER_COMMAND):
                    pipe.srem(
                        _key(application, f"users:{old_version}"),
                        *users_out[start : start + _USERS_PER_COMMAND],
                    )
            pipe.execute()

    def _up_to_date(self, client: redis.Redis, application: str) -> None:
        """Aggregate and fill the recent lists of data written before they existed (once)."""
        markers = _key(application, "aggregated"), _key(application, "windowed")
        if client.exists(*markers) < len(markers):
            client.eval(_AGGREGATE, 2, _key(application, "values"), markers[0], _key(application, ""))

    def summary(self, application: str) -> Summary:
        client = self._open()
        self._up_to_date(client, application)
        series = sorted(_text(s) for s in client.smembers(_key(application, "series")))
        pipe = client.pipeline(transaction=False)
        for name in series:
            version = name.partition(":")[0]
            sums, users = _key(application, f"sums:{name}"), _key(application, f"users:{version}")
            pipe.hmget(
                _key(application, f"agg:{name}"), "n", "mean", "m2", "min", "max", "wn", "wmean", "wm2"
            )
            pipe.zrange(sums, 0, 0, withscores=True)
            pipe.zrange(sums, -1, -1, withscores=True)
            pipe.scard(users)
            pipe.zintercard(2, [users, sums])
        answers: list[Any] = pipe.execute()
        out: Summary = {}
        for index, name in enumerate(series):
            agg, lowest, highest, assigned, writing = answers[5 * index : 5 * index + 5]
            n, mean, m2, low, high, wn, wmean, wm2 = (float(x) for x in agg)
            version, _, metric = name.partition(":")
            writers = Running(int(wn), wmean, m2=wm2, min=float(lowest[0][1]), max=float(highest[0][1]))
            out.setdefault(metric, {})[int(version)] = VersionSummary(
                Running(int(n), mean, m2, low, high).stats(),
                over_users(writers, int(assigned) - int(writing)),
            )
        return {metric: dict(sorted(versions.items())) for metric, versions in sorted(out.items())}

    def recent(self, application: str, limit: int = WINDOW) -> RecentValues:
        limit = max(1, min(limit, WINDOW))
        client = self._open()
        self._up_to_date(client, application)
        series = sorted(_text(s) for s in client.smembers(_key(application, "series")))
        pipe = client.pipeline(transaction=False)
        for name in series:
            pipe.lrange(_key(application, f"recent:{name}"), -limit, -1)
            pipe.zcard(_key(application, f"sums:{name}"))
        answers: list[Any] = pipe.execute()
        rows = {
            name: ([json.loads(data) for data in answers[2 * i]], int(answers[2 * i + 1]))
            for i, name in enumerate(series)
        }
        users = {name: list(dict.fromkeys(row[2] for row in tail)) for name, (tail, _) in rows.items()}
        pipe = client.pipeline(transaction=False)
        for name in series:
            for start in range(0, len(users[name]), _USERS_PER_COMMAND):
                pipe.zmscore(
                    _key(application, f"sums:{name}"), users[name][start : start + _USERS_PER_COMMAND]
                )
        scores: list[Any] = [score for chunk in pipe.execute() for score in chunk]
        out: RecentValues = {}
        position = 0
        for name in series:
            tail, writers = rows[name]
            sums = [float(x) for x in scores[position : position + len(users[name])]]
            position += len(users[name])
            version, _, metric = name.partition(":")
            out.setdefault(metric, {})[int(version)] = Recent([float(row[4]) for row in tail], sums, writers)
        return {metric: dict(sorted(versions.items())) for metric, versions in sorted(out.items())}

    def metric_names(self, application: str) -> set[str]:
        return {_text(m) for m in self._open().smembers(_key(application, "metrics"))}

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


def connect(address: RedisAddress, *, max_users: int = DEFAULT_MAX_USERS) -> RedisStore:
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
    return RedisStore(client, name=address.shown, max_users=max_users)


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
