"""The ``ready`` task: wait until a Kubernetes object exists and reports the wanted conditions.

Any group/version/resource can be named. An object is ready when it exists, is not being deleted,
and every wanted condition (type matched case-insensitively) has status ``True`` in a status that
is current: when the object has a ``metadata.generation``, ``status.observedGeneration`` (and a
condition's own ``observedGeneration``, where it has one) must have caught up with it, so a stale
``Available`` from before the last change does not count. With no conditions, existing is enough.

Accepts Iter8's spellings: ``condition: Available`` (v0.14) and ``conditions: [...]`` (v0.18), and
the chart-values shorthand ``--set ready.deploy=NAME`` / ``ready.service`` / ``ready.isvc``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from pydantic import Field, model_validator

from kubectl_iter8.durations import format_duration
from kubectl_iter8.errors import KubeForbiddenError, KubeNotFoundError, TaskError
from kubectl_iter8.kube import GVR, Kube
from kubectl_iter8.readiness import readiness
from kubectl_iter8.task import Duration, KubeAccess, Task, TaskContext, TaskInputs

#: The chart's shorthand keys: what each names, and the condition it waits for.
CHART_KINDS = {
    "deploy": ("apps", "v1", "deployments", ["Available"]),
    "service": ("", "v1", "services", []),
    "isvc": ("serving.kserve.io", "v1beta1", "inferenceservices", ["Ready"]),
}
POLL_SECONDS = 0.5


class ReadyInputs(TaskInputs):
    name: str = Field(min_length=1)
    group: str = ""
    version: str = "v1"
    resource: str = Field(min_length=1)
    namespace: str | None = None
    condition: str | None = None
    conditions: list[str] = Field(default_factory=list)
    timeout: Duration = 60.0

    @model_validator(mode="after")
    def _one_spelling(self) -> ReadyInputs:
        if self.condition and self.conditions:
            raise ValueError("give 'condition' or 'conditions', not both")
        return self

    @property
    def wanted(self) -> list[str]:
        return [self.condition] if self.condition else list(self.conditions)


class ReadyTask(Task[ReadyInputs]):
    """Wait for a Kubernetes object to be ready."""

    name = "ready"
    Inputs = ReadyInputs

    @property
    def gvr(self) -> GVR:
        return GVR(self.inputs.group, self.inputs.version, self.inputs.resource)

    @classmethod
    def from_values(cls, values: Any) -> list[dict[str, Any]]:
        """Iter8's chart keys ``deploy``, ``service``, ``isvc``: one entry per object named.

        Other keys (``timeout``, ``namespace``, or mistakes) go into every entry, where validation
        accepts or names them.
        """
        if not isinstance(values, dict) or not set(values) & set(CHART_KINDS):
            return super().from_values(values)
        shared = {k: v for k, v in values.items() if k not in CHART_KINDS}
        entries = []
        for key, (group, version, resource, conditions) in CHART_KINDS.items():
            if key in values:
                with_: dict[str, Any] = {
                    "name": values[key],
                    "group": group,
                    "version": version,
                    "resource": resource,
                }
                if conditions:
                    with_["conditions"] = conditions
                entries.append({"task": cls.name, "with": {**with_, **shared}})
        return entries

    def kube_access(self) -> list[KubeAccess]:
        return [KubeAccess(self.gvr, (self.inputs.name,), self.inputs.namespace, verbs=("get",))]

    async def run(self, ctx: TaskContext) -> None:
        kube = await asyncio.to_thread(Kube, ctx.kube_options)
        try:
            await self._wait(ctx, kube)
        finally:
            kube.close()

    async def _wait(self, ctx: TaskContext, kube: Kube) -> None:
        namespace = self.inputs.namespace or ctx.metadata.get("namespace") or kube.namespace
        what = f'{self.gvr.name} "{self.inputs.name}" in namespace "{namespace}"'
        deadline = time.monotonic() + self.inputs.timeout
        said = None
        while True:
            try:
                obj = await asyncio.to_thread(kube.get, self.gvr, self.inputs.name, namespace)
                why = readiness(obj, self.inputs.wanted)
            except KubeNotFoundError:
                why = "it does not exist yet"
            except KubeForbiddenError as exc:
                raise TaskError(f"cannot read {what}: {exc}") from None
            if why is None:
                ctx.log(f"{what} is ready")
                return
            if why != said:
                ctx.log(f"waiting for {what}: {why}")
                said = why
            if time.monotonic() >= deadline:
                raise TaskError(f"{what} not ready after {format_duration(self.inputs.timeout)}: {why}")
            await asyncio.sleep(min(POLL_SECONDS, max(0.0, deadline - time.monotonic())))
