"""The rollout reconciler: runs a routemap's ``rollout`` policy, leader-only and restart-safe.

Called by the routemap reconciler (:mod:`.routemaps`) twice per reconcile of a routemap with a
policy: :meth:`RolloutReconciler.weights` before the plan (the weights the stored state asks for:
``100 - w`` for the primary, ``w`` for the candidate), and :meth:`RolloutReconciler.reconcile`
after the routing was applied (observe, :func:`.progression.decide`, store, act). The state lives in
the ConfigMap ``<routemap>-iter8-rollout``, owned by the routemap; it is written before any action
it announces (see :mod:`.progression` for why that makes a restart safe). Analyses are launched and
judged by :mod:`.analysis`; webhooks are called here, with a timeout and retries.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from kubectl_iter8 import boundedyaml
from kubectl_iter8.kube import CONFIGMAPS, Kube
from kubectl_iter8.registry import ResourceType
from kubectl_iter8.rollout import (
    ROLLOUT_KIND,
    STATE_KEY,
    Analysis,
    Hook,
    RolloutPolicy,
    RolloutState,
    rollout_name,
    stored_state,
)
from kubectl_iter8.routemap import KIND_LABEL, MANAGED_BY, SPEC_KEY, RouteMap

from . import analysis
from .cache import Obj
from .errors import PermanentError
from .http import Metrics
from .plan import FIELD_MANAGER, TEMPLATE_DIGEST, Lookup, Plan, digest, resource_ids, stamp, up_to_date
from .progression import AnalysisOutcome, Decision, Observed, decide, pass_gate
from .reads import Reads
from .status import dumper
from .writer import Writer

if TYPE_CHECKING:
    import httpx

    from kubectl_iter8.registry import TaskRegistry

log = logging.getLogger("kubectl_iter8.controller")
#: How soon a gate held by a webhook is asked again.
GATE_RETRY = 10.0


def candidate_identity(
    routemap: RouteMap, lookup: Lookup, types: Mapping[str, ResourceType]
) -> tuple[str, str]:
    """(digest, name) of the routemap's candidate (version 1); ("", "") when it has none.

    The digest covers each resource's identity (type, namespace, name, uid) and what says its spec
    changed: the pod template's digest where there is one, else the generation (objects without
    either, a Service, count by identity only: their metadata changes, the controller's own
    finalizer among them, are not a new version). A new candidate, or the same one changed in
    place, restarts the rollout.
    """
    if len(routemap.spec.versions) < 2:
        return "", ""
    parts = []
    for rid in resource_ids(routemap, types)[1]:
        obj = lookup(*rid) or {}
        meta = obj.get("metadata") or {}
        change = obj.get(TEMPLATE_DIGEST) or meta.get("generation")
        parts.append([*rid, meta.get("uid"), change])
    return digest({"candidate": parts}), routemap.spec.versions[1].label


def applied_percent(decided: Plan) -> int:
    """The candidate's share, in percent, of the weights just applied."""
    weights = [v.weight for v in decided.versions]
    total = sum(weights)
    return round(100 * weights[1] / total) if len(weights) > 1 and total else 0


