"""Kubernetes ``Status`` failures, raised inside the fake and rendered as the real server renders them.

Clients branch on ``reason`` and ``code`` (the ``kubernetes`` client raises ``ApiException(status=...)``,
kubectl prints ``Error from server (Reason): message``), so every failure the fake answers is a
``kind: Status`` body with the same reason, code, message wording and ``details`` as kube-apiserver.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A failed request; ``status`` is the ``kind: Status`` body and ``code`` the HTTP status."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = headers or {}

    @property
    def status(self) -> dict[str, Any]:
        """The ``kind: Status`` body a real API server sends for this failure."""
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            body["details"] = self.details
        return body


def _details(name: str, group: str, resource: str) -> dict[str, Any]:
    details: dict[str, Any] = {"name": name, "kind": resource}
    if group:
        details["group"] = group
    return details


def qualified(group: str, resource: str) -> str:
    """``configmaps`` for the core group, ``deployments.apps`` otherwise (as in server messages)."""
    return f"{resource}.{group}" if group else resource


def not_found(group: str, resource: str, name: str) -> ApiError:
    """404 ``NotFound``: ``configmaps "x" not found``."""
    return ApiError(
        404,
        "NotFound",
        f'{qualified(group, resource)} "{name}" not found',
        details=_details(name, group, resource),
    )


def already_exists(group: str, resource: str, name: str) -> ApiError:
    """409 ``AlreadyExists`` for a create of an existing name."""
    return ApiError(
        409,
        "AlreadyExists",
        f'{qualified(group, resource)} "{name}" already exists',
        details=_details(name, group, resource),
    )


def conflict(group: str, resource: str, name: str, why: str | None = None) -> ApiError:
    """409 ``Conflict`` for a write based on a stale resourceVersion."""
    why = why or "the object has been modified; please apply your changes to the latest version and try again"
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {qualified(group, resource)} "{name}": {why}',
        details=_details(name, group, resource),
    )


def apply_conflict(group: str, resource: str, name: str, fields: list[str]) -> ApiError:
    """409 ``Conflict`` for a non-forced server-side apply that would change fields others set."""
    listed = "\n".join(f'conflict with "another manager": {field}' for field in fields)
    many = f"{len(fields)} conflicts" if len(fields) > 1 else "1 conflict"
    return ApiError(
        409,
        "Conflict",
        f"Apply failed with {many}: {listed}",
        details=_details(name, group, resource),
    )


def invalid(kind: str, group: str, name: str, field: str, problem: str, detail: str = "") -> ApiError:
    """422 ``Invalid`` with one cause, worded like apimachinery's field errors."""
    text = f"{field}: {problem}" + (f": {detail}" if detail else "")
    return ApiError(
        422,
        "Invalid",
        f'{kind}{"." + group if group else ""} "{name}" is invalid: {text}',
        details={
            "name": name,
            "group": group,
            "kind": kind,
            "causes": [{"reason": "FieldValue" + problem.replace(" ", ""), "message": text, "field": field}],
        },
    )


def bad_request(message: str) -> ApiError:
    """400 ``BadRequest``."""
    return ApiError(400, "BadRequest", message)


def gone(message: str) -> ApiError:
    """410 ``Expired``: the resourceVersion asked for is older than the history kept."""
    return ApiError(410, "Expired", message)


def forbidden(verb: str, group: str, resource: str, name: str, namespace: str | None) -> ApiError:
    """403 ``Forbidden`` worded like the RBAC authorizer's denial for an anonymous user."""
    what = f'{qualified(group, resource)} "{name}"' if name else qualified(group, resource)
    where = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
    return ApiError(
        403,
        "Forbidden",
        f'{what} is forbidden: User "system:serviceaccount:default:fake" cannot {verb} resource '
        f'"{resource}" in API group "{group}"{where}',
        details=_details(name, group, resource),
    )


def too_many_requests(retry_after: int = 1) -> ApiError:
    """429 ``TooManyRequests`` with a ``Retry-After`` header, as API priority and fairness sends it."""
    return ApiError(
        429,
        "TooManyRequests",
        "Too many requests, please try again later.",
        details={"retryAfterSeconds": retry_after},
        headers={"Retry-After": str(retry_after)},
    )


def internal_error(message: str = "injected fault") -> ApiError:
    """500 ``InternalError``."""
    return ApiError(
        500,
        "InternalError",
        f"Internal error occurred: {message}",
        details={"causes": [{"message": message}]},
    )


def for_code(code: int, group: str, resource: str, name: str) -> ApiError:
    """The canonical failure for an injected HTTP status code."""
    if code == 409:
        return conflict(group, resource, name)
    if code == 429:
        return too_many_requests()
    if code == 404:
        return not_found(group, resource, name)
    if code == 410:
        return gone("too old resource version")
    if code == 403:
        return forbidden("access", group, resource, name, None)
    if code == 500:
        return internal_error()
    if code == 503:
        return ApiError(503, "ServiceUnavailable", "the server is currently unable to handle the request")
    if code == 504:
        return ApiError(504, "Timeout", "the server was unable to return a response in the time allotted")
    return ApiError(code, "Unknown", f"injected fault (HTTP {code})")
