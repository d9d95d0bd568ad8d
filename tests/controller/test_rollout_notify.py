"""Notify calls on rollout transitions (``rollout.notify``): through the controller, on the fake and
on a real control plane, with a real HTTP receiver on 127.0.0.1; and the sender's queue on its own.
"""

from __future__ import annotations

import base64
import http.server
import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from controller_helpers import Harness, Kube, create_version, wait_until
from kubectl_iter8.controller import rollout_notify
from kubectl_iter8.controller.http import Metrics
from kubectl_iter8.controller.rollout_notify import Pending, RolloutNotifier, render
from test_rollouts import event_reasons, phase, rollout_routemap

from kubectl_iter8.errors import UsageError
from kubectl_iter8.rollout import Notification, RolloutState
from kubectl_iter8.routemap import parse_routemap

CANARY = [{"weight": 10}, {"weight": 30}, {"weight": 60}]
TRANSITIONS = [
    "RolloutStarted",
    "RolloutStep",
    "RolloutStep",
    "RolloutStep",
    "RolloutPromoting",
    "RolloutPromoted",
]


@pytest.fixture(autouse=True)
def test_router(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    """As in test_rollouts: the test router, and the controller's RBAC of ``--rollouts`` (only for
    the tests that start a controller: the others run once, without a cluster)."""
    if "harness" in request.fixturenames:
        request.getfixturevalue("harness").rollouts = True
        monkeypatch.setenv("ITER8_PLUGINS", "iter8_controller_test_plugin")
        paths = [str(Path(__file__).resolve().parent), os.environ.get("PYTHONPATH")]
        monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, paths)))


PAYLOAD_KEYS = {
    "routemap", "namespace", "reason", "message", "warning", "phase", "step", "weight", "candidate",
    "verdict", "time",
}  # fmt: skip


