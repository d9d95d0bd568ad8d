"""Stand-ins for the controllers and the kubelet a real cluster runs, driven by test policies.

The fake has no kubelet, so nothing would ever become ready and no Job would ever run. Instead:

* **Readiness.** A resource with a readiness policy gets a "ready" status written (through the
  status subresource, ``observedGeneration`` = ``generation``) when it is created and after every
  spec change: immediately (policy ``0``), after a delay in seconds, or never (``None``). Built in:
  Deployments (``Available``/``Progressing`` conditions and replica counts) and KServe
  InferenceServices (``PredictorReady``/``IngressReady``/``Ready`` and a URL). Tests can
  :meth:`Controllers.mark_ready` / :meth:`Controllers.mark_unready` one object by hand, and plugin
  authors can :meth:`Controllers.register_readiness` their own kinds.
* **Jobs.** When a Job is created (not suspended), the first container's ``command`` + ``args``
  run as a local process, with the container's env (``value``, ``valueFrom`` field/ConfigMap/Secret
  refs and ``envFrom``) on top of this process's environment, plus ``KUBECONFIG`` pointing at the
  fake, ``POD_NAMESPACE`` and ``POD_NAME``. A Pod named ``<job>-xxxxx`` is created for each attempt
  (template labels plus ``job-name``/``controller-uid``, owned by the Job), the Job's status goes
  through ``active`` to ``succeeded`` + ``Complete`` or, after ``backoffLimit`` retries,
  ``failed`` + ``Failed``; ``activeDeadlineSeconds`` kills the process. The combined stdout and
  stderr is served by ``pods/{name}/log``. Volumes are not mounted and images are ignored.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .apierrors import ApiError
from .discovery import ResourceInfo
from .store import Event, Obj, Store, now_iso

#: How a readiness policy may be given: seconds until ready, or ``None`` for never.
Policy = float | None
StatusFactory = Callable[[Obj, bool], Obj]

DEPLOYMENTS = "deployments.apps"
INFERENCESERVICES = "inferenceservices.serving.kserve.io"
JOBS = "jobs.batch"
_DONE = "Reached expected number of succeeded pods"
_READY_ONLY = ("readyReplicas", "availableReplicas", "url", "address", "components", "modelStatus")


def _condition(kind: str, ok: bool, reason: str, message: str = "") -> dict[str, Any]:
    now = now_iso()
    return {
        "type": kind,
        "status": "True" if ok else "False",
        "reason": reason,
        "message": message,
        "lastTransitionTime": now,
        "lastUpdateTime": now,
    }


def deployment_status(obj: Obj, ready: bool) -> Obj:
    """The status the deployment controller writes once all replicas are (or are not) available."""
    replicas = int((obj.get("spec") or {}).get("replicas", 1))
    name = obj["metadata"]["name"]
    up = replicas if ready else 0
    status: Obj = {
        "observedGeneration": obj["metadata"].get("generation", 1),
        "replicas": replicas,
        "updatedReplicas": replicas,
        "conditions": [
            _condition(
                "Available",
                ready,
                "MinimumReplicasAvailable" if ready else "MinimumReplicasUnavailable",
                ("Deployment has" if ready else "Deployment does not have") + " minimum availability.",
            ),
            _condition(
                "Progressing",
                True,
                "NewReplicaSetAvailable" if ready else "ReplicaSetUpdated",
                f'ReplicaSet "{name}-fake" has successfully progressed.'
                if ready
                else f'ReplicaSet "{name}-fake" is progressing.',
            ),
        ],
    }
    if up:
        status.update(readyReplicas=up, availableReplicas=up)
    else:
        status["unavailableReplicas"] = replicas
    return status


def inferenceservice_status(obj: Obj, ready: bool) -> Obj:
    """The status KServe writes for a (not) ready InferenceService."""
    meta = obj["metadata"]
    name, ns, gen = meta["name"], meta.get("namespace", "default"), meta.get("generation", 1)
    reason = "" if ready else "NotReady"
    status: Obj = {
        "observedGeneration": gen,
        "conditions": [
            _condition("IngressReady", ready, reason),
            _condition("PredictorReady", ready, reason),
            _condition("Ready", ready, reason),
        ],
    }
    if ready:
        status.update(
            url=f"http://{name}.{ns}.example.com",
            address={"url": f"http://{name}-predictor.{ns}.svc.cluster.local"},
            components={
                "predictor": {
                    "latestCreatedRevision": f"{name}-predictor-{gen:05d}",
                    "latestReadyRevision": f"{name}-predictor-{gen:05d}",
                    "url": f"http://{name}-predictor.{ns}.example.com",
                }
            },
            modelStatus={
                "states": {"activeModelState": "Loaded", "targetModelState": "Loaded"},
                "transitionStatus": "UpToDate",
            },
        )
    return status


def normalize_policy(value: Any) -> Policy:
    """``"available"``/``"ready"``/``"now"``/``True``/``0`` -> 0.0; ``"never"``/``None``/``False`` -> None."""
    if value is None or value is False or value == "never":
        return None
    if value is True or value in ("available", "ready", "now"):
        return 0.0
    if isinstance(value, (int, float)) and value >= 0:
        return float(value)
    raise ValueError(f"a readiness policy is seconds >= 0, 'now', 'available', 'ready' or 'never': {value!r}")


@dataclass
class _Log:
    data: bytearray = field(default_factory=bytearray)
    done: bool = False
    changed: asyncio.Event = field(default_factory=asyncio.Event)


class Controllers:
    """The stand-in controllers of one fake; reachable as ``FakeKube.controllers``.

    Policies (defaults in brackets) can be changed at any time and apply to later events::

        kube.controllers.deployments = "available"   # [0.0] or seconds, or "never"
        kube.controllers.inferenceservices = 2.5     # [0.0]
        kube.controllers.jobs = False                # [True] run Jobs as local processes
    """

    def __init__(self, store: Store, kubeconfig: Path, workdir: Path) -> None:
        self._store = store
        self._kubeconfig = kubeconfig
        self._workdir = workdir
        self._loop: asyncio.AbstractEventLoop | None = None
        self._policies: dict[str, Policy] = {DEPLOYMENTS: 0.0, INFERENCESERVICES: 0.0}
        self._factories: dict[str, StatusFactory] = {
            DEPLOYMENTS: deployment_status,
            INFERENCESERVICES: inferenceservice_status,
        }
        self._timers: set[asyncio.TimerHandle] = set()
        self._jobs: dict[str, asyncio.Task[None]] = {}
        self._logs: dict[tuple[str, str], _Log] = {}
        #: Run Jobs as local processes when they are created.
        self.jobs: bool = True
        #: Turns a Job and its first container into the argv to run; default ``command + args``.
        self.job_command: Callable[[Obj, Obj], list[str]] | None = None
        store.listeners.append(self._on_event)

    # --- policies ----------------------------------------------------------------------------

    @property
    def deployments(self) -> Policy:
        """Seconds until a created or changed Deployment is Available (``None``: never)."""
        return self._policies[DEPLOYMENTS]

    @deployments.setter
    def deployments(self, value: Any) -> None:
        self._policies[DEPLOYMENTS] = normalize_policy(value)

    @property
    def inferenceservices(self) -> Policy:
        """Seconds until a created or changed InferenceService is Ready (``None``: never)."""
        return self._policies[INFERENCESERVICES]

    @inferenceservices.setter
    def inferenceservices(self, value: Any) -> None:
        self._policies[INFERENCESERVICES] = normalize_policy(value)

    def register_readiness(self, resource: ResourceInfo, status: StatusFactory, policy: Any = 0.0) -> None:
        """Make ``resource`` become ready by policy; ``status(obj, ready)`` returns its status."""
        self._factories[resource.key] = status
        self._policies[resource.key] = normalize_policy(policy)

    def reset(self) -> None:
        """Default policies again; cancel pending readiness timers and kill running Jobs (waits)."""
        self._policies[DEPLOYMENTS] = 0.0
        self._policies[INFERENCESERVICES] = 0.0
        self.jobs = True
        self.job_command = None
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._cancel_all()
        else:
            asyncio.run_coroutine_threadsafe(self.shutdown(), loop).result(15)

    # --- lifecycle (called by FakeKube on its loop) ----------------------------------------------

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def _cancel_all(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        for task in self._jobs.values():
            task.cancel()
        self._jobs.clear()
        self._logs.clear()

    async def shutdown(self) -> None:
        tasks = list(self._jobs.values())
        self._cancel_all()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def _on_event(self, event: Event) -> None:
        # Called under the store lock, from whichever thread wrote; act later, on the loop.
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._handle, event)

    def _handle(self, event: Event) -> None:
        meta = event.new["metadata"]
        if event.type == "DELETED":
            if event.resource == JOBS and meta["uid"] in self._jobs:
                self._jobs.pop(meta["uid"]).cancel()
            return
        policy = self._policies.get(event.resource)
        if event.resource in self._factories and policy is not None and not meta.get("deletionTimestamp"):
            generation = meta.get("generation", 1)
            if event.old is None or event.old["metadata"].get("generation", 1) != generation:
                self._schedule(event.resource, meta.get("namespace"), meta["name"], policy, generation, True)
        if (
            event.resource == JOBS
            and event.type == "ADDED"
            and self.jobs
            and not (event.new.get("spec") or {}).get("suspend")
        ):
            assert self._loop is not None
            task = self._loop.create_task(self._run_job(copy.deepcopy(event.new)))
            self._jobs[meta["uid"]] = task

    # --- readiness ---------------------------------------------------------------------------

    def _schedule(
        self,
        resource: str,
        namespace: str | None,
        name: str,
        delay: float,
        generation: int | None,
        ready: bool,
    ) -> None:
        assert self._loop is not None
        handle: asyncio.TimerHandle | None = None

        def fire() -> None:
            if handle is not None:
                self._timers.discard(handle)
            self._set_ready(resource, namespace, name, generation, ready)

        handle = self._loop.call_later(delay, fire)
        self._timers.add(handle)

    def mark(
        self, resource: ResourceInfo, namespace: str | None, name: str, *, after: float | None, ready: bool
    ) -> None:
        """Write a (not) ready status for one object, now or after ``after`` seconds."""
        if resource.key not in self._factories:
            raise ValueError(f"no readiness status is known for {resource.key}; use register_readiness()")
        if self._loop is None:
            raise RuntimeError("the fake is not running")
        if after is None or after <= 0:
            self._store.get(resource, namespace, name)  # 404 for a missing object, at once
            self._set_ready(resource.key, namespace, name, None, ready)
        else:
            self._loop.call_soon_threadsafe(self._schedule, resource.key, namespace, name, after, None, ready)

    def _set_ready(
        self, resource: str, namespace: str | None, name: str, generation: int | None, ready: bool
    ) -> None:
        store = self._store
        with store.lock:
            info = next((i for i in store.registry.all() if i.key == resource), None)
            if info is None:
                return
            obj = store.find(info, namespace, name)
            if obj is None or obj["metadata"].get("deletionTimestamp"):
                return
            if generation is not None and obj["metadata"].get("generation", 1) != generation:
                return  # the spec changed again; a newer timer owns readiness now
            new = copy.deepcopy(obj)
            new["status"] = {**(obj.get("status") or {}), **self._factories[resource](obj, ready)}
            if not ready:
                for key in _READY_ONLY:
                    new["status"].pop(key, None)
            store.update(info, namespace, name, new, subresource="status", source="controller")

    # --- Jobs --------------------------------------------------------------------------------

    def log(self, namespace: str, pod: str) -> tuple[bytes, bool]:
        """The output of a pod started for a Job so far, and whether the process has ended."""
        entry = self._logs.get((namespace, pod))
        return (bytes(entry.data), entry.done) if entry else (b"", True)

    async def follow(self, namespace: str, pod: str, offset: int) -> tuple[bytes, bool]:
        """Wait for output after ``offset`` (or the end); returns the new bytes and whether done."""
        entry = self._logs.get((namespace, pod))
        if entry is None:
            return b"", True
        while len(entry.data) <= offset and not entry.done:
            entry.changed.clear()
            await entry.changed.wait()
        return bytes(entry.data[offset:]), entry.done

    def _resolve_env(self, job: Obj, container: Obj, pod_name: str) -> dict[str, str]:
        store = self._store
        ns = job["metadata"]["namespace"]
        env: dict[str, str] = {}
        pod_spec = job["spec"]["template"].get("spec") or {}

        def lookup(resource: str, name: str, key: str | None) -> dict[str, str]:
            info = store.registry.get("", resource)
            assert info is not None
            with store.lock:
                obj = store.find(info, ns, name) or {}
            data = {k: str(v) for k, v in (obj.get("data") or {}).items()}
            if resource == "secrets":
                data = {k: base64.b64decode(v).decode(errors="replace") for k, v in data.items()}
            return {key: data[key]} if key is not None and key in data else ({} if key else data)

        for source in container.get("envFrom") or []:
            prefix = source.get("prefix", "")
            for resource, ref in (("configmaps", "configMapRef"), ("secrets", "secretRef")):
                if ref in source:
                    values = lookup(resource, source[ref]["name"], None)
                    env.update({prefix + k: v for k, v in values.items()})
        fields = {
            "metadata.name": pod_name,
            "metadata.namespace": ns,
            "spec.serviceAccountName": pod_spec.get("serviceAccountName", "default"),
            "spec.nodeName": "fake-node",
            "status.podIP": "127.0.0.1",
            "status.hostIP": "127.0.0.1",
        }
        for var in container.get("env") or []:
            if "value" in var:
                env[var["name"]] = str(var["value"])
            elif "valueFrom" in var:
                ref = var["valueFrom"]
                if "fieldRef" in ref:
                    env[var["name"]] = fields.get(ref["fieldRef"].get("fieldPath", ""), "")
                elif "configMapKeyRef" in ref:
                    got = lookup("configmaps", ref["configMapKeyRef"]["name"], ref["configMapKeyRef"]["key"])
                    if got:
                        env[var["name"]] = next(iter(got.values()))
                elif "secretKeyRef" in ref:
                    got = lookup("secrets", ref["secretKeyRef"]["name"], ref["secretKeyRef"]["key"])
                    if got:
                        env[var["name"]] = next(iter(got.values()))
        env.update(KUBECONFIG=str(self._kubeconfig), POD_NAMESPACE=ns, POD_NAME=pod_name)
        return env

    def _job_write(self, job: Obj, status: Obj) -> None:
        store = self._store
        info = store.registry.get("batch", "jobs")
        assert info is not None
        meta = job["metadata"]
        with store.lock:
            current = store.find(info, meta["namespace"], meta["name"])
            if current is None or current["metadata"]["uid"] != meta["uid"]:
                return
            new = copy.deepcopy(current)
            new["status"] = {**(current.get("status") or {}), **status}
            for key in [k for k, v in new["status"].items() if v is None]:
                del new["status"][key]
            store.update(
                info, meta["namespace"], meta["name"], new, subresource="status", source="controller"
            )

    def _pod_write(self, namespace: str, name: str, status: Obj) -> None:
        store = self._store
        info = store.registry.get("", "pods")
        assert info is not None
        with store.lock:
            current = store.find(info, namespace, name)
            if current is None:
                return
            new = copy.deepcopy(current)
            new["status"] = {**(current.get("status") or {}), **status}
            store.update(info, namespace, name, new, subresource="status", source="controller")

    def _create_pod(self, job: Obj) -> Obj:
        meta = job["metadata"]
        template = copy.deepcopy(job["spec"].get("template") or {})
        labels = dict((template.get("metadata") or {}).get("labels") or {})
        labels.update(
            {
                "batch.kubernetes.io/controller-uid": meta["uid"],
                "batch.kubernetes.io/job-name": meta["name"],
                "controller-uid": meta["uid"],
                "job-name": meta["name"],
            }
        )
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "generateName": f"{meta['name']}-",
                "namespace": meta["namespace"],
                "labels": labels,
                "annotations": (template.get("metadata") or {}).get("annotations") or {},
                "ownerReferences": [
                    {
                        "apiVersion": "batch/v1",
                        "kind": "Job",
                        "name": meta["name"],
                        "uid": meta["uid"],
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": {**(template.get("spec") or {}), "nodeName": "fake-node"},
        }
        info = self._store.registry.get("", "pods")
        assert info is not None
        return self._store.create(info, meta["namespace"], pod, source="controller")

    async def _run_job(self, job: Obj) -> None:
        meta, spec = job["metadata"], job.get("spec") or {}
        ns = meta["namespace"]
        containers = (spec.get("template", {}).get("spec") or {}).get("containers") or [{}]
        container = containers[0]
        attempts = int(spec.get("backoffLimit", 6)) + 1
        deadline = spec.get("activeDeadlineSeconds")
        loop = asyncio.get_running_loop()
        started = loop.time()
        failed = 0
        try:
            self._job_write(job, {"startTime": now_iso(), "active": 1, "ready": 0})
            for _ in range(attempts):
                try:
                    pod = self._create_pod(job)
                except ApiError:
                    return  # the namespace is going away
                pod_name = pod["metadata"]["name"]
                log = self._logs[(ns, pod_name)] = _Log()
                self._pod_write(
                    ns, pod_name, {"phase": "Running", "startTime": now_iso(), "podIP": "127.0.0.1"}
                )
                remaining = None if deadline is None else max(0.0, float(deadline) - (loop.time() - started))
                code, reason = await self._run_process(job, container, pod_name, log, remaining)
                log.done = True
                log.changed.set()
                state = {"exitCode": code, "reason": reason, "finishedAt": now_iso()}
                self._pod_write(
                    ns,
                    pod_name,
                    {
                        "phase": "Succeeded" if code == 0 else "Failed",
                        "containerStatuses": [
                            {
                                "name": container.get("name", "main"),
                                "image": container.get("image", ""),
                                "ready": False,
                                "restartCount": 0,
                                "state": {"terminated": state},
                            }
                        ],
                    },
                )
                if code == 0:
                    self._job_write(
                        job,
                        {
                            "active": None,
                            "ready": 0,
                            "succeeded": 1,
                            "completionTime": now_iso(),
                            "conditions": [
                                _condition("SuccessCriteriaMet", True, "CompletionsReached", _DONE),
                                _condition("Complete", True, "CompletionsReached", _DONE),
                            ],
                        },
                    )
                    return
                failed += 1
                self._job_write(job, {"failed": failed})
                if reason == "DeadlineExceeded":
                    break
            why = "DeadlineExceeded" if reason == "DeadlineExceeded" else "BackoffLimitExceeded"
            text = (
                "Job was active longer than specified deadline"
                if why == "DeadlineExceeded"
                else "Job has reached the specified backoff limit"
            )
            self._job_write(
                job,
                {
                    "active": None,
                    "ready": 0,
                    "failed": failed,
                    "conditions": [
                        _condition("FailureTarget", True, why, text),
                        _condition("Failed", True, why, text),
                    ],
                },
            )
        finally:
            self._jobs.pop(meta["uid"], None)

    async def _run_process(
        self, job: Obj, container: Obj, pod_name: str, log: _Log, timeout: float | None
    ) -> tuple[int, str]:
        try:
            if self.job_command is not None:
                argv = list(self.job_command(job, container))
            else:
                argv = [*(container.get("command") or []), *(container.get("args") or [])]
        except Exception as exc:
            log.data += f"kubectl_iter8.testing: job_command failed: {exc!r}\n".encode()
            return 128, "StartError"
        if not argv:
            log.data += b"kubectl_iter8.testing: the container has no command; the fake cannot run images\n"
            return 127, "Error"
        workdir = container.get("workingDir")
        cwd = workdir if workdir and os.path.isdir(workdir) else str(self._workdir)
        env = {**os.environ, **self._resolve_env(job, container, pod_name)}
        try:
            proc = await asyncio.create_subprocess_exec(
                *[str(a) for a in argv],
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                env=env,
                cwd=cwd,
            )
        except OSError as exc:
            log.data += f"kubectl_iter8.testing: cannot start {argv[0]!r}: {exc}\n".encode()
            return 128, "StartError"

        async def pump() -> None:
            assert proc.stdout is not None
            while chunk := await proc.stdout.read(65536):
                log.data += chunk
                log.changed.set()

        try:
            await asyncio.wait_for(asyncio.gather(pump(), proc.wait()), timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            return 137, "DeadlineExceeded"
        except asyncio.CancelledError:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            raise
        code = proc.returncode if proc.returncode is not None else 1
        return code, "Completed" if code == 0 else "Error"
