"""What a template function is here: a Python callable with Go's arity rules, and the sandbox's
refusals.

A function raises :class:`FuncError` (or ValueError/TypeError/...) to fail; the executor turns that
into Go's ``error calling NAME: ...``. ``fail``/``required`` raise :class:`FuncError` with the
user's own message.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


class FuncError(Exception):
    """A template function refused its arguments; the message is one line."""


@dataclass(frozen=True)
class Func:
    """A template function: ``fn(*args)``, or ``fn(state, *args)`` when ``needs_state``."""

    fn: Callable[..., Any]
    min_args: int
    max_args: int | None
    needs_state: bool = False

    @classmethod
    def of(cls, fn: Callable[..., Any], *, needs_state: bool = False) -> Func:
        params = list(inspect.signature(fn).parameters.values())
        if needs_state:
            params = params[1:]
        positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        variadic = any(p.kind is p.VAR_POSITIONAL for p in params)
        required = sum(1 for p in positional if p.default is p.empty)
        return cls(fn, required, None if variadic else len(positional), needs_state)


#: Functions of Go or sprig that the sandbox does not offer, and why.
REFUSED = {
    "call": "calls a Go function value; template data here holds none",
    "env": "reads the process environment",
    "expandenv": "reads the process environment",
    "getHostByName": "makes a DNS query",
    "readFile": "reads a file",
    "lookup": "reads the cluster",
    "osBase": "file paths are not available",
    "osDir": "file paths are not available",
    "osClean": "file paths are not available",
    "osExt": "file paths are not available",
    "osIsAbs": "file paths are not available",
}
