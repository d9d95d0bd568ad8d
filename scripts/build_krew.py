#!/usr/bin/env python3
"""Build the Krew archives of kubectl-iter8 and point ``krew-manifest.yaml`` at them.

One command::

    python scripts/build_krew.py [--platform linux-amd64 ...] [--out dist] [--manifest PATH]

For each platform asked for (default: every platform whose wheels PyPI has, see
``DEFAULT_PLATFORMS``) it

1. builds the kubectl-iter8 wheel from a copy of the repository (once), and a copy of it without
   ``kubectl_iter8.testing`` (the fake API server and fixtures: for tests and plugin authors, who
   get them from PyPI; ``lint-imports`` checks that no runtime code imports them),
2. builds one PEX with pex: a single ``#!/usr/bin/env python3`` zipapp holding kubectl-iter8 and
   its dependencies, resolved from wheels only for CPython 3.11, 3.12, 3.13 and 3.14 on that
   platform (so the C extensions match whichever of those Pythons runs it),
3. packs it as ``kubectl-iter8`` next to ``LICENSE`` into
   ``<out>/kubectl-iter8-v<version>-<os>-<arch>.tar.gz`` (reproducible: fixed times and owners),
4. rewrites the platform's entry in the manifest (``uri``, ``sha256``, ``bin``, ``files``,
   ``selector``) and sets ``spec.version``.

The host then needs only ``python3`` (CPython 3.11 to 3.14) on the PATH. The first run unpacks the
PEX into a virtual environment under ``~/.cache/pex`` (``PEX_ROOT`` moves it); later runs start
from there.

Needs pex and PyYAML (the ``test`` extra) and network access to PyPI. Expected failures print one
``error:`` line and exit 1 (2 for bad arguments).
"""

from __future__ import annotations

import argparse
import copy
import gzip
import hashlib
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import tomllib
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

try:
    import yaml
except ImportError:
    sys.exit("error: PyYAML is missing here; run this with the project's venv python (.venv/bin/python)")

REPO = Path(__file__).resolve().parent.parent
NAME = "kubectl-iter8"
ENTRY_POINT = "kubectl_iter8.cli:run"
SHEBANG = "/usr/bin/env python3"
#: CPython minor versions every archive carries wheels for.
PYTHONS = ("3.11", "3.12", "3.13", "3.14")
#: The pip pex resolves with: a 2020-resolver pip that PyPI serves (pex's own "latest" pin may
#: name a release PyPI does not have). pex must list it under --pip-version (2.105 does).
PIP_VERSION = "26.2.1"
URL_TEMPLATE = "https://github.com/kubectl-iter8/kubectl-iter8/releases/download/v{version}/{archive}"
MANIFEST_HEADER = (
    "# Krew plugin manifest of kubectl-iter8 (https://krew.sigs.k8s.io/docs/developer-guide/).\n"
    "# `python scripts/build_krew.py` rewrites spec.version and the platforms it builds;\n"
    "# the sha256 values are those of the archives of the last such build.\n"
)
#: Files of the archive, in the order they are packed.
ARCHIVE_FILES = (NAME, "LICENSE")
#: Folders of the wheel that the archive leaves out: the test kit (``kubectl_iter8.testing``).
LEFT_OUT = ("kubectl_iter8/testing/",)
#: Directories of the repository that the wheel build never needs.
SKIP_DIRS = {
    ".git",
    ".venv",
    "venv",
    "dist",
    "build",
    "__pycache__",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
}


