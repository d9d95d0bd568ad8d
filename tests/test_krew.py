"""The Krew archive: built by the one command, valid by Krew's rules, and working with no Python around.

This machine's archive (linux-amd64 here and in CI) is built once per session
(``scripts/build_krew.py`` into a temporary folder and a copy of the manifest), unpacked the way
Krew installs a plugin (its tar rules, the manifest's ``files`` moves, the ``bin`` symlink), and
run with a PATH of that symlink's folder and ``/usr/bin`` without any ``python*``, a fresh HOME
and TMPDIR: ``version``, ``--help`` (also through kubectl, and prerendered at build time: the same
bytes as click's at any width), an http load with ``workers`` against
the archive's own sample app judged by ``assess`` on confidence bounds (scipy), a grpc load whose
``.proto`` is compiled at run time, the HTML report, ``controller serve`` with its A/B/n service
against the fake API server, ``custom-metrics`` from a stub Prometheus judged by ``assess``, and
``launch -g`` on the real control plane (the ``real-kube`` tier), whose Job runs the archive too.
Krew's manifest rules are checked on the committed manifest and the built one. Fast unit tests
cover the entry point's choice of prerendered text (click's help width, the settings that turn it
off) and the build's dropping of duplicate vendored libraries.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import click
import grpc_fixtures
import pytest
import yaml
from prom_fixtures import Reply, Request, Server

from kubectl_iter8.cli import make_cli
from kubectl_iter8.commands.common import CLIState
from kubectl_iter8.host import Iter8Hooks
from kubectl_iter8.testing import FakeKube
from kubectl_iter8.testing.real import RealKube
from kubectl_iter8.version import __version__

REPO = Path(__file__).resolve().parent.parent
BUILD_SCRIPT = REPO / "scripts" / "build_krew.py"
ENTRY = REPO / "packaging" / "entry.py"
MANIFEST = REPO / "krew-manifest.yaml"
#: This machine's Krew platform: the archive built and run here (the release workflow runs this
#: file on each platform's runner; here and in CI that is linux-amd64).
MACHINES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
TARGET = {"os": sys.platform, "arch": MACHINES.get(platform.machine().lower(), platform.machine())}
ARCHIVE = f"kubectl-iter8-v{__version__}-{TARGET['os']}-{TARGET['arch']}.tar.gz"
#: The issue's limits (decimal megabytes).
ARCHIVE_LIMIT = 80_000_000
UNPACKED_LIMIT = 250_000_000

# --- Krew's rules (sigs.k8s.io/krew: internal/index/validation, cmd/validate-krew-manifest) ----

SAFE_NAME = re.compile(r"^[\w-]+$")
WINDOWS_FORBIDDEN = {
    "CON",
    "PRN",
    "AUX",
    "NUL",
    *(f"COM{i}" for i in range(1, 10)),
    *(f"LPT{i}" for i in range(1, 10)),
}
SHA256 = re.compile(r"^[a-f0-9]{64}$")
SEMVER = re.compile(r"^v(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")
KREW_PLATFORMS = [
    (os_, arch)
    for os_, arches in {
        "windows": ["386", "amd64", "arm64"],
        "linux": ["386", "amd64", "arm", "arm64", "ppc64le"],
        "darwin": ["386", "amd64", "arm64"],
    }.items()
    for arch in arches
]


def krew_problems(manifest: Any) -> list[str]:
    """What Krew's validation (``ValidatePlugin`` and validate-krew-manifest) refuses in ``manifest``."""
    problems: list[str] = []
    if not isinstance(manifest, dict):
        return ["not a mapping"]
    if manifest.get("apiVersion") != "krew.googlecontainertools.github.com/v1alpha2":
        problems.append(f"apiVersion {manifest.get('apiVersion')!r}")
    if manifest.get("kind") != "Plugin":
        problems.append(f"kind {manifest.get('kind')!r}")
    name = str((manifest.get("metadata") or {}).get("name", ""))
    if not SAFE_NAME.match(name) or name.upper() in WINDOWS_FORBIDDEN:
        problems.append(f"plugin name {name!r}")
    spec = manifest.get("spec") or {}
    short = str(spec.get("shortDescription") or "")
    if not short or "\n" in short or "\r" in short:
        problems.append("shortDescription must be one non-empty line")
    if not SEMVER.match(str(spec.get("version", ""))):
        problems.append(f"version {spec.get('version')!r} is not v-prefixed semver")
    platforms = spec.get("platforms") or []
    if not platforms:
        problems.append("no platforms")
    selected: dict[tuple[str, str], int] = {}
    for i, entry in enumerate(platforms):
        where = f"platforms[{i}]"
        if not entry.get("uri"):
            problems.append(f"{where}: no uri")
        if not SHA256.match(str(entry.get("sha256", ""))):
            problems.append(f"{where}: sha256 {entry.get('sha256')!r}")
        if not entry.get("bin"):
            problems.append(f"{where}: no bin")
        files = entry.get("files")
        if files is not None:
            if not files:
                problems.append(f"{where}: files is empty")
            for op in files:
                if not op.get("from") or not op.get("to"):
                    problems.append(f"{where}: a files entry without from or to")
                elif os.path.normpath(op["to"]) != op["to"]:
                    problems.append(f"{where}: files to {op['to']!r} is not a clean path")
        labels = (entry.get("selector") or {}).get("matchLabels") or {}
        if not labels or set(labels) - {"os", "arch"}:
            problems.append(f"{where}: selector {labels!r}")
            continue
        matched = [
            p for p in KREW_PLATFORMS if all({"os": p[0], "arch": p[1]}[k] == v for k, v in labels.items())
        ]
        if not matched:
            problems.append(f"{where}: selector {labels!r} matches no platform Krew supports")
        for pair in matched:
            if pair in selected:
                problems.append(f"{where}: selector overlaps platforms[{selected[pair]}] on {pair}")
            selected[pair] = i
    return problems


