"""A Jinja2 sandbox with limits on time and size, for templates written by a routemap's author.

Jinja2's ``ImmutableSandboxedEnvironment`` stops templates from reaching Python internals and from
mutating lists and dicts, but not from exhausting the process: ``{{ n ** (n ** n) }}`` runs in C
for ever (holding the GIL, so every thread of the controller stops), ``"x" * 10**10`` or nested
``range`` loops take gigabytes. The controller renders these templates in its own process, so
here every way to grow a value is checked *before* it grows:

* ``**``, ``*``, ``+`` and ``%`` (intercepted binary operators) refuse results beyond the limits;
* ``~`` (concatenation; compiled through :class:`_CodeGenerator`), the ``join``, ``center``,
  ``indent``, ``format`` and ``replace`` filters, the padding and joining methods of strings and
  ``namespace`` assignments refuse strings longer than ``MAX_SIZE``; ``str.format`` is refused;
* ``range`` yields at most ``MAX_RANGE`` items;
* :func:`render` stops at ``MAX_SIZE`` characters of output, and after ``MAX_SECONDS`` of
  template code (a trace function on the template's own frames, the only place a loop can spin).

The limits are far above what routing objects need (a VirtualService is a few KiB).
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache, wraps
from types import FrameType
from typing import Any

from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError
from jinja2.filters import FILTERS
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace

#: Longest string (and output) a template may build, in characters.
MAX_SIZE = 256 * 1024
#: Longest list a template may build, and the most items one ``range`` yields.
MAX_ITEMS = 10_000
MAX_RANGE = 10_000
#: Largest integer a template may compute, in bits (``2 ** 4096`` is plenty for any routing object).
MAX_INT_BITS = 4096
#: Time one rendering may spend in template code.
MAX_SECONDS = 2.0

TEMPLATE_FILENAME = "<template>"
_PRINTF_WIDTH = re.compile(r"%[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")
_FORMAT_WIDTH = re.compile(r"\d+")


class TemplateLimitError(SecurityError):
    """A template went over a limit (size, time, range)."""


def _too_big(what: str) -> TemplateLimitError:
    return TemplateLimitError(f"{what} exceeds the template limit ({MAX_SIZE} characters)")


def _size(value: Any) -> int:
    return len(value) if isinstance(value, str | bytes | list | tuple) else 0


def _check_printf(fmt: str) -> None:
    for match in _PRINTF_WIDTH.finditer(fmt):
        for part in match.groups():
            if part == "*" or (part is not None and int(part) > MAX_SIZE):
                raise _too_big("a %-format width")


def _bounded_range(*args: int) -> range:
    rng = range(*args)
    if len(rng) > MAX_RANGE:
        raise TemplateLimitError(f"range of {len(rng)} items exceeds the template limit ({MAX_RANGE})")
    return rng


def _concat(values: Iterable[Any]) -> str:
    parts = [str(v) for v in values]
    if sum(map(len, parts)) > MAX_SIZE:
        raise _too_big("a concatenation (~)")
    return "".join(parts)


class BoundedNamespace(Namespace):
    """``namespace()``, whose attributes cannot grow beyond the limits (the one mutable store)."""

    def __setitem__(self, name: str, value: Any) -> None:
        if _size(value) > MAX_SIZE:
            raise _too_big(f"namespace attribute {name!r}")
        super().__setitem__(name, value)


def _checked_filter(name: str, check: Callable[..., None]) -> Callable[..., Any]:
    original = FILTERS[name]

    # wraps() keeps jinja_pass_arg: join and replace take the evaluation context first.
    @wraps(original)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        check(*args, **kwargs)
        result = original(*args, **kwargs)
        if _size(result) > MAX_SIZE:
            raise _too_big(f"the {name} filter's result")
        return result

    return bounded


def _check_width(value: Any, width: Any = 80, *args: Any, **kwargs: Any) -> None:
    width = kwargs.get("width", width)
    if isinstance(width, int) and width > MAX_SIZE:
        raise _too_big("a width")
    if isinstance(width, str) and len(width) > MAX_SIZE:
        raise _too_big("an indent")


def _check_join(value: Any, *args: Any, **kwargs: Any) -> None:
    items = list(value) if isinstance(value, list | tuple) else []
    if sum(len(str(v)) for v in items) > MAX_SIZE:
        raise _too_big("a join")


def _check_format(value: Any, *args: Any, **kwargs: Any) -> None:
    _check_printf(str(value))


def _check_replace(value: Any, old: Any = "", new: Any = "", *args: Any, **kwargs: Any) -> None:
    text, old, new = str(value), str(old), str(new)
    grows = len(new) - len(old)
    count = (len(text) + 1) if not old else text.count(old)
    if grows > 0 and len(text) + count * grows > MAX_SIZE:
        raise _too_big("a replace")


_STR_METHOD_CHECKS: dict[str, Callable[..., None]] = {
    "center": _check_width,
    "ljust": _check_width,
    "rjust": _check_width,
    "zfill": _check_width,
    "expandtabs": lambda value, size=8, *a, **k: _check_width(value, size * len(str(value))),
    "join": lambda sep, items, *a, **k: _check_join([*(items if isinstance(items, list | tuple) else [])]),
    "replace": _check_replace,
}


class _CodeGenerator(CodeGenerator):
    """Compiles ``~`` to the environment's bounded concatenation instead of an unbounded join."""

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.bounded_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class BoundedEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox with the limits of this module's docstring."""

    code_generator_class = _CodeGenerator
    intercepted_binops = frozenset(["*", "**", "+", "%"])

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.globals["range"] = _bounded_range
        self.globals["namespace"] = BoundedNamespace
        self.filters["join"] = _checked_filter("join", lambda _ctx, value, *a, **k: _check_join(value))
        self.filters["center"] = _checked_filter("center", _check_width)
        self.filters["indent"] = _checked_filter("indent", _check_width)
        self.filters["format"] = _checked_filter("format", _check_format)
        self.filters["replace"] = _checked_filter("replace", lambda _ctx, *a, **k: _check_replace(*a, **k))

    @staticmethod
    def bounded_concat(values: Iterable[Any]) -> str:
        return _concat(values)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        return None  # no sandboxed str.format: is_safe_attribute refuses it instead

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        # Format specs carry widths ("{:>999999999}") that no argument check sees.
        if isinstance(obj, str) and attr in ("format", "format_map"):
            return False
        return super().is_safe_attribute(obj, attr, value)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(left, int) and isinstance(right, int):
            if right > 0 and abs(left) > 1 and right * left.bit_length() > MAX_INT_BITS:
                raise TemplateLimitError(f"a power above {MAX_INT_BITS} bits exceeds the template limit")
        elif operator == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple) and isinstance(times, int):
                    limit = MAX_SIZE if isinstance(seq, str) else MAX_ITEMS
                    if times > 0 and len(seq) * times > limit:
                        raise _too_big("a repetition (*)")
            ints = isinstance(left, int) and isinstance(right, int)
            if ints and left.bit_length() + right.bit_length() > MAX_INT_BITS:
                raise TemplateLimitError(f"a product above {MAX_INT_BITS} bits exceeds the template limit")
        elif operator == "+" and isinstance(left, Sequence) and isinstance(right, Sequence):
            limit = MAX_SIZE if isinstance(left, str | bytes) else MAX_ITEMS
            if len(left) + len(right) > limit:
                raise _too_big("a sum (+)")
        elif operator == "%" and isinstance(left, str):
            _check_printf(left)
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        owner = getattr(__obj, "__self__", None)
        check = _STR_METHOD_CHECKS.get(getattr(__obj, "__name__", "")) if isinstance(owner, str) else None
        if check is not None:
            check(owner, *args, **kwargs)
        return super().call(__context, __obj, *args, **kwargs)


@lru_cache(maxsize=1)
def environment() -> BoundedEnvironment:
    from jinja2 import StrictUndefined

    return BoundedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)


def render(source: str, data: dict[str, Any], *, max_seconds: float = MAX_SECONDS) -> str:
    """``source`` rendered with ``data``, within the limits.

    :raises TemplateLimitError: over a limit; any Jinja2 error as Jinja2 raises it.
    """
    template = environment().from_string(source)
    deadline = time.monotonic() + max_seconds

    def on_line(frame: FrameType, event: str, arg: Any) -> Any:
        if event == "line" and time.monotonic() > deadline:
            raise TemplateLimitError(f"rendering took longer than {max_seconds:g} s")
        return on_line

    def on_call(frame: FrameType, event: str, arg: Any) -> Any:
        # Only the template's own code is traced: loops over ranges are where time goes.
        return on_line if frame.f_code.co_filename == TEMPLATE_FILENAME else None

    previous = sys.gettrace()
    sys.settrace(on_call)
    try:
        parts: list[str] = []
        size = 0
        for chunk in template.generate(data):
            size += len(chunk)
            if size > MAX_SIZE:
                raise _too_big("the output")
            parts.append(chunk)
        return "".join(parts)
    finally:
        sys.settrace(previous)
