"""Iter8's command lines keep working: its flag spellings as hidden aliases (``--values``, ``--dry``,
``--outputFormat``, ``--reuseResult``, ``--kube-context``, ``-l/--loglevel`` anywhere, with Iter8's
level names), the v0.13-v0.15 ``k`` group, and Helm's ``--set-string``/``--set-file``/``--set-json``.
Everything through the CLI; the cluster commands on the fake API server, through real kubectl."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import yaml
from prom_fixtures import Reply, Request, Server

from kubectl_iter8.cli import hoist_loglevel

EXPERIMENT = "spec:\n- run: echo hello from bash $((6 * 7))\n"


def write(tmp_path: Path, text: str = EXPERIMENT, name: str = "exp.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# --- hidden aliases, local --------------------------------------------------------------------


def test_values_and_dry_are_launch_aliases(cli, tmp_path: Path) -> None:
    path = write(tmp_path)
    outcome = cli("launch", "--local", "--values", str(path), "--dry", "--run-dir", str(tmp_path / "run"))
    assert outcome.code == 0, outcome.err
    assert yaml.safe_load(outcome.out) == yaml.safe_load(EXPERIMENT)
    assert not (tmp_path / "run" / "experiment.yaml").exists()


def test_output_format_and_run_dir_are_report_aliases(cli, tmp_path: Path) -> None:
    assert cli("launch", "--local", "-f", str(write(tmp_path)), "--runDir", str(tmp_path)).code == 0
    outcome = cli("report", "--local", "--runDir", str(tmp_path), "--outputFormat", "json")
    assert outcome.code == 0, outcome.err
    assert json.loads(outcome.out)["summary"]["status"] == "completed"
    html = cli("report", "--local", "--run-dir", str(tmp_path), "--outputFormat=html")
    assert html.out.startswith("<!DOCTYPE html>")


@pytest.mark.parametrize(
    "args",
    [
        ["-l", "trace", "launch", "--local"],
        ["launch", "--local", "-l", "debug"],
        ["launch", "--loglevel", "TRACE", "--local"],
        ["launch", "--local", "--loglevel=debug"],
        ["launch", "--local", "-ldebug"],
    ],
)
def test_loglevel_is_taken_in_any_position_with_iter8s_level_names(
    kubectl, tmp_path: Path, args: list[str]
) -> None:
    # A process of its own (logging is configured once per process), through kubectl as a user would.
    write(tmp_path)
    outcome = kubectl(*args, "-f", "exp.yaml")
    assert outcome.code == 0, outcome.err
    assert "hello from bash 42" in outcome.err  # the run task's output is logged at debug
    assert "DEBUG" in outcome.err


@pytest.mark.parametrize(
    ("level", "shown"), [("info", True), ("error", False), ("fatal", False), ("panic", False)]
)
def test_quiet_levels_quieten(kubectl, tmp_path: Path, level: str, shown: bool) -> None:
    write(tmp_path)
    outcome = kubectl("launch", "--local", "-f", "exp.yaml", "-l", level)
    assert outcome.code == 0, outcome.err
    assert ("INFO" in outcome.err) is shown
    assert "hello from bash 42" not in outcome.err


def test_a_bad_level_is_refused_in_one_line(cli, tmp_path: Path) -> None:
    outcome = cli("launch", "--local", "-f", str(write(tmp_path)), "-l", "loud")
    assert outcome.code == 2
    assert "'loud' is not one of" in outcome.err


def test_hoisting_leaves_everything_after_double_dash_alone() -> None:
    assert hoist_loglevel(["k", "launch", "-l", "trace", "--", "-l", "x"]) == [
        "--loglevel", "debug", "k", "launch", "--", "-l", "x",
    ]  # fmt: skip


def test_aliases_and_the_k_group_stay_out_of_help(cli) -> None:
    root = cli("--help").out
    assert "\n  k " not in root
    assert "  launch " in root
    launch_help = cli("launch", "--help").out
    assert "--dry-run" in launch_help
    assert "--set-json" in launch_help
    for alias in ("--values", "--dry ", "--dry\n"):
        assert alias not in launch_help
    assert "--outputFormat" not in cli("report", "--help").out
    assert "--reuseResult" not in cli("run", "--help").out
    assert "--kube-context" not in cli("log", "--help").out
    assert "--runDir" not in cli("assert", "--help").out


# --- Helm's value flags through launch ----------------------------------------------------------


def test_set_file_set_string_and_set_json_through_launch(cli, tmp_path: Path) -> None:
    script = write(tmp_path, 'echo "from a file: $((1 + 1))"\n', "script.sh")
    outcome = cli(
        "launch", "--local", "--run-dir", str(tmp_path / "run"),
        "--set", "tasks={run,assess}",
        "--set-file", f"run.cmd={script}",
        "--set-json", 'assess={"SLOs": {"upper": {"x/y": 5}}}',
        "--set-string", "metadata.name=007",
        "--dry-run",
    )  # fmt: skip
    assert outcome.code == 0, outcome.err
    assert yaml.safe_load(outcome.out) == {
        "metadata": {"name": "007"},
        "spec": [
            {"task": "run", "with": {"cmd": 'echo "from a file: $((1 + 1))"\n'}},
            {"task": "assess", "with": {"SLOs": {"upper": {"x/y": 5}}}},
        ],
    }


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        (
            "--set-json",
            "a={",
            "error: --set-json 'a={': invalid JSON value: Expecting property name enclosed in double quotes (at character 4)",
        ),
        (
            "--set-file",
            "a=/nonexistent/f",
            "error: --set-file 'a=/nonexistent/f': '/nonexistent/f': no such file",
        ),
        ("--set", "a[1", "error: --set 'a[1': an index without its closing ]"),
        ("--set-string", "a,b=1", "error: --set-string 'a,b=1': key 'a' has no value (cannot end with ,)"),
    ],
)
def test_bad_value_flags_are_one_line_errors(cli, flag: str, value: str, message: str) -> None:
    outcome = cli("launch", "--local", flag, value, "--dry-run")
    assert outcome.code == 2
    assert outcome.err.strip().splitlines() == [message]


def prometheus_answer(request: Request) -> Reply:
    return Reply(
        200,
        {
            "status": "success",
            "data": {"resultType": "vector", "result": [{"metric": {}, "value": [0, "12.5"]}]},
        },
    )


def test_set_gives_istio_prom_numbers_as_helm_does(cli, tmp_path: Path) -> None:
    """The issue's case: ``latencyPercentiles={50,90}`` are numbers, so the template can divide them."""
    with Server(prometheus_answer) as prometheus:
        outcome = cli(
            "launch", "--local", "--run-dir", str(tmp_path),
            "--set", "tasks={custommetrics,assess}",
            "--set", "custommetrics.templates.istio-prom=https://raw.githubusercontent.com/iter8-tools/iter8/"
            "v0.13.18/templates/custommetrics/istio-prom.tpl",
            "--set", f"custommetrics.values.istioPromURL={prometheus.url}/api/v1/query",
            "--set", "custommetrics.values.latencyPercentiles={50,90}",
            "--set", "custommetrics.versionValues[0].labels.destination_workload=httpbin-v1",
            "--set", "assess.SLOs.upper.istio-prom/latency-p90=20",
        )  # fmt: skip
        queries = [q for r in prometheus.requests for q in r.query.get("query", [])]
    assert outcome.code == 0, outcome.err
    assert any(q.startswith("histogram_quantile(0.5,") for q in queries)
    assert any(q.startswith("histogram_quantile(0.9,") for q in queries)
    result = yaml.safe_load((tmp_path / "experiment.yaml").read_text())["result"]
    assert result["insights"]["nonHistMetricValues"][0]["istio-prom/latency-p90"] == [12.5]
    assert result["insights"]["SLOsSatisfied"]["upper"] == [[True]]


