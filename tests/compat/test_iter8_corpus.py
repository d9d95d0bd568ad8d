"""The Iter8 corpus test (issue 14): Iter8's chart-values combinations, as its tutorials, user guides
and CI launched them (``iter8_corpus.yaml``, each case with its source), built here and compared
with what Iter8 produced, then run.

For every case:

* **the experiment**: what Iter8's own chart renders for the values (``corpus.iter8_experiment``) is
  what Iter8 produced; ``launch --local --dry-run`` with the same ``--set`` arguments must give the
  same tasks in the same order with the same inputs under Iter8's field names and the same SLOs,
  but for the differences the case records (each a rule in ``corpus.RULES`` with its reason in the
  corpus, each of which must change something for the case);
* **Iter8's file**: the rendered ``experiment.yaml`` itself, unmodified, is accepted by ``launch``
  (or, where the corpus says this project refuses it today, the refusal is expected strictly);
* **the run**: the case runs here against real servers on 127.0.0.1 (the sample app, the test gRPC
  server, a file server, a webhook receiver, Prometheus and A/B/n stand-ins); the result holds
  Iter8's metric names and ``result`` fields, ``assert -c completed -c nofailure -c slos`` passes,
  and ``report`` prints a value for each metric;
* **in a cluster**: the cases marked ``cluster`` also run with ``launch -g`` on the fake API server
  and on the real control plane (the node stand-in runs the Job as a local process with the
  ServiceAccount ``launch`` made).

The other half of the corpus, Iter8's ``release`` chart's routemaps reconciled on both tiers and
compared with the VirtualService/HTTPRoute objects Iter8's controller writes, is
``tests/controller/test_iter8_routemaps.py``.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc_fixtures
import pytest
import yaml
from cluster.conftest import DEPLOYMENT
from prom_fixtures import Reply, Request, Server

from kubectl_iter8.sample_app import running
from kubectl_iter8.values import parse_into

from .corpus import (
    FILES,
    RULES,
    TUTORIAL_HOSTS,
    canonical,
    cases,
    expected_spec,
    iter8_experiment,
    set_args,
)

CASES = cases()


def params(selected: list[dict[str, Any]]) -> list[Any]:
    return [pytest.param(case, id=case["id"]) for case in selected]


# --- the experiment: what Iter8's chart renders --------------------------------------------------


@pytest.mark.parametrize("case", params(CASES))
def test_the_experiment_is_the_one_iter8s_chart_renders(cli, case: dict[str, Any]) -> None:
    iter8 = iter8_experiment(case)
    outcome = cli("launch", "--local", "--dry-run", *set_args(case["set"], TUTORIAL_HOSTS))
    assert outcome.code == 0, outcome.err
    ours = yaml.safe_load(outcome.out)["spec"]
    expected = expected_spec(case, iter8["spec"])
    assert [e.get("task", "run") for e in canonical(ours)] == [e.get("task", "run") for e in expected]
    assert canonical(ours) == expected
    for name in case["differences"]:
        assert canonical(RULES[name](iter8["spec"])) != canonical(iter8["spec"]), (
            f"{case['id']}: the difference {name} is recorded but changes nothing"
        )


def test_every_difference_has_its_reason_and_is_used() -> None:
    reasons = yaml.safe_load(Path(__file__).with_name("iter8_corpus.yaml").read_text())["differences"]
    assert set(reasons) == set(RULES)
    assert all(len(reason) > 40 for reason in reasons.values())
    used = {name for case in CASES for name in case["differences"]}
    assert used == set(RULES)
    assert len({case["id"] for case in CASES}) == len(CASES)
    for case in CASES:
        assert re.fullmatch(r"iter8-tools/(docs|iter8)@v\d+\.\d+\.\d+ \S.*", case["source"]), case["id"]


# --- Iter8's own experiment.yaml ------------------------------------------------------------------


def file_params() -> list[Any]:
    out = []
    for case in CASES:
        verdict = case.get("iter8_file", {"accepted": True})
        marks = [] if verdict["accepted"] else [pytest.mark.xfail(strict=True, reason=verdict["why"])]
        out.append(pytest.param(case, id=case["id"], marks=marks))
    return out


@pytest.mark.parametrize("case", file_params())
def test_iter8s_rendered_experiment_file_is_accepted_unmodified(
    cli, tmp_path: Path, case: dict[str, Any]
) -> None:
    experiment = tmp_path / "experiment.yaml"
    experiment.write_text(yaml.safe_dump(iter8_experiment(case)))
    outcome = cli("launch", "--local", "--dry-run", "-f", str(experiment))
    assert outcome.code == 0, outcome.err


# --- the runs ---------------------------------------------------------------------------------------


def _prometheus(request: Request) -> Reply:
    """Istio's Prometheus, as the istio-prom template queries it: no errors, 10 of everything else."""
    query = request.query.get("query", [""])[0]
    value = "0" if "response_code" in query else "10"
    result = [{"metric": {}, "value": [1700000000, value]}]
    return Reply(200, {"status": "success", "data": {"resultType": "vector", "result": result}})