@dataclass(frozen=True)
class Platform:
    """One Krew platform, and the wheels that run on its oldest supported version."""

    os: str
    arch: str
    #: ``platform.machine()`` there: x86_64, aarch64 (Linux) or arm64 (macOS).
    machine: str
    #: Oldest glibc (Linux) or macOS version the archive must run on.
    baseline: tuple[int, int]

    @property
    def name(self) -> str:
        return f"{self.os}-{self.arch}"

    @property
    def baseline_text(self) -> str:
        major, minor = self.baseline
        return f"glibc {major}.{minor}" if self.os == "linux" else f"macOS {major}.{minor}"

    def platform_tags(self) -> list[str]:
        """Wheel platform tags a machine at the baseline accepts, most specific first.

        Spelled out because pip's own --platform expands only the legacy manylinux2014/2010
        aliases, so ``manylinux_2_28`` alone would refuse every manylinux2014 wheel. Local-build
        tags (``linux_x86_64``) are left out on purpose.
        """
        major, minor = self.baseline
        tags: list[str] = []
        if self.os == "linux":
            legacy = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
            oldest = 17 if self.machine == "aarch64" else 5  # aarch64 wheels start at glibc 2.17
            for glibc_minor in range(minor, oldest - 1, -1):
                tags.append(f"manylinux_{major}_{glibc_minor}_{self.machine}")
                if glibc_minor in legacy:
                    tags.append(f"{legacy[glibc_minor]}_{self.machine}")
            return tags
        formats = [self.machine, "universal2"]
        if self.machine == "x86_64":
            formats = ["x86_64", "intel", "fat64", "fat3", "universal2", "universal"]
        for mac_major in range(major, 10, -1):
            tags += [f"macosx_{mac_major}_0_{fmt}" for fmt in formats]
        # macOS 11+ also runs 10.x wheels; for arm64 only the universal2 ones have arm64 code.
        for mac_minor in range(16, 3, -1):
            tags += [
                f"macosx_10_{mac_minor}_{fmt}"
                for fmt in formats
                if self.machine == "x86_64" or fmt == "universal2"
            ]
        return tags

    def complete_platform(self, python: str) -> dict[str, Any]:
        """pex's --complete-platform for CPython ``python`` (X.Y) here: markers and tags."""
        py_major, py_minor = (int(part) for part in python.split("."))
        cp = f"cp{py_major}{py_minor}"
        platforms = self.platform_tags()
        tags = [f"{cp}-{cp}-{p}" for p in platforms]
        tags += [f"{cp}-abi3-{p}" for p in platforms]
        tags += [f"{cp}-none-{p}" for p in platforms]
        tags += [f"cp{py_major}{m}-abi3-{p}" for m in range(py_minor - 1, 1, -1) for p in platforms]
        older = [f"py{py_major}{m}" for m in range(py_minor - 1, -1, -1)]
        interpreters = [f"py{py_major}{py_minor}", f"py{py_major}", *older]
        tags += [f"{i}-none-{p}" for i in interpreters for p in platforms]
        tags += [f"{cp}-none-any"] + [f"{i}-none-any" for i in interpreters]
        markers = {
            "implementation_name": "cpython",
            "implementation_version": f"{python}.0",
            "os_name": "posix",
            "platform_machine": self.machine,
            "platform_python_implementation": "CPython",
            "platform_system": "Linux" if self.os == "linux" else "Darwin",
            "python_full_version": f"{python}.0",
            "python_version": python,
            "sys_platform": self.os,
        }
        return {"marker_environment": markers, "compatible_tags": tags}


#: Baselines: glibc 2.28 (RHEL 8, Debian 10, Ubuntu 20.04 and later), because numpy and jq publish
#: CPython 3.14 wheels for manylinux_2_28 only; macOS 12, because scipy's arm64 wheels need it.
PLATFORMS = {
    p.name: p
    for p in (
        Platform("linux", "amd64", "x86_64", (2, 28)),
        Platform("linux", "arm64", "aarch64", (2, 28)),
        Platform("darwin", "amd64", "x86_64", (12, 0)),
        Platform("darwin", "arm64", "arm64", (12, 0)),
    )
}
#: Built when no --platform is given. linux-arm64 and darwin-amd64 are left out because PyPI has
#: no hdrhistogram wheels for them (none for Linux aarch64; macOS x86_64 ones stop at 0.10.3 for
#: CPython 3.12), and the archive must not depend on a compiler on the user's machine. Asking for
#: them by name tries anyway, and fails with pex's explanation until the wheels exist.
DEFAULT_PLATFORMS = ("linux-amd64", "darwin-arm64")

