"""The HTML report: one self-contained page (inline CSS, inline SVG charts, no script, no CDN).

It renders the same report document as ``-o json`` (:func:`kubectl_iter8.report.build_report`): a
status banner, the SLO table per version with the statistics behind each verdict, the comparisons
with the baseline, the metrics table, and charts drawn here as SVG: the latency distribution and
percentiles per version for every histogram metric (one per endpoint), and custom metrics side by
side. The template is autoescaped Jinja2; chart text is escaped where the SVG is built.
"""

from __future__ import annotations

import html
import importlib.resources
import math
from typing import Any

from markupsafe import Markup

#: Colours per version (colour-blind safe, Okabe-Ito).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
WIDTH, HEIGHT = 600, 260
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 16, 44


def colour(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _fmt(value: float | None) -> str:
    if value is None:
        return "–"
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 1e9 or magnitude < 0.01:
        return f"{value:.3g}"
    if magnitude >= 1000:
        return f"{value:.0f}"
    return f"{value:.4g}"


def _nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    start = math.ceil(lo / step) * step
    ticks = []
    value = start
    while value <= hi + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    return ticks


def _log_ticks(lo: float, hi: float) -> list[float]:
    ticks = []
    for exponent in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1):
        for mantissa in (1, 2, 5):
            value = mantissa * 10.0**exponent
            if lo <= value <= hi:
                ticks.append(value)
    return ticks or [lo, hi]


def _frame(title: str, body: list[str], legend: list[tuple[str, str]], *, label: str) -> Markup:
    items = []
    x = LEFT
    for name, fill in legend:
        items.append(
            f'<rect x="{x}" y="{HEIGHT - 14}" width="10" height="10" fill="{fill}"/>'
            f'<text x="{x + 14}" y="{HEIGHT - 5}" class="legend">{_e(name)}</text>'
        )
        x += 24 + 7 * len(name)
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" '
        f'height="{HEIGHT}" role="img" aria-label="{_e(label)}" class="chart">'
        f"<title>{_e(title)}</title>{''.join(body)}{''.join(items)}</svg>"
    )
    return Markup(svg)


def _axes(xticks: list[tuple[float, str]], yticks: list[tuple[float, str]], ylabel: str) -> list[str]:
    parts = []
    bottom = HEIGHT - BOTTOM
    for y, text in yticks:
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" class="tick" text-anchor="end">{_e(text)}</text>'
        )
    for x, text in xticks:
        parts.append(
            f'<text x="{x:.1f}" y="{bottom + 16}" class="tick" text-anchor="middle">{_e(text)}</text>'
        )
    parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{bottom}" y2="{bottom}" class="axis"/>')
    parts.append(f'<line x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{bottom}" class="axis"/>')
    parts.append(
        f'<text x="12" y="{(TOP + bottom) / 2:.1f}" class="tick" text-anchor="middle" '
        f'transform="rotate(-90 12 {(TOP + bottom) / 2:.1f})">{_e(ylabel)}</text>'
    )
    return parts


def distribution_chart(hist: dict[str, Any], versions: list[str]) -> Markup:
    """Share of observations per (log-spaced) bucket, one step line per version."""
    units = hist.get("units") or ""
    present = [(i, v) for i, v in enumerate(hist["versions"]) if v]
    edges = [b["lower"] for b in present[0][1]["buckets"]] + [present[0][1]["buckets"][-1]["upper"]]
    lo, hi = float(edges[0]), float(edges[-1])
    log = lo > 0 and hi / lo > 20
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x_of(value: float) -> float:
        if hi <= lo:
            return LEFT + plot_w / 2
        if log:
            return LEFT + plot_w * (math.log(value / lo) / math.log(hi / lo))
        return LEFT + plot_w * (value - lo) / (hi - lo)

    shares = [[100.0 * b["count"] / v["count"] for b in v["buckets"]] for _, v in present]
    top = max(max(s) for s in shares) or 1.0
    yt = _nice_ticks(0, top * 1.05)
    ymax = max(yt[-1], top)

    def y_of(share: float) -> float:
        return TOP + plot_h * (1 - share / ymax)

    body = _axes(
        [(x_of(t), _fmt(t)) for t in (_log_ticks(lo, hi) if log else _nice_ticks(lo, hi))],
        [(y_of(t), f"{t:g}%") for t in yt],
        "% of observations",
    )
    for (index, data), share in zip(present, shares, strict=True):
        points = [f"{x_of(edges[0]):.1f},{y_of(0):.1f}"]
        for i, value in enumerate(share):
            points += [
                f"{x_of(edges[i]):.1f},{y_of(value):.1f}",
                f"{x_of(edges[i + 1]):.1f},{y_of(value):.1f}",
            ]
        points.append(f"{x_of(edges[-1]):.1f},{y_of(0):.1f}")
        body.append(
            f'<polyline points="{" ".join(points)}" fill="{colour(index)}" fill-opacity="0.15" '
            f'stroke="{colour(index)}" stroke-width="1.5" class="series">'
            f"<title>{_e(versions[index])}: {data['count']} observations, "
            f"mean {_fmt(data['mean'])} {_e(units)}</title></polyline>"
        )
    body.append(
        f'<text x="{WIDTH - RIGHT}" y="{HEIGHT - BOTTOM + 32}" class="tick" text-anchor="end">'
        f"{_e(hist['metric'])} ({_e(units)}{', log scale' if log else ''})</text>"
    )
    legend = [(versions[i], colour(i)) for i, _ in present]
    return _frame(f"Distribution of {hist['metric']}", body, legend, label="distribution chart")