def _abn(request: Request) -> Reply:
    """The controller's ``/abnValues``: one metric written for two versions."""
    values = {"0": {"users": [1.0, 2.0, 3.0], "transactions": [1.0, 2.0, 3.0]},
              "1": {"users": [2.0, 4.0], "transactions": [2.0, 4.0]}}  # fmt: skip
    return Reply(200, {"metrics": {"sample_metric": values}})


def _files(request: Request) -> Reply:
    path = FILES / request.path.lstrip("/")
    if path.parent != FILES or not path.is_file():
        return Reply(404, "not found\n")
    return Reply(200, path.read_bytes())


@dataclass
class Servers:
    app: str
    grpc: str
    files: Server
    hook: Server
    prom: Server
    abn: Server

    def hosts(self, case_id: str) -> dict[str, str]:
        """The corpus's placeholders, pointing at these servers; a case's webhooks get a path of
        their own."""
        return {
            "$APP": self.app,
            "$GRPC": self.grpc,
            "$FILES": self.files.url,
            "$HOOK": f"{self.hook.url}/{case_id}",
            "$PROM": self.prom.url,
            "$ABN": f"127.0.0.1:{self.abn.port}",
        }


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    with ExitStack() as stack:
        app = stack.enter_context(running())
        stubs = grpc_fixtures.compile_stubs(tmp_path_factory.mktemp("stubs"))
        grpc = stack.enter_context(grpc_fixtures.running(stubs))
        files, hook, prom, abn = (
            stack.enter_context(Server(handler))
            for handler in (_files, lambda _: Reply(200, "ok"), _prometheus, _abn)
        )
        yield Servers(app.url, grpc.host, files, hook, prom, abn)


def run_args(case: dict[str, Any], hosts: dict[str, str]) -> list[str]:
    """The case's ``--set`` arguments but those of the values its run leaves out, then those it adds."""
    without = tuple(f"{key}." for key in case["local"].get("without", []))
    kept = [value for value in case["set"] if not value.startswith(without)]
    return set_args([*kept, *case["local"].get("set", [])], hosts)


