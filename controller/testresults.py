"""Iter8 v1.x's test results: ``PUT /testResult``, ``GET /httpDashboard``, ``GET /grpcDashboard``.

Iter8's http and grpc tasks sent their experiment's result to its controller (``$METRICS_SERVER_URL``),
and its Grafana dashboards (``grafana/http.json``, ``grafana/grpc.json``) read the two dashboards back.
The same three endpoints are served here on the controller's HTTP port, keyed as Iter8 keyed them:
the query parameters ``namespace`` and ``test`` (the experiment's name).

The body is this project's experiment result (:class:`kubectl_iter8.result.Result`, plus ``name``
and ``namespace``, as :mod:`kubectl_iter8.builtin_tasks.loadgen.report_result` sends it). The
dashboards are Iter8's JSON shapes, built from the task records the http and grpc tasks keep
(per endpoint: the HDR latency histogram in microseconds, status codes, counts):

* ``/httpDashboard``: ``{"Endpoints": {endpoint: {"Durations", "Statistics", "Error durations",
  "Error statistics", "Return codes"}}, "ExperimentResult": {...}}``; durations in milliseconds in
  Fortio's bucket bounds, ``Return codes`` with ``-1`` for requests that got no response (Fortio's);
* ``/grpcDashboard``: ``{"Endpoints": {endpoint: {"Durations", "Statistics": {"Count",
  "ErrorCount"}, "Status codes"}}, "ExperimentResult": {...}}``; durations as ghz's eleven marks;
* an endpoint is the URL (http) or the call (grpc) for a task with one, its name among ``endpoints``.

``Error durations`` and ``Error statistics`` come from the http task's histogram of failed requests'
durations (``errorLatencyHistogram``, Fortio's ``ErrorsDurationHistogram``), in the same buckets and
units as ``Durations`` and ``Statistics``; a record without one timed no error (both empty, as
Fortio's with no errors), unless it counted errors: a record of an older version, whose ``Error
statistics`` then has only its ``Count`` (the rest null). Iter8's gRPC dashboard had no such panel,
nor has this one.

Differences from Iter8: an error is what the task's ``errorRanges`` call one (default: 400 and
above) or a request without a response, as ``http/error-count`` counts them (Fortio's rule was any
status but 2xx and 418, so a redirect counted); an unknown test is 404 (Iter8: 400). Both
dashboards are built when the result is stored, so a read costs a lookup.

Bounds, for a port that may face a network: a body of at most :data:`~.http.MAX_BODY` bytes (the
HTTP server refuses a bigger one unread); at most :data:`MAX_RESULTS` tests and
:data:`MAX_STORED_BYTES` of dashboards kept, the least recently written dropped first; at most
:data:`MAX_ENDPOINTS` endpoints per dashboard; an encoded histogram of at most
:data:`MAX_HISTOGRAM_CHARS` characters (decoding inflates it). With the A/B/n token configured
(``--abn-token-file``), the three endpoints want it as ``/abnValues`` does. Errors are JSON
``{"error": ...}``: 400 for a bad parameter or body, 401 without the token, 404 for an unknown test.
"""

from __future__ import annotations

import bisect
import datetime as dt
import hmac
import json
import math
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from kubectl_iter8.result import Result

from .http import BodyRoute, Response, Route

#: Tests kept; the least recently written is dropped for a new one beyond this.
MAX_RESULTS = 1000
#: Bytes of dashboards kept in all (both rendered documents of every test).
MAX_STORED_BYTES = 64 * 1024 * 1024
#: Endpoints per dashboard (Iter8's experiments had a handful).
MAX_ENDPOINTS = 100
#: Characters of one encoded HDR histogram (this project's are a few KB at a million requests).
MAX_HISTOGRAM_CHARS = 256 * 1024
#: Characters of a namespace or test name (a Kubernetes name).
MAX_NAME = 253

