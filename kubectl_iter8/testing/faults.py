"""Fault injection and authorization denials, for testing how clients cope with a misbehaving server.

A controller must retry on 409 and 429, back off on 500, resume a dropped watch and report a 403
clearly; a real API server produces those only by accident. :class:`Faults` lets a test ask for them:
the next N matching requests fail with a chosen status, every request is slowed down, open watch
streams are cut. :meth:`Faults.forbid` denies a verb on a resource until :meth:`Faults.reset`, as
a Role without that rule would.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from . import apierrors
from .apierrors import ApiError
from .discovery import ResourceInfo

#: The verbs requests are classified by (kube-apiserver's names).
VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")


def resource_matches(pattern: str, info: ResourceInfo, subresource: str | None) -> bool:
    """``*``, a plural, ``plural.group``, a kind or short name, or ``plural/subresource``."""
    if pattern == "*":
        return True
    base, _, sub = pattern.partition("/")
    if sub and sub != subresource:
        return False
    names = {info.plural, info.key, info.kind, info.kind.lower(), info.singular, *info.short_names}
    return base in names


@dataclass
class _Rule:
    verb: str
    resource: str
    namespace: str | None
    name: str | None
    status: int
    remaining: int | None

    def matches(
        self, verb: str, info: ResourceInfo, subresource: str | None, ns: str | None, name: str
    ) -> bool:
        return (
            (self.verb in ("*", verb))
            and resource_matches(self.resource, info, subresource)
            and (self.namespace is None or self.namespace == ns)
            and (self.name is None or self.name == name)
        )


@dataclass
class Faults:
    """Injected failures; reachable as ``FakeKube.faults``."""

    #: Seconds added before every API request is answered (discovery included).
    latency: float = 0.0
    _rules: list[_Rule] = field(default_factory=list)
    _forbidden: list[_Rule] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _dropper: Callable[..., int] | None = None

    def fail_next(
        self,
        verb: str = "*",
        resource: str = "*",
        *,
        status: int = 500,
        times: int | None = 1,
        namespace: str | None = None,
        name: str | None = None,
    ) -> None:
        """Answer the next ``times`` matching requests (``None``: all of them) with ``status``.

        ``verb`` is one of :data:`VERBS` or ``*``; ``resource`` as in :func:`resource_matches`.
        The body is the Status kube-apiserver sends for that code (409 ``Conflict``, 429
        ``TooManyRequests`` with ``Retry-After: 1``, 500 ``InternalError``, 503, 504, ...). For a
        watch, the failure is the HTTP response, before any event. Discovery, ``/version`` and
        OpenAPI requests are never failed (but are slowed by :attr:`latency`).
        """
        if verb != "*" and verb not in VERBS:
            raise ValueError(f"unknown verb {verb!r}; expected one of {', '.join(VERBS)} or '*'")
        with self._lock:
            self._rules.append(_Rule(verb, resource, namespace, name, status, times))

    def forbid(self, verb: str = "*", resource: str = "*", namespace: str | None = None) -> None:
        """Deny ``verb`` on ``resource`` (in ``namespace``, or everywhere) with 403 Forbidden."""
        with self._lock:
            self._forbidden.append(_Rule(verb, resource, namespace, None, 403, None))

    def drop_watches(self, *, abort: bool = False) -> int:
        """End every open watch stream now; returns how many were open.

        By default the stream ends cleanly, as when the API server closes a watch; clients should
        re-watch from their last resourceVersion. ``abort=True`` cuts the TCP connection mid-stream
        instead, as a network failure does (clients see a protocol or connection error).
        """
        return self._dropper(abort=abort) if self._dropper is not None else 0

    def reset(self) -> None:
        """No more injected failures, denials or latency."""
        with self._lock:
            self._rules.clear()
            self._forbidden.clear()
            self.latency = 0.0

    def is_forbidden(
        self, verb: str, info: ResourceInfo, subresource: str | None, namespace: str | None
    ) -> bool:
        """Whether :meth:`forbid` denies this (for SelfSubjectAccessReview, i.e. ``kubectl auth can-i``)."""
        with self._lock:
            return any(r.matches(verb, info, subresource, namespace, "") for r in self._forbidden)

    def check(
        self, verb: str, info: ResourceInfo, subresource: str | None, namespace: str | None, name: str
    ) -> ApiError | None:
        """The failure to answer this request with, if any (consumes one use of a matching rule)."""
        with self._lock:
            for rule in self._forbidden:
                if rule.matches(verb, info, subresource, namespace, name):
                    return apierrors.forbidden(verb, info.group, info.plural, name, namespace)
            for rule in self._rules:
                if rule.matches(verb, info, subresource, namespace, name):
                    if rule.remaining is not None:
                        rule.remaining -= 1
                        if rule.remaining <= 0:
                            self._rules.remove(rule)
                    return apierrors.for_code(rule.status, info.group, info.plural, name)
        return None