def values_of(args: list[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for flag, value in zip(args[::2], args[1::2], strict=True):
        assert flag == "--set"
        parse_into(value, values)
    return values


SERVICE = """
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  selector: {{app: {name}}}
  ports: [{{port: 80}}]
"""

#: Iter8's metric names: built-in http/grpc (per endpoint too), its grpc sample aggregations, the
#: istio-prom template's, abnmetrics'.
ITER8_METRIC = re.compile(
    r"(http|grpc)(-[A-Za-z0-9_]+)?/(request-count|error-count|error-rate"
    r"|latency-(mean|stddev|min|max|p\d+(\.\d+)?)|latency/(mean|stddev|min|max|p\d+(\.\d+)?))"
    r"|istio-prom/(request-count|error-count|error-rate|latency-mean|latency-p\d+)"
    r"|abn/[a-z_]+(/(count|mean|stddev|min|max))?"
)
#: The ``result`` fields of Iter8's experiment.yaml.
ITER8_RESULT_FIELDS = {"startTime", "numCompletedTasks", "failure", "insights", "iter8Version"}


def check_result(case: dict[str, Any], document: dict[str, Any], report: str) -> None:
    """The stored result has Iter8's fields and metric names, and each metric the case expects has
    a value, in the result and in the report."""
    result = document["result"]
    assert not ITER8_RESULT_FIELDS - set(result), set(result)
    insights = result["insights"]
    stored = set(insights.get("metricsInfo", {}))
    strange = sorted(name for name in stored if not ITER8_METRIC.fullmatch(name))
    assert not strange, f"metric names Iter8 did not have: {strange}"
    judged = {
        slo["metric"]: verdict[0]["value"]
        for side in ("upper", "lower")
        for slo, verdict in zip(
            (insights.get("SLOs") or {}).get(side, []),
            (insights.get("SLOVerdicts") or {}).get(side, []),
            strict=True,
        )
    }
    lines = report.splitlines()
    for metric in case["local"]["metrics"]:
        assert ITER8_METRIC.fullmatch(metric), metric
        assert metric in stored or judged.get(metric) is not None, f"{metric}: no value in the result"
        printed = [line for line in lines if line.split(" ", 1)[0] == metric]
        assert printed, f"{metric} is not in the report:\n{report}"
        assert all("unavailable" not in line for line in printed), printed


def local_params() -> list[Any]:
    out = []
    for case in CASES:
        local = case["local"]
        marks = [] if local["run"] else [pytest.mark.skip(reason=f"not run here: {local['why']}")]
        out.append(pytest.param(case, id=case["id"], marks=marks))
    return out


@pytest.mark.parametrize("case", local_params())
def test_the_case_runs_here_with_iter8s_metric_names(
    cli, fake_kube, servers: Servers, tmp_path: Path, case: dict[str, Any]
) -> None:
    hosts = servers.hosts(case["id"])
    args = run_args(case, hosts)
    values = values_of(args)
    if "ready" in values["tasks"]:
        ready = values["ready"]
        if "deploy" in ready:
            fake_kube.create(yaml.safe_load(DEPLOYMENT.format(name=ready["deploy"], namespace="default")))
        if "service" in ready:
            fake_kube.create(yaml.safe_load(SERVICE.format(name=ready["service"], namespace="default")))
    hooked = len(servers.hook.requests)
    run_dir = str(tmp_path / "run")
    launched = cli("launch", "--local", "--run-dir", run_dir, *args)
    assert launched.code == 0, launched.err
    asserted = cli(
        "assert", "--local", "--run-dir", run_dir, "-c", "completed", "-c", "nofailure", "-c", "slos"
    )
    report = cli("report", "--local", "--run-dir", run_dir)
    assert asserted.code == 0, report.out
    assert report.code == 0, report.err
    check_result(case, yaml.safe_load((tmp_path / "run" / "experiment.yaml").read_text()), report.out)
    if "notified" in case["local"]:
        paths = [r.path for r in servers.hook.requests[hooked:]]
        assert paths == [f"/{case['id']}{case['local']['notified']}"]


# --- in a cluster -----------------------------------------------------------------------------------


@pytest.mark.parametrize("case", params([case for case in CASES if case.get("cluster")]))
def test_the_case_runs_in_a_cluster(cluster, kubectl, cli, servers: Servers, case: dict[str, Any]) -> None:
    if cluster.fake is None and cluster.real is None:
        pytest.skip("the corpus's servers listen on 127.0.0.1, which an external cluster's pods cannot reach")
    namespace = cluster.namespace
    args = run_args(case, servers.hosts(case["id"]))
    ready = values_of(args).get("ready", {})
    if "deploy" in ready:
        cluster.deploy(ready["deploy"])
    if "service" in ready:
        applied = cluster.kubectl(
            "apply", "-f", "-", stdin=SERVICE.format(name=ready["service"], namespace=namespace)
        )
        assert applied.returncode == 0, applied.stderr
    group = case["id"]
    where = ["-g", group, "-n", namespace]
    launched = kubectl("launch", *where, *args)
    assert launched.code == 0, launched.err
    # The user's launch goes through kubectl; the rest runs in-process, which saves a start-up each.
    asserted = cli("assert", *where, "-c", "completed", "-c", "nofailure", "-c", "slos", "--timeout", "90s")
    report = cli("report", *where)
    assert asserted.code == 0, report.out + cli("log", *where).out
    secret = cluster.kubectl(
        "get", "secret", group, "-n", namespace, "-o", "jsonpath={.data.experiment\\.yaml}"
    )
    document = yaml.safe_load(base64.b64decode(secret.stdout))
    check_result(case, document, report.out)
