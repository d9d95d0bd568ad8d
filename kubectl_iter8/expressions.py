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
from collections.abc import Callable, Mapping
from typing import Any


class ExpressionError(ValueError):
    """The expression is malformed, or failed while it was evaluated."""


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
        raise ExpressionError(f"cannot read {key!r} of {what} (it is {type(container).__name__})")
    if key in container:
        return container[key]
    folded = {str(k).lower(): v for k, v in container.items()}
    if key.lower() not in folded:
        raise ExpressionError(f"{what} has no field {key!r}")
    return folded[key.lower()]


class Expression:
    """A compiled ``if:`` expression."""

    def __init__(self, text: str) -> None:
        self.text = text
        try:
            self._tree = ast.parse(_translate(text).strip(), mode="eval")
        except SyntaxError as exc:
            raise ExpressionError(f"invalid expression {text!r}: {exc.msg}") from None
        for node in ast.walk(self._tree):
            self._check(node)

    def _check(self, node: ast.AST) -> None:
        allowed = (
            ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.BinOp, ast.Compare,
            ast.Name, ast.Load, ast.Attribute, ast.Subscript, ast.Constant, ast.Call, ast.List, ast.Tuple,
            *_OPERATORS,
        )  # fmt: skip
        if not isinstance(node, allowed):
            raise ExpressionError(f"invalid expression {self.text!r}: {type(node).__name__} is not allowed")
        if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            raise ExpressionError(f"invalid expression {self.text!r}: field {node.attr!r} is not allowed")
        if isinstance(node, ast.Call) and (not isinstance(node.func, ast.Name) or node.keywords):
            raise ExpressionError(f"invalid expression {self.text!r}: only plain function calls are allowed")

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
                    raise ExpressionError(f"{ast.unparse(node)}: no such element") from None
            case ast.BoolOp(op=op, values=values):
                result: Any = isinstance(op, ast.And)
                for operand in values:
                    result = self._eval(operand, names)
                    if bool(result) != isinstance(op, ast.And):
                        return result
                return result
            case ast.UnaryOp(op=op, operand=operand):
                return _OPERATORS[type(op)](self._eval(operand, names))
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
                    raise ExpressionError(f"{name!r} is not a function")
                return function(*[self._eval(arg, names) for arg in args])
            case ast.List(elts=elements) | ast.Tuple(elts=elements):
                return [self._eval(element, names) for element in elements]
        raise ExpressionError(
            f"cannot evaluate {ast.unparse(node)!r}"
        )  # pragma: no cover - _check forbids it

    def _apply(self, op: ast.AST, left: Any, right: Any, node: ast.AST) -> Any:
        try:
            return _OPERATORS[type(op)](left, right)
        except (TypeError, ZeroDivisionError) as exc:
            raise ExpressionError(f"{ast.unparse(node)}: {exc}") from None
