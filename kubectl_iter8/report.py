"""Reports: one document built from an experiment, rendered as JSON, terminal text or HTML.

The JSON document is the stable interface (``docs/report-json.md``): text and HTML
(:mod:`.report_html`) are renderings of it, so every format shows the same facts.
"""

from __future__ import annotations

import math
from typing import Any

from tabulate import tabulate

from . import conditions
from .experiment import Experiment

REPORT_API_VERSION = "kubectl-iter8/v1"


def _value(insights: Any, version: int, name: str, info: Any) -> float | None:
    """A metric's value for one version: the latest, or for a ``Sample`` metric the mean of its values."""
    if info is not None and info.type == "Sample":
        if version >= len(insights.non_hist_metric_values):
            return None
        values = insights.non_hist_metric_values[version].get(name) or []
        return sum(values) / len(values) if values else None
    value: float | None = insights.scalar(version, name)
    return value


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
                item: dict[str, Any] = {
                    "bound": bound,
                    "metric": slo.metric,
                    "limit": slo.limit,
                    "satisfied": list(row),
                }
                cells = _slo_verdicts(insights, bound, i)
                if cells is not None and any(c.get("basis") == "bound" or "note" in c for c in cells):
                    item["verdicts"] = cells
                slos.append(item)
    metric_names = sorted({*(insights.metrics_info if insights else {}), *(s["metric"] for s in slos)})
    metrics = []
    for name in metric_names:
        info = insights.info(name) if insights else None
        metrics.append(
            {
                "name": name,
                "description": info.description if info else "",
                "units": info.units if info else None,
                "type": info.type if info else None,
                "values": [_value(insights, v, name, info) for v in range(num_versions)] if insights else [],
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
    document = {
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
        "comparisons": _comparisons(experiment, versions),
        "histograms": _histograms(experiment, num_versions),
        "missingMetrics": _missing(experiment, versions),
    }
    return document


def _extra(insights: Any, key: str) -> Any:
    return (insights.model_extra or {}).get(key) if insights is not None else None


def _slo_verdicts(insights: Any, bound: str, index: int) -> list[dict[str, Any]] | None:
    """The statistics ``assess`` stored for SLO ``index`` of ``bound``, one mapping per version."""
    stored = _extra(insights, "SLOVerdicts")
    rows = stored.get(bound) if isinstance(stored, dict) else None
    if not isinstance(rows, list) or index >= len(rows) or not isinstance(rows[index], list):
        return None
    return [dict(cell) if isinstance(cell, dict) else {} for cell in rows[index]]


def _label(versions: list[str], index: Any) -> str | None:
    return versions[index] if isinstance(index, int) and 0 <= index < len(versions) else None


def _comparisons(experiment: Experiment, versions: list[str]) -> dict[str, Any]:
    """Verdicts of ``assess``'s comparisons with the baseline."""
    insights = experiment.result.insights if experiment.result else None
    stored = _extra(insights, "comparisons")
    baseline = stored.get("baseline") if isinstance(stored, dict) else None
    items = []
    for item in conditions.comparison_items(experiment):
        row = dict(item)
        row["versionLabel"] = _label(versions, item.get("version"))
        row["baselineLabel"] = _label(versions, item.get("baseline"))
        items.append(row)
    return {
        "baseline": _label(versions, baseline),
        "noRegression": conditions.no_regression(experiment) if insights is not None else None,
        "items": items,
    }


#: Percentiles every histogram summary lists.
REPORT_PERCENTILES = (50.0, 75.0, 90.0, 95.0, 99.0, 99.9)
#: Buckets of the distribution charts (log-spaced, shared by all versions of a metric).
REPORT_BUCKETS = 40


def _histograms(experiment: Experiment, num_versions: int) -> list[dict[str, Any]]:
    """Per histogram metric (latency per endpoint): summary and shared buckets per version."""
    from . import statistics as st

    result = experiment.result
    if result is None or num_versions == 0:
        return []
    names: list[str] = []
    for version in range(num_versions):
        names += [n for n in st.histogram_sources(result, version) if n not in names]
    out = []
    for name in sorted(names):
        sources = [st.sample_source(result, v, name) for v in range(num_versions)]
        present = [s for s in sources if s is not None and s.samples.n > 0]
        if not present:
            continue
        lo = min(float(s.samples.values[0]) for s in present)
        hi = max(float(s.samples.values[-1]) for s in present)
        edges = _edges(lo, hi, REPORT_BUCKETS)
        per_version: list[dict[str, Any] | None] = []
        for source in sources:
            if source is None or source.samples.n == 0:
                per_version.append(None)
                continue
            samples = source.samples
            counts = [0] * (len(edges) - 1)
            for value, count in zip(samples.values.tolist(), samples.counts.tolist(), strict=True):
                counts[_bucket(edges, value)] += int(count)
            per_version.append(
                {
                    "count": samples.n,
                    "min": _round(float(samples.values[0])),
                    "max": _round(float(samples.values[-1])),
                    "mean": _round(samples.mean()),
                    "percentiles": {f"p{q:g}": _round(samples.percentile(q)) for q in REPORT_PERCENTILES},
                    "buckets": [
                        {"lower": _round(edges[i]), "upper": _round(edges[i + 1]), "count": c}
                        for i, c in enumerate(counts)
                    ],
                }
            )
        out.append({"metric": name, "units": present[0].units, "versions": per_version})
    return out


def _edges(lo: float, hi: float, buckets: int) -> list[float]:
    if hi <= lo:
        return [lo, hi if hi > lo else lo + max(abs(lo) * 0.01, 1e-9)]
    if lo > 0:
        ratio = (hi / lo) ** (1.0 / buckets)
        edges = [lo * ratio**i for i in range(buckets + 1)]
    else:
        step = (hi - lo) / buckets
        edges = [lo + step * i for i in range(buckets + 1)]
    edges[-1] = hi
    return edges


def _bucket(edges: list[float], value: float) -> int:
    import bisect

    index = bisect.bisect_right(edges, value) - 1
    return min(max(index, 0), len(edges) - 2)


def _round(value: float) -> float | None:
    return float(f"{value:.6g}") if math.isfinite(value) else None


def _missing(experiment: Experiment, versions: list[str]) -> list[dict[str, Any]]:
    """Metrics a task could not fetch, with the reason (``custom-metrics`` records them)."""
    result = experiment.result
    out = []
    for index, record in enumerate(result.tasks if result else []):
        for item in record.details.get("missing") or []:
            if isinstance(item, dict):
                out.append(
                    {
                        "metric": item.get("metric"),
                        "version": _label(versions, item.get("version")),
                        "reason": item.get("reason"),
                        "task": index,
                    }
                )
    return out


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
            # distributions are shown as charts (HTML) or summarised (JSON histograms, comparisons)
            if m["type"] not in ("Histogram", "Sample")
        ]
        lines += ["", tabulate(rows, headers=["Metric", *versions], tablefmt="simple", disable_numparse=True)]
    if report["rewards"]:
        rows = [
            [f"{r['direction']} {r['metric']}", r["winner"] or "insufficient data"] for r in report["rewards"]
        ]
        lines += ["", tabulate(rows, headers=["Reward", "Best version"], tablefmt="simple")]
    comparisons = report.get("comparisons") or {}
    if comparisons.get("items"):
        rows = [
            [
                c["metric"],
                f"{c.get('versionLabel')} vs {c.get('baselineLabel')}",
                c["verdict"],
                c.get("method", ""),
                _difference(c),
            ]
            for c in comparisons["items"]
        ]
        headers = ["Compared with baseline", "Versions", "Verdict", "Test", "Difference [interval]"]
        lines += ["", tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True)]
    if report.get("missingMetrics"):
        rows = [[m["metric"], m["version"] or "-", m["reason"]] for m in report["missingMetrics"]]
        headers = ["Missing metric", "Version", "Reason"]
        lines += ["", tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True)]
    return "\n".join(lines) + "\n"


def _difference(comparison: dict[str, Any]) -> str:
    """``+1.23 [0.5, 2.1]`` (candidate minus baseline of the compared statistic)."""
    diff = comparison.get("difference")
    if diff is None:
        return "-"
    text = f"{diff:+.4g} ({comparison.get('statistic', '')})"
    interval = comparison.get("interval")
    if interval and None not in interval:
        text += f" [{interval[0]:.4g}, {interval[1]:.4g}]"
    return text
