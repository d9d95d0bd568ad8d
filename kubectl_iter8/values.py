"""Reading what ``launch`` is given: ``-f`` files and Helm-style ``--set`` values.

Iter8's tutorials launch experiments from chart values (``--set tasks={http,assess}
--set http.url=URL --set assess.SLOs.upper.http/latency-mean=50``). The same flags build the same
spec here, without Helm: ``-f`` files are deep-merged in order, ``--set`` assignments are applied
on top (Helm's ``strvals`` syntax: dotted keys, ``[i]`` indexes, ``{a,b}`` lists, ``\\`` escapes),
and the merged document is either an experiment (it has ``spec``) or chart values (it has
``tasks``). ``--set`` works on experiment files too (``--set spec[0].with.qps=50``).

Values from ``--set`` stay strings (``null`` excepted); each task's pydantic inputs convert them,
so ``50`` becomes a number where a number is wanted and stays text where text is wanted.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import boundedyaml
from .errors import InvalidExperimentError, UsageError
from .experiment import Experiment, experiment_from_document
from .validation import format_loc

if TYPE_CHECKING:
    from .registry import TaskRegistry

#: Global values of Iter8's experiment chart; they matter only in a cluster.
CHART_SETTINGS = frozenset(
    {
        "runner", "cronjobSchedule", "serviceAccountName", "logLevel", "iter8Image", "majorMinor",
        "resources", "metricsServerURL", "resourceTypes",
    }
)  # fmt: skip


def _split(text: str, sep: str, *, nested: bool = False) -> list[str]:
    r"""Split ``text`` at unescaped ``sep``; with ``nested``, not inside ``{...}``. Escapes are kept."""
    parts, current, depth, escaped = [], "", 0, False
    for char in text:
        if escaped:
            current += "\\" + char
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == sep and depth == 0:
            parts.append(current)
            current = ""
        else:
            if nested:
                depth += {"{": 1, "}": -1}.get(char, 0)
            current += char
    if escaped:
        current += "\\"
    parts.append(current)
    return parts


def _unescape(text: str) -> str:
    out, escaped = "", False
    for char in text:
        if escaped or char != "\\":
            out += char
            escaped = False
        else:
            escaped = True
    return out


#: The largest list index ``--set`` takes (Helm's own limit): ``spec[300000000]`` would otherwise
#: build a list of 300 million slots.
MAX_INDEX = 65536


def _short(text: str, limit: int = 120) -> str:
    quoted = repr(text)
    return quoted if len(quoted) <= limit else f"{quoted[: limit - 3]}..."


def _parse_key(key: str, assignment: str) -> list[str | int]:
    path: list[str | int] = []
    for part in _split(key, "."):
        name, _, rest = part.partition("[")
        if not name and (not rest or not path):
            raise UsageError(f"--set {assignment!r}: empty key")
        if name:
            path.append(_unescape(name))
        while rest:
            index, close, rest = rest.partition("]")
            if not close or not index.isdigit() or (rest and not rest.startswith("[")):
                raise UsageError(f"--set {assignment!r}: bad index in key {key!r}")
            if len(index) > len(str(MAX_INDEX)) or int(index) > MAX_INDEX:
                raise UsageError(
                    f"--set {_short(assignment)}: index {_short(index, 40)} is too large"
                    f" (at most {MAX_INDEX})"
                )
            path.append(int(index))
            rest = rest[1:]
    if not path or any(p == "" for p in path):
        raise UsageError(f"--set {assignment!r}: empty key")
    return path


def _parse_value(text: str) -> Any:
    if text.startswith("{") and text.endswith("}"):
        inner = text[1:-1]
        return [_unescape(item) for item in _split(inner, ",")] if inner else []
    return None if text == "null" else _unescape(text)


def parse_set(expression: str) -> list[tuple[list[str | int], Any]]:
    """Parse one ``--set`` argument into (key path, value) pairs."""
    pairs = []
    for assignment in _split(expression, ",", nested=True):
        key = _split(assignment, "=")[0]
        if len(key) == len(assignment):
            raise UsageError(f"--set {assignment!r}: expected KEY=VALUE")
        pairs.append((_parse_key(key, assignment), _parse_value(assignment[len(key) + 1 :])))
    return pairs


def set_path(doc: dict[str, Any], path: list[str | int], value: Any, assignment: str) -> None:
    """Assign ``value`` at ``path`` inside ``doc``, creating mappings and list slots on the way."""
    node: Any = doc
    for i, part in enumerate(path):
        last = i == len(path) - 1
        following: Any = [] if not last and isinstance(path[i + 1], int) else {}
        if isinstance(part, int):
            if not isinstance(node, list):
                raise UsageError(f"--set {assignment!r}: {_path_text(path[:i])} is not a list")
            node.extend([None] * (part + 1 - len(node)))
            if last:
                node[part] = value
            elif not isinstance(node[part], dict | list):
                node[part] = following
            node = node[part]
        else:
            if not isinstance(node, dict):
                raise UsageError(f"--set {assignment!r}: {_path_text(path[:i])} is not a mapping")
            if last:
                node[part] = value
            elif not isinstance(node.get(part), dict | list):
                node[part] = following
            node = node[part]


def _path_text(path: list[str | int]) -> str:
    return format_loc(path) or "the document"


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Helm's rule: mappings merge key by key, anything else in ``override`` replaces."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def read_yaml(path: str) -> dict[str, Any]:
    """Read a YAML mapping from ``path`` (``-`` is standard input) with one-line errors."""
    flag = f"-f {path}"
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{flag}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"{flag}: is a directory, not a file") from None
    except PermissionError:
        raise UsageError(f"{flag}: permission denied") from None
    except UnicodeDecodeError:
        raise UsageError(f"{flag}: not a UTF-8 text file") from None
    except OSError as exc:
        raise UsageError(f"{flag}: cannot read: {exc.strerror}") from None
    return parse_yaml(text, flag)


def parse_yaml(text: str, source: str) -> dict[str, Any]:
    """Parse a YAML mapping (empty text is an empty mapping) with one-line errors."""
    try:
        doc = boundedyaml.load(text, boundedyaml.INPUT_LIMITS)
    except boundedyaml.BoundedYAMLError as exc:
        where = f" at line {exc.line}, column {exc.column}" if exc.line is not None else ""
        raise UsageError(f"{source}: invalid YAML{where}: {exc.problem}") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise UsageError(f"{source}: expected a mapping at the top level, got {type(doc).__name__}")
    return doc


def merged_document(files: list[str], sets: list[str]) -> dict[str, Any]:
    """Deep-merge the ``-f`` files in order, then apply each ``--set``."""
    doc: dict[str, Any] = {}
    for path in files:
        doc = deep_merge(doc, read_yaml(path))
    for expression in sets:
        for key_path, value in parse_set(expression):
            set_path(doc, key_path, value, expression)
    return doc


def experiment_from_values(values: dict[str, Any], tasks: TaskRegistry) -> Experiment:
    """Build the spec that Iter8's experiment chart would have built from ``values``."""
    names = values.get("tasks")
    if isinstance(names, str):
        names = [names]
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise InvalidExperimentError(["tasks: expected a list of task names, e.g. --set tasks={http,assess}"])
    problems = [
        f"unknown key {key!r} in values (not a task listed in 'tasks', nor an Iter8 chart setting)"
        for key in values
        if key not in {"tasks", "metadata", *names, *CHART_SETTINGS}
    ]
    problems += [
        f"tasks: unknown task {name!r} (known: {', '.join(tasks.names())})"
        for name in names
        if name not in tasks
    ]
    if problems:
        raise InvalidExperimentError(problems)
    spec = [entry for name in names for entry in tasks.get(name).from_values(values.get(name))]
    doc: dict[str, Any] = {"spec": spec}
    if "metadata" in values:
        doc["metadata"] = values["metadata"]
    return experiment_from_document(doc, "values")


def load_experiment(files: list[str], sets: list[str], tasks: TaskRegistry) -> Experiment:
    """The experiment that ``-f`` files and ``--set`` values describe (shape only, not tasks).

    :raises UsageError: for unreadable files, bad ``--set`` syntax or a malformed experiment.
    """
    if not files and not sets:
        raise UsageError("no experiment given: use -f FILE (or -f - for standard input) and/or --set")
    doc = merged_document(files, sets)
    if "spec" in doc and "tasks" in doc:
        raise UsageError("the input has both 'spec' (an experiment) and 'tasks' (chart values); use one")
    if "tasks" in doc:
        return experiment_from_values(doc, tasks)
    experiment = experiment_from_document(doc, " + ".join(f"-f {f}" for f in files) or "--set")
    experiment.result = None
    return experiment
