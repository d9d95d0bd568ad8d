"""Experiments in a cluster: the Secret that stores one, and the objects that run it.

An experiment *group* is one Secret named after the group, holding ``experiment.yaml`` (spec and
result), plus what runs it: a ServiceAccount, a Role and RoleBinding that allow only reading and
updating that Secret (and reading what the experiment's tasks name, such as the objects ``ready``
waits for), and a Job (or a CronJob with ``--schedule``) that runs ``kubectl iter8 run`` in the
cluster: unprivileged with a read-only root filesystem, stopped by a deadline read from the tasks'
inputs (:mod:`kubectl_iter8.deadline`), and removed a day after it finished. Everything in the
group's namespace is owned by the Secret, so deleting the Secret deletes the group. Launching again
in the same group replaces the experiment with revision + 1.

Iter8's chart values for the runner (:class:`RunnerPod`) choose its account, resources, log level
and ``METRICS_SERVER_URL`` (``metricsServerURL``: where its http and grpc tasks send the result, as
Iter8 v1.x's Job did); with ``serviceAccountName``, as in Iter8's chart, no account, Role or
RoleBinding is made.

This is what Iter8 did with a Helm chart; here the same objects are built directly, so no Helm
is needed and relaunch semantics are ours to keep exact.

A load test spread over pods (an ``http`` or ``grpc`` task with ``pods: N``, see
``docs/distributed-load.md``)
adds, at launch, one ServiceAccount, Role and RoleBinding per shard: shard *k* may read the shared
plan and write its own result ConfigMap and nothing else. Pods of one Job share one ServiceAccount,
and RBAC knows no finer subject, so per-shard write rights need one account per shard, and so one
Job per shard (:func:`shard_job`), which the experiment's Job creates when the task runs. The
runner's Role then also allows creating those Jobs and ConfigMaps and reading and deleting exactly
them. Everything is made by whoever launches: RBAC refuses a Role that grants more than its creator
holds, so the experiment's account could not make these itself.
"""

from __future__ import annotations

import base64
import functools
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import boundedyaml
from .deadline import job_deadline
from .errors import KubeForbiddenError, KubeNotFoundError, StorageError, UsageError
from .experiment import Experiment, PreparedTask, stored_experiment
from .kube import (
    CONFIGMAPS,
    CRON_JOBS,
    GVR,
    JOBS,
    PODS,
    ROLE_BINDINGS,
    ROLES,
    SECRETS,
    SERVICE_ACCOUNTS,
    Kube,
)
from .storage import dump_yaml
from .version import __version__

if TYPE_CHECKING:
    from .task import KubeAccess

GROUP_LABEL = "iter8.tools/group"
KIND_LABEL = "iter8.tools/kind"
REVISION_ANNOTATION = "iter8.tools/revision"
NAMESPACES_ANNOTATION = "iter8.tools/extra-namespaces"
SECRET_KEY = "experiment.yaml"
DEFAULT_IMAGE = f"ghcr.io/kubectl-iter8/kubectl-iter8:v{__version__}"
#: The user the image runs as (see the Dockerfile); named in the pod too, so any image runs unprivileged.
RUNNER_UID = 1001
#: The runner's only writable folder: HOME and TMPDIR, an emptyDir.
SCRATCH_DIR = "/tmp"
#: Finished Jobs (and their pods, whose logs ``kubectl iter8 log`` shows) are removed after a day.
FINISHED_JOB_TTL_SECONDS = 86400
_GROUP_NAME = re.compile(r"[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?")
#: Labels a shard's objects with its index.
SHARD_LABEL = "iter8.tools/shard"
#: The most pods one task may spread its load over: each shard costs a ServiceAccount, a Role, a
#: RoleBinding, a ConfigMap and a Job, and the runner's Role names two objects per shard.
MAX_SHARDS = 1000
#: The runner pod's environment: what a task needs to start shard Jobs like the runner's own.
GROUP_ENV = "ITER8_GROUP"
IMAGE_ENV = "ITER8_RUNNER_IMAGE"
#: Where the runner's http and grpc tasks PUT the result (``builtin_tasks/loadgen/report_result.py``).
METRICS_URL_ENV = "METRICS_SERVER_URL"
#: The key of the shard plan Secret (see ``builtin_tasks/loadgen/shards.py``).
SHARD_PLAN_KEY = "plan.json"


