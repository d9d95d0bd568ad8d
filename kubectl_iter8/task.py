"""What a task is, for the runner and for plugin authors.

A task is a class with a ``name``, a pydantic ``Inputs`` model (the ``with:`` block of a spec entry,
validated before anything runs) and an async ``run``. Plugins hand task classes to the registry in
``iter8_register_tasks``; the built-in tasks are written exactly the same way::

    class Greet(Task["Greet.Inputs"]):
        name = "greet"

        class Inputs(TaskInputs):
            who: str = "world"

        async def run(self, ctx: TaskContext) -> None:
            ctx.log(f"hello {self.inputs.who}")

A task reports a failure by raising :class:`~kubectl_iter8.errors.TaskError`; it records metrics
through ``ctx.insights``. A task that speaks HTTP gets its client from ``ctx.http_client()``, so that
tests can replace the network with an ``httpx.MockTransport`` and exercise the task's own code.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict
from pydantic_core import PydanticCustomError

from .durations import parse_duration
from .kube import GVR, KubeOptions
from .result import Insights, Result

if TYPE_CHECKING:
    import httpx


def _duration(value: Any) -> float:
    if not isinstance(value, str | int | float):
        raise PydanticCustomError("duration", "'{value}' is not a duration", {"value": value})
    try:
        return parse_duration(value)
    except ValueError:
        raise PydanticCustomError(
            "duration", "'{value}' is not a duration (use e.g. 30s, 1m30s, 250ms)", {"value": value}
        ) from None


#: Seconds, written in experiments as ``10s``, ``1m30s``, ``250ms`` or a number of seconds.
Duration = Annotated[float, BeforeValidator(_duration)]


class TaskInputs(BaseModel):
    """Base for every task's ``Inputs``: unknown fields are errors, never silently ignored."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


InputsT = TypeVar("InputsT", bound=TaskInputs)


@dataclass(frozen=True)
class KubeAccess:
    """Read access a task needs: ``verbs`` on ``names`` of ``gvr`` in ``namespace``.

    ``namespace`` None means the experiment's own namespace.
    """

    gvr: GVR
    names: tuple[str, ...]
    namespace: str | None = None
    verbs: tuple[str, ...] = ("get", "list", "watch")


@dataclass
class TaskContext:
    """What a running task may use: the result so far, its own record, and logging."""

    #: The experiment's result; tasks add metrics through :attr:`insights`.
    result: Result
    #: Free-form details kept in this entry's task record (output, counts, ...).
    details: dict[str, Any]
    #: Where the experiment is stored locally, when it is (a temporary folder otherwise).
    work_dir: Path
    #: The experiment's metadata (name, namespace).
    metadata: Mapping[str, Any] = field(default_factory=dict)
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("kubectl_iter8.task"))
    #: How to reach the cluster, for tasks that read it (in a Job: the in-cluster service account).
    kube_options: KubeOptions = field(default_factory=KubeOptions)
    #: What :meth:`http_client` sends requests through; None is httpx's own (the network).
    http_transport: httpx.AsyncBaseTransport | None = None

    @property
    def insights(self) -> Insights:
        """The result's insights, created on first use with one version."""
        if self.result.insights is None:
            self.result.insights = Insights.model_validate({"numVersions": 1})
        return self.result.insights

    def log(self, message: str) -> None:
        self.logger.info(message)

    def http_client(self, **options: Any) -> httpx.AsyncClient:
        """An ``httpx.AsyncClient`` with ``options`` (timeout, redirects, TLS) over :attr:`http_transport`."""
        # Imported here, as the tasks did: validating or reporting an experiment loads this module
        # but sends no request.
        import httpx

        return httpx.AsyncClient(transport=self.http_transport, **options)


class Task(abc.ABC, Generic[InputsT]):
    """Base class of every task, built-in or third-party."""

    #: The name used in ``task:`` entries; unique across all plugins.
    name: ClassVar[str]
    #: Other names accepted in ``task:`` entries and ``--set tasks={...}`` (e.g. Iter8's spellings).
    aliases: ClassVar[tuple[str, ...]] = ()
    #: The model of the entry's ``with:`` block.
    Inputs: ClassVar[type[TaskInputs]]

    def __init__(self, inputs: InputsT) -> None:
        self.inputs = inputs

    @classmethod
    def from_values(cls, values: Any) -> list[dict[str, Any]]:
        """Spec entries for Iter8's chart-values shorthand (``--set <task>.<key>=...``).

        The default is one entry with the values as its ``with:`` block; a task whose chart
        expanded differently in Iter8 overrides this.
        """
        entry: dict[str, Any] = {"task": cls.name}
        if values:
            entry["with"] = values
        return [entry]

    def kube_access(self) -> list[KubeAccess]:
        """Objects this task reads in the cluster, so ``launch`` can grant exactly that to its Job."""
        return []

    @abc.abstractmethod
    async def run(self, ctx: TaskContext) -> None:
        """Do the task's work; raise :class:`~kubectl_iter8.errors.TaskError` to fail it."""
