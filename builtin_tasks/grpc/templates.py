"""ghz's per-request templates in call data and metadata: ``{{.RequestNumber}}``, ``{{newUUID}}``, ...

ghz renders call data as a Go template for every request; experiments written for Iter8 use that
syntax, so the same subset is understood here. Supported inside ``{{ }}``:

* fields: ``.RequestNumber`` (0, 1, ... across the run), ``.WorkerID``, ``.UUID`` (one per request),
  ``.Timestamp`` (RFC 3339), ``.TimestampUnix``, ``.TimestampUnixMilli``, ``.TimestampUnixNano``,
  ``.FullyQualifiedName``, ``.MethodName``, ``.ServiceName``, ``.InputName``, ``.OutputName``,
  ``.IsClientStreaming``, ``.IsServerStreaming``;
* functions: ``newUUID`` (a fresh one at each use), ``randomString N``, ``randomInt MIN MAX``.

Templates render to text, as in ghz (which renders the JSON text of the data): protobuf's JSON
mapping reads numeric strings into integer and floating-point fields, so ``"{{.RequestNumber}}"``
fits a string field and an ``int64`` alike. Anything else inside ``{{ }}`` is refused when the
experiment is validated, naming what is supported.
"""

from __future__ import annotations

import datetime as dt
import random
import re
import string
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

_TEMPLATE = re.compile(r"\{\{-?\s*(.*?)\s*-?\}\}")
_ALPHABET = string.ascii_letters + string.digits

FIELDS = (
    "RequestNumber",
    "WorkerID",
    "UUID",
    "Timestamp",
    "TimestampUnix",
    "TimestampUnixMilli",
    "TimestampUnixNano",
    "FullyQualifiedName",
    "MethodName",
    "ServiceName",
    "InputName",
    "OutputName",
    "IsClientStreaming",
    "IsServerStreaming",
)
FUNCTIONS = ("newUUID", "randomString N", "randomInt MIN MAX")


@dataclass(frozen=True)
class MethodFacts:
    """What the templates may say about the method being called."""

    fully_qualified_name: str = ""
    method_name: str = ""
    service_name: str = ""
    input_name: str = ""
    output_name: str = ""
    client_streaming: bool = False
    server_streaming: bool = False


@dataclass
class CallContext:
    """The values of one request's templates; the per-request ones are made on first use."""

    request_number: int
    worker_id: str
    method: MethodFacts = field(default_factory=MethodFacts)
    _uuid: str | None = None
    _now_ns: int | None = None

    @property
    def uuid(self) -> str:
        if self._uuid is None:
            self._uuid = str(uuid.uuid4())
        return self._uuid

    @property
    def now_ns(self) -> int:
        if self._now_ns is None:
            self._now_ns = time.time_ns()
        return self._now_ns


def _field(name: str) -> Callable[[CallContext], Any]:
    getters: dict[str, Callable[[CallContext], Any]] = {
        "RequestNumber": lambda c: c.request_number,
        "WorkerID": lambda c: c.worker_id,
        "UUID": lambda c: c.uuid,
        "Timestamp": lambda c: dt.datetime.fromtimestamp(c.now_ns / 1e9, dt.UTC).isoformat(),
        "TimestampUnix": lambda c: c.now_ns // 1_000_000_000,
        "TimestampUnixMilli": lambda c: c.now_ns // 1_000_000,
        "TimestampUnixNano": lambda c: c.now_ns,
        "FullyQualifiedName": lambda c: c.method.fully_qualified_name,
        "MethodName": lambda c: c.method.method_name,
        "ServiceName": lambda c: c.method.service_name,
        "InputName": lambda c: c.method.input_name,
        "OutputName": lambda c: c.method.output_name,
        "IsClientStreaming": lambda c: c.method.client_streaming,
        "IsServerStreaming": lambda c: c.method.server_streaming,
    }
    return getters[name]


def _compile_action(action: str) -> Callable[[CallContext], Any]:
    words = action.split()
    if len(words) == 1 and words[0].startswith(".") and words[0][1:] in FIELDS:
        return _field(words[0][1:])
    if words == ["newUUID"]:
        return lambda _c: str(uuid.uuid4())
    try:
        if len(words) == 2 and words[0] == "randomString":
            size = int(words[1])
            if size >= 0:
                return lambda _c: "".join(random.choices(_ALPHABET, k=size))
        if len(words) == 3 and words[0] == "randomInt":
            low, high = int(words[1]), int(words[2])
            if low < high:
                return lambda _c: random.randrange(low, high)
    except ValueError:
        pass
    raise ValueError(
        f"unsupported template {{{{{action}}}}}: use one of "
        + ", ".join(f".{name}" for name in FIELDS)
        + ", "
        + ", ".join(FUNCTIONS)
    )


class Template:
    """One string with ``{{ }}`` actions, compiled once and rendered per request."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._parts: list[str | Callable[[CallContext], Any]] = []
        position = 0
        for match in _TEMPLATE.finditer(text):
            if match.start() > position:
                self._parts.append(text[position : match.start()])
            self._parts.append(_compile_action(match.group(1)))
            position = match.end()
        if position < len(text):
            self._parts.append(text[position:])

    def render(self, context: CallContext) -> str:
        """The text for this request."""
        return "".join(_text(part(context)) if callable(part) else part for part in self._parts)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"  # Go's spelling
    return str(value)


def has_template(text: str) -> bool:
    return _TEMPLATE.search(text) is not None


def compile_tree(value: Any) -> Any:
    """``value`` (JSON-like) with every templated string replaced by its :class:`Template`."""
    if isinstance(value, str):
        return Template(value) if has_template(value) else value
    if isinstance(value, dict):
        return {key: compile_tree(item) for key, item in value.items()}
    if isinstance(value, list):
        return [compile_tree(item) for item in value]
    return value


def render_tree(value: Any, context: CallContext) -> Any:
    """The JSON-like value of a compiled tree for one request."""
    if isinstance(value, Template):
        return value.render(context)
    if isinstance(value, dict):
        return {key: render_tree(item, context) for key, item in value.items()}
    if isinstance(value, list):
        return [render_tree(item, context) for item in value]
    return value


def check(value: Any) -> None:
    """Raise ValueError for a template in ``value`` (any JSON-like tree) that is not supported."""
    compile_tree(value)


def contains_template(value: Any) -> bool:
    if isinstance(value, Template):
        return True
    if isinstance(value, str):
        return has_template(value)
    if isinstance(value, dict):
        return any(contains_template(item) for item in value.values())
    if isinstance(value, list):
        return any(contains_template(item) for item in value)
    return False