class Receiver(http.server.BaseHTTPRequestHandler):
    """Records every request; ``/fail`` answers 500, ``/hang`` answers only after ``HANG`` seconds."""

    HANG = 3.0
    calls: ClassVar[list[dict[str, Any]]] = []

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode()
        Receiver.calls.append(
            {"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body}
        )
        if self.path.startswith("/hang"):
            time.sleep(Receiver.HANG)
        self.send_response(500 if self.path.startswith("/fail") else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_POST = do_PUT = _answer

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    Receiver.calls = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    server.daemon_threads = True
    server.block_on_close = False
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def received(path: str) -> list[dict[str, Any]]:
    return [c for c in Receiver.calls if c["path"] == path]


def bodies(path: str) -> list[dict[str, Any]]:
    return [json.loads(c["body"]) for c in received(path)]


def test_a_canary_sends_one_notification_per_transition_in_order(
    harness: Harness, kube: Kube, receiver: str
) -> None:
    create_version(kube, "v1")
    create_version(kube, "v2")
    kube.create(rollout_routemap(CANARY, notify=[{"url": f"{receiver}/all"}]))
    harness.start(rollouts=True)
    wait_until(lambda: phase(kube) == "Promoted", timeout=30, what="the promotion")
    sent = wait_until(
        lambda: (b := bodies("/all")) and b[-1]["reason"] == "RolloutPromoted" and b,
        timeout=10,
        what="the last notification",
    )
    assert [b["reason"] for b in sent] == TRANSITIONS
    assert all(set(b) == PAYLOAD_KEYS for b in sent), sent[0]
    assert [(b["step"], b["weight"]) for b in sent[1:4]] == [(0, 10), (1, 30), (2, 60)]
    last = sent[-1]
    assert (last["routemap"], last["namespace"], last["candidate"]) == ("app", kube.namespace, "v2")
    assert (last["phase"], last["weight"], last["warning"], last["verdict"]) == ("Promoted", 100, False, None)
    assert last["message"] == "v2 is the primary"
    assert {c["method"] for c in received("/all")} == {"POST"}
    assert {c["headers"]["Content-Type"] for c in received("/all")} == {"application/json"}
    # The same transitions as the Events (which the state machine emitted alongside).
    reasons = wait_until(lambda: "RolloutPromoted" in (r := event_reasons(kube)) and r, what="the Events")
    assert {r for r in reasons if r.startswith(("Rollout", "Analysis"))} == set(TRANSITIONS)


def test_on_filters_and_go_and_jinja2_templates_render(harness: Harness, kube: Kube, receiver: str) -> None:
    create_version(kube, "v1")
    create_version(kube, "v2")
    hooks = [
        {
            "url": f"{receiver}/go",
            "on": ["RolloutPromoted"],
            "payloadTemplate": '{"text": "{{ .routemap }}: {{ .reason }} ({{ .candidate }} at {{ .weight }}%)"}',
        },
        {
            "url": f"{receiver}/jinja",
            "method": "put",
            "on": ["RolloutStarted", "RolloutPromoted"],
            "templateEngine": "jinja2",
            "payloadTemplate": '{"text": {{ (namespace ~ "/" ~ routemap ~ " " ~ reason | lower) | tojson }}}',
        },
        {
            "url": f"{receiver}/plain",
            "on": ["RolloutStep"],
            "payloadTemplate": "step {{ step }}: {{ message }}",
        },
    ]
    kube.create(rollout_routemap(CANARY, notify=hooks))
    harness.start(rollouts=True)
    wait_until(lambda: phase(kube) == "Promoted", timeout=30, what="the promotion")
    wait_until(lambda: len(received("/jinja")) == 2 and received("/go"), timeout=10, what="the notifications")
    assert bodies("/go") == [{"text": "app: RolloutPromoted (v2 at 100%)"}]
    ns = kube.namespace
    assert bodies("/jinja") == [{"text": f"{ns}/app rolloutstarted"}, {"text": f"{ns}/app rolloutpromoted"}]
    assert {c["method"] for c in received("/jinja")} == {"PUT"}
    plain = wait_until(lambda: len(received("/plain")) == 3 and received("/plain"), what="the steps")
    assert [c["body"] for c in plain] == [
        "step 0: step 0: v2 weight 10",
        "step 1: step 1: v2 weight 30",
        "step 2: step 2: v2 weight 60",
    ]
    assert plain[0]["headers"]["Content-Type"] == "text/plain; charset=utf-8"


def test_a_failing_or_hanging_receiver_does_not_delay_the_rollout_and_is_retried(
    harness: Harness, kube: Kube, receiver: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rollout_notify, "BACKOFF", 0.05)
    create_version(kube, "v1")
    create_version(kube, "v2")
    hooks = [
        {"url": f"{receiver}/fail", "retries": 2, "on": ["RolloutStarted"]},
        {"url": f"{receiver}/hang", "timeout": "1s", "retries": 1, "on": ["RolloutStarted", "RolloutStep"]},
    ]
    kube.create(rollout_routemap(CANARY, notify=hooks))
    started = time.monotonic()
    ctl = harness.start(rollouts=True)
    wait_until(lambda: phase(kube) == "Promoted", timeout=30, what="the promotion")
    took = time.monotonic() - started
    # Four transitions to a receiver that never answers in time, twice each at 1 s a call: sent on
    # the reconcile path, they would hold the promotion 8 s longer than the canary's own pace.
    assert took < 5, f"the rollout took {took:.1f} s"
    fails = wait_until(lambda: len(received("/fail")) == 3 and received("/fail"), what="the retries of /fail")
    assert {json.loads(c["body"])["reason"] for c in fails} == {"RolloutStarted"}
    hangs = wait_until(lambda: len(received("/hang")) >= 2 and received("/hang"), what="the retry of /hang")
    assert [json.loads(c["body"])["reason"] for c in hangs[:2]] == ["RolloutStarted"] * 2
    wait_until(
        lambda: 'iter8_controller_rollout_notifications_total{result="failed"} 2' in ctl.metrics.render(),
        what="both failures counted",
    )
    assert 'iter8_controller_rollout_notifications_total{result="sent"} 0' in ctl.metrics.render()
    # Still trying the rest: the controller stops it (the harness checks that no thread is left).


def test_secret_headers_reach_the_receiver_and_never_the_log(
    harness: Harness, kube: Kube, receiver: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="kubectl_iter8")
    token, path_token = "tok-7f3c9a1e55", "T00/B00/hushhush42"
    kube.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "hook-creds"},
            "data": {
                "auth": base64.b64encode(f"Bearer {token}".encode()).decode(),
                "url": base64.b64encode(f"{receiver}/fail/{path_token}".encode()).decode(),
            },
        }
    )
    create_version(kube, "v1")
    create_version(kube, "v2")
    ref = {"name": "hook-creds", "key": "auth"}
    hooks = [
        {"url": f"{receiver}/ok", "headers": {"X-Team": "checkout"}, "headersFrom": {"Authorization": ref}},
        # A URL from a Secret, answering 500: its failures are logged, its path is not.
        {
            "urlFrom": {"name": "hook-creds", "key": "url"},
            "headersFrom": {"Authorization": ref},
            "retries": 0,
        },
    ]
    kube.create(rollout_routemap([{"weight": 50}], notify=hooks))
    harness.start(rollouts=True)
    wait_until(lambda: phase(kube) == "Promoted", timeout=30, what="the promotion")
    wait_until(
        lambda: len(received("/ok")) == 4 and len(received(f"/fail/{path_token}")) == 4,
        timeout=10,
        what="the notifications",
    )
    for call in Receiver.calls:
        assert call["headers"]["Authorization"] == f"Bearer {token}"
    assert received("/ok")[0]["headers"]["X-Team"] == "checkout"
    wait_until(
        lambda: sum("failed after 1 attempt" in r.getMessage() for r in caplog.records) == 4, what="the logs"
    )
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "HTTP 500" in text
    assert f"POST http://127.0.0.1:{receiver.rsplit(':', 1)[1]}/***: HTTP 500" in text
    assert token not in text
    assert "hushhush42" not in text


