"""The ``custom-metrics`` task: metrics per version from Prometheus or any REST/JSON source.

* :mod:`.spec`: provider specs (Jinja2 templates of YAML), their sandboxed rendering and model;
* :mod:`.credentials`: bearer and basic credentials from the environment or a Secret, redaction;
* :mod:`.task`: the task; ``providers/`` holds the built-in specs (``istio-prom``, ``prometheus``).
"""

from __future__ import annotations

from .task import CustomMetricsTask

__all__ = ["CustomMetricsTask"]
