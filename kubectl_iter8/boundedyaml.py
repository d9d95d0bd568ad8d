"""A YAML loader with limits, for YAML that someone else wrote and this process must survive.

PyYAML's ``safe_load`` shares the node of an anchor between its aliases, so a few hundred bytes of
nested aliases ("billion laughs") build a structure with billions of leaves: harmless until
something walks it (validation, ``str()`` of an error, a dump, ``==``), which then takes minutes
and gigabytes. Kubernetes' own YAML decoder limits alias expansion for the same reason. Here every
limit is checked on the composed node graph, *before* any Python object is constructed:

* the input's size (``max_bytes``);
* the number of alias uses (``max_aliases``) and the nesting depth (``max_depth``);
* the number of nodes once every alias is expanded (``max_nodes``); a recursive alias is refused.

The graph is composed by libyaml when PyYAML has it (fast, and libyaml itself refuses nesting
deeper than 1000 before recursing), else by PyYAML's pure-Python composer, whose recursion Python
bounds. Errors are :class:`BoundedYAMLError`, a ``yaml.YAMLError``, with a one-line message.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, SequenceNode

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 256 * 1024
    max_aliases: int = 100
    max_depth: int = 64
    max_nodes: int = 100_000


DEFAULT_LIMITS = Limits()
#: For experiment files, values files and provider specs: a person's input, larger than a routemap.
INPUT_LIMITS = Limits(max_bytes=4 * 1024 * 1024, max_nodes=200_000)
#: For stored experiments (results hold a histogram per metric and version): written by this
#: program, still read with limits because anyone who can edit the file or Secret can write them.
STORED_LIMITS = Limits(max_bytes=32 * 1024 * 1024, max_nodes=1_000_000)


class BoundedYAMLError(yaml.YAMLError):
    """The document exceeds a limit, or is not valid YAML (one line, short).

    ``problem`` is the message without its place; ``line`` and ``column`` (1-based) say where the
    parser stopped, when it says so.
    """

    def __init__(self, problem: str, line: int | None = None, column: int | None = None) -> None:
        self.problem = problem if len(problem) <= 300 else problem[:297] + "..."
        self.line, self.column = line, column
        where = f" (line {line}, column {column})" if line is not None else ""
        super().__init__(self.problem + where)


def _from_parser(exc: yaml.YAMLError) -> BoundedYAMLError:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem:
        mark = exc.problem_mark
        if mark is not None:
            return BoundedYAMLError(exc.problem, mark.line + 1, mark.column + 1)
        return BoundedYAMLError(exc.problem)
    return BoundedYAMLError(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)


def _check_graph(root: Node, limits: Limits) -> None:
    """Count depth, alias uses and the nodes of ``root`` with every alias expanded, expanding nothing.

    A node met a second time can only have been reached through an alias: that is an alias use,
    and its expanded size is taken from the first visit.
    """
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    aliases = 0

    def size(node: Node, depth: int) -> int:
        nonlocal aliases
        key = id(node)
        if key in open_nodes:
            raise BoundedYAMLError("recursive YAML alias")
        if key in sizes:
            aliases += 1
            if aliases > limits.max_aliases:
                raise BoundedYAMLError(f"more than {limits.max_aliases} YAML aliases")
            return sizes[key]
        if depth > limits.max_depth:
            raise BoundedYAMLError(f"YAML nested deeper than {limits.max_depth} levels")
        open_nodes.add(key)
        total = 1
        if isinstance(node, SequenceNode):
            children: list[Node] = list(node.value)
        elif isinstance(node, MappingNode):
            children = [part for pair in node.value for part in pair]
        else:
            children = []
        for child in children:
            total += size(child, depth + 1)
            if total > limits.max_nodes:
                raise BoundedYAMLError(f"YAML expands to more than {limits.max_nodes} nodes (aliases)")
        open_nodes.discard(key)
        sizes[key] = total
        return total

    size(root, 1)


def load_all(text: str, limits: Limits = DEFAULT_LIMITS) -> Iterator[Any]:
    """Every document of ``text``, as ``yaml.safe_load_all`` would give them, within ``limits``.

    :raises BoundedYAMLError: over a limit, or not valid YAML.
    """
    if len(text.encode("utf-8", "surrogatepass")) > limits.max_bytes:
        raise BoundedYAMLError(f"YAML larger than {limits.max_bytes} bytes")
    loader = _Loader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            _check_graph(node, limits)
            yield loader.construct_document(node)
    except BoundedYAMLError:
        raise
    except yaml.YAMLError as exc:
        raise _from_parser(exc) from None
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
