"""Whether an experiment group's Job died before its experiment ended: what ``assert`` watches.

The runner saves the result after every task and when the run ends, so a Job that fails because the
experiment failed is told by the result itself. A Job that fails *before* the run ended (its pod
crashed or was OOM-killed, its command could not start, it ran past its deadline) leaves a result
that will never change again, and waiting for it until ``--timeout`` helps nobody. Only the Job's
own ``Failed`` condition counts (``FailureTarget`` too: the Job controller has decided), never a
pod that is merely slow to start, which a real node may still recover from; the pods only add
how the last one ended to the message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .cluster import GROUP_LABEL, REVISION_ANNOTATION
from .errors import KubeForbiddenError
from .kube import JOBS, PODS, Kube

_FAILED = ("Failed", "FailureTarget")


@dataclass(frozen=True)
class JobFailure:
    """A failed Job of the group, and how its last pod ended (empty when no pod is left)."""

    job: str
    reason: str
    message: str
    pod: str = ""

    def describe(self, *, wrote_result: bool) -> str:
        """One line: which Job failed, why, and what the experiment had done by then."""
        why = ": ".join(filter(None, (self.reason, self.message))) or "no reason given"
        what = "finished" if wrote_result else "wrote a result"
        text = f'job "{self.job}" failed ({why}) before the experiment {what}'
        return f"{text}; {self.pod}" if self.pod else text


class JobWatch:
    """Reads the group's newest Job of one revision (a CronJob's latest run included)."""

    def __init__(self, kube: Kube, group: str, namespace: str) -> None:
        self.kube = kube
        self.group = group
        self.namespace = namespace
        #: False once the user turned out not to be allowed to read Jobs: then nothing is checked.
        self.enabled = True

    def failure(self, revision: int | None) -> JobFailure | None:
        """The failure of the newest Job of ``revision`` (any revision when None), or None."""
        if not self.enabled:
            return None
        try:
            jobs = self.kube.list(JOBS, self.namespace, label_selector=f"{GROUP_LABEL}={self.group}")
        except KubeForbiddenError:
            self.enabled = False
            return None
        if revision is not None:
            jobs = [job for job in jobs if _annotation(job, REVISION_ANNOTATION) == str(revision)]
        if not jobs:
            return None
        newest = max(jobs, key=lambda job: (job["metadata"].get("creationTimestamp", ""), _name(job)))
        condition = next(
            (
                c
                for c in (newest.get("status") or {}).get("conditions") or []
                if c.get("type") in _FAILED and c.get("status") == "True"
            ),
            None,
        )
        if condition is None:
            return None
        return JobFailure(
            _name(newest),
            str(condition.get("reason") or ""),
            _one_line(str(condition.get("message") or "")),
            self._last_pod(_name(newest)),
        )

    def _last_pod(self, job: str) -> str:
        """How the Job's newest pod ended, for the message; empty when it cannot be told."""
        try:
            pods = self.kube.list(PODS, self.namespace, label_selector=f"job-name={job}")
        except KubeForbiddenError:
            return ""
        if not pods:
            return ""
        pod = max(pods, key=lambda p: (p["metadata"].get("creationTimestamp", ""), _name(p)))
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            state = status.get("state") or {}
            if "terminated" in state:
                ended = state["terminated"]
                reason = f" ({ended['reason']})" if ended.get("reason") else ""
                return f'pod "{_name(pod)}" exited with code {ended.get("exitCode", "?")}{reason}'
            if "waiting" in state and (state["waiting"] or {}).get("reason"):
                return f'pod "{_name(pod)}" was waiting: {state["waiting"]["reason"]}'
        return ""


def _name(obj: dict[str, Any]) -> str:
    return str(obj["metadata"]["name"])


def _annotation(obj: dict[str, Any], key: str) -> str:
    return str((obj["metadata"].get("annotations") or {}).get(key, ""))


def _one_line(text: str) -> str:
    return " ".join(text.split())
