"""Template data as Go sees it: zero values and truth, kinds, and printing with ``%v``.

Data is plain JSON-like Python (dict, list, str, int, float, bool, None) plus :class:`GoStruct`,
a map that stands for a Go struct Iter8 passed to its templates (``.Report``): fields are reached
by their Go names (``.Report.NumTasks``) while the JSON functions write the JSON names
(``numTasks``), as Go's ``encoding/json`` did. ``NO_VALUE`` is Go's invalid value: what a missing
map key gives, printed as ``<no value>``.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
from typing import Any

from .godate import go_format


class _NoValue:
    """Go's invalid ``reflect.Value``: a missing map key or field of a missing value."""

    _instance: _NoValue | None = None

    def __new__(cls) -> _NoValue:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NO_VALUE"

    def __bool__(self) -> bool:
        return False


NO_VALUE: Any = _NoValue()


class GoStruct(dict[str, Any]):
    """A Go struct given to a template: a dict of its JSON fields, reached by their Go names.

    ``fields`` maps a Go field name to its JSON key; without it, a Go name is its JSON key with the
    first letter upper-cased (``numTasks`` -> ``NumTasks``).
    """

    def __init__(self, type_name: str, values: dict[str, Any], fields: dict[str, str] | None = None) -> None:
        super().__init__(values)
        self.type_name = type_name
        self.fields = fields if fields is not None else {key[:1].upper() + key[1:]: key for key in values}

    def field(self, name: str) -> tuple[bool, Any]:
        key = self.fields.get(name)
        if key is None:
            return False, None
        return True, self.get(key)


def is_true(value: Any) -> bool:
    """Go's truth: the zero value of its type (false, 0, "", nil, empty map/list) is false."""
    if value is None or value is NO_VALUE:
        return False
    if isinstance(value, GoStruct):
        return True
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, str | list | tuple | dict):
        return len(value) > 0
    return True


def kind_of(value: Any) -> str:
    """Go's reflect kind of a value as template data would hold it (sprig's ``kindOf``)."""
    if value is None or value is NO_VALUE:
        return "invalid"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, GoStruct | dt.datetime):
        return "struct"
    if isinstance(value, dict):
        return "map"
    if isinstance(value, list | tuple):
        return "slice"
    return "invalid"


def type_of(value: Any) -> str:
    """Go's type name (sprig's ``typeOf``): ``map[string]interface {}``, ``[]interface {}``, ..."""
    if value is None or value is NO_VALUE:
        return "<nil>"
    if isinstance(value, GoStruct):
        return value.type_name
    if isinstance(value, dt.datetime):
        return "time.Time"
    if isinstance(value, dict):
        return "map[string]interface {}"
    if isinstance(value, list | tuple):
        return "[]interface {}"
    return kind_of(value)


# --- floats ------------------------------------------------------------------------------------


def _digits(value: float) -> tuple[str, int]:
    """The shortest decimal digits of ``value`` (no sign) and its exponent: 0.d1d2... x 10^exp."""
    _sign, digits, exponent = decimal.Decimal(repr(abs(value))).as_tuple()
    text = "".join(map(str, digits)).lstrip("0") or "0"
    assert isinstance(exponent, int)
    # Decimal: value = int(digits) * 10^exponent; strip trailing zeros into the exponent.
    stripped = text.rstrip("0") or "0"
    exponent += len(text) - len(stripped)
    point = len(stripped) + exponent
    return stripped, point


def _special(value: float) -> str | None:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return None


def format_e(value: float, prec: int, upper: bool = False) -> str:
    """Go's ``%e`` (prec < 0: the shortest digits)."""
    special = _special(value)
    if special:
        return special
    if prec < 0:
        if value == 0:
            mantissa, exp = "0", 0
        else:
            digits, point = _digits(value)
            exp = point - 1
            mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        text = (
            f"{'-' if math.copysign(1, value) < 0 else ''}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
        )
    else:
        text = f"{value:.{prec}e}"
        mantissa, _, exp_text = text.partition("e")
        exp = int(exp_text)
        text = f"{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    return text.upper() if upper else text


def format_f(value: float, prec: int) -> str:
    """Go's ``%f`` (prec < 0: the shortest digits, as ``strconv.FormatFloat(f, 'f', -1, 64)``)."""
    special = _special(value)
    if special:
        return special
    if prec >= 0:
        return f"{value:.{prec}f}"
    if value == 0:
        return "-0" if math.copysign(1, value) < 0 else "0"
    digits, point = _digits(value)
    sign = "-" if value < 0 else ""
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return f"{sign}{digits}{'0' * (point - len(digits))}"
    return f"{sign}{digits[:point]}.{digits[point:]}"


def format_g(value: float, prec: int = -1, upper: bool = False) -> str:
    """Go's ``%g``/``%v`` of a float64: the shortest digits (or ``prec`` significant ones), with an
    exponent when it is below -4 or from 6 (shortest) or the precision on (``1e+06``, ``1e-05``)."""
    special = _special(value)
    if special:
        return special
    if value == 0:
        return "-0" if math.copysign(1, value) < 0 else "0"
    if prec < 0:
        digits, point = _digits(value)
        eprec = 6
    else:
        precision = max(prec, 1)
        digits, point = _digits(float(f"{value:.{precision - 1}e}"))
        eprec = precision
        if eprec > len(digits) and len(digits) >= point:
            eprec = len(digits)
    exp = point - 1
    sign = "-" if value < 0 else ""
    if exp < -4 or exp >= eprec:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        text = f"{sign}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
        return text.upper() if upper else text
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return f"{sign}{digits}{'0' * (point - len(digits))}"
    return f"{sign}{digits[:point]}.{digits[point:]}"


def format_time(value: dt.datetime) -> str:
    """Go's ``time.Time.String()``: ``2006-01-02 15:04:05.999999999 -0700 MST``."""
    return go_format(value, "2006-01-02 15:04:05.999999999 -0700 MST")


def format_v(value: Any, top: bool = True) -> str:
    """Go's ``fmt.Sprint`` of one value (``%v``); at the top of an action nil prints ``<no value>``."""
    if value is NO_VALUE or value is None:
        return "<no value>" if top else "<nil>"
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format_g(value)
    if isinstance(value, GoStruct):
        return "{" + " ".join(format_v(v, top=False) for v in value.values()) + "}"
    if isinstance(value, dict):
        return (
            "map["
            + " ".join(f"{format_v(k, False)}:{format_v(value[k], False)}" for k in sorted_keys(value))
            + "]"
        )
    if isinstance(value, list | tuple):
        return "[" + " ".join(format_v(v, top=False) for v in value) + "]"
    if isinstance(value, dt.datetime):
        return format_time(value)
    if isinstance(value, bytes):
        return "[" + " ".join(str(b) for b in value) + "]"
    return str(value)


def sorted_keys(mapping: dict[Any, Any]) -> list[Any]:
    """Keys in Go's order for printing and ranging: numbers numerically, strings bytewise."""
    try:
        return sorted(mapping)
    except TypeError:
        return sorted(mapping, key=lambda k: (type(k).__name__, str(k)))
