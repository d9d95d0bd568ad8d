"""The layers are enforced, and the test kit that stays out of the runtime gives plugin authors fixtures.

**Layers.** The contracts in ``[tool.importlinter]`` (pyproject.toml) hold, and each of them fails
when broken. ``lint-imports`` reads the packages from disk, and the plugin folders sit inside
``kubectl_iter8`` only once installed (``[tool.setuptools.package-dir]``), so it runs on a copy laid
out like the wheel (as scripts/test does).

**The test kit.** ``plugin_host`` and ``cli`` (:mod:`kubectl_iter8.testing.pytest_plugin`), used
here the way a plugin author would: a plugin defined in the test registers a task and a router, and
the task runs in an experiment.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel, ConfigDict

from kubectl_iter8 import (
    PluginError,
    RouteMap,
    RoutingState,
    Task,
    TaskContext,
    TaskInputs,
    TaskRegistry,
    hookimpl,
)
from kubectl_iter8.registry import RouterRegistry
from kubectl_iter8.routemap import RouteMapSpec

REPO = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lay_out_like_the_wheel(dest: Path) -> None:
    """Copy each folder of ``[tool.setuptools.package-dir]`` to where its package is installed."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    package_dir: dict[str, str] = config["tool"]["setuptools"]["package-dir"]
    for package, folder in sorted(package_dir.items()):  # a package before its subpackages
        shutil.copytree(
            REPO / folder, dest.joinpath(*package.split(".")), ignore=shutil.ignore_patterns("__pycache__")
        )


