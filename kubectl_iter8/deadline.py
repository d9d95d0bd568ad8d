"""How long an experiment's Job may run: the ``activeDeadlineSeconds`` that ``launch`` gives it.

Without a deadline, a Job whose run hangs (a target that never answers, a ``run`` command that
never exits) holds its pod forever and ``assert`` can only time out. Tasks do not declare how long
they take, but their inputs say it where it matters, so the budget is read from them, generously:
the deadline is there to end a stuck run, never a healthy one.

* An entry *states* a time when its inputs hold a ``duration`` or a ``timeout`` (any input whose
  name ends so: ``connectTimeout`` counts), or a request count at a fixed rate (``numRequests``/
  ``total`` with ``qps`` > 0: count / qps). Nested blocks such as ``http`` endpoints count too,
  each inheriting what it leaves unset from the task's top level. The entry's allowance is twice
  the sum of these, and at least a minute.
* An entry that states no time (``assess``, a ``run`` without ``timeout``, a closed-loop load test
  of N requests, a plugin's task without such inputs) is allowed ten minutes.
* The deadline is five minutes (scheduling, image pull, start-up) plus every entry's allowance.

``launch --deadline`` replaces the rule (``0``: no deadline).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from .experiment import PreparedTask

#: Seconds for the pod to be scheduled, pull its image and start.
START_SECONDS = 300.0
#: Seconds allowed to an entry whose inputs state no time.
UNSTATED_SECONDS = 600.0
#: The least an entry that states a time is allowed, and the factor on what it states.
MIN_TASK_SECONDS = 60.0
FACTOR = 2.0
_COUNTS = ("num_requests", "total")


def stated_seconds(inputs: Any, inherited: Mapping[str, float] | None = None) -> float:
    """The time validated inputs state: durations + timeouts + count / rate, nested blocks too.

    A nested block that has timing inputs (an ``http`` or ``grpc`` endpoint) inherits the ones it
    leaves unset from the block around it, as those tasks do; nested blocks run one after another.
    """
    inherited = inherited or {}
    if isinstance(inputs, Mapping):
        names = {str(key).lower(): value for key, value in inputs.items()}
        total = 0.0
        if any(_is_timing(name) for name in names):
            settings = dict(inherited)
            settings.update({k: float(v) for k, v in names.items() if _is_timing(k) and _is_number(v)})
            total += sum(v for k, v in settings.items() if k.endswith(("duration", "timeout")))
            count = next((settings[k] for k in _COUNTS if k in settings), None)
            qps = settings.get("qps", 0.0)
            if count is not None and qps > 0:
                total += count / qps
            inherited = settings
        return total + sum(stated_seconds(value, inherited) for value in names.values())
    if isinstance(inputs, list | tuple):
        return sum(stated_seconds(item, inherited) for item in inputs)
    return 0.0


def _is_timing(name: str) -> bool:
    return name.endswith(("duration", "timeout")) or name in (*_COUNTS, "qps")


def allowance(task: PreparedTask) -> float:
    """Seconds one spec entry is allowed (see the module's rule)."""
    stated = stated_seconds(task.task.inputs.model_dump())
    return UNSTATED_SECONDS if stated <= 0 else max(MIN_TASK_SECONDS, FACTOR * stated)


def job_deadline(prepared: Iterable[PreparedTask]) -> int:
    """The Job's ``activeDeadlineSeconds`` for these entries, whole seconds rounded up."""
    return math.ceil(START_SECONDS + sum(allowance(task) for task in prepared))


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
