"""Safe ``if:`` expressions over an experiment's result.

Iter8 evaluated ``if:`` with the expr language (``Result.NumLoops == 10``, ``!Result.Failure``,
``SLOs()``). Here an expression is parsed with Python's ``ast`` and only a small whitelist of node
types is evaluated against plain data: no attribute of a Python object is ever reached, nothing is
imported or called except the functions the caller supplies, and user text is never ``eval``-ed.

Names and fields match case-insensitively, so ``Result.Failure`` and ``result.failure`` both work;
``&&``, ``||`` and ``!`` are accepted as spellings of ``and``, ``or`` and ``not``.
"""

from __future__ import annotations

import ast
import operator
import re
import reprlib
from collections.abc import Callable, Mapping
from typing import Any

from .errors import UsageError


class ExpressionError(UsageError, ValueError):
    """The expression is malformed, or failed while it was evaluated."""


#: Longest expression text: an ``if:`` is a line or two, and parsing cost grows with it.
MAX_TEXT = 10_000
#: Deepest nesting of operations; Python's own recursion limit would otherwise end it as a crash.
MAX_DEPTH = 100
#: Longest string or list an operation may build (``'x' * 1500000000`` would take 1.5 GB).
MAX_SIZE = 100_000
#: How much of a value an error message quotes.
QUOTE = 200


def cut(text: str) -> str:
    """``text`` cut to :data:`QUOTE` characters, for messages."""
    return text if len(text) <= QUOTE else f"{text[: QUOTE - 3]}..."


_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = QUOTE
_REPR.maxlevel = 3


def short(value: Any) -> str:
    """``value`` quoted and cut to :data:`QUOTE` characters, for messages (never rendered whole:
    ``reprlib`` stops at a few items per level, so a large value costs no more than a small one)."""
    return cut(_REPR.repr(value))


