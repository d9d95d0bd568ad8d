"""The lexer of Go's text/template: template text -> items (text, delimiters, words inside actions).

It follows Go's ``text/template/parse/lex.go``: ``{{`` and ``}}`` delimit actions, ``{{- `` and
`` -}}`` trim the white space next to them, ``{{/* */}}`` is a comment, and inside an action the
words are fields (``.a``), variables (``$x``), identifiers, keywords, strings, raw strings,
characters, numbers, ``|``, ``(``, ``)``, ``,``, ``:=`` and ``=``. Positions are kept as (line,
column) so that every error can point where Go's would.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from kubectl_iter8.errors import TemplateParseError

LEFT = "{{"
RIGHT = "}}"
_SPACE = " \t\r\n"


class Kind(enum.Enum):
    TEXT = "text"
    LEFT = "{{"
    RIGHT = "}}"
    FIELD = "field"
    VARIABLE = "variable"
    IDENTIFIER = "identifier"
    KEYWORD = "keyword"
    BOOL = "bool"
    NIL = "nil"
    DOT = "."
    STRING = "string"
    RAW_STRING = "raw string"
    CHAR = "character"
    NUMBER = "number"
    PIPE = "|"
    LEFT_PAREN = "("
    RIGHT_PAREN = ")"
    COMMA = ","
    DECLARE = ":="
    ASSIGN = "="
    SPACE = "space"
    EOF = "EOF"


KEYWORDS = frozenset(
    {"block", "break", "continue", "define", "else", "end", "if", "range", "template", "with"}
)


@dataclass(frozen=True)
class Item:
    kind: Kind
    value: str
    line: int
    col: int

    def __str__(self) -> str:
        if self.kind is Kind.EOF:
            return "EOF"
        if self.kind is Kind.KEYWORD:
            return f"<{self.value}>"
        return repr(self.value) if len(self.value) <= 10 else f"{self.value[:10]!r}..."


def _space(ch: str) -> bool:
    """Whether ``ch`` (one character, or "" past the end) is white space as Go's lexer sees it."""
    return ch != "" and ch in _SPACE


def _terminator(ch: str) -> bool:
    return ch == "" or ch in _SPACE or ch in ".,|:()="


