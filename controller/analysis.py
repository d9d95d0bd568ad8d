"""Analysis runs of a rollout: experiments launched in the cluster, and the verdicts read back.

An analysis is launched the way ``kubectl iter8 launch -g`` launches (:func:`kubectl_iter8.cluster.launch`:
a Secret holding the experiment, owning a Job that runs it under its own ServiceAccount and a Role
that may read and update only that Secret and what the tasks name). The experiment comes from the
policy (inline, a ConfigMap, or an earlier group's spec); its strings may name the versions with
placeholders, filled in before the launch:

``{{ candidate.name }}``, ``{{ candidate.resources[0].name }}`` (any index), ``{{ baseline.name }}``
(the primary), ``{{ namespace }}``, ``{{ routemap }}``, ``{{ step }}``, ``{{ weight }}``.

Only such names, no expressions: the routemap's author is not necessarily the one whose rights the
controller launches with. The verdict is ``assert``'s conditions on the stored result: all hold ->
``pass`` (``inconclusive`` when ``noregression`` is asked and a comparison could not decide);
otherwise ``fail`` with the conditions that failed. A Job that failed before its experiment ended
is a ``fail`` with the Job's reason.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from kubectl_iter8 import boundedyaml
from kubectl_iter8.cluster import SecretStore, experiment_of, launch, shard_count
from kubectl_iter8.conditions import comparison_items, evaluate, has_ended
from kubectl_iter8.errors import Iter8Error, KubeNotFoundError, UsageError
from kubectl_iter8.experiment import Experiment, PreparedTask, experiment_from_document, prepare
from kubectl_iter8.job_status import JobWatch
from kubectl_iter8.kube import CONFIGMAPS, SECRETS, Kube
from kubectl_iter8.rollout import Analysis

from .errors import PermanentError
from .progression import AnalysisOutcome

if TYPE_CHECKING:
    from kubectl_iter8.registry import TaskRegistry

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*|\[\d+\])*)\s*\}\}")
_PART = re.compile(r"\.?([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")
#: The most a filled-in string may grow to (a placeholder cannot multiply text, but stay bounded).
MAX_FILLED = 64 * 1024


def fill(document: Any, values: dict[str, Any], where: str = "experiment") -> Any:
    """``document`` with every ``{{ name.path }}`` in its strings replaced by its value in ``values``.

    :raises PermanentError: naming the placeholder that names nothing.
    """
    if isinstance(document, dict):
        return {k: fill(v, values, f"{where}.{k}") for k, v in document.items()}
    if isinstance(document, list):
        return [fill(v, values, f"{where}[{i}]") for i, v in enumerate(document)]
    if not isinstance(document, str) or "{{" not in document:
        return document

    def value(match: re.Match[str]) -> str:
        current: Any = values
        for name, index in _PART.findall(match.group(1)):
            try:
                current = current[name] if name else current[int(index)]
            except (KeyError, IndexError, TypeError):
                raise PermanentError(
                    f"{where}: {{{{ {match.group(1)} }}}} names nothing (use candidate, baseline, namespace, "
                    "routemap, step, weight)"
                ) from None
        return str(current)

    filled = _PLACEHOLDER.sub(value, document)
    if len(filled) > MAX_FILLED:
        raise PermanentError(f"{where}: longer than {MAX_FILLED} characters once filled in")
    return filled


def source_document(kube: Kube, analysis: Analysis, namespace: str) -> dict[str, Any]:
    """The experiment document the analysis names (not filled in yet)."""
    source = analysis.experiment
    assert source is not None  # the policy's validation makes sure
    if source.inline is not None:
        return dict(source.inline)
    if source.config_map is not None:
        cm = kube.find(CONFIGMAPS, source.config_map, namespace)
        text = ((cm or {}).get("data") or {}).get(source.key)
        if text is None:
            where = f'configmap "{source.config_map}"'
            raise PermanentError(f"analysis experiment: {where} has no key {source.key!r}")
        try:
            doc = boundedyaml.load(str(text), boundedyaml.INPUT_LIMITS)
        except boundedyaml.BoundedYAMLError as exc:
            raise PermanentError(f'analysis experiment: configmap "{source.config_map}": {exc}') from None
        if not isinstance(doc, dict):
            raise PermanentError(f'analysis experiment: configmap "{source.config_map}" is not a mapping')
        return doc
    assert source.group is not None
    try:
        experiment = SecretStore(kube, source.group, namespace).load()
    except KubeNotFoundError as exc:
        raise PermanentError(f"analysis experiment: {exc}") from None
    return {k: v for k, v in experiment.document().items() if k != "result"}


def launch_analysis(
    kube: Kube,
    tasks: TaskRegistry,
    document: dict[str, Any],
    *,
    group: str,
    namespace: str,
    image: str,
    readable: Collection[tuple[str, str]],
    absent: bool = False,
) -> None:
    """Launch the analysis group unless it exists (a controller that restarted finds its own).

    :param readable: the (API group, resource) pairs the experiment's tasks may read, in the
        routemap's namespace only (see :func:`check_accesses`).
    :param absent: the caller has just found that the group does not exist.
    """
    if not absent and kube.find(SECRETS, group, namespace) is not None:
        return
    try:
        experiment = experiment_from_document(document, f"analysis {group}")
        prepared = prepare(experiment, tasks)
    except UsageError as exc:  # InvalidExperimentError included
        raise PermanentError(str(exc)) from None
    check_accesses(prepared, namespace, readable)
    if shard_count(prepared) > 1:
        # Its runner may create Jobs, under any ServiceAccount of the namespace: not a right the
        # controller lends to whoever writes a routemap.
        raise PermanentError(
            "analysis experiment: a load spread over pods (pods: N) is not allowed in an analysis"
        )
    launch(
        kube, experiment, prepared, group=group, namespace=namespace, image=image, schedule=None, fresh=True
    )


def check_accesses(
    prepared: list[PreparedTask], namespace: str, readable: Collection[tuple[str, str]]
) -> None:
    """Refuse an analysis whose tasks read anything but ``readable`` kinds in ``namespace``.

    The controller makes the experiment's Role, and may grant only what it holds itself: Secrets
    among them. Whoever may write a routemap would otherwise borrow that, e.g. a ``custom-metrics``
    task reading a Secret's token and sending it to a URL of their choice.
    """
    for task in prepared:
        for access in task.task.kube_access():
            where = access.namespace or namespace
            kind = (access.gvr.group, access.gvr.resource)
            if where != namespace or kind not in readable:
                what = f"{access.gvr.resource} {', '.join(access.names)} in namespace {where!r}"
                raise PermanentError(
                    f"analysis experiment: {task.label} reads {what}; an analysis may read "
                    "only the kinds the controller watches, in the routemap's namespace"
                )


def outcome(kube: Kube, group: str, namespace: str, analysis: Analysis) -> AnalysisOutcome | None:
    """The verdict of the analysis group, or not done yet; None when the group does not exist."""
    secret = kube.find(SECRETS, group, namespace)
    if secret is None:
        return None
    try:
        experiment = experiment_of(secret, f'secret "{group}"')
    except Iter8Error as exc:
        return AnalysisOutcome(True, "fail", str(exc))
    if not has_ended(experiment):
        failure = JobWatch(kube, group, namespace).failure(None)
        if failure is None:
            return AnalysisOutcome(False)
        return AnalysisOutcome(True, "fail", failure.describe(wrote_result=experiment.result is not None))
    return judge(experiment, analysis)


def judge(experiment: Experiment, analysis: Analysis) -> AnalysisOutcome:
    conditions = list(analysis.conditions or [])
    verdicts = evaluate(experiment, conditions)
    metrics = _numbers(experiment)
    failed = [name for name, ok in verdicts.items() if not ok]
    if failed:
        why = experiment.result.failure_message if experiment.result else None
        reason = f"not satisfied: {', '.join(failed)}" + (f" ({why})" if why else "")
        return AnalysisOutcome(True, "fail", reason, metrics)
    if "noregression" in conditions and any(
        item.get("verdict") == "inconclusive" for item in comparison_items(experiment)
    ):
        why = "a comparison with the baseline was inconclusive"
        return AnalysisOutcome(True, "inconclusive", why, metrics)
    return AnalysisOutcome(True, "pass", f"satisfied: {', '.join(conditions)}", metrics)


def _numbers(experiment: Experiment) -> dict[str, Any]:
    """The SLO metrics' values per version (what a person reading a failed verdict wants first)."""
    insights = experiment.result.insights if experiment.result else None
    if insights is None or insights.slos is None:
        return {}
    names = sorted({slo.metric for slo in [*insights.slos.upper, *insights.slos.lower]})
    return {name: [insights.scalar(v, name) for v in range(insights.num_versions)] for name in names}
