"""The Krew archive: built by the one command, named by the manifest, and runnable with only python3.

Builds the linux-amd64 archive (pex resolves from PyPI; its downloads are cached under
``~/.cache/pex``), checks the manifest's sha256 against it, unpacks it, and runs the manifest's
``bin`` the way Krew's symlink would: a PATH holding nothing but ``python3``, no virtual
environment, a fresh HOME and PEX_ROOT.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubectl_iter8.version import __version__

REPO = Path(__file__).resolve().parent.parent
BUILD_SCRIPT = REPO / "scripts" / "build_krew.py"
MANIFEST = REPO / "krew-manifest.yaml"
TARGET = {"os": "linux", "arch": "amd64"}


#: Prints the interpreter under a venv's python or a pyenv shim: the base installation's binary.
WHICH_PYTHON = """
import os, sys
name = f"python{sys.version_info[0]}.{sys.version_info[1]}"
print(os.path.realpath(os.path.join(sys.base_prefix, "bin", name)))
"""


def real_python(executable: str) -> Path:
    """The interpreter a user would have, behind ``executable`` (found through sys.base_prefix)."""
    out = subprocess.run(
        [executable, "-c", WHICH_PYTHON], capture_output=True, text=True, check=True, timeout=60
    )
    python = Path(out.stdout.strip())
    assert python.is_file(), python
    return python


def clean_env(tmp: Path, python: Path, pex_root: Path) -> dict[str, str]:
    """Only python3 on the PATH; no VIRTUAL_ENV, PYTHONPATH or PEX_* from the caller."""
    bin_dir = tmp / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python3").symlink_to(python)
    home = tmp / "home"
    home.mkdir()
    return {"PATH": str(bin_dir), "HOME": str(home), "PEX_ROOT": str(pex_root), "LANG": "C.UTF-8"}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    if sys.platform != "linux" or platform.machine().lower() not in {"x86_64", "amd64"}:
        pytest.skip("runs the linux-amd64 archive, so it needs a linux x86_64 machine")
    tmp = tmp_path_factory.mktemp("krew")
    manifest = tmp / "krew-manifest.yaml"
    shutil.copyfile(MANIFEST, manifest)
    out = tmp / "dist"
    # No smoke test in the build: the tests below run the archive more thoroughly.
    build = [sys.executable, BUILD_SCRIPT, "--platform", "linux-amd64", "--no-smoke-test"]
    proc = subprocess.run(
        [*build, "--out", out, "--manifest", manifest],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, f"build failed:\n{proc.stdout}\n{proc.stderr}"
    assert "linux-amd64: wrote" in proc.stdout
    yield {
        "tmp": tmp,
        "out": out,
        "manifest": yaml.safe_load(manifest.read_text(encoding="utf-8")),
        # One fresh PEX_ROOT for every run here, as one user's ~/.cache/pex would be.
        "pex_root": tmp / "pex_root",
    }
    # The archive, its unpacked copy and the PEX_ROOT come to over 1 GB: not for pytest to keep.
    shutil.rmtree(tmp, ignore_errors=True)


def platform_entry(manifest: dict[str, Any]) -> dict[str, Any]:
    entries = [p for p in manifest["spec"]["platforms"] if p["selector"]["matchLabels"] == TARGET]
    assert len(entries) == 1, manifest["spec"]["platforms"]
    return entries[0]


def test_committed_manifest_is_a_krew_plugin() -> None:
    manifest = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    assert manifest["apiVersion"] == "krew.googlecontainertools.github.com/v1alpha2"
    assert manifest["kind"] == "Plugin"
    assert manifest["metadata"]["name"] == "iter8"
    spec = manifest["spec"]
    for key in ("version", "homepage", "shortDescription", "description", "platforms"):
        assert spec.get(key), key
    assert spec["version"].startswith("v")
    for entry in spec["platforms"]:
        assert set(entry["selector"]["matchLabels"]) == {"os", "arch"}
        assert entry["bin"] == "kubectl-iter8"
        assert len(entry["sha256"]) == 64
        assert int(entry["sha256"], 16) >= 0
        labels = entry["selector"]["matchLabels"]
        assert entry["uri"].endswith(f"{spec['version']}-{labels['os']}-{labels['arch']}.tar.gz")


@pytest.mark.slow
def test_manifest_names_the_built_archive(built: dict[str, Any]) -> None:
    manifest = built["manifest"]
    assert manifest["apiVersion"] == "krew.googlecontainertools.github.com/v1alpha2"
    assert manifest["kind"] == "Plugin"
    assert manifest["spec"]["version"] == f"v{__version__}"
    entry = platform_entry(manifest)
    archive_name = f"kubectl-iter8-v{__version__}-linux-amd64.tar.gz"
    assert entry["uri"].endswith(f"/v{__version__}/{archive_name}")
    assert entry["bin"] == "kubectl-iter8"
    archive = built["out"] / archive_name
    assert entry["sha256"] == hashlib.sha256(archive.read_bytes()).hexdigest()
    with tarfile.open(archive) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert set(members) == {"kubectl-iter8", "LICENSE"}
    assert members["kubectl-iter8"].mode & 0o111
    assert {f["from"] for f in entry["files"]} == set(members)


def pex_file_names(pex: bytes) -> set[str]:
    """Every file name in a PEX, with those inside the wheels it keeps whole (``wheel.whl!name``)."""
    names: set[str] = set()
    with zipfile.ZipFile(io.BytesIO(pex)) as outer:
        for name in outer.namelist():
            names.add(name)
            if name.endswith(".whl") and not name.endswith("/"):
                with zipfile.ZipFile(io.BytesIO(outer.read(name))) as wheel:
                    names.update(f"{name}!{inner}" for inner in wheel.namelist())
    return names


@pytest.mark.slow
def test_the_archive_leaves_out_the_test_kit(built: dict[str, Any]) -> None:
    """kubectl_iter8.testing (the fake API server, the fixtures) is for tests, not for users' machines."""
    archive = built["out"] / f"kubectl-iter8-v{__version__}-linux-amd64.tar.gz"
    with tarfile.open(archive) as tar:
        binary = tar.extractfile("kubectl-iter8")
        assert binary is not None
        names = pex_file_names(binary.read())
    package = [n for n in names if "kubectl_iter8/" in n and ".dist-info/" not in n]
    assert any(n.endswith("kubectl_iter8/cli.py") for n in package), sorted(names)[:50]
    assert any(n.endswith("kubectl_iter8/plugins/istio.py") for n in package)
    assert not [n for n in package if "kubectl_iter8/testing/" in n]


