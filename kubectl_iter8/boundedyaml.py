"""A YAML loader with limits, for YAML that someone else wrote and this process must survive.

PyYAML's ``safe_load`` shares the node of an anchor between its aliases, so a few hundred bytes of
nested aliases ("billion laughs") build a structure with billions of leaves: harmless until
something walks it (validation, ``str()`` of an error, a dump), which then takes minutes and
gigabytes. Kubernetes' own YAML decoder limits alias expansion for the same reason. Here every
limit is checked on the composed node graph, *before* any Python object is constructed:

* the input's size (``max_bytes``);
* the number of aliases (``max_aliases``) and the nesting depth (``max_depth``), counted while
  composing (the composer is recursive, so depth also bounds its stack);
* the number of nodes once every alias is expanded (``max_nodes``); a recursive alias is refused.

Errors are :class:`BoundedYAMLError`, a ``yaml.YAMLError``, with a one-line message.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, SequenceNode


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 256 * 1024
    max_aliases: int = 100
    max_depth: int = 64
    max_nodes: int = 100_000


DEFAULT_LIMITS = Limits()


class BoundedYAMLError(yaml.YAMLError):
    """The document exceeds a limit, or is not valid YAML (one line, short)."""


def _one_line(exc: BaseException, limit: int = 300) -> str:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem:
        mark = exc.problem_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        text = f"{exc.problem}{where}"
    else:
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _Loader(yaml.SafeLoader):
    def __init__(self, stream: str, limits: Limits) -> None:
        super().__init__(stream)
        self.limits = limits
        self.aliases = 0
        self.depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        if self.check_event(AliasEvent):
            self.aliases += 1
            if self.aliases > self.limits.max_aliases:
                raise BoundedYAMLError(f"more than {self.limits.max_aliases} YAML aliases")
        self.depth += 1
        try:
            if self.depth > self.limits.max_depth:
                raise BoundedYAMLError(f"YAML nested deeper than {self.limits.max_depth} levels")
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def _check_expansion(root: Node, limits: Limits) -> None:
    """Count the nodes of ``root`` with every alias expanded, without expanding anything."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node: Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_nodes:
            raise BoundedYAMLError("recursive YAML alias")
        open_nodes.add(key)
        total = 1
        if isinstance(node, SequenceNode):
            children: list[Node] = list(node.value)
        elif isinstance(node, MappingNode):
            children = [part for pair in node.value for part in pair]
        else:
            children = []
        for child in children:
            total += size(child)
            if total > limits.max_nodes:
                raise BoundedYAMLError(f"YAML expands to more than {limits.max_nodes} nodes (aliases)")
        open_nodes.discard(key)
        sizes[key] = total
        return total

    size(root)


def load_all(text: str, limits: Limits = DEFAULT_LIMITS) -> Iterator[Any]:
    """Every document of ``text``, as ``yaml.safe_load_all`` would give them, within ``limits``.

    :raises BoundedYAMLError: over a limit, or not valid YAML.
    """
    if len(text.encode("utf-8", "surrogatepass")) > limits.max_bytes:
        raise BoundedYAMLError(f"YAML larger than {limits.max_bytes} bytes")
    loader = _Loader(text, limits)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            _check_expansion(node, limits)
            yield loader.construct_document(node)
    except BoundedYAMLError:
        raise
    except yaml.YAMLError as exc:
        raise BoundedYAMLError(_one_line(exc)) from None
    except RecursionError:
        raise BoundedYAMLError("YAML nested too deeply") from None
    finally:
        loader.dispose()


def load(text: str, limits: Limits = DEFAULT_LIMITS) -> Any:
    """The single document of ``text`` (None when empty), as ``yaml.safe_load``, within ``limits``.

    :raises BoundedYAMLError: over a limit, not valid YAML, or more than one document.
    """
    documents = list(load_all(text, limits))
    if len(documents) > 1:
        raise BoundedYAMLError("expected a single YAML document, found several")
    return documents[0] if documents else None


def truncate(text: str, limit: int = 1024) -> str:
    """``text`` cut to at most ``limit`` characters, marked when cut: for errors stored or echoed."""
    return text if len(text) <= limit else text[: limit - 15] + "... (truncated)"
