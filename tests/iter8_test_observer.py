"""A plugin used by the tests: appends every event hook call to the file named by ITER8_TEST_EVENTS."""

from __future__ import annotations

import json
import os

from kubectl_iter8 import hookimpl


def _write(event: dict[str, object]) -> None:
    with open(os.environ["ITER8_TEST_EVENTS"], "a", encoding="utf-8") as handle:
        handle.write(json.dumps(event) + "\n")


@hookimpl
def iter8_experiment_started(experiment) -> None:  # type: ignore[no-untyped-def]
    _write({"event": "started", "completed": experiment.result.num_completed_tasks})


@hookimpl
def iter8_task_finished(index, record) -> None:  # type: ignore[no-untyped-def]
    _write({"event": "task", "index": index, "status": record.status})


@hookimpl
def iter8_experiment_finished(experiment) -> None:  # type: ignore[no-untyped-def]
    _write({"event": "finished", "failure": experiment.result.failure})
