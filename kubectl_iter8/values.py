r"""Reading what ``launch`` is given: ``-f`` files and Helm's ``--set`` family of flags.

Iter8's tutorials launch experiments from chart values (``--set tasks={http,assess}
--set http.url=URL --set assess.SLOs.upper.http/latency-mean=50``). The same flags build the same
spec here, without Helm: ``-f`` files are deep-merged in order, then the ``--set`` flags are applied
on top in Helm's order (``--set-json``, ``--set``, ``--set-string``, ``--set-file``; each kind in
the order given), and the merged document is either an experiment (it has ``spec``) or chart values
(it has ``tasks``). They work on experiment files too (``--set spec[0].with.qps=50``).

The assignments are parsed as Helm's ``strvals`` parser does (``pkg/strvals/parser.go``): dotted
keys, ``[i]`` indexes (at most 65536), ``{a,b}`` lists, ``\`` escapes (``\,`` ``\.`` ``\=``), at most
30 levels of names. ``--set`` types values as Helm does: ``true``/``false`` (any case) are booleans,
``null`` is null, ``0`` and integers without a leading zero that fit in 64 bits are integers, and
everything else (floats included: ``1.5``, ``007``, ``1e3``) stays a string. ``--set-string`` keeps
every value a string, ``--set-file`` reads each value from a file (as a string), ``--set-json``
takes JSON values (``a={"b":1}``, or a whole JSON object). One deliberate difference: an empty key
(``=1``) is an error here; Helm drops it silently.

Chart values also carry the chart's settings for the Job that runs the experiment in a cluster
(``runner``, ``cronjobSchedule``, ``serviceAccountName``, ``iter8Image``, ``resources``,
``logLevel``, ``metricsServerURL``): :func:`chart_settings` checks them and ``launch`` honours them
as the chart did, and ``warmupNumRequests``/``warmupDuration`` expand into a warm-up entry
(:func:`warmup_entries`). ``majorMinor`` is checked and has no effect, with a warning: Iter8's chart
wrote it into the result as ``iter8Version``, and here the result records the version that ran.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from . import boundedyaml
from .errors import InvalidExperimentError, UsageError
from .experiment import Experiment, experiment_from_document

if TYPE_CHECKING:
    from .registry import TaskRegistry

log = logging.getLogger(__name__)

#: Global values of Iter8's experiment chart; they matter only in a cluster.
CHART_SETTINGS = frozenset(
    {
        "runner", "cronjobSchedule", "serviceAccountName", "logLevel", "iter8Image", "majorMinor",
        "resources", "metricsServerURL", "resourceTypes",
    }
)  # fmt: skip

#: The largest list index an assignment takes (Helm's ``MaxIndex``): ``spec[300000000]=x`` would
#: otherwise build a list of 300 million slots.
MAX_INDEX = 65536
#: The most dotted names in one key (Helm's ``MaxNestedNameLevel``).
MAX_NESTED_NAMES = 30
#: The largest file ``--set-file`` reads, and the largest ``--set-json`` argument.
MAX_VALUE_BYTES = 1024 * 1024
#: How deep ``--set-json`` values may nest (Python's JSON parser recurses).
MAX_JSON_DEPTH = 100

_INT64 = re.compile(r"[+-]?[0-9]+")
_INDEX = re.compile(r"[+-]?[0-9]{1,12}")


def _short(text: str, limit: int = 120) -> str:
    quoted = repr(text)
    return quoted if len(quoted) <= limit else f"{quoted[: limit - 3]}..."


def typed_value(text: str) -> Any:
    """A ``--set`` value as Helm types it (``typedVal`` in Helm's parser)."""
    lowered = text.lower()
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    if lowered == "null":
        return None
    if text == "0":
        return 0
    if text and text[0] != "0" and _INT64.fullmatch(text) and len(text) <= 20:
        number = int(text)
        if -(2**63) <= number < 2**63:
            return number
    return text


class _SetError(Exception):
    """A problem in one assignment; :func:`parse_into` turns it into a one-line UsageError."""


class _EndOfInput(Exception):
    """Helm's ``io.EOF``: the expression ended (an error only where Helm makes it one)."""


class _NotAList(Exception):
    """Helm's ``ErrNotList``: the value does not start with ``{``."""


#: Reads a value's text into what is stored: typed, string, a file's contents.
ValueReader = Callable[[str], Any]


class _Parser:
    """Helm's strvals parser over one expression, merging into ``data`` (mappings are changed in
    place, lists replaced), with ``reader`` turning a value's text into the stored value, or JSON
    values when ``reader`` is None."""

    def __init__(self, text: str, data: dict[str, Any], reader: ValueReader | None) -> None:
        self.text = text
        self.pos = 0
        self.data = data
        self.reader = reader

    # --- the scanner: Helm's runesUntil, with its backslash escapes ---------------------------

    def _read(self) -> str:
        if self.pos >= len(self.text):
            raise _EndOfInput
        char = self.text[self.pos]
        self.pos += 1
        return char

    def _until(self, stop: str) -> tuple[str, str | None]:
        """The text up to the next unescaped character of ``stop`` (consumed), and that character;
        None at the end of the expression."""
        out: list[str] = []
        while self.pos < len(self.text):
            char = self.text[self.pos]
            self.pos += 1
            if char in stop:
                return "".join(out), char
            if char == "\\":
                if self.pos >= len(self.text):
                    return "".join(out), None
                char = self.text[self.pos]
                self.pos += 1
            out.append(char)
        return "".join(out), None

    # --- the grammar -------------------------------------------------------------------------

    def parse(self) -> None:
        while self.pos < len(self.text):
            try:
                self._key(self.data, 0)
            except _EndOfInput:
                return

    def _key(self, data: dict[str, Any], level: int) -> None:
        key, last = self._until("=[,.")
        if last is None:
            if not key:
                raise _EndOfInput
            raise _SetError(f"key {key!r} has no value (expected KEY=VALUE)")
        if not key:
            raise _SetError("empty key" if last != "," else "empty assignment (two commas in a row?)")
        if last == "[":
            index = self._index()
            existing = data.get(key, [])
            if not isinstance(existing, list):
                raise _SetError(f"{key!r} is not a list (it holds {_kind(existing)})")
            try:
                items = self._list_item(existing, index, level)
            except _EndOfInput:
                data[key] = existing
                raise
            data[key] = items
        elif last == "=":
            data[key] = self._value()
        elif last == ",":
            raise _SetError(f"key {key!r} has no value (cannot end with ,)")
        else:  # "."
            level += 1
            if level > MAX_NESTED_NAMES:
                raise _SetError(f"more than {MAX_NESTED_NAMES} nested names")
            inner = data.get(key, {})
            if not isinstance(inner, dict):
                raise _SetError(f"{key!r} is not a mapping (it holds {_kind(inner)})")
            try:
                self._key(inner, level)
            except _EndOfInput:
                if inner:
                    data[key] = inner
                raise
            if not inner:
                raise _SetError(f"key map {key!r} has no value")
            data[key] = inner

    def _value(self) -> Any:
        """What follows ``=``: a JSON value, a ``{a,b}`` list, or one value up to the next comma.
        At the end of the expression, Helm stores an empty string (ends the expression)."""
        if self.reader is None:
            return self._json()
        try:
            return self._list()
        except _NotAList:
            text, _ = self._until(",")
            return self.reader(text)
        except _EndOfInput:
            return ""

    def _index(self) -> int:
        text, last = self._until("]")
        if last is None:
            raise _SetError("an index without its closing ]")
        if not re.fullmatch(r"[+-]?[0-9]+", text):
            raise _SetError(f"bad index {_short(text, 40)} (expected a number)")
        if not _INDEX.fullmatch(text) or int(text) > MAX_INDEX:
            if text.startswith("-"):
                raise _SetError(f"negative index {_short(text, 40)} not allowed")
            raise _SetError(f"index {_short(text, 40)} is too large (at most {MAX_INDEX})")
        index = int(text)
        if index < 0:
            raise _SetError(f"negative index {index} not allowed")
        return index

    def _list_item(self, items: list[Any], index: int, level: int) -> list[Any]:
        rest, last = self._until("[.=")
        if rest:
            raise _SetError(f"unexpected {_short(rest, 40)} after an index")
        if last is None:
            raise _EndOfInput
        if last == "=":
            try:
                return _set_index(items, index, self._value())
            except _EndOfInput:
                return _set_index(items, index, "")
        if last == "[":
            inner_index = self._index()
            current = items[index] if index < len(items) else None
            if current is None:
                current = []
            if not isinstance(current, list):
                raise _SetError(f"item {index} is not a list (it holds {_kind(current)})")
            return _set_index(items, index, self._list_item(current, inner_index, level))
        # "."
        inner = items[index] if index < len(items) and isinstance(items[index], dict) else {}
        self._key(inner, level)
        return _set_index(items, index, inner)

    def _list(self) -> list[Any]:
        """Helm's ``valList``: ``{a,b,c}``, each item read by the reader."""
        start = self.pos
        if self._read() != "{":
            self.pos = start
            raise _NotAList
        assert self.reader is not None
        items: list[Any] = []
        while True:
            text, last = self._until(",}")
            if last is None:
                raise _SetError("a list must end with '}'")
            items.append(self.reader(text))
            if last == "}":
                if self.pos < len(self.text) and self.text[self.pos] == ",":
                    self.pos += 1
                return items

    def _json(self) -> Any:
        if self._empty():
            return None
        try:
            value, end = json.JSONDecoder(parse_constant=_no_constant).raw_decode(self.text, self.pos)
        except json.JSONDecodeError as exc:
            raise _SetError(f"invalid JSON value: {exc.msg} (at character {exc.pos + 1})") from None
        except RecursionError:
            raise _SetError("JSON value nested too deeply") from None
        if _depth(value) > MAX_JSON_DEPTH:
            raise _SetError(f"JSON value nested deeper than {MAX_JSON_DEPTH} levels")
        self.pos = end
        self._empty()
        return value

    def _empty(self) -> bool:
        """Helm's ``emptyVal``: skip blanks; True at a comma (consumed) or the end."""
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char == ",":
                self.pos += 1
                return True
            if not char.isspace():
                return False
            self.pos += 1
        return True


def _no_constant(name: str) -> Any:
    """JSON has no NaN or Infinity (Python's parser takes them; Go's, Helm's, does not)."""
    raise json.JSONDecodeError(f"{name} is not JSON", name, 0)


def _set_index(items: list[Any], index: int, value: Any) -> list[Any]:
    items = [*items, *([None] * (index + 1 - len(items)))]
    items[index] = value
    return items


def _depth(value: Any) -> int:
    depth, level = 0, [value]
    while level:
        depth += 1
        level = [
            child
            for item in level
            if isinstance(item, dict | list)
            for child in (item.values() if isinstance(item, dict) else item)
        ]
    return depth


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"the value {_short(str(value), 40)}"


def parse_into(expression: str, dest: dict[str, Any], *, flag: str = "--set") -> None:
    """Apply one ``--set``-family argument to ``dest``, as Helm's ``ParseInto`` (and its string,
    file and JSON forms) does.

    :raises UsageError: one line naming the flag, the argument and the problem.
    """
    reader: ValueReader | None
    if flag == "--set":
        reader = typed_value
    elif flag == "--set-string":
        reader = str
    elif flag == "--set-file":
        reader = _file_value
    elif flag == "--set-json":
        if len(expression.encode("utf-8", "surrogatepass")) > MAX_VALUE_BYTES:
            raise UsageError(f"--set-json: the argument is larger than {MAX_VALUE_BYTES} bytes")
        if expression.strip().startswith("{"):
            _merge_json_object(expression, dest)
            return
        reader = None
    else:
        raise ValueError(f"unknown flag {flag}")
    try:
        _Parser(expression, dest, reader).parse()
    except _SetError as exc:
        raise UsageError(f"{flag} {_short(expression)}: {exc}") from None


def _merge_json_object(expression: str, dest: dict[str, Any]) -> None:
    """``--set-json '{"a": {"b": 1}}'``: Helm merges a whole JSON object into the values."""
    try:
        value = json.loads(expression, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"--set-json {_short(expression)}: invalid JSON: {exc.msg} (at character {exc.pos + 1})"
        ) from None
    except RecursionError:
        raise UsageError(f"--set-json {_short(expression)}: JSON nested too deeply") from None
    if not isinstance(value, dict):
        raise UsageError(f"--set-json {_short(expression)}: expected a JSON object or KEY=JSON")
    if _depth(value) > MAX_JSON_DEPTH:
        raise UsageError(f"--set-json {_short(expression)}: nested deeper than {MAX_JSON_DEPTH} levels")
    dest.update(deep_merge(dest, value))


def _file_value(path: str) -> str:
    """``--set-file KEY=PATH``: the file's contents, as a string (``-`` is standard input)."""
    try:
        if path.strip() == "-":
            data = sys.stdin.buffer.read(MAX_VALUE_BYTES + 1)
        else:
            with Path(path).open("rb") as handle:
                data = handle.read(MAX_VALUE_BYTES + 1)
    except FileNotFoundError:
        raise _SetError(f"{_short(path, 80)}: no such file") from None
    except IsADirectoryError:
        raise _SetError(f"{_short(path, 80)}: is a directory, not a file") from None
    except PermissionError:
        raise _SetError(f"{_short(path, 80)}: permission denied") from None
    except OSError as exc:
        raise _SetError(f"{_short(path, 80)}: cannot read: {exc.strerror}") from None
    if len(data) > MAX_VALUE_BYTES:
        raise _SetError(f"{_short(path, 80)}: larger than {MAX_VALUE_BYTES} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise _SetError(f"{_short(path, 80)}: not a UTF-8 text file") from None


@dataclass
class ValueFlags:
    """Helm's value flags, each kind in the order given on the command line."""

    files: Sequence[str] = ()
    sets: Sequence[str] = ()
    set_strings: Sequence[str] = ()
    set_files: Sequence[str] = ()
    set_jsons: Sequence[str] = ()
    #: Helm's order of application after the files (``pkg/cli/values/options.go``).
    order: tuple[str, ...] = field(default=("--set-json", "--set", "--set-string", "--set-file"))

    def any(self) -> bool:
        return bool(self.files or self.sets or self.set_strings or self.set_files or self.set_jsons)

    def assignments(self) -> list[tuple[str, str]]:
        by_flag = {
            "--set-json": self.set_jsons,
            "--set": self.sets,
            "--set-string": self.set_strings,
            "--set-file": self.set_files,
        }
        return [(flag, expression) for flag in self.order for expression in by_flag[flag]]


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


def merged_document(flags: ValueFlags) -> dict[str, Any]:
    """Deep-merge the ``-f`` files in order, then apply the ``--set`` flags in Helm's order."""
    doc: dict[str, Any] = {}
    for path in flags.files:
        doc = deep_merge(doc, read_yaml(path))
    for flag, expression in flags.assignments():
        parse_into(expression, doc, flag=flag)
    return doc


#: Iter8's runners: a Job, a CronJob, or none (the chart rendered only the experiment).
RUNNERS = ("job", "cronjob", "none")
#: Iter8's log levels (logrus') and the runner's own; the former are mapped by :data:`ITER8_LOG_LEVELS`.
LOG_LEVELS = ("trace", "debug", "info", "warn", "warning", "error", "fatal", "panic")
#: Iter8's log levels that are named otherwise here (``-l/--loglevel`` and ``logLevel`` take both).
ITER8_LOG_LEVELS = {"trace": "debug", "warn": "warning", "fatal": "error", "panic": "error"}
#: Images of Iter8 itself: they hold ``iter8``, not ``kubectl-iter8``, so the runner could not start.
_ITER8_IMAGES = re.compile(r"^(docker\.io/)?(iter8/iter8|ghcr\.io/iter8-tools/iter8)([:@].*)?$")
#: An image reference: registry/path[:tag][@digest], no blanks (a loose form of Docker's grammar).
_IMAGE = re.compile(r"^[a-z0-9][a-z0-9._\-/:]*(:[\w][\w.\-]{0,127})?(@[a-z0-9]+:[a-f0-9]{32,})?$")
_SERVICE_ACCOUNT = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
#: A Kubernetes quantity (``250m``, ``1Gi``, ``0.5``, ``1e3``).
_QUANTITY = re.compile(r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+|[KMGTPE]i|[mkMGTPE])?$")
_RESOURCE_NAME = re.compile(r"^([a-z0-9.\-]+/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
#: Iter8's ``majorMinor`` (``v1.1``, ``v0.14``).
_MAJOR_MINOR = re.compile(r"v?[0-9]{1,4}\.[0-9]{1,4}")
#: The user and password of a URL (``scheme://user:password@``), left out of what errors echo.
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*://)[^/?#]*@")
#: The longest ``metricsServerURL``: it becomes an env var of the Job, printed by ``--dry-run``.
MAX_URL = 2048
#: The runner container's resources (Iter8's chart had its own defaults, replaced by these as the
#: chart's would be: a value merges over them, and ``null`` removes one).
DEFAULT_RESOURCES: dict[str, dict[str, str]] = {
    "requests": {"cpu": "250m", "memory": "128Mi"},
    "limits": {"cpu": "1", "memory": "512Mi"},
}


@dataclass(frozen=True)
class ChartSettings:
    """What Iter8's chart values said about the Job that runs the experiment in a cluster.

    Every field is None when the values did not set it (an experiment file sets none).
    """

    #: ``job``, ``cronjob`` or ``none``.
    runner: str | None = None
    #: The CronJob's schedule (``cronjobSchedule``; only with ``runner=cronjob``).
    schedule: str | None = None
    #: ``serviceAccountName``: the Job runs as this account, and no account or Role is created.
    service_account: str | None = None
    #: ``iter8Image``.
    image: str | None = None
    #: ``resources``: the runner container's, merged over :data:`DEFAULT_RESOURCES`.
    resources: dict[str, dict[str, str]] | None = None
    #: ``logLevel``, as the runner's ``--loglevel`` takes it.
    log_level: str | None = None
    #: ``metricsServerURL``: where the Job's ``http`` and ``grpc`` tasks send the result
    #: (``$METRICS_SERVER_URL``).
    metrics_server_url: str | None = None

    def cluster_only(self) -> list[str]:
        """The chart settings given that only a cluster experiment uses (``runner=none`` is what
        running here means, so it is not one)."""
        named = {
            "runner": self.runner if self.runner != "none" else None,
            "cronjobSchedule": self.schedule,
            "serviceAccountName": self.service_account,
            "iter8Image": self.image,
            "resources": self.resources,
            "logLevel": self.log_level,
            "metricsServerURL": self.metrics_server_url,
        }
        return [name for name, value in named.items() if value is not None]


def _setting_error(name: str, value: Any, problem: str) -> InvalidExperimentError:
    return InvalidExperimentError([f"{name}: {problem} (got {_short(str(value), 80)})"])


def _text_setting(values: dict[str, Any], name: str, limit: int = 512) -> str | None:
    value = values.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise _setting_error(name, value, "expected a non-empty string")
    if len(value) > limit:
        raise InvalidExperimentError([f"{name}: longer than {limit} characters"])
    return value.strip()


def chart_settings(values: dict[str, Any]) -> ChartSettings:
    """Read and check the chart's global settings, as Iter8's chart used them.

    :raises InvalidExperimentError: one line naming the setting that cannot be honoured.
    """
    runner = _text_setting(values, "runner")
    if runner is not None and runner not in RUNNERS:
        # The chart's own words: `fail "runner must be one of job, cronjob, or none"`.
        raise _setting_error("runner", runner, "must be one of job, cronjob, or none")
    schedule = _text_setting(values, "cronjobSchedule", 200)
    if runner == "cronjob" and schedule is None:
        raise InvalidExperimentError(
            ["runner=cronjob needs cronjobSchedule (a cron schedule, e.g. '*/10 * * * *')"]
        )
    if schedule is not None:
        if runner != "cronjob":
            raise InvalidExperimentError(
                [f"cronjobSchedule: used only with runner=cronjob (runner is {runner or 'not set'})"]
            )
        if len(schedule.split()) != 5:
            raise _setting_error("cronjobSchedule", schedule, "expected a cron schedule of five fields")
    account = _text_setting(values, "serviceAccountName", 253)
    if account is not None and not _SERVICE_ACCOUNT.fullmatch(account):
        raise _setting_error(
            "serviceAccountName", account, "not a ServiceAccount name (lower-case letters, digits, '-', '.')"
        )
    image = _text_setting(values, "iter8Image")
    if image is not None:
        if not _IMAGE.fullmatch(image):
            raise _setting_error("iter8Image", image, "not an image reference")
        if _ITER8_IMAGES.fullmatch(image):
            raise _setting_error(
                "iter8Image", image, "Iter8's own image has no kubectl-iter8 to run the experiment; "
                "give this project's image, or drop iter8Image for the default"
            )  # fmt: skip
    level = _text_setting(values, "logLevel", 20)
    if level is not None:
        if level.lower() not in LOG_LEVELS:
            raise _setting_error("logLevel", level, f"expected one of {', '.join(LOG_LEVELS)}")
        level = ITER8_LOG_LEVELS.get(level.lower(), level.lower())
    resources = _resources(values["resources"]) if values.get("resources") is not None else None
    metrics_server_url = _metrics_server_url(values.get("metricsServerURL"))
    _major_minor(values.get("majorMinor"))
    return ChartSettings(runner, schedule, account, image, resources, level, metrics_server_url)


def _metrics_server_url(value: Any) -> str | None:
    """``metricsServerURL``: an http(s) URL the tasks add ``/testResult?...`` to, so no query or
    fragment, and no credentials (a Job's env is readable by whoever can read the Job, and
    ``--dry-run`` prints it). Empty means none, as an empty ``$METRICS_SERVER_URL`` does."""
    name = "metricsServerURL"
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _setting_error(name, value, "expected a URL such as http://iter8-controller.iter8-system:8080")
    if len(value) > MAX_URL:
        raise InvalidExperimentError([f"{name}: longer than {MAX_URL} characters"])
    url = value.strip()
    shown = _USERINFO.sub(r"\1***@", url)  # what an error may echo: never a password

    def refused(problem: str) -> InvalidExperimentError:
        return _setting_error(name, shown, problem)

    if not url.isprintable() or any(char.isspace() for char in url):
        raise refused("blanks or control characters in a URL")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (parsing it is the check: a port that is not a number raises)
    except ValueError as exc:
        raise refused(f"not a URL: {exc}") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise refused("expected an http:// or https:// URL")
    if parts.username is not None or parts.password is not None:
        raise refused("no credentials in the URL: the Job's environment is not a secret")
    if not parts.hostname:
        raise refused("the URL has no host")
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        raise refused("no query or fragment: the tasks add /testResult?namespace=...")
    return url


def _major_minor(value: Any) -> None:
    """``majorMinor``: checked, and a warning that it does nothing here (Iter8's chart wrote it into
    the result as ``iter8Version``; here the result records the version that ran the experiment)."""
    if value is None:
        return
    text = str(value) if isinstance(value, str | int | float) and not isinstance(value, bool) else ""
    if not _MAJOR_MINOR.fullmatch(text):
        raise _setting_error("majorMinor", value, "expected Iter8's major.minor version, such as v1.1")
    from .version import major_minor

    log.warning(
        "majorMinor: no effect: the result's iter8Version records the kubectl-iter8 version that "
        "runs the experiment (%s), not the chart's",
        major_minor(),
    )


def _resources(value: Any) -> dict[str, dict[str, str]]:
    """``resources`` merged over :data:`DEFAULT_RESOURCES` as Helm merges values over a chart's
    defaults (a ``null`` removes a default), each quantity checked."""
    if not isinstance(value, dict):
        raise _setting_error("resources", value, "expected a mapping with requests and/or limits")
    merged: dict[str, dict[str, str]] = {}
    for kind in sorted({*DEFAULT_RESOURCES, *value}):
        if kind not in DEFAULT_RESOURCES:
            raise InvalidExperimentError(
                [f"resources: unknown key {_short(str(kind), 40)} (expected requests, limits)"]
            )
        given = value.get(kind, {})
        if given is None:
            continue
        if not isinstance(given, dict):
            raise _setting_error(f"resources.{kind}", given, "expected a mapping of resource: quantity")
        quantities = dict(DEFAULT_RESOURCES[kind])
        for name, quantity in given.items():
            where = f"resources.{kind}.{_short(str(name), 40).strip(chr(39))}"
            if not isinstance(name, str) or not _RESOURCE_NAME.fullmatch(name):
                raise InvalidExperimentError([f"{where}: not a resource name"])
            if quantity is None:
                quantities.pop(name, None)
                continue
            text = (
                str(quantity)
                if isinstance(quantity, int | float | str) and not isinstance(quantity, bool)
                else ""
            )
            if len(text) > 40 or not _QUANTITY.fullmatch(text):
                raise _setting_error(where, quantity, "not a quantity (e.g. 250m, 1, 512Mi)")
            quantities[name] = text
        if quantities:
            merged[kind] = quantities
    return merged


def warmup_entries(task: str, values: Any, count_key: str) -> list[dict[str, Any]] | None:
    """Iter8's chart expansion of ``warmupNumRequests`` / ``warmupDuration`` for the ``http`` and
    ``grpc`` tasks: a first entry with ``warmup: true`` and the warm-up's count (``count_key``:
    ``numRequests`` for http, ``total`` for grpc) or duration, then the main entry; None when
    neither is set. When both are set the count wins, as in the chart.
    """
    if not isinstance(values, dict) or not (values.get("warmupNumRequests") or values.get("warmupDuration")):
        return None
    main = {k: v for k, v in values.items() if k not in ("warmupNumRequests", "warmupDuration")}
    warmup = dict(main)
    if values.get("warmupNumRequests"):
        warmup[count_key] = values["warmupNumRequests"]
    else:
        warmup["duration"] = values["warmupDuration"]
    warmup["warmup"] = True
    return [{"task": task, "with": warmup}, {"task": task, "with": main}]


def experiment_from_values(values: dict[str, Any], tasks: TaskRegistry) -> Experiment:
    """Build the spec that Iter8's experiment chart would have built from ``values``."""
    names = values.get("tasks")
    if isinstance(names, str):
        names = [names]
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise InvalidExperimentError(["tasks: expected a list of task names, e.g. --set tasks={http,assess}"])
    # As Helm: a value set to null is no value; and values of a task that 'tasks' does not list
    # are not rendered (values files keep them to switch tasks on and off).
    values = {key: value for key, value in values.items() if value is not None}
    unlisted = sorted(key for key in values if key in tasks and key not in names)
    if unlisted:
        log.warning("values of %s ignored: not listed in 'tasks'", ", ".join(unlisted))
    problems = [
        f"unknown key {key!r} in values (not a task, nor an Iter8 chart setting)"
        for key in values
        if key not in {"tasks", "metadata", *names, *unlisted, *CHART_SETTINGS}
    ]
    problems += [
        f"tasks: unknown task {name!r} (known: {', '.join(tasks.names())})"
        for name in names
        if name not in tasks
    ]
    if problems:
        raise InvalidExperimentError(problems)
    task_values = {name: values.get(name) for name in names}
    ready = task_values.get("ready")
    if isinstance(ready, dict) and isinstance(values.get("resourceTypes"), dict):
        # Iter8's chart gave `ready` the chart-wide short names (ready.ksvc, ready.vs, ...).
        task_values["ready"] = {"resourceTypes": values["resourceTypes"], **ready}
    spec = [entry for name in names for entry in tasks.get(name).from_values(task_values[name])]
    doc: dict[str, Any] = {"spec": spec}
    if "metadata" in values:
        doc["metadata"] = values["metadata"]
    return experiment_from_document(doc, "values")


def load_experiment(flags: ValueFlags, tasks: TaskRegistry) -> Experiment:
    """The experiment that ``-f`` files and ``--set`` values describe (shape only, not tasks).

    :raises UsageError: for unreadable files, bad ``--set`` syntax or a malformed experiment.
    """
    return load_launch(flags, tasks)[0]


def load_launch(flags: ValueFlags, tasks: TaskRegistry) -> tuple[Experiment, ChartSettings]:
    """The experiment, and the chart settings (runner, image, ...) when the input is chart values.

    :raises UsageError: for unreadable files, bad ``--set`` syntax, a malformed experiment or a
        chart setting that cannot be honoured.
    """
    if not flags.any():
        raise UsageError("no experiment given: use -f FILE (or -f - for standard input) and/or --set")
    doc = merged_document(flags)
    if "spec" in doc and "tasks" in doc:
        raise UsageError("the input has both 'spec' (an experiment) and 'tasks' (chart values); use one")
    if "tasks" in doc:
        settings = chart_settings(doc)
        return experiment_from_values(doc, tasks), settings
    experiment = experiment_from_document(doc, " + ".join(f"-f {f}" for f in flags.files) or "--set")
    experiment.result = None
    return experiment, ChartSettings()