def check_group(group: str) -> str:
    """A group names a Secret, a Job and labels: a DNS label of at most 40 characters."""
    if not _GROUP_NAME.fullmatch(group):
        raise UsageError(
            f"-g/--group {group!r}: use lower-case letters, digits and '-', starting and ending "
            "with a letter or digit, at most 40 characters"
        )
    return group


def runner_name(group: str) -> str:
    return f"{group}-iter8"


def shard_name(group: str, index: int) -> str:
    """Shard ``index``'s ServiceAccount, Role, RoleBinding, result ConfigMap and Job."""
    return f"{group}-shard-{index}"


def shard_plan_name(group: str) -> str:
    """The Secret the runner writes each sharded run's plan and start instant into (a Secret: the
    target's headers may carry credentials)."""
    return f"{group}-shards"


def shard_task(kube: Kube, group: str, namespace: str) -> str | None:
    """Which task the current shard plan is for (None when there is no readable plan)."""
    import json

    plan = kube.find(SECRETS, shard_plan_name(group), namespace) or {}
    try:
        encoded = (plan.get("data") or {}).get(SHARD_PLAN_KEY) or ""
        task = json.loads(base64.b64decode(encoded).decode("utf-8") or "{}").get("task")
    except (ValueError, AttributeError):
        return None
    return task if isinstance(task, str) else None


def shard_count(prepared: list[PreparedTask]) -> int:
    """The most pods any entry spreads its load over (tasks that can declare ``pods`` in their
    inputs: ``http``, ``grpc``); 1 when none does."""
    counts = [getattr(task.task.inputs, "pods", 1) for task in prepared]
    return max([c for c in counts if isinstance(c, int)] or [1])


class SecretStore:
    """The experiment in the group's Secret; saves retry on conflicts and refuse a newer revision."""

    def __init__(self, kube: Kube, group: str, namespace: str) -> None:
        self.kube = kube
        self.group = group
        self.namespace = namespace
        #: The revision this store writes for; a save into a relaunched group fails rather than overwrite it.
        self.revision: int | None = None
        #: The revision of the experiment :meth:`load` read last (None before it read one).
        self.loaded_revision: int | None = None
        self.description = f'secret "{group}" in namespace "{namespace}"'

    def secret(self) -> dict[str, Any]:
        try:
            return self.kube.get(SECRETS, self.group, self.namespace)
        except KubeNotFoundError:
            raise KubeNotFoundError(
                f'experiment group "{self.group}" not found in namespace "{self.namespace}"', status=404
            ) from None

    def load(self) -> Experiment:
        secret = self.secret()
        experiment = experiment_of(secret, self.description)
        self.loaded_revision = revision_of(secret)
        return experiment

    def save(self, experiment: Experiment) -> None:
        encoded = base64.b64encode(dump_yaml(experiment.document()).encode()).decode()

        def mutate(secret: dict[str, Any]) -> dict[str, Any]:
            current = revision_of(secret)
            if self.revision is not None and current != self.revision:
                raise StorageError(
                    f"experiment group {self.group!r} was relaunched (revision {current}); "
                    f"this run of revision {self.revision} stops"
                )
            secret.setdefault("data", {})[SECRET_KEY] = encoded
            return secret

        self.kube.update(SECRETS, self.group, mutate, self.namespace)


def revision_of(secret: dict[str, Any]) -> int:
    value = (secret.get("metadata", {}).get("annotations") or {}).get(REVISION_ANNOTATION, "0")
    return int(value) if str(value).isdigit() else 0


def experiment_of(secret: dict[str, Any], source: str) -> Experiment:
    data = (secret.get("data") or {}).get(SECRET_KEY)
    if data is None:
        raise StorageError(f"{source} holds no {SECRET_KEY}")
    try:
        doc = boundedyaml.load(base64.b64decode(data).decode("utf-8"), boundedyaml.STORED_LIMITS)
    except (ValueError, boundedyaml.BoundedYAMLError) as exc:
        raise StorageError(f"{source}: {SECRET_KEY} is not valid YAML: {str(exc).splitlines()[0]}") from None
    return stored_experiment(doc, source)