#: Iter8's ``Start time`` format (Go's ``02 Jan 06 15:04 MST``), in UTC.
TIME_FORMAT = "%d %b %y %H:%M UTC"
#: Fortio's histogram bucket bounds, in its default resolution of one millisecond.
FORTIO_BOUNDS_MS = (
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 16, 18, 20, 25, 30, 35, 40, 45, 50, 60, 70, 80,
    90, 100, 120, 140, 160, 180, 200, 250, 300, 350, 400, 450, 500, 600, 700, 800, 900, 1000, 2000,
    3000, 4000, 5000, 7500, 10000, 20000, 30000, 40000, 50000, 75000, 100000,
)  # fmt: skip
#: ghz's histogram: this many buckets between the fastest and the slowest call.
GHZ_BUCKETS = 10
#: gRPC status names as the task records them -> as Go's ``codes.Code`` prints them (ghz's keys).
GO_STATUS_NAMES = {
    "OK": "OK",
    "CANCELLED": "Canceled",
    "UNKNOWN": "Unknown",
    "INVALID_ARGUMENT": "InvalidArgument",
    "DEADLINE_EXCEEDED": "DeadlineExceeded",
    "NOT_FOUND": "NotFound",
    "ALREADY_EXISTS": "AlreadyExists",
    "PERMISSION_DENIED": "PermissionDenied",
    "RESOURCE_EXHAUSTED": "ResourceExhausted",
    "FAILED_PRECONDITION": "FailedPrecondition",
    "ABORTED": "Aborted",
    "OUT_OF_RANGE": "OutOfRange",
    "UNIMPLEMENTED": "Unimplemented",
    "INTERNAL": "Internal",
    "UNAVAILABLE": "Unavailable",
    "DATA_LOSS": "DataLoss",
    "UNAUTHENTICATED": "Unauthenticated",
}
_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")


class _Refused(Exception):
    """A request refused with :attr:`response`."""

    def __init__(self, response: Response) -> None:
        super().__init__(response[1])
        self.response = response


class BadResult(ValueError):
    """The body is not a result the dashboards can be built from (the message names the field)."""


def _json(status: int, document: Any) -> Response:
    return status, json.dumps(document, separators=(",", ":")) + "\n", "application/json"


def _quote(text: str) -> str:
    return repr(text) if len(text) <= 64 else f"{text[:64]!r}... ({len(text)} characters)"


def go_float(value: float) -> str:
    """A float as Go's ``strconv.FormatFloat(v, 'f', -1, 64)`` and ``fmt.Sprint`` print it here."""
    return str(int(value)) if value == int(value) else repr(value)


def floor_to(value: float, places: int) -> float:
    """Iter8's ``roundDecimal``: ``value`` cut (not rounded) to ``places`` decimals."""
    scale = 10.0**places
    return math.floor(value * scale) / scale


def no_statistics() -> dict[str, float | int]:
    """Iter8's ``SummarizedMetric`` of no values (Fortio's zeros)."""
    return {"Count": 0, "Mean": 0.0, "StdDev": 0.0, "Min": 0.0, "Max": 0.0}