def platform_entry(manifest: dict[str, Any]) -> dict[str, Any]:
    entries = [p for p in manifest["spec"]["platforms"] if p["selector"]["matchLabels"] == TARGET]
    assert len(entries) == 1, manifest["spec"]["platforms"]
    return entries[0]


def test_committed_manifest_passes_krews_rules() -> None:
    manifest = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    assert krew_problems(manifest) == []
    assert manifest["metadata"]["name"] == "iter8"
    linux = [
        p
        for p in manifest["spec"]["platforms"]
        if p["selector"]["matchLabels"] == {"os": "linux", "arch": "amd64"}
    ]
    assert len(linux) == 1
    entry = linux[0]
    version = manifest["spec"]["version"]
    assert entry["uri"].endswith(f"/{version}/kubectl-iter8-{version}-linux-amd64.tar.gz")
    assert entry["bin"] == "kubectl-iter8"
    assert entry["files"] == [{"from": n, "to": "."} for n in ("kubectl-iter8", "_internal", "LICENSE")]


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda m: m["spec"].update(version="0.1.0"), "not v-prefixed semver"),
        (lambda m: m["metadata"].update(name="iter 8"), "plugin name"),
        (lambda m: m["spec"].update(shortDescription="two\nlines"), "one non-empty line"),
        (lambda m: m["spec"]["platforms"][0].update(sha256="ABC"), "sha256 'ABC'"),
        (lambda m: m["spec"]["platforms"][0].pop("bin"), "no bin"),
        (lambda m: m["spec"]["platforms"][0].update(files=[]), "files is empty"),
        (
            lambda m: m["spec"]["platforms"][0].update(files=[{"from": "x", "to": "a/../b"}]),
            "not a clean path",
        ),
        (lambda m: m["spec"]["platforms"][0]["selector"]["matchLabels"].update(distro="x"), "selector"),
        (lambda m: m["spec"]["platforms"].append(m["spec"]["platforms"][0]), "overlaps"),
        (
            lambda m: m["spec"]["platforms"][0]["selector"].update(matchLabels={"os": "plan9"}),
            "matches no platform",
        ),
    ],
)
def test_krews_rules_refuse_broken_manifests(change: Any, problem: str) -> None:
    manifest = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    change(manifest)
    assert any(problem in p for p in krew_problems(manifest)), krew_problems(manifest)


# --- the frozen entry point's prerendered output, and the build's library clean-up ------------


def load(path: Path) -> Any:
    """A module from a file that is not part of a package (the entry point, the build script)."""
    name = f"krew_test_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def entry() -> Any:
    return load(ENTRY)


