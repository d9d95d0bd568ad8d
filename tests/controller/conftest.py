"""The ``kube`` and ``harness`` fixtures: controllers in-process, on the fake and on a real control plane.

Every test that asks for ``kube`` (or ``harness``) runs twice: on the fake API server and on a namespace
of the session's real kube-apiserver + kube-controller-manager (with the node stand-in), unless it is
marked ``fake_only`` (it needs fault injection or other hooks only the fake has). Every test that uses
``harness`` ends with all controller threads stopped and the routing invariant (and the drain rule)
checked over the cluster's whole write history (see :mod:`routing_invariant`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from controller_helpers import Harness, Kube
from redis_fixtures import redis_server, redis_session_server, redis_url

__all__ = ["harness", "kube", "redis_server", "redis_session_server", "redis_url"]  # also for abn/


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "kube" in metafunc.fixturenames:
        fake_only = metafunc.definition.get_closest_marker("fake_only") is not None
        metafunc.parametrize("kube", ["fake"] if fake_only else ["fake", "real"], indirect=True)


@pytest.fixture
def kube(request: pytest.FixtureRequest) -> Kube:
    """The cluster of the test: ``fake_kube`` or ``real_kube``."""
    backend: Kube = request.getfixturevalue(f"{request.param}_kube")
    return backend


@pytest.fixture
def harness(kube: Kube) -> Iterator[Harness]:
    """Controllers against ``kube``; at the end, every thread is gone and the invariant holds."""
    h = Harness(kube)
    try:
        yield h
        h.close()
        leftover = [t.name for t in threading.enumerate() if t.name.startswith("iter8-")]
        assert not leftover, f"threads still running after stop: {leftover}"
        h.check_invariant(at_least=0, destinations=h.destinations)
    finally:
        h.close()
        h.history.stop()
