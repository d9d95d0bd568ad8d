"""Fixtures shared by the whole suite: run the real CLI, in-process or through the real kubectl."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from kubectl_iter8.cli import main

pytest_plugins = ["kubectl_iter8.testing.pytest_plugin"]

VENV_BIN = Path(sys.executable).parent


@dataclass
class Outcome:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Callable[..., Outcome]:
    """Run ``kubectl iter8 ARGS`` in-process (fast); returns exit code and captured output."""

    def run(*args: str, stdin: str | None = None) -> Outcome:
        if stdin is not None:
            import io

            monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        capsys.readouterr()
        code = main(list(args))
        captured = capsys.readouterr()
        return Outcome(int(code), captured.out, captured.err)

    return run


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
