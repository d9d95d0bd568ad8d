"""Channels to the target: plaintext (Iter8's only mode, still the default) or TLS, and connecting.

``connections: N`` opens N channels, each on a connection of its own (a local subchannel pool, so
gRPC does not quietly share one). TLS follows ghz: ``cacert`` (else the system roots), a client
certificate (``cert`` + ``key``), ``cname`` (the name the server certificate must carry, when it
is not the host's) and ``skipTLS``: no verification at all. gRPC's Python API cannot switch
verification off, so ``skipTLS`` first fetches the certificate the server presents (with the
``ssl`` module, verifying nothing) and then trusts exactly that certificate, under a name it
carries. ``authority`` overrides the ``:authority`` header in either mode.

:func:`wait_ready` connects within ``connectTimeout`` and, when that fails, asks gRPC why (a
refused connection, a TLS failure, a name that does not resolve) for a one-line error.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import grpc.aio


class ConnectError(Exception):
    """The target cannot be reached (or its TLS not agreed); the message is one line."""


@dataclass(frozen=True)
class Security:
    """How to talk to the target: plaintext unless ``tls``."""

    tls: bool = False
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    skip_verify: bool = False
    server_name: str | None = None
    authority: str | None = None


def split_host(host: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` -> (host, port)."""
    name, sep, port = host.rpartition(":")
    if not sep or not port.isdigit() or not name:
        raise ValueError(f"host {host!r}: write it as host:port")
    return name.strip("[]"), int(port)


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).expanduser().read_bytes()
    except OSError as exc:
        raise ConnectError(f"cannot read {what} {path!r}: {exc.strerror or exc}") from None


def fetch_certificate(host: str, security: Security, timeout: float) -> tuple[bytes, list[str]]:
    """The certificate ``host`` presents (PEM) and the names in it, verifying nothing (``skipTLS``)."""
    address = split_host(host)
    sni = security.server_name or address[0]

    def handshake(context: ssl.SSLContext) -> ssl.SSLSocket:
        context.set_alpn_protocols(["h2"])
        if security.cert_file and security.key_file:
            context.load_cert_chain(security.cert_file, security.key_file)
        sock = socket.create_connection(address, timeout=timeout)
        try:
            return context.wrap_socket(sock, server_hostname=sni)
        except BaseException:
            sock.close()
            raise

    try:
        blind = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        blind.check_hostname = False
        blind.verify_mode = ssl.CERT_NONE
        with handshake(blind) as tls:
            der = tls.getpeercert(binary_form=True)
        pem = ssl.DER_cert_to_PEM_cert(der) if der else ""
        # Once more, trusting that certificate alone, to read the names in it.
        pinned = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        pinned.check_hostname = False
        decoded: dict[str, Any] = {}
        if pem:
            pinned.load_verify_locations(cadata=pem)
            pinned.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
            with handshake(pinned) as tls:
                decoded = dict(tls.getpeercert() or {})
    except (OSError, ssl.SSLError) as exc:
        raise ConnectError(f"cannot fetch the TLS certificate of {host}: {exc}") from None
    if not pem:
        raise ConnectError(f"{host} presented no TLS certificate")
    names: list[str] = []
    for kind, value in decoded.get("subjectAltName", ()):
        if kind in ("DNS", "IP Address"):
            names.append(str(value))
    for entry in decoded.get("subject", ()):
        names += [str(value) for key, value in entry if key == "commonName"]
    return pem.encode(), names


def open_channel(
    host: str, security: Security, *, pinned: tuple[bytes, list[str]] | None
) -> grpc.aio.Channel:
    """A channel of its own to ``host`` (``pinned``: the certificate fetched for ``skipTLS``)."""
    import grpc

    options: list[tuple[str, str | int]] = [
        ("grpc.use_local_subchannel_pool", 1),
        ("grpc.max_receive_message_length", -1),
    ]
    if security.authority:
        options.append(("grpc.default_authority", security.authority))
    if not security.tls:
        return grpc.aio.insecure_channel(host, options=options)
    root: bytes | None = _read(security.ca_file, "cacert") if security.ca_file else None
    server_name = security.server_name
    if pinned is not None:
        root = pinned[0]
        if server_name is None and pinned[1]:
            server_name = pinned[1][0]
    if server_name:
        options.append(("grpc.ssl_target_name_override", server_name))
    key = _read(security.key_file, "key") if security.key_file else None
    chain = _read(security.cert_file, "cert") if security.cert_file else None
    credentials = grpc.ssl_channel_credentials(
        root_certificates=root, private_key=key, certificate_chain=chain
    )
    return grpc.aio.secure_channel(host, credentials, options=options)


async def wait_ready(channel: grpc.aio.Channel, host: str, timeout: float) -> None:
    """Connect ``channel`` within ``timeout`` seconds, or raise :class:`ConnectError` saying why."""
    import grpc

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    state = channel.get_state(try_to_connect=True)
    while state != grpc.ChannelConnectivity.READY:
        remaining = deadline - loop.time()
        if state in (grpc.ChannelConnectivity.TRANSIENT_FAILURE, grpc.ChannelConnectivity.SHUTDOWN):
            break
        if remaining <= 0:
            break
        try:
            await asyncio.wait_for(channel.wait_for_state_change(state), remaining)
        except TimeoutError:
            break
        state = channel.get_state(try_to_connect=True)
    else:
        return
    raise ConnectError(await _why(channel, host, timeout))


async def _why(channel: grpc.aio.Channel, host: str, timeout: float) -> str:
    """A failed connection's reason, as gRPC tells it to the first call on the channel."""
    import grpc

    probe: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
        "/grpc.health.v1.Health/Check"
    )
    try:
        await probe(b"", timeout=min(timeout, 1.0))
    except grpc.aio.AioRpcError as exc:
        if exc.code() == grpc.StatusCode.UNAVAILABLE:
            return f"cannot connect to {host}: {reason(exc.details() or '')}"
    return f"cannot connect to {host} within {timeout:g}s"


def reason(details: str) -> str:
    """gRPC's ``failed to connect to all addresses; last error: UNKNOWN: ipv4:...: X`` -> ``X``."""
    text = details.split("last error:", 1)[-1].strip()
    for prefix in ("UNKNOWN:", "UNAVAILABLE:"):
        text = text.removeprefix(prefix).strip()
    head, sep, rest = text.partition(": ")
    if sep and head.startswith(("ipv4:", "ipv6:", "unix:")):
        text = rest
    return text or details