class RolloutReconciler:
    def __init__(
        self,
        kube: Kube,
        writer: Writer,
        *,
        lookup: Lookup,
        type_table: Mapping[str, ResourceType],
        tasks: TaskRegistry | None,
        image: str,
        metrics: Metrics,
        requeue: Callable[[str, str, float], None],
        clock: Callable[[], float] = time.time,
        http_transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.kube = kube
        self.writer = writer
        self.lookup = lookup
        self.type_table = type_table
        self.tasks = tasks
        self.image = image
        self.metrics = metrics
        self.requeue = requeue
        self.clock = clock
        self.http_transport = http_transport
        #: (namespace, analysis group) -> the routemap whose rollout runs it (for the Job informer).
        self._groups: dict[tuple[str, str], tuple[str, str]] = {}
        self._lock = threading.Lock()
        from .rollout_notify import RolloutNotifier

        #: Sends the ``rollout.notify`` calls from its own thread, never on the reconcile path.
        self.notifier = RolloutNotifier(
            kube, is_leader=writer.is_leader, metrics=metrics, transport=http_transport
        )

    def routemap_of(self, namespace: str, group: str) -> tuple[str, str] | None:
        """The routemap whose current analysis is ``group`` (as far as this process has seen)."""
        with self._lock:
            return self._groups.get((namespace, group))

    def _remember(self, namespace: str, name: str, state: RolloutState) -> None:
        with self._lock:
            for key in [k for k, owner in self._groups.items() if owner == (namespace, name)]:
                del self._groups[key]
            if state.analysis is not None:
                self._groups[(namespace, state.analysis.group)] = (namespace, name)

    # --- before the plan -------------------------------------------------------------------------

    def load(self, cm: Obj, reads: Reads) -> tuple[Obj | None, RolloutState]:
        """The stored state ConfigMap and its state (a fresh one when there is none or it is unreadable)."""
        meta = cm["metadata"]
        live = reads.find(CONFIGMAPS, rollout_name(meta["name"]), meta.get("namespace") or "")
        try:
            return live, stored_state(live) or RolloutState()
        except ValueError as exc:
            where = f"{meta.get('namespace')}/{meta['name']}"
            log.warning("routemap %s: unreadable rollout state, starting over: %s", where, exc)
            return live, RolloutState()

    def weights(self, routemap: RouteMap, state: RolloutState) -> list[int] | None:
        """The desired weights the rollout asks for (None: the routemap has no candidate)."""
        ident, _ = candidate_identity(routemap, self.lookup, self.type_table)
        if not ident:
            return None
        weight = state.weight if state.candidate == ident else 0
        return [100 - weight, weight]

    # --- after the routing was applied -----------------------------------------------------------

    def reconcile(
        self,
        cm: Obj,
        routemap: RouteMap,
        decided: Plan,
        live: Obj | None,
        state: RolloutState,
        *,
        reads: Reads,
        launch_now: bool = True,
    ) -> bool:
        """Observe, decide, store, act; True when the routing should now get another weight (the
        caller applies it).

        :param launch_now: False when this pass follows a weight change in the same reconcile: an
            analysis it decides on is stored, and launched by the routemap's next reconcile, queued
            behind the verdicts other routemaps are waiting to act on.
        """
        policy = routemap.spec.rollout
        assert policy is not None
        meta = cm["metadata"]
        namespace, name = meta.get("namespace") or "", meta["name"]
        ident, label = candidate_identity(routemap, self.lookup, self.type_table)
        outcome = None
        run = state.analysis
        if run is not None and state.candidate == ident:
            spec = _analysis_of(policy, run.step)
            if spec is not None:
                outcome = analysis.outcome(self.kube, run.group, namespace, spec)
                if outcome is None:
                    # Stored but not launched: the controller stopped in between.
                    failure = self._launch(
                        cm, routemap, decided, state, run.group, run.step, spec, absent=True
                    )
                    if failure is not None:
                        outcome = AnalysisOutcome(True, "fail", failure)
        seen = Observed(
            now=self.clock(),
            candidate=ident,
            candidate_name=label,
            available=len(decided.versions) > 1 and decided.versions[1].available,
            applied_weight=applied_percent(decided),
            annotations=dict(meta.get("annotations") or {}),
            analysis=outcome,
            run_prefix=name[:40].rstrip("-"),
        )
        decision = self._decide(cm, policy, state, seen)
        if decision.state != state or live is None:
            self._store(cm, routemap, live, decision.state, reads)
        new_run = decision.launch
        if new_run is not None and not launch_now:
            self.requeue(namespace, name, 0)
        elif new_run is not None:
            spec = _analysis_of(policy, new_run.step)
            assert spec is not None
            failure = self._launch(cm, routemap, decided, decision.state, new_run.group, new_run.step, spec)
            if failure is not None:
                # An analysis that cannot be launched (a missing ConfigMap, a refused experiment) is
                # a failed one, judged now rather than at its timeout.
                earlier = decision.events
                failed = replace(seen, analysis=AnalysisOutcome(True, "fail", failure))
                decision = self._decide(cm, policy, decision.state, failed)
                decision.events[:0] = earlier
                self._store(cm, routemap, None, decision.state, reads)
        if decision.promote:
            self._promote(cm, decision.state)
        for reason, message, warning in decision.events:
            self.writer.event(cm, reason, message, warning=warning)
            self.metrics.rollout_transition(reason)
            self.notifier.notify(policy.notify, cm, reason, message, decision.state, warning=warning)
        self._remember(namespace, name, decision.state)
        self.metrics.set_rollout(namespace, name, decision.state.phase)
        wanted = self.weights(routemap, decision.state)
        moved = wanted is not None and wanted[1] != applied_percent(decided)
        # A new weight is the caller's to apply (at once, or by queueing the routemap again).
        if decision.requeue is not None and not (moved and decision.requeue == 0):
            self.requeue(namespace, name, decision.requeue)
        return moved

    def _decide(self, cm: Obj, policy: RolloutPolicy, state: RolloutState, seen: Observed) -> Decision:
        """:func:`.progression.decide`, with the webhook gates it asks for called on the way."""
        decision = decide(policy, state, seen)
        for _ in range(3 * len(policy.webhooks) + 3):
            if decision.gate is None:
                break
            hook, at = decision.gate
            held = self._call_hooks(cm, policy, decision, hook, at)
            if held is not None:
                decision.update(message=held)
                decision.soon(GATE_RETRY)
                break
            decision = decide(policy, pass_gate(decision.state, hook, at), seen)
        return decision

    def _store(
        self, cm: Obj, routemap: RouteMap, live: Obj | None, state: RolloutState, reads: Reads
    ) -> None:
        import yaml

        meta = cm["metadata"]
        namespace = meta.get("namespace") or ""
        owner = routemap.owner_reference()
        desired = stamp(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": rollout_name(meta["name"]),
                    "labels": {KIND_LABEL: ROLLOUT_KIND, **MANAGED_BY},
                },
                "data": {STATE_KEY: yaml.dump(state.dump(), Dumper=dumper(yaml), sort_keys=False)},
            },
            namespace,
            owner,
        )
        if live is not None:
            owners = {o.get("uid") for o in live["metadata"].get("ownerReferences") or []}
            if meta.get("uid") not in owners:
                taken = rollout_name(meta["name"])
                raise PermanentError(f"configmap {taken!r} already exists and is not this routemap's")
            if up_to_date(live, desired):
                return
        written = self.writer.write(
            f"rollout {meta['name']}",
            functools.partial(
                self.kube.apply_server_side, CONFIGMAPS, desired, namespace, field_manager=FIELD_MANAGER,
                force=live is not None,
            ),
        )  # fmt: skip
        reads.wrote(CONFIGMAPS, written)

    def _launch(
        self,
        cm: Obj,
        routemap: RouteMap,
        decided: Plan,
        state: RolloutState,
        group: str,
        step: int,
        spec: Analysis,
        *,
        absent: bool = False,
    ) -> str | None:
        """Launch the analysis group; None, or why it cannot ever be launched.

        :param absent: the group's Secret was just found not to exist.
        """
        if self.tasks is None:
            return "this controller has no task plugins loaded: it cannot run analyses"
        namespace = cm["metadata"].get("namespace") or ""
        values = {
            "candidate": _version_values(routemap, decided, 1),
            "baseline": _version_values(routemap, decided, 0),
            "namespace": namespace,
            "routemap": cm["metadata"]["name"],
            "step": step,
            "weight": state.weight,
        }
        try:
            document = analysis.fill(analysis.source_document(self.kube, spec, namespace), values)
            self.writer.write(
                f"analysis {group}",
                functools.partial(
                    analysis.launch_analysis, self.kube, self.tasks, document, group=group,
                    namespace=namespace, image=self.image, absent=absent,
                    readable={(t.group, t.resource) for t in self.type_table.values()},
                ),
            )  # fmt: skip
        except PermanentError as exc:
            return f"not launched: {exc}"
        return None

    def _promote(self, cm: Obj, state: RolloutState) -> None:
        """Rewrite the routemap with the candidate as its only version (once: a rewritten routemap
        has no candidate left, and the rewrite checks that it still names the same candidate)."""
        import yaml

        from kubectl_iter8.routemap import parse_routemap

        meta = cm["metadata"]

        def mutate(current: Obj) -> Obj:
            if current["metadata"].get("uid") != meta.get("uid"):
                raise PermanentError("the routemap was replaced during the promotion")
            spec = boundedyaml.load(str((current.get("data") or {}).get(SPEC_KEY) or ""))
            versions = spec.get("versions") if isinstance(spec, dict) else None
            routemap = parse_routemap(current)
            if not isinstance(versions, list) or len(versions) < 2:
                return current  # already promoted
            if routemap.spec.versions[1].label != state.candidate_name:
                why = f"the routemap's candidate changed during the promotion of {state.candidate_name}"
                raise PermanentError(why)
            promoted = {k: v for k, v in versions[1].items() if k not in ("weight", "match")}
            spec["versions"] = [promoted]
            current["data"][SPEC_KEY] = yaml.safe_dump(spec, sort_keys=False)
            parse_routemap(current)  # never write a routemap the controller would refuse
            return current

        self.writer.write(
            f"promote {meta['name']}",
            functools.partial(self.kube.update, CONFIGMAPS, meta["name"], mutate, meta.get("namespace")),
        )

    def _call_hooks(
        self, cm: Obj, policy: RolloutPolicy, decision: Decision, hook: Hook, step: int
    ) -> str | None:
        """Call the webhooks of ``hook``; None when all answered 2xx, else why the step holds."""
        import httpx

        meta = cm["metadata"]
        payload = {
            "name": meta["name"],
            "namespace": meta.get("namespace") or "",
            "hook": hook,
            "step": step,
            "candidate": decision.state.candidate_name,
            "phase": decision.state.phase,
            "weight": decision.state.weight,
        }
        for webhook in policy.hooks(hook):
            why = "not called"
            client = httpx.Client(timeout=webhook.timeout, transport=self.http_transport)
            with client:
                for _ in range(webhook.retries + 1):
                    try:
                        response = client.post(webhook.url, json=payload)
                    except httpx.HTTPError as exc:
                        why = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                        continue
                    if 200 <= response.status_code < 300:
                        why = ""
                        break
                    why = f"answered {response.status_code}"
            if why:
                message = f"{hook} webhook {webhook.name!r} {why}: step {step} holds"
                self.writer.event(cm, "RolloutHeld", message, warning=True)
                return message
        return None


def _version_values(routemap: RouteMap, decided: Plan, index: int) -> dict[str, Any]:
    version = routemap.spec.versions[index]
    return {
        "name": version.label,
        "resources": [{"kind": r.gvr_short, "name": r.name} for r in version.resources],
        "weight": decided.versions[index].weight if index < len(decided.versions) else 0,
    }


def _analysis_of(policy: RolloutPolicy, step: int) -> Analysis | None:
    """The analysis step ``step`` runs, with the policy's defaults filled in (None: not an analysis)."""
    if step >= len(policy.steps):
        return None
    own = policy.steps[step].analysis
    return own.merged(policy.analysis) if own is not None else None