_OPERATORS: dict[type[ast.AST], Callable[..., Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Mod: operator.mod,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
    ast.Not: operator.not_,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}
_CONSTANTS = {"true": True, "false": False, "nil": None, "null": None, "none": None}
_EXPR_LANG = re.compile(r"(\"(?:\\.|[^\"\\])*\"|'(?:\\.|[^'\\])*')|&&|\|\||!(?!=)")


def _translate(text: str) -> str:
    def repl(match: re.Match[str]) -> str:
        if match.group(1):
            return match.group(1)
        return {"&&": " and ", "||": " or ", "!": " not "}[match.group(0)]

    return _EXPR_LANG.sub(repl, text)


def _lookup(container: Any, key: str, what: str) -> Any:
    if not isinstance(container, Mapping):
        raise ExpressionError(f"cannot read {short(key)} of {cut(what)} (it is {type(container).__name__})")
    if key in container:
        return container[key]
    folded = {str(k).lower(): v for k, v in container.items()}
    if key.lower() not in folded:
        raise ExpressionError(f"{cut(what)} has no field {short(key)}")
    return folded[key.lower()]


class Expression:
    """A compiled ``if:`` expression."""

    def __init__(self, text: str) -> None:
        self.text = text
        if len(text) > MAX_TEXT:
            raise ExpressionError(f"expression too long ({len(text)} characters; at most {MAX_TEXT})")
        try:
            self._tree = ast.parse(_translate(text).strip(), mode="eval")
        except SyntaxError as exc:
            raise ExpressionError(f"invalid expression {short(text)}: {exc.msg}") from None
        except (RecursionError, MemoryError):
            raise ExpressionError(f"expression nested too deeply (at most {MAX_DEPTH} levels)") from None
        # Iteratively, so that the depth check itself cannot overflow the stack.
        stack: list[tuple[ast.AST, int]] = [(self._tree, 0)]
        while stack:
            node, depth = stack.pop()
            if depth > MAX_DEPTH:
                raise ExpressionError(f"expression nested too deeply (at most {MAX_DEPTH} levels)")
            self._check(node)
            stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
        self._fold_constants(self._tree.body)

    def _fold_constants(self, node: ast.AST) -> None:
        """Evaluate the parts that use no data now, so that ``'x' * 1500000000`` is refused before
        anything runs rather than when the task is reached."""
        if not any(isinstance(n, ast.Attribute | ast.Subscript | ast.Call) for n in ast.walk(node)) and all(
            n.id.lower() in _CONSTANTS for n in ast.walk(node) if isinstance(n, ast.Name)
        ):
            if isinstance(node, ast.BinOp | ast.UnaryOp | ast.Compare | ast.BoolOp):
                self._eval(node, {})
            return
        for child in ast.iter_child_nodes(node):
            self._fold_constants(child)

    def _check(self, node: ast.AST) -> None:
        allowed = (
            ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.BinOp, ast.Compare,
            ast.Name, ast.Load, ast.Attribute, ast.Subscript, ast.Constant, ast.Call, ast.List, ast.Tuple,
            *_OPERATORS,
        )  # fmt: skip
        if not isinstance(node, allowed):
            raise ExpressionError(
                f"invalid expression {short(self.text)}: {type(node).__name__} is not allowed"
            )
        if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            raise ExpressionError(
                f"invalid expression {short(self.text)}: field {short(node.attr)} is not allowed"
            )
        if isinstance(node, ast.Call) and (not isinstance(node.func, ast.Name) or node.keywords):
            raise ExpressionError(
                f"invalid expression {short(self.text)}: only plain function calls are allowed"
            )
        if isinstance(node, ast.Constant) and isinstance(node.value, bytes | complex):
            raise ExpressionError(
                f"invalid expression {short(self.text)}: {type(node.value).__name__} values are not allowed"
            )

    def evaluate(self, names: Mapping[str, Any]) -> Any:
        """Evaluate against ``names``: data (mappings, lists, scalars) and callables for calls."""
        return self._eval(self._tree.body, names)

    def _eval(self, node: ast.AST, names: Mapping[str, Any]) -> Any:
        match node:
            case ast.Constant(value=value):
                return value
            case ast.Name(id=name):
                if name.lower() in _CONSTANTS:
                    return _CONSTANTS[name.lower()]
                return _lookup(names, name, "the expression")
            case ast.Attribute(value=value, attr=attr):
                return _lookup(self._eval(value, names), attr, ast.unparse(value))
            case ast.Subscript(value=value, slice=index):
                container, key = self._eval(value, names), self._eval(index, names)
                try:
                    return container[key]
                except (KeyError, IndexError, TypeError):
                    raise ExpressionError(f"{cut(ast.unparse(node))}: no such element") from None
            case ast.BoolOp(op=op, values=values):
                result: Any = isinstance(op, ast.And)
                for operand in values:
                    result = self._eval(operand, names)
                    if bool(result) != isinstance(op, ast.And):
                        return result
                return result
            case ast.UnaryOp(op=op, operand=operand):
                try:
                    return _OPERATORS[type(op)](self._eval(operand, names))
                except TypeError as exc:
                    raise ExpressionError(f"{cut(ast.unparse(node))}: {cut(str(exc))}") from None
            case ast.BinOp(left=left, op=op, right=right):
                return self._apply(op, self._eval(left, names), self._eval(right, names), node)
            case ast.Compare(left=left, ops=ops, comparators=comparators):
                current = self._eval(left, names)
                for cmp, comparator in zip(ops, comparators, strict=True):
                    other = self._eval(comparator, names)
                    if not self._apply(cmp, current, other, node):
                        return False
                    current = other
                return True
            case ast.Call(func=ast.Name(id=name), args=args):
                function = _lookup(names, name, "the expression")
                if not callable(function):
                    raise ExpressionError(f"{short(name)} is not a function")
                return function(*[self._eval(arg, names) for arg in args])
            case ast.List(elts=elements) | ast.Tuple(elts=elements):
                return [self._eval(element, names) for element in elements]
        raise ExpressionError(
            f"cannot evaluate {short(ast.unparse(node))}"
        )  # pragma: no cover - _check forbids it

    def _apply(self, op: ast.AST, left: Any, right: Any, node: ast.AST) -> Any:
        if isinstance(op, ast.Mod) and isinstance(left, str):
            # printf-style formatting could build a string of any size ('%1000000000d' % 1).
            raise ExpressionError(f"{cut(ast.unparse(node))}: '%' works on numbers only")
        if isinstance(op, ast.Mult | ast.Add):
            size = _result_size(op, left, right)
            if size > MAX_SIZE:
                raise ExpressionError(
                    f"{cut(ast.unparse(node))}: the result would hold {size} items (at most {MAX_SIZE})"
                )
        try:
            return _OPERATORS[type(op)](left, right)
        except (TypeError, ZeroDivisionError, OverflowError) as exc:
            raise ExpressionError(f"{cut(ast.unparse(node))}: {cut(str(exc))}") from None


def _result_size(op: ast.AST, left: Any, right: Any) -> int:
    """How many characters or items ``left op right`` would hold (0 for numbers)."""
    sized = (str, list, tuple, bytes)
    if isinstance(op, ast.Add):
        return len(left) + len(right) if isinstance(left, sized) and isinstance(right, sized) else 0
    for seq, times in ((left, right), (right, left)):
        if isinstance(seq, sized) and isinstance(times, int):
            return len(seq) * max(0, times)
    return 0
