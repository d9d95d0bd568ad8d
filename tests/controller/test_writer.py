"""The writer's Events: sent by a thread of their own, in order, never twice in a row, bounded, and
flushed on stop; against the fake API server (fault injection for the failures)."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import pytest
from kubectl_iter8.controller import writer as writer_module
from kubectl_iter8.controller.errors import NotLeaderError
from kubectl_iter8.controller.http import Metrics
from kubectl_iter8.controller.writer import Writer

from kubectl_iter8.kube import Kube, KubeOptions
from kubectl_iter8.testing import FakeKube

pytestmark = pytest.mark.fake_only  # fault injection and a held sender

ROUTEMAP = {"metadata": {"name": "app", "namespace": "default", "uid": "u-1"}}


@pytest.fixture
def client(fake_kube: FakeKube) -> Kube:
    client = Kube(KubeOptions(kubeconfig=str(fake_kube.kubeconfig)))
    client.retry_delays = ()
    return client


def reasons(fake_kube: FakeKube) -> list[str]:
    events = fake_kube.list("events", "default")
    events.sort(key=lambda e: int(e["metadata"]["resourceVersion"]))
    return [e["reason"] for e in events]


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Holds every Event the writer sends until it is set."""
    opened = threading.Event()
    send = Kube.record_event

    def held(self: Kube, *args: Any, **kwargs: Any) -> dict[str, Any]:
        opened.wait(10)
        return send(self, *args, **kwargs)

    monkeypatch.setattr(Kube, "record_event", held)
    return opened


def test_events_are_sent_in_order_without_holding_up_the_caller(
    fake_kube: FakeKube, client: Kube, gate: threading.Event
) -> None:
    writer = Writer(client, is_leader=lambda: True, metrics=Metrics())
    started = time.monotonic()
    for reason in ("RolloutStarted", "RolloutStep", "RoutingApplied"):
        writer.event(ROUTEMAP, reason, f"{reason} happened")
    assert time.monotonic() - started < 1.0, "the caller waited for the API server"
    assert reasons(fake_kube) == []
    gate.set()
    writer.stop()
    assert reasons(fake_kube) == ["RolloutStarted", "RolloutStep", "RoutingApplied"]


def test_the_same_event_twice_in_a_row_is_sent_once_and_a_failed_one_again(
    fake_kube: FakeKube, client: Kube, caplog: pytest.LogCaptureFixture
) -> None:
    writer = Writer(client, is_leader=lambda: True, metrics=Metrics())
    fake_kube.faults.fail_next("create", "events", status=500)
    with caplog.at_level(logging.WARNING, logger="kubectl_iter8.controller"):
        writer.event(ROUTEMAP, "RoutingConflict", "not written", warning=True)
        deadline = time.monotonic() + 10
        while not caplog.records and time.monotonic() < deadline:
            time.sleep(0.01)
    assert [r.getMessage().split(":")[0] for r in caplog.records] == ["could not record an event"]
    writer.event(ROUTEMAP, "RoutingConflict", "not written", warning=True)  # tried again: it failed
    writer.event(ROUTEMAP, "RoutingConflict", "not written", warning=True)  # the last one: not repeated
    writer.event(ROUTEMAP, "RoutingApplied", "applied")
    writer.stop()
    assert reasons(fake_kube) == ["RoutingConflict", "RoutingApplied"]


def test_a_full_backlog_drops_events_with_one_warning(
    fake_kube: FakeKube,
    client: Kube,
    gate: threading.Event,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(writer_module, "EVENT_BACKLOG", 2)
    writer = Writer(client, is_leader=lambda: True, metrics=Metrics())
    with caplog.at_level(logging.WARNING, logger="kubectl_iter8.controller"):
        writer.event(ROUTEMAP, "E0", "taken by the sender, which waits")
        deadline = time.monotonic() + 10
        while writer._events and time.monotonic() < deadline:
            time.sleep(0.01)
        for index in range(1, 6):
            writer.event(ROUTEMAP, f"E{index}", "queued or dropped")
    gate.set()
    writer.stop()
    assert reasons(fake_kube) == ["E0", "E1", "E2"]
    assert [r.getMessage() for r in caplog.records] == [
        "more than 2 Events waiting to be sent: dropping Events"
    ]


def test_a_follower_records_no_event(fake_kube: FakeKube, client: Kube) -> None:
    writer = Writer(client, is_leader=lambda: False, metrics=Metrics())
    with pytest.raises(NotLeaderError):
        writer.event(ROUTEMAP, "RoutingApplied", "applied")
    writer.stop()
    assert reasons(fake_kube) == []