class Lexer:
    """Splits one template's text into :class:`Item` s."""

    def __init__(self, text: str, name: str) -> None:
        self.text = text
        self.name = name
        self.pos = 0
        self.items: list[Item] = []
        # Line starts, for turning an offset into (line, column).
        self._line_starts = [0]
        for i, ch in enumerate(text):
            if ch == "\n":
                self._line_starts.append(i + 1)

    def where(self, offset: int) -> tuple[int, int]:
        lo, hi = 0, len(self._line_starts) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self._line_starts[mid] <= offset:
                lo = mid
            else:
                hi = mid - 1
        return lo + 1, offset - self._line_starts[lo] + 1

    def error(self, offset: int, message: str) -> TemplateParseError:
        line, _ = self.where(offset)
        return TemplateParseError(f"template: {self.name}:{line}: {message}")

    def emit(self, kind: Kind, start: int, end: int, value: str | None = None) -> None:
        line, col = self.where(start)
        self.items.append(Item(kind, self.text[start:end] if value is None else value, line, col))

    def run(self) -> list[Item]:
        text = self.text
        trim_next = False
        while True:
            start = self.pos
            found = text.find(LEFT, start)
            end = len(text) if found < 0 else found
            chunk_start = start
            if trim_next:
                while chunk_start < end and text[chunk_start] in _SPACE:
                    chunk_start += 1
            chunk_end = end
            # "{{- " trims the white space before it; "{{-3" is the number -3.
            left_trim = (
                found >= 0 and text[found + 2 : found + 3] == "-" and _space(text[found + 3 : found + 4])
            )
            if left_trim:
                while chunk_end > chunk_start and text[chunk_end - 1] in _SPACE:
                    chunk_end -= 1
            if chunk_end > chunk_start:
                self.emit(Kind.TEXT, chunk_start, chunk_end)
            if found < 0:
                self.emit(Kind.EOF, len(text), len(text), "")
                return self.items
            trim_next = self._action(found, left_trim)

    def _action(self, start: int, left_trim: bool) -> bool:
        """Lex one action from its ``{{``; return whether it ended with a right trim marker."""
        text = self.text
        pos = start + 2 + (2 if left_trim else 0)
        # A comment: {{/* ... */}}, only directly after the delimiter (and its trim marker).
        if text.startswith("/*", pos):
            close = text.find("*/", pos + 2)
            if close < 0:
                raise self.error(start, "unclosed comment")
            after = close + 2
            if text.startswith(RIGHT, after):
                self.pos = after + 2
                return False
            if _space(text[after : after + 1]) and text.startswith("-" + RIGHT, after + 1):
                self.pos = after + 4
                return True
            raise self.error(start, "comment ends before closing delimiter")
        self.emit(Kind.LEFT, start, start + 2)
        paren = 0
        while True:
            if text.startswith(RIGHT, pos) or (
                _space(text[pos : pos + 1]) and text.startswith("-" + RIGHT, pos + 1)
            ):
                trim = not text.startswith(RIGHT, pos)
                if paren:
                    raise self.error(pos, "unclosed left paren")
                end = pos + (4 if trim else 2)
                self.emit(Kind.RIGHT, end - 2, end)
                self.pos = end
                return trim
            if pos >= len(text):
                raise self.error(start, "unclosed action")
            ch = text[pos]
            if ch in _SPACE:
                end = pos
                # The space before a right trim marker belongs to the marker.
                while end < len(text) and text[end] in _SPACE and not text.startswith("-" + RIGHT, end + 1):
                    end += 1
                self.emit(Kind.SPACE, pos, end)
                pos = end
            elif ch == "=":
                self.emit(Kind.ASSIGN, pos, pos + 1)
                pos += 1
            elif ch == ":":
                if text[pos + 1 : pos + 2] != "=":
                    raise self.error(pos, "expected :=")
                self.emit(Kind.DECLARE, pos, pos + 2)
                pos += 2
            elif ch == "|":
                self.emit(Kind.PIPE, pos, pos + 1)
                pos += 1
            elif ch == '"':
                pos = self._quoted(pos, '"', Kind.STRING)
            elif ch == "`":
                close = text.find("`", pos + 1)
                if close < 0:
                    raise self.error(pos, "unterminated raw quoted string")
                self.emit(Kind.RAW_STRING, pos, close + 1)
                pos = close + 1
            elif ch == "'":
                pos = self._quoted(pos, "'", Kind.CHAR)
            elif ch == "$":
                end = pos + 1
                while end < len(text) and (text[end].isalnum() or text[end] == "_"):
                    end += 1
                if not _terminator(text[end : end + 1]) and not text.startswith(RIGHT, end):
                    raise self.error(pos, f"bad character {text[end]!r}")
                self.emit(Kind.VARIABLE, pos, end)
                pos = end
            elif ch == "." and not text[pos + 1 : pos + 2].isdigit():
                end = pos + 1
                while end < len(text) and (text[end].isalnum() or text[end] == "_"):
                    end += 1
                if not _terminator(text[end : end + 1]) and not text.startswith(RIGHT, end):
                    raise self.error(pos, f"bad character {text[end]!r}")
                self.emit(Kind.DOT if end == pos + 1 else Kind.FIELD, pos, end)
                pos = end
            elif ch in "+-." or ch.isdigit():
                pos = self._number(pos)
            elif ch.isalpha() or ch == "_":
                end = pos
                while end < len(text) and (text[end].isalnum() or text[end] == "_"):
                    end += 1
                word = text[pos:end]
                if not _terminator(text[end : end + 1]) and not text.startswith(RIGHT, end):
                    raise self.error(pos, f"bad character {text[end]!r}")
                if word in KEYWORDS:
                    self.emit(Kind.KEYWORD, pos, end)
                elif word in ("true", "false"):
                    self.emit(Kind.BOOL, pos, end)
                elif word == "nil":
                    self.emit(Kind.NIL, pos, end)
                else:
                    self.emit(Kind.IDENTIFIER, pos, end)
                pos = end
            elif ch == "(":
                paren += 1
                self.emit(Kind.LEFT_PAREN, pos, pos + 1)
                pos += 1
            elif ch == ")":
                paren -= 1
                if paren < 0:
                    raise self.error(pos, "unexpected right paren")
                self.emit(Kind.RIGHT_PAREN, pos, pos + 1)
                pos += 1
            elif ch == ",":
                self.emit(Kind.COMMA, pos, pos + 1)
                pos += 1
            else:
                raise self.error(pos, f"unrecognized character in action: {ch!r}")

    def _quoted(self, pos: int, quote: str, kind: Kind) -> int:
        text = self.text
        end = pos + 1
        while True:
            if end >= len(text) or text[end] == "\n":
                raise self.error(
                    pos, "unterminated quoted string" if quote == '"' else "unterminated character constant"
                )
            if text[end] == "\\":
                end += 2
                continue
            if text[end] == quote:
                break
            end += 1
        self.emit(kind, pos, end + 1)
        return end + 1

    def _number(self, pos: int) -> int:
        text = self.text
        end = pos
        if text[end] in "+-":
            end += 1
        digits = "0123456789_"
        exponent = "eE"
        if text.startswith(("0x", "0X"), end):
            end += 2
            digits = "0123456789abcdefABCDEF_"
            exponent = "pP"
        elif text.startswith(("0o", "0O"), end):
            end += 2
            digits = "01234567_"
            exponent = ""
        elif text.startswith(("0b", "0B"), end):
            end += 2
            digits = "01_"
            exponent = ""
        while end < len(text) and text[end] in digits:
            end += 1
        if text[end : end + 1] == ".":
            end += 1
            while end < len(text) and text[end] in digits:
                end += 1
        if exponent and text[end : end + 1] and text[end] in exponent:
            end += 1
            if text[end : end + 1] in ("+", "-"):
                end += 1
            while end < len(text) and text[end] in "0123456789_":
                end += 1
        if (end < len(text) and (text[end].isalnum() or text[end] == "_")) or end == pos:
            stop = end
            while stop < len(text) and (text[stop].isalnum() or text[stop] in "_."):
                stop += 1
            raise self.error(pos, f"bad number syntax: {text[pos:stop]!r}")
        self.emit(Kind.NUMBER, pos, end)
        return end
