"""Go's text/template, with the sprig functions Iter8 used, in a sandbox.

Iter8 rendered provider specs, notification payloads and routing templates with Go's
``text/template`` and sprig; no maintained Python package does, so this package is a small engine
of its own: lexer -> parser -> executor, Go's builtins, sprig's functions and Go's value printing.

Use::

    from kubectl_iter8 import gotemplate

    text = gotemplate.render('{{ .name | upper }}', {"name": "iter8"}, name="greeting")
    template = gotemplate.parse(source, name="istio-prom")     # parse once
    template.execute(values)                                   # run many times

Errors are :class:`~kubectl_iter8.errors.TemplateError` s with one-line messages like Go's
(``template: istio-prom:37:4: executing "labels" at <fail ...>: error calling fail: ...``).
``functions="builtin"`` gives Go's builtins only (as Iter8's controller rendered routing
templates); ``missing_key`` is Go's ``missingkey`` option. Which engine a template is written for:
:func:`choose_engine` (see :mod:`.detect`).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from kubectl_iter8.errors import TemplateBoundsError, TemplateError, TemplateExecError, TemplateParseError

from .builtins import BUILTINS
from .detect import ENGINES, Engine, choose_engine, detect_engine
from .exec import Executor, Limits, MissingKey
from .funcs import REFUSED, Func
from .nodes import ListNode
from .parser import parse as _parse
from .sprig import SPRIG
from .values import NO_VALUE, GoStruct, format_v, is_true

__all__ = [
    "ENGINES",
    "NO_VALUE",
    "REFUSED",
    "Engine",
    "GoStruct",
    "Limits",
    "Template",
    "TemplateBoundsError",
    "TemplateError",
    "TemplateExecError",
    "TemplateParseError",
    "choose_engine",
    "detect_engine",
    "format_v",
    "function_names",
    "is_true",
    "parse",
    "render",
]

Functions = Literal["sprig", "builtin"]

#: The longest template text parsed.
MAX_TEMPLATE_SIZE = 1_000_000

_FUNCTION_SETS: dict[str, dict[str, Func]] = {
    "builtin": dict(BUILTINS),
    "sprig": {**BUILTINS, **SPRIG},
}


def function_names(functions: Functions = "sprig") -> list[str]:
    """The functions a template may call with this set, sorted."""
    return sorted(_FUNCTION_SETS[functions])


class Template:
    """A parsed template and the templates it defines; execute it as often as needed."""

    def __init__(
        self,
        name: str,
        root: ListNode,
        templates: dict[str, ListNode],
        functions: Functions,
        missing_key: MissingKey,
    ) -> None:
        self.name = name
        self.root = root
        self.templates = templates
        self.functions = functions
        self.missing_key = missing_key

    @property
    def defined(self) -> list[str]:
        """The names of the templates this text defines (``define``/``block``)."""
        return sorted(self.templates)

    def execute(self, data: Any, limits: Limits | None = None) -> str:
        """Run over ``data`` (plain JSON-like values and :class:`GoStruct` s; a copy is used)."""
        funcs = _FUNCTION_SETS[self.functions]
        executor = Executor(
            self.name,
            self.templates,
            funcs,
            limits or Limits(),
            self.missing_key,
            parse_more=self._parse_more,
        )
        try:
            return executor.run(self.root, copy.deepcopy(data))
        except RecursionError:
            raise TemplateBoundsError(f"template: {self.name}: nested too deeply") from None

    def _parse_more(self, executor: Executor, text: str, data: Any) -> str:
        """Helm's ``tpl``: text parsed as a template of this set and run over ``data``."""
        if len(text) > MAX_TEMPLATE_SIZE:
            raise TemplateParseError(
                f"template: {self.name}: tpl text larger than {MAX_TEMPLATE_SIZE} characters"
            )
        root, templates = _parse(text, self.name, _FUNCTION_SETS[self.functions])
        executor.templates.update(templates)
        saved = executor.out
        executor.out = []
        try:
            executor.call_template(executor.current, root, data, executor.node)
            return "".join(executor.out)
        finally:
            executor.out = saved


def parse(
    text: str,
    *,
    name: str = "template",
    functions: Functions = "sprig",
    missing_key: MissingKey = "default",
    library: Iterable[str] = (),
) -> Template:
    """Parse ``text``; a malformed template raises :class:`TemplateParseError`.

    ``library``: more texts whose ``define`` d templates ``text`` may call; their own top-level
    text is dropped, as Helm drops that of a chart's ``_*.tpl`` files.
    """
    funcs: Mapping[str, Func] = _FUNCTION_SETS[functions]
    templates: dict[str, ListNode] = {}
    for extra in [*library, text]:
        if len(extra) > MAX_TEMPLATE_SIZE:
            raise TemplateParseError(f"template: {name}: larger than {MAX_TEMPLATE_SIZE} characters")
        try:
            root, defined = _parse(extra, name, funcs)
        except RecursionError:
            raise TemplateParseError(f"template: {name}: nested too deeply") from None
        templates.update(defined)
    return Template(name, root, templates, functions, missing_key)


def render(
    text: str,
    data: Any,
    *,
    name: str = "template",
    functions: Functions = "sprig",
    missing_key: MissingKey = "default",
    limits: Limits | None = None,
) -> str:
    """Parse and execute ``text`` over ``data`` in one call."""
    return parse(text, name=name, functions=functions, missing_key=missing_key).execute(data, limits)
