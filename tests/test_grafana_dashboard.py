"""``grafana/abn.json``, ``http.json`` and ``grpc.json``: dashboards Grafana can import, whose queries
read what the controller's ``/abnDashboard``, ``/httpDashboard`` and ``/grpcDashboard`` serve.

The JSON API datasource evaluates each field's JSONPath (jsonpath-plus) after Grafana substitutes the
template variables; here the subset of JSONPath the dashboard uses is evaluated by a small evaluator
(and cross-checked with jq) against a sample document in the controller's shape (for http and grpc,
built by the controller's own code from a result), so a renamed key on either side fails this test
rather than leaving an empty panel.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jq
import pytest
from hdrh.histogram import HdrHistogram
from kubectl_iter8.controller.testresults import dashboards

DASHBOARD = Path(__file__).parents[1] / "grafana" / "abn.json"
PLUGIN = "marcusolsson-json-datasource"
SUMMARY_FIELDS = ["Version", "Count", "Mean", "StdDev", "Min", "Max"]


def summary(version: int, count: int, mean: float) -> dict[str, Any]:
    return {"Version": version, "Count": count, "Mean": mean, "StdDev": 1.5, "Min": 0.0, "Max": 9.0}


def histogram(version: str, counts: list[int]) -> list[dict[str, Any]]:
    buckets = ["0.0 - 4.5", "4.5 - 9.0"]
    return [{"Version": version, "Bucket": b, "Value": c} for b, c in zip(buckets, counts, strict=True)]


# /abnDashboard for an application with two versions and two metrics (one with '.' and '-' in its
# name, which dotted JSONPath would split).
SAMPLE = {
    metric: {
        "SummaryOverTransactions": [summary(0, 12, 4.0), summary(1, 15, 5.5)],
        "SummaryOverUsers": [summary(0, 5, 9.6), summary(1, 6, 13.75)],
        "HistogramsOverTransactions": histogram("0", [7, 5]) + histogram("1", [6, 9]),
        "HistogramsOverUsers": histogram("0", [2, 3]) + histogram("1", [1, 5]),
    }
    for metric in ("sales", "add-to-cart.clicks")
}

_STEP = re.compile(
    r"\['(?P<quoted>[^']*)'\]|\.(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<all>\[\*\]|\.\*)(?P<keys>~)?"
)


def jsonpath(path: str, document: Any) -> list[Any]:
    """The values ``path`` selects: ``$`` followed by ``['name']``, ``.name``, ``[*]``/``.*`` and a
    final ``~`` (property names), the subset the dashboard uses; anything else is an error."""
    assert path.startswith("$"), path
    nodes: list[Any] = [document]
    position = 1
    while position < len(path):
        step = _STEP.match(path, position)
        assert step is not None, f"unsupported JSONPath at {path[position:]!r} in {path!r}"
        position = step.end()
        if step["keys"]:
            assert position == len(path), f"'~' must end the path: {path!r}"
            return [key for node in nodes if isinstance(node, dict) for key in node]
        if step["all"]:
            nodes = [v for node in nodes for v in (node.values() if isinstance(node, dict) else node)]
        else:
            key = step["quoted"] if step["quoted"] is not None else step["name"]
            nodes = [node[key] for node in nodes if isinstance(node, dict) and key in node]
    return nodes


def as_jq(path: str) -> str:
    """The same selection in jq, to check the evaluator (not for ``~``)."""
    out = ""
    for step in _STEP.finditer(path):
        if step["all"]:
            out += "[]"
        else:
            out += f"[{json.dumps(step['quoted'] if step['quoted'] is not None else step['name'])}]"
    return "." + out


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, rows' collapsed children included."""
    found = []
    for panel in dashboard["panels"]:
        found.append(panel)
        found += panel.get("panels", [])
    return found


def variables(dashboard: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in dashboard["templating"]["list"]}


def substitute(text: str, metric: str) -> str:
    return text.replace("${metric}", metric).replace("$metric", metric)


def test_the_dashboard_has_grafanas_shape(dashboard: dict[str, Any]) -> None:
    assert dashboard["title"] == "Iter8 A/B/n Test"
    check_grafana_shape(dashboard)