def _labels(group: str) -> dict[str, str]:
    return {GROUP_LABEL: group, "app.kubernetes.io/managed-by": "kubectl-iter8"}


def _meta(name: str, group: str, namespace: str, owner: dict[str, Any] | None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "labels": _labels(group)}
    if owner is not None:
        meta["ownerReferences"] = [
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "name": owner["metadata"]["name"],
                "uid": owner["metadata"]["uid"],
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
    return meta


def _rules(group: str, accesses: list[KubeAccess], shards: int = 1) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = []
    if group:
        rules.append(
            {
                "apiGroups": [""],
                "resources": ["secrets"],
                "resourceNames": [group],
                "verbs": ["get", "update", "patch"],
            }
        )
    if group and shards > 1:
        rules.extend(_coordinator_rules(group, shards))
    for access in accesses:
        rule: dict[str, Any] = {
            "apiGroups": [access.gvr.group],
            "resources": [access.gvr.resource],
            "verbs": sorted(set(access.verbs)),
        }
        if access.names and not set(access.verbs) & {"list", "watch"}:
            rule["resourceNames"] = sorted(set(access.names))
        rules.append(rule)
    return rules


def _coordinator_rules(group: str, shards: int) -> list[dict[str, Any]]:
    """The runner starts shard Jobs and reads their results: RBAC cannot limit ``create`` by name
    (the name is not known when it is checked), every other verb is limited to the shards' objects."""
    names = [shard_name(group, k) for k in range(shards)]
    return [
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]},
        {
            "apiGroups": [""],
            "resources": ["secrets"],
            "resourceNames": [shard_plan_name(group)],
            "verbs": ["get", "update", "patch", "delete"],
        },
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create"]},
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": names,
            "verbs": ["get", "update", "patch", "delete"],
        },
        {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create"]},
        {"apiGroups": ["batch"], "resources": ["jobs"], "resourceNames": names, "verbs": ["get", "delete"]},
    ]


def shard_objects(
    group: str, namespace: str, shards: int, owner: dict[str, Any] | None
) -> list[tuple[GVR, dict[str, Any]]]:
    """Per shard: a ServiceAccount, and a Role and RoleBinding that let it read the plan (a Secret)
    and write its own result ConfigMap (made by the runner before the shard starts), nothing else."""
    objects: list[tuple[GVR, dict[str, Any]]] = []
    for k in range(shards):
        name = shard_name(group, k)

        def meta(name: str = name, k: int = k) -> dict[str, Any]:
            made = _meta(name, group, namespace, owner)
            made["labels"][SHARD_LABEL] = str(k)
            return made

        rules = [
            {"apiGroups": [""], "resources": ["secrets"], "resourceNames": [shard_plan_name(group)],
             "verbs": ["get"]},
            {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": [name],
             "verbs": ["get", "update", "patch"]},
        ]  # fmt: skip
        objects += [
            (SERVICE_ACCOUNTS, {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta()}),
            (
                ROLES,
                {
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "Role",
                    "metadata": meta(),
                    "rules": rules,
                },
            ),
            (
                ROLE_BINDINGS,
                {
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "RoleBinding",
                    "metadata": meta(),
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
                    "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
                },
            ),
        ]
    return objects


def task_accesses(prepared: list[PreparedTask], namespace: str) -> dict[str, list[KubeAccess]]:
    """What the tasks read, by namespace."""
    by_namespace: dict[str, list[KubeAccess]] = {}
    for task in prepared:
        for access in task.task.kube_access():
            by_namespace.setdefault(access.namespace or namespace, []).append(access)
    return by_namespace


@dataclass(frozen=True)
class RunnerPod:
    """What Iter8's chart values choose for the runner's pod; None keeps this project's default."""

    #: The pod's ServiceAccount (``serviceAccountName``): then no account, Role or RoleBinding is made.
    service_account: str | None = None
    #: The container's ``resources`` (``requests``/``limits``).
    resources: dict[str, dict[str, str]] | None = None
    #: The runner's ``--loglevel`` (``logLevel``).
    log_level: str | None = None
    #: The runner's ``$METRICS_SERVER_URL`` (``metricsServerURL``).
    metrics_server_url: str | None = None


