"""Reports: one document built from an experiment, rendered as JSON or as terminal text.

The JSON document is the stable interface (``docs/report-json.md``): text (and, later, HTML) are
renderings of it, so every format shows the same facts.
"""

from __future__ import annotations

from typing import Any

from tabulate import tabulate

from . import conditions
from .experiment import Experiment

REPORT_API_VERSION = "kubectl-iter8/v1"


def _status(experiment: Experiment) -> str:
    result = experiment.result
    if result is None:
        return "not started"
    if result.failure:
        return "failed"
    if conditions.completed(experiment):
        return "completed"
    return "running"


def build_report(experiment: Experiment) -> dict[str, Any]:
    """The report document of ``experiment`` (see ``docs/report-json.md``)."""
    result = experiment.result
    insights = result.insights if result else None
    num_versions = insights.num_versions if insights else 0
    versions = [insights.version_label(i) for i in range(num_versions)] if insights else []
    summary = {
        "status": _status(experiment),
        "completed": conditions.completed(experiment),
        "failure": bool(result and result.failure),
        "failureMessage": result.failure_message if result else None,
        "numTasks": len(experiment.spec),
        "numCompletedTasks": result.num_completed_tasks if result else 0,
        "numLoops": result.num_loops if result else 0,
        "startTime": result.start_time.isoformat() if result and result.start_time else None,
        "endTime": result.end_time.isoformat() if result and result.end_time else None,
    }
    slos: list[dict[str, Any]] = []
    if insights and insights.slos:
        satisfied = insights.slos_satisfied
        for bound in ("upper", "lower"):
            verdicts = getattr(satisfied, bound) if satisfied else []
            for i, slo in enumerate(getattr(insights.slos, bound)):
                row = verdicts[i] if i < len(verdicts) else [False] * num_versions
                slos.append(
                    {"bound": bound, "metric": slo.metric, "limit": slo.limit, "satisfied": list(row)}
                )
    metric_names = sorted({*(insights.metrics_info if insights else {}), *(s["metric"] for s in slos)})
    metrics = []
    for name in metric_names:
        info = insights.metrics_info.get(name) if insights else None
        metrics.append(
            {
                "name": name,
                "description": info.description if info else "",
                "units": info.units if info else None,
                "type": info.type if info else None,
                "values": [insights.scalar(v, name) for v in range(num_versions)] if insights else [],
            }
        )
    rewards = []
    if insights and insights.rewards:
        winners = insights.rewards_winners
        for direction in ("max", "min"):
            picked = getattr(winners, direction) if winners else []
            for i, metric in enumerate(getattr(insights.rewards, direction)):
                winner = picked[i] if i < len(picked) else -1
                rewards.append(
                    {
                        "direction": direction,
                        "metric": metric,
                        "winner": versions[winner] if winner >= 0 else None,
                    }
                )
    return {
        "apiVersion": REPORT_API_VERSION,
        "kind": "ExperimentReport",
        "experiment": experiment.metadata.model_dump(exclude_defaults=True),
        "summary": summary,
        "versions": versions,
        "slos": {"satisfied": conditions.slos_satisfied(experiment) if insights else None, "items": slos},
        "metrics": metrics,
        "rewards": rewards,
        "tasks": [
            {
                "index": i,
                "task": record.task,
                "status": record.status,
                "durationSeconds": record.duration_seconds,
                "message": record.message,
            }
            for i, record in enumerate(result.tasks if result else [])
        ],
    }


def _number(value: float | None) -> str:
    return "unavailable" if value is None else f"{value:0.2f}"


def render_text(report: dict[str, Any]) -> str:
    """The report as plain terminal tables."""
    summary = report["summary"]
    lines = ["Experiment summary"]
    facts = [
        ["name", report["experiment"].get("name", "-")],
        ["status", summary["status"]],
        ["tasks", f"{summary['numCompletedTasks']} of {summary['numTasks']} completed"],
        ["failure", summary["failureMessage"] or ("yes" if summary["failure"] else "none")],
        ["started", summary["startTime"] or "-"],
    ]
    lines.append(tabulate(facts, tablefmt="plain"))
    versions = report["versions"]
    if not versions:
        lines += ["", "No metrics yet: the experiment has not recorded any insights. Retry the report later."]
        return "\n".join(lines) + "\n"
    if report["slos"]["items"]:
        rows = []
        for slo in report["slos"]["items"]:
            metric = next((m for m in report["metrics"] if m["name"] == slo["metric"]), None)
            units = f" ({metric['units']})" if metric and metric["units"] else ""
            condition = (
                f"{slo['metric']}{units} <= {slo['limit']:g}"
                if slo["bound"] == "upper"
                else f"{slo['limit']:g} <= {slo['metric']}{units}"
            )
            rows.append([condition, *("✔" if ok else "✘" for ok in slo["satisfied"])])
        lines += ["", tabulate(rows, headers=["SLO condition", *versions], tablefmt="simple")]
    if report["metrics"]:
        rows = [
            [m["name"] + (f" ({m['units']})" if m["units"] else ""), *map(_number, m["values"])]
            for m in report["metrics"]
        ]
        lines += ["", tabulate(rows, headers=["Metric", *versions], tablefmt="simple", disable_numparse=True)]
    if report["rewards"]:
        rows = [
            [f"{r['direction']} {r['metric']}", r["winner"] or "insufficient data"] for r in report["rewards"]
        ]
        lines += ["", tabulate(rows, headers=["Reward", "Best version"], tablefmt="simple")]
    return "\n".join(lines) + "\n"
