"""The ``fake_kube`` pytest fixture: a fresh fake API server per test, with ``KUBECONFIG`` set to it.

Not registered through an entry point (importing aiohttp in every pytest run of every project
that has kubectl-iter8 installed would be rude); enable it in a conftest.py with
``pytest_plugins = ["kubectl_iter8.testing.pytest_plugin"]``.

The ``kubernetes`` package reads ``$KUBECONFIG`` once, when it is imported, so setting the
variable is not enough for code that calls ``config.load_kube_config()`` without a file: the
fixture also points the package's default location at the fake, in the sync and the asyncio
client, if they are already imported (if not, they read the variable when they are).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .fake import FakeKube

_DEFAULT_LOCATION_MODULES = (
    "kubernetes.config",
    "kubernetes.config.kube_config",
    "kubernetes.aio.config",
    "kubernetes.aio.config.kube_config",
)


@pytest.fixture
def fake_kube(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeKube]:
    """A running :class:`FakeKube` (no CRDs loaded); ``KUBECONFIG`` and ``KUBECACHEDIR`` point at it."""
    kube = FakeKube(directory=tmp_path / "fake-kube")
    kube.start()
    try:
        for key, value in kube.env().items():
            monkeypatch.setenv(key, value)
        for name in _DEFAULT_LOCATION_MODULES:
            module = sys.modules.get(name)
            if module is not None and hasattr(module, "KUBE_CONFIG_DEFAULT_LOCATION"):
                monkeypatch.setattr(module, "KUBE_CONFIG_DEFAULT_LOCATION", str(kube.kubeconfig))
        yield kube
    finally:
        kube.stop()
