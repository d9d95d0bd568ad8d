"""The plugin contract is documented: every hook has a summary and a :param: per argument."""

from __future__ import annotations

import inspect

import pytest

import kubectl_iter8
from kubectl_iter8 import hookspecs

SPECS = [
    (name, fn) for name, fn in inspect.getmembers(hookspecs, inspect.isfunction) if hasattr(fn, "iter8_spec")
]


def test_every_hook_is_prefixed_and_there_are_the_documented_ones() -> None:
    assert {name for name, _ in SPECS} == {
        "iter8_register_tasks", "iter8_register_routers", "iter8_register_resource_types",
        "iter8_register_commands", "iter8_experiment_started", "iter8_task_finished", "iter8_experiment_finished",
    }  # fmt: skip


@pytest.mark.parametrize(("name", "spec"), SPECS)
def test_every_hook_documents_each_argument(name: str, spec: object) -> None:
    doc = inspect.getdoc(spec) or ""
    assert doc.splitlines()[0].endswith("."), name
    for arg in inspect.signature(spec).parameters:  # type: ignore[arg-type]
        assert f":param {arg}:" in doc, (name, arg)


def test_public_names_are_sorted_and_importable() -> None:
    assert kubectl_iter8.__all__ == sorted(kubectl_iter8.__all__)
    for name in kubectl_iter8.__all__:
        assert getattr(kubectl_iter8, name) is not None
