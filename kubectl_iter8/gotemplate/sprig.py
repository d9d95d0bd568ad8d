"""The sprig functions (and Helm's few extras) that Iter8's templates and charts use, and the
common string, list, dict, math, encoding and date ones, with sprig's semantics.

Iter8 rendered with ``sprig.TxtFuncMap()`` plus ``toYaml``; its charts ran under Helm, which adds
``include``, ``tpl``, ``required``, ``toYaml``/``fromYaml``. What is left out: the environment,
file and network functions (refused by name, see :data:`funcs.REFUSED`), random strings,
crypto keys and certificates, semver. Regular expressions run with Python's ``re`` on bounded
input, and patterns with nested quantifiers (``(a+)+``), which could backtrack for hours, are
refused.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import hashlib
import json
import math
import re
import uuid
import zlib
from collections.abc import Callable
from typing import Any

from .funcs import Func, FuncError
from .godate import go_format
from .printf import go_quote
from .values import NO_VALUE, GoStruct, format_f, format_g, format_v, is_true, kind_of, sorted_keys, type_of

#: The longest input a regular expression function reads, and the longest pattern it compiles.
MAX_REGEX_INPUT = 1_000_000
MAX_REGEX_PATTERN = 1_000
#: The most elements ``until``/``untilStep``/``seq`` make, and the most characters ``repeat`` does.
MAX_SEQUENCE = 100_000
MAX_STRING = 1_000_000


def strval(value: Any) -> str:
    """sprig's ``strval``: a string as is, anything else as ``%v`` (nil: ``<nil>``)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return format_v(None if value is NO_VALUE else value, top=False)


def _strslice(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [strval(v) for v in value if v is not None]
    return [strval(value)]


def _list(value: Any, name: str) -> list[Any]:
    if isinstance(value, list | tuple):
        return list(value)
    raise FuncError(f"cannot {name} on type {type_of(value)}")


def _dict(value: Any, name: str) -> dict[Any, Any]:
    if isinstance(value, dict):
        return value
    raise FuncError(f"{name}: expected a map, got {type_of(value)}")


def _int(value: Any) -> int:
    """spf13/cast's ``ToInt64`` as sprig uses it: strings parsed, floats truncated, junk is 0."""
    if value is None or value is NO_VALUE:
        return 0
    if isinstance(value, bool):
        return 1 if value else 0
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return 0
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text, 0) if not re.fullmatch(r"0\d+", text) else int(text, 10)
        except ValueError:
            return 0
    return 0


def _float(value: Any) -> float:
    if value is None or value is NO_VALUE:
        return 0.0
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return 0.0
    return 0.0


def empty(value: Any) -> bool:
    """sprig's ``empty``: Go's zero value (a struct is never empty)."""
    return not is_true(value)


# --- strings ------------------------------------------------------------------------------------


def _title(text: str) -> str:
    """Go's ``strings.Title``: a letter after anything but a letter, digit or ``_`` is upper-cased."""
    out = []
    previous = " "
    for ch in text:
        out.append(ch.upper() if not (previous.isalnum() or previous == "_") else ch)
        previous = ch
    return "".join(out)


def _untitle(text: str) -> str:
    out = []
    previous = " "
    for ch in text:
        out.append(ch.lower() if previous.isspace() else ch)
        previous = ch
    return "".join(out)


def substr(start: Any, end: Any, text: Any) -> str:
    s, e, t = _int(start), _int(end), strval(text)
    if s < 0:
        return t[:e]
    if e < 0 or e > len(t):
        return t[s:]
    return t[s:e]


def trunc(count: Any, text: Any) -> str:
    c, t = _int(count), strval(text)
    if c < 0 and len(t) + c > 0:
        return t[len(t) + c :]
    if c >= 0 and len(t) > c:
        return t[:c]
    return t


def abbrev(width: Any, text: Any) -> str:
    w, t = _int(width), strval(text)
    if w < 4 or len(t) <= w:
        return t
    return t[: w - 3] + "..."


def repeat(count: Any, text: Any) -> str:
    n, t = _int(count), strval(text)
    if n < 0:
        raise FuncError("negative repeat count")
    if n * len(t) > MAX_STRING:
        raise FuncError(f"the result would be longer than {MAX_STRING} characters")
    return t * n


