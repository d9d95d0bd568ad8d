"""The functions every Go template has (``text/template``'s builtins, less ``call``).

``and`` and ``or`` are evaluated by the executor (they stop early); the rest are here. Comparisons
follow Go's: ``eq`` with several arguments is true when the first equals any other; lists and
maps cannot be compared; strings do not compare with numbers. One difference, on purpose: ints
and floats compare by value (YAML data holds both, where Iter8's JSON data held only float64).
"""

from __future__ import annotations

import urllib.parse
from typing import Any

from .funcs import Func, FuncError
from .printf import sprint, sprintf, sprintln
from .values import NO_VALUE, GoStruct, is_true, type_of


def _kind(value: Any) -> str:
    if value is None or value is NO_VALUE:
        return "nil"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "other"


def _equal(a: Any, b: Any) -> bool:
    ka, kb = _kind(a), _kind(b)
    if ka == "other" or kb == "other":
        raise FuncError("non-comparable type")
    if ka == "nil" or kb == "nil":
        return ka == kb
    if ka != kb:
        raise FuncError("incompatible types for comparison")
    return bool(a == b)


def eq(arg1: Any, *args: Any) -> bool:
    if not args:
        raise FuncError("missing argument for comparison")
    return any(_equal(arg1, arg) for arg in args)


def ne(arg1: Any, arg2: Any) -> bool:
    return not _equal(arg1, arg2)


def _less(a: Any, b: Any) -> bool:
    ka, kb = _kind(a), _kind(b)
    if ka not in ("number", "string") or kb not in ("number", "string"):
        raise FuncError("invalid type for comparison")
    if ka != kb:
        raise FuncError("incompatible types for comparison")
    return bool(a < b)


def lt(a: Any, b: Any) -> bool:
    return _less(a, b)


def le(a: Any, b: Any) -> bool:
    return _less(a, b) or _equal(a, b)


def gt(a: Any, b: Any) -> bool:
    return not le(a, b)


def ge(a: Any, b: Any) -> bool:
    return not lt(a, b)


def not_(value: Any) -> bool:
    return not is_true(value)


def length(value: Any) -> int:
    if isinstance(value, str):
        # Go counts bytes.
        return len(value.encode("utf-8"))
    if isinstance(value, list | tuple | dict):
        return len(value)
    raise FuncError(f"len of type {type_of(value)}")


def _int_index(value: Any, size: int, cap: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise FuncError(f"cannot index slice/array with type {type_of(value)}")
    if value < 0 or value > (size if cap is None else cap) or (cap is None and value >= size):
        raise FuncError(f"index out of range: {value}")
    return value


def index(item: Any, *indexes: Any) -> Any:
    for key in indexes:
        if item is None or item is NO_VALUE:
            raise FuncError("index of untyped nil")
        if isinstance(item, GoStruct):
            raise FuncError(f"can't index item of type {item.type_name}")
        if isinstance(item, dict):
            item = item.get(key)
        elif isinstance(item, list | tuple):
            item = item[_int_index(key, len(item))]
        elif isinstance(item, str):
            data = item.encode("utf-8")
            item = data[_int_index(key, len(data))]
        else:
            raise FuncError(f"can't index item of type {type_of(item)}")
    return item


def slice_(item: Any, *indexes: Any) -> Any:
    if item is None:
        raise FuncError("slice of untyped nil")
    if len(indexes) > 3:
        raise FuncError(f"too many slice indexes: {len(indexes)}")
    if isinstance(item, str):
        if len(indexes) == 3:
            raise FuncError("cannot 3-index slice a string")
        size = len(item)
    elif isinstance(item, list | tuple):
        size = len(item)
    else:
        raise FuncError(f"can't slice item of type {type_of(item)}")
    bounds = [0, size]
    for i, value in enumerate(indexes[:2]):
        bounds[i] = _int_index(value, size, size)
    if bounds[0] > bounds[1]:
        raise FuncError(f"invalid slice index: {bounds[0]} > {bounds[1]}")
    return item[bounds[0] : bounds[1]] if isinstance(item, str) else list(item[bounds[0] : bounds[1]])


def _args_text(args: tuple[Any, ...]) -> str:
    if len(args) == 1 and isinstance(args[0], str):
        return args[0]
    return sprint(list(args))


def html(*args: Any) -> str:
    text = _args_text(args)
    return (
        text.replace("&", "&amp;")
        .replace("'", "&#39;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&#34;")
        .replace("\x00", "\ufffd")
    )


_JS = {
    "\\": "\\\\",
    "'": "\\'",
    '"': '\\"',
    "<": "\\u003C",
    ">": "\\u003E",
    "&": "\\u0026",
    "=": "\\u003D",
    "`": "\\u0060",
}


def js(*args: Any) -> str:
    out = []
    for ch in _args_text(args):
        if ch in _JS:
            out.append(_JS[ch])
        elif ord(ch) < 0x20:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return "".join(out)


def urlquery(*args: Any) -> str:
    return urllib.parse.quote_plus(_args_text(args), safe="")


def print_(*args: Any) -> str:
    return sprint(list(args))


def printf(fmt: str, *args: Any) -> str:
    if not isinstance(fmt, str):
        raise FuncError(f"printf's format must be a string, not {type_of(fmt)}")
    return sprintf(fmt, list(args))


def println(*args: Any) -> str:
    return sprintln(list(args))


BUILTINS: dict[str, Func] = {
    "and": Func(lambda *a: None, 1, None),
    "or": Func(lambda *a: None, 1, None),
    "not": Func.of(not_),
    "len": Func.of(length),
    "index": Func.of(index),
    "slice": Func.of(slice_),
    "print": Func.of(print_),
    "printf": Func.of(printf),
    "println": Func.of(println),
    "eq": Func.of(eq),
    "ne": Func.of(ne),
    "lt": Func.of(lt),
    "le": Func.of(le),
    "gt": Func.of(gt),
    "ge": Func.of(ge),
    "html": Func.of(html),
    "js": Func.of(js),
    "urlquery": Func.of(urlquery),
}
