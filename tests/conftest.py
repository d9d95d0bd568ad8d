"""Fixtures shared by the whole suite: the real CLI through the real kubectl (the in-process `cli` is shipped)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from kubectl_iter8.testing.outcome import Outcome

# The fake and real Kubernetes fixtures, and the in-process `cli` and `plugin_host` fixtures that
# plugin authors get from the same plugin (docs/testing.md).
pytest_plugins = ["kubectl_iter8.testing.pytest_plugin"]

VENV_BIN = Path(sys.executable).parent


@pytest.fixture
def kubectl(tmp_path: Path) -> Callable[..., Outcome]:
    """Run ``kubectl iter8 ARGS`` through the real kubectl binary, as a user would."""
    kubectl_bin = shutil.which("kubectl")
    if kubectl_bin is None:
        pytest.fail("kubectl is not on PATH; .ci/run installs it")

    def run(*args: str, stdin: str | None = None, cwd: Path | None = None, timeout: float = 60) -> Outcome:
        # The environment is read at call time, so monkeypatch.setenv in a test applies.
        env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
        proc = subprocess.run(
            [kubectl_bin, "iter8", *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=env,
            cwd=cwd or tmp_path,
            timeout=timeout,
            check=False,
        )
        return Outcome(proc.returncode, proc.stdout, proc.stderr)

    return run
