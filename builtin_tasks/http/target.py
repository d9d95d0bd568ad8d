"""What the load engine sends, and where: one endpoint, resolved and ready to go on the wire.

A :class:`Target` is a plain, picklable value (the worker processes get it as is), built once per
endpoint from the task's inputs. The request is encoded to bytes once, so the hot path only writes
the same ``bytes`` object again and again; the TLS context is built in the process that uses it,
because ``ssl.SSLContext`` cannot cross a process boundary.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from functools import cached_property
from urllib.parse import urlsplit

USER_AGENT = "kubectl-iter8"
#: Methods whose requests carry a body even when it is empty (``Content-Length: 0``).
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


@dataclass(frozen=True)
class Target:
    """One HTTP endpoint under load: URL, request and connection options."""

    url: str
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None
    content_type: str | None = None
    #: Seconds to wait for a connection or a response before counting a ``timeout`` error.
    timeout: float = 30.0
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    insecure_skip_verify: bool = False
    #: Status codes counted as errors: inclusive ``(lower, upper)`` ranges.
    error_ranges: tuple[tuple[int, int], ...] = field(default=((400, 999),))

    @cached_property
    def _parts(self) -> tuple[str, str, int, str]:
        parts = urlsplit(self.url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise ValueError(f"{self.url!r}: only http:// and https:// URLs are supported")
        if not parts.hostname:
            raise ValueError(f"{self.url!r} has no host")
        port = parts.port or (443 if scheme == "https" else 80)
        path = parts.path or "/"
        if parts.query:
            path = f"{path}?{parts.query}"
        return scheme, parts.hostname, port, path

    @property
    def host(self) -> str:
        return self._parts[1]

    @property
    def port(self) -> int:
        return self._parts[2]

    @property
    def is_tls(self) -> bool:
        return self._parts[0] == "https"

    def is_error(self, status: int) -> bool:
        """Whether a response with ``status`` counts as an error."""
        return any(lower <= status <= upper for lower, upper in self.error_ranges)

    def request_bytes(self) -> bytes:
        """The complete HTTP/1.1 request, encoded once and reused for every send."""
        scheme, host, port, path = self._parts
        default_port = 443 if scheme == "https" else 80
        host_header = host if port == default_port else f"{host}:{port}"
        if ":" in host and not host.startswith("["):  # an IPv6 literal
            host_header = f"[{host}]" if port == default_port else f"[{host}]:{port}"
        given = {name.lower() for name, _ in self.headers}
        lines = [f"{self.method} {path} HTTP/1.1"]
        if "host" not in given:
            lines.append(f"Host: {host_header}")
        if "user-agent" not in given:
            lines.append(f"User-Agent: {USER_AGENT}")
        if self.content_type and "content-type" not in given:
            lines.append(f"Content-Type: {self.content_type}")
        for name, value in self.headers:
            if any(c in name + value for c in "\r\n") or not name or ":" in name:
                raise ValueError(f"invalid header {name!r}")
            lines.append(f"{name}: {value}")
        body = self.body or b""
        if (body or self.method in _BODY_METHODS) and "content-length" not in given:
            lines.append(f"Content-Length: {len(body)}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        return head + body

    def ssl_context(self) -> ssl.SSLContext | None:
        """The client TLS context for ``https://`` targets (None for plain HTTP)."""
        if not self.is_tls:
            return None
        context = ssl.create_default_context(cafile=self.ca_file)
        if self.insecure_skip_verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if self.cert_file:
            context.load_cert_chain(self.cert_file, self.key_file)
        # HTTP/1.1 only: the engine speaks nothing else.
        context.set_alpn_protocols(["http/1.1"])
        return context
