#!/usr/bin/env python3
"""Build the Krew archive of kubectl-iter8 for this machine and point ``krew-manifest.yaml`` at it.

One command::

    python scripts/build_krew.py [--out dist] [--manifest PATH] [--work DIR]

The archive is self-contained: a PyInstaller one-folder application (its own CPython, every
dependency, no Python on the user's machine) that starts in place, with nothing unpacked anywhere
on the first run. A frozen application does not cross-build, so the script builds the platform it
runs on (``--platform`` only confirms it); the release workflow runs it once per platform.

1. It builds the kubectl-iter8 wheel from a copy of the repository and drops
   ``kubectl_iter8.testing`` from it (the fake API server and fixtures: for tests and plugin
   authors, who get them from PyPI; ``lint-imports`` checks that no runtime code imports them),
   then installs that wheel alone into ``<work>/site``.
2. PyInstaller freezes ``packaging/entry.py`` with ``packaging/kubectl-iter8.spec``: the package
   from ``<work>/site``, its dependencies from this interpreter's environment, the compiled
   modules stored uncompressed (the archive's gzip compresses them better together).
3. The bundle is made fit for Krew: symbolic links are dropped (Krew unpacks regular files and
   folders only; each link points at a file that stays in the bundle, where the libraries' own
   RPATH finds it). On Linux, scipy's byte-identical copies of numpy's vendored libraries are
   dropped, and the shared libraries are stripped: symbol tables and debug sections where no
   RPATH shows a patchelf rewrite, debug sections only elsewhere, the vendored ``*.libs`` not at
   all.
4. It prerenders ``--help`` (at every width), ``version`` and ``version --short`` with the
   bundle's own CLI into ``_internal/kubectl_iter8/prerendered.marshal``, which the frozen entry
   point prints without starting the CLI, and fails unless each prints the same bytes both ways.
5. It packs ``kubectl-iter8`` (the executable), ``_internal/`` and ``LICENSE`` into
   ``<out>/kubectl-iter8-v<version>-<os>-<arch>.tar.gz``: reproducible for the same inputs (fixed
   times, owners, modes and order), and refused when it breaks the size limits.
6. It runs the bundle (``version --short`` and ``plugins``) and rewrites the platform's entry of
   the manifest (``uri``, ``sha256``, ``bin``, ``files``, ``selector``) and ``spec.version``.

``--from-archives DIR`` skips the build: it rewrites the manifest's entries from the archives in
DIR (how the release workflow fills in the platforms built on other runners).

Needs PyInstaller and PyYAML (the ``test`` extra). Expected failures print one ``error:`` line and
exit 1 (2 for bad arguments).
"""

from __future__ import annotations

import argparse
import copy
import filecmp
import gzip
import hashlib
import importlib.util
import marshal
import os
import platform
import re
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
import tomllib
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

try:
    import yaml
except ImportError:
    sys.exit("error: PyYAML is missing here; run this with the project's venv python (.venv/bin/python)")

