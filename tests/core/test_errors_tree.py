"""The error tree drawn in ``kubectl_iter8/errors.py`` is the real one: every class drawn exists and
derives from the class drawn above it, and every expected error class of the product is drawn."""

from __future__ import annotations

import importlib
import inspect
import re

from kubectl_iter8 import errors

#: Where the drawn classes live.
MODULES = [
    "kubectl_iter8.errors",
    "kubectl_iter8.expressions",
    "kubectl_iter8.plugins.common",
    "kubectl_iter8.controller.errors",
    "kubectl_iter8.controller.abn.store",
]


def drawn() -> list[tuple[str, str]]:
    """(class, parent) for every line of the tree in the module docstring."""
    doc = errors.__doc__ or ""
    lines = doc[doc.index("    Iter8Error") :].splitlines()
    stack: list[str] = []
    pairs = []
    for line in lines:
        match = re.match(r"^    ((?:[│ ]   )*)(?:[├└]── )?(\w+)", line)
        if not match:
            break
        depth = len(match.group(1)) // 4 + (1 if "──" in line else 0)
        name = match.group(2)
        del stack[depth:]
        if stack:
            pairs.append((name, stack[-1]))
        stack.append(name)
    return pairs


def classes() -> dict[str, type]:
    found: dict[str, type] = {}
    for module in MODULES:
        for name, value in inspect.getmembers(importlib.import_module(module), inspect.isclass):
            if issubclass(value, errors.Iter8Error) and value.__module__ == module:
                found[name] = value
    return found


def test_every_drawn_class_derives_from_its_drawn_parent() -> None:
    known = classes()
    pairs = drawn()
    assert len(pairs) >= 20
    for name, parent in pairs:
        assert name in known, f"{name} is drawn but not defined in {MODULES}"
        assert known[name].__bases__[0] is known[parent], f"{name} derives from {known[name].__bases__[0]}"


def test_every_error_class_is_drawn() -> None:
    assert set(classes()) == {name for pair in drawn() for name in pair}