def indent(spaces: Any, text: Any) -> str:
    n, t = _int(spaces), strval(text)
    if n < 0:
        n = 0
    if n * (t.count("\n") + 1) + len(t) > MAX_STRING:
        raise FuncError(f"the result would be longer than {MAX_STRING} characters")
    pad = " " * n
    return pad + t.replace("\n", "\n" + pad)


def nindent(spaces: Any, text: Any) -> str:
    return "\n" + indent(spaces, text)


def replace(old: Any, new: Any, text: Any) -> str:
    o, n, t = strval(old), strval(new), strval(text)
    count = (len(t) + 1) if o == "" else t.count(o)
    if len(t) + count * (len(n) - len(o)) > MAX_STRING:
        raise FuncError(f"the result would be longer than {MAX_STRING} characters")
    return t.replace(o, n)


def quote(*values: Any) -> str:
    return " ".join(go_quote(strval(v)) for v in values if v is not None)


def squote(*values: Any) -> str:
    return " ".join(f"'{strval(v)}'" for v in values if v is not None)


def cat(*values: Any) -> str:
    return " ".join(strval(v) for v in values if v is not None)


def _words(text: str) -> list[str]:
    return re.findall(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+", text)


def snakecase(text: Any) -> str:
    return "_".join(w.lower() for w in _words(strval(text)))


def kebabcase(text: Any) -> str:
    return "-".join(w.lower() for w in _words(strval(text)))


def camelcase(text: Any) -> str:
    return "".join(w[:1].upper() + w[1:] for w in re.split(r"[_\s-]+", strval(text)) if w)


def initials(text: Any) -> str:
    return "".join(w[0] for w in strval(text).split() if w)


def plural(one: Any, many: Any, count: Any) -> str:
    return strval(one) if _int(count) == 1 else strval(many)


def split(sep: Any, text: Any) -> dict[str, str]:
    return {f"_{i}": part for i, part in enumerate(strval(text).split(strval(sep)))}


def split_list(sep: Any, text: Any) -> list[str]:
    s = strval(sep)
    t = strval(text)
    if s == "":
        return list(t)
    return t.split(s)


def splitn(sep: Any, n: Any, text: Any) -> dict[str, str]:
    count = _int(n)
    if count == 0:
        return {}
    parts = strval(text).split(strval(sep), count - 1 if count > 0 else -1)
    return {f"_{i}": part for i, part in enumerate(parts)}


def join(sep: Any, values: Any) -> str:
    return strval(sep).join(_strslice(values))


def wrap(width: Any, text: Any) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(strval(text), max(1, _int(width)), break_long_words=False))


# --- regular expressions --------------------------------------------------------------------------

_NESTED_QUANTIFIER = re.compile(r"\((?:[^()\\]|\\.)*[+*}](?:[^()\\]|\\.)*\)[+*{?]")


def _regex(pattern: Any) -> re.Pattern[str]:
    text = strval(pattern)
    if len(text) > MAX_REGEX_PATTERN:
        raise FuncError(f"regular expression longer than {MAX_REGEX_PATTERN} characters")
    if _NESTED_QUANTIFIER.search(text):
        raise FuncError("nested quantifiers like (a+)+ are not allowed here (they can run for hours)")
    try:
        return re.compile(text)
    except re.error as exc:
        raise FuncError(f"error parsing regexp: {exc}") from None


def _subject(text: Any) -> str:
    t = strval(text)
    if len(t) > MAX_REGEX_INPUT:
        raise FuncError(f"input longer than {MAX_REGEX_INPUT} characters")
    return t


def _expander(template: str) -> Callable[[re.Match[str]], str]:
    """Go's ``Regexp.Expand``: ``$1``, ``${1}``, ``$name``, ``${name}``, ``$$``."""
    token = re.compile(r"\$(\$|\{(\w+)\}|(\w+))")

    def expand(match: re.Match[str]) -> str:
        def group(m: re.Match[str]) -> str:
            if m.group(1) == "$":
                return "$"
            name = m.group(2) or m.group(3)
            try:
                value = match.group(int(name) if name.isdigit() else name)
            except (IndexError, KeyError, re.error):
                return ""
            return value or ""

        return token.sub(group, template)

    return expand


