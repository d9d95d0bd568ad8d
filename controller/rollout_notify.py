"""Notify calls on rollout transitions: ``rollout.notify`` webhooks, sent off the reconcile path.

Each transition the rollout reconciler emits as an Event (``RolloutStarted``, ``RolloutStep``, ...,
``RolloutPromoted``) is also handed to :meth:`RolloutNotifier.notify`, which only builds a small
payload and queues it: a slow or dead receiver must never hold a reconcile worker. One daemon
thread per controller posts the queue in order (so a receiver sees the transitions in the order
they happened), with each webhook's timeout and retries, and exits when idle (it is started again
by the next notification). The queue is bounded: when it is full a notification is dropped, with
one warning line per run of drops. Notifications are best-effort: a failure is a warning line and
a count in ``iter8_controller_rollout_notifications_total{result}``, never a held step (the
webhook gates hold steps).

Secrets: ``urlFrom`` and ``headersFrom`` are read, from the routemap's own namespace only, by the
sending thread just before each call; their values never reach a log line or an error (a URL from
a Secret is shown as its scheme and host only).

Payload templates are checked when the routemap is parsed (:func:`kubectl_iter8.rollout.
check_notify_template`): Go templates run in the project's bounded Go engine, Jinja2 templates are
limited to a subset without calls or arithmetic, rendered in Jinja2's immutable sandbox with the
output capped. (The notify task's renderer in ``builtin_tasks/notify.py`` is the same pair of
engines, but the controller may not import the built-in tasks: the import contracts keep the two
independent.)
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import logging
import queue
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kubectl_iter8 import gotemplate
from kubectl_iter8.errors import Iter8Error
from kubectl_iter8.kube import SECRETS, Kube
from kubectl_iter8.rollout import Notification, RolloutState, SecretKey

from .cache import Obj
from .http import Metrics, label_set

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("kubectl_iter8.controller")

#: Notifications waiting to be sent, at most (then new ones are dropped).
QUEUE_SIZE = 1000
#: Wait before the first retry; doubles with each, up to ``MAX_BACKOFF``.
BACKOFF = 1.0
MAX_BACKOFF = 10.0
#: How long the sending thread waits for work before it exits.
IDLE_SECONDS = 5.0
#: The longest rendered payload, and the longest message put in one.
MAX_PAYLOAD = 64 * 1024
MAX_MESSAGE = 1024
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
GO_LIMITS = gotemplate.Limits(seconds=1.0, output=MAX_PAYLOAD, steps=100_000)
RESULTS = ("sent", "failed", "dropped")
MASK = "***"


class NotifyError(Exception):
    """A notification that cannot be sent; its text never holds a secret."""


@dataclass(frozen=True)
class Pending:
    """One notification to send: the webhook, where its Secrets are, and the transition."""

    hook: Notification
    namespace: str
    payload: dict[str, Any]


def transition_payload(
    cm: Obj, reason: str, message: str, state: RolloutState, *, warning: bool = False
) -> dict[str, Any]:
    """The default payload (and the data of payload templates) for one transition."""
    meta = cm["metadata"]
    verdict = state.verdicts[-1].model_dump(by_alias=True) if state.verdicts else None
    return {
        "routemap": meta["name"],
        "namespace": meta.get("namespace") or "",
        "reason": reason,
        "message": message[:MAX_MESSAGE],
        "warning": warning,
        "phase": state.phase,
        "step": state.step,
        "weight": state.weight,
        "candidate": state.candidate_name,
        "verdict": verdict,
        "time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def render(hook: Notification, payload: dict[str, Any]) -> str:
    """The body to send: the JSON payload, or the hook's template rendered over it.

    :raises NotifyError: the template failed or its output is too long.
    """
    template = hook.payload_template
    if template is None:
        return json.dumps(payload)
    if gotemplate.choose_engine(template, hook.template_engine) == "go":
        try:
            return gotemplate.render(template, payload, name="payloadTemplate", limits=GO_LIMITS)
        except Iter8Error as exc:
            raise NotifyError(f"payloadTemplate: {exc}") from None
    return _render_jinja2(template, payload)


def _render_jinja2(template: str, payload: dict[str, Any]) -> str:
    import jinja2
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False)
    parts: list[str] = []
    size = 0
    try:
        for chunk in env.from_string(template).generate(**payload, notification=payload):
            size += len(chunk)
            if size > MAX_PAYLOAD:
                raise NotifyError(f"payloadTemplate: the output is longer than {MAX_PAYLOAD} characters")
            parts.append(chunk)
    except jinja2.TemplateError as exc:
        raise NotifyError(f"payloadTemplate: {exc}") from None
    except (ValueError, TypeError) as exc:
        raise NotifyError(f"payloadTemplate: {type(exc).__name__}: {exc}") from None
    return "".join(parts)


class RolloutNotifier:
    """Queues rollout notifications and sends them from a background thread (see the module)."""

    def __init__(
        self,
        kube: Kube,
        *,
        is_leader: Callable[[], bool],
        metrics: Metrics | None = None,
        transport: httpx.BaseTransport | None = None,
        capacity: int = QUEUE_SIZE,
    ) -> None:
        self.kube = kube
        self.is_leader = is_leader
        self.transport = transport
        self._queue: queue.Queue[Pending] = queue.Queue(maxsize=capacity)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._dropping = False
        self._stopped = threading.Event()
        self.counts = dict.fromkeys(RESULTS, 0)
        if metrics is not None:
            metrics.collectors.append(self.metric_lines)

    # --- the reconcile side: cheap, never blocks ---------------------------------------------------

    def notify(
        self,
        hooks: Sequence[Notification],
        cm: Obj,
        reason: str,
        message: str,
        state: RolloutState,
        *,
        warning: bool = False,
    ) -> None:
        """Queue one transition for each hook that wants ``reason`` (only on the leader)."""
        wanted = [hook for hook in hooks if hook.wants(reason)]
        if not wanted or not self.is_leader():
            return
        payload = transition_payload(cm, reason, message, state, warning=warning)
        namespace = payload["namespace"]
        for hook in wanted:
            self.put(Pending(hook, namespace, payload))

    def put(self, item: Pending) -> bool:
        """Queue ``item``; False (and counted as dropped) when the queue is full."""
        if self._stopped.is_set():
            return False
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            with self._lock:
                self.counts["dropped"] += 1
                first, self._dropping = not self._dropping, True
            if first:
                log.warning(
                    "rollout notifications: the queue is full (%d waiting): dropping %s of %s/%s "
                    "and any more until it drains",
                    self._queue.maxsize,
                    item.payload["reason"],
                    item.namespace,
                    item.payload["routemap"],
                )
            return False
        with self._lock:
            self._dropping = False
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="iter8-rollout-notify", daemon=True)
                self._thread.start()
        return True

    def metric_lines(self) -> list[str]:
        name = "iter8_controller_rollout_notifications_total"
        with self._lock:
            counts = dict(self.counts)
        lines = [
            f"# HELP {name} Rollout notifications by result (sent, failed after retries, dropped).",
            f"# TYPE {name} counter",
        ]
        lines += [f"{name}{label_set({'result': r})} {counts[r]}" for r in RESULTS]
        return lines

    def wait_idle(self, timeout: float) -> bool:
        """Whether everything queued was handled within ``timeout`` (for tests and shutdown)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._queue.unfinished_tasks == 0:
                return True
            time.sleep(0.01)
        return False

    # --- the sending thread ------------------------------------------------------------------------

    def stop(self, timeout: float = 10.0) -> None:
        """Stop sending (what is still queued is dropped) and wait for the thread to end."""
        self._stopped.set()
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _run(self) -> None:
        idle_since = time.monotonic()
        while not self._stopped.is_set():
            try:
                item = self._queue.get(timeout=0.2)
            except queue.Empty:
                if time.monotonic() - idle_since < IDLE_SECONDS:
                    continue
                with self._lock:
                    # put() starts a new thread unless this one is alive: leave only when nothing
                    # arrived between the last look and the lock.
                    if self._queue.empty():
                        self._thread = None
                        return
                continue
            try:
                result = "sent" if self._send(item) else "failed"
            except Exception:
                log.exception("rollout notification: unexpected failure")
                result = "failed"
            finally:
                self._queue.task_done()
            with self._lock:
                self.counts[result] += 1
            idle_since = time.monotonic()

    def _send(self, item: Pending) -> bool:
        import httpx

        hook, payload = item.hook, item.payload
        what = f"rollout notification {payload['reason']} of {item.namespace}/{payload['routemap']}"
        secrets: list[str] = []
        try:
            url = hook.url or self._secret_url(hook.url_from, item.namespace, secrets)
            headers = dict(hook.headers)
            for name, ref in hook.headers_from.items():
                headers[name] = self._secret(ref, item.namespace, f"headersFrom.{name}", secrets)
            body = render(hook, payload)
        except NotifyError as exc:
            log.warning("%s not sent: %s", what, _redact(str(exc), secrets))
            return False
        where = _where(url, secret=hook.url_from is not None)
        if not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = "application/json" if _is_json(body) else "text/plain; charset=utf-8"
        failure = ""
        attempts = hook.retries + 1
        with httpx.Client(timeout=hook.timeout, transport=self.transport) as client:
            for attempt in range(attempts):
                try:
                    response = client.request(hook.method, url, headers=headers, content=body)
                except (httpx.HTTPError, httpx.InvalidURL) as exc:
                    failure = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                else:
                    if 200 <= response.status_code < 300:
                        log.debug("%s sent: %s %s: HTTP %d", what, hook.method, where, response.status_code)
                        return True
                    failure = f"HTTP {response.status_code}"
                    if response.status_code not in RETRY_STATUSES:
                        break
                if attempt + 1 < attempts and self._stopped.wait(min(BACKOFF * 2**attempt, MAX_BACKOFF)):
                    break
        message = f"{what} failed after {attempt + 1} attempt(s): {hook.method} {where}: {failure}"
        log.warning("%s", _redact(message, [*secrets, url] if hook.url_from else secrets))
        return False

    def _secret_url(self, ref: SecretKey | None, namespace: str, secrets: list[str]) -> str:
        url = self._secret(ref, namespace, "urlFrom", secrets)
        if not url.startswith(("http://", "https://")):
            raise NotifyError("urlFrom: the Secret's value is not an http(s) URL")
        return url

    def _secret(self, ref: SecretKey | None, namespace: str, field: str, secrets: list[str]) -> str:
        """One key of a Secret in the routemap's namespace, remembered in ``secrets`` for redaction."""
        assert ref is not None
        where = f"{field}: key {ref.key!r} of Secret {ref.name!r}"
        try:
            secret = self.kube.find(SECRETS, ref.name, namespace)
        except Iter8Error as exc:
            raise NotifyError(f"{where}: cannot be read: {exc}") from None
        encoded = ((secret or {}).get("data") or {}).get(ref.key)
        if secret is None or encoded is None:
            raise NotifyError(f"{where}: not found")
        try:
            value = base64.b64decode(str(encoded), validate=True).decode("utf-8").strip()
        except (binascii.Error, UnicodeDecodeError):
            raise NotifyError(f"{where}: not UTF-8 text") from None
        if not value or "\r" in value or "\n" in value:
            raise NotifyError(f"{where}: empty, or more than one line")
        secrets.append(value)
        return value


def _where(url: str, *, secret: bool) -> str:
    """The URL for log lines: scheme, host and path (not the path of a URL from a Secret, nor any
    query, which often holds a token)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{'/' + MASK if secret else parts.path}"


def _redact(text: str, secrets: Sequence[str]) -> str:
    for secret in sorted(secrets, key=len, reverse=True):
        if secret:
            text = text.replace(secret, MASK)
    return text


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True
