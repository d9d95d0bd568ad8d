"""``python -m kubectl_iter8`` runs the CLI (the Krew archive starts it this way)."""

from __future__ import annotations

from .cli import run

run()