class Latencies:
    """A decoded HDR latency histogram (microseconds): its non-empty values and their counts."""

    def __init__(self, encoded: Any, where: str) -> None:
        from hdrh.histogram import HdrHistogram  # type: ignore[import-untyped]

        if not isinstance(encoded, str) or not encoded:
            raise BadResult(f"{where}: expected an encoded HDR histogram")
        if len(encoded) > MAX_HISTOGRAM_CHARS:
            raise BadResult(f"{where}: over {MAX_HISTOGRAM_CHARS} characters")
        try:
            histogram = HdrHistogram.decode(encoded)
        except Exception:
            histogram = None
        if histogram is None:
            raise BadResult(f"{where}: not an encoded HDR histogram")
        self.count = int(histogram.get_total_count())
        #: (lowest equivalent value, median equivalent value, count) per non-empty bucket
        self.buckets: list[tuple[float, float, int]] = []
        highest = histogram.get_highest_equivalent_value
        for index, count in enumerate(histogram.counts[:]):
            if count:
                value = histogram.get_value_from_index(index)
                self.buckets.append(
                    (float(value), float(histogram._hdr_median_equiv_value(highest(value))), int(count))
                )
        self.min = float(histogram.get_min_value()) if self.count else 0.0
        self.max = float(histogram.get_max_value()) if self.count else 0.0

    def statistics_ms(self) -> dict[str, float | int]:
        """Iter8's ``SummarizedMetric`` in milliseconds (hdrh's mean and standard deviation rule)."""
        if not self.count:
            return no_statistics()
        mean = sum(median * count for _, median, count in self.buckets) / self.count
        variance = sum((median - mean) ** 2 * count for _, median, count in self.buckets) / self.count
        return {
            "Count": self.count,
            "Mean": mean / 1000,
            "StdDev": math.sqrt(variance) / 1000,
            "Min": self.min / 1000,
            "Max": self.max / 1000,
        }

    def fortio_buckets(self) -> list[dict[str, Any]]:
        """The non-empty buckets in Fortio's bounds (ms), the first from the minimum and the last to
        the maximum, labelled as Iter8 labelled them (``"start - end"``, each cut to one decimal)."""
        counts: dict[int, int] = {}
        for value, _, count in self.buckets:
            index = bisect.bisect_right(FORTIO_BOUNDS_MS, value / 1000)
            counts[index] = counts.get(index, 0) + count
        if not counts:
            return []
        indexes = sorted(counts)
        out = []
        for index in indexes:
            start = float(FORTIO_BOUNDS_MS[index - 1]) if index > 0 else 0.0
            end = float(FORTIO_BOUNDS_MS[index]) if index < len(FORTIO_BOUNDS_MS) else self.max / 1000
            if index == indexes[0]:
                start = self.min / 1000
            if index == indexes[-1]:
                end = self.max / 1000
            label = f"{go_float(floor_to(start, 1))} - {go_float(floor_to(end, 1))}"
            out.append({"Version": "0", "Bucket": label, "Value": float(counts[index])})
        return out

    def ghz_buckets(self) -> list[dict[str, Any]]:
        """ghz's histogram: marks from the fastest to the slowest in :data:`GHZ_BUCKETS` equal steps,
        each counting the calls above the previous mark, labelled in ms cut to three decimals."""
        if not self.count:
            return []
        step = (self.max - self.min) / GHZ_BUCKETS
        marks = [self.min + step * i for i in range(GHZ_BUCKETS)] + [self.max]
        counts = [0] * len(marks)
        for value, _, count in self.buckets:
            counts[min(bisect.bisect_left(marks, value), len(marks) - 1)] += count
        return [
            {"Version": "0", "Bucket": go_float(floor_to(mark / 1000, 3)), "Value": float(count)}
            for mark, count in zip(marks, counts, strict=True)
        ]


def _counts(value: Any, where: str) -> dict[str, int]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value.values()
    ):
        raise BadResult(f"{where}: expected counts by name")
    return {str(k): int(v) for k, v in value.items()}


def _endpoints(result: Result, task: str) -> dict[str, dict[str, Any]]:
    """The last record of every endpoint of the ``task`` entries (Iter8 kept each task's last
    data), keyed by Iter8's endpoint key; warm-up runs and endpoints that did not run are left out."""
    out: dict[str, dict[str, Any]] = {}
    for position, record in enumerate(result.tasks):
        if record.task != task or record.details.get("warmup"):
            continue
        endpoints = record.details.get("endpoints")
        if not isinstance(endpoints, dict):
            continue
        for prefix, data in endpoints.items():
            if not isinstance(data, dict) or "latencyHistogram" not in data:
                continue
            where = f"tasks[{position}].details.endpoints[{_quote(str(prefix))}]"
            if prefix == task:
                key = data.get("url" if task == "http" else "call")
                key = key if isinstance(key, str) and key else task
            else:
                key = str(prefix).removeprefix(f"{task}-")
            out[key] = {**data, "_where": where}
            if len(out) > MAX_ENDPOINTS:
                raise BadResult(f"tasks: more than {MAX_ENDPOINTS} {task} endpoints")
    return out