REPO = Path(__file__).resolve().parent.parent
NAME = "kubectl-iter8"
SPEC = REPO / "packaging" / "kubectl-iter8.spec"
#: PyInstaller's folder of everything but the executable (its ``contents_directory``).
CONTENTS = "_internal"
URL_TEMPLATE = "https://github.com/kubectl-iter8/kubectl-iter8/releases/download/v{version}/{archive}"
#: The issue's limits for an archive (compressed) and for what Krew unpacks from it.
ARCHIVE_LIMIT = 80_000_000
UNPACKED_LIMIT = 250_000_000
#: gzip level of the archive: 9 saves about 0.5% over 6 and costs seconds, once per release.
GZIP_LEVEL = 9
#: zlib level of the Python modules inside the executable (PyInstaller's PYZ; its default is 6).
#: Stored, the archive's gzip compresses them together, and a module resembles its neighbours (the
#: Kubernetes client's 900 generated models most of all): 4.3 MB less archive than modules
#: compressed one by one, for 40 MB more unpacked, and no zlib on each import.
PYZ_COMPRESSION_LEVEL = 0
#: The auditwheel-vendored libraries that other wheels carry byte-identical copies of (scipy's
#: wheel has numpy's libgfortran and libquadmath too, under the same hashed names). The copies are
#: dropped: the dynamic loader matches a library already loaded by its SONAME, and numpy's are
#: loaded first, because scipy imports numpy before any of its own extension modules.
SHARED_LIBS = "numpy.libs"
#: The widths click can format the help to (cli.py's ``max_content_width`` 110, click's minimum 50),
#: each prerendered for ``kubectl iter8 --help`` (packaging/entry.py).
HELP_WIDTHS = range(50, 109)
#: Where the prerendered outputs go in the bundle (packaging/entry.py reads them).
PRERENDERED = Path("kubectl_iter8") / "prerendered.marshal"
#: Any ITER8_* variable makes the frozen entry point leave the output to the CLI (click).
RENDER_WITH_CLICK = {"ITER8_NO_PRERENDERED": "1"}
#: Variables that change what the CLI prints, left out of the environment the bundle runs in here.
CLI_OUTPUT_VARS = {"COLUMNS", "_KUBECTL ITER8_COMPLETE", "VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"}
MANIFEST_HEADER = (
    "# Krew plugin manifest of kubectl-iter8 (https://krew.sigs.k8s.io/docs/developer-guide/).\n"
    "# `python scripts/build_krew.py` rewrites spec.version and the platform it builds, and\n"
    "# `--from-archives DIR` the platforms of a release; the sha256 values are those of the\n"
    "# archives of the last such run (docs/krew.md says how a release is cut).\n"
)
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
PIP = (sys.executable, "-m", "pip", "--quiet", "--disable-pip-version-check")
PYINSTALLER = (sys.executable, "-m", "PyInstaller", "--noconfirm", "--log-level", "WARN")
ARCHIVE_NAME = re.compile(rf"{NAME}-v(?P<version>[^-/]+)-(?P<os>[a-z]+)-(?P<arch>[a-z0-9]+)\.tar\.gz")


@dataclass(frozen=True)
class Platform:
    """One Krew platform: its selector labels and the name of the executable there."""

    os: str
    arch: str

    @property
    def name(self) -> str:
        return f"{self.os}-{self.arch}"

    @property
    def bin(self) -> str:
        return f"{NAME}.exe" if self.os == "windows" else NAME

    @property
    def members(self) -> tuple[str, ...]:
        """The archive's top-level entries, which the manifest's ``files`` move into place."""
        return (self.bin, CONTENTS, "LICENSE")


PLATFORMS = {
    p.name: p
    for p in (
        Platform("linux", "amd64"),
        Platform("linux", "arm64"),
        Platform("darwin", "amd64"),
        Platform("darwin", "arm64"),
        Platform("windows", "amd64"),
    )
}

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
        reason = next((line.strip() for line in reversed(output) if "ERROR" in line or "Error" in line), "")
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


def host_platform() -> Platform | None:
    machine = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(
        platform.machine().lower()
    )
    system = {"linux": "linux", "darwin": "darwin", "win32": "windows"}.get(sys.platform)
    return PLATFORMS.get(f"{system}-{machine}") if machine and system else None


# --- the wheel -------------------------------------------------------------------------------


def build_wheel(work: Path, out_dir: Path) -> Path:
    """Build the project's wheel from a copy of the repository (the tree itself stays untouched).

    Without build isolation: setuptools and grpcio-tools (setup.py generates the A/B/n messages)
    are in this environment already, so the build needs no network.
    """
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
        [*PIP, "wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", wheel_dir, source],
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


# --- the frozen bundle -----------------------------------------------------------------------


