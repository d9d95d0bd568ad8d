"""Experiments: the YAML document, its validation, and the tasks prepared from it.

The format is Iter8's (v0.13/v0.14): ``spec`` is an ordered list of entries, each either
``task: NAME`` with an optional ``with:`` block or ``run: COMMAND``, and optionally ``if: EXPR``.
Validation collects every problem before anything runs and reports one line per problem, naming
the entry, the task and the field: ``spec[1] (http): duration: 'ten seconds' is not a duration``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import InvalidExperimentError, StorageError
from .expressions import Expression, ExpressionError
from .result import Result
from .validation import validation_problems

if TYPE_CHECKING:
    from .registry import TaskRegistry
    from .task import Task

ENTRY_KEYS = ("task", "with", "run", "shell", "if")
TOP_LEVEL_KEYS = ("metadata", "spec", "result")


class Metadata(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    namespace: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)


class Experiment(BaseModel):
    """An experiment document: metadata, the spec as written, and the result."""

    model_config = ConfigDict(extra="forbid")

    metadata: Metadata = Field(default_factory=Metadata)
    spec: list[dict[str, Any]]
    result: Result | None = None

    def document(self) -> dict[str, Any]:
        """The experiment as it is stored (``experiment.yaml`` or a Secret's data)."""
        doc: dict[str, Any] = {}
        metadata = self.metadata.model_dump(exclude_defaults=True)
        if metadata:
            doc["metadata"] = metadata
        doc["spec"] = self.spec
        if self.result is not None:
            doc["result"] = self.result.dump()
        return doc


@dataclass(frozen=True)
class PreparedTask:
    """A spec entry checked against the registry, ready to run."""

    index: int
    #: ``spec[i] (name)``: how messages name the entry.
    label: str
    task: Task[Any]
    condition: Expression | None


def experiment_from_document(doc: Any, source: str = "experiment") -> Experiment:
    """Check the document's shape (not the tasks) and build an :class:`Experiment`.

    :raises InvalidExperimentError: with one line per problem.
    """
    if not isinstance(doc, dict):
        raise InvalidExperimentError([f"{source}: expected a mapping with a 'spec' list, got {_kind(doc)}"])
    problems = [
        f"{source}: unknown top-level key {key!r} (allowed: {', '.join(TOP_LEVEL_KEYS)})"
        for key in doc
        if key not in TOP_LEVEL_KEYS
    ]
    spec = doc.get("spec")
    if spec is None:
        problems.append(f"{source}: spec: required (a list of tasks)")
    elif not isinstance(spec, list):
        problems.append(f"{source}: spec: expected a list of tasks, got {_kind(spec)}")
    else:
        problems += [
            f"spec[{i}]: expected a mapping with 'task:' or 'run:', got {_kind(entry)}"
            for i, entry in enumerate(spec)
            if not isinstance(entry, dict)
        ]
    if problems:
        raise InvalidExperimentError(problems)
    try:
        return Experiment.model_validate({k: v for k, v in doc.items() if k in TOP_LEVEL_KEYS})
    except ValidationError as exc:
        raise InvalidExperimentError(validation_problems(exc, f"{source}: ")) from None


def stored_experiment(doc: Any, source: str) -> Experiment:
    """An experiment read back from storage; a malformed one is a storage problem, not a usage one."""
    try:
        return experiment_from_document(doc, source)
    except InvalidExperimentError as exc:
        raise StorageError(f"{source} is not a valid experiment: {exc.problems[0]}") from None


def prepare(experiment: Experiment, tasks: TaskRegistry) -> list[PreparedTask]:
    """Validate every entry against the registered tasks and build the task objects.

    :raises InvalidExperimentError: with one line per problem found in any entry.
    """
    prepared: list[PreparedTask] = []
    problems: list[str] = []
    for index, entry in enumerate(experiment.spec):
        try:
            prepared.append(_prepare_entry(index, entry, tasks))
        except InvalidExperimentError as exc:
            problems += exc.problems
    if problems:
        raise InvalidExperimentError(problems)
    return prepared


def _prepare_entry(index: int, entry: dict[str, Any], tasks: TaskRegistry) -> PreparedTask:
    where = f"spec[{index}]"
    problems = [
        f"{where}: unknown key {key!r} (allowed: {', '.join(ENTRY_KEYS)})"
        for key in entry
        if key not in ENTRY_KEYS
    ]
    if ("task" in entry) == ("run" in entry):
        problems.append(f"{where}: an entry needs exactly one of 'task:' or 'run:'")
        raise InvalidExperimentError(problems)
    inputs: Any
    if "run" in entry:
        name, inputs = "run", {"cmd": entry["run"], "shell": entry.get("shell", False)}
        if "with" in entry:
            problems.append(f"{where}: 'with:' does not go with 'run:' (write 'task: run' instead)")
    else:
        name, inputs = entry["task"], entry.get("with") or {}
        if "shell" in entry:
            problems.append(f"{where}: 'shell:' goes only with 'run:'")
    label = f"{where} ({name})"
    if not isinstance(name, str) or name not in tasks:
        known = ", ".join(tasks.names()) or "none"
        problems.append(f"{where}: unknown task {name!r} (known: {known})")
        raise InvalidExperimentError(problems)
    condition = None
    if "if" in entry:
        text = entry["if"]
        # Only scalars become text: str() of a mapping of nested YAML aliases takes gigabytes.
        if text is None or isinstance(text, bool | int | float):
            text = str(text)
        if not isinstance(text, str):
            problems.append(f"{label}: if: expected an expression (a string), got {_kind(text)}")
        else:
            try:
                condition = Expression(text)
            except ExpressionError as exc:
                problems.append(f"{label}: if: {exc}")
    if not isinstance(inputs, dict):
        problems.append(f"{label}: with: expected a mapping of inputs, got {_kind(inputs)}")
        raise InvalidExperimentError(problems)
    task_cls = tasks.get(name)
    try:
        task = task_cls(task_cls.Inputs.model_validate(inputs))
    except ValidationError as exc:
        problems += validation_problems(exc, f"{label}: ")
    if problems:
        raise InvalidExperimentError(problems)
    return PreparedTask(index, label, task, condition)


def _kind(value: Any) -> str:
    if isinstance(value, Sequence) and not isinstance(value, str):
        return "a list"
    return {dict: "a mapping", str: "a string", type(None): "nothing"}.get(type(value), type(value).__name__)
