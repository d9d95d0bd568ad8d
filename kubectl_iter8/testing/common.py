"""What both test tiers share: helpers built on ``get``, running the real kubectl, a test certificate.

:class:`~kubectl_iter8.testing.FakeKube` and :class:`~kubectl_iter8.testing.real.RealKube` differ in how
they reach objects; what is defined on top of reading one is written once, here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .apierrors import ApiError

Obj = dict[str, Any]


class ClusterHelpers:
    """``find``, ``exists`` and ``wait_for`` for a class whose ``get`` raises :class:`ApiError` 404
    when the object is absent."""

    #: Seconds between two reads of :meth:`wait_for`.
    poll_interval = 0.02

    def get(self, resource: str, name: str, namespace: str | None = None) -> Obj:
        raise NotImplementedError

    def find(self, resource: str, name: str, namespace: str | None = None) -> Obj | None:
        """The object, or None when it does not exist: one read, where ``exists`` then ``get``
        would race with a deletion between the two."""
        try:
            return self.get(resource, name, namespace)
        except ApiError as exc:
            if exc.code == 404:
                return None
            raise

    def exists(self, resource: str, name: str, namespace: str | None = None) -> bool:
        return self.find(resource, name, namespace) is not None

    def wait_for(
        self,
        resource: str,
        name: str,
        predicate: Callable[[Obj], bool] | None = None,
        namespace: str | None = None,
        *,
        timeout: float = 10.0,
    ) -> Obj:
        """Poll until the object exists and ``predicate(obj)`` holds; returns it or raises TimeoutError."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                obj = self.get(resource, name, namespace)
                if predicate is None or predicate(obj):
                    return obj
            except ApiError as exc:
                if exc.code != 404:
                    raise
            if time.monotonic() > deadline:
                raise TimeoutError(f"{resource}/{name} did not reach the expected state in {timeout} s")
            time.sleep(self.poll_interval)


def run_kubectl(
    args: tuple[str, ...], env: dict[str, str], *, input: str | None, check: bool, timeout: float
) -> subprocess.CompletedProcess[str]:
    """The real ``kubectl ARGS`` with ``env`` on top of this process's (text mode, output captured)."""
    binary = shutil.which("kubectl")
    if binary is None:
        raise FileNotFoundError("kubectl is not on PATH")
    return subprocess.run(
        [binary, *args],
        input=input,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=timeout,
        check=check,
    )


def self_signed_certificate(folder: Path, name: str = "server") -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (and its key) made with ``openssl``, valid for a day: (cert, key)."""
    cert, key = folder / f"{name}.crt", folder / f"{name}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key
