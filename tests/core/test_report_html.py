"""``report -o html``: one self-contained page, opened in headless Chromium.

The browser test loads the page with every network name unresolvable and checks, from inside the
page, that the status banner, the SLO table, the comparison table, the metrics table and every chart
are laid out visible with a non-zero size, that each chart has drawn marks (bars or distribution
lines), that the page fetched no resource at all, and that no script error or console error was
logged; a screenshot is then decoded and must show the banner's colour across the top and the
versions' chart colours.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from tiers import skip_tier


@pytest.fixture(autouse=True)
def _test_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ITER8_PLUGINS", "iter8_test_plugin,iter8_samples_plugin")
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parent.parent))  # for kubectl's subprocess


def latency(median: float, n: int, seed: int) -> dict[str, Any]:
    return {"median": median, "sigma": 0.3, "n": n, "seed": seed}


SPEC = [
    {
        "task": "record-samples",
        "with": {
            "versions": 2,
            "histograms": {
                "http/latency": [latency(20, 600, 1), latency(28, 600, 2)],
                "http-cart/latency": [latency(5, 300, 3), latency(5, 300, 4)],
            },
            "counts": {"http": [{"requests": 600, "errors": 1}, {"requests": 600, "errors": 2}]},
        },
    },
    {
        "task": "record-metrics",
        "with": {
            "versions": 2,
            "values": {"shop/conversion-rate": [0.031, 0.035], "shop/revenue": [1200, 1350]},
        },
    },
    {
        "task": "assess",
        "with": {
            "judgeOn": "bound",
            "SLOs": {
                "upper": [
                    {"metric": "http/latency-p95", "limit": 40},
                    {"metric": "http/error-rate", "limit": 0.02},
                ],
                "lower": [{"metric": "shop/revenue", "limit": 1000}],
            },
            "rewards": {"max": ["shop/revenue"]},
            "compare": ["http/latency", "http/error-rate", "http-cart/latency-p90"],
        },
    },
]


def run_experiment(cli, tmp_path: Path, spec: list[dict[str, Any]], name: str) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump({"metadata": {"name": name}, "spec": spec}))
    run = tmp_path / "run"
    outcome = cli("launch", "--local", "-f", str(path), "--run-dir", str(run))
    assert outcome.code == 0, outcome.err
    return run


def test_html_report_is_self_contained_escaped_and_matches_stdout(cli, kubectl, tmp_path: Path) -> None:
    run = run_experiment(cli, tmp_path, SPEC, "<b>shop</b>")
    target = tmp_path / "out" / "report.html"
    target.parent.mkdir()
    written = kubectl("report", "--local", "--run-dir", str(run), "-o", "html", "-O", str(target))
    assert written.code == 0, written.err
    assert written.out == ""
    assert f"report written to {target}" in written.err
    page = target.read_text()
    assert page == cli("report", "--local", "--run-dir", str(run), "-o", "html").out
    assert page.startswith("<!DOCTYPE html>")
    assert "&lt;b&gt;shop&lt;/b&gt;" in page
    assert "<b>shop</b>" not in page
    # Nothing to fetch: no scripts, stylesheets, images, fonts or frames from anywhere.
    assert not re.search(r"<(script|link|img|iframe|object|embed)\b", page)
    assert not re.search(r"(src|href)\s*=", page)
    assert set(re.findall(r"https?://[^\s\"'<>)]+", page)) == {"http://www.w3.org/2000/svg"}
    assert page.count("<svg") == 6  # distribution + percentiles for two endpoints, two custom metrics
    assert target.stat().st_mode & 0o044 == 0o044  # readable like any other file


def test_output_file_errors_are_one_line(cli, tmp_path: Path) -> None:
    run = run_experiment(cli, tmp_path, SPEC[1:2], "x")
    outcome = cli(
        "report", "--local", "--run-dir", str(run), "-o", "html", "-O", str(tmp_path / "nope" / "r.html")
    )
    assert outcome.code == 2
    assert outcome.err == f"error: -O/--output-file: {tmp_path / 'nope'}: no such folder\n"
    json_file = tmp_path / "r.json"
    assert cli("report", "--local", "--run-dir", str(run), "-o", "json", "-O", str(json_file)).code == 0
    assert json.loads(json_file.read_text())["kind"] == "ExperimentReport"
    # A target that cannot be replaced (a folder) fails in one line and leaves no temporary file.
    folder = tmp_path / "taken"
    folder.mkdir()
    outcome = cli("report", "--local", "--run-dir", str(run), "-o", "json", "-O", str(folder))
    assert outcome.code == 2
    assert outcome.err.startswith(f"error: -O/--output-file: cannot write {folder}: ")
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_banner_states(cli, tmp_path: Path) -> None:
    good = [
        {"task": "record-metrics", "with": {"versions": 2, "values": {"app/x": [1, 2]}}},
        {"task": "assess", "with": {"SLOs": {"upper": {"app/x": 5}}}},
    ]
    run = run_experiment(cli, tmp_path, good, "good")
    page = cli("report", "--local", "--run-dir", str(run), "-o", "html").out
    assert 'class="banner good"' in page
    assert "Experiment completed; every SLO is satisfied" in page
    (tmp_path / "none").mkdir()
    empty = cli("report", "--local", "--run-dir", str(tmp_path / "none"), "-o", "html")
    assert empty.code != 0  # no experiment there: the usual one-line error, no page
    assert empty.out == ""
    assert len(empty.err.splitlines()) == 1
    assert empty.err.startswith("error: ")


CHECKER = """
<script>
window.__errors = [];
window.addEventListener('error', e => window.__errors.push(String(e.message || e.type)), true);
window.addEventListener('unhandledrejection', e => window.__errors.push(String(e.reason)));
for (const level of ['error', 'warn']) {
  const original = console[level];
  console[level] = (...args) => { window.__errors.push(level + ': ' + args.join(' ')); original(...args); };
}
window.addEventListener('load', () => {
  const visible = el => {
    if (!el) return false;
    const r = el.getBoundingClientRect(), s = getComputedStyle(el);
    return r.width > 0 && r.height > 0 && s.visibility === 'visible' && s.display !== 'none' && s.opacity !== '0';
  };
  const out = {
    banner: visible(document.querySelector('#banner')),
    bannerTop: document.querySelector('#banner').getBoundingClientRect().top,
    bannerText: document.querySelector('#banner').innerText,
    sloTable: visible(document.querySelector('#slo-table')),
    sloRows: document.querySelectorAll('#slo-table tbody tr').length,
    comparisonTable: visible(document.querySelector('#comparison-table')),
    metricsTable: visible(document.querySelector('#metrics-table')),
    charts: [...document.querySelectorAll('svg.chart')].map(svg => ({
      visible: visible(svg),
      marks: [...svg.querySelectorAll('rect.bar, polyline.series')].filter(m => {
        const b = m.getBBox(); return b.width > 0 && b.height > 0; }).length,
    })),
    resources: performance.getEntriesByType('resource').map(r => r.name),
    errors: window.__errors,
  };
  const pre = document.createElement('pre');
  pre.id = 'iter8-check';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>
"""


def chromium(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        skip_tier(
            "chromium",
            "chromium is not installed (Debian package 'chromium'; scripts/test installs it as root)",
        )
    return subprocess.run(
        [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            "--disable-extensions",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1400,2000",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def read_png(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.int32)


def share_of(image: np.ndarray, hex_colour: str, tolerance: int = 12) -> float:
    target = np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)])
    close = np.all(np.abs(image - target) <= tolerance, axis=2)
    return float(close.mean())


def test_html_report_in_headless_chromium(cli, tmp_path: Path) -> None:
    run = run_experiment(cli, tmp_path, SPEC, "checkout")
    report = tmp_path / "report.html"
    assert cli("report", "--local", "--run-dir", str(run), "-o", "html", "-O", str(report)).code == 0
    page = report.read_text()

    # 1. Inside the page: what is laid out, what was fetched, what was logged.
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("<head>", "<head>" + CHECKER, 1))
    dom = chromium("--virtual-time-budget=5000", "--dump-dom", probe.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    found = re.search(r'<pre id="iter8-check">(.*?)</pre>', dom.stdout, re.S)
    assert found, dom.stdout[-2000:]
    check = json.loads(
        found.group(1).replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    )
    assert check["banner"]
    assert check["bannerTop"] < 120
    assert "SLOs are not satisfied" not in check["bannerText"] or "version" in check["bannerText"]
    assert check["sloTable"]
    assert check["sloRows"] == 3
    assert check["comparisonTable"]
    assert check["metricsTable"]
    assert len(check["charts"]) == 6
    assert all(c["visible"] and c["marks"] >= 2 for c in check["charts"]), check["charts"]
    assert check["resources"] == []
    assert check["errors"] == []

    # The probe is not blind: the same page with a failing script and a remote image is caught.
    broken = probe.read_text().replace(
        "</main>",
        '<script>console.error("boom"); nope();</script><img src="http://example.com/x.png"></main>',
    )
    probe.write_text(broken)
    dom = chromium("--virtual-time-budget=5000", "--dump-dom", probe.as_uri())
    found = re.search(r'<pre id="iter8-check">(.*?)</pre>', dom.stdout, re.S)
    assert found, dom.stdout[-2000:]
    caught = json.loads(
        found.group(1).replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    )
    assert caught["resources"] == ["http://example.com/x.png"]
    assert "error: boom" in caught["errors"]
    assert any("nope is not defined" in e for e in caught["errors"])

    # 2. The page as it is: no console or script errors, and a screenshot that shows it.
    shot = tmp_path / "report.png"
    taken = chromium(f"--screenshot={shot}", report.as_uri())
    assert taken.returncode == 0, taken.stderr[-2000:]
    logged = [line for line in taken.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert logged == []
    image = read_png(shot)
    assert image.shape[:2] == (2000, 1400)
    banner_colour = "#1a7f37" if 'class="banner good"' in page else "#cf222e"
    assert share_of(image[:130], banner_colour) > 0.15  # the banner spans the top of the page
    assert share_of(image, "#0072B2") > 0.002
    assert share_of(image, "#E69F00") > 0.002
    assert share_of(image, "#f6f8fa", 2) < 0.9  # not a blank page


def test_latency_charts_per_endpoint_from_a_real_http_run(cli, tmp_path: Path) -> None:
    from kubectl_iter8.sample_app import running

    with running() as app:
        endpoints = {
            "get": {"url": f"{app.url}/get"},
            "any": {"url": f"{app.url}/anything", "method": "POST"},
        }
        spec = [
            {"task": "http", "with": {"numRequests": 200, "qps": 0, "endpoints": endpoints}},
            {
                "task": "assess",
                "with": {
                    "judgeOn": "bound",
                    "SLOs": {"upper": [{"metric": "http-get/latency-p95", "limit": 1000}]},
                },
            },
        ]
        run = run_experiment(cli, tmp_path, spec, "http")
    report = json.loads(cli("report", "--local", "--run-dir", str(run), "-o", "json").out)
    histograms = {h["metric"]: h for h in report["histograms"]}
    assert set(histograms) == {"http-get/latency", "http-any/latency"}
    get = histograms["http-get/latency"]
    assert get["units"] == "msec"
    assert get["versions"][0]["count"] == 200
    assert sum(b["count"] for b in get["versions"][0]["buckets"]) == 200
    # The histogram's p95 is the http task's own http-get/latency-p95.
    point = next(m for m in report["metrics"] if m["name"] == "http-get/latency-p95")["values"][0]
    assert get["versions"][0]["percentiles"]["p95"] == pytest.approx(point, rel=1e-3)
    [cell] = report["slos"]["items"][0]["verdicts"]
    assert cell["basis"] == "bound"
    assert cell["n"] == 200
    assert cell["bound"] >= cell["estimate"]
    page = cli("report", "--local", "--run-dir", str(run), "-o", "html").out
    assert 'data-metric="http-get/latency"' in page
    assert 'data-metric="http-any/latency"' in page
    assert page.count("<svg") == 4
