"""Fixtures for the route plugin tests: CRD schema checks, golden files, routemaps."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from route_helpers import GOLDEN, crd_errors, routemap

from kubectl_iter8.routemap import RouteMap


@pytest.fixture
def assert_valid_crd() -> Callable[[dict[str, Any]], None]:
    def check(obj: dict[str, Any]) -> None:
        errors = crd_errors(obj)
        assert not errors, f"{obj['kind']} {obj['metadata']['name']} breaks its CRD:\n" + "\n".join(errors)

    return check


@pytest.fixture
def golden() -> Callable[[str, list[dict[str, Any]]], None]:
    """Compare rendered objects with ``golden/<name>.yaml``; ``UPDATE_GOLDEN=1`` rewrites the file."""

    def compare(name: str, objects: list[dict[str, Any]]) -> None:
        text = yaml.safe_dump_all(objects, sort_keys=False, default_flow_style=False)
        path = GOLDEN / f"{name}.yaml"
        if os.environ.get("UPDATE_GOLDEN") == "1":
            path.parent.mkdir(exist_ok=True)
            path.write_text(text)
        assert path.is_file(), f"{path} is missing; run with UPDATE_GOLDEN=1 to write it"
        assert text == path.read_text(), f"{path.name} differs from the rendered objects"

    return compare


@pytest.fixture
def make_routemap() -> Callable[..., RouteMap]:
    return routemap
