from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from kubectl_iter8.version import __version__


def test_version_through_kubectl(kubectl) -> None:
    assert kubectl("version", "--short").out == f"v{__version__}\n"
    text = kubectl("version")
    assert text.code == 0
    assert text.out.startswith(f"kubectl-iter8 v{__version__} (python ")
    info = json.loads(kubectl("version", "-o", "json").out)
    assert info["version"] == f"v{__version__}"
    assert info["python"] == ".".join(map(str, sys.version_info[:3]))


def test_kubectl_plugin_list_finds_the_plugin() -> None:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    kubectl = shutil.which("kubectl")
    assert kubectl is not None
    listing = subprocess.run(
        [kubectl, "plugin", "list"], env=env, capture_output=True, text=True, check=False
    )
    assert str(Path(sys.executable).parent / "kubectl-iter8") in listing.stdout
