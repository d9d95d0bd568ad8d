"""A third-party task plugin, built as a real distribution and pip-installed, works like a built-in."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

PYPROJECT = """
[build-system]
requires = ["setuptools"]
build-backend = "setuptools.build_meta"

[project]
name = "iter8-greet"
version = "1.2.3"

[tool.setuptools]
py-modules = ["iter8_greet", "iter8_greet_broken"]

[project.entry-points.iter8]
greet = "iter8_greet"
broken = "iter8_greet_broken"
"""

PLUGIN = '''
"""A third-party kubectl-iter8 plugin: the `greet` task records a metric."""
from kubectl_iter8 import MetricInfo, Task, TaskContext, TaskInputs, TaskRegistry, TaskError, hookimpl


class GreetInputs(TaskInputs):
    who: str
    score: float = 1.0


class Greet(Task[GreetInputs]):
    name = "greet"
    aliases = ("hello",)
    Inputs = GreetInputs

    async def run(self, ctx: TaskContext) -> None:
        if self.inputs.who == "nobody":
            raise TaskError("nobody to greet")
        ctx.details["greeting"] = f"hello {self.inputs.who}"
        ctx.insights.register_metric("greet/score", MetricInfo(description="how warm", type="Gauge"))
        ctx.insights.add_value(0, "greet/score", self.inputs.score)


@hookimpl
def iter8_register_tasks(registry: TaskRegistry) -> None:
    registry.register(Greet)
'''


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the distribution from source and pip-install it into its own folder."""
    src = tmp_path_factory.mktemp("iter8-greet")
    (src / "pyproject.toml").write_text(PYPROJECT)
    (src / "iter8_greet.py").write_text(textwrap.dedent(PLUGIN))
    (src / "iter8_greet_broken.py").write_text("raise ImportError('missing dependency frobnicate')\n")
    site = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(site), str(src)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    assert (site / "iter8_greet-1.2.3.dist-info" / "entry_points.txt").exists()
    return site


@pytest.fixture
def with_plugin(plugin_site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(plugin_site), os.environ.get("PYTHONPATH")]))
    )


@pytest.mark.usefixtures("with_plugin")
def test_the_installed_plugin_is_listed_with_its_distribution(kubectl) -> None:
    outcome = kubectl("plugins", "-o", "json")
    assert outcome.code == 0, outcome.err
    plugins = {p["name"]: p for p in json.loads(outcome.out)["plugins"]}
    assert plugins["greet"]["source"] == "iter8-greet"
    assert plugins["greet"]["version"] == "1.2.3"
    assert plugins["greet"]["tasks"] == ["greet"]
    assert plugins["greet"]["error"] is None
    assert plugins["broken"]["error"] == (
        "failed to load iter8_greet_broken: ImportError: missing dependency frobnicate"
    )
    assert "warning: plugin 'broken' skipped" in outcome.err


@pytest.mark.usefixtures("with_plugin")
def test_the_plugin_task_runs_inside_an_experiment(kubectl, tmp_path: Path) -> None:
    (tmp_path / "exp.yaml").write_text(
        "spec:\n- task: hello\n  with: {who: world, score: 4}\n"
        "- task: assess\n  with: {SLOs: {lower: [{metric: greet/score, limit: 3}]}}\n"
    )
    outcome = kubectl("launch", "--local", "-f", "exp.yaml")
    assert outcome.code == 0, outcome.err
    result = yaml.safe_load((tmp_path / "experiment.yaml").read_text())["result"]
    assert result["tasks"][0]["details"] == {"greeting": "hello world"}
    assert result["insights"]["nonHistMetricValues"] == [{"greet/score": [4.0]}]
    assert kubectl("assert", "--local", "-c", "completed,nofailure,slos").code == 0


@pytest.mark.usefixtures("with_plugin")
def test_the_plugin_inputs_are_validated_and_its_failures_recorded(kubectl, tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("spec:\n- task: greet\n  with: {whom: world}\n")
    invalid = kubectl("launch", "--local", "-f", "bad.yaml")
    assert invalid.code == 2
    assert "error: spec[0] (greet): who: required field is missing" in invalid.err
    assert "error: spec[0] (greet): whom: unknown field" in invalid.err
    (tmp_path / "fail.yaml").write_text("spec:\n- task: greet\n  with: {who: nobody}\n")
    failed = kubectl("launch", "--local", "-f", "fail.yaml")
    assert failed.code == 1
    assert "error: experiment failed: spec[0] (greet): nobody to greet" in failed.err


def test_autoload_can_be_switched_off(kubectl, plugin_site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", str(plugin_site))
    names = [p["name"] for p in json.loads(kubectl("plugins", "-o", "json").out)["plugins"]]
    assert {"greet", "broken"} <= set(names)
    monkeypatch.setenv("ITER8_NO_AUTOLOAD", "1")
    names = [p["name"] for p in json.loads(kubectl("plugins", "-o", "json").out)["plugins"]]
    assert "greet" not in names
    monkeypatch.delenv("ITER8_NO_AUTOLOAD")
    monkeypatch.setenv("ITER8_DISABLE_PLUGINS", "broken")
    outcome = kubectl("plugins", "-o", "json")
    assert "greet" in [p["name"] for p in json.loads(outcome.out)["plugins"]]
    assert "warning" not in outcome.err