def freeze(wheel: Path, work: Path) -> Path:
    """Install ``wheel`` alone into ``<work>/site`` and freeze it; returns the one-folder bundle."""
    site, dist = work / "site", work / "dist"
    for old in (site, dist):
        shutil.rmtree(old, ignore_errors=True)
    run(
        [*PIP, "install", "--no-deps", "--no-compile", "--target", site, wheel],
        what="installing the wheel for PyInstaller",
    )
    for dist_info in site.glob("*.dist-info"):
        # pip's record of where this install came from (a temporary path) and of its files: of no
        # use in the bundle, and they would make two builds of the same source differ.
        for name in ("direct_url.json", "RECORD"):
            (dist_info / name).unlink(missing_ok=True)
    log("freezing with PyInstaller (one-folder)")
    # The spec reads the site folder from the environment: PyInstaller passes a spec no arguments
    # of its own, and the packages there must come before this environment's editable install.
    # A fixed hash seed keeps the order of base_library.zip (built from a set) the same.
    env = {
        **os.environ,
        "KREW_SITE": str(site),
        "PYTHONHASHSEED": "0",
        "SOURCE_DATE_EPOCH": str(source_date_epoch()),
        "PYINSTALLER_ZLIB_COMPRESSION_LEVEL": str(PYZ_COMPRESSION_LEVEL),
    }
    run(
        [*PYINSTALLER, "--distpath", dist, "--workpath", work / "pyinstaller", SPEC],
        env=env,
        what="PyInstaller",
    )
    bundle = dist / NAME
    if not bundle.is_dir():
        raise BuildError(f"PyInstaller wrote no {bundle}")
    return bundle


def drop_symlinks(bundle: Path) -> int:
    """Remove the symbolic links of ``bundle``; each must point at a file inside it.

    PyInstaller links the auditwheel-vendored libraries (``numpy.libs/*``) into the top folder;
    the extension modules find them through their own RPATH, and Krew refuses an archive with
    links in it.
    """
    links = sorted(p for p in bundle.rglob("*") if p.is_symlink())
    root = bundle.resolve()
    for link in links:
        target = link.resolve()
        if not target.is_file() or not target.is_relative_to(root):
            raise BuildError(f"{link.relative_to(bundle)} links to {target}, outside the bundle")
        link.unlink()
    return len(links)


def drop_duplicate_libraries(bundle: Path) -> list[tuple[str, int]]:
    """Remove vendored libraries that are byte-identical copies of ``SHARED_LIBS``' (Linux only).

    Returns (path in the bundle, size) of each copy removed.
    """
    owner = bundle / CONTENTS / SHARED_LIBS
    if sys.platform != "linux" or not owner.is_dir():
        return []
    dropped: list[tuple[str, int]] = []
    for folder in sorted((bundle / CONTENTS).glob("*.libs")):
        if folder == owner:
            continue
        for lib in sorted(folder.iterdir()):
            twin = owner / lib.name
            if lib.is_file() and twin.is_file() and filecmp.cmp(lib, twin, shallow=False):
                dropped.append((lib.relative_to(bundle).as_posix(), lib.stat().st_size))
                lib.unlink()
    return dropped


def shared_libraries(bundle: Path) -> Iterator[Path]:
    """ELF shared libraries of ``bundle`` outside the auditwheel-vendored ``*.libs`` folders.

    The vendored ones are left alone: auditwheel rewrote them with patchelf, and strip can break
    such files.
    """
    for path in sorted(bundle.rglob("*")):
        if not path.is_file() or path.is_symlink() or any(p.endswith(".libs") for p in path.parts):
            continue
        if not (path.suffix == ".so" or ".so." in path.name):
            continue
        with path.open("rb") as f:
            if f.read(4) == b"\x7fELF":
                yield path


