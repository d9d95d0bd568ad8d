"""Go's ``fmt`` for templates: ``printf``'s verbs, and ``print``/``println``'s spacing.

The verbs templates use: ``%v %s %d %q %f %e %g %t %x %X %o %b %c %%`` with flags (``-+# 0``),
width and precision (``%-10s``, ``%5.2f``, ``%*d``). A verb that does not fit its argument prints
Go's marker (``%!d(string=abc)``), a missing argument ``%!d(MISSING)``, extra ones
``%!(EXTRA int=1)``. Numbers from YAML data may be ints where Iter8 (which read JSON) had float64:
the float verbs accept ints for that reason.
"""

from __future__ import annotations

from typing import Any

from .values import NO_VALUE, GoStruct, format_e, format_f, format_g, format_v, sorted_keys, type_of

MAX_WIDTH = 1_000_000
_QUOTE_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
    "\\": "\\\\",
}


def go_quote(text: str, quote: str = '"') -> str:
    """Go's ``strconv.Quote``: printable characters kept, the rest escaped."""
    out = [quote]
    for ch in text:
        if ch == quote:
            out.append("\\" + ch)
        elif ch in _QUOTE_ESCAPES:
            out.append(_QUOTE_ESCAPES[ch])
        elif ch.isprintable() or (ch == " "):
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) <= 0xFFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    out.append(quote)
    return "".join(out)


def sprint(args: list[Any]) -> str:
    """Go's ``fmt.Sprint``: a space between operands when neither is a string."""
    out: list[str] = []
    for i, arg in enumerate(args):
        if i > 0 and not isinstance(arg, str) and not isinstance(args[i - 1], str):
            out.append(" ")
        out.append(format_v(_plain(arg), top=False))
    return "".join(out)


def sprintln(args: list[Any]) -> str:
    """Go's ``fmt.Sprintln``: always a space between operands, and a newline."""
    return " ".join(format_v(_plain(arg), top=False) for arg in args) + "\n"


def _plain(value: Any) -> Any:
    return None if value is NO_VALUE else value


def _bad(verb: str, value: Any) -> str:
    if value is None:
        return f"%!{verb}(<nil>)"
    return f"%!{verb}({type_of(value)}={format_v(value, top=False)})"


def _pad(text: str, width: int | None, minus: bool, zero: bool, numeric: bool) -> str:
    if width is None or len(text) >= width:
        return text
    if minus:
        return text + " " * (width - len(text))
    if zero and numeric:
        sign = text[0] if text[:1] in "+-" else ""
        body = text[len(sign) :]
        return sign + "0" * (width - len(text)) + body
    return " " * (width - len(text)) + text


def _integer(value: int, verb: str, flags: str, prec: int | None) -> str:
    negative = value < 0
    magnitude = abs(value)
    if verb == "d":
        body = str(magnitude)
    elif verb in "xX":
        body = f"{magnitude:x}" if verb == "x" else f"{magnitude:X}"
        if "#" in flags:
            body = ("0x" if verb == "x" else "0X") + body
    elif verb == "o":
        body = f"{magnitude:o}"
        if "#" in flags:
            body = "0" + body
    elif verb == "O":
        body = "0o" + f"{magnitude:o}"
    else:
        body = f"{magnitude:b}"
    if prec is not None and len(body) < prec:
        body = "0" * (prec - len(body)) + body
    sign = "-" if negative else ("+" if "+" in flags else (" " if " " in flags else ""))
    return sign + body


def _float(value: float, verb: str, flags: str, prec: int | None) -> str:
    if verb in "fF":
        text = format_f(value, 6 if prec is None else prec)
    elif verb in "eE":
        text = format_e(value, 6 if prec is None else prec, upper=verb == "E")
    else:
        text = format_g(value, -1 if prec is None else prec, upper=verb == "G")
    if not text.startswith("-") and text not in ("NaN",):
        if "+" in flags:
            text = "+" + text
        elif " " in flags:
            text = " " + text
    return text