DEFAULT_MANIFEST: dict[str, Any] = {
    "apiVersion": "krew.googlecontainertools.github.com/v1alpha2",
    "kind": "Plugin",
    "metadata": {"name": "iter8"},
    "spec": {
        "version": "v0.0.0",
        "homepage": "https://github.com/kubectl-iter8/kubectl-iter8",
        "shortDescription": "Experiments, SLO checks and traffic control",
        "description": (
            "kubectl iter8 is a release optimizer for Kubernetes apps and ML models.\n"
            "It runs experiments that send load to a service, measure latency and errors,\n"
            "and check the results against service-level objectives; `kubectl iter8 assert`\n"
            "turns the verdict into an exit code for CI and `kubectl iter8 report` shows it.\n"
            "Tasks and traffic routers come from plugins (`kubectl iter8 plugins`).\n"
        ),
        "caveats": (
            "kubectl iter8 needs python3 (CPython 3.11 to 3.14) on the PATH.\n"
            "The first run unpacks it under ~/.cache/pex (set PEX_ROOT to move it),\n"
            "which takes 10 to 20 seconds and about 1 GB; later runs reuse it.\n"
        ),
        "platforms": [],
    },
}


class BuildError(Exception):
    """An expected failure: printed as one ``error:`` line, no traceback."""


def log(message: str) -> None:
    print(f"build_krew: {message}", flush=True)


def run(cmd: Sequence[str | Path], *, env: dict[str, str] | None = None, what: str) -> str:
    """Run a command, returning its output; on failure show the output's tail and raise."""
    proc = subprocess.run(
        [str(c) for c in cmd], capture_output=True, text=True, env=env, check=False, stdin=subprocess.DEVNULL
    )
    if proc.returncode != 0:
        output = (proc.stdout + proc.stderr).strip().splitlines()
        for line in output[-25:]:
            print(f"  | {line}", file=sys.stderr)
        reason = next(
            (line.strip() for line in output if "ERROR" in line or "No pre-built wheel" in line), ""
        )
        raise BuildError(f"{what} failed (exit {proc.returncode})" + (f": {reason}" if reason else ""))
    return proc.stdout


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def source_date_epoch() -> int:
    """Timestamp for everything packed: $SOURCE_DATE_EPOCH, else 1980-01-01 (zip's first day)."""
    value = os.environ.get("SOURCE_DATE_EPOCH", "315532800")
    try:
        return int(value)
    except ValueError:
        raise BuildError(f"SOURCE_DATE_EPOCH must be an integer, not {value!r}") from None


def build_wheel(work: Path, out_dir: Path) -> Path:
    """Build the project's wheel from a copy of the repository (the tree itself stays untouched)."""
    source = work / "source"
    out_resolved = out_dir.resolve()

    def ignore(directory: str, names: list[str]) -> set[str]:
        skipped = {n for n in names if n in SKIP_DIRS or n.endswith(".egg-info")}
        return skipped | {n for n in names if (Path(directory) / n).resolve() == out_resolved}

    shutil.copytree(REPO, source, ignore=ignore, symlinks=True)
    wheel_dir = work / "wheel"
    env = {**os.environ, "SOURCE_DATE_EPOCH": str(source_date_epoch())}
    log("building the kubectl-iter8 wheel")
    run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", wheel_dir, source],
        env=env,
        what="building the wheel",
    )
    wheels = sorted(wheel_dir.glob("kubectl_iter8-*.whl"))
    if len(wheels) != 1:
        raise BuildError(f"expected one kubectl_iter8 wheel in {wheel_dir}, found {len(wheels)}")
    check_wheel(wheels[0], source)
    return wheels[0]