def _number(data: dict[str, Any], key: str, where: str) -> int:
    value = data.get(key, 0)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise BadResult(f"{where}.{key}: expected a count")
    return value


def http_row(data: dict[str, Any]) -> dict[str, Any]:
    where = data["_where"]
    latencies = Latencies(data["latencyHistogram"], f"{where}.latencyHistogram")
    codes = _counts(data.get("statusCodes"), f"{where}.statusCodes")
    no_response = sum(_counts(data.get("errorReasons"), f"{where}.errorReasons").values())
    if no_response:
        codes["-1"] = codes.get("-1", 0) + no_response
    errors = _number(data, "errors", where)
    encoded = data.get("errorLatencyHistogram")
    error_durations: list[dict[str, Any]] = []
    error_statistics: dict[str, Any]
    if encoded is not None:
        failed = Latencies(encoded, f"{where}.errorLatencyHistogram")
        error_durations = failed.fortio_buckets()
        error_statistics = failed.statistics_ms()
    elif errors:
        # Recorded before failed requests were timed: only their number is known.
        error_statistics = {"Count": errors, "Mean": None, "StdDev": None, "Min": None, "Max": None}
    else:
        error_statistics = no_statistics()
    return {
        "Durations": latencies.fortio_buckets(),
        "Statistics": latencies.statistics_ms(),
        "Error durations": error_durations,
        "Error statistics": error_statistics,
        "Return codes": codes,
    }


def grpc_row(data: dict[str, Any]) -> dict[str, Any]:
    where = data["_where"]
    latencies = Latencies(data["latencyHistogram"], f"{where}.latencyHistogram")
    codes = _counts(data.get("statusCodes"), f"{where}.statusCodes")
    return {
        "Durations": latencies.ghz_buckets(),
        "Statistics": {
            "Count": _number(data, "requests", where),
            "ErrorCount": float(_number(data, "errors", where)),
        },
        "Status codes": {GO_STATUS_NAMES.get(name, name): count for name, count in codes.items()},
    }


def experiment_result(result: Result, namespace: str, test: str) -> dict[str, Any]:
    """Iter8's ``dashboardExperimentResult``: the result's headline, capitalised for Grafana."""
    extra = result.model_extra or {}
    start = result.start_time
    if start is not None and start.tzinfo is not None:
        start = start.astimezone(dt.UTC)
    insights = (
        result.insights.model_dump(mode="json", by_alias=True, exclude_none=True) if result.insights else None
    )
    if insights is not None:
        insights.pop("histograms", None)  # encoded, for the tasks' own use: the dashboards show them decoded
    return {
        "Name": str(extra.get("name") or test),
        "Namespace": str(extra.get("namespace") or namespace),
        "Revision": result.revision or 0,
        "Start time": start.strftime(TIME_FORMAT) if start is not None else "",
        "Completed tasks": result.num_completed_tasks,
        "Failure": result.failure,
        "Insights": insights,
        "Iter8 version": result.iter8_version or "",
    }


