"""The HTTP tasks (``custom-metrics``, ``abnmetrics``, ``notify``) run their own code against an
``httpx.MockTransport`` set on the task context: only the network is replaced, so the paths a real
server rarely takes (timeouts, refused connections, redirects) are checked in milliseconds."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubectl_iter8.builtin_tasks.abn_metrics import AbnMetricsTask
from kubectl_iter8.builtin_tasks.custom_metrics.task import CustomMetricsTask
from kubectl_iter8.builtin_tasks.notify import NotifyTask

from kubectl_iter8 import Task, TaskContext, TaskError
from kubectl_iter8.result import Result, TaskRecord

Handler = Callable[[httpx.Request], httpx.Response]


class Network:
    """A mock transport that records every request and answers through ``handler``."""

    def __init__(self, handler: Handler) -> None:
        self.requests: list[httpx.Request] = []

        def record(request: httpx.Request) -> httpx.Response:
            self.requests.append(request)
            return handler(request)

        self.transport = httpx.MockTransport(record)


def run(task_class: type[Task[Any]], inputs: dict[str, Any], network: Network, tmp_path: Path) -> TaskContext:
    """Run the task as the runner does, with its record's details and a fresh result."""
    result = Result.model_validate({"startTime": dt.datetime.now(dt.UTC), "numLoops": 1})
    record = TaskRecord(task=task_class.name, status="running", startTime=dt.datetime.now(dt.UTC))
    result.tasks.append(record)
    ctx = TaskContext(
        result=result,
        details=record.details,
        work_dir=tmp_path,
        metadata={"name": "mocked", "namespace": "default"},
        http_transport=network.transport,
    )
    asyncio.run(task_class(task_class.Inputs.model_validate(inputs)).run(ctx))
    return ctx


# --- custom-metrics -------------------------------------------------------------------------------

PROVIDER = """\
url: https://metrics.test/stats
method: POST
metrics:
- name: p95
  type: gauge
  body: '{"version": "{{ versionValues.name }}"}'
  jqExpression: .p95
"""


def test_custom_metrics_fetches_the_template_through_a_redirect_and_a_metric_per_version(
    tmp_path: Path,
) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/old/provider.yaml":
            return httpx.Response(302, headers={"Location": "https://metrics.test/provider.yaml"})
        if request.url.path == "/provider.yaml":
            return httpx.Response(200, text=PROVIDER)
        version = json.loads(request.content)["version"]
        return httpx.Response(200, json={"p95": {"v1": 41.5, "v2": 39.25}[version]})

    network = Network(answer)
    inputs = {
        "templates": {"shop": "https://metrics.test/old/provider.yaml"},
        "versionValues": [{"name": "v1"}, {"name": "v2"}],
    }
    ctx = run(CustomMetricsTask, inputs, network, tmp_path)
    assert [v["shop/p95"] for v in ctx.insights.non_hist_metric_values] == [[41.5], [39.25]]
    assert ctx.details["fetched"] == 2
    stats = [r for r in network.requests if r.url.path == "/stats"]
    assert [(r.method, r.headers["content-type"]) for r in stats] == [
        ("POST", "application/json;charset=utf-8")
    ] * 2


def test_custom_metrics_records_a_refused_connection_as_missing(tmp_path: Path) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/provider.yaml":
            return httpx.Response(200, text=PROVIDER)
        raise httpx.ConnectError("connection refused", request=request)

    ctx = run(
        CustomMetricsTask,
        {"templates": {"shop": "https://metrics.test/provider.yaml"}, "versionValues": [{"name": "v1"}]},
        Network(answer),
        tmp_path,
    )
    assert ctx.details["missing"] == [
        {
            "metric": "shop/p95",
            "version": 0,
            "reason": "request to https://metrics.test/stats failed: connection refused",
        }
    ]


def test_custom_metrics_fails_when_the_template_cannot_be_fetched(tmp_path: Path) -> None:
    network = Network(lambda request: httpx.Response(404))
    with pytest.raises(
        TaskError, match=r"^templates.shop: cannot fetch https://metrics.test/p.yaml: HTTP 404$"
    ):
        run(CustomMetricsTask, {"templates": {"shop": "https://metrics.test/p.yaml?t=1"}}, network, tmp_path)


# --- abnmetrics -----------------------------------------------------------------------------------


def test_abn_metrics_asks_for_the_application_with_the_token_and_records_the_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ABN_TOKEN", "abn-secret")
    values = {"0": {"users": [1.0, 3.0]}, "1": {"users": [2.0]}}
    network = Network(lambda request: httpx.Response(200, json={"metrics": {"sales": values}}))
    ctx = run(
        AbnMetricsTask,
        {"application": "shop/front", "endpoint": "http://ctl.test:8080", "tokenFrom": {"env": "ABN_TOKEN"}},
        network,
        tmp_path,
    )
    [request] = network.requests
    assert str(request.url) == "http://ctl.test:8080/abnValues?namespace=shop&application=front"
    assert request.headers["authorization"] == "Bearer abn-secret"
    assert ctx.insights.non_hist_metric_values[0]["abn/sales"] == [1.0, 3.0]
    assert ctx.details["observations"] == {"abn/sales": [2, 1]}


def test_abn_metrics_fails_with_one_line_when_the_controller_does_not_answer(tmp_path: Path) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    inputs = {"application": "front", "endpoint": "http://ctl.test:8080"}
    with pytest.raises(TaskError) as info:
        run(AbnMetricsTask, inputs, Network(answer), tmp_path)
    where = "http://ctl.test:8080/abnValues (application default/front)"
    assert str(info.value) == f"{where}: no answer within 10s"


# --- notify ---------------------------------------------------------------------------------------


def test_notify_renders_a_template_fetched_by_url_and_posts_it(tmp_path: Path) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.host == "templates.test":
            return httpx.Response(200, text='{"experiment": {{ summary.name | tojson }}}')
        return httpx.Response(204)

    network = Network(answer)
    inputs = {
        "url": "https://hooks.test/hook?token=t0k3n",
        "payloadTemplateURL": "https://templates.test/p.j2",
    }
    ctx = run(NotifyTask, inputs, network, tmp_path)
    _, hook = network.requests
    assert (hook.method, str(hook.url)) == ("POST", "https://hooks.test/hook?token=t0k3n")
    assert json.loads(hook.content) == {"experiment": "mocked"}
    assert hook.headers["content-type"] == "application/json"
    assert ctx.details["notification"] == {
        "method": "POST",
        "url": "https://hooks.test/hook",
        "attempts": 1,
        "status": 204,
    }


def test_notify_retries_a_503_then_fails_naming_the_webhook(tmp_path: Path) -> None:
    network = Network(lambda request: httpx.Response(503))
    with pytest.raises(TaskError) as info:
        run(NotifyTask, {"url": "https://hooks.test/hook", "retries": 1, "backoff": 0}, network, tmp_path)
    assert str(info.value) == "notification failed after 2 attempt(s): GET https://hooks.test/hook: HTTP 503"
    assert len(network.requests) == 2