def strip_libraries(bundle: Path) -> int:
    """Strip the symbol tables and debug sections of the bundle's shared libraries (Linux only).

    libpython and lib-dynload come with DWARF from interpreters built with ``-g`` (pyenv's: 23 MB
    of libpython is 6.5 MB without it), and most extension modules with their full symbol tables;
    the code and the dynamic symbols (``PyInit_*``, libpython's API) stay as they are. A library
    with an RPATH or RUNPATH was most likely rewritten by auditwheel's patchelf (numpy's and some of
    scipy's extension modules), and strip can break such files: those keep their symbol tables and
    lose only debug sections, if any.
    """
    if sys.platform != "linux":
        return 0
    strip, readelf = shutil.which("strip"), shutil.which("readelf")
    if strip is None or readelf is None:
        log("warning: strip or readelf not found (binutils); the bundle keeps its symbols and debug sections")
        return 0
    stripped = 0
    for lib in shared_libraries(bundle):
        sections = run([readelf, "-S", "-W", "-d", lib], what=f"readelf {lib.name}")
        patched = "(RPATH)" in sections or "(RUNPATH)" in sections
        if not patched and (".symtab" in sections or ".debug_info" in sections):
            run([strip, "--strip-unneeded", lib], what=f"strip {lib.name}")
        elif ".debug_info" in sections:
            run([strip, "--strip-debug", lib], what=f"strip {lib.name}")
        else:
            continue
        stripped += 1
    return stripped


# --- output prerendered for the frozen entry point ---------------------------------------------


def cli_env() -> dict[str, str]:
    """This environment without what changes the CLI's output (``ITER8_*``, ``COLUMNS``, ...)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("ITER8_") and k not in CLI_OUTPUT_VARS}


def run_bundle(executable: Path, args: Sequence[str], env: dict[str, str]) -> tuple[int, bytes, bytes]:
    proc = subprocess.run(
        [str(executable), *args],
        env=env,
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=300,
        check=False,
    )
    return proc.returncode, proc.stdout, proc.stderr


def render(executable: Path, args: Sequence[str], env: dict[str, str]) -> str:
    """What the CLI prints for ``args`` (rendered by click), as the text the entry point writes."""
    code, out, err = run_bundle(executable, args, {**env, **RENDER_WITH_CLICK})
    if code != 0 or err:
        detail = err.decode("utf-8", "replace").strip().splitlines()
        raise BuildError(
            f"`{NAME} {' '.join(args)}` from the bundle exited {code}" + (f": {detail[-1]}" if detail else "")
        )
    text = out.decode("utf-8")
    # Written through a text stream, "\n" becomes os.linesep again (Windows' "\r\n").
    return text.replace("\r\n", "\n") if sys.platform == "win32" else text


def prerender(bundle: Path, target: Platform) -> int:
    """Write the outputs the entry point prints without the CLI, and check them byte for byte.

    ``--help`` at every width click can format it to, ``version`` and ``version --short``, each
    rendered by the bundle's own CLI. Then every case runs twice, prerendered and rendered by
    click, and the two must give the same exit code, output and errors; a probe table proves that
    the entry point does print the file's text. Returns how many distinct help texts there are.
    """
    executable, path = bundle / target.bin, bundle / CONTENTS / PRERENDERED
    env = cli_env()
    distinct: dict[str, str] = {}  # the same object for the same text: marshal writes it once
    helps = {
        width: distinct.setdefault(text, text)
        for width in HELP_WIDTHS
        for text in [render(executable, ["--help"], {**env, "COLUMNS": str(width + 2)})]
    }
    table: dict[str, object] = {
        "help": helps,
        "version": render(executable, ["version"], env),
        "version --short": render(executable, ["version", "--short"], env),
        "machine": os.uname().machine if hasattr(os, "uname") else None,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(marshal.dumps({"help": {w: f"probe {w}\n" for w in HELP_WIDTHS}}))
    probe = run_bundle(executable, ["--help"], {**env, "COLUMNS": "80"})
    if probe[1].replace(b"\r\n", b"\n") != b"probe 78\n":
        raise BuildError(f"the entry point does not print {PRERENDERED} (it printed {probe[1][:60]!r}...)")
    path.write_bytes(marshal.dumps(table))
    cases: list[tuple[list[str], dict[str, str]]] = [
        *((["--help"], {"COLUMNS": str(width + 2)}) for width in HELP_WIDTHS),
        (["--help"], {}),  # not a terminal, no COLUMNS: 80 columns
        (["-h"], {"COLUMNS": "1"}),
        (["--help"], {"COLUMNS": "1000"}),
        (["--help"], {"COLUMNS": "wide"}),
        (["version"], {}),
        (["version", "--short"], {}),
    ]
    for args, extra in cases:
        fast = run_bundle(executable, args, {**env, **extra})
        slow = run_bundle(executable, args, {**env, **extra, **RENDER_WITH_CLICK})
        if fast != slow:
            where = ", ".join(f"{k}={v}" for k, v in extra.items()) or "no COLUMNS"
            raise BuildError(
                f"the prerendered output of `{' '.join(args)}` ({where}) differs from the CLI's;"
                f" prerendered {fast[1][:200]!r}, CLI {slow[1][:200]!r}"
            )
    return len(distinct)


def tree_size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def largest_parts(bundle: Path, count: int = 12) -> list[tuple[str, int]]:
    """The biggest entries of the bundle's top folders (``du`` by package), largest first."""
    parts: list[tuple[str, int]] = []
    for top in (bundle, bundle / CONTENTS):
        for entry in top.iterdir():
            if entry.name == CONTENTS and top == bundle:
                continue
            size = tree_size(entry) if entry.is_dir() else entry.stat().st_size
            parts.append((entry.relative_to(bundle).as_posix(), size))
    return sorted(parts, key=lambda part: -part[1])[:count]


