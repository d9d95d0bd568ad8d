"""The cluster scenarios against a real kind cluster, where docker and kind exist (not on the build machines)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("run-kind.sh")


@pytest.mark.e2e
def test_cluster_scenarios_on_kind() -> None:
    missing = [tool for tool in ("docker", "kind") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"kind clusters need {' and '.join(missing)}, which this machine does not have")
    if subprocess.run(["docker", "info"], capture_output=True, check=False).returncode != 0:
        pytest.skip("no Docker engine is running, so kind cannot create a cluster")
    subprocess.run([str(SCRIPT)], check=True, timeout=1800)
