"""Secrets stay secret: a provider's jq gets no environment, and a webhook's query token is sent but
never shown. End to end through ``launch --local`` against real HTTP servers on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jq  # type: ignore[import-not-found]
import pytest
import yaml
from kubectl_iter8.builtin_tasks.custom_metrics.task import sandboxed_jq
from prom_fixtures import Reply, Request, Server

TOKEN = "ghp_s3cretTOKENvalue"


@pytest.fixture(autouse=True)
def _test_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ITER8_PLUGINS", "iter8_test_plugin")


@pytest.fixture
def source() -> Iterator[Server]:
    with Server(lambda request: Reply(200, {"n": 7, "s": "hello-from-response"})) as server:
        yield server


def launch(cli, tmp_path: Path, spec: list[dict[str, Any]]):
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump({"metadata": {"name": "sec"}, "spec": spec}))
    run = tmp_path / "run"
    outcome = cli("launch", "--local", "-f", str(path), "--run-dir", str(run))
    stored = run / "experiment.yaml"
    doc = yaml.safe_load(stored.read_text()) if stored.exists() else {}
    return outcome, doc.get("result", {})


def provider(tmp_path: Path, url: str, expressions: dict[str, str]) -> str:
    metrics = [{"name": name, "type": "gauge", "jqExpression": expr} for name, expr in expressions.items()]
    path = tmp_path / "provider.yaml"
    path.write_text(yaml.safe_dump({"url": url, "method": "GET", "metrics": metrics}))
    return str(path)


def test_jq_expressions_cannot_read_the_environment(
    cli, tmp_path: Path, source: Server, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    expressions = {
        "env": "env.GITHUB_TOKEN",
        "dollar-env": "$ENV.GITHUB_TOKEN",
        "interpolated": '"\\(env)\\($ENV)"',
        "input": "[inputs] | length",
        "import": 'import "x" as $x; .n',
        "string": ".s",
        "object": "{a: .s}",
        "ok": ".n # a comment",
    }
    url = f"{source.url}/stats?key=k1"
    spec = [{"task": "custom-metrics", "with": {"templates": {"p": provider(tmp_path, url, expressions)}}}]
    outcome, result = launch(cli, tmp_path, spec)
    assert outcome.code == 0, outcome.err
    assert result["insights"]["nonHistMetricValues"][0] == {"p/ok": [7.0], "p/input": [0.0]}
    # httpx would drop the URL's own query when given params; it must reach the source.
    assert {(r.path, r.query["key"][0]) for r in source.requests} == {("/stats", "k1")}
    reasons = {m["metric"]: m["reason"] for m in result["tasks"][0]["details"]["missing"]}
    assert reasons["p/env"] == "jqExpression 'env.GITHUB_TOKEN' gave null, not a number"
    assert reasons["p/dollar-env"] == "jqExpression '$ENV.GITHUB_TOKEN' gave null, not a number"
    assert reasons["p/interpolated"].endswith("gave a string, not a number")
    assert reasons["p/string"] == "jqExpression '.s' gave a string, not a number"
    assert reasons["p/object"] == "jqExpression '{a: .s}' gave an object, not a number"
    assert "does not compile: jq: error: syntax error, unexpected import" in reasons["p/import"]
    assert "line 1, column 1:" in reasons["p/import"]
    run = tmp_path / "run"
    texts = [
        outcome.out,
        outcome.err,
        caplog.text,
        (run / "experiment.yaml").read_text(),
        cli("report", "--local", "--run-dir", str(run), "-o", "json").out,
    ]
    assert all(TOKEN not in text and "hello-from-response" not in text for text in texts)


def test_the_jq_sandbox_keeps_ordinary_programs_working(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    doc = {"data": {"result": [{"value": [1, "2.5"]}]}, "xs": [1, 2, 3]}
    cases = {
        ".data.result[0].value[1] | tonumber": [2.5],
        "def twice: . * 2; [.xs[] | twice] | add": [12],
        "reduce .xs[] as $x (0; . + $x), (.xs | length)": [6, 3],
        ".env // 1": [1],
        "[env, $ENV, input_filename, get_search_list]": [[{}, {}, None, []]],
    }
    for expression, expected in cases.items():
        assert jq.compile(sandboxed_jq(expression)).input_value(doc).all() == expected, expression


class Receiver(Server):
    def __init__(self) -> None:
        super().__init__(self._answer)
        self.status = 200

    def _answer(self, request: Request) -> Reply:
        return Reply(self.status, {"ok": True})


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as server:
        yield server


@pytest.mark.parametrize("secret_url", [False, True])
def test_a_webhook_url_keeps_its_query_token_which_is_never_shown(
    cli,
    tmp_path: Path,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    secret_url: bool,
) -> None:
    url = f"{receiver.url}/hook?access_token={TOKEN}&team=a%20b"
    monkeypatch.setenv("HOOK_URL", url)
    where: dict[str, Any] = {"urlFrom": {"env": "HOOK_URL"}} if secret_url else {"url": url}
    for status in (200, 404):
        receiver.status = status
        notify = {"task": "notify", "with": {**where, "params": {"n": 1}, "payloadTemplate": "{}"}}
        outcome, result = launch(cli, tmp_path, [notify])
        assert outcome.code == (0 if status == 200 else 1), outcome.err
        request = receiver.requests[-1]
        assert request.query == {"access_token": [TOKEN], "team": ["a b"], "n": ["1"]}
        assert request.path == "/hook"
        stored = (tmp_path / "run" / "experiment.yaml").read_text()
        if secret_url:
            shown = [outcome.out, outcome.err, caplog.text, stored]
        else:
            # The experiment's own copy of its inputs holds a plain url; the log lines and results must not.
            shown = [outcome.out, outcome.err, caplog.text, json.dumps(result["tasks"][0]["details"])]
            shown.append(result.get("failureMessage", ""))
        assert all(TOKEN not in text for text in shown)
