"""The Krew archive: built by the one command, valid by Krew's rules, and working with no Python around.

This machine's archive (linux-amd64 here and in CI) is built once per session
(``scripts/build_krew.py`` into a temporary folder and a copy of the manifest), unpacked the way
Krew installs a plugin (its tar rules, the manifest's ``files`` moves, the ``bin`` symlink), and
run with a PATH of that symlink's folder and ``/usr/bin`` without any ``python*``, a fresh HOME
and TMPDIR: ``version``, ``--help`` (also through kubectl), an http load with ``workers`` against
the archive's own sample app judged by ``assess`` on confidence bounds (scipy), a grpc load whose
``.proto`` is compiled at run time, the HTML report, and ``controller serve`` with its A/B/n service
against the fake API server. Krew's manifest rules are checked on the committed manifest and the
built one.
"""

from __future__ import annotations

import hashlib
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

import grpc_fixtures
import pytest
import yaml

from kubectl_iter8.testing import FakeKube
from kubectl_iter8.version import __version__

REPO = Path(__file__).resolve().parent.parent
BUILD_SCRIPT = REPO / "scripts" / "build_krew.py"
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
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump(experiment))
    run_dir = tmp_path / "run"
    launched = iter8(user, "launch", "--local", "-f", str(tmp_path / "exp.yaml"), "--run-dir", str(run_dir))
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
        (tmp_path / "exp.yaml").write_text(yaml.safe_dump(experiment))
        run_dir = tmp_path / "run"
        launched = iter8(
            user, "launch", "--local", "-f", str(tmp_path / "exp.yaml"), "--run-dir", str(run_dir)
        )
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
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump(experiment))
    launched = iter8(
        user, "launch", "--local", "-f", str(tmp_path / "exp.yaml"), "--run-dir", str(tmp_path / "run")
    )
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