def test_a_bad_notify_entry_is_refused_naming_the_field(harness: Harness, kube: Kube) -> None:
    create_version(kube, "v1")
    create_version(kube, "v2")
    kube.create(rollout_routemap([{"weight": 10}], notify=[{"url": "ftp://hooks.example.com"}]))
    harness.start(rollouts=True)
    events = wait_until(
        lambda: [e for e in kube.list("events", kube.namespace) if e["reason"] == "InvalidRouteMap"],
        what="the InvalidRouteMap Event",
    )
    message = events[0]["message"]
    assert "rollout.notify[0].url: string should match pattern" in message, message
    assert "\n" not in message
    assert phase(kube) is None, "nothing was rolled out"


# --- the policy field, parsed -------------------------------------------------------------------


def _parse(notify: list[Any]) -> None:
    parse_routemap(
        {
            "metadata": {"name": "app", "namespace": "d"},
            "data": rollout_routemap([{"weight": 1}], notify=notify)["data"],
        }
    )


@pytest.mark.parametrize(
    ("entry", "error"),
    [
        ({"url": "ftp://x"}, "rollout.notify[0].url: string should match pattern"),
        ({}, "rollout.notify[0]: give exactly one of url or urlFrom"),
        ({"url": "http://x", "urlFrom": {"name": "s", "key": "k"}}, "rollout.notify[0]: give exactly one of url or urlFrom"),
        ({"url": "http://x", "on": ["RolloutHeld"]}, "rollout.notify[0].on[0]: input should be 'RolloutStarted'"),
        ({"url": "http://x", "method": "GET"}, "rollout.notify[0].method: input should be 'POST', 'PUT' or 'PATCH'"),
        ({"url": "http://x", "timeout": "5m"}, "rollout.notify[0].timeout: give more than 0s and at most 60s"),
        ({"url": "http://x", "retries": 11}, "rollout.notify[0].retries: input should be less than or equal to 10"),
        ({"url": "http://x", "headers": {"a b": "c"}}, "rollout.notify[0].headers: 'a b' is not a header name"),
        ({"url": "http://x", "headers": {"X": "a\nb"}}, "rollout.notify[0].headers: header 'X': at most 4096 characters, on one line"),
        ({"url": "http://x", "headersFrom": {"A": {"name": "s", "key": "k", "namespace": "kube-system"}}},
         "rollout.notify[0].headersFrom.A.namespace: unknown field"),
        ({"url": "http://x", "payloadTemplate": "{{ .x | nope }}"},
         'rollout.notify[0].payloadTemplate: template: payloadTemplate:1: function "nope" not defined'),
        ({"url": "http://x", "payloadTemplate": "{{ range(10**9) }}", "templateEngine": "jinja2"},
         "rollout.notify[0].payloadTemplate: call is not allowed in a notify template"),
        ({"url": "http://x", "payloadTemplate": "{{ message * 100000 }}"},
         "rollout.notify[0].payloadTemplate: mul is not allowed in a notify template"),
        ({"url": "http://x", "payloadTemplate": "{{ message | center(1000000000) }}"},
         "rollout.notify[0].payloadTemplate: the filter 'center' is not allowed here"),
        ({"url": "http://x", "payloadTemplate": "{{ message | tojson(1000000) }}"},
         "rollout.notify[0].payloadTemplate: 'tojson' takes no arguments here"),
        ({"url": "http://x", "payloadTemplate": "{% for a in message %}{% for b in message %}{% endfor %}{% endfor %}"},
         "rollout.notify[0].payloadTemplate: only one level of for"),
        ({"url": "http://x", "payloadTemplate": "{% set x = message %}"},
         "rollout.notify[0].payloadTemplate: assign is not allowed"),
        ({"url": "http://x", "payloadTemplate": "x" * 8193}, "rollout.notify[0].payloadTemplate: string should have at most 8192 characters"),
    ],
)  # fmt: skip
def test_bad_notify_entries_are_refused_in_one_line_naming_the_field(
    entry: dict[str, Any], error: str
) -> None:
    with pytest.raises(UsageError) as caught:
        _parse([entry])
    assert error in str(caught.value)
    assert "\n" not in str(caught.value)