def lint_imports(layout: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-logo", "--no-cache", str(REPO / "pyproject.toml")],
        cwd=layout, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def contract_names() -> list[str]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    return [contract["name"] for contract in config["tool"]["importlinter"]["contracts"]]


def append(path: Path, line: str) -> None:
    path.write_text(path.read_text() + f"\n{line}\n")


def test_the_import_contracts_hold(tmp_path: Path) -> None:
    lay_out_like_the_wheel(tmp_path)
    result = lint_imports(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    names = contract_names()
    assert len(names) >= 6
    for name in names:
        assert f"{name} KEPT" in " ".join(result.stdout.split()), name


def test_each_contract_fails_when_broken(tmp_path: Path) -> None:
    lay_out_like_the_wheel(tmp_path)
    package = tmp_path / "kubectl_iter8"
    # One new import for each rule (the controller's breaks two: the core's rule and the peers' rule).
    append(package / "report.py", "from kubectl_iter8.plugins import istio")
    append(package / "controller" / "plan.py", "from kubectl_iter8.builtin_tasks import run")
    append(package / "plugins" / "gateway_api.py", "from . import template")
    append(package / "builtin_tasks" / "run.py", "from . import assess")
    append(package / "cli.py", "import kubectl_iter8.testing")
    append(package / "runner.py", "import kubernetes")
    result = lint_imports(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    text = " ".join(result.stdout.split())
    for name in contract_names():
        assert f"{name} BROKEN" in text, name
    for importer, imported in [
        ("kubectl_iter8.report", "kubectl_iter8.plugins.istio"),
        ("kubectl_iter8.plugins.gateway_api", "kubectl_iter8.plugins.template"),
        ("kubectl_iter8.builtin_tasks.run", "kubectl_iter8.builtin_tasks.assess"),
        ("kubectl_iter8.cli", "kubectl_iter8.testing"),
        ("kubectl_iter8.runner", "kubernetes"),
    ]:
        assert f"{importer} -> {imported}" in text, (importer, imported)


# --- the test kit: plugin_host and cli ------------------------------------------------------------


class ShoutInputs(TaskInputs):
    word: str


class Shout(Task[ShoutInputs]):
    name = "shout"
    Inputs = ShoutInputs

    async def run(self, ctx: TaskContext) -> None:
        ctx.details["shouted"] = self.inputs.word.upper()


class EchoRouter:
    """Routes nothing: one ConfigMap that names the weights."""

    name = "echo"
    kinds = (("", "ConfigMap"),)

    class Config(BaseModel):
        model_config = ConfigDict(extra="forbid")

    def render(self, routemap: RouteMap, state: RoutingState, config: BaseModel) -> list[dict[str, Any]]:
        weights = ",".join(str(w) for w in state.weights)
        return [
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": routemap.name},
                "data": {"w": weights},
            }
        ]


class ShoutPlugin:
    """A plugin defined in the test: a class whose static methods are the hooks (a module works too)."""

    @staticmethod
    @hookimpl
    def iter8_register_tasks(registry: TaskRegistry) -> None:
        registry.register(Shout)

    @staticmethod
    @hookimpl
    def iter8_register_routers(registry: RouterRegistry) -> None:
        registry.register(EchoRouter())


PLUGIN_NAME = f"{__name__}.ShoutPlugin"


def test_the_plugin_host_registers_a_plugins_task_and_router(plugin_host) -> None:
    hooks = plugin_host(ShoutPlugin)
    assert hooks.tasks.get("shout") is Shout
    assert hooks.tasks.owner("shout") == PLUGIN_NAME
    assert "run" in hooks.tasks.names()  # the built-ins are there too
    router = hooks.routers.get("echo")
    assert hooks.routers.kinds("echo") == frozenset({("", "ConfigMap")})
    spec = RouteMapSpec.model_validate(
        {
            "versions": [{"resources": [{"gvrShort": "svc", "name": n}]} for n in ("app", "app-canary")],
            "routing": {"router": "echo"},
        }
    )
    routemap = RouteMap(name="app-routemap", namespace="default", uid="u1", spec=spec)
    state = RoutingState(available=(True, True), weights=(90, 10))
    (rendered,) = router.render(routemap, state, EchoRouter.Config())
    assert rendered["metadata"]["name"] == "app-routemap"
    assert rendered["data"] == {"w": "90,10"}
    info = next(i for i in hooks.plugin_infos() if i.name == PLUGIN_NAME)
    assert (info.source, info.tasks, info.routers) == ("ITER8_PLUGINS", ["shout"], ["echo"])


def test_the_plugins_task_runs_in_an_experiment_through_cli(plugin_host, cli, tmp_path: Path) -> None:
    plugin_host(ShoutPlugin)
    listed = cli("plugins", "-o", "json")
    assert listed.code == 0, listed.err
    assert PLUGIN_NAME in [p["name"] for p in yaml.safe_load(listed.out)["plugins"]]
    (tmp_path / "exp.yaml").write_text("spec:\n- task: shout\n  with: {word: hello}\n")
    outcome = cli("launch", "--local", "-f", str(tmp_path / "exp.yaml"), "--run-dir", str(tmp_path))
    assert outcome.code == 0, outcome.err
    result = yaml.safe_load((tmp_path / "experiment.yaml").read_text())["result"]
    assert result["tasks"][0]["details"] == {"shouted": "HELLO"}
    invalid = cli("launch", "--local", "-f", "-", "--run-dir", str(tmp_path), stdin="spec:\n- task: shout\n")
    assert invalid.code == 2
    assert "word: required field is missing" in invalid.err


def test_the_plugin_host_names_a_plugin_whose_hook_fails(plugin_host) -> None:
    class Broken:
        @staticmethod
        @hookimpl
        def iter8_register_tasks() -> None:
            raise RuntimeError("no luck")

    hooks = plugin_host(Broken)
    with pytest.raises(PluginError, match=r"Broken': iter8_register_tasks failed: RuntimeError: no luck"):
        _ = hooks.tasks


def test_the_plugin_host_takes_importable_names(plugin_host) -> None:
    hooks = plugin_host("iter8_test_plugin")  # tests/iter8_test_plugin.py
    assert hooks.tasks.owner("record-metrics") == "iter8_test_plugin"
