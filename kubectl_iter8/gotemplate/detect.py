"""Which engine renders a template: as declared (``templateEngine: go|jinja2``), else detected.

The rule (docs/templates.md): a template with a Jinja2 statement or comment (``{%``, ``{#``) is
Jinja2; else one with Go-only syntax inside ``{{ }}`` is Go: a field or dot (``{{ .x }}``,
``{{- .x``, ``{{ quote .x }}``, ``{{ (.x) }}``), a variable (``$x``), a comment (``{{/*``), or a
Go keyword (``range``, ``end``, ``template``, ``define``, ``block``, ``with``, ``else``, ``if``,
``break``, ``continue``) opening an action; else (no template syntax, or only ``{{ name }}`` that
both engines read) it is Jinja2, so files written for this project keep rendering as they did.
"""

from __future__ import annotations

import re
from typing import Literal

Engine = Literal["go", "jinja2"]
ENGINES: tuple[str, ...] = ("go", "jinja2")

_JINJA_ONLY = re.compile(r"\{%|\{#")
_ACTION = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_GO_KEYWORD = re.compile(r"^-?\s*(range|end|template|define|block|with|else|if|break|continue)(\s|-?$)")
_GO_FIELD = re.compile(r"(^|[\s(|,])\.($|[A-Za-z_\s)|])")


def _go_action(body: str) -> bool:
    if body.startswith(("/*", "- /*")):
        return True
    if _GO_KEYWORD.match(body):
        return True
    if "$" in body:
        return True
    stripped = body[1:] if body.startswith("-") else body
    stripped = stripped[:-1] if stripped.endswith("-") else stripped
    return bool(_GO_FIELD.search(stripped))


def detect_engine(text: str) -> Engine:
    """The engine a template is written for, by the rule above."""
    if _JINJA_ONLY.search(text):
        return "jinja2"
    for match in _ACTION.finditer(text):
        if _go_action(match.group(1)):
            return "go"
    return "jinja2"


def choose_engine(text: str, declared: str | None = None) -> Engine:
    """``declared`` (``go``/``jinja2``) when given, else :func:`detect_engine`; ``auto`` detects."""
    if declared in (None, "", "auto"):
        return detect_engine(text)
    if declared not in ENGINES:
        raise ValueError(f"templateEngine must be go, jinja2 or auto, not {declared!r}")
    return "go" if declared == "go" else "jinja2"