def _verb(verb: str, value: Any, flags: str, prec: int | None) -> tuple[str, bool]:
    """The text of one verb and whether it is numeric (for zero padding)."""
    if value is NO_VALUE:
        value = None
    if verb == "v":
        if "#" in flags and isinstance(value, str):
            return go_quote(value), False
        if isinstance(value, float):
            return _float(value, "g", flags, prec), True
        if isinstance(value, int) and not isinstance(value, bool):
            return _integer(value, "d", flags, None), True
        return format_v(value, top=False), False
    if verb == "T":
        return type_of(value), False
    # Go applies the verb to each element of a list or map.
    if isinstance(value, list | tuple):
        return "[" + " ".join(_verb(verb, v, flags, prec)[0] for v in value) + "]", False
    if isinstance(value, dict) and not isinstance(value, GoStruct):
        pairs = (
            f"{_verb(verb, k, flags, prec)[0]}:{_verb(verb, value[k], flags, prec)[0]}"
            for k in sorted_keys(value)
        )
        return "map[" + " ".join(pairs) + "]", False
    if verb == "t":
        if isinstance(value, bool):
            return ("true" if value else "false"), False
        return _bad(verb, value), False
    if verb in "sq":
        if isinstance(value, str):
            text = value if prec is None else value[:prec]
            if verb == "q":
                return (f"`{text}`" if "#" in flags and "`" not in text else go_quote(text)), False
            return text, False
        if verb == "q" and isinstance(value, int) and not isinstance(value, bool):
            return go_quote(chr(value), "'"), False
        return _bad(verb, value), False
    if isinstance(value, bool) or value is None:
        return _bad(verb, value), False
    if verb in "dxXobO" and isinstance(value, int):
        return _integer(value, verb, flags, prec), True
    if verb in "xX" and isinstance(value, str):
        data = value.encode("utf-8").hex()
        return (data.upper() if verb == "X" else data), False
    if verb == "c" and isinstance(value, int):
        return chr(value), False
    if verb in "feEgGF" and isinstance(value, int | float):
        return _float(float(value), verb, flags, prec), True
    return _bad(verb, value), False


def sprintf(fmt: str, args: list[Any]) -> str:
    """Go's ``fmt.Sprintf`` for the verbs above."""
    out: list[str] = []
    arg_index = 0
    reordered = False
    i = 0
    n = len(fmt)

    def explicit_index(i: int) -> tuple[int, int | None]:
        """Go's ``%[n]d``: the argument index ``n`` (1-based) at ``i``, if there is one."""
        if i < n and fmt[i] == "[":
            close = fmt.find("]", i)
            if close > i + 1 and fmt[i + 1 : close].isdigit():
                return close + 1, int(fmt[i + 1 : close]) - 1
        return i, None

    while i < n:
        ch = fmt[i]
        if ch != "%":
            j = fmt.find("%", i)
            j = n if j < 0 else j
            out.append(fmt[i:j])
            i = j
            continue
        i += 1
        if i >= n:
            out.append("%!(NOVERB)")
            break
        flags = ""
        while i < n and fmt[i] in "+-# 0":
            flags += fmt[i]
            i += 1
        bad_index = False
        i, index = explicit_index(i)
        if index is not None:
            arg_index, reordered = index, True
            bad_index = not 0 <= index < len(args)
        width: int | None = None
        if i < n and fmt[i] == "*":
            i += 1
            if arg_index < len(args) and isinstance(args[arg_index], int):
                width = args[arg_index]
                if width < 0:
                    flags += "-"
                    width = -width
            else:
                out.append("%!(BADWIDTH)")
            arg_index += 1
        else:
            start = i
            while i < n and fmt[i].isdigit():
                i += 1
            if i > start:
                width = int(fmt[start:i])
        prec: int | None = None
        if i < n and fmt[i] == ".":
            i += 1
            if i < n and fmt[i] == "*":
                i += 1
                if arg_index < len(args) and isinstance(args[arg_index], int):
                    prec = max(0, args[arg_index])
                else:
                    out.append("%!(BADPREC)")
                arg_index += 1
            else:
                start = i
                while i < n and fmt[i].isdigit():
                    i += 1
                prec = int(fmt[start:i]) if i > start else 0
        i, index = explicit_index(i)
        if index is not None:
            arg_index, reordered = index, True
            bad_index = not 0 <= index < len(args)
        if i >= n:
            out.append("%!(NOVERB)")
            break
        verb = fmt[i]
        i += 1
        if verb == "%":
            out.append("%")
            continue
        if bad_index:
            out.append(f"%!{verb}(BADINDEX)")
            continue
        if arg_index >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        value = args[arg_index]
        arg_index += 1
        if verb not in "vTtsqdxXobOceEfFgG":
            out.append(_bad(verb, _plain(value)))
            continue
        # Go refuses widths and precisions above 1e6 (and formats without them), which also
        # bounds the output.
        if (width or 0) > MAX_WIDTH:
            out.append("%!(BADWIDTH)")
            width = None
        if (prec or 0) > MAX_WIDTH:
            out.append("%!(BADPREC)")
            prec = None
        text, numeric = _verb(verb, value, flags, prec)
        out.append(_pad(text, width, "-" in flags, "0" in flags, numeric))
    if not reordered and arg_index < len(args):
        extra = ", ".join(
            "<nil>" if _plain(v) is None else f"{type_of(v)}={format_v(v, top=False)}"
            for v in args[arg_index:]
        )
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)