@pytest.mark.parametrize(
    "columns", [None, "1", "51", "52", "80", "109", "110", "111", "1000", "0", "-3", "wide", " 90 "]
)
def test_help_width_is_clicks(entry: Any, columns: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The prerendered help is picked by the width click's formatter would use (shutil's columns)."""
    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    root = make_cli(Iter8Hooks(env={}), CLIState())
    max_width = root.context_settings["max_content_width"]
    assert max_width == entry.MAX_CONTENT_WIDTH
    assert entry.help_width(os.environ) == click.formatting.HelpFormatter(max_width=max_width).width


def test_prerendered_output_only_where_nothing_else_changes_it(entry: Any) -> None:
    table = {
        "help": {78: "help at 78\n", 108: "help at 108\n"},
        "version": "kubectl-iter8 v9 (python 3, linux/m)\n",
        "version --short": "v9\n",
        "machine": os.uname().machine,
    }
    wide = {"COLUMNS": "200"}
    assert entry.prerendered_output(["--help"], {"COLUMNS": "80"}, table) == "help at 78\n"
    assert entry.prerendered_output(["-h"], wide, table) == "help at 108\n"
    assert entry.prerendered_output(["version", "--short"], {}, table) == "v9\n"
    assert entry.prerendered_output(["version"], {}, table) == table["version"]
    # Settings that change the commands or the output, and click's completion mode: the CLI renders.
    for env in (
        {"ITER8_PLUGINS": "x"},
        {"ITER8_DISABLE_PLUGINS": "x"},
        {"_KUBECTL ITER8_COMPLETE": "bash_source"},
    ):
        assert entry.prerendered_output(["--help"], {**wide, **env}, table) is None
    # Other arguments, a width not rendered, another machine's `version`, a broken table.
    for args in (
        ["--help", "--debug"],
        ["version --short"],
        ["version", "-o", "json"],
        [],
        ["launch", "--help"],
    ):
        assert entry.prerendered_output(args, wide, table) is None
    assert entry.prerendered_output(["--help"], {"COLUMNS": "60"}, table) is None
    assert entry.prerendered_output(["version"], {}, {**table, "machine": "pdp11"}) is None
    assert entry.prerendered_output(["--help"], wide, {"help": ["not", "a", "mapping"]}) is None


def test_duplicate_vendored_libraries_are_dropped(tmp_path: Path) -> None:
    if sys.platform != "linux":
        pytest.skip("the copies are dropped on Linux only")
    build_krew = load(BUILD_SCRIPT)
    internal = tmp_path / "_internal"
    (internal / "numpy.libs").mkdir(parents=True)
    (internal / "scipy.libs").mkdir()
    (internal / "numpy.libs" / "libgfortran-1.so.5").write_bytes(b"\x7fELF same")
    (internal / "scipy.libs" / "libgfortran-1.so.5").write_bytes(b"\x7fELF same")
    (internal / "numpy.libs" / "libquadmath-2.so.0").write_bytes(b"\x7fELF one")
    (internal / "scipy.libs" / "libquadmath-2.so.0").write_bytes(b"\x7fELF two")  # same name, other bytes
    (internal / "scipy.libs" / "libopenblas-3.so").write_bytes(b"\x7fELF only here")
    dropped = build_krew.drop_duplicate_libraries(tmp_path)
    assert dropped == [("_internal/scipy.libs/libgfortran-1.so.5", len(b"\x7fELF same"))]
    assert sorted(p.name for p in (internal / "scipy.libs").iterdir()) == [
        "libopenblas-3.so",
        "libquadmath-2.so.0",
    ]
    assert sorted(p.name for p in (internal / "numpy.libs").iterdir()) == [
        "libgfortran-1.so.5",
        "libquadmath-2.so.0",
    ]


# --- the build ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    if sys.platform not in {"linux", "darwin"} or TARGET["arch"] not in {"amd64", "arm64"}:
        pytest.skip("builds and runs this machine's archive: linux or darwin, amd64 or arm64")
    tmp = tmp_path_factory.mktemp("krew")
    manifest = tmp / "krew-manifest.yaml"
    shutil.copyfile(MANIFEST, manifest)
    out = tmp / "dist"
    started = time.monotonic()
    # No smoke test in the build: the tests below run the archive more thoroughly.
    build = [sys.executable, BUILD_SCRIPT, "--no-smoke-test", "--out", out, "--work", tmp / "work"]
    proc = subprocess.run(
        [*build, "--manifest", manifest], capture_output=True, text=True, timeout=1200, check=False
    )
    assert proc.returncode == 0, f"build failed:\n{proc.stdout}\n{proc.stderr}"
    print(f"\nbuilt the Krew archive in {time.monotonic() - started:.0f} s:\n{proc.stdout}")
    yield {"tmp": tmp, "out": out, "manifest": yaml.safe_load(manifest.read_text(encoding="utf-8"))}
    # The build's work folder, the archive and its unpacked copy come to over 1 GB.
    shutil.rmtree(tmp, ignore_errors=True)


@pytest.mark.slow
def test_manifest_names_the_built_archive(built: dict[str, Any]) -> None:
    manifest = built["manifest"]
    assert krew_problems(manifest) == []
    assert manifest["spec"]["version"] == f"v{__version__}"
    assert "caveats" not in manifest["spec"]
    entry = platform_entry(manifest)
    assert entry["uri"].endswith(f"/v{__version__}/{ARCHIVE}")
    archive = built["out"] / ARCHIVE
    assert entry["sha256"] == hashlib.sha256(archive.read_bytes()).hexdigest()
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
    # Krew unpacks regular files and folders only, and refuses names with '..' or a leading '/'.
    assert all(m.isfile() or m.isdir() for m in members), [
        m.name for m in members if not (m.isfile() or m.isdir())
    ]
    assert not [m.name for m in members if ".." in m.name or m.name.startswith("/")]
    top = {PurePosixPath(m.name).parts[0] for m in members}
    assert top == {op["from"] for op in entry["files"]} == {"kubectl-iter8", "_internal", "LICENSE"}
    assert archive.stat().st_size <= ARCHIVE_LIMIT
    assert sum(m.size for m in members if m.isfile()) <= UNPACKED_LIMIT


@pytest.mark.slow
def test_the_archive_leaves_out_the_test_kit(built: dict[str, Any]) -> None:
    """kubectl_iter8.testing (the fake API server, the fixtures) and pytest are not for users' machines."""
    from PyInstaller.archive.readers import CArchiveReader

    bundle = built["tmp"] / "work" / "dist" / "kubectl-iter8"
    pyz = CArchiveReader(str(bundle / "kubectl-iter8")).open_embedded_archive("PYZ.pyz")
    modules = set(pyz.toc)
    assert {
        "kubectl_iter8.cli",
        "kubectl_iter8.builtin_tasks.http.workers",
        "kubectl_iter8.plugins.istio",
    } <= modules
    assert not {m for m in modules if m.startswith(("kubectl_iter8.testing", "pytest", "_pytest", "aiohttp"))}
    assert not list((bundle / "_internal").glob("kubectl_iter8/testing"))
    # The package's data files: the report template and the custom-metrics provider templates.
    assert (bundle / "_internal" / "kubectl_iter8" / "templates").is_dir()
    assert list(
        (bundle / "_internal" / "kubectl_iter8" / "builtin_tasks" / "custom_metrics" / "providers").glob(
            "*.yaml"
        )
    )