def _bars(
    groups: list[str], series: list[tuple[str, str, list[float | None]]], ylabel: str, title: str
) -> Markup:
    """Grouped bars: one group per label in ``groups``, one bar per series (name, colour, values)."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    values = [v for _, _, vs in series for v in vs if v is not None]
    lo = min([0.0, *values])
    hi = max([0.0, *values]) or 1.0
    yt = _nice_ticks(lo, hi * 1.05)
    ymin, ymax = min(yt[0], lo), max(yt[-1], hi)

    def y_of(value: float) -> float:
        return TOP + plot_h * (1 - (value - ymin) / (ymax - ymin or 1))

    group_w = plot_w / max(1, len(groups))
    bar_w = group_w * 0.8 / max(1, len(series))
    body = _axes(
        [(LEFT + group_w * (g + 0.5), label) for g, label in enumerate(groups)],
        [(y_of(t), _fmt(t)) for t in yt],
        ylabel,
    )
    for s, (name, fill, vals) in enumerate(series):
        for g, value in enumerate(vals):
            if value is None:
                continue
            x = LEFT + group_w * g + group_w * 0.1 + bar_w * s
            y0, y1 = sorted((y_of(0.0), y_of(value)))
            body.append(
                f'<rect x="{x:.1f}" y="{y0:.1f}" width="{max(bar_w - 2, 1):.1f}" '
                f'height="{max(y1 - y0, 0.5):.1f}" '
                f'fill="{fill}" class="bar"><title>{_e(name)} {_e(groups[g])}: {_fmt(value)}</title></rect>'
            )
    return _frame(title, body, [(name, fill) for name, fill, _ in series], label="bar chart")


def percentile_chart(hist: dict[str, Any], versions: list[str]) -> Markup:
    present = [(i, v) for i, v in enumerate(hist["versions"]) if v]
    groups = list(present[0][1]["percentiles"])
    series = [(versions[i], colour(i), [v["percentiles"][g] for g in groups]) for i, v in present]
    units = hist.get("units") or ""
    return _bars(groups, series, units, f"Percentiles of {hist['metric']}")


def metric_chart(metric: dict[str, Any], versions: list[str]) -> Markup:
    """One metric's latest value per version, side by side."""
    series = [(versions[i], colour(i), [value]) for i, value in enumerate(metric["values"])]
    label = metric["name"] + (f" ({metric['units']})" if metric.get("units") else "")
    return _bars([label], series, metric.get("units") or "", f"{metric['name']} per version")


def _custom_metrics(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Metrics worth a side-by-side chart: those of other sources than the load generators."""
    return [
        m
        for m in report["metrics"]
        if not m["name"].split("/")[0].startswith(("http", "grpc"))
        and any(v is not None for v in m["values"])
    ]


def _template_text() -> str:
    return (
        importlib.resources.files("kubectl_iter8").joinpath("templates", "report.html.j2").read_text("utf-8")
    )


def render_html(report: dict[str, Any]) -> str:
    """The report document as one self-contained HTML page."""
    import jinja2

    # Autoescaped; optional fields of the document may be absent, so undefined names render empty.
    env = jinja2.Environment(autoescape=True, keep_trailing_newline=True)
    env.filters["num"] = _fmt
    versions = report["versions"]
    charts = []
    for hist in report.get("histograms") or []:
        if any(hist["versions"]):
            charts.append(
                {
                    "metric": hist["metric"],
                    "units": hist.get("units"),
                    "distribution": distribution_chart(hist, versions),
                    "percentiles": percentile_chart(hist, versions),
                    "rows": [
                        (versions[i], colour(i), v) for i, v in enumerate(hist["versions"]) if v is not None
                    ],
                }
            )
    custom = [(m, metric_chart(m, versions)) for m in _custom_metrics(report)]
    summary = report["summary"]
    slos_ok = report["slos"]["satisfied"]
    regression = (report.get("comparisons") or {}).get("noRegression")
    good = summary["status"] == "completed" and not summary["failure"] and slos_ok is not False
    good = good and regression is not False
    state = (
        "failed"
        if summary["failure"]
        else ("good" if good else ("running" if summary["status"] == "running" else "bad"))
    )
    return env.from_string(_template_text()).render(
        report=report,
        summary=summary,
        versions=versions,
        colours=[colour(i) for i in range(len(versions))],
        charts=charts,
        custom=custom,
        state=state,
        slos_ok=slos_ok,
        regression=regression,
    )
