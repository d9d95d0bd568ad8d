"""A keyed, de-duplicating work queue with per-key exponential back-off (client-go's workqueue).

Concurrency model: informer threads call :meth:`WorkQueue.add` for every event that may matter to
a key; worker threads loop on :meth:`WorkQueue.get` / :meth:`WorkQueue.done`. Three rules make the
controller level-based and safe:

* a key waiting in the queue is not added twice (ten events for one routemap cause one reconcile,
  which reads the latest cache anyway);
* a key being processed is never handed to a second worker; if it is added meanwhile, it is
  marked dirty and queued again when the first worker calls :meth:`done`;
* a key added with ``first`` goes ahead of the waiting keys (an event somebody waits on, such as
  an analysis verdict, is not queued behind periodic looks at every other routemap);
* a failed key comes back after :meth:`backoff` (``base * 2**failures``, capped), and
  :meth:`forget` resets its failure count once it succeeds.

Delayed adds sit in a heap, one per key (client-go's delaying queue: adding a key that is already
waiting keeps the earlier time), so keys that schedule their own next look, as a rollout does, do
not pile up; :meth:`get` wakes up for the earliest one. Everything is guarded by one
condition variable, and :meth:`shutdown` wakes every waiting worker. Due times are read from
``clock`` (monotonic seconds), so tests can move time instead of sleeping.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class WorkQueue(Generic[K]):
    """Keys to reconcile, each at most once in the queue and at most once in flight."""

    def __init__(
        self,
        *,
        backoff_base: float = 0.5,
        backoff_max: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._cond = threading.Condition()
        self._queue: deque[K] = deque()
        self._dirty: set[K] = set()
        self._processing: set[K] = set()
        #: Keys in process that were added with ``first`` meanwhile.
        self._first: set[K] = set()
        self._delayed: list[tuple[float, int, K]] = []
        #: When each delayed key is due (heap entries with another time are stale, skipped).
        self._due: dict[K, float] = {}
        self._sequence = 0
        self._failures: dict[K, int] = {}
        self._shutdown = False
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max

    def add(self, key: K, *, first: bool = False) -> None:
        """Queue ``key`` unless it is already waiting (processing keys are re-queued on :meth:`done`).

        :param first: ahead of the keys waiting (moved there if it is one of them): for an event
            someone is waiting on, such as an analysis verdict, rather than a periodic look.
        """
        with self._cond:
            if self._shutdown:
                return
            if first and key in self._processing:
                self._first.add(key)  # queued again, first, when its worker is done
            if key in self._dirty:
                if first and key not in self._processing:
                    self._queue.remove(key)
                    self._queue.appendleft(key)
                return
            self._dirty.add(key)
            if key not in self._processing:
                if first:
                    self._queue.appendleft(key)
                else:
                    self._queue.append(key)
                self._cond.notify()

    def add_after(self, key: K, delay: float) -> None:
        """Queue ``key`` in ``delay`` seconds (at once when ``delay <= 0``)."""
        if delay <= 0:
            self.add(key)
            return
        with self._cond:
            if self._shutdown:
                return
            due = self._clock() + delay
            if self._due.get(key, due + 1) <= due:
                return
            self._due[key] = due
            self._sequence += 1
            heapq.heappush(self._delayed, (due, self._sequence, key))
            self._cond.notify()

    def backoff(self, key: K) -> float:
        """Queue ``key`` again after its next back-off delay; returns the delay."""
        with self._cond:
            failures = self._failures.get(key, 0)
            self._failures[key] = failures + 1
        delay = float(min(self.backoff_base * (2.0**failures), self.backoff_max))
        self.add_after(key, delay)
        return delay

    def forget(self, key: K) -> None:
        """``key`` succeeded: its next failure starts the back-off from the beginning."""
        with self._cond:
            self._failures.pop(key, None)

    def failures(self, key: K) -> int:
        with self._cond:
            return self._failures.get(key, 0)

    def _promote_due(self) -> float | None:
        """Move due delayed keys into the queue; seconds until the next one, or None."""
        now = self._clock()
        while self._delayed and self._delayed[0][0] <= now:
            due, _, key = heapq.heappop(self._delayed)
            if self._due.get(key) != due:
                continue  # moved earlier by a later add_after; that entry counts
            del self._due[key]
            if key not in self._dirty:
                self._dirty.add(key)
                if key not in self._processing:
                    self._queue.append(key)
        return self._delayed[0][0] - now if self._delayed else None

    def get(self, timeout: float | None = None) -> K | None:
        """The next key to process (now owned by the caller until :meth:`done`), or None on
        shutdown or after ``timeout`` seconds."""
        deadline = None if timeout is None else self._clock() + timeout
        with self._cond:
            while True:
                if self._shutdown:
                    return None
                wait = self._promote_due()
                if self._queue:
                    key = self._queue.popleft()
                    self._dirty.discard(key)
                    self._processing.add(key)
                    return key
                if deadline is not None:
                    left = deadline - self._clock()
                    if left <= 0:
                        return None
                    wait = left if wait is None else min(wait, left)
                self._cond.wait(wait)

    def done(self, key: K) -> None:
        """The caller finished ``key``; if it was added meanwhile, it is queued again."""
        with self._cond:
            self._processing.discard(key)
            first = key in self._first
            self._first.discard(key)
            if key in self._dirty:
                if first:
                    self._queue.appendleft(key)
                else:
                    self._queue.append(key)
                self._cond.notify()

    def __len__(self) -> int:
        """Keys waiting now (delayed keys not yet due are not counted)."""
        with self._cond:
            return len(self._queue)

    @property
    def depth(self) -> int:
        return len(self)

    def shutdown(self) -> None:
        """Wake every waiting worker; :meth:`get` returns None from now on."""
        with self._cond:
            self._shutdown = True
            self._cond.notify_all()
