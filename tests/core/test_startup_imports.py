"""``kubectl iter8 --help`` and ``version`` import none of the heavy modules.

They run on every shell completion and typo, so they must not pay for the Kubernetes client, grpc,
the load engine, or even pydantic and YAML: commands import those when they run. Checked with
``python -X importtime`` in a fresh interpreter, which lists every module imported and who
imported it; a failure shows the chain that pulled the module in.

The plugin host's entry-point scan is pinned too: ``importlib.metadata`` (with ``email`` and
``zipfile``) is imported only when an installed distribution declares an ``iter8`` entry point,
and never in the frozen application (the Krew archive), which still finds every built-in plugin.
"""

from __future__ import annotations

import importlib.machinery
import importlib.metadata
import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from kubectl_iter8.host import Iter8Hooks, may_declare_entry_points

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
#: The standard library's share: the entry-point scan (``importlib.metadata`` pulls in ``email``
#: and ``zipfile``; the project's venv declares no ``iter8`` entry point, so --help must not scan)
#: and JSON, which only ``-o json`` needs.
FORBIDDEN_STDLIB = ("importlib.metadata", "email", "zipfile", "json")
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
        (
            p
            for p in FORBIDDEN_PACKAGES + FORBIDDEN_STDLIB + FORBIDDEN_OWN
            if name == p or name.startswith(f"{p}.")
        ),
        None,
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


def test_the_frozen_application_finds_every_builtin_plugin_without_scanning(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    scan = importlib.metadata.entry_points

    def no_iter8_scan(**params: str) -> importlib.metadata.EntryPoints:
        # Dependencies may scan their own groups (pydantic looks for its plugins).
        assert params.get("group") != "iter8", "the frozen application scanned the iter8 entry points"
        return scan(**params)

    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(importlib.metadata, "entry_points", no_iter8_scan)
    (tmp_path / "iter8_startup_probe.py").write_text(
        "from kubectl_iter8 import hookimpl\n\n@hookimpl\ndef iter8_register_commands(cli):\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    # A distribution that declares an iter8 entry point: outside a frozen application, a scan.
    _dist(tmp_path / "site", "third_party", "[iter8]\nthird = iter8_startup_probe\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    assert may_declare_entry_points("iter8")
    hooks = Iter8Hooks(env={"ITER8_PLUGINS": "iter8_startup_probe"})
    names = {info.name: info.source for info in hooks.plugin_infos()}
    assert names == {
        "kubectl_iter8.commands": "builtin",
        "kubectl_iter8.builtin_tasks": "builtin",
        "kubectl_iter8.plugins": "builtin",
        "kubectl_iter8.controller": "builtin",
        "iter8_startup_probe": "ITER8_PLUGINS",
    }
    assert {"http", "grpc", "assess", "custom-metrics", "run", "ready", "notify"} <= set(hooks.tasks.names())
    assert set(hooks.routers.names()) == {"istio", "gateway-api", "kserve-modelmesh", "template"}


def _dist(site: Path, name: str, entry_points: str | None) -> None:
    info = site / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    if entry_points is not None:
        (info / "entry_points.txt").write_text(entry_points)


def _scan_finds(group: str) -> bool:
    return bool(importlib.metadata.entry_points(group=group))


@pytest.mark.parametrize(
    ("entry_points", "declares"),
    [
        ("[iter8]\ngreet = iter8_greet\n", True),
        ("[console_scripts]\nkubectl-iter8 = kubectl_iter8.cli:run\n\n[iter8]\nx = y\n", True),
        ("  [iter8]  \ngreet = iter8_greet\n", True),
        ("[console_scripts]\nkubectl-iter8 = kubectl_iter8.cli:run\n", False),
        ("[iter8.extra]\nx = y\n# [iter8] in a comment\n", False),
        (None, False),
    ],
    ids=["iter8", "among-others", "padded", "name-only-in-a-value", "other-groups", "no-entry-points"],
)
def test_the_pre_check_agrees_with_the_scan(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, entry_points: str | None, declares: bool
) -> None:
    _dist(tmp_path, "some_dist", entry_points)
    (tmp_path / "legacy.egg-info").write_text("Metadata-Version: 1.0\nName: legacy\n")  # a file
    monkeypatch.setattr(sys, "path", [str(tmp_path), str(tmp_path / "missing")])
    assert _scan_finds("iter8") is declares
    assert may_declare_entry_points("iter8") is declares


def test_what_the_pre_check_cannot_read_is_left_to_the_scan(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    archive = tmp_path / "plugins.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr(
            "zipped-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: zipped\nVersion: 1.0\n"
        )
        zipped.writestr("zipped-1.0.dist-info/entry_points.txt", "[iter8]\nzipped = zipped\n")
    monkeypatch.setattr(sys, "path", [str(archive)])
    assert _scan_finds("iter8")
    assert may_declare_entry_points("iter8")

    class ForeignFinder:
        @staticmethod
        def find_distributions(*_: object) -> list[importlib.metadata.Distribution]:
            return []

    monkeypatch.setattr(sys, "path", [])
    assert not may_declare_entry_points("iter8")
    monkeypatch.setattr(sys, "meta_path", [*sys.meta_path, ForeignFinder])
    assert may_declare_entry_points("iter8")
    assert importlib.machinery.PathFinder in sys.meta_path