# --- installed as Krew does --------------------------------------------------------------------


def krew_install(archive: Path, entry: dict[str, Any], root: Path) -> Path:
    """Install like ``kubectl krew install``: unpack, move the ``files``, link ``bin``; returns the bin folder."""
    download, store, bin_dir = root / "download", root / "store" / "iter8" / f"v{__version__}", root / "bin"
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            assert ".." not in member.name, member.name
            assert not member.name.startswith(("/", "\\")), member.name
            path = download / member.name
            if member.isdir():
                path.mkdir(parents=True, exist_ok=True)
            elif member.isfile():
                path.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                assert source is not None
                path.write_bytes(source.read())
                path.chmod(member.mode & 0o777)
            else:
                raise AssertionError(f"Krew cannot unpack {member.name} (type {member.type!r})")
    store.mkdir(parents=True)
    for op in entry["files"]:
        source = download / op["from"]
        matches = [source] if source.exists() else sorted(download.glob(op["from"]))
        assert matches, f"no file in the archive matches {op['from']!r}"
        for match in matches:
            match.rename(store / (match.name if op["to"] == "." else op["to"]))
    bin_dir.mkdir()
    (bin_dir / "kubectl-iter8").symlink_to(store / entry["bin"])
    return bin_dir


def no_python_bin(dest: Path) -> Path:
    """Symlinks to every entry of /usr/bin but the python* ones."""
    dest.mkdir()
    for entry in sorted(Path("/usr/bin").iterdir()):
        if not entry.name.startswith("python"):
            (dest / entry.name).symlink_to(entry)
    return dest


@pytest.fixture(scope="session")
def user(built: dict[str, Any]) -> dict[str, str]:
    """The environment of a user with the plugin installed by Krew and no Python anywhere."""
    root = built["tmp"] / "krew"
    entry = platform_entry(built["manifest"])
    bin_dir = krew_install(built["out"] / ARCHIVE, entry, root)
    home, tmpdir = built["tmp"] / "home", built["tmp"] / "tmpdir"
    home.mkdir()
    tmpdir.mkdir()
    usr_bin = no_python_bin(built["tmp"] / "usr-bin")
    return {
        "PATH": f"{bin_dir}{os.pathsep}{usr_bin}",
        "HOME": str(home),
        "TMPDIR": str(tmpdir),
        "LANG": "C.UTF-8",
    }


