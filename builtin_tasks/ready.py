"""The ``ready`` task: wait until a Kubernetes object exists and reports the wanted conditions.

Any group/version/resource can be named. An object is ready when it exists, is not being deleted,
and every wanted condition (type matched case-insensitively) has status ``True`` in a status that
is current: when the object has a ``metadata.generation``, ``status.observedGeneration`` (and a
condition's own ``observedGeneration``, where it has one) must have caught up with it, so a stale
``Available`` from before the last change does not count. With no conditions, existing is enough.

Accepts Iter8's spellings: ``condition: Available`` (v0.14) and ``conditions: [...]`` (v0.18), and
the chart-values shorthand ``ready.<type>=NAME`` (``--set ready.deploy=app``), one entry per object
named, in the order of the names (Iter8 v1.x's chart ranged over them sorted). ``<type>`` is:

* a short name of Iter8's charts (:data:`CHART_KINDS`: ``deploy``, ``svc``/``service``, ``cm``,
  ``isvc``, ``vs``, ``ksvc``, ``chaosengine``, ``httproute``), or one that the values'
  ``resourceTypes`` define in Iter8's form (``{Group, Version, Resource, conditions}``; key case
  does not matter), which wins;
* or any group/version/resource, written ``GROUP/VERSION/RESOURCE`` (``VERSION/RESOURCE`` for the
  core group): ``--set ready.serving\\.knative\\.dev/v1/services=hello`` needs no escaping of
  the slashes, only of dots as Helm wants.

``timeout`` and ``namespace`` apply to every entry.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from pydantic import Field, model_validator

from kubectl_iter8.durations import format_duration
from kubectl_iter8.errors import KubeForbiddenError, KubeNotFoundError, TaskError, UsageError
from kubectl_iter8.kube import GVR, Kube
from kubectl_iter8.readiness import readiness
from kubectl_iter8.task import Duration, KubeAccess, Task, TaskContext, TaskInputs

#: The short names of Iter8's charts (v0.16's fixed list and v1.x's ``resourceTypes``): the
#: group, version and resource each names, and the conditions it waits for.
CHART_KINDS: dict[str, tuple[str, str, str, list[str]]] = {
    "deploy": ("apps", "v1", "deployments", ["Available"]),
    "service": ("", "v1", "services", []),
    "svc": ("", "v1", "services", []),
    "cm": ("", "v1", "configmaps", []),
    "isvc": ("serving.kserve.io", "v1beta1", "inferenceservices", ["Ready"]),
    "vs": ("networking.istio.io", "v1beta1", "virtualservices", []),
    "ksvc": ("serving.knative.dev", "v1", "services", ["Ready"]),
    "chaosengine": ("litmuschaos.io", "v1alpha1", "chaosengines", []),
    "httproute": ("gateway.networking.k8s.io", "v1", "httproutes", []),
}
#: Keys of the shorthand that are not a type: they go into every entry.
SHARED_KEYS = frozenset({"timeout", "namespace"})
#: Where the values' own types come from (Iter8's chart read ``.Values.resourceTypes``).
TYPES_KEY = "resourceTypes"
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
        """Iter8's chart shorthand ``ready.<type>=NAME``: one entry per object named (see the module).

        Values with no type key (``name``, ``resource``, ... as the task's inputs) are one entry.

        :raises UsageError: naming the key, for a type that is neither known nor a GVR.
        """
        if not isinstance(values, dict):
            return super().from_values(values)
        types = {**CHART_KINDS, **_values_types(values.get(TYPES_KEY))}
        fields = set(ReadyInputs.model_fields)
        keys = [k for k in values if k not in SHARED_KEYS and k != TYPES_KEY]
        typed = [k for k in keys if k in types or k not in fields]
        if not typed:
            return super().from_values({k: v for k, v in values.items() if k != TYPES_KEY})
        unknown = [k for k in typed if k not in types and "/" not in str(k)]
        if unknown:
            known = ", ".join(sorted(types))
            raise UsageError(
                f"ready.{unknown[0]}: unknown resource type (known: {known}; or GROUP/VERSION/RESOURCE)"
            )
        both = [k for k in keys if k not in typed]
        if both:
            raise UsageError(
                f"ready.{both[0]}: give the object by type (ready.deploy=NAME) or by name, not both"
            )
        shared = {k: values[k] for k in SHARED_KEYS if k in values}
        entries = []
        for key in sorted(typed, key=str):
            group, version, resource, conditions = types.get(key) or _gvr_key(str(key))
            with_: dict[str, Any] = {
                "name": values[key],
                "group": group,
                "version": version,
                "resource": resource,
            }
            if conditions:
                with_["conditions"] = list(conditions)
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
        # A group beyond Kubernetes' own is named: a Knative "service" is not a Service.
        kind = (
            self.gvr.name
            if self.inputs.group in ("", "apps", "batch")
            else f"{self.gvr.name}.{self.inputs.group}"
        )
        what = f'{kind} "{self.inputs.name}" in namespace "{namespace}"'
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


def _gvr_key(key: str) -> tuple[str, str, str, list[str]]:
    """``GROUP/VERSION/RESOURCE`` (or ``VERSION/RESOURCE``: the core group) as a type."""
    parts = key.split("/")
    if len(parts) == 2:
        parts.insert(0, "")
    if len(parts) != 3 or not all(parts[1:]):
        raise UsageError(
            f"ready.{key}: expected GROUP/VERSION/RESOURCE (VERSION/RESOURCE for the core group)"
        )
    return parts[0], parts[1], parts[2], []


def _values_types(raw: Any) -> dict[str, tuple[str, str, str, list[str]]]:
    """The values' ``resourceTypes`` in Iter8's form: ``{short: {Group, Version, Resource, conditions}}``."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise UsageError(f"{TYPES_KEY}: expected a mapping of short names to {{Group, Version, Resource}}")
    out = {}
    for name, definition in raw.items():
        if not isinstance(definition, dict):
            raise UsageError(f"{TYPES_KEY}.{name}: expected a mapping with Group, Version, Resource")
        fields = {str(k).lower(): v for k, v in definition.items()}
        unknown = sorted(set(fields) - {"group", "version", "resource", "conditions", "kind"})
        if unknown:
            raise UsageError(f"{TYPES_KEY}.{name}: unknown keys {', '.join(unknown)}")
        if not fields.get("version") or not fields.get("resource"):
            raise UsageError(f"{TYPES_KEY}.{name}: Version and Resource are required")
        conditions = fields.get("conditions") or []
        if not isinstance(conditions, list):
            raise UsageError(f"{TYPES_KEY}.{name}.conditions: expected a list of condition types")
        names = [str(c.get("name") if isinstance(c, dict) else c) for c in conditions]
        out[str(name)] = (
            str(fields.get("group") or ""),
            str(fields["version"]),
            str(fields["resource"]),
            names,
        )
    return out
