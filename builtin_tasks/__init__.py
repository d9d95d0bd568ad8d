"""The built-in tasks, registered through the same hook as any third-party plugin's.

Each task lives in its own module; they are imported only when the task registry is first needed,
so that ``kubectl iter8 --help`` does not pay for them.
"""

from __future__ import annotations

from kubectl_iter8.hookspecs import hookimpl
from kubectl_iter8.registry import TaskRegistry


@hookimpl
def iter8_register_tasks(registry: TaskRegistry) -> None:
    from .abn_metrics import AbnMetricsTask
    from .assess import AssessTask
    from .custom_metrics import CustomMetricsTask
    from .grpc import GrpcTask
    from .http import HttpTask
    from .notify import GithubTask, NotifyTask, SlackTask
    from .ready import ReadyTask
    from .run import RunTask

    for task in (RunTask, AssessTask, ReadyTask, HttpTask, GrpcTask):
        registry.register(task)
    for reporting in (CustomMetricsTask, AbnMetricsTask, NotifyTask, SlackTask, GithubTask):
        registry.register(reporting)
