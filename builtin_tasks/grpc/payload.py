"""Request messages and metadata, serialized once where possible and per request where templated.

Call data is JSON-like (Iter8/ghz's ``data``: an object, or a list cycled per request; for
client and bidirectional streams the list gives the messages of each stream). It is checked
against the request type before any load: an unknown field or a value of the wrong type is one
clear error, not a thousand failed calls.

Templated data costs a JSON-to-protobuf conversion per request, so only the templated part is
converted: the data is split into a static part, serialized once, and a dynamic part holding the
templated fields. Protobuf's wire format merges concatenated messages (scalars: last wins;
sub-messages and maps: merged; repeated: appended), so ``static + dynamic`` is the encoding of the
whole message. A list containing a template, and an ``Any`` (``@type``), are kept whole in the
dynamic part, so their order and type stay intact.
"""

from __future__ import annotations

import re
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError, EncodeError, Message

from .templates import CallContext, MethodFacts, compile_tree, contains_template, render_tree

_METADATA_KEY = re.compile(r"[0-9a-z_.-]+")


class PayloadError(ValueError):
    """Call data or metadata that does not fit: the message is one line, for the task error."""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0].rstrip(".") if text else type(exc).__name__


def _split(value: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(static, dynamic) parts of a JSON object whose merge is ``value``."""
    static: dict[str, Any] = {}
    dynamic: dict[str, Any] = {}
    for key, item in value.items():
        if isinstance(item, dict) and "@type" not in item:
            fixed, templated = _split(item)
            if templated:
                dynamic[key] = templated
                if fixed:
                    static[key] = fixed
            else:
                static[key] = fixed  # also an empty object: it sets the sub-message
        elif contains_template(item):
            dynamic[key] = item
        else:
            static[key] = item
    return static, dynamic


class Payloads:
    """The serialized requests of one call: ``get(index, ...)`` is item ``index % count``."""

    def __init__(
        self,
        request_class: type[Message],
        *,
        items: list[Any] | None = None,
        binary: bytes | None = None,
        facts: MethodFacts | None = None,
    ) -> None:
        self.request_class = request_class
        self.facts = facts or MethodFacts()
        self.type_name = request_class.DESCRIPTOR.full_name
        self._static: list[bytes] = []
        self._dynamic: list[Any] = []
        if binary is not None:
            message = request_class()
            try:
                message.ParseFromString(binary)
            except (DecodeError, RuntimeError) as exc:
                raise PayloadError(f"binary data is not a {self.type_name}: {_first_line(exc)}") from None
            self._static.append(binary)
            self._dynamic.append(None)
        else:
            for index, item in enumerate(items if items else [{}]):
                self._add(item, index if items and len(items) > 1 else None)
        self.count = len(self._static)
        #: The one request every call sends, when there is no template and a single item.
        self.constant: bytes | None = (
            self._static[0] if self.count == 1 and self._dynamic[0] is None else None
        )
        #: Every item's bytes, when none is templated (cycled per request without any work).
        self.static_items: list[bytes] | None = (
            list(self._static) if all(d is None for d in self._dynamic) else None
        )

    def _add(self, item: Any, index: int | None) -> None:
        where = f"data[{index}]" if index is not None else "data"
        if not isinstance(item, dict):
            raise PayloadError(f"{where} must be an object (a {self.type_name}), not {type(item).__name__}")
        try:
            compiled = compile_tree(item)
        except ValueError as exc:
            raise PayloadError(f"{where}: {exc}") from None
        static, dynamic = _split(compiled)
        try:
            fixed = json_format.ParseDict(static, self.request_class()).SerializePartialToString()
        except (json_format.ParseError, ValueError, TypeError) as exc:
            raise PayloadError(f"{where} does not match {self.type_name}: {_first_line(exc)}") from None
        self._static.append(fixed)
        self._dynamic.append(dynamic or None)
        # The whole message, rendered for a first request: types and required fields checked now.
        sample = render_tree(compiled, CallContext(0, "g0c0", self.facts))
        try:
            json_format.ParseDict(sample, self.request_class()).SerializeToString()
        except (json_format.ParseError, ValueError, TypeError, EncodeError) as exc:
            raise PayloadError(f"{where} does not match {self.type_name}: {_first_line(exc)}") from None

    def get(self, index: int, request_number: int, worker_id: str) -> bytes:
        """The serialized message of item ``index % count`` for this request."""
        index %= self.count
        dynamic = self._dynamic[index]
        if dynamic is None:
            return self._static[index]
        values = render_tree(dynamic, CallContext(request_number, worker_id, self.facts))
        try:
            extra = json_format.ParseDict(values, self.request_class()).SerializePartialToString()
        except (json_format.ParseError, ValueError, TypeError) as exc:
            raise PayloadError(f"data does not match {self.type_name}: {_first_line(exc)}") from None
        return self._static[index] + extra


Pairs = tuple[tuple[str, str | bytes], ...]


class Metadata:
    """Request metadata (gRPC headers): one object, or a list cycled per request; templated values."""

    def __init__(self, items: list[dict[str, Any]] | None, facts: MethodFacts | None = None) -> None:
        self.facts = facts or MethodFacts()
        self._items: list[list[tuple[str, Any]]] = []
        for index, item in enumerate(items or []):
            where = f"metadata[{index}]" if items and len(items) > 1 else "metadata"
            if not isinstance(item, dict):
                raise PayloadError(f"{where} must be an object of names to values")
            pairs: list[tuple[str, Any]] = []
            for key, value in item.items():
                name = str(key).lower()
                if not _METADATA_KEY.fullmatch(name) or name.startswith("grpc-"):
                    raise PayloadError(f"{where}: {key!r} is not a valid metadata name")
                if isinstance(value, dict | list) or value is None:
                    raise PayloadError(f"{where}: the value of {key!r} must be a string")
                try:
                    compiled = compile_tree(value if isinstance(value, str) else str(value))
                except ValueError as exc:
                    raise PayloadError(f"{where}: {exc}") from None
                pairs.append((name, compiled))
            self._items.append(pairs)
        self.count = len(self._items)
        #: The metadata of every call, when it is neither templated nor a list (None: no metadata).
        self.constant: Pairs | None = None
        self.varies = self.count > 1 or any(contains_template(v) for p in self._items for _, v in p)
        if self.count == 1 and not self.varies:
            self.constant = self._render(0, CallContext(0, ""))

    def _render(self, index: int, context: CallContext) -> Pairs:
        out: list[tuple[str, str | bytes]] = []
        for name, value in self._items[index]:
            text = _value_text(render_tree(value, context))
            out.append((name, text.encode() if name.endswith("-bin") else text))
        return tuple(out)

    def get(self, request_number: int, worker_id: str) -> Pairs | None:
        if not self.count:
            return None
        if self.constant is not None:
            return self.constant
        return self._render(request_number % self.count, CallContext(request_number, worker_id, self.facts))


def _value_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
