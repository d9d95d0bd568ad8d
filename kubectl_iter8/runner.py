"""The experiment runner: runs prepared tasks in order and saves the result after every one.

Semantics are Iter8 v0.14's: the result is reset at the start of a run; an entry whose ``if:`` is
false is skipped but counts as completed; the first task that fails sets ``failure`` and ends the
run. Beyond Iter8, every entry gets a record (status, timing, message, details), the failure names
the entry, and an interrupted run (Ctrl-C, cancellation) is saved as failed before it stops.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import conditions
from .errors import PluginHookError, TaskError
from .experiment import Experiment, PreparedTask
from .expressions import ExpressionError
from .host import Iter8Hooks
from .kube import KubeOptions
from .result import Result, TaskRecord
from .storage import ExperimentStore
from .task import TaskContext
from .version import major_minor

log = logging.getLogger("kubectl_iter8.runner")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def expression_names(experiment: Experiment) -> dict[str, Any]:
    """What ``if:`` expressions can use: the result and metadata as data, Iter8's functions."""
    # Every field is present (None when unset), so `result.insights == nil` reads as users expect.
    result = experiment.result.model_dump(mode="json", by_alias=True) if experiment.result else {}
    return {
        "result": result,
        "metadata": experiment.metadata.model_dump(),
        "completed": lambda: conditions.completed(experiment),
        "nofailure": lambda: conditions.no_failure(experiment),
        "slos": lambda: conditions.slos_satisfied(experiment),
    }


class Runner:
    """Runs one experiment against one store."""

    def __init__(
        self, experiment: Experiment, tasks: list[PreparedTask], store: ExperimentStore, hooks: Iter8Hooks,
        *, work_dir: Path | None = None, kube_options: KubeOptions | None = None, revision: int | None = None,
        previous: Result | None = None,
    ) -> None:  # fmt: skip
        """``previous``: the last loop's result, whose metrics this loop adds to (scheduled runs)."""
        self.experiment = experiment
        self.tasks = tasks
        self.store = store
        self.hooks = hooks
        self.work_dir = work_dir or Path(tempfile.gettempdir())
        self.kube_options = kube_options or KubeOptions()
        self.revision = revision
        self.previous = previous

    async def run(self) -> Result:
        result = Result.model_validate(
            {
                "startTime": _now(),
                "numLoops": (self.previous.num_loops if self.previous else 0) + 1,
                "numCompletedTasks": 0,
                "failure": False,
                "iter8Version": major_minor(),
                "revision": self.revision,
            }
        )
        if self.previous is not None:
            result.insights = self.previous.insights
        self.experiment.result = result
        self.store.save(self.experiment)
        if self._observe(result, "", lambda: self.hooks.experiment_started(self.experiment)):
            for prepared in self.tasks:
                if not await self._run_one(prepared, result):
                    break
            else:
                result.end_time = _now()
                self.store.save(self.experiment)
                log.info("experiment completed: %d of %d tasks", result.num_completed_tasks, len(self.tasks))
        self._observe(result, "", lambda: self.hooks.experiment_finished(self.experiment))
        return result

    def _observe(self, result: Result, label: str, call: Callable[[], None]) -> bool:
        """Call an event hook; False when a plugin's hook raised, which fails the experiment
        (hookspecs.py): recorded as the failure unless one was already, and saved."""
        try:
            call()
        except PluginHookError as exc:
            error = exc
        else:
            return True
        # The traceback is logged at debug level by the host; the user gets one line.
        message = f"{label}: {error}" if label else str(error)
        log.error("%s", message)
        if not result.failure:
            result.failure = True
            result.failure_message = message
        if result.end_time is None:
            result.end_time = _now()
        self.store.save(self.experiment)
        return False

    async def _run_one(self, prepared: PreparedTask, result: Result) -> bool:
        """Run one entry; False when it failed and the run must stop."""
        record = TaskRecord(task=prepared.task.name, status="running", startTime=_now())
        result.tasks.append(record)
        started = time.perf_counter()
        try:
            if prepared.condition is not None and not prepared.condition.evaluate(
                expression_names(self.experiment)
            ):
                record.status = "skipped"
                record.message = f"if: {prepared.condition.text!r} is false"
                log.info("%s: skipped (if: %s is false)", prepared.label, prepared.condition.text)
            else:
                log.info("%s: started", prepared.label)
                ctx = TaskContext(
                    result=result,
                    details=record.details,
                    work_dir=self.work_dir,
                    metadata=self.experiment.metadata.model_dump(),
                    logger=logging.getLogger(f"kubectl_iter8.task.{prepared.task.name}"),
                    kube_options=self.kube_options,
                )
                await prepared.task.run(ctx)
                record.status = "completed"
        except ExpressionError as exc:
            return self._fail(prepared, record, result, started, f"if: {exc}")
        except TaskError as exc:
            return self._fail(prepared, record, result, started, str(exc))
        except asyncio.CancelledError:
            self._fail(prepared, record, result, started, "interrupted")
            raise
        except Exception as exc:
            # A bug in a task must not lose the result so far: record it, keep the traceback in logs.
            log.debug("%s raised", prepared.label, exc_info=True)
            return self._fail(prepared, record, result, started, f"unexpected {type(exc).__name__}: {exc}")
        record.duration_seconds = round(time.perf_counter() - started, 6)
        result.num_completed_tasks += 1
        self.store.save(self.experiment)
        if record.status == "completed":
            log.info("%s: completed in %.3fs", prepared.label, record.duration_seconds)
        return self._observe(
            result, prepared.label, lambda: self.hooks.task_finished(self.experiment, prepared.index, record)
        )

    def _fail(
        self, prepared: PreparedTask, record: TaskRecord, result: Result, started: float, message: str
    ) -> bool:
        record.status = "failed"
        record.message = message
        record.duration_seconds = round(time.perf_counter() - started, 6)
        result.failure = True
        result.failure_message = f"{prepared.label}: {message}"
        result.end_time = _now()
        self.store.save(self.experiment)
        log.error("%s: failed: %s", prepared.label, message)
        self._observe(
            result, prepared.label, lambda: self.hooks.task_finished(self.experiment, prepared.index, record)
        )
        return False
