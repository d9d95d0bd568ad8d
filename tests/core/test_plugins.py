"""The plugin host: loading, registries, duplicate names, event hooks, and the plugins listing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kubectl_iter8 import DuplicateNameError, PluginError, Task, TaskContext, TaskInputs, hookimpl
from kubectl_iter8.host import DEFAULT_PLUGINS, ESSENTIAL_PLUGINS, Iter8Hooks


class Echo(Task[TaskInputs]):
    name = "run"
    Inputs = TaskInputs

    async def run(self, ctx: TaskContext) -> None:
        pass


def fresh_hooks(**env: str) -> Iter8Hooks:
    return Iter8Hooks(env={"ITER8_NO_AUTOLOAD": "1", **env})


def test_builtin_tasks_register_through_the_hook_like_any_plugin() -> None:
    hooks = fresh_hooks()
    assert {"run", "assess"} <= set(hooks.tasks.names())
    assert hooks.tasks.owner("run") == "kubectl_iter8.builtin_tasks"


def test_a_duplicate_task_name_is_refused_naming_both_plugins() -> None:
    hooks = fresh_hooks()

    class Duplicate:
        @hookimpl
        def iter8_register_tasks(self, registry) -> None:  # type: ignore[no-untyped-def]
            registry.register(Echo)

    hooks.manager.register(Duplicate(), name="dup-plugin")
    with pytest.raises(DuplicateNameError) as info:
        _ = hooks.tasks
    assert str(info.value) == (
        "plugin 'dup-plugin': task name 'run' is already registered by plugin 'kubectl_iter8.builtin_tasks'"
    )


def test_an_alias_cannot_shadow_another_plugins_name() -> None:
    class Shadow(Echo):
        name = "shadow"
        aliases = ("assess",)

    hooks = fresh_hooks()

    class Plugin:
        @hookimpl
        def iter8_register_tasks(self, registry) -> None:  # type: ignore[no-untyped-def]
            registry.register(Shadow)

    hooks.manager.register(Plugin(), name="shadowing")
    with pytest.raises(DuplicateNameError, match="'assess' is already registered"):
        _ = hooks.tasks


def test_a_plugin_that_raises_while_registering_is_named() -> None:
    hooks = fresh_hooks()

    class Broken:
        @hookimpl
        def iter8_register_tasks(self) -> None:
            raise RuntimeError("no luck")

    hooks.manager.register(Broken(), name="broken")
    with pytest.raises(
        PluginError, match="plugin 'broken': iter8_register_tasks failed: RuntimeError: no luck"
    ):
        _ = hooks.tasks


def test_disabling_builtin_tasks_but_never_the_core_commands() -> None:
    hooks = fresh_hooks(ITER8_DISABLE_PLUGINS=", ".join((*DEFAULT_PLUGINS, "kubectl_iter8.commands")))
    assert hooks.tasks.names() == []
    names = [info.name for info in hooks.plugin_infos()]
    assert list(ESSENTIAL_PLUGINS) == names


def test_a_misspelt_hook_is_reported(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "typo_plugin.py").write_text(
        "from kubectl_iter8 import hookimpl\n\n@hookimpl\ndef iter8_register_task(registry):\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PluginError, match="typo_plugin.*unknown hook 'iter8_register_task'"):
        fresh_hooks(ITER8_PLUGINS="typo_plugin")


def test_event_hooks_see_every_task_and_the_end(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    events = tmp_path / "events.jsonl"
    monkeypatch.setenv("ITER8_PLUGINS", "iter8_test_observer")
    monkeypatch.setenv("ITER8_TEST_EVENTS", str(events))
    (tmp_path / "exp.yaml").write_text(
        "spec:\n- run: [echo]\n- run: [echo]\n  if: 'false'\n- run: ['false']\n"
    )
    outcome = cli("launch", "--local", "-f", str(tmp_path / "exp.yaml"), "--run-dir", str(tmp_path))
    assert outcome.code == 1
    assert [json.loads(line) for line in events.read_text().splitlines()] == [
        {"event": "started", "completed": 0},
        {"event": "task", "index": 0, "status": "completed"},
        {"event": "task", "index": 1, "status": "skipped"},
        {"event": "task", "index": 2, "status": "failed"},
        {"event": "finished", "failure": True},
    ]


def test_plugins_listing(kubectl) -> None:
    text = kubectl("plugins")
    assert text.code == 0
    header, *rows = text.out.splitlines()
    assert header.split() == ["NAME", "SOURCE", "VERSION", "PROVIDES", "STATUS"]
    builtin_row = next(row for row in rows if row.split()[:2] == ["kubectl_iter8.builtin_tasks", "builtin"])
    assert "tasks: abnmetrics, " in builtin_row
    assert builtin_row.split()[-1] == "loaded"
    listed = json.loads(kubectl("plugins", "-o", "json").out)["plugins"]
    builtin = next(p for p in listed if p["name"] == "kubectl_iter8.builtin_tasks")
    assert {"assess", "http", "ready", "run"} <= set(builtin["tasks"])
    assert builtin["hooks"] == ["iter8_register_tasks"]
    assert builtin["error"] is None
    assert "tasks:" in kubectl("plugins", "-o", "yaml").out
