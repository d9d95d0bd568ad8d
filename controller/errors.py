"""How a reconcile says it failed: retry later (TemporaryError) or never (PermanentError).

kopf's names with controller-runtime's policy: a temporary error requeues the key with the queue's
per-key back-off (or after ``delay`` when given); a permanent error (a malformed routemap, an
unknown router) is reported in the routemap's status and Events and not retried until the
routemap changes, because retrying cannot fix it. Any other exception is treated as temporary.
"""

from __future__ import annotations

from kubectl_iter8.errors import Iter8Error


class ReconcileError(Iter8Error):
    """Base of the errors a reconcile raises on purpose."""


class TemporaryError(ReconcileError):
    """Retry: the API server refused for now, or a conflict lost a race."""

    def __init__(self, message: str, *, delay: float | None = None) -> None:
        super().__init__(message)
        #: Seconds until the retry; None: the queue's back-off decides.
        self.delay = delay


class PermanentError(ReconcileError):
    """Do not retry: only a change of the routemap (or of its resources) can fix this."""


class NotLeaderError(TemporaryError):
    """This process lost the leadership while reconciling: it must not write."""


class NotReadyError(Iter8Error):
    """A question the controller cannot answer yet: its caches are not synced (A/B/n: UNAVAILABLE)."""
