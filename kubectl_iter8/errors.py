"""The errors kubectl-iter8 expects, and the exit codes the CLI turns them into.

Every error a user can cause or meet in normal operation derives from :class:`Iter8Error`. The CLI
boundary (``kubectl_iter8.cli.main``) prints such an error as one line with no traceback and exits
with its ``exit_code``; anything else is a bug and keeps its traceback. The tree (classes defined
next to the code that raises them name their module)::

    Iter8Error                      exit 1 unless a subclass says otherwise
    ├── UsageError                  exit 2: bad flags, files or values; nothing was run or written
    │   ├── InvalidExperimentError  one line per problem found in an experiment
    │   ├── ExpressionError         an ``if:`` expression is malformed or cannot be evaluated (expressions)
    │   └── RouteError              a router cannot render a routemap as configured (plugins.common)
    ├── PluginError                 a plugin failed to load or registered something inconsistent
    │   ├── DuplicateNameError      two plugins claim the same task or router name
    │   └── PluginHookError         a plugin's event hook raised while an experiment ran
    ├── StorageError                an experiment could not be read or written
    ├── TaskError                   a task failed while the experiment ran
    ├── KubeError                   the Kubernetes API refused or failed a request
    │   ├── KubeNotFoundError       404: the object (or its namespace) does not exist
    │   ├── KubeConflictError       409: stale resourceVersion, or the object already exists
    │   ├── KubeGoneError           410: a watch's history expired; list again
    │   ├── KubeForbiddenError      401/403: the credentials may not do this
    │   └── KubeUnreachableError    no answer from the API server (refused, timed out, TLS)
    ├── TemplateError               a Go template cannot be parsed or executed (gotemplate)
    │   ├── TemplateParseError      the template text is malformed; nothing was rendered
    │   └── TemplateExecError       executing it failed: a missing value, a function's error, fail
    │       └── TemplateBoundsError it ran past a sandbox bound: time, steps, output, size, depth
    ├── ReconcileError              how a controller reconcile failed on purpose (controller.errors)
    │   ├── TemporaryError          retry with back-off
    │   │   └── NotLeaderError      this process may not write: it lost the leadership
    │   └── PermanentError          retrying cannot help until the routemap changes
    ├── NotReadyError               the controller's caches are not synced yet (controller.errors)
    └── StoreClosedError            the A/B/n store was used after it was closed (controller.abn.store)
"""

from __future__ import annotations

import enum
from collections.abc import Iterable


class ExitCode(enum.IntEnum):
    """Exit codes of ``kubectl iter8``; documented in the README."""

    #: Everything asked for was done, or every asserted condition holds.
    OK = 0
    #: The experiment failed, an assertion did not hold, or an operation could not complete.
    FAILED = 1
    #: Bad flags, files or values: nothing was run or written.
    USAGE = 2
    #: An unexpected error: a bug in kubectl-iter8 or a plugin (the traceback is printed).
    INTERNAL = 70
    #: Interrupted by the user (Ctrl-C).
    INTERRUPTED = 130


class Iter8Error(Exception):
    """An expected error: shown to the user as one line, without a traceback."""

    exit_code: ExitCode = ExitCode.FAILED

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(Iter8Error):
    """The user asked for something malformed; nothing was run or written."""

    exit_code = ExitCode.USAGE


class InvalidExperimentError(UsageError):
    """An experiment failed validation; ``problems`` holds one line per problem."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class PluginError(Iter8Error):
    """A plugin could not be loaded or registered something invalid."""

    def __init__(self, message: str, *, plugin: str) -> None:
        super().__init__(f"plugin {plugin!r}: {message}")
        self.plugin = plugin


class DuplicateNameError(PluginError):
    """Two plugins registered the same name in one registry."""


class PluginHookError(PluginError):
    """A plugin's event hook raised; the runner records it as the experiment's failure."""

    def __init__(self, message: str, *, plugin: str, hook: str) -> None:
        super().__init__(message, plugin=plugin)
        self.hook = hook


class StorageError(Iter8Error):
    """An experiment or its result could not be read or written."""


class TaskError(Iter8Error):
    """A task failed; the runner records it as the experiment's failure."""


class KubeError(Iter8Error):
    """The Kubernetes API answered with an error, or could not be reached.

    ``status`` is the HTTP status (0 when there was no answer); ``reason`` is the ``reason`` of the
    Kubernetes ``Status`` body (``NotFound``, ``Conflict``, ...), when there was one.
    """

    def __init__(self, message: str, *, status: int = 0, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


class KubeNotFoundError(KubeError):
    """The object, or the namespace it would live in, does not exist."""


class KubeConflictError(KubeError):
    """The object changed since it was read, or already exists."""


class KubeGoneError(KubeError):
    """The watched history is gone (compacted): the watcher must list again."""


class KubeForbiddenError(KubeError):
    """The credentials in use are not allowed to do this."""


class KubeUnreachableError(KubeError):
    """The API server did not answer: wrong address, refused, timed out, or a TLS failure."""


class TemplateError(Iter8Error):
    """A Go template failed; the message reads like Go's: ``template: NAME:LINE:COL: ...``."""


class TemplateParseError(TemplateError):
    """The template text is malformed (or names a function that does not exist here)."""


class TemplateExecError(TemplateError):
    """Executing the template failed: a bad field, a function's error, ``fail``, ``required``."""


class TemplateBoundsError(TemplateExecError):
    """The template ran past a sandbox limit (time, steps, output size, template call depth)."""
