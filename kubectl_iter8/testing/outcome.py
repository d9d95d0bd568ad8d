"""What one run of ``kubectl iter8`` gave, as the ``cli`` fixture returns it.

A module of its own, apart from :mod:`kubectl_iter8.testing.pytest_plugin`, so that a conftest.py can
import it without importing the plugin module before pytest registers (and rewrites) it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Outcome:
    """One run of ``kubectl iter8``: its exit code and what it printed."""

    code: int
    out: str
    err: str