def check_grafana_shape(dashboard: dict[str, Any]) -> None:
    """What Grafana needs to import the dashboard: ids, a uid, the plugin, panels that fit and do not overlap."""
    assert isinstance(dashboard["schemaVersion"], int)
    assert dashboard["schemaVersion"] >= 36
    assert dashboard.get("id") is None  # set by Grafana on import
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,40}", dashboard["uid"])
    assert {"type": "datasource", "id": PLUGIN, "name": "JSON API", "version": "1.3.6"} in dashboard[
        "__requires"
    ]
    all_panels = panels(dashboard)
    ids = [p["id"] for p in all_panels]
    assert all(isinstance(i, int) for i in ids)
    assert len(ids) == len(set(ids))
    boxes = []
    for panel in all_panels:
        grid = panel["gridPos"]
        assert {k: type(grid[k]) for k in "hwxy"} == dict.fromkeys("hwxy", int), panel["title"]
        assert min(grid["h"], grid["w"]) > 0, panel["title"]
        assert min(grid["x"], grid["y"]) >= 0, panel["title"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        boxes.append((grid["x"], grid["y"], grid["x"] + grid["w"], grid["y"] + grid["h"], panel["title"]))
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            overlap = a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
            assert not overlap, f"{a[4]!r} overlaps {b[4]!r}"


def test_one_repeated_row_per_metric_with_the_four_panels(dashboard: dict[str, Any]) -> None:
    [row, *rest] = dashboard["panels"]
    assert row["type"] == "row"
    assert row["repeat"] == "metric"
    assert "$metric" in row["title"] or "${metric}" in row["title"]
    assert {(p["type"], p["title"]) for p in rest} == {
        ("table", "Summary over transactions"),
        ("table", "Summary over users"),
        ("barchart", "Data over transactions"),
        ("barchart", "Data over users"),
    }
    assert all(p["gridPos"]["y"] > row["gridPos"]["y"] for p in rest)  # below the row, so repeated with it
    metric = variables(dashboard)["metric"]
    assert metric["type"] == "query"
    assert metric["multi"] is True
    assert metric["includeAll"] is True


def test_the_datasource_is_a_template_variable(dashboard: dict[str, Any]) -> None:
    variable = variables(dashboard)["datasource"]
    assert (variable["type"], variable["query"]) == ("datasource", PLUGIN)
    expected = {"type": PLUGIN, "uid": "${datasource}"}
    users = [p for p in panels(dashboard) if p["type"] != "row"]
    users += [{"title": "$metric variable", **variables(dashboard)["metric"]}]
    for user in users:
        assert user["datasource"] == expected, user["title"]
        for target in user.get("targets", []):
            assert target["datasource"] == expected, user["title"]


def test_the_metric_variable_lists_the_metrics(dashboard: dict[str, Any]) -> None:
    [field] = variables(dashboard)["metric"]["query"]["fields"]
    assert jsonpath(field["jsonPath"], SAMPLE) == list(SAMPLE)


@pytest.mark.parametrize("metric", list(SAMPLE))
def test_every_field_reads_keys_of_the_controllers_document(dashboard: dict[str, Any], metric: str) -> None:
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            lengths = set()
            for field in target["fields"]:
                path = substitute(field["jsonPath"], metric)
                values = jsonpath(path, SAMPLE)
                assert values, f"{panel['title']}: {field['jsonPath']} selects nothing"
                assert values == list(jq.compile(as_jq(path)).input_value(SAMPLE).all()), path
                # The field's name is the key the path ends with, as the plugin would name it.
                assert path.endswith(f".{field['name']}"), path
                lengths.add(len(values))
            assert len(lengths) == 1, f"{panel['title']}: the plugin needs fields of equal length"


def test_tables_show_the_summary_columns(dashboard: dict[str, Any]) -> None:
    tables = {p["title"]: p for p in panels(dashboard) if p["type"] == "table"}
    sections = {
        "Summary over transactions": "SummaryOverTransactions",
        "Summary over users": "SummaryOverUsers",
    }
    for title, section in sections.items():
        [target] = tables[title]["targets"]
        assert [f["name"] for f in target["fields"]] == SUMMARY_FIELDS
        assert all(f"'].{section}[*]." in f["jsonPath"] for f in target["fields"])


def test_bar_charts_put_buckets_on_x_and_one_series_per_version(dashboard: dict[str, Any]) -> None:
    charts = {p["title"]: p for p in panels(dashboard) if p["type"] == "barchart"}
    sections = {
        "Data over transactions": "HistogramsOverTransactions",
        "Data over users": "HistogramsOverUsers",
    }
    for title, section in sections.items():
        chart = charts[title]
        [target] = chart["targets"]
        names = {f["name"] for f in target["fields"]}
        assert names == {"Version", "Bucket", "Value"}
        assert all(f"'].{section}[*]." in f["jsonPath"] for f in target["fields"])
        [matrix, organize] = chart["transformations"]
        assert matrix["id"] == "groupingToMatrix"
        options = matrix["options"]
        assert (options["columnField"], options["rowField"], options["valueField"]) == (
            "Version",
            "Bucket",
            "Value",
        )
        # groupingToMatrix names its first column "<row>\<column>"; renamed so that xField finds it.
        assert organize["id"] == "organize"
        assert organize["options"]["renameByName"] == {"Bucket\\Version": "Bucket"}
        assert chart["options"]["xField"] == "Bucket"


# --- grafana/http.json and grafana/grpc.json ----------------------------------------------------------


def encoded(values_us: list[int]) -> str:
    histogram = HdrHistogram(1, 3_600_000_000, 3)
    for value in values_us:
        histogram.record_value(value)
    text: str = histogram.encode().decode()
    return text


def load_record(task: str, prefix: str, key: str, statuses: dict[str, int]) -> dict[str, Any]:
    requests = sum(statuses.values())
    latencies = encoded([900 + 37 * i for i in range(requests)])
    data = {key: f"{task}-target", "latencyHistogram": latencies, "requests": requests, "errors": 1,
            "statusCodes": statuses, "errorReasons": {"connect timeout": 1}}  # fmt: skip
    if key == "url":
        data["url"] = "http://app.team.svc.cluster.local:8080/get?x=1"
    return {"task": task, "status": "completed", "details": {"endpoints": {prefix: data}}}


# A result with an http task of one URL and one of a named endpoint, and a grpc task, as the tasks
# record them; the controller's own code makes the two dashboards of it.
RESULT = {
    "startTime": "2024-05-01T12:00:00Z",
    "numCompletedTasks": 3,
    "failure": False,
    "iter8Version": "v1.0.0",
    "insights": {"numVersions": 1},
    "tasks": [
        load_record("http", "http", "url", {"200": 30, "503": 2}),
        load_record("http", "http-login.v2", "url", {"200": 12}),
        load_record("grpc", "grpc", "call", {"OK": 20, "UNAVAILABLE": 1}),
    ],
}
HTTP_SAMPLE, GRPC_SAMPLE = dashboards(RESULT, "team", "perf")
SAMPLES = {"http": HTTP_SAMPLE, "grpc": GRPC_SAMPLE}
TITLES = {"http": "Iter8 HTTP Performance Test", "grpc": "Iter8 gRPC Performance Test"}


@pytest.fixture(scope="module", params=["http", "grpc"])
def load_dashboard(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    kind: str = request.param
    return kind, json.loads((DASHBOARD.parent / f"{kind}.json").read_text())


def test_the_samples_have_every_endpoint() -> None:
    assert set(HTTP_SAMPLE["Endpoints"]) == {"http://app.team.svc.cluster.local:8080/get?x=1", "login.v2"}
    assert set(GRPC_SAMPLE["Endpoints"]) == {"grpc-target"}


def test_the_load_dashboards_have_grafanas_shape(load_dashboard: tuple[str, dict[str, Any]]) -> None:
    kind, board = load_dashboard
    assert board["title"] == TITLES[kind]
    check_grafana_shape(board)
    assert board["uid"] == f"iter8-{kind}"
    assert {"type": "panel", "id": "piechart", "name": "Pie chart", "version": ""} in board["__requires"]


def test_one_repeated_row_per_endpoint_below_the_experiment(
    load_dashboard: tuple[str, dict[str, Any]],
) -> None:
    kind, board = load_dashboard
    header = [p for p in board["panels"] if p["gridPos"]["y"] == 0]
    assert [p["title"] for p in header] == ["Experiment status", "Completed tasks", "Experiment metadata"]
    [row] = [p for p in board["panels"] if p["type"] == "row"]
    assert row["repeat"] == "endpoint"
    assert "$endpoint" in row["title"]
    below = [p for p in board["panels"] if p["gridPos"]["y"] > row["gridPos"]["y"]]
    codes = "Return codes" if kind == "http" else "Status code distribution"
    expected = {("piechart", codes), ("stat", "Statistics"), ("barchart", "Durations")}
    if kind == "http":
        expected.add(("stat", "Error statistics"))
    assert {(p["type"], p["title"]) for p in below} == expected
    endpoint = variables(board)["endpoint"]
    assert (endpoint["type"], endpoint["multi"], endpoint["includeAll"]) == ("query", True, True)
    [field] = endpoint["query"]["fields"]
    assert jsonpath(field["jsonPath"], SAMPLES[kind]) == list(SAMPLES[kind]["Endpoints"])


def test_the_load_dashboards_datasource_is_a_template_variable(
    load_dashboard: tuple[str, dict[str, Any]],
) -> None:
    kind, board = load_dashboard
    variable = variables(board)["datasource"]
    assert (variable["type"], variable["query"]) == ("datasource", PLUGIN)
    assert f"/{kind}Dashboard" in variable["description"]
    expected = {"type": PLUGIN, "uid": "${datasource}"}
    for user in [p for p in panels(board) if p["type"] != "row"] + [variables(board)["endpoint"]]:
        assert user["datasource"] == expected, user.get("title", user["name"])
        for target in user.get("targets", []):
            assert target["datasource"] == expected


def test_every_load_field_reads_keys_of_the_controllers_document(
    load_dashboard: tuple[str, dict[str, Any]],
) -> None:
    kind, board = load_dashboard
    sample = SAMPLES[kind]
    for endpoint in sample["Endpoints"]:
        for panel in panels(board):
            for target in panel.get("targets", []):
                lengths = set()
                for field in target["fields"]:
                    path = field["jsonPath"].replace("${endpoint}", endpoint)
                    values = jsonpath(path, sample)
                    assert values, f"{panel['title']}: {field['jsonPath']} selects nothing for {endpoint!r}"
                    assert values == list(jq.compile(as_jq(path)).input_value(sample).all()), path
                    assert path.endswith((f".{field['name']}", f"['{field['name']}']")), path
                    lengths.add(len(values))
                assert len(lengths) == 1, f"{panel['title']}: the plugin needs fields of equal length"


def test_the_load_panels_show_the_controllers_numbers(load_dashboard: tuple[str, dict[str, Any]]) -> None:
    kind, board = load_dashboard
    sample = SAMPLES[kind]
    by_title = {p["title"]: p for p in panels(board)}
    endpoint = next(iter(sample["Endpoints"]))

    def read(title: str) -> dict[str, list[Any]]:
        [target] = by_title[title]["targets"]
        return {
            f["name"]: jsonpath(f["jsonPath"].replace("${endpoint}", endpoint), sample)
            for f in target["fields"]
        }

    durations = read("Durations")
    assert sum(durations["Value"]) == sample["Endpoints"][endpoint]["Statistics"]["Count"]
    assert by_title["Durations"]["options"]["xField"] == "Bucket"
    if kind == "http":
        assert read("Return codes") == {"Return codes": [{"200": 30, "503": 2, "-1": 1}]}
        assert read("Statistics")["Count"] == [32]
        assert read("Error statistics") == {"Count": [1]}
    else:
        assert read("Status code distribution") == {"Status codes": [{"OK": 20, "Unavailable": 1}]}
        assert read("Statistics") == {"Count": [21], "ErrorCount": [1.0]}
    status = by_title["Experiment status"]
    [mapping] = status["fieldConfig"]["defaults"]["mappings"]
    assert mapping["options"]["false"]["text"] == "Succeeded"
    assert read("Experiment status") == {"Failure": [False]}
    assert read("Completed tasks") == {"Completed tasks": [3]}
    assert read("Experiment metadata") == {
        "Name": ["perf"],
        "Namespace": ["team"],
        "Start time": ["01 May 24 12:00 UTC"],
        "Iter8 version": ["v1.0.0"],
    }