def pod_spec(
    group: str, namespace: str, image: str, keep_results: bool, runner: RunnerPod | None = None
) -> dict[str, Any]:
    """The runner's pod: unprivileged, a read-only root filesystem, and one scratch folder.

    The runner writes only to the Secret and to temporary folders (the ``run`` task's working
    folder, the ``grpc`` task's compiled protos), so ``HOME`` and ``TMPDIR`` both point at an
    ``emptyDir`` mounted on ``/tmp``; nothing else needs to be writable. Its group and image are
    in its environment, for a task that starts shard Jobs like it.
    """
    runner = runner or RunnerPod()
    command = ["kubectl-iter8"]
    if runner.log_level:
        command += ["--loglevel", runner.log_level]
    command += ["run", "--group", group, "--namespace", namespace]
    if keep_results:
        command.append("--keep-results")
    env = [{"name": GROUP_ENV, "value": group}, {"name": IMAGE_ENV, "value": image}]
    if runner.metrics_server_url:
        env.append({"name": METRICS_URL_ENV, "value": runner.metrics_server_url})
    pod = _pod(group, runner.service_account or runner_name(group), image, command, env)
    if runner.resources is not None:
        pod["spec"]["containers"][0]["resources"] = runner.resources
    return pod


def _pod(
    group: str, account: str, image: str, command: list[str], env: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "metadata": {"labels": _labels(group), "annotations": {"sidecar.istio.io/inject": "false"}},
        "spec": {
            "serviceAccountName": account,
            "restartPolicy": "Never",
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": RUNNER_UID,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": "iter8",
                    "image": image,
                    "imagePullPolicy": "IfNotPresent",
                    "command": command,
                    "env": [
                        {
                            "name": "POD_NAMESPACE",
                            "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}},
                        },
                        {"name": "HOME", "value": SCRATCH_DIR},
                        {"name": "TMPDIR", "value": SCRATCH_DIR},
                        *env,
                    ],
                    "resources": {
                        "requests": {"cpu": "250m", "memory": "128Mi"},
                        "limits": {"cpu": "1", "memory": "512Mi"},
                    },
                    "securityContext": {
                        "readOnlyRootFilesystem": True,
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                    },
                    "volumeMounts": [{"name": "scratch", "mountPath": SCRATCH_DIR}],
                }
            ],
            "volumes": [{"name": "scratch", "emptyDir": {}}],
        },
    }


def shard_job(
    group: str, namespace: str, index: int, image: str, owner: dict[str, Any], deadline: int | None
) -> dict[str, Any]:
    """The Job of shard ``index``: one pod that runs ``kubectl-iter8 run --shard INDEX`` as the shard's
    own ServiceAccount, owned by the experiment's Secret.

    It is never retried (a shard run again would not start with the others) and a pod that fails or
    is evicted fails the Job at once, the reason (exit code, disruption) in its ``Failed`` condition,
    which the runner reads; it cannot read pods.
    """
    name = shard_name(group, index)
    command = ["kubectl-iter8", "run", "--group", group, "--namespace", namespace, "--shard", str(index)]
    template = _pod(group, name, image, command, [])
    template["metadata"]["labels"][SHARD_LABEL] = str(index)
    meta = _meta(name, group, namespace, None)
    meta["labels"][SHARD_LABEL] = str(index)
    # No blockOwnerDeletion: setting it needs rights on the owner's finalizers the runner lacks.
    meta["ownerReferences"] = [
        {"apiVersion": "v1", "kind": "Secret", "name": owner["metadata"]["name"],
         "uid": owner["metadata"]["uid"]}
    ]  # fmt: skip
    spec: dict[str, Any] = {
        "backoffLimit": 0,
        "ttlSecondsAfterFinished": FINISHED_JOB_TTL_SECONDS,
        "podFailurePolicy": {
            "rules": [
                {"action": "FailJob", "onExitCodes": {"operator": "NotIn", "values": [0]}},
                {"action": "FailJob", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
            ]
        },
        "template": template,
    }
    if deadline:
        spec["activeDeadlineSeconds"] = deadline
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta, "spec": spec}