# --- the archive -----------------------------------------------------------------------------


def archive_entries(bundle: Path, license_file: Path) -> Iterator[tuple[str, Path]]:
    """(name in the archive, file) for every folder and file, in a fixed order."""
    yield "LICENSE", license_file
    for path in sorted(bundle.rglob("*"), key=lambda p: p.relative_to(bundle).as_posix()):
        yield path.relative_to(bundle).as_posix(), path


def write_archive(archive: Path, bundle: Path, license_file: Path, mtime: int) -> None:
    """A tar.gz that is the same bytes for the same inputs: fixed times, owners, order and modes.

    Only regular files and folders, and no name with ``..``: what Krew's unpacker accepts.
    """
    with (
        archive.open("wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=mtime, compresslevel=GZIP_LEVEL) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for name, path in archive_entries(bundle, license_file):
            if ".." in name:
                raise BuildError(f"{name}: Krew refuses archive entries with '..' in the name")
            info = tarfile.TarInfo(name)
            info.mtime = mtime
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            mode = path.lstat().st_mode
            if stat.S_ISDIR(mode):
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
            elif stat.S_ISREG(mode):
                info.size = path.stat().st_size
                info.mode = 0o755 if mode & stat.S_IXUSR else 0o644
                with path.open("rb") as f:
                    tar.addfile(info, f)
            else:
                raise BuildError(f"{name} is neither a file nor a folder; Krew cannot unpack it")


# --- the manifest ----------------------------------------------------------------------------


def platform_entry(target: Platform, uri: str, sha256: str) -> dict[str, Any]:
    return {
        "selector": {"matchLabels": {"os": target.os, "arch": target.arch}},
        "uri": uri,
        "sha256": sha256,
        "bin": target.bin,
        "files": [{"from": name, "to": "."} for name in target.members],
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
    manifest: dict[str, Any], version: str, built: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """Set the version and the built platforms' entries; keep the rest of the manifest.

    Entries of platforms not built this time stay only if they point at the same version's release
    (an entry of an older release would install an older plugin under the new version number).
    """
    # Fill what a valid manifest needs but the file lacks, keeping the file's own values and order.
    merged: dict[str, Any] = {k: v for k, v in DEFAULT_MANIFEST.items() if k != "spec"} | {
        k: v for k, v in manifest.items() if k != "spec"
    }
    spec = dict(DEFAULT_MANIFEST["spec"]) | dict(manifest.get("spec") or {})
    spec.pop("caveats", None)  # the pex archive's python3 and cache notes; nothing applies now
    spec["version"] = f"v{version}"
    kept: dict[str, dict[str, Any]] = {}
    for entry in spec.get("platforms") or []:
        name = _selector_name(entry)
        if name is None or name in built:
            continue
        if f"/v{version}/" in str(entry.get("uri", "")):
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


# --- the steps -------------------------------------------------------------------------------


def smoke_test(bundle: Path, target: Platform, version: str) -> None:
    """Run the bundle: it starts (``version --short``) and loads every built-in plugin (``plugins``)."""
    executable = bundle / target.bin
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"}}
    out = run([executable, "version", "--short"], env=env, what="running the frozen kubectl-iter8")
    if out.strip() != f"v{version}":
        raise BuildError(f"the bundle printed {out.strip()!r} for `version --short`, expected 'v{version}'")
    out = run([executable, "plugins"], env=env, what="`kubectl-iter8 plugins` from the bundle")
    if "kubectl_iter8.builtin_tasks" not in out:
        raise BuildError("`kubectl-iter8 plugins` from the bundle does not list the built-in tasks")
    log(f"smoke test: `{target.bin} version --short` printed v{version}; `plugins` loaded every plugin")


def check_sizes(archive: Path, bundle: Path) -> tuple[int, int]:
    packed, unpacked = archive.stat().st_size, tree_size(bundle) + (REPO / "LICENSE").stat().st_size
    log(f"sizes: archive {packed / 1e6:.1f} MB, unpacked {unpacked / 1e6:.1f} MB; largest parts:")
    for name, size in largest_parts(bundle):
        log(f"  {size / 1e6:7.1f} MB  {name}")
    if packed > ARCHIVE_LIMIT:
        raise BuildError(f"the archive is {packed / 1e6:.1f} MB, over the {ARCHIVE_LIMIT / 1e6:.0f} MB limit")
    if unpacked > UNPACKED_LIMIT:
        raise BuildError(
            f"the archive unpacks to {unpacked / 1e6:.1f} MB, over the {UNPACKED_LIMIT / 1e6:.0f} MB limit"
        )
    return packed, unpacked


def build(target: Platform, out_dir: Path, work: Path, manifest_path: Path, url: str, *, smoke: bool) -> Path:
    license_file = REPO / "LICENSE"
    if not license_file.is_file():
        raise BuildError(f"{license_file} is missing; the archive ships it")
    if importlib.util.find_spec("PyInstaller") is None:  # before the long steps
        raise BuildError(f"PyInstaller is not installed in {sys.executable}; pip install -e '.[test]'")
    manifest = load_manifest(manifest_path)  # fail on a broken manifest before building anything
    out_dir.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="build-krew-") as tmp:
        wheel = runtime_wheel(build_wheel(Path(tmp), out_dir), Path(tmp) / "runtime-wheel")
        version = wheel_version(wheel)
        log(f"kubectl-iter8 v{version} for {target.name}")
        bundle = freeze(wheel, work)
    links, duplicates, stripped = (
        drop_symlinks(bundle),
        drop_duplicate_libraries(bundle),
        strip_libraries(bundle),
    )
    log(f"dropped {links} symbolic links; stripped {stripped} libraries")
    for name, size in duplicates:
        log(f"dropped {name} ({size / 1e6:.1f} MB), a copy of {SHARED_LIBS}/{Path(name).name}")
    log(f"prerendered --help ({prerender(bundle, target)} distinct widths), version and version --short")
    if smoke:
        smoke_test(bundle, target, version)
    archive = out_dir / f"{NAME}-v{version}-{target.name}.tar.gz"
    write_archive(archive, bundle, license_file, source_date_epoch())
    check_sizes(archive, bundle)
    digest = sha256_of(archive)
    entry = platform_entry(target, url.format(version=version, archive=archive.name), digest)
    write_manifest(manifest_path, update_manifest(manifest, version, {target.name: entry}))
    log(f"wrote {archive} (sha256 {digest}); updated {manifest_path}")
    return archive


def from_archives(directory: Path, manifest_path: Path, url: str) -> int:
    """Rewrite the manifest's entries from the archives in ``directory`` (one release, all platforms)."""
    manifest = load_manifest(manifest_path)
    found: dict[str, tuple[str, Path]] = {}
    for path in sorted(directory.glob(f"{NAME}-v*.tar.gz")):
        match = ARCHIVE_NAME.fullmatch(path.name)
        name = f"{match['os']}-{match['arch']}" if match else ""
        if match is None or name not in PLATFORMS:
            raise BuildError(f"{path.name}: not an archive name of a known platform")
        found[name] = (match["version"], path)
    if not found:
        raise BuildError(f"no {NAME}-v<version>-<os>-<arch>.tar.gz in {directory}")
    versions = {version for version, _ in found.values()}
    if len(versions) != 1:
        raise BuildError(
            f"the archives in {directory} are of several versions: {', '.join(sorted(versions))}"
        )
    version = versions.pop()
    built = {
        name: platform_entry(PLATFORMS[name], url.format(version=version, archive=path.name), sha256_of(path))
        for name, (_, path) in found.items()
    }
    write_manifest(manifest_path, update_manifest(manifest, version, built))
    log(f"updated {manifest_path}: v{version}, platforms {', '.join(built)}")
    return 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="build_krew.py", description="Build the Krew archive of kubectl-iter8 and update the manifest."
    )
    parser.add_argument(
        "--platform",
        metavar="OS-ARCH",
        help="the platform to build: this machine's, as a frozen binary does not cross-build"
        f" (one of {', '.join(PLATFORMS)})",
    )
    parser.add_argument(
        "--out", type=Path, default=REPO / "dist", help="directory for the archive (default: dist)"
    )
    parser.add_argument(
        "--work",
        type=Path,
        default=REPO / "build" / "krew",
        help="PyInstaller's work folder, kept between builds (default: build/krew)",
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
    parser.add_argument("--no-smoke-test", action="store_true", help="do not run the built bundle")
    parser.add_argument(
        "--from-archives",
        type=Path,
        metavar="DIR",
        help="build nothing: rewrite the manifest's entries from the archives in DIR",
    )
    return parser.parse_args(argv)


def host_to_build(requested: str | None) -> Platform:
    """This machine's platform, which must be the one asked for, if any."""
    host = host_platform()
    if host is None:
        raise BuildError(
            f"this machine ({sys.platform} {platform.machine()}) is none of {', '.join(PLATFORMS)}"
        )
    if requested is not None and requested != host.name:
        raise BuildError(
            f"cannot build {requested} on {host.name}: a frozen binary is built on its own platform"
            " (the release workflow builds each on its own runner)"
        )
    return host


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.platform is not None and args.platform not in PLATFORMS:
        print(
            f"error: unknown platform {args.platform!r}; choose from {', '.join(PLATFORMS)}", file=sys.stderr
        )
        return 2
    if "{version}" not in args.url_template or "{archive}" not in args.url_template:
        print("error: --url-template must contain {version} and {archive}", file=sys.stderr)
        return 2
    try:
        if args.from_archives is not None:
            return from_archives(args.from_archives, args.manifest, args.url_template)
        target = host_to_build(args.platform)
        build(target, args.out, args.work, args.manifest, args.url_template, smoke=not args.no_smoke_test)
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
