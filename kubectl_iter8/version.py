"""The version of kubectl-iter8: the single source that packaging and ``kubectl iter8 version`` read."""

from __future__ import annotations

__version__ = "0.1.0"


def major_minor() -> str:
    """``v<major>.<minor>``, as Iter8 recorded in ``result.iter8Version``."""
    major, minor, *_ = __version__.split(".")
    return f"v{major}.{minor}"