@pytest.fixture(scope="module")
def unpacked(built: dict[str, Any]) -> Path:
    entry = platform_entry(built["manifest"])
    dest = built["tmp"] / "plugin"
    dest.mkdir()
    with tarfile.open(built["out"] / entry["uri"].rsplit("/", 1)[1]) as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(dest, filter="data")
        else:  # Python 3.11 before 3.11.4
            tar.extractall(dest)
    binary = dest / entry["bin"]
    assert binary.read_bytes().split(b"\n", 1)[0] == b"#!/usr/bin/env python3"
    assert os.access(binary, os.X_OK)
    return binary


def run_plugin(binary: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [binary, *args], env=env, cwd=env["HOME"], capture_output=True, text=True, timeout=180, check=False
    )


@pytest.fixture(scope="module")
def user_env(built: dict[str, Any]) -> dict[str, str]:
    """The base interpreter of this test run, as a user's only python3 (shared: one venv build)."""
    return clean_env(built["tmp"] / "user", real_python(sys.executable), built["pex_root"])


@pytest.mark.slow
def test_version_runs_with_only_python3(unpacked: Path, user_env: dict[str, str]) -> None:
    env = user_env
    first = run_plugin(unpacked, env, "version")  # first run: pex builds its venv under PEX_ROOT
    assert first.returncode == 0, first.stderr
    assert f"v{__version__}" in first.stdout
    again = run_plugin(unpacked, env, "version", "--short")
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == f"v{__version__}"


@pytest.mark.slow
def test_the_test_kit_cannot_be_imported_from_the_archive(unpacked: Path, user_env: dict[str, str]) -> None:
    env = {**user_env, "PEX_INTERPRETER": "1"}
    probe = "import importlib.util as u; print(u.find_spec('kubectl_iter8.cli') is not None, u.find_spec('kubectl_iter8.testing'))"
    result = run_plugin(unpacked, env, "-c", probe)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "None"]


@pytest.mark.slow
def test_builtin_plugins_load_inside_the_archive(unpacked: Path, user_env: dict[str, str]) -> None:
    result = run_plugin(unpacked, user_env, "plugins")
    assert result.returncode == 0, result.stderr
    assert "kubectl_iter8.builtin_tasks" in result.stdout
    assert "run" in result.stdout
    assert "assess" in result.stdout
    assert "failed" not in result.stdout.lower()


def find_python(minor: str) -> Path | None:
    """A CPython ``minor`` on this machine: on the PATH, in /usr, or beside this one (pyenv)."""
    candidates = [shutil.which(f"python{minor}"), f"/usr/bin/python{minor}", f"/usr/local/bin/python{minor}"]
    candidates += [str(p) for p in sorted(Path(sys.base_prefix).parent.glob(f"{minor}.*/bin/python{minor}"))]
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            try:
                return real_python(candidate)
            except (subprocess.CalledProcessError, AssertionError):
                continue  # a pyenv shim for a version that is not selected, say
    return None


@pytest.mark.slow
@pytest.mark.parametrize("minor", ["3.12", "3.13", "3.14"])
def test_other_pythons(built: dict[str, Any], unpacked: Path, tmp_path: Path, minor: str) -> None:
    """The archive carries wheels for every supported CPython; try those this machine has."""
    python = find_python(minor)
    if python is None:
        pytest.skip(f"no python{minor} on this machine")
    env = clean_env(tmp_path, python, built["pex_root"])
    result = run_plugin(unpacked, env, "version", "--output", "json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["version"] == f"v{__version__}"
    assert info["python"].startswith(f"{minor}.")
