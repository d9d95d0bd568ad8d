"""Where experiments live while they run and afterwards.

A store loads and saves a whole experiment document. The runner saves after every task, so a save
must be atomic: the local store writes a temporary file beside ``experiment.yaml``, flushes it to
disk and renames it over the old one, so a crash or Ctrl-C leaves either the old or the new file,
never half of one. The Kubernetes Secret store (a later part of the product) has the same shape.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any, Protocol

import yaml

from . import boundedyaml
from .errors import StorageError, UsageError
from .experiment import Experiment, stored_experiment

try:  # the C dumper is several times faster when libyaml is there; the output is the same
    from yaml import CSafeDumper as _Dumper
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeDumper as _Dumper  # type: ignore[assignment]


class ExperimentStore(Protocol):
    """What the runner, ``assert`` and ``report`` need from a storage driver."""

    #: Where the experiment is, for messages (``./experiment.yaml``, ``secret ns/name``).
    description: str

    def load(self) -> Experiment: ...

    def save(self, experiment: Experiment) -> None: ...


def dump_yaml(doc: Any) -> str:
    return yaml.dump(doc, Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False)


def atomic_write(path: Path, text: str, *, mode: int, fsync: bool) -> None:
    """Write ``text`` to ``path`` through a temporary file beside it renamed over it, so a reader
    (or a crash) sees the old file or the new one, never half; the temporary file never stays.

    :param fsync: flush the data to disk before the rename (a result file must survive a crash).
    :raises OSError: when the folder or the file cannot be written.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            if fsync:
                handle.flush()
                os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class LocalStore:
    """``DIR/experiment.yaml`` on the local disk."""

    FILE_NAME = "experiment.yaml"

    def __init__(self, run_dir: str | os.PathLike[str]) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / self.FILE_NAME
        self.description = str(self.path)

    def check_writable(self) -> None:
        """Fail before anything runs if results could not be saved in the run directory."""
        if self.run_dir.exists() and not self.run_dir.is_dir():
            raise UsageError(f"--run-dir {self.run_dir}: not a directory")
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"--run-dir {self.run_dir}: cannot create: {exc.strerror}") from None
        if not os.access(self.run_dir, os.W_OK | os.X_OK):
            raise UsageError(f"--run-dir {self.run_dir}: not writable")

    def load(self) -> Experiment:
        if not self.run_dir.is_dir():
            raise UsageError(f"--run-dir {self.run_dir}: no such directory")
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise StorageError(f"no experiment in {self.run_dir} ({self.FILE_NAME} not found)") from None
        except PermissionError:
            raise StorageError(f"cannot read {self.path}: permission denied") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise StorageError(f"cannot read {self.path}: {exc}") from None
        try:
            doc = boundedyaml.load(text, boundedyaml.STORED_LIMITS)
        except boundedyaml.BoundedYAMLError as exc:
            raise StorageError(f"{self.path} is not valid YAML: {exc}") from None
        return stored_experiment(doc, str(self.path))

    def save(self, experiment: Experiment) -> None:
        text = dump_yaml(experiment.document())
        try:
            atomic_write(self.path, text, mode=0o644, fsync=True)
        except OSError as exc:
            raise StorageError(f"cannot write {self.path}: {exc.strerror or exc}") from None
