"""The ``harness`` fixture: controllers in-process against ``fake_kube``, checked at the end.

Every test that uses it ends with all controller threads stopped and the routing invariant (and the
drain rule) checked over the fake's whole write history (see :mod:`routing_invariant`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from controller_helpers import Harness
from redis_fixtures import redis_server, redis_session_server, redis_url

from kubectl_iter8.testing import FakeKube

__all__ = ["harness", "redis_server", "redis_session_server", "redis_url"]  # fixtures, for here and abn/


@pytest.fixture
def harness(fake_kube: FakeKube) -> Iterator[Harness]:
    """Controllers against ``fake_kube``; at the end, every thread is gone and the invariant holds."""
    h = Harness(fake_kube)
    try:
        yield h
    finally:
        h.close()
    leftover = [t.name for t in threading.enumerate() if t.name.startswith("iter8-")]
    assert not leftover, f"threads still running after stop: {leftover}"
    h.check_invariant(at_least=0, destinations=h.destinations)