def regex_match(pattern: Any, text: Any) -> bool:
    return _regex(pattern).search(_subject(text)) is not None


def regex_find(pattern: Any, text: Any) -> str:
    match = _regex(pattern).search(_subject(text))
    return match.group(0) if match else ""


def regex_find_all(pattern: Any, text: Any, n: Any) -> list[str]:
    count = _int(n)
    found = [m.group(0) for m in _regex(pattern).finditer(_subject(text))]
    return found if count < 0 else found[:count]


def regex_replace_all(pattern: Any, text: Any, repl: Any) -> str:
    return _regex(pattern).sub(_expander(strval(repl)), _subject(text))


def regex_replace_all_literal(pattern: Any, text: Any, repl: Any) -> str:
    literal = strval(repl)
    return _regex(pattern).sub(lambda _m: literal, _subject(text))


def regex_split(pattern: Any, text: Any, n: Any) -> list[str]:
    count = _int(n)
    if count == 0:
        return []
    parts = _regex(pattern).split(_subject(text), maxsplit=0 if count < 0 else count - 1)
    return parts


# --- lists ----------------------------------------------------------------------------------------


def list_(*values: Any) -> list[Any]:
    return list(values)


def first(values: Any) -> Any:
    items = _list(values, "find first")
    return items[0] if items else None


def rest(values: Any) -> list[Any]:
    return _list(values, "find rest")[1:]


def last(values: Any) -> Any:
    items = _list(values, "find last")
    return items[-1] if items else None


def initial(values: Any) -> list[Any]:
    return _list(values, "find initial")[:-1]


def append(values: Any, value: Any) -> list[Any]:
    return [*_list(values, "push"), value]


def prepend(values: Any, value: Any) -> list[Any]:
    return [value, *_list(values, "prepend")]


def concat(*lists: Any) -> list[Any]:
    out: list[Any] = []
    for items in lists:
        out.extend(_list(items, "concat"))
    return out


def reverse(values: Any) -> list[Any]:
    return list(reversed(_list(values, "reverse")))


def uniq(values: Any) -> list[Any]:
    out: list[Any] = []
    for item in _list(values, "uniq"):
        if item not in out:
            out.append(item)
    return out


def without(values: Any, *omit: Any) -> list[Any]:
    return [v for v in _list(values, "without") if v not in omit]


def has(needle: Any, haystack: Any) -> bool:
    if haystack is None:
        return False
    return needle in _list(haystack, "has")


def compact(values: Any) -> list[Any]:
    return [v for v in _list(values, "compact") if is_true(v)]


def sort_alpha(values: Any) -> list[str]:
    if isinstance(values, list | tuple):
        return sorted(_strslice(values))
    return [strval(values)]


def until(count: Any) -> list[int]:
    n = _int(count)
    return until_step(0, n, 1 if n >= 0 else -1)


