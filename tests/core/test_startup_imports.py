"""``kubectl iter8 --help`` and ``version`` import none of the heavy modules.

They run on every shell completion and typo, so they must not pay for the Kubernetes client, grpc,
the load engine, or even pydantic and YAML: commands import those when they run. Checked with
``python -X importtime`` in a fresh interpreter, which lists every module imported and who
imported it; a failure shows the chain that pulled the module in.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass

import pytest

#: Top-level packages that --help and version must not import (nor any of their submodules).
FORBIDDEN_PACKAGES = (
    "kubernetes",
    "grpc",
    "pydantic",
    "pydantic_core",
    "yaml",
    "hdrh",
    "httptools",
    "uvloop",
    "aiohttp",
    "httpx",
    "urllib3",
    "requests",
    "numpy",
    "scipy",
    "jinja2",
    "jq",
    "jsonpatch",
)
#: Our own modules that carry the heavy parts: the load engine and the cluster access layer.
FORBIDDEN_OWN = (
    "kubectl_iter8.builtin_tasks.http",
    "kubectl_iter8.kube",
    "kubectl_iter8.cluster",
)


@dataclass
class Import:
    name: str
    depth: int
    cumulative_us: int


def imports_of(*args: str) -> list[Import]:
    """Run ``python -X importtime -m kubectl_iter8 ARGS``; its imports, children before parents."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ITER8_")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "kubectl_iter8", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip(), "the command printed nothing"
    found = []
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        _, cumulative, name = line[len("import time:") :].split("|")
        found.append(Import(name.strip(), (len(name) - len(name.lstrip())) // 2, int(cumulative)))
    assert found, f"no -X importtime output:\n{proc.stderr}"
    return found


def chain(imports: list[Import], index: int) -> list[str]:
    """The module at ``index`` and who imported it, up to the top (importtime prints parents last)."""
    names = [imports[index].name]
    depth = imports[index].depth
    for later in imports[index + 1 :]:
        if later.depth < depth:
            names.append(later.name)
            depth = later.depth
    return names


def forbidden_root(name: str) -> str | None:
    """The forbidden package or module ``name`` belongs to, if any."""
    return next(
        (p for p in FORBIDDEN_PACKAGES + FORBIDDEN_OWN if name == p or name.startswith(f"{p}.")), None
    )


@pytest.mark.parametrize("args", [("--help",), ("version",), ("version", "--short")], ids=" ".join)
def test_no_heavy_imports(args: tuple[str, ...]) -> None:
    imports = imports_of(*args)
    assert "kubectl_iter8.cli" in {i.name for i in imports}  # the run really went through the CLI
    # The first module of each forbidden package, with the chain of imports that pulled it in.
    first: dict[str, str] = {}
    for index, imp in enumerate(imports):
        root = forbidden_root(imp.name)
        if root is not None and root not in first:
            first[root] = " <- ".join(chain(imports, index))
    assert not first, "`kubectl iter8 {}` imports heavy modules:\n  {}".format(
        " ".join(args), "\n  ".join(first.values())
    )
