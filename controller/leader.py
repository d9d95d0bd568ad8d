"""Leader election with a coordination.k8s.io/v1 Lease (client-go's leaderelection, simplified).

Every replica runs an elector thread; all of them keep their informers and caches warm, but only
the one holding the Lease writes. The protocol is optimistic concurrency on the Lease:

* **acquire**: create the Lease, or take it over when ``renewTime + leaseDurationSeconds`` has
  passed (or ``holderIdentity`` is empty), by an update that carries the Lease's resourceVersion:
  if two candidates try at once, one gets 409 and stays a follower;
* **renew**: the holder updates ``renewTime`` every ``retry_period``;
* **the fence**: the holder considers itself leader only until ``renew_deadline`` after the start of
  its last successful renewal, and ``renew_deadline < lease_duration``; a candidate may take over
  only ``lease_duration`` after that renewal. So a leader that cannot reach the API server stops
  writing before anyone else can start (same clock assumptions as client-go);
* **release**: on a clean shutdown the holder empties ``holderIdentity``, so a follower takes over at
  its next attempt instead of waiting for the Lease to expire.

``on_started_leading`` runs (on the elector thread) each time leadership is gained: the manager
requeues every routemap there, because a follower skipped its writes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from kubectl_iter8.errors import KubeConflictError, KubeError
from kubectl_iter8.kube import LEASES, Kube

log = logging.getLogger("kubectl_iter8.controller")


def _now() -> datetime:
    return datetime.now(UTC)


def _format(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(text: str | None) -> datetime | None:
    if not text:
        return None
    for pattern in ("%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%SZ"):
        try:
            return datetime.strptime(text, pattern).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None


class LeaderElector:
    """Acquires and renews one Lease on its own thread; :meth:`is_leader` is the write fence."""

    def __init__(
        self,
        kube: Kube,
        *,
        namespace: str,
        name: str,
        identity: str,
        lease_duration: float,
        renew_deadline: float,
        retry_period: float,
        on_started_leading: Callable[[], None] = lambda: None,
        monotonic: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = _now,
    ) -> None:
        """:param monotonic: the clock of this process's own deadline (the write fence);
        :param now: the wall clock written into and compared with the Lease's times."""
        self.kube = kube
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self.on_started_leading = on_started_leading
        self._monotonic = monotonic
        self._now = now
        self._leader_until = 0.0
        self._was_leader = False
        self._stop = threading.Event()
        self._lock = threading.Lock()
        #: How many times this process gained the leadership.
        self.transitions = 0

    def is_leader(self) -> bool:
        with self._lock:
            return self._monotonic() < self._leader_until

    def run(self) -> None:
        """Try to acquire or renew every ``retry_period`` until :meth:`stop`; never raises."""
        while not self._stop.is_set():
            try:
                self.try_acquire_or_renew()
            except Exception:
                log.exception("leader election: unexpected failure")
            self._stop.wait(self.retry_period)

    def stop(self) -> None:
        self._stop.set()

    def try_acquire_or_renew(self) -> bool:
        """One attempt; True when this process holds the Lease afterwards."""
        started = self._monotonic()
        now = self._now()
        spec = {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": max(1, round(self.lease_duration)),
            "renewTime": _format(now),
        }
        try:
            lease = self.kube.find(LEASES, self.name, self.namespace)
            if lease is None:
                body = {
                    "apiVersion": "coordination.k8s.io/v1",
                    "kind": "Lease",
                    "metadata": {"name": self.name, "namespace": self.namespace},
                    "spec": {**spec, "acquireTime": _format(now), "leaseTransitions": 0},
                }
                self.kube.create(LEASES, body, self.namespace)
            else:
                current: dict[str, Any] = lease.get("spec") or {}
                holder = current.get("holderIdentity") or ""
                if holder != self.identity:
                    renewed = _parse(current.get("renewTime")) or datetime.min.replace(tzinfo=UTC)
                    duration = float(current.get("leaseDurationSeconds") or self.lease_duration)
                    if holder and renewed + timedelta(seconds=duration) > now:
                        self._lost()
                        return False
                    spec["acquireTime"] = _format(now)
                    spec["leaseTransitions"] = int(current.get("leaseTransitions") or 0) + 1
                else:
                    spec["acquireTime"] = current.get("acquireTime") or _format(now)
                    spec["leaseTransitions"] = int(current.get("leaseTransitions") or 0)
                lease["spec"] = {**current, **spec}
                self.kube.replace(LEASES, lease, self.namespace)
        except KubeConflictError:
            self._lost()
            return False
        except KubeError as exc:
            log.warning("leader election: %s", exc)
            if not self.is_leader():
                self._lost()
            return self.is_leader()
        with self._lock:
            self._leader_until = started + self.renew_deadline
        if not self._was_leader:
            self._was_leader = True
            self.transitions += 1
            log.info("leader election: %s is now the leader", self.identity)
            self.on_started_leading()
        return True

    def _lost(self) -> None:
        with self._lock:
            self._leader_until = 0.0
        if self._was_leader:
            log.info("leader election: %s is no longer the leader", self.identity)
        self._was_leader = False

    def release(self) -> None:
        """Give the Lease up (clean shutdown), if this process holds it."""
        if not self.is_leader():
            return
        with self._lock:
            self._leader_until = 0.0
        self._was_leader = False
        try:
            lease = self.kube.get(LEASES, self.name, self.namespace)
            spec = lease.get("spec") or {}
            if spec.get("holderIdentity") != self.identity:
                return
            lease["spec"] = {**spec, "holderIdentity": "", "leaseDurationSeconds": 1}
            self.kube.replace(LEASES, lease, self.namespace)
        except KubeError as exc:
            log.warning("leader election: could not release the lease: %s", exc)
