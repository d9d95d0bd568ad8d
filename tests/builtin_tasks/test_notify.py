"""``notify``, ``slack`` and ``github`` end to end: ``launch --local`` against a real HTTP receiver
on 127.0.0.1 that records what it gets (payload, headers, retries) and answers as told."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prom_fixtures import Reply, Request, Server

RECORD = {"task": "record-metrics", "with": {"versions": 2, "values": {"app/latency": [20, 45]}}}
ASSESS = {"task": "assess", "with": {"SLOs": {"upper": [{"metric": "app/latency", "limit": 30}]}}}


@pytest.fixture(autouse=True)
def _test_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ITER8_PLUGINS", "iter8_test_plugin")


class Receiver(Server):
    """Answers with the statuses in ``script`` in turn (then 200), recording every request."""

    def __init__(self) -> None:
        self.script: list[Reply] = []
        super().__init__(self._answer)

    def _answer(self, request: Request) -> Reply:
        return self.script.pop(0) if self.script else Reply(200, {"ok": True})

    def payloads(self) -> list[Any]:
        return [json.loads(r.body) for r in self.requests]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as server:
        yield server


def launch(cli, tmp_path: Path, spec: list[dict[str, Any]], name: str = "checkout"):
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump({"metadata": {"name": name}, "spec": spec}))
    outcome = cli("launch", "--local", "-f", str(path), "--run-dir", str(tmp_path / "run"))
    stored = tmp_path / "run" / "experiment.yaml"
    doc = yaml.safe_load(stored.read_text()) if stored.exists() else {}
    return outcome, doc.get("result", {})


PAYLOAD = (
    '{"experiment": {{ summary.name | tojson }}, "status": {{ summary.status | tojson }},'
    ' "slos": {{ summary.slosSatisfied | tojson }}, "versions": {{ summary.versions | tojson }},'
    ' "latency": {{ (report.metrics | selectattr("name", "equalto", "app/latency") | first)["values"] | tojson }},'
    ' "iter8": {{ Summary.noTaskFailures | tojson }}}'
)


def test_webhook_with_payload_template_headers_params_and_bearer_token(
    cli, tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("HOOK_TOKEN", "tok-123-secret")
    notify = {
        "task": "notify",
        "with": {
            "url": f"{receiver.url}/hook",
            "params": {"source": "iter8", "n": 1},
            "headers": {"X-Team": "checkout"},
            "payloadTemplate": PAYLOAD,
            "auth": {"bearerToken": {"env": "HOOK_TOKEN"}},
        },
    }
    outcome, result = launch(cli, tmp_path, [RECORD, ASSESS, notify])
    assert outcome.code == 0, outcome.err
    [request] = receiver.requests
    assert (request.method, request.path) == ("POST", "/hook")
    assert request.query == {"source": ["iter8"], "n": ["1"]}
    assert request.headers["x-team"] == "checkout"
    assert request.headers["authorization"] == "Bearer tok-123-secret"
    assert request.headers["content-type"] == "application/json"
    assert receiver.payloads() == [
        {
            "experiment": "checkout",
            "status": "running",
            "slos": False,
            "versions": ["version 0", "version 1"],
            "latency": [20.0, 45.0],
            "iter8": True,
        }
    ]
    details = result["tasks"][2]["details"]["notification"]
    assert details == {"method": "POST", "url": f"{receiver.url}/hook", "attempts": 1, "status": 200}
    stored = (tmp_path / "run" / "experiment.yaml").read_text()
    assert all("tok-123" not in text for text in (outcome.out, outcome.err, caplog.text, stored))


def test_no_payload_means_get(cli, tmp_path: Path, receiver: Receiver) -> None:
    outcome, _ = launch(cli, tmp_path, [{"task": "notify", "with": {"url": f"{receiver.url}/ping"}}])
    assert outcome.code == 0, outcome.err
    assert [(r.method, r.path, r.body) for r in receiver.requests] == [("GET", "/ping", b"")]


def test_retries_with_back_off_until_the_receiver_answers(cli, tmp_path: Path, receiver: Receiver) -> None:
    receiver.script = [Reply(503), Reply(429, headers={"Retry-After": "0"})]
    notify = {
        "task": "notify",
        "with": {"url": receiver.url, "retries": 3, "backoff": "50ms", "payloadTemplate": "hi"},
    }
    outcome, result = launch(cli, tmp_path, [notify])
    assert outcome.code == 0, outcome.err
    assert len(receiver.requests) == 3
    assert receiver.requests[0].headers["content-type"] == "text/plain; charset=utf-8"
    assert result["tasks"][0]["details"]["notification"]["attempts"] == 3


def test_failure_fails_the_experiment_unless_soft(
    cli, tmp_path: Path, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.script = [Reply(500), Reply(500)]
    notify = {"task": "notify", "with": {"url": f"{receiver.url}/x", "retries": 1, "backoff": 0}}
    outcome, result = launch(cli, tmp_path, [notify, {"run": "echo after"}])
    assert outcome.code == 1
    assert result["failureMessage"] == (
        f"spec[0] (notify): notification failed after 2 attempt(s): GET {receiver.url}/x: HTTP 500"
    )
    # A client error is not retried; with softFailure the run goes on.
    receiver.requests.clear()
    receiver.script = [Reply(404)]
    notify["with"].update(softFailure=True, retries=3)
    outcome, result = launch(cli, tmp_path, [notify, {"run": "echo after"}])
    assert outcome.code == 0, outcome.err
    assert len(receiver.requests) == 1
    assert result["tasks"][0]["details"]["notification"] == {
        "method": "GET",
        "url": f"{receiver.url}/x",
        "attempts": 1,
        "status": 404,
        "error": f"GET {receiver.url}/x: HTTP 404",
        "softFailure": True,
    }
    assert "notification failed after 1 attempt(s)" in caplog.text
    assert result["tasks"][1]["status"] == "completed"


def test_timeouts_and_unreachable_receivers(cli, tmp_path: Path, receiver: Receiver) -> None:
    receiver.script = [Reply(200, delay=1.0)]
    notify = {"task": "notify", "with": {"url": receiver.url, "timeout": "200ms", "retries": 0}}
    outcome, result = launch(cli, tmp_path, [notify])
    assert outcome.code == 1
    assert result["failureMessage"].startswith(
        f"spec[0] (notify): notification failed after 1 attempt(s): GET {receiver.url} failed: "
    )


def test_slack_preset_from_chart_values_with_a_secret_url(
    cli, tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("SLACK_WEBHOOK", f"{receiver.url}/services/T000/B000/XXXXsecret")
    values = tmp_path / "values.yaml"
    values.write_text(
        yaml.safe_dump(
            {
                "tasks": ["record-metrics", "slack"],
                "metadata": {"name": "shop"},
                "record-metrics": {"values": {"app/x": [1]}},
                "slack": {"urlFrom": {"env": "SLACK_WEBHOOK"}},
            }
        )
    )
    outcome = cli("launch", "--local", "-f", str(values), "--run-dir", str(tmp_path / "run"))
    assert outcome.code == 0, outcome.err
    [request] = receiver.requests
    assert request.path == "/services/T000/B000/XXXXsecret"
    assert receiver.payloads() == [
        {"text": "Iter8 experiment shop: running; 1 tasks completed; SLOs satisfied"}
    ]
    # A failing Slack call is soft by default, and the secret URL's path is never shown.
    receiver.script = [Reply(404)]
    outcome = cli("launch", "--local", "-f", str(values), "--run-dir", str(tmp_path / "run"))
    assert outcome.code == 0, outcome.err
    assert f"POST {receiver.url.split('//')[0]}//127.0.0.1:{receiver.port}/***: HTTP 404" in caplog.text
    stored = (tmp_path / "run" / "experiment.yaml").read_text()
    assert all("XXXXsecret" not in text for text in (outcome.out, outcome.err, caplog.text, stored))


def test_github_preset_sends_a_repository_dispatch_and_hides_the_token(
    cli, tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("GH_TOKEN", "ghp_verysecret")
    github = {
        "task": "github",
        "with": {
            "owner": "acme",
            "repo": "shop",
            "token": {"env": "GH_TOKEN"},
            "apiURL": receiver.url,
            "softFailure": False,
        },
    }
    outcome, _ = launch(cli, tmp_path, [RECORD, ASSESS, github])
    assert outcome.code == 0, outcome.err
    [request] = receiver.requests
    assert (request.method, request.path) == ("POST", "/repos/acme/shop/dispatches")
    assert request.headers["authorization"] == "token ghp_verysecret"
    assert request.headers["accept"] == "application/vnd.github+json"
    [payload] = receiver.payloads()
    assert payload["event_type"] == "iter8"
    assert payload["client_payload"]["name"] == "checkout"
    assert payload["client_payload"]["slosSatisfied"] is False
    assert payload["client_payload"]["numCompletedTasks"] == 2
    receiver.script = [Reply(401, {"message": "Bad credentials: ghp_verysecret"})]
    outcome, result = launch(cli, tmp_path, [RECORD, github])
    assert outcome.code == 1
    assert result["failureMessage"] == (
        f"spec[1] (github): notification failed after 1 attempt(s): POST {receiver.url}/repos/acme/shop/dispatches: HTTP 401"
    )
    stored = (tmp_path / "run" / "experiment.yaml").read_text()
    assert all("ghp_verysecret" not in text for text in (outcome.out, outcome.err, caplog.text, stored))


def test_payload_templates_are_sandboxed(cli, tmp_path: Path, receiver: Receiver) -> None:
    notify = {
        "task": "notify",
        "with": {"url": receiver.url, "payloadTemplate": "{{ summary.__class__.__mro__ }}"},
    }
    outcome, result = launch(cli, tmp_path, [notify])
    assert outcome.code == 1
    assert result["failureMessage"] == (
        "spec[0] (notify): payload template: access to attribute '__class__' of 'dict' object is unsafe."
    )
    assert receiver.requests == []


def test_payload_template_from_a_file(cli, tmp_path: Path, receiver: Receiver) -> None:
    (tmp_path / "payload.j2").write_text('{"done": {{ summary.numCompletedTasks }}}')
    notify = {
        "task": "notify",
        "with": {"url": receiver.url, "payloadTemplateFile": str(tmp_path / "payload.j2")},
    }
    outcome, _ = launch(cli, tmp_path, [RECORD, notify])
    assert outcome.code == 0, outcome.err
    assert receiver.payloads() == [{"done": 1}]


@pytest.mark.parametrize(
    ("task", "inputs", "message"),
    [
        (
            "notify",
            {},
            "spec[0] (notify): give exactly one of 'url' or 'urlFrom' (a secret URL from {env} or {secret})",
        ),
        (
            "notify",
            {"url": "ftp://x"},
            "spec[0] (notify): url: string should match pattern '^https?://' (got 'ftp://x')",
        ),
        (
            "notify",
            {"url": "http://x", "retries": -1},
            "spec[0] (notify): retries: input should be greater than or equal to 0 (got -1)",
        ),
        (
            "notify",
            {"url": "http://x", "payloadTemplate": "a", "payloadTemplateFile": "b"},
            "spec[0] (notify): give at most one of payloadTemplate, payloadTemplateFile and payloadTemplateURL",
        ),
        (
            "notify",
            {"url": "http://x", "method": "DELETE"},
            "spec[0] (notify): method: input should be 'GET', 'POST', 'PUT' or 'PATCH' (got 'DELETE')",
        ),
        ("github", {"owner": "a", "repo": "b"}, "spec[0] (github): token: required field is missing"),
        (
            "slack",
            {"url": "http://x", "timeout": "never"},
            "spec[0] (slack): timeout: 'never' is not a duration (use e.g. 30s, 1m30s, 250ms)",
        ),
    ],
)
def test_bad_inputs_are_one_line_errors(cli, tmp_path: Path, task: str, inputs, message: str) -> None:
    outcome, _ = launch(cli, tmp_path, [{"task": task, "with": inputs}])
    assert outcome.code == 2
    assert f"error: {message}" in outcome.err.splitlines()