def test_at_most_ten_notify_entries() -> None:
    with pytest.raises(UsageError, match=r"rollout\.notify: list should have at most 10 items"):
        _parse([{"url": "http://x"}] * 11)


def test_an_unquoted_on_key_is_read_as_on_not_as_true() -> None:
    """YAML 1.1 reads ``on:`` as ``true``; the documented policies write it unquoted."""
    spec = """
versions:
- resources: [{gvrShort: svc, name: a}]
- resources: [{gvrShort: svc, name: b}]
routing: {router: istio, host: x}
rollout:
  steps: [{weight: 10}]
  webhooks:
  - {name: g, url: "http://gate.ops:8080/check", on: [pre-step]}
  notify:
  - urlFrom: {name: slack, key: url}
    on: [RolloutPromoted, RolloutRolledBack, RolloutAborted]
    payloadTemplate: '{"text": {{ (routemap ~ ": " ~ message) | tojson }}}'
"""
    policy = parse_routemap(
        {"metadata": {"name": "app", "namespace": "d"}, "data": {"strSpec": spec}}
    ).spec.rollout
    assert policy is not None
    assert policy.webhooks[0].on == ["pre-step"]
    hook = policy.notify[0]
    assert hook.on == ["RolloutPromoted", "RolloutRolledBack", "RolloutAborted"]
    assert json.loads(render(hook, {"routemap": "app", "message": "v2 is the primary"})) == {
        "text": "app: v2 is the primary"
    }


# --- the sender on its own --------------------------------------------------------------------