def manifests(
    experiment: Experiment,
    prepared: list[PreparedTask],
    *,
    group: str,
    namespace: str,
    revision: int,
    image: str,
    schedule: str | None,
    deadline: int | None = None,
    owner: dict[str, Any] | None = None,
    runner: RunnerPod | None = None,
) -> list[tuple[GVR, dict[str, Any]]]:
    """Every object of the group, in the order they are created. ``owner`` is the stored Secret.

    :param deadline: the Job's ``activeDeadlineSeconds`` (each of a CronJob's Jobs); ``None``:
        derived from the tasks (:func:`~kubectl_iter8.deadline.job_deadline`), ``0``: none.
    :param runner: the chart's choices for the runner's pod. With a ServiceAccount named there, as
        in Iter8's chart, no runner ServiceAccount, Role or RoleBinding is made: that account must
        already be allowed to read and update the group's Secret and read what the tasks read.
    """
    runner = runner or RunnerPod()
    name = runner_name(group)
    experiment.metadata.name = experiment.metadata.name or group
    experiment.metadata.namespace = namespace
    accesses = task_accesses(prepared, namespace)
    shards = shard_count(prepared)
    if shards > MAX_SHARDS:
        raise UsageError(f"pods: {shards}: at most {MAX_SHARDS} pods per task")
    # With the user's own account no Role is made, so there is none in another namespace to remove.
    extra = [] if runner.service_account else sorted(ns for ns in accesses if ns != namespace)
    secret_meta = _meta(group, group, namespace, None)
    secret_meta["labels"][KIND_LABEL] = "experiment"
    secret_meta["annotations"] = {REVISION_ANNOTATION: str(revision)}
    if extra:
        secret_meta["annotations"][NAMESPACES_ANNOTATION] = ",".join(extra)
    objects: list[tuple[GVR, dict[str, Any]]] = [
        (
            SECRETS,
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": secret_meta,
                "type": "Opaque",
                "stringData": {SECRET_KEY: dump_yaml(experiment.document())},
            },
        ),
    ]
    if not runner.service_account:
        objects.append(
            (
                SERVICE_ACCOUNTS,
                {
                    "apiVersion": "v1",
                    "kind": "ServiceAccount",
                    "metadata": _meta(name, group, namespace, owner),
                },
            )
        )
    for ns in [namespace, *extra] if not runner.service_account else []:
        meta_owner = owner if ns == namespace else None
        objects.append(
            (
                ROLES,
                {
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "Role",
                    "metadata": _meta(name, group, ns, meta_owner),
                    "rules": _rules(group if ns == namespace else "", accesses.get(ns, []), shards),
                },
            )
        )
        objects.append(
            (
                ROLE_BINDINGS,
                {
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "RoleBinding",
                    "metadata": _meta(name, group, ns, meta_owner),
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
                    "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
                },
            )
        )
    if shards > 1:
        objects += shard_objects(group, namespace, shards, owner)
    job_spec: dict[str, Any] = {
        "backoffLimit": 0,
        "ttlSecondsAfterFinished": FINISHED_JOB_TTL_SECONDS,
        "template": pod_spec(group, namespace, image, schedule is not None, runner),
    }
    if deadline is None:
        deadline = job_deadline(prepared)
    if deadline:
        job_spec["activeDeadlineSeconds"] = deadline
    if schedule is None:
        job_meta = _meta(f"{group}-{revision}-job", group, namespace, owner)
        job_meta["annotations"] = {REVISION_ANNOTATION: str(revision)}
        objects.append(
            (JOBS, {"apiVersion": "batch/v1", "kind": "Job", "metadata": job_meta, "spec": job_spec})
        )
    else:
        cron_meta = _meta(f"{group}-{revision}-cronjob", group, namespace, owner)
        cron_meta["annotations"] = {REVISION_ANNOTATION: str(revision)}
        objects.append(
            (
                CRON_JOBS,
                {
                    "apiVersion": "batch/v1",
                    "kind": "CronJob",
                    "metadata": cron_meta,
                    "spec": {
                        "schedule": schedule,
                        "concurrencyPolicy": "Forbid",
                        # Labelled like a launched Job, so assert finds the Jobs the CronJob starts.
                        "jobTemplate": {
                            "metadata": {
                                "labels": _labels(group),
                                "annotations": {REVISION_ANNOTATION: str(revision)},
                            },
                            "spec": job_spec,
                        },
                    },
                },
            )
        )
    return objects


