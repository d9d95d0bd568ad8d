"""The A/B/n service in a controller (in-process): the example frontend (examples/abn/frontend.py),
an experiment on what it wrote, and what moves users between versions."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from controller_helpers import Harness, Kube, app_versions, create_version, routemap, wait_until
from kubectl_iter8.controller.manager import Controller
from kubectl_iter8.controller.status import read_status
from test_serve import free_port, http_get

from kubectl_iter8.sdk import Client

FRONTEND = Path(__file__).resolve().parents[2] / "examples" / "abn" / "frontend.py"


def backend(harness: Harness, kube: Kube, tmp_path: Path) -> Controller:
    """The routemap ``backend`` (v0 and v1, 50/50) and a controller serving A/B/n with SQLite."""
    create_version(kube, "v0")
    create_version(kube, "v1")
    kube.create(routemap("backend", app_versions("v0", "v1", weights=[50, 50])))
    return harness.start(abn_port=0, abn_store=f"sqlite:{tmp_path / 'abn.sqlite'}")


def http_backend(body: bytes) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def backends() -> Iterator[list[str]]:
    servers = [http_backend(b"version zero\n"), http_backend(b"version one\n")]
    yield [f"http://127.0.0.1:{s.server_address[1]}" for s in servers]
    for s in servers:
        s.shutdown()
        s.server_close()


def request(port: int, path: str, user: str | None, method: str = "GET") -> tuple[int, str, str | None]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    if user is not None:
        req.add_header("X-User", user)
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, response.read().decode(), response.headers.get("X-Version")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(), exc.headers.get("X-Version")
    except OSError:
        return 0, "", None  # not listening yet


def test_frontend_routes_users_stickily_and_records_sales(
    harness: Harness, kube: Kube, tmp_path: Path, backends: list[str]
) -> None:
    ctl = backend(harness, kube, tmp_path)
    assert ctl.abn is not None
    assert ctl.http is not None
    target = f"127.0.0.1:{ctl.abn.port}"
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(FRONTEND), "--abn", target, "--application", f"{kube.namespace}/backend",
         "--backend", backends[0], "--backend", backends[1], "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_until(lambda: request(port, "/", "probe")[0] == 200, what="the frontend")
        with Client(target, timeout=5) as abn:
            expected = {f"user-{i}": abn.lookup(f"{kube.namespace}/backend", f"user-{i}") for i in range(40)}
        assert set(expected.values()) == {0, 1}
        for user, version in expected.items():
            for _ in range(2):
                status, body, header = request(port, "/anything", user)
                assert (status, header) == (200, str(version))
                assert body == ("version zero\n" if version == 0 else "version one\n")
        assert request(port, "/", None)[0] == 400
        for index, user in enumerate(expected):
            assert request(port, f"/buy?amount={index}", user, "POST")[0] == 202
        assert request(port, "/buy?amount=lots", "user-1", "POST")[0] == 400
    finally:
        proc.terminate()
        proc.wait(10)
    status, body = http_get(ctl.http.port, f"/abnDashboard?namespace={kube.namespace}&application=backend")
    assert status == 200, body
    rows = {r["Version"]: r for r in json.loads(body)["sales"]["SummaryOverTransactions"]}
    for version in (0, 1):
        amounts = [i for i, v in enumerate(expected.values()) if v == version]
        assert rows[version]["Count"] == len(amounts)
        assert rows[version]["Mean"] == pytest.approx(sum(amounts) / len(amounts))


def test_an_experiment_compares_versions_on_what_the_frontend_wrote(
    cli, harness: Harness, kube: Kube, tmp_path: Path
) -> None:
    # SDK -> ABN service -> store -> /abnValues -> abnmetrics -> assess: the whole A/B/n path.
    ctl = backend(harness, kube, tmp_path)
    assert ctl.abn is not None
    assert ctl.http is not None
    with Client(f"127.0.0.1:{ctl.abn.port}", timeout=5) as abn:
        for i in range(400):
            user = f"shopper-{i}"
            version = abn.lookup(f"{kube.namespace}/backend", user)
            # Version 1 sells about 30% more per user; every third user buys nothing.
            if i % 3:
                abn.write_metric(
                    f"{kube.namespace}/backend", user, "sales", (10.0 + i % 7) * (1.3 if version else 1.0)
                )
    ctl.abn.served.service.flush_users()  # the users who bought nothing count as 0 (best effort, ~1 s)
    experiment = tmp_path / "experiment.yaml"
    experiment.write_text(
        (Path(__file__).resolve().parents[2] / "examples" / "abn-experiment.yaml").read_text()
    )
    run = str(tmp_path / "run")
    outcome = cli(
        "launch", "--local", "-f", str(experiment), "--run-dir", run,
        "--set", f"spec[0].with.endpoint=http://127.0.0.1:{ctl.http.port}",
        "--set", f"spec[0].with.application={kube.namespace}/backend",
    )  # fmt: skip
    assert outcome.code == 0, outcome.err
    report = json.loads(cli("report", "--local", "--run-dir", run, "-o", "json").out)
    counts = next(m for m in report["metrics"] if m["name"] == "abn/sales/count")["values"]
    assert sum(counts) == 400  # over users: every assigned user, buyers or not
    verdicts = {c["metric"]: c["verdict"] for c in report["comparisons"]["items"]}
    assert verdicts == {"abn/sales": "pass", "abn/sales/mean": "pass"}
    assert cli("assert", "--local", "--run-dir", run, "-c", "completed,nofailure,slos,noregression").code == 0


def test_only_the_seed_annotation_reshuffles_users(harness: Harness, kube: Kube, tmp_path: Path) -> None:
    ctl = backend(harness, kube, tmp_path)
    assert ctl.abn is not None
    users = [f"u{i}" for i in range(2000)]

    def assigned() -> list[int]:
        with Client(f"127.0.0.1:{ctl.abn.port}", timeout=5) as abn:  # type: ignore[union-attr]
            return [abn.lookup(f"{kube.namespace}/backend", u) for u in users]

    before = assigned()
    # A version's resources change (v1 is now just its Deployment): nobody moves.
    versions = app_versions("v0", "v1", weights=[50, 50])
    versions[1]["resources"] = [{"gvrShort": "deploy", "name": "v1"}]
    spec = routemap("backend", versions)["data"]["strSpec"]
    patched = kube.patch("configmaps", "backend", {"data": {"strSpec": spec}})
    wait_until(
        lambda: (
            read_status(kube.get("configmaps", "backend-iter8-status")).get("observedResourceVersion")
            == patched["metadata"]["resourceVersion"]
        ),
        what="the reconcile of the change",
    )
    assert assigned() == before
    # The user asks for a reshuffle: about half of the users move (two versions of equal weight).
    kube.patch("configmaps", "backend", {"metadata": {"annotations": {"iter8.tools/abn-seed": "round-2"}}})
    moved = wait_until(
        lambda: (n := sum(a != b for a, b in zip(assigned(), before, strict=True))) > 0 and n,
        what="a reshuffle",
    )
    assert 800 < moved < 1200, moved


def test_abnmetrics_sends_the_token_the_controller_wants(
    cli, harness: Harness, kube: Kube, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    create_version(kube, "v0")
    create_version(kube, "v1")
    kube.create(routemap("backend", app_versions("v0", "v1", weights=[50, 50])))
    ctl = harness.start(abn_port=0, abn_store=f"sqlite:{tmp_path / 'abn.sqlite'}", abn_token="t0ken")
    assert ctl.abn is not None
    assert ctl.http is not None
    with Client(f"127.0.0.1:{ctl.abn.port}", timeout=5, token="t0ken") as abn:
        for i in range(20):
            abn.lookup(f"{kube.namespace}/backend", f"u{i}")
            abn.write_metric(f"{kube.namespace}/backend", f"u{i}", "sales", float(i))
    task = {"application": f"{kube.namespace}/backend", "endpoint": f"http://127.0.0.1:{ctl.http.port}"}

    def launch(**inputs: object) -> tuple[object, dict]:
        path = tmp_path / "exp.yaml"
        path.write_text(json.dumps({"spec": [{"task": "abnmetrics", "with": {**task, **inputs}}]}))
        outcome = cli("launch", "--local", "-f", str(path), "--run-dir", str(tmp_path / "run"))
        return outcome, json.loads(
            cli("report", "--local", "--run-dir", str(tmp_path / "run"), "-o", "json").out
        )

    outcome, _ = launch()
    assert outcome.code != 0
    assert "HTTP 401: missing or wrong Authorization: Bearer token" in outcome.err
    monkeypatch.setenv("ABN_TOKEN", "t0ken")
    outcome, report = launch(tokenFrom={"env": "ABN_TOKEN"})
    assert outcome.code == 0, outcome.err
    counts = next(m for m in report["metrics"] if m["name"] == "abn/sales/count")["values"]
    assert sum(counts) == 20
    assert "t0ken" not in outcome.err + outcome.out
