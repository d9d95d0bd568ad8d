"""A load test that promises N requests sends N: counted by the server, through ``launch --local``.

The ``http`` task once sent one unrecorded request on every connection before the measured run
(``numRequests: 137`` over 16 connections reached the server as 153 requests). These tests count
what the server on 127.0.0.1 received, for both tasks, both load models, several worker processes
and fewer requests than connections.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc_fixtures
import pytest
import yaml
from grpc_fixtures import Server

from kubectl_iter8.sample_app import SampleApp, running


@pytest.fixture
def app() -> Iterator[SampleApp]:
    with running() as server:
        yield server


@pytest.fixture(scope="module")
def grpc_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    stubs = grpc_fixtures.compile_stubs(tmp_path_factory.mktemp("stubs"))
    log = tmp_path_factory.mktemp("log") / "requests.jsonl"
    with grpc_fixtures.running(stubs, reflection=True, log=log) as server:
        yield server


def launch(cli, tmp_path: Path, task: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """Run one task that must succeed; the experiment's result."""
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump({"spec": [{"task": task, "with": inputs}]}))
    outcome = cli("launch", "--local", "-f", str(path), "--run-dir", str(tmp_path / "run"))
    assert outcome.code == 0, outcome.err
    result: dict[str, Any] = yaml.safe_load((tmp_path / "run" / "experiment.yaml").read_text())["result"]
    return result


def measured(
    cli, tmp_path: Path, task: str, inputs: dict[str, Any]
) -> tuple[dict[str, float], dict[str, Any]]:
    """Run one task; its metrics and its record of the (only) endpoint."""
    result = launch(cli, tmp_path, task, inputs)
    metrics = {k: v[-1] for k, v in result["insights"]["nonHistMetricValues"][0].items()}
    return metrics, result["tasks"][0]["details"]["endpoints"][task]


@pytest.mark.parametrize(
    ("num_requests", "connections", "qps", "workers"),
    [
        (137, 16, 0, 1),  # the case the review found: 153 requests reached the server
        (137, 16, 2000, 1),
        (137, 16, 0, 2),
        (101, 4, 1000, 2),
        (3, 8, 0, 1),  # fewer requests than connections: still 3, not one per connection
        (3, 8, 0, 2),
    ],
)
def test_http_sends_exactly_num_requests(
    cli, tmp_path: Path, app: SampleApp, num_requests: int, connections: int, qps: float, workers: int
) -> None:
    inputs = {"url": f"{app.url}/get", "numRequests": num_requests, "connections": connections,
              "qps": qps, "workers": workers}  # fmt: skip
    metrics, record = measured(cli, tmp_path, "http", inputs)
    assert app.requests == num_requests
    assert metrics["http/request-count"] == num_requests
    assert record["statusCodes"] == {"200": num_requests}


def test_http_warmup_sends_exactly_num_requests_too(cli, tmp_path: Path, app: SampleApp) -> None:
    inputs = {"url": f"{app.url}/get", "numRequests": 9, "connections": 4, "qps": 0, "warmup": True}
    details = launch(cli, tmp_path, "http", inputs)["tasks"][0]["details"]
    assert details["warmup"] is True  # reported as a warm-up: run, but no metrics kept
    assert details["endpoints"]["http"]["requests"] == app.requests == 9


@pytest.mark.parametrize(
    ("total", "concurrency", "connections", "qps"),
    [(137, 16, 4, 0), (137, 16, 16, 2000), (3, 8, 8, 0)],
)
def test_grpc_sends_exactly_total(
    cli, tmp_path: Path, grpc_server: Server, total: int, concurrency: int, connections: int, qps: float
) -> None:
    grpc_server.clear()
    inputs = {"host": grpc_server.host, "call": "iter8.test.Echo/Unary", "data": {"name": "x"},
              "total": total, "concurrency": concurrency, "connections": connections, "qps": qps}  # fmt: skip
    metrics, record = measured(cli, tmp_path, "grpc", inputs)
    # Every call the server saw, of any method: reflection is not logged, load calls are.
    assert len(grpc_server.requests()) == total
    assert metrics["grpc/request-count"] == total
    assert record["statusCodes"] == {"OK": total}