def until_step(start: Any, stop: Any, step: Any) -> list[int]:
    a, b, s = _int(start), _int(stop), _int(step)
    if s == 0 or (s > 0 and a >= b) or (s < 0 and a <= b):
        return []
    if abs((b - a) // s) > MAX_SEQUENCE:
        raise FuncError(f"more than {MAX_SEQUENCE} elements")
    return list(range(a, b, s))


def seq(*params: Any) -> str:
    nums = [_int(p) for p in params]
    if len(nums) == 1:
        start, step, end = 1, 1, nums[0]
    elif len(nums) == 2:
        start, end = nums
        step = 1 if end >= start else -1
    elif len(nums) == 3:
        start, step, end = nums
    else:
        return ""
    if step == 0 or (step > 0 and start > end) or (step < 0 and start < end):
        return ""
    if abs((end - start) // step) > MAX_SEQUENCE:
        raise FuncError(f"more than {MAX_SEQUENCE} elements")
    return " ".join(str(i) for i in range(start, end + (1 if step > 0 else -1), step))


def chunk(size: Any, values: Any) -> list[list[Any]]:
    n = _int(size)
    items = _list(values, "chunk")
    if n <= 0:
        raise FuncError("chunk size must be positive")
    return [items[i : i + n] for i in range(0, len(items), n)]


# --- dicts ----------------------------------------------------------------------------------------


def dict_(*pairs: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for i in range(0, len(pairs), 2):
        out[strval(pairs[i])] = pairs[i + 1] if i + 1 < len(pairs) else ""
    return out


def get(mapping: Any, key: Any) -> Any:
    d = _dict(mapping, "get")
    return d.get(key, "")


def set_(mapping: Any, key: Any, value: Any) -> dict[Any, Any]:
    d = _dict(mapping, "set")
    d[strval(key)] = value
    return d


def unset(mapping: Any, key: Any) -> dict[Any, Any]:
    d = _dict(mapping, "unset")
    d.pop(strval(key), None)
    return d


def has_key(mapping: Any, key: Any) -> bool:
    return key in _dict(mapping, "hasKey")


def pluck(key: Any, *mappings: Any) -> list[Any]:
    return [m[key] for m in mappings if isinstance(m, dict) and key in m]


def keys(*mappings: Any) -> list[Any]:
    out: list[Any] = []
    for m in mappings:
        out.extend(sorted_keys(_dict(m, "keys")))
    return out


def values(mapping: Any) -> list[Any]:
    d = _dict(mapping, "values")
    return [d[k] for k in sorted_keys(d)]


def pick(mapping: Any, *names: Any) -> dict[Any, Any]:
    d = _dict(mapping, "pick")
    return {k: d[k] for k in names if k in d}


def omit(mapping: Any, *names: Any) -> dict[Any, Any]:
    d = _dict(mapping, "omit")
    return {k: v for k, v in d.items() if k not in names}


def _merge(dst: dict[Any, Any], src: dict[Any, Any], overwrite: bool) -> None:
    for key, value in src.items():
        if isinstance(value, dict) and isinstance(dst.get(key), dict):
            _merge(dst[key], value, overwrite)
        elif overwrite or key not in dst or empty(dst[key]):
            dst[key] = copy.deepcopy(value)


def merge(dst: Any, *sources: Any) -> dict[Any, Any]:
    d = _dict(dst, "merge")
    for src in sources:
        _merge(d, _dict(src, "merge"), overwrite=False)
    return d


def merge_overwrite(dst: Any, *sources: Any) -> dict[Any, Any]:
    d = _dict(dst, "mergeOverwrite")
    for src in sources:
        _merge(d, _dict(src, "mergeOverwrite"), overwrite=True)
    return d


def deep_copy(value: Any) -> Any:
    return copy.deepcopy(value)


def dig(*args: Any) -> Any:
    if len(args) < 3:
        raise FuncError("dig needs at least three arguments: keys..., default, map")
    *path, default, mapping = args
    current: Any = _dict(mapping, "dig")
    for key in path:
        if not isinstance(current, dict) or strval(key) not in current:
            return default
        current = current[strval(key)]
    return current


# --- defaults and flow ----------------------------------------------------------------------------


def default(fallback: Any, *given: Any) -> Any:
    if not given or empty(given[0]):
        return fallback
    return given[0]


def coalesce(*values: Any) -> Any:
    for value in values:
        if not empty(value):
            return value
    return None


def all_(*values: Any) -> bool:
    return all(not empty(v) for v in values)


def any_(*values: Any) -> bool:
    return any(not empty(v) for v in values)


def ternary(if_true: Any, if_false: Any, condition: Any) -> Any:
    if not isinstance(condition, bool):
        raise FuncError(f"ternary's condition must be a bool, got {type_of(condition)}")
    return if_true if condition else if_false


def fail(message: Any) -> str:
    raise FuncError(strval(message))


def required(message: Any, value: Any) -> Any:
    if value is None or (isinstance(value, str) and value == ""):
        raise FuncError(strval(message))
    return value


# --- JSON and YAML --------------------------------------------------------------------------------

_JSON_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}
_HTML_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"}


def _json_string(text: str, escape_html: bool) -> str:
    out = ['"']
    for ch in text:
        if ch in _JSON_ESCAPES:
            out.append(_JSON_ESCAPES[ch])
        elif escape_html and ch in _HTML_ESCAPES:
            out.append(_HTML_ESCAPES[ch])
        elif ord(ch) < 0x20 or ch in "\u2028\u2029":
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _json_float(value: float) -> str:
    if math.isnan(value) or math.isinf(value):
        raise FuncError(f"json: unsupported value: {format_g(value)}")
    # encoding/json: 'f' format, except exponents below 1e-6 and from 1e21.
    absolute = abs(value)
    if absolute != 0 and (absolute < 1e-6 or absolute >= 1e21):
        text = format_g(value, -1)
        if "e" not in text:
            text = f"{value:e}"
        mantissa, _, exponent = text.partition("e")
        sign = exponent[0]
        digits = exponent[1:].lstrip("0") or "0"
        return f"{mantissa}e{sign if sign == '-' else '+'}{digits}"
    return format_f(value, -1)


def to_json_text(
    value: Any, *, indent: str | None = None, escape_html: bool = True, budget: int = MAX_STRING
) -> str:
    """Go's ``encoding/json`` output: map keys sorted, struct fields in order, Go's number format."""
    out: list[str] = []
    size = 0

    def emit(text: str) -> None:
        nonlocal size
        size += len(text)
        if size > budget:
            raise FuncError(f"the JSON would be longer than {budget} characters")
        out.append(text)

    def walk(item: Any, depth: int) -> None:
        if depth > 200:
            raise FuncError("json: nested too deeply")
        if item is None or item is NO_VALUE:
            emit("null")
        elif isinstance(item, bool):
            emit("true" if item else "false")
        elif isinstance(item, int):
            emit(str(item))
        elif isinstance(item, float):
            emit(_json_float(item))
        elif isinstance(item, str):
            emit(_json_string(item, escape_html))
        elif isinstance(item, dt.datetime):
            emit(_json_string(go_format(item, "2006-01-02T15:04:05.999999999Z07:00"), escape_html))
        elif isinstance(item, dict):
            keys_ = list(item) if isinstance(item, GoStruct) else sorted_keys(item)
            if not keys_:
                emit("{}")
                return
            emit("{")
            for i, key in enumerate(keys_):
                if i:
                    emit(",")
                if indent is not None:
                    emit("\n" + indent * (depth + 1))
                emit(_json_string(strval(key), escape_html))
                emit(": " if indent is not None else ":")
                walk(item[key], depth + 1)
            if indent is not None:
                emit("\n" + indent * depth)
            emit("}")
        elif isinstance(item, list | tuple):
            if not item:
                emit("[]")
                return
            emit("[")
            for i, element in enumerate(item):
                if i:
                    emit(",")
                if indent is not None:
                    emit("\n" + indent * (depth + 1))
                walk(element, depth + 1)
            if indent is not None:
                emit("\n" + indent * depth)
            emit("]")
        else:
            raise FuncError(f"json: unsupported type: {type_of(item)}")

    walk(value, 0)
    return "".join(out)


def to_json(value: Any) -> str:
    return to_json_text(value)


def to_pretty_json(value: Any) -> str:
    return to_json_text(value, indent="  ")


def to_raw_json(value: Any) -> str:
    return to_json_text(value, escape_html=False)


def must_from_json(text: Any) -> Any:
    try:
        return json.loads(strval(text))
    except ValueError as exc:
        raise FuncError(f"invalid JSON: {exc}") from None


def from_json(text: Any) -> Any:
    """sprig's ``fromJson``: nil when the text is not JSON (``mustFromJson`` fails instead)."""
    try:
        return must_from_json(text)
    except FuncError:
        return None


def _plain(value: Any) -> Any:
    """Data as plain dicts and lists (sorted map keys, as sigs.k8s.io/yaml writes them)."""
    if isinstance(value, GoStruct):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, dict):
        return {strval(k): _plain(value[k]) for k in sorted_keys(value)}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is NO_VALUE:
        return None
    if isinstance(value, dt.datetime):
        return go_format(value, "2006-01-02T15:04:05.999999999Z07:00")
    return value


def to_yaml(value: Any) -> str:
    """Iter8's and Helm's ``toYaml``: block YAML, map keys sorted, no trailing newline."""
    import yaml

    # The JSON encoder bounds the size (and refuses what JSON cannot hold) before YAML is made.
    to_json_text(value)
    text = yaml.safe_dump(
        _plain(value), default_flow_style=False, sort_keys=False, allow_unicode=True, width=1 << 30
    )
    if text.endswith("\n...\n"):
        text = text[: -len("...\n")]
    return text.removesuffix("\n")


def from_yaml(text: Any) -> Any:
    from kubectl_iter8 import boundedyaml

    try:
        return boundedyaml.load(strval(text), boundedyaml.DEFAULT_LIMITS)
    except boundedyaml.BoundedYAMLError as exc:
        return {"Error": str(exc)}


# --- types and conversions ------------------------------------------------------------------------


def kind_is(kind: Any, value: Any) -> bool:
    return kind_of(value) == strval(kind)


def type_is(name: Any, value: Any) -> bool:
    return type_of(value) == strval(name)


def deep_equal(a: Any, b: Any) -> bool:
    return bool(a == b and type(a) is type(b))


def atoi(text: Any) -> int:
    try:
        return int(strval(text).strip())
    except ValueError:
        return 0


def to_int(value: Any) -> int:
    return _int(value)


def to_float(value: Any) -> float:
    return _float(value)


def to_string(value: Any) -> str:
    return strval(value)


def to_strings(value: Any) -> list[str]:
    if isinstance(value, list | tuple):
        return [strval(v) for v in value]
    return [strval(value)]


# --- math ------------------------------------------------------------------------------------------


def add(*values: Any) -> int:
    return sum(_int(v) for v in values)


def add1(value: Any) -> int:
    return _int(value) + 1


def sub(a: Any, b: Any) -> int:
    return _int(a) - _int(b)


def mul(a: Any, *values: Any) -> int:
    product = _int(a)
    for v in values:
        product *= _int(v)
    return product


def _go_div(a: int, b: int) -> int:
    if b == 0:
        raise FuncError("integer divide by zero")
    quotient = abs(a) // abs(b)
    return quotient if (a >= 0) == (b >= 0) else -quotient


def div(a: Any, b: Any) -> int:
    return _go_div(_int(a), _int(b))


def mod(a: Any, b: Any) -> int:
    x, y = _int(a), _int(b)
    if y == 0:
        raise FuncError("integer divide by zero")
    return x - y * _go_div(x, y)


def max_(a: Any, *values: Any) -> int:
    return max([_int(a), *(_int(v) for v in values)])


def min_(a: Any, *values: Any) -> int:
    return min([_int(a), *(_int(v) for v in values)])


def addf(*values: Any) -> float:
    return math.fsum(_float(v) for v in values)


def subf(a: Any, *values: Any) -> float:
    result = _float(a)
    for v in values:
        result -= _float(v)
    return result


def mulf(a: Any, *values: Any) -> float:
    result = _float(a)
    for v in values:
        result *= _float(v)
    return result


def divf(a: Any, *values: Any) -> float:
    result = _float(a)
    for v in values:
        divisor = _float(v)
        if divisor == 0:
            raise FuncError("division by zero")
        result /= divisor
    return result


def maxf(a: Any, *values: Any) -> float:
    return max([_float(a), *(_float(v) for v in values)])


def minf(a: Any, *values: Any) -> float:
    return min([_float(a), *(_float(v) for v in values)])


def floor(value: Any) -> float:
    return float(math.floor(_float(value)))


def ceil(value: Any) -> float:
    return float(math.ceil(_float(value)))


def round_(value: Any, places: Any, *round_on: Any) -> float:
    threshold = _float(round_on[0]) if round_on else 0.5
    factor = 10.0 ** _int(places)
    scaled = _float(value) * factor
    whole = math.floor(scaled)
    return (whole + (1 if scaled - whole >= threshold else 0)) / factor


# --- encodings ------------------------------------------------------------------------------------


def b64enc(text: Any) -> str:
    return base64.b64encode(strval(text).encode("utf-8")).decode("ascii")


def b64dec(text: Any) -> str:
    try:
        return base64.b64decode(strval(text), validate=True).decode("utf-8", "replace")
    except ValueError as exc:
        return str(exc)


def b32enc(text: Any) -> str:
    return base64.b32encode(strval(text).encode("utf-8")).decode("ascii")


def b32dec(text: Any) -> str:
    try:
        return base64.b32decode(strval(text)).decode("utf-8", "replace")
    except ValueError as exc:
        return str(exc)


def sha256sum(text: Any) -> str:
    return hashlib.sha256(strval(text).encode("utf-8")).hexdigest()


def sha1sum(text: Any) -> str:
    return hashlib.sha1(strval(text).encode("utf-8"), usedforsecurity=False).hexdigest()


def adler32sum(text: Any) -> str:
    return str(zlib.adler32(strval(text).encode("utf-8")))


def uuidv4() -> str:
    return str(uuid.uuid4())


# --- dates ----------------------------------------------------------------------------------------


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _time(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return dt.datetime.fromtimestamp(value, dt.UTC)
    if isinstance(value, str):
        try:
            return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            pass
    return dt.datetime.now(dt.UTC)


def date(layout: Any, value: Any) -> str:
    return go_format(_time(value), strval(layout))


def date_in_zone(layout: Any, value: Any, zone: Any) -> str:
    name = strval(zone)
    moment = _time(value)
    if name in ("UTC", ""):
        moment = moment.astimezone(dt.UTC)
    else:
        try:
            from zoneinfo import ZoneInfo

            moment = moment.astimezone(ZoneInfo(name))
        except (KeyError, ValueError, OSError):
            moment = moment.astimezone(dt.UTC)
    return go_format(moment, strval(layout))


def html_date(value: Any) -> str:
    return go_format(_time(value), "2006-01-02")


def unix_epoch(value: Any) -> str:
    return str(int(_time(value).timestamp()))


def to_date(layout: Any, text: Any) -> dt.datetime:
    """Reads RFC 3339 (and ISO 8601) times only, whatever the layout says."""
    try:
        return dt.datetime.fromisoformat(strval(text).replace("Z", "+00:00"))
    except ValueError:
        raise FuncError(f"cannot parse {strval(text)!r} as a time (only RFC 3339 is read here)") from None


def duration(seconds: Any) -> str:
    """Go's ``time.Duration.String()`` of whole seconds: ``1h2m3s``."""
    total = _int(seconds)
    if total == 0:
        return "0s"
    sign = "-" if total < 0 else ""
    total = abs(total)
    hours, rest_ = divmod(total, 3600)
    minutes, secs = divmod(rest_, 60)
    if hours:
        return f"{sign}{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{sign}{minutes}m{secs}s"
    return f"{sign}{secs}s"


# --- Helm's template functions ----------------------------------------------------------------------


def include(state: Any, name: Any, data: Any) -> str:
    return str(state.capture(strval(name), data))


def tpl(state: Any, text: Any, data: Any) -> str:
    if state.parse_more is None:
        raise FuncError("tpl is not available here")
    return str(state.parse_more(state, strval(text), data))


_PLAIN: dict[str, Callable[..., Any]] = {
    # strings
    "trim": lambda s: strval(s).strip(),
    "trimAll": lambda cutset, s: strval(s).strip(strval(cutset)),
    "trimPrefix": lambda prefix, s: strval(s).removeprefix(strval(prefix)),
    "trimSuffix": lambda suffix, s: strval(s).removesuffix(strval(suffix)),
    "upper": lambda s: strval(s).upper(),
    "lower": lambda s: strval(s).lower(),
    "title": lambda s: _title(strval(s)),
    "untitle": lambda s: _untitle(strval(s)),
    "substr": substr,
    "trunc": trunc,
    "abbrev": abbrev,
    "repeat": repeat,
    "nospace": lambda s: "".join(strval(s).split()),
    "initials": initials,
    "contains": lambda sub_, s: strval(sub_) in strval(s),
    "hasPrefix": lambda prefix, s: strval(s).startswith(strval(prefix)),
    "hasSuffix": lambda suffix, s: strval(s).endswith(strval(suffix)),
    "quote": quote,
    "squote": squote,
    "cat": cat,
    "indent": indent,
    "nindent": nindent,
    "replace": replace,
    "plural": plural,
    "snakecase": snakecase,
    "camelcase": camelcase,
    "kebabcase": kebabcase,
    "swapcase": lambda s: strval(s).swapcase(),
    "wrap": wrap,
    "split": split,
    "splitList": split_list,
    "splitn": splitn,
    "join": join,
    "toString": to_string,
    "toStrings": to_strings,
    "regexMatch": regex_match,
    "mustRegexMatch": regex_match,
    "regexFind": regex_find,
    "mustRegexFind": regex_find,
    "regexFindAll": regex_find_all,
    "mustRegexFindAll": regex_find_all,
    "regexReplaceAll": regex_replace_all,
    "mustRegexReplaceAll": regex_replace_all,
    "regexReplaceAllLiteral": regex_replace_all_literal,
    "mustRegexReplaceAllLiteral": regex_replace_all_literal,
    "regexSplit": regex_split,
    "mustRegexSplit": regex_split,
    "regexQuoteMeta": lambda s: re.escape(strval(s)),
    # lists
    "list": list_,
    "tuple": list_,
    "first": first,
    "mustFirst": first,
    "rest": rest,
    "mustRest": rest,
    "last": last,
    "mustLast": last,
    "initial": initial,
    "mustInitial": initial,
    "append": append,
    "mustAppend": append,
    "push": append,
    "mustPush": append,
    "prepend": prepend,
    "mustPrepend": prepend,
    "concat": concat,
    "reverse": reverse,
    "mustReverse": reverse,
    "uniq": uniq,
    "mustUniq": uniq,
    "without": without,
    "mustWithout": without,
    "has": has,
    "mustHas": has,
    "compact": compact,
    "mustCompact": compact,
    "sortAlpha": sort_alpha,
    "until": until,
    "untilStep": until_step,
    "seq": seq,
    "chunk": chunk,
    "mustChunk": chunk,
    # dicts
    "dict": dict_,
    "get": get,
    "set": set_,
    "unset": unset,
    "hasKey": has_key,
    "pluck": pluck,
    "keys": keys,
    "values": values,
    "pick": pick,
    "omit": omit,
    "merge": merge,
    "mustMerge": merge,
    "mergeOverwrite": merge_overwrite,
    "mustMergeOverwrite": merge_overwrite,
    "deepCopy": deep_copy,
    "mustDeepCopy": deep_copy,
    "dig": dig,
    # defaults and flow
    "default": default,
    "empty": empty,
    "coalesce": coalesce,
    "all": all_,
    "any": any_,
    "ternary": ternary,
    "fail": fail,
    "required": required,
    # JSON, YAML
    "toJson": to_json,
    "mustToJson": to_json,
    "toPrettyJson": to_pretty_json,
    "mustToPrettyJson": to_pretty_json,
    "toRawJson": to_raw_json,
    "mustToRawJson": to_raw_json,
    "fromJson": from_json,
    "mustFromJson": must_from_json,
    "toYaml": to_yaml,
    "fromYaml": from_yaml,
    # types
    "kindOf": kind_of,
    "kindIs": kind_is,
    "typeOf": type_of,
    "typeIs": type_is,
    "deepEqual": deep_equal,
    "atoi": atoi,
    "int": to_int,
    "int64": to_int,
    "float64": to_float,
    "toDecimal": lambda s: _int(int(strval(s), 8)) if re.fullmatch(r"[0-7]+", strval(s)) else 0,
    # math
    "add": add,
    "add1": add1,
    "sub": sub,
    "mul": mul,
    "div": div,
    "mod": mod,
    "max": max_,
    "min": min_,
    "biggest": max_,
    "addf": addf,
    "add1f": lambda v: _float(v) + 1,
    "subf": subf,
    "mulf": mulf,
    "divf": divf,
    "maxf": maxf,
    "minf": minf,
    "floor": floor,
    "ceil": ceil,
    "round": round_,
    # encodings
    "b64enc": b64enc,
    "b64dec": b64dec,
    "b32enc": b32enc,
    "b32dec": b32dec,
    "sha256sum": sha256sum,
    "sha1sum": sha1sum,
    "adler32sum": adler32sum,
    "uuidv4": uuidv4,
    # dates
    "now": now,
    "date": date,
    "dateInZone": date_in_zone,
    "date_in_zone": date_in_zone,
    "htmlDate": html_date,
    "unixEpoch": unix_epoch,
    "toDate": to_date,
    "mustToDate": to_date,
    "duration": duration,
}

SPRIG: dict[str, Func] = {name: Func.of(fn) for name, fn in _PLAIN.items()}
SPRIG["include"] = Func.of(include, needs_state=True)
SPRIG["tpl"] = Func.of(tpl, needs_state=True)