def launch(
    kube: Kube,
    experiment: Experiment,
    prepared: list[PreparedTask],
    *,
    group: str,
    namespace: str,
    image: str,
    schedule: str | None,
    deadline: int | None = None,
    runner: RunnerPod | None = None,
    fresh: bool = False,
) -> int:
    """Create or replace the group in the cluster; returns the new revision.

    :param fresh: the caller has just seen that the group does not exist (one read less).
    """
    existing = None if fresh else kube.find(SECRETS, group, namespace)
    revision = revision_of(existing) + 1 if existing else 1
    if existing is not None:
        # Stop the previous revision's runs before its Secret changes under them.
        for gvr in (JOBS, CRON_JOBS):
            for obj in kube.list(gvr, namespace, label_selector=f"{GROUP_LABEL}={group}"):
                kube.delete(gvr, obj["metadata"]["name"], namespace)
    build = functools.partial(
        manifests, experiment, prepared, group=group, namespace=namespace, revision=revision, image=image,
        schedule=schedule, deadline=deadline, runner=runner,
    )  # fmt: skip
    secret = kube.apply(SECRETS, build()[0][1], namespace)
    # Ownership needs the Secret's uid, known only now.
    for gvr, obj in build(owner=secret)[1:]:
        kube.apply(gvr, obj, obj["metadata"]["namespace"])
    if existing is not None:
        shards = shard_count(prepared)
        _prune_shards(kube, group, namespace, shards if shards > 1 else 0)
        if runner is not None and runner.service_account:
            _drop_runner_account(kube, group, namespace, existing)
    return revision


def _drop_runner_account(kube: Kube, group: str, namespace: str, previous: dict[str, Any]) -> None:
    """A relaunch that names its own ServiceAccount removes the account and rights an earlier
    revision was given, so none stay behind unused."""
    extra = (previous["metadata"].get("annotations") or {}).get(NAMESPACES_ANNOTATION, "")
    targets = [
        (gvr, ns) for ns in [namespace, *filter(None, extra.split(","))] for gvr in (ROLE_BINDINGS, ROLES)
    ]
    for gvr, ns in [*targets, (SERVICE_ACCOUNTS, namespace)]:
        try:
            kube.delete(gvr, runner_name(group), ns)
        except KubeForbiddenError:
            continue  # a launcher who may not delete them: they go with the group, on delete -g


def _prune_shards(kube: Kube, group: str, namespace: str, keep: int) -> None:
    """A relaunch with fewer pods (or none) removes the accounts and rights of the shards it dropped."""
    selector = f"{GROUP_LABEL}={group},{SHARD_LABEL}"
    for gvr in (ROLE_BINDINGS, ROLES, SERVICE_ACCOUNTS, CONFIGMAPS):
        try:
            found = kube.list(gvr, namespace, label_selector=selector)
        except KubeForbiddenError:
            continue  # a launcher who may not list them: they go with the group, on delete -g
        for obj in found:
            index = (obj["metadata"].get("labels") or {}).get(SHARD_LABEL, "")
            if not index.isdigit() or int(index) >= keep:
                kube.delete(gvr, obj["metadata"]["name"], namespace)


def delete(kube: Kube, group: str, namespace: str) -> None:
    """Delete the group: its Secret (which owns the rest) and its Roles in other namespaces."""
    secret = SecretStore(kube, group, namespace).secret()
    extra = (secret["metadata"].get("annotations") or {}).get(NAMESPACES_ANNOTATION, "")
    kube.delete(SECRETS, group, namespace, propagation="Foreground")
    for ns in filter(None, extra.split(",")):
        for gvr in (ROLE_BINDINGS, ROLES):
            kube.delete(gvr, runner_name(group), ns)


def logs(kube: Kube, group: str, namespace: str) -> list[tuple[str, str]]:
    """(pod name, log) for every pod that ran the group, oldest first."""
    SecretStore(kube, group, namespace).secret()
    pods = kube.list(PODS, namespace, label_selector=f"{GROUP_LABEL}={group}")
    pods.sort(key=lambda pod: pod["metadata"].get("creationTimestamp", ""))
    return [(pod["metadata"]["name"], kube.logs(pod["metadata"]["name"], namespace)) for pod in pods]
