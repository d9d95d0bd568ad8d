"""Go's time layouts (``2006-01-02T15:04:05Z07:00``) for sprig's ``date``, ``now`` and printing times.

Only formatting, with the layout elements Go documents (month and day names, zero-padded and plain
numbers, 12/24-hour clocks, fractional seconds ``.000``/``.999``, zones ``MST``, ``-0700``,
``Z07:00``); everything else in a layout is copied as is, as Go does.
"""

from __future__ import annotations

import datetime as dt

# Longest first, so "January" wins over "Jan" and "2006" over "2".
_TOKENS = (
    "January",
    "Monday",
    "Z07:00:00",
    "-07:00:00",
    "Z07:00",
    "-07:00",
    "Z0700",
    "-0700",
    "2006",
    "Jan",
    "Mon",
    "MST",
    "002",
    "Z07",
    "-07",
    "_2",
    "01",
    "02",
    "03",
    "04",
    "05",
    "06",
    "15",
    "PM",
    "pm",
    "1",
    "2",
    "3",
    "4",
    "5",
)


def _zone(value: dt.datetime, token: str) -> str:
    offset = value.utcoffset() or dt.timedelta(0)
    if token.startswith("Z") and offset == dt.timedelta(0):
        return "Z"
    seconds = int(offset.total_seconds())
    sign = "-" if seconds < 0 else "+"
    seconds = abs(seconds)
    hours, minutes, secs = seconds // 3600, seconds // 60 % 60, seconds % 60
    body = token.lstrip("Z-")
    if body == "07":
        return f"{sign}{hours:02d}"
    if body == "0700":
        return f"{sign}{hours:02d}{minutes:02d}"
    if body == "07:00":
        return f"{sign}{hours:02d}:{minutes:02d}"
    return f"{sign}{hours:02d}:{minutes:02d}:{secs:02d}"


def _element(value: dt.datetime, token: str) -> str:
    hour12 = value.hour % 12 or 12
    simple = {
        "January": value.strftime("%B"),
        "Jan": value.strftime("%b"),
        "Monday": value.strftime("%A"),
        "Mon": value.strftime("%a"),
        "2006": f"{value.year:04d}",
        "06": f"{value.year % 100:02d}",
        "01": f"{value.month:02d}",
        "1": str(value.month),
        "02": f"{value.day:02d}",
        "2": str(value.day),
        "_2": f"{value.day:>2d}",
        "002": f"{value.timetuple().tm_yday:03d}",
        "15": f"{value.hour:02d}",
        "03": f"{hour12:02d}",
        "3": str(hour12),
        "04": f"{value.minute:02d}",
        "4": str(value.minute),
        "05": f"{value.second:02d}",
        "5": str(value.second),
        "PM": "PM" if value.hour >= 12 else "AM",
        "pm": "pm" if value.hour >= 12 else "am",
        "MST": value.tzname() or _zone(value, "-0700"),
    }
    if token in simple:
        return simple[token]
    return _zone(value, token)


def go_format(value: dt.datetime, layout: str) -> str:
    """``value`` formatted with a Go layout."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    out: list[str] = []
    i = 0
    while i < len(layout):
        # Fractional seconds: ".000" (fixed) or ".999" (trailing zeros dropped), also with ",".
        if layout[i] in ".," and i + 1 < len(layout) and layout[i + 1] in "09":
            digit = layout[i + 1]
            j = i + 1
            while j < len(layout) and layout[j] == digit:
                j += 1
            if not (j < len(layout) and layout[j].isdigit()):
                width = min(j - i - 1, 9)
                nanos = f"{value.microsecond:06d}000"[:width]
                if digit == "9":
                    nanos = nanos.rstrip("0")
                    out.append(layout[i] + nanos if nanos else "")
                else:
                    out.append(layout[i] + nanos)
                i = j
                continue
        for token in _TOKENS:
            if layout.startswith(token, i):
                # Go reads "Jan"/"Mon" only when not followed by a lower-case letter ("Janet").
                if token in ("Jan", "Mon") and layout[i + 3 : i + 4].islower():
                    continue
                out.append(_element(value, token))
                i += len(token)
                break
        else:
            out.append(layout[i])
            i += 1
    return "".join(out)
