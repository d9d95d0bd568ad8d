"""The A/B/n parts of a running controller: the metric store, the gRPC service, the HTTP read side.

``controller serve --abn-port`` creates one :class:`AbnRuntime`. Assignment reads the versions the
controller's reconciles decide (``versions_for``), so every replica, leader or not, answers the
same; metric values go to the configured store (SQLite for one replica, Redis for several). The
read side is served on the controller's HTTP port:

* ``GET /abnDashboard?namespace=NS&application=APP``: Iter8's shape, per metric: summaries over
  transactions and over users, and histograms (what the Grafana dashboard in ``grafana/`` reads),
  from the aggregates and the latest :data:`.summary.DASHBOARD_SAMPLE` values per version
  (:func:`.summary.dashboard_from`): its cost does not grow with the values stored;
* ``GET /abnValues?namespace=NS&application=APP[&limit=N]``: the values themselves, per metric and
  version, the latest ``N`` (default and greatest :data:`.store.WINDOW`) of each (what the
  ``abnmetrics`` task fetches so that ``assess`` can compare versions);

``namespace`` may be left out when ``application`` is ``NS/APP``; a bare ``APP`` is in ``default``.
Errors are JSON ``{"error": ...}``: 400 for a missing or malformed parameter, 401 without the
token (below), 404 for an application with neither a routemap nor stored values. ``/metrics`` gets
``iter8_abn_*`` families (see :func:`.summary.prometheus_lines`), computed from the stores'
aggregates (:meth:`~.store.MetricStore.summary`), and the service's call counts.

The settings give the service's caps (:class:`.limits.Limits`) and its shared token; ``controller
serve`` fills them from its flags (or ``$ITER8_ABN_MAX_METRICS``, ``$ITER8_ABN_MAX_USERS``,
``$ITER8_ABN_TOKEN_FILE``) and refuses a bad value before anything starts. With a token, the two
routes above want it too, as ``Authorization: Bearer TOKEN``: the values are the business's
figures, and the port also serves the probes and ``/metrics``, which stay open.
"""

from __future__ import annotations

import hmac
import json
import logging
import socket
from collections.abc import Callable
from typing import Any

from kubectl_iter8.errors import UsageError

from ..config import Settings
from ..http import Response, Route, label_set
from .limits import quote
from .service import Rejected, Served, VersionsFor, application_key, serve
from .store import WINDOW, MetricStore, RecentValues
from .store_url import default_store_url, open_store, redact
from .summary import DASHBOARD_SAMPLE, Summary, dashboard_from, prometheus_lines, samples_from

log = logging.getLogger("kubectl_iter8.controller")


def bearer(headers: dict[str, str], token: str) -> bool:
    """Whether ``headers`` (lower-case names) carry ``Authorization: Bearer TOKEN``."""
    scheme, _, given = headers.get("authorization", "").strip().partition(" ")
    # compare_digest on bytes: constant time whatever the content, no timing hint at the token.
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def _json(status: int, document: Any) -> Response:
    return status, json.dumps(document, separators=(",", ":")) + "\n", "application/json"


def _check_port(address: str, port: int) -> None:
    """Fail with one line when the port is taken: grpc would log a C-level error first."""
    if port == 0:
        return
    host = address.strip("[]")
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as grpc does: TIME_WAIT is no obstacle
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise UsageError(f"--abn-port: cannot listen on {address}:{port}: {exc.strerror}") from None


class AbnRuntime:
    """Opens the store and starts the gRPC service (both at once: a bad flag fails the start)."""

    def __init__(
        self, settings: Settings, *, versions_for: VersionsFor, known: Callable[[str], bool]
    ) -> None:
        assert settings.abn_port is not None
        _check_port(settings.abn_address, settings.abn_port)
        limits, token = settings.abn_limits, settings.abn_token
        self._token = token
        url = settings.abn_store or default_store_url()
        self.store_name = redact(url)
        self.store: MetricStore = open_store(url, max_users=limits.max_users)
        self._known = known
        try:
            self.served: Served = serve(
                settings.abn_port,
                versions_for,
                self.store,
                host=settings.abn_address,
                limits=limits,
                token=token,
            )
        except (OSError, RuntimeError) as exc:
            self.store.close()
            raise UsageError(
                f"--abn-port: cannot listen on {settings.abn_address}:{settings.abn_port}: {exc}"
            ) from None

    @property
    def port(self) -> int:
        return self.served.port

    def stop(self) -> None:
        self.served.stop(grace=2.0)
        self.store.close()

    # --- HTTP read side ------------------------------------------------------------------------

    def routes(self) -> dict[str, Route]:
        return {"/abnDashboard": self._guarded(self._dashboard), "/abnValues": self._guarded(self._values)}

    def _guarded(self, route: Callable[[dict[str, str]], Response]) -> Route:
        token = self._token

        def guarded(query: dict[str, str], headers: dict[str, str]) -> Response:
            if token is not None and not bearer(headers, token):
                return _json(401, {"error": "missing or wrong Authorization: Bearer token"})
            return route(query)

        return guarded

    def _application(self, query: dict[str, str]) -> str | Response:
        """The application key the query names, or the error response."""
        name = query.get("application", "").strip()
        if not name:
            return _json(400, {"error": "the query parameter application is required"})
        namespace = query.get("namespace", "").strip()
        if namespace and "/" not in name:
            name = f"{namespace}/{name}"
        try:
            return application_key(name)
        except Rejected as rejected:
            return _json(400, {"error": str(rejected)})

    def _read(
        self, query: dict[str, str], limit: int, render: Callable[[str, Summary, RecentValues], Any]
    ) -> Response:
        application = self._application(query)
        if not isinstance(application, str):
            return application
        # Both from what the stores keep bounded: aggregates and the latest values per series.
        summary = self.store.summary(application)
        if not summary and not self._known(application) and application not in self.store.applications():
            return _json(404, {"error": f"application {application!r} not found"})
        return _json(200, render(application, summary, self.store.recent(application, limit)))

    def _dashboard(self, query: dict[str, str]) -> Response:
        return self._read(query, DASHBOARD_SAMPLE, lambda _, summary, recent: dashboard_from(summary, recent))

    def _values(self, query: dict[str, str]) -> Response:
        text = query.get("limit", "").strip() or str(WINDOW)
        if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= WINDOW:
            return _json(400, {"error": f"limit: expected an integer from 1 to {WINDOW}, not {quote(text)}"})
        limit = int(text)
        return self._read(
            query, limit, lambda app, summary, recent: samples_from(app, summary, recent, limit)
        )

    # --- /metrics ------------------------------------------------------------------------------

    def collect(self) -> list[str]:
        # From the aggregates the stores keep as values are written: a scrape does not read the values.
        lines = prometheus_lines({app: self.store.summary(app) for app in self.store.applications()})
        calls = self.served.service.calls()
        lines.append("# HELP iter8_abn_calls_total A/B/n gRPC calls by method and status code.")
        lines.append("# TYPE iter8_abn_calls_total counter")
        for (method, code), count in sorted(calls.items()):
            lines.append(f"iter8_abn_calls_total{label_set({'code': code, 'method': method})} {count}")
        return lines