def _item(reason: str = "RolloutStep", url: str = "http://127.0.0.1:9/hook") -> Pending:
    state = RolloutState(phase="Progressing", step=1, weight=30, candidateName="v2")
    cm = {"metadata": {"name": "app", "namespace": "ns"}}
    return Pending(
        Notification(url=url, retries=0), "ns", rollout_notify.transition_payload(cm, reason, "m", state)
    )


def test_a_full_queue_drops_with_one_warning_line_and_counts(caplog: pytest.LogCaptureFixture) -> None:
    release = threading.Event()
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        release.wait(10)
        seen.append(json.loads(request.content)["reason"])
        return httpx.Response(204)

    metrics = Metrics()
    notifier = RolloutNotifier(
        None,  # type: ignore[arg-type]  # no Secrets here
        is_leader=lambda: True,
        metrics=metrics,
        transport=httpx.MockTransport(handler),
        capacity=2,
    )
    try:
        assert notifier.put(_item("RolloutStarted"))
        wait_until(
            lambda: notifier._queue.empty(), what="the sender to take the first"
        )  # now held in the handler
        assert notifier.put(_item("RolloutStep"))
        assert notifier.put(_item("RolloutPaused"))
        with caplog.at_level(logging.WARNING, logger="kubectl_iter8"):
            assert not notifier.put(_item("RolloutResumed"))
            assert not notifier.put(_item("RolloutAborted"))
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1, warnings
        assert "queue is full (2 waiting): dropping RolloutResumed of ns/app" in warnings[0]
        release.set()
        assert notifier.wait_idle(10)
        assert seen == ["RolloutStarted", "RolloutStep", "RolloutPaused"]
        text = metrics.render()
        assert 'iter8_controller_rollout_notifications_total{result="dropped"} 2' in text
        assert 'iter8_controller_rollout_notifications_total{result="sent"} 3' in text
        # Drained: the next drop warns again.
        assert notifier.put(_item("RolloutPromoted"))
    finally:
        release.set()
        notifier.stop()
    assert notifier._thread is None or not notifier._thread.is_alive()


def test_only_the_leader_sends_and_only_what_a_hook_wants() -> None:
    leader = False
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content)["reason"])
        return httpx.Response(200)

    notifier = RolloutNotifier(
        None,  # type: ignore[arg-type]  # no Secrets here
        is_leader=lambda: leader,
        transport=httpx.MockTransport(handler),
    )
    hooks = [Notification(url="http://hooks.example/x", on=["RolloutPromoted"])]
    cm = {"metadata": {"name": "app", "namespace": "ns"}}
    try:
        notifier.notify(hooks, cm, "RolloutPromoted", "m", RolloutState())
        leader = True
        notifier.notify(hooks, cm, "RolloutStep", "m", RolloutState())
        notifier.notify(hooks, cm, "RolloutPromoted", "m", RolloutState())
        assert notifier.wait_idle(10)
    finally:
        notifier.stop()
    assert seen == ["RolloutPromoted"]


def test_render_default_json_templates_and_the_output_cap() -> None:
    item = _item()
    assert json.loads(render(item.hook, item.payload))["weight"] == 30
    go = Notification(url="http://x", payloadTemplate="{{ toJson . }}")
    assert json.loads(render(go, item.payload)) == item.payload
    big = "{% for c in message %}" + "{{ notification | tojson }}" * 50 + "{% endfor %}"
    payload = dict(item.payload, message="m" * 1024)
    with pytest.raises(rollout_notify.NotifyError, match="the output is longer than 65536 characters"):
        render(Notification(url="http://x", payloadTemplate=big, templateEngine="jinja2"), payload)
    go_big = Notification(
        url="http://x", payloadTemplate="{{ range $i, $c := .message }}{{ toJson $ }}{{ end }}"
    )
    with pytest.raises(rollout_notify.NotifyError, match="payloadTemplate"):
        render(go_big, payload)
    hidden = Notification(url="http://x", payloadTemplate="{{ message.__class__ }}", templateEngine="jinja2")
    with pytest.raises(rollout_notify.NotifyError, match="payloadTemplate"):
        render(hidden, payload)