# --- the k group and --reuseResult on a cluster ---------------------------------------------------


@pytest.fixture
def fake_cluster(fake_kube, monkeypatch: pytest.MonkeyPatch):
    # The fake runs a Job's command (kubectl-iter8 run ...) as a local process.
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    return fake_kube


def test_the_k_group_runs_iter8s_cluster_commands(fake_cluster, kubectl, tmp_path: Path) -> None:
    write(tmp_path)
    launched = kubectl("k", "launch", "--values", "exp.yaml", "-g", "kdemo", "-l", "trace")
    assert launched.code == 0, launched.err
    assert 'experiment group "kdemo" launched' in launched.out
    dry = kubectl("k", "launch", "-f", "exp.yaml", "-g", "kdemo", "--dry")
    assert dry.code == 0, dry.err
    assert "kind: Job" in dry.out
    waited = kubectl("k", "assert", "-g", "kdemo", "-c", "completed,nofailure", "--timeout", "60s")
    assert waited.code == 0, waited.err + kubectl("k", "log", "-g", "kdemo").out
    report = json.loads(kubectl("k", "report", "-g", "kdemo", "--outputFormat", "json").out)
    assert report["summary"]["numLoops"] == 1
    logs = kubectl("k", "log", "-g", "kdemo")
    assert logs.code == 0, logs.err
    assert "experiment completed: 1 of 1 tasks" in logs.out

    context = yaml.safe_load(Path(fake_cluster.kubeconfig).read_text())["current-context"]
    # What Iter8's CronJobs ran: iter8 k run --namespace NS --group G -l LEVEL --reuseResult
    again = kubectl("k", "run", "--namespace", "default", "--group", "kdemo", "-l", "info", "--reuseResult",
                    "--kube-context", context)  # fmt: skip
    assert again.code == 0, again.err
    report = json.loads(kubectl("k", "report", "-g", "kdemo", "-o", "json").out)
    assert report["summary"]["numLoops"] == 2

    deleted = kubectl("k", "delete", "-g", "kdemo")
    assert deleted.code == 0, deleted.err
    assert 'experiment group "kdemo" deleted' in deleted.out
    assert kubectl("k", "report", "-g", "kdemo").code != 0