def check_wheel(wheel: Path, source: Path) -> None:
    """Refuse a wheel that an editable install would hide the flaws of.

    * a module shadowed by a package of the same name (``pkg/x.py`` next to ``pkg/x/__init__.py``
      installs fine, but the package wins the import and the module is unreachable);
    * a package of the source tree that the wheel lacks (a subpackage missing from the explicit
      ``packages`` list of ``[tool.setuptools]``).
    """
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
    clashes = sorted(n for n in names if n.endswith(".py") and f"{n[:-3]}/__init__.py" in names)
    if clashes:
        shown = ", ".join(f"{n} vs {n[:-3]}/__init__.py" for n in clashes)
        raise BuildError(
            f"the wheel has modules shadowed by packages of the same name ({shown}); fix the layout"
        )
    packaged = {n.rsplit("/", 1)[0].replace("/", ".") for n in names if n.endswith("/__init__.py")}
    missing = sorted(source_packages(source) - packaged)
    if missing:
        raise BuildError(
            f"the wheel lacks packages of the source tree: {', '.join(missing)}"
            " (add them to [tool.setuptools] packages in pyproject.toml)"
        )


def source_packages(source: Path) -> set[str]:
    """Every package under the directories of ``[tool.setuptools.package-dir]``, by import name."""
    try:
        config = tomllib.loads((source / "pyproject.toml").read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return set()
    package_dir = config.get("tool", {}).get("setuptools", {}).get("package-dir", {})
    found: set[str] = set()
    for package, directory in package_dir.items():
        if not package:  # "" = the root of a src layout: not what this project does
            continue
        root = source / directory
        for init in root.rglob("__init__.py"):
            relative = init.parent.relative_to(root).parts
            if "__pycache__" not in relative:
                found.add(".".join((package, *relative)))
    return found


def runtime_wheel(wheel: Path, out_dir: Path) -> Path:
    """A copy of ``wheel`` in ``out_dir`` without the folders of ``LEFT_OUT`` (nor their RECORD lines)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stripped = out_dir / wheel.name
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(stripped, "w", zipfile.ZIP_DEFLATED) as dst:
        kept = [info for info in src.infolist() if not info.filename.startswith(LEFT_OUT)]
        if len(kept) == len(src.infolist()):
            raise BuildError(f"the wheel has none of {', '.join(LEFT_OUT)}: update LEFT_OUT")
        for info in kept:
            data = src.read(info)
            if info.filename.endswith(".dist-info/RECORD"):
                lines = data.decode("utf-8").splitlines(keepends=True)
                data = "".join(line for line in lines if not line.startswith(LEFT_OUT)).encode("utf-8")
            dst.writestr(info, data)
    return stripped


def wheel_version(wheel: Path) -> str:
    # kubectl_iter8-<version>-<python tag>-<abi tag>-<platform tag>.whl
    return wheel.name.split("-")[1]


def build_pex(wheel: Path, target: Platform, output: Path) -> None:
    cmd: list[str | Path] = [sys.executable, "-m", "pex", wheel, "--no-build", "--pip-version", PIP_VERSION]
    for python in PYTHONS:
        complete_platform = output.parent / f"{target.name}-cp{python.replace('.', '')}.json"
        complete_platform.write_text(json.dumps(target.complete_platform(python), indent=1), encoding="utf-8")
        cmd += ["--complete-platform", complete_platform]
    cmd += [
        # One pip per CPython version, all at once: the resolves wait on the network, not the CPU.
        "--jobs",
        str(len(PYTHONS)),
        "--entry-point",
        ENTRY_POINT,
        "--python-shebang",
        SHEBANG,
        # The first run builds a venv under PEX_ROOT and later runs exec straight into it: a third
        # of the start-up time of a plain zipapp PEX, which scans every bundled distribution.
        "--venv",
        # Keep each wheel whole inside the PEX: a few hundred zip entries instead of tens of
        # thousands, so Python opens the zipapp quicker on every run (the first run installs them).
        "--no-pre-install-wheels",
        # ...in parallel, on as many cores as the user's machine has.
        "--max-install-jobs",
        "0",
        "--output-file",
        output,
    ]
    log(f"{target.name}: resolving wheels for CPython {', '.join(PYTHONS)} ({target.baseline_text}) with pex")
    run(cmd, what=f"pex for {target.name}")
    with output.open("rb") as f:
        first_line = f.readline().decode("utf-8", "replace").rstrip("\n")
    if first_line != f"#!{SHEBANG}":
        raise BuildError(f"pex wrote the shebang {first_line!r}, expected '#!{SHEBANG}'")


def write_archive(archive: Path, members: dict[str, Path], mtime: int) -> None:
    """A tar.gz that is the same bytes for the same inputs: fixed times, owners, order and modes."""
    with (
        archive.open("wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=mtime) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for name in ARCHIVE_FILES:
            data = members[name].read_bytes()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = mtime
            info.mode = 0o755 if name == NAME else 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))


def platform_entry(target: Platform, uri: str, sha256: str) -> dict[str, Any]:
    return {
        "selector": {"matchLabels": {"os": target.os, "arch": target.arch}},
        "uri": uri,
        "sha256": sha256,
        "bin": NAME,
        "files": [{"from": name, "to": "."} for name in ARCHIVE_FILES],
    }


def load_manifest(path: Path) -> dict[str, Any]:
    if not path.exists():
        log(f"{path} does not exist; starting from the default manifest")
        return copy.deepcopy(DEFAULT_MANIFEST)
    try:
        manifest = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise BuildError(f"cannot read the manifest {path}: {' '.join(str(exc).split())}") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("spec", {}), dict):
        raise BuildError(f"{path} is not a Krew plugin manifest (expected a mapping with a spec mapping)")
    if manifest.get("kind", "Plugin") != "Plugin":
        raise BuildError(f"{path} has kind {manifest.get('kind')!r}, expected Plugin")
    return manifest


def _selector_name(entry: Any) -> str | None:
    try:
        labels = entry["selector"]["matchLabels"]
        return f"{labels['os']}-{labels['arch']}"
    except (KeyError, TypeError):
        return None


def update_manifest(
    manifest: dict[str, Any], version: str, built: dict[str, dict[str, Any]], failed: Sequence[str] = ()
) -> dict[str, Any]:
    """Set the version and the built platforms' entries; keep the rest of the manifest.

    Entries of platforms not built this time stay only if they point at the same version's release
    (an entry of an older release would install an older plugin under the new version number), and
    never for a platform whose build failed.
    """
    # Fill what a valid manifest needs but the file lacks, keeping the file's own values and order.
    merged: dict[str, Any] = {k: v for k, v in DEFAULT_MANIFEST.items() if k != "spec"} | {
        k: v for k, v in manifest.items() if k != "spec"
    }
    spec = dict(DEFAULT_MANIFEST["spec"]) | dict(manifest.get("spec") or {})
    spec["version"] = f"v{version}"
    kept: dict[str, dict[str, Any]] = {}
    for entry in spec.get("platforms") or []:
        name = _selector_name(entry)
        if name is None or name in built:
            continue
        if name in failed:
            log(f"dropping the {name} entry: its build failed")
        elif f"/v{version}/" in str(entry.get("uri", "")):
            kept[name] = entry
        else:
            log(f"dropping the {name} entry: it points at another release ({entry.get('uri')})")
    entries = kept | built
    spec["platforms"] = [entries[name] for name in PLATFORMS if name in entries] + [
        entry for name, entry in entries.items() if name not in PLATFORMS
    ]
    merged["spec"] = spec
    return merged


class _ManifestDumper(yaml.SafeDumper):
    """Block style throughout, and multi-line strings as ``|`` literals (as Krew's examples)."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)  # indent list items under their key


def _str_representer(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_ManifestDumper.add_representer(str, _str_representer)


def write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    text = yaml.dump(manifest, Dumper=_ManifestDumper, sort_keys=False, default_flow_style=False, width=100)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(MANIFEST_HEADER + text, encoding="utf-8")
    tmp.replace(path)


def smoke_test(executable: Path, version: str) -> None:
    """Run the archive's executable when it targets this machine: a broken build never ships.

    ``version --short`` proves the PEX boots; ``plugins`` imports every built-in plugin and task.
    """
    with tempfile.TemporaryDirectory(prefix="krew-smoke-") as pex_root:
        env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"}}
        env["PEX_ROOT"] = pex_root
        out = run(
            [sys.executable, executable, "version", "--short"], env=env, what="running the built archive"
        )
        if out.strip() != f"v{version}":
            raise BuildError(
                f"the built archive printed {out.strip()!r} for `version --short`, expected 'v{version}'"
            )
        run([sys.executable, executable, "plugins"], env=env, what="`kubectl-iter8 plugins` from the archive")
    log(f"smoke test: `{NAME} version --short` printed v{version}; `{NAME} plugins` loaded every plugin")


def host_platform() -> str | None:
    machine = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(
        platform.machine().lower()
    )
    system = {"linux": "linux", "darwin": "darwin"}.get(sys.platform)
    return f"{system}-{machine}" if machine and system else None


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="build_krew.py", description="Build the Krew archives of kubectl-iter8 and update the manifest."
    )
    parser.add_argument(
        "--platform",
        action="append",
        metavar="OS-ARCH",
        help=f"platform to build, repeatable; one of {', '.join(PLATFORMS)}"
        f" (default: {', '.join(DEFAULT_PLATFORMS)})",
    )
    parser.add_argument(
        "--out", type=Path, default=REPO / "dist", help="directory for the archives (default: dist)"
    )
    parser.add_argument(
        "--manifest",
        type=Path,
        default=REPO / "krew-manifest.yaml",
        help="Krew manifest to rewrite (default: krew-manifest.yaml at the repository root)",
    )
    parser.add_argument(
        "--url-template",
        default=URL_TEMPLATE,
        help="download URL of an archive, with {version} and {archive} (default: the GitHub release)",
    )
    parser.add_argument(
        "--no-smoke-test", action="store_true", help="do not run the archive built for this machine"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    names = list(dict.fromkeys(args.platform or DEFAULT_PLATFORMS))
    unknown = [n for n in names if n not in PLATFORMS]
    if unknown:
        print(f"error: unknown platform {unknown[0]!r}; choose from {', '.join(PLATFORMS)}", file=sys.stderr)
        return 2
    try:
        return build(names, args.out, args.manifest, args.url_template, smoke=not args.no_smoke_test)
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


def build(names: list[str], out_dir: Path, manifest_path: Path, url_template: str, *, smoke: bool) -> int:
    license_file = REPO / "LICENSE"
    if not license_file.is_file():
        raise BuildError(f"{license_file} is missing; the archive ships it")
    try:
        import pex  # noqa: F401 - only checks that pex is there before the long steps
    except ImportError:
        raise BuildError(f"pex is not installed in {sys.executable}; pip install -e '.[test]'") from None
    manifest = load_manifest(manifest_path)  # fail on a broken manifest before building anything
    out_dir.mkdir(parents=True, exist_ok=True)
    built: dict[str, dict[str, Any]] = {}
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="build-krew-") as tmp:
        work = Path(tmp)
        wheel = runtime_wheel(build_wheel(work, out_dir), work / "runtime-wheel")
        version = wheel_version(wheel)
        log(f"kubectl-iter8 v{version}: platforms {', '.join(names)}")
        for name in names:
            target = PLATFORMS[name]
            executable = work / name / NAME
            executable.parent.mkdir()
            try:
                build_pex(wheel, target, executable)
                if smoke and name == host_platform():
                    smoke_test(executable, version)
            except BuildError as exc:
                print(f"error: {exc}", file=sys.stderr)
                failures.append(name)
                continue
            archive = out_dir / f"{NAME}-v{version}-{name}.tar.gz"
            write_archive(archive, {NAME: executable, "LICENSE": license_file}, source_date_epoch())
            digest = sha256_of(archive)
            uri = url_template.format(version=version, archive=archive.name)
            built[name] = platform_entry(target, uri, digest)
            log(f"{name}: wrote {archive} ({archive.stat().st_size / 1e6:.1f} MB, sha256 {digest})")
    if built:
        write_manifest(manifest_path, update_manifest(manifest, version, built, failures))
        log(f"updated {manifest_path}: spec.version v{version}, platforms {', '.join(built)}")
    if failures:
        where = "left out of the manifest" if built else "the manifest is unchanged"
        raise BuildError(f"could not build {', '.join(failures)} (see above); {where}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
