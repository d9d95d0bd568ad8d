"""``/healthz``, ``/readyz`` and ``/metrics`` (Prometheus text format 0.0.4) on the HTTP port.

A handful of metrics do not justify a dependency, so :class:`Metrics` keeps counters, a histogram
and gauges under one lock and writes the text format itself. The server is the standard library's
``ThreadingHTTPServer`` on its own thread; handlers only read (``Metrics.render`` and two
callables the manager passes), so they never block a reconcile.

* ``/healthz``: 200 while the controller's threads are running;
* ``/readyz``: 200 once every informer has listed once (the caches are warm), 503 before;
* ``/metrics``: ``iter8_controller_reconciles_total{result}``,
  ``iter8_controller_reconcile_duration_seconds`` (histogram), ``iter8_controller_queue_depth``,
  ``iter8_controller_applied_weight{namespace,routemap,version}``, ``iter8_controller_is_leader``,
  ``iter8_controller_writes_total{kind}``, ``iter8_controller_watch_restarts_total``, and the lines
  of every :attr:`Metrics.collectors` (the A/B/n service adds its own);
* further routes the manager passes (the A/B/n read side): handlers of the query parameters.
"""

from __future__ import annotations

import bisect
import logging
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

log = logging.getLogger("kubectl_iter8.controller")

#: (status, body, content type)
Response = tuple[int, str, str]
#: A route's handler: the query parameters (the first value of each) -> the response.
Route = Callable[[dict[str, str]], Response]

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def escape_label(value: str) -> str:
    """A label value as the text format writes it: backslash, double quote and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def label_set(pairs: dict[str, str]) -> str:
    """``{a="x",b="y"}`` (keys sorted), or nothing for no labels."""
    if not pairs:
        return ""
    return "{" + ",".join(f'{k}="{escape_label(v)}"' for k, v in sorted(pairs.items())) + "}"


class Metrics:
    """The controller's metrics; every method is thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reconciles: dict[str, int] = {}
        self.writes: dict[str, int] = {}
        self._buckets = [0] * (len(BUCKETS) + 1)
        self._duration_sum = 0.0
        self._duration_count = 0
        self.weights: dict[tuple[str, str, str], int] = {}
        self.queue_depth: Callable[[], int] = lambda: 0
        self.is_leader: Callable[[], bool] = lambda: False
        self.watch_restarts: Callable[[], int] = lambda: 0
        #: More metric families, each a callable returning complete text-format lines.
        self.collectors: list[Callable[[], list[str]]] = []

    def reconciled(self, result: str, seconds: float) -> None:
        with self._lock:
            self.reconciles[result] = self.reconciles.get(result, 0) + 1
            self._buckets[bisect.bisect_left(BUCKETS, seconds)] += 1
            self._duration_sum += seconds
            self._duration_count += 1

    def wrote(self, kind: str) -> None:
        with self._lock:
            self.writes[kind] = self.writes.get(kind, 0) + 1

    def set_weights(self, namespace: str, routemap: str, weights: dict[str, int] | None) -> None:
        """The weights applied for one routemap (None: forget the routemap)."""
        with self._lock:
            for key in [k for k in self.weights if k[:2] == (namespace, routemap)]:
                del self.weights[key]
            for version, weight in (weights or {}).items():
                self.weights[(namespace, routemap, version)] = weight

    def render(self) -> str:
        lines: list[str] = []

        def family(name: str, kind: str, doc: str) -> None:
            lines.append(f"# HELP {name} {doc}")
            lines.append(f"# TYPE {name} {kind}")

        with self._lock:
            family("iter8_controller_reconciles_total", "counter", "Reconciles by result.")
            for result, count in sorted(self.reconciles.items()):
                lines.append(f"iter8_controller_reconciles_total{label_set({'result': result})} {count}")
            family("iter8_controller_reconcile_duration_seconds", "histogram", "Time spent per reconcile.")
            cumulative = 0
            for bound, count in zip((*BUCKETS, float("inf")), self._buckets, strict=True):
                cumulative += count
                le = "+Inf" if bound == float("inf") else repr(bound)
                lines.append(f'iter8_controller_reconcile_duration_seconds_bucket{{le="{le}"}} {cumulative}')
            lines.append(f"iter8_controller_reconcile_duration_seconds_sum {self._duration_sum}")
            lines.append(f"iter8_controller_reconcile_duration_seconds_count {self._duration_count}")
            family("iter8_controller_writes_total", "counter", "Writes to the API server by kind of write.")
            for kind, count in sorted(self.writes.items()):
                lines.append(f"iter8_controller_writes_total{label_set({'kind': kind})} {count}")
            family("iter8_controller_applied_weight", "gauge", "Weight applied per routemap version.")
            for (namespace, routemap, version), weight in sorted(self.weights.items()):
                labels = label_set({"namespace": namespace, "routemap": routemap, "version": version})
                lines.append(f"iter8_controller_applied_weight{labels} {weight}")
        family("iter8_controller_queue_depth", "gauge", "Keys waiting in the work queue.")
        lines.append(f"iter8_controller_queue_depth {self.queue_depth()}")
        family("iter8_controller_is_leader", "gauge", "1 when this replica holds the lease.")
        lines.append(f"iter8_controller_is_leader {int(self.is_leader())}")
        family(
            "iter8_controller_watch_restarts_total",
            "counter",
            "Watch requests beyond the first, per informer.",
        )
        lines.append(f"iter8_controller_watch_restarts_total {self.watch_restarts()}")
        for collect in self.collectors:
            try:
                lines.extend(collect())
            except Exception:
                # one failing source (an unreachable Redis) must not take the controller's own metrics down
                log.exception("a metrics collector failed")
        return "\n".join(lines) + "\n"


class HTTPServer:
    """Serves the three endpoints on a daemon thread."""

    def __init__(
        self,
        address: str,
        port: int,
        *,
        metrics: Metrics,
        healthy: Callable[[], bool],
        ready: Callable[[], bool],
        routes: Mapping[str, Route] | None = None,
    ) -> None:
        table: dict[str, Route] = {
            "/healthz": lambda _: (
                (200, "ok\n", "text/plain") if healthy() else (503, "unhealthy\n", "text/plain")
            ),
            "/readyz": lambda _: (
                (200, "ok\n", "text/plain") if ready() else (503, "caches not synced\n", "text/plain")
            ),
            "/metrics": lambda _: (200, metrics.render(), "text/plain; version=0.0.4; charset=utf-8"),
            **(routes or {}),
        }

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                route = table.get(url.path)
                if route is None:
                    self._send(404, "not found\n", "text/plain")
                    return
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                try:
                    self._send(*route(query))
                except Exception:
                    log.exception("GET %s failed", url.path)
                    self._send(500, "internal error\n", "text/plain")

            def _refuse(self) -> None:
                self._send(405, "only GET is served\n", "text/plain", allow=True)

            do_POST = do_PUT = do_DELETE = do_PATCH = _refuse

            def _send(self, status: int, body: str, content_type: str, *, allow: bool = False) -> None:
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                if allow:
                    self.send_header("Allow", "GET")
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # probes every few seconds would drown the controller's own log

        self._server = ThreadingHTTPServer((address, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="iter8-http", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
