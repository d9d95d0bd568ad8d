"""``ITER8_TRACE_PLUGINS=1`` traces every hook the host calls, registration hooks included: they are
called plugin by plugin (for attribution) but still through pluggy, so its monitoring sees them."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from kubectl_iter8 import PluginError, hookimpl, hookspecs
from kubectl_iter8.host import Iter8Hooks

HOOKS = {name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction) if hasattr(fn, "iter8_spec")}


def traced(stderr: str) -> list[str]:
    """The hook names of the trace's call lines (``  <hook> [hook]``), in order."""
    return re.findall(r"^\s*(iter8_\w+) \[hook\]$", stderr, flags=re.MULTILINE)


def test_every_hook_appears_in_the_trace(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ITER8_TRACE_PLUGINS", "1")
    # The listing fills every registry; a local run calls the event hooks.
    listing = cli("plugins")
    assert listing.code == 0, listing.err
    (tmp_path / "exp.yaml").write_text("spec:\n- run: [echo]\n")
    run = cli("launch", "--local", "-f", str(tmp_path / "exp.yaml"), "--run-dir", str(tmp_path / "run"))
    assert run.code == 0, run.err
    trace = listing.err + run.err
    assert set(traced(trace)) == HOOKS
    assert set(re.findall(r"finish (iter8_\w+) -->", trace)) == HOOKS


def test_registration_is_traced_once_per_plugin_and_failures_stay_attributed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    hooks = Iter8Hooks(env={"ITER8_NO_AUTOLOAD": "1", "ITER8_TRACE_PLUGINS": "1"})

    class Broken:
        @hookimpl
        def iter8_register_routers(self) -> None:
            raise RuntimeError("no luck")

    hooks.manager.register(Broken(), name="broken")
    implementers = len(hooks.manager.hook.iter8_register_routers.get_hookimpls())
    with pytest.raises(PluginError, match="plugin 'broken': iter8_register_routers failed: RuntimeError"):
        _ = hooks.routers
    assert traced(capsys.readouterr().err) == ["iter8_register_routers"] * implementers