def iter8(
    env: dict[str, str], *args: str, cwd: Path | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("kubectl-iter8", path=env["PATH"])
    assert binary is not None
    return subprocess.run(
        [binary, *args],
        env=env,
        cwd=cwd or env["HOME"],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def launch_local(
    env: dict[str, str], tmp_path: Path, experiment: dict[str, Any]
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """``launch --local`` of ``experiment`` (written to ``exp.yaml``) into ``tmp_path/run``."""
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump(experiment))
    run_dir = tmp_path / "run"
    return iter8(
        env, "launch", "--local", "-f", str(tmp_path / "exp.yaml"), "--run-dir", str(run_dir)
    ), run_dir


@pytest.mark.slow
def test_there_is_no_python_on_the_users_path(user: dict[str, str]) -> None:
    probe = subprocess.run(
        ["sh", "-c", "command -v python3 || command -v python || echo none"],
        env=user,
        capture_output=True,
        text=True,
        check=False,
    )
    assert probe.stdout.strip() == "none"


@pytest.mark.slow
def test_version_and_help_run_in_place(user: dict[str, str], tmp_path: Path) -> None:
    # A HOME and TMPDIR of its own, so that what other tests wrote cannot hide what this one looks for.
    (tmp_path / "home").mkdir()
    (tmp_path / "tmp").mkdir()
    user = {**user, "HOME": str(tmp_path / "home"), "TMPDIR": str(tmp_path / "tmp")}
    first = iter8(user, "version")
    assert first.returncode == 0, first.stderr
    assert f"v{__version__}" in first.stdout
    short = iter8(user, "version", "--short")
    assert short.stdout.strip() == f"v{__version__}"
    help_ = iter8(user, "--help")
    assert help_.returncode == 0, help_.stderr
    for command in ("launch", "assert", "report", "sample-app", "controller", "plugins"):
        assert re.search(rf"^\s+{command}\s", help_.stdout, re.M), help_.stdout
    # One-folder: nothing is unpacked anywhere on the first runs (no HOME cache, no temp folder).
    assert not list(Path(user["HOME"]).iterdir())
    assert not list(Path(user["TMPDIR"]).iterdir())


@pytest.mark.slow
def test_prerendered_output_is_the_clis(user: dict[str, str]) -> None:
    """``--help`` and ``version`` print text rendered at build time: byte for byte what click prints.

    Any ``ITER8_*`` variable makes the entry point leave the output to the CLI, which is how both
    are run here. The prerendered path must also be the faster one (it imports neither click nor
    the plugins): compared in interleaved runs, so that the machine's load hits both alike.
    """
    binary = shutil.which("kubectl-iter8", path=user["PATH"])
    assert binary is not None
    assert (Path(binary).resolve().parent / "_internal" / "kubectl_iter8" / "prerendered.marshal").is_file()

    def run(args: list[str], env: dict[str, str]) -> tuple[int, bytes, bytes, float]:
        started = time.perf_counter()
        proc = subprocess.run([binary, *args], env=env, capture_output=True, timeout=60, check=False)
        return proc.returncode, proc.stdout, proc.stderr, time.perf_counter() - started

    click_env = {**user, "ITER8_NO_PRERENDERED": "1"}
    for args in (["--help"], ["-h"], ["version"], ["version", "--short"]):
        for columns in (None, "40", "77", "100", "300"):
            extra = {} if columns is None else {"COLUMNS": columns}
            fast, slow = run(args, {**user, **extra}), run(args, {**click_env, **extra})
            assert fast[:3] == slow[:3], (args, columns)
            assert fast[0] == 0
    assert b"Usage: kubectl iter8" in run(["--help"], user)[1]
    pairs = [(run(["--help"], user)[3], run(["--help"], click_env)[3]) for _ in range(7)]
    fast_median, slow_median = (sorted(times)[3] for times in zip(*pairs, strict=True))
    assert fast_median < slow_median, pairs


@pytest.mark.slow
def test_kubectl_finds_the_plugin(user: dict[str, str]) -> None:
    if shutil.which("kubectl", path=user["PATH"]) is None:
        pytest.skip("no kubectl in /usr/bin")
    result = subprocess.run(
        ["kubectl", "iter8", "version", "--short"],
        env=user,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"v{__version__}"


@pytest.mark.slow
def test_builtin_plugins_load_in_the_archive(user: dict[str, str]) -> None:
    result = iter8(user, "plugins")
    assert result.returncode == 0, result.stderr
    for name in (
        "kubectl_iter8.builtin_tasks",
        "kubectl_iter8.plugins",
        "kubectl_iter8.controller",
        "http",
        "grpc",
        "assess",
    ):
        assert name in result.stdout
    assert "failed" not in result.stdout.lower()


def wait_for_port(port: int, process: subprocess.Popen[str], deadline: float = 30) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if process.poll() is not None:
            raise AssertionError(f"the sample app exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port} after {deadline} s")


@pytest.fixture
def sample_app(user: dict[str, str]) -> Iterator[int]:
    """The archive's own ``sample-app`` on a free port of 127.0.0.1."""
    port = grpc_fixtures.free_port()
    binary = shutil.which("kubectl-iter8", path=user["PATH"])
    assert binary is not None
    process = subprocess.Popen(
        [binary, "sample-app", "--port", str(port)],
        env=user,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_port(port, process)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()


def judged_on_bounds(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        v for item in report["slos"]["items"] for v in item.get("verdicts") or [] if v["basis"] == "bound"
    ]


@pytest.mark.slow
def test_http_load_with_workers_and_assess_on_bounds(
    user: dict[str, str], sample_app: int, tmp_path: Path
) -> None:
    """Two worker processes (multiprocessing spawn from the frozen executable), scipy's bounds, the HTML report."""
    experiment = {
        "metadata": {"name": "krew-http"},
        "spec": [
            {
                "task": "http",
                "with": {
                    "url": f"http://127.0.0.1:{sample_app}/get",
                    "numRequests": 60,
                    "connections": 2,
                    "workers": 2,
                },
            },
            {
                "task": "assess",
                "with": {
                    "judgeOn": "bound",
                    "SLOs": {
                        "upper": [
                            {"metric": "http/latency-mean", "limit": 5000},
                            {"metric": "http/latency-p95", "limit": 5000},
                            {"metric": "http/error-rate", "limit": 0.5},
                        ]
                    },
                },
            },
        ],
    }
    launched, run_dir = launch_local(user, tmp_path, experiment)
    assert launched.returncode == 0, launched.stdout + launched.stderr
    checked = iter8(user, "assert", "--local", "--run-dir", str(run_dir), "-c", "completed,nofailure,slos")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    report = json.loads(iter8(user, "report", "--local", "--run-dir", str(run_dir), "-o", "json").stdout)
    metrics = {m["name"]: m["values"] for m in report["metrics"]}
    assert metrics["http/request-count"] == [60]
    methods = {v["method"] for v in judged_on_bounds(report)}
    assert {"student t", "order statistic (binomial ranks)", "clopper-pearson"} <= methods, report["slos"]
    html = tmp_path / "report.html"
    written = iter8(user, "report", "--local", "--run-dir", str(run_dir), "-o", "html", "-O", str(html))
    assert written.returncode == 0, written.stderr
    page = html.read_text(encoding="utf-8")
    assert page.lstrip().lower().startswith("<!doctype html")
    assert "http/latency-mean" in page


@pytest.mark.slow
def test_commands_the_run_task_starts_get_the_users_library_path(
    user: dict[str, str], tmp_path: Path
) -> None:
    """The bootloader's LD_LIBRARY_PATH (the bundle's folder) is for the plugin, not for kubectl or bash."""
    experiment = {
        "metadata": {"name": "krew-run"},
        "spec": [
            {
                "task": "run",
                "with": {
                    "cmd": [
                        "/bin/sh",
                        "-c",
                        f'echo "LD_LIBRARY_PATH=${{LD_LIBRARY_PATH-unset}}" > {tmp_path / "ld.txt"}',
                    ]
                },
            }
        ],
    }
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump(experiment))
    run_dir = tmp_path / "run"
    for env in (user, {**user, "LD_LIBRARY_PATH": "/opt/mine"}):
        launched = iter8(
            env, "launch", "--local", "-f", str(tmp_path / "exp.yaml"), "--run-dir", str(run_dir)
        )
        assert launched.returncode == 0, launched.stdout + launched.stderr
        expected = env.get("LD_LIBRARY_PATH", "unset")
        assert (tmp_path / "ld.txt").read_text().strip() == f"LD_LIBRARY_PATH={expected}"


@pytest.mark.slow
def test_grpc_load_with_a_proto_compiled_at_run_time(user: dict[str, str], tmp_path: Path) -> None:
    """The grpc task runs protoc through the frozen executable (``-m grpc_tools.protoc``)."""
    stubs = grpc_fixtures.compile_stubs(tmp_path / "stubs")  # the test server's, made with this venv
    with grpc_fixtures.running(stubs) as server:
        experiment = {
            "metadata": {"name": "krew-grpc"},
            "spec": [
                {
                    "task": "grpc",
                    "with": {
                        "host": server.host,
                        "call": "iter8.test.Echo/Unary",
                        "proto": str(grpc_fixtures.ECHO_PROTO),
                        "importPaths": [str(grpc_fixtures.PROTOS)],
                        "data": {"name": "user-{{.RequestNumber}}"},
                        "total": 30,
                        "concurrency": 2,
                    },
                },
                {"task": "assess", "with": {"SLOs": {"upper": [{"metric": "grpc/error-rate", "limit": 0}]}}},
            ],
        }
        launched, run_dir = launch_local(user, tmp_path, experiment)
        assert launched.returncode == 0, launched.stdout + launched.stderr
    checked = iter8(user, "assert", "--local", "--run-dir", str(run_dir), "-c", "completed,nofailure,slos")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    report = json.loads(iter8(user, "report", "--local", "--run-dir", str(run_dir), "-o", "json").stdout)
    metrics = {m["name"]: m["values"] for m in report["metrics"]}
    assert metrics["grpc/request-count"] == [30]
    assert metrics["grpc/error-count"] == [0]


@pytest.mark.slow
def test_a_proto_that_does_not_compile_is_one_error_line(user: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.proto"
    bad.write_text('syntax = "proto3";\nmessage {\n')
    experiment = {
        "metadata": {"name": "krew-bad-proto"},
        "spec": [
            {"task": "grpc", "with": {"host": "127.0.0.1:1", "call": "x.Y/Z", "proto": str(bad), "total": 1}}
        ],
    }
    launched, _ = launch_local(user, tmp_path, experiment)
    output = launched.stdout + launched.stderr
    assert launched.returncode != 0
    assert re.search(r"does not compile: \S*bad\.proto:2:9: Expected message name", output), output
    assert "Traceback" not in output


def http_status(port: int, path: str) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


@pytest.mark.slow
def test_controller_serves_the_abn_service(user: dict[str, str], fake_kube: FakeKube, tmp_path: Path) -> None:
    """``controller serve`` from the archive, against the fake API server: ready, and A/B/n answers over gRPC."""
    import grpc

    from kubectl_iter8.sdk import Client

    http_port, abn_port = grpc_fixtures.free_port(), grpc_fixtures.free_port()
    binary = shutil.which("kubectl-iter8", path=user["PATH"])
    assert binary is not None
    serve = [binary, "controller", "serve", "--namespace", "default", "--http-port", str(http_port)]
    serve += ["--abn-port", str(abn_port), "--abn-store", f"sqlite:{tmp_path / 'abn.sqlite'}"]
    log = tmp_path / "controller.log"
    with log.open("w") as stderr:
        process = subprocess.Popen(
            serve, env={**user, **fake_kube.env()}, stdout=subprocess.DEVNULL, stderr=stderr
        )
        try:
            end = time.monotonic() + 30
            while http_status(http_port, "/readyz") != 200:
                assert process.poll() is None, log.read_text()
                assert time.monotonic() < end, log.read_text()
                time.sleep(0.2)
            with Client(f"127.0.0.1:{abn_port}", timeout=5) as client:
                with pytest.raises(grpc.RpcError) as unknown:
                    client.write_metric("default/nosuch", "user-1", "sales", 1.0)
                assert unknown.value.code() == grpc.StatusCode.NOT_FOUND, unknown.value
                with pytest.raises(grpc.RpcError) as bad:
                    client.write_metric("", "user-1", "sales", 1.0)
                assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT, bad.value
        finally:
            process.send_signal(signal.SIGTERM)
            code = process.wait(15)
    assert code == 0, log.read_text()


# --- custom metrics, and an experiment in a real cluster ---------------------------------------

#: What the stub Prometheus answers, by the exact PromQL the provider template sends.
PROM_VALUES = {
    'app_requests_total{version="v1"}': "100",
    'app_requests_total{version="v2"}': "250",
    'app_latency_seconds{version="v1"}': "0.125",
    'app_latency_seconds{version="v2"}': "0.25",
}


def prometheus_answer(request: Request) -> Reply:
    """Prometheus' instant-query reply: one sample for a known query, an empty vector for any other."""
    if request.path != "/api/v1/query":
        return Reply(404, "not found")
    query = request.query.get("query", [""])[0]
    found = [{"metric": {}, "value": [1_700_000_000.0, PROM_VALUES[query]]}] if query in PROM_VALUES else []
    return Reply(200, {"status": "success", "data": {"resultType": "vector", "result": found}})


@pytest.mark.slow
def test_custom_metrics_from_a_prometheus_and_assess_on_them(user: dict[str, str], tmp_path: Path) -> None:
    """The bundled provider template (Jinja2), the HTTP query, the jq expression and assess on the values."""
    with Server(prometheus_answer) as prometheus:
        experiment = {
            "metadata": {"name": "krew-custom-metrics"},
            "spec": [
                {
                    "task": "custom-metrics",
                    "with": {
                        "templates": {"app": "prometheus"},
                        "values": {
                            "prometheusURL": prometheus.url,
                            "queries": {
                                "requests": {"query": "app_requests_total{$labels}", "type": "counter"},
                                "latency": {"query": "app_latency_seconds{$labels}", "units": "sec"},
                                "absent": "nothing_here_total{$labels}",
                            },
                        },
                        "versionValues": [{"labels": {"version": "v1"}}, {"labels": {"version": "v2"}}],
                    },
                },
                {"task": "assess", "with": {"SLOs": {"upper": [{"metric": "app/latency", "limit": 0.2}]}}},
            ],
        }
        launched, run_dir = launch_local(user, tmp_path, experiment)
        assert launched.returncode == 0, launched.stdout + launched.stderr
        asked = sorted(r.query["query"][0] for r in prometheus.requests if r.path == "/api/v1/query")
    assert asked == sorted(
        [*PROM_VALUES, 'nothing_here_total{version="v1"}', 'nothing_here_total{version="v2"}']
    )
    done = iter8(user, "assert", "--local", "--run-dir", str(run_dir), "-c", "completed,nofailure")
    assert done.returncode == 0, done.stdout + done.stderr
    # v2's latency (0.25 s) is over the limit: the SLO condition must fail, naming itself.
    slos = iter8(user, "assert", "--local", "--run-dir", str(run_dir), "-c", "slos")
    assert slos.returncode != 0
    assert "slos: not satisfied" in slos.stdout + slos.stderr
    report = json.loads(iter8(user, "report", "--local", "--run-dir", str(run_dir), "-o", "json").stdout)
    metrics = {m["name"]: m for m in report["metrics"]}
    assert metrics["app/requests"]["values"] == [100, 250]
    assert metrics["app/requests"]["type"] == "Counter"
    assert metrics["app/latency"]["values"] == [0.125, 0.25]
    assert metrics["app/latency"]["units"] == "sec"
    assert metrics["app/absent"]["values"] == [None, None]  # missing, never zero
    assert {m["metric"] for m in report["missingMetrics"]} == {"app/absent"}
    assert [item["satisfied"] for item in report["slos"]["items"]] == [[True, False]]
    text = iter8(user, "report", "--local", "--run-dir", str(run_dir))
    assert text.returncode == 0, text.stderr
    assert re.search(r"^app/requests\s+100\.00\s+250\.00\s*$", text.stdout, re.M), text.stdout
    assert re.search(r"^app/latency \(sec\)\s+0\.12\s+0\.25\s*$", text.stdout, re.M), text.stdout


@pytest.mark.slow
@pytest.mark.usefixtures("kube_control_plane")  # first: where the tier cannot run, skip before the build
def test_launch_in_a_real_cluster(
    user: dict[str, str],
    sample_app: int,
    real_kube: RealKube,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """``launch -g`` on the real control plane: the archive's kube client, manifests and RBAC.

    The node stand-in runs the Job's ``kubectl-iter8 run`` with the user's PATH, so the Job runs
    the archive too, with its ServiceAccount's token and the Role that ``launch`` made.
    """
    monkeypatch.setitem(real_kube.node.env, "PATH", user["PATH"])
    where = ["--kubeconfig", str(real_kube.kubeconfig), "-n", real_kube.namespace]
    experiment = {
        "spec": [
            {"task": "http", "with": {"url": f"http://127.0.0.1:{sample_app}/get", "numRequests": 40}},
            {
                "task": "assess",
                "with": {
                    "SLOs": {
                        "upper": [
                            {"metric": "http/latency-mean", "limit": 5000},
                            {"metric": "http/error-rate", "limit": 0},
                        ]
                    }
                },
            },
        ]
    }
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump(experiment))
    launched = iter8(user, "launch", "-f", str(tmp_path / "exp.yaml"), "-g", "krew", *where)
    assert launched.returncode == 0, launched.stdout + launched.stderr
    assert f'experiment group "krew" launched in namespace "{real_kube.namespace}"' in launched.stdout
    waited = iter8(
        user, "assert", "-g", "krew", *where, "-c", "completed", "-c", "nofailure", "-c", "slos",
        "--timeout", "90s", timeout=120,
    )  # fmt: skip
    logs = iter8(user, "log", "-g", "krew", *where)
    assert waited.returncode == 0, waited.stdout + waited.stderr + logs.stdout + logs.stderr
    assert logs.returncode == 0, logs.stderr
    assert "experiment completed: 2 of 2 tasks" in logs.stdout
    text = iter8(user, "report", "-g", "krew", *where)
    assert text.returncode == 0, text.stderr
    assert re.search(r"^status\s+completed\s*$", text.stdout, re.M), text.stdout
    assert re.search(r"^http/latency-mean \(msec\) <= 5000\s+✔\s*$", text.stdout, re.M), text.stdout
    report = json.loads(iter8(user, "report", "-g", "krew", *where, "-o", "json").stdout)
    metrics = {m["name"]: m["values"] for m in report["metrics"]}
    assert metrics["http/request-count"] == [40]
    assert metrics["http/error-count"] == [0]
    # The Job's pod ran as the group's own ServiceAccount, not as an admin.
    job = real_kube.get("jobs", "krew-1-job")
    assert job["spec"]["template"]["spec"]["serviceAccountName"] == "krew-iter8"