def dashboards(document: Any, namespace: str, test: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The http and grpc dashboards of a result as PUT (parsed JSON); :class:`BadResult` if it is
    not one."""
    if not isinstance(document, dict):
        raise BadResult("the body must be a JSON object (the experiment's result)")
    try:
        result = Result.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise BadResult(f"{where}: {first['msg']}") from None
    headline = experiment_result(result, namespace, test)
    http = {key: http_row(data) for key, data in _endpoints(result, "http").items()}
    grpc = {key: grpc_row(data) for key, data in _endpoints(result, "grpc").items()}
    return (
        {"Endpoints": http, "ExperimentResult": headline},
        {"Endpoints": grpc, "ExperimentResult": headline},
    )


class TestResults:
    """The latest result of every test, as its two rendered dashboards; thread-safe and bounded."""

    __test__ = False  # not a pytest class, whatever its name

    def __init__(
        self,
        token: str | None = None,
        *,
        max_results: int = MAX_RESULTS,
        max_bytes: int = MAX_STORED_BYTES,
    ) -> None:
        self._token = token
        self._max_results = max_results
        self._max_bytes = max_bytes
        self._lock = threading.Lock()
        #: (namespace, test) -> (http dashboard, grpc dashboard), rendered; oldest write first
        self._results: OrderedDict[tuple[str, str], tuple[str, str]] = OrderedDict()
        self._bytes = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._results)

    def routes(self) -> dict[str, Route]:
        return {
            "/httpDashboard": self._guarded(lambda q: self._dashboard(q, 0)),
            "/grpcDashboard": self._guarded(lambda q: self._dashboard(q, 1)),
        }

    def put_routes(self) -> dict[str, BodyRoute]:
        return {"/testResult": self._put}

    def _authorized(self, headers: dict[str, str]) -> bool:
        if self._token is None:
            return True
        scheme, _, given = headers.get("authorization", "").strip().partition(" ")
        # compare_digest on bytes: constant time whatever the content, no timing hint at the token.
        return scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), self._token.encode()
        )

    def _guarded(self, route: Callable[[dict[str, str]], Response]) -> Route:
        def guarded(query: dict[str, str], headers: dict[str, str]) -> Response:
            if not self._authorized(headers):
                return _json(401, {"error": "missing or wrong Authorization: Bearer token"})
            return route(query)

        return guarded

    @staticmethod
    def _key(query: dict[str, str]) -> tuple[str, str]:
        names = []
        for parameter in ("namespace", "test"):
            value = query.get(parameter, "").strip()
            if not value:
                raise _Refused(_json(400, {"error": f"the query parameter {parameter} is required"}))
            if len(value) > MAX_NAME or not _NAME.fullmatch(value):
                message = f"{parameter}: {_quote(value)} is not a Kubernetes name"
                raise _Refused(_json(400, {"error": message}))
            names.append(value)
        return names[0], names[1]

    def _put(self, query: dict[str, str], headers: dict[str, str], body: bytes) -> Response:
        if not self._authorized(headers):
            return _json(401, {"error": "missing or wrong Authorization: Bearer token"})
        try:
            key = self._key(query)
        except _Refused as refused:
            return refused.response
        try:
            document = json.loads(body)
        except (ValueError, RecursionError) as exc:
            return _json(400, {"error": f"body: not JSON: {str(exc)[:200]}"})
        try:
            http, grpc = dashboards(document, *key)
        except BadResult as exc:
            return _json(400, {"error": str(exc)})
        rendered = (
            json.dumps(http, separators=(",", ":")) + "\n",
            json.dumps(grpc, separators=(",", ":")) + "\n",
        )
        size = len(rendered[0]) + len(rendered[1])
        if size > self._max_bytes:
            return _json(400, {"error": f"body: its dashboards would take over {self._max_bytes} bytes"})
        with self._lock:
            old = self._results.pop(key, None)
            if old is not None:
                self._bytes -= len(old[0]) + len(old[1])
            while self._results and (
                len(self._results) >= self._max_results or self._bytes + size > self._max_bytes
            ):
                _, dropped = self._results.popitem(last=False)
                self._bytes -= len(dropped[0]) + len(dropped[1])
            self._results[key] = rendered
            self._bytes += size
        return _json(200, {"namespace": key[0], "test": key[1]})

    def _dashboard(self, query: dict[str, str], which: int) -> Response:
        try:
            key = self._key(query)
        except _Refused as refused:
            return refused.response
        with self._lock:
            stored = self._results.get(key)
        if stored is None:
            return _json(404, {"error": f"no result for test {key[1]!r} in namespace {key[0]!r}"})
        return 200, stored[which], "application/json"
