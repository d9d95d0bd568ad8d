"""Iter8's own Go templates, unmodified (``iter8_templates/``, copied from Iter8 v0.15.0), through
``launch --local``: its custom-metrics provider templates must send the queries Iter8 sent (the
expected strings are those of Iter8's ``base/custom_metrics_test.go``) and record what the
provider answers; its notify payload templates must give the payloads Iter8 gave."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from iter8_release_chart import DEPLOYMENT_VERSIONS, MODEL_VERSIONS, render_chart
from kubectl_iter8.builtin_tasks.custom_metrics import spec as specs
from prom_fixtures import Reply, Request, Server

TEMPLATES = Path(__file__).parent / "iter8_templates"
LABELS = {
    "reporter": "destination",
    "destination_workload": "myApp",
    "destination_workload_namespace": "production",
}
SELECTOR = '  destination_workload="myApp",\n  destination_workload_namespace="production",\n  reporter="destination",\n'
# Iter8's expected queries for testdata/custommetrics/istio-prom.tpl, and the values its test served.
ISTIO_QUERIES = {
    "request-count": (
        "sum(last_over_time(istio_requests_total{\n" + SELECTOR + "}[0s])) or on() vector(0)",
        43,
    ),
    "error-count": (
        "sum(last_over_time(istio_requests_total{\n  response_code=~'5..',\n"
        + SELECTOR
        + "}[0s])) or on() vector(0)",
        6,
    ),
    "error-rate": (
        "(sum(last_over_time(istio_requests_total{\n  response_code=~'5..',\n"
        + SELECTOR
        + "}[0s])) or on() vector(0))/(sum(last_over_time(istio_requests_total{\n"
        + SELECTOR
        + "}[0s])) or on() vector(0))",
        0.13953488372093023,
    ),
    "latency-mean": (
        "(sum(last_over_time(istio_request_duration_milliseconds_sum{\n"
        + SELECTOR
        + "}[0s])) or on() vector(0))/(sum(last_over_time(istio_requests_total{\n"
        + SELECTOR
        + "}[0s])) or on() vector(0))",
        52,
    ),
    "latency-p90": (
        "histogram_quantile(0.90, sum(rate(istio_request_duration_milliseconds_bucket{\n"
        + SELECTOR
        + "}[0s])) by (le))",
        64,
    ),
}


@pytest.fixture(autouse=True)
def _test_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ITER8_PLUGINS", "iter8_test_plugin")


def prometheus_answer(values: dict[str, float]) -> Any:
    """A Prometheus query API that answers each known query (compared as Iter8's test did, trimmed)."""

    def answer(request: Request) -> Reply:
        query = request.query.get("query", [""])[0].strip()
        if query not in values:
            return Reply(400, {"status": "error", "error": "unexpected query"})
        vector = [{"metric": {}, "value": [1700000000, str(values[query])]}]
        return Reply(200, {"status": "success", "data": {"resultType": "vector", "result": vector}})

    return answer


@pytest.fixture
def prometheus() -> Iterator[Server]:
    with Server(prometheus_answer(dict(ISTIO_QUERIES.values()))) as server:
        yield server


def launch(cli, tmp_path: Path, spec: list[dict[str, Any]]):
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump({"metadata": {"name": "go"}, "spec": spec}))
    outcome = cli("launch", "--local", "-f", str(path), "--run-dir", str(tmp_path / "run"))
    stored = tmp_path / "run" / "experiment.yaml"
    doc = yaml.safe_load(stored.read_text()) if stored.exists() else {}
    return outcome, doc.get("result", {})


def test_iter8s_istio_prom_test_template_sends_iter8s_queries_and_records_the_answers(
    cli, tmp_path: Path, prometheus: Server
) -> None:
    spec = [
        {
            "task": "custommetrics",
            "with": {
                "templates": {"istio-prom": str(TEMPLATES / "testdata-istio-prom.tpl")},
                "values": {"latencyPercentiles": ["90"], "istioPromURL": f"{prometheus.url}/api/v1/query"},
                "versionValues": [{"labels": LABELS}],
            },
        }
    ]
    outcome, result = launch(cli, tmp_path, spec)
    assert outcome.code == 0, outcome.err
    sent = sorted(r.query["query"][0].strip() for r in prometheus.requests)
    assert sent == sorted(q for q, _ in ISTIO_QUERIES.values())
    recorded = {k: v[-1] for k, v in result["insights"]["nonHistMetricValues"][0].items()}
    assert recorded == {f"istio-prom/{name}": value for name, (_, value) in ISTIO_QUERIES.items()}
    assert result["insights"]["metricsInfo"]["istio-prom/request-count"]["type"] == "Counter"


def test_iter8s_published_istio_prom_template_per_version_with_elapsed_windows(cli, tmp_path: Path) -> None:
    queries: list[str] = []

    def answer(request: Request) -> Reply:
        queries.append(request.query["query"][0])
        return Reply(200, {"status": "success", "data": {"result": [{"value": [0, "1"]}]}})

    with Server(answer) as server:
        spec = [
            {
                "task": "custommetrics",
                "with": {
                    "templates": {"istio": str(TEMPLATES / "istio-prom.tpl")},
                    "values": {"latencyPercentiles": [50, 95], "istioPromURL": f"{server.url}/api/v1/query"},
                    "versionValues": [
                        {"labels": {"destination_workload": "app-v1"}},
                        {
                            "labels": {"destination_workload": "app-v2"},
                            "startingTime": "2020-02-01T09:44:40Z",
                        },
                    ],
                },
            }
        ]
        outcome, result = launch(cli, tmp_path, spec)
    assert outcome.code == 0, outcome.err
    assert len(queries) == 2 * 6
    first, second = queries[:6], queries[6:]
    assert all('destination_workload="app-v1",' in q for q in first)
    assert all('destination_workload="app-v2",' in q for q in second)
    # The window is the elapsed time: the experiment's seconds for v1, years since startingTime for v2.
    assert all(int(w) < 600 for q in first for w in re.findall(r"\[(\d+)s\]", q))
    assert all(int(w) > 10**8 for q in second for w in re.findall(r"\[(\d+)s\]", q))
    assert first[4].startswith("histogram_quantile(0.50, ")
    assert first[5].startswith("histogram_quantile(0.95, ")
    assert sorted(result["insights"]["nonHistMetricValues"][1]) == [
        "istio/error-count",
        "istio/error-rate",
        "istio/latency-mean",
        "istio/latency-p50",
        "istio/latency-p95",
        "istio/request-count",
    ]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (
            {},
            [
                "sum(last_over_time(ibm_codeengine_application_requests_total{\n}[0s])) or on() vector(0)\n",
                'sum(last_over_time(ibm_codeengine_application_requests_total{\n  ibm_codeengine_status!="200",\n'
                "}[0s])) or on() vector(0)\n",
            ],
        ),
        (
            {"ibm_codeengine_revision_name": "v1"},
            [
                "sum(last_over_time(ibm_codeengine_application_requests_total{\n"
                '  ibm_codeengine_revision_name="v1",\n}[0s])) or on() vector(0)\n',
                'sum(last_over_time(ibm_codeengine_application_requests_total{\n  ibm_codeengine_status!="200",\n'
                '  ibm_codeengine_revision_name="v1",\n}[0s])) or on() vector(0)\n',
            ],
        ),
    ],
)
def test_iter8s_code_engine_template_renders_iter8s_queries(
    values: dict[str, Any], expected: list[str]
) -> None:
    template = (TEMPLATES / "test-ce.tpl").read_text()
    rendered = specs.render_spec(template, "go", name="test-ce", values=values, own={}, version=0, elapsed=1)
    doc = yaml.safe_load(rendered)
    assert [m["params"][0]["value"] for m in doc["metrics"][:2]] == expected
    assert doc["headers"] == {"Authorization": "Bearer test-token", "IBMInstanceID": "test-guid"}


@pytest.mark.parametrize("name", ["nan.tpl", "test-request-body.tpl"])
def test_iter8s_templates_without_actions_render_as_they_are(name: str) -> None:
    template = (TEMPLATES / name).read_text()
    for engine in ("go", "jinja2"):
        rendered = specs.render_spec(template, engine, name=name, values={}, own={}, version=0, elapsed=1)
        assert yaml.safe_load(rendered) == yaml.safe_load(template)


def test_iter8s_label_checks_fail_the_task_with_gos_one_line_error(cli, tmp_path: Path) -> None:
    spec = [
        {
            "task": "custommetrics",
            "with": {
                "templates": {"istio": str(TEMPLATES / "istio-prom.tpl")},
                "values": {"labels": {"response_code": "200"}},
            },
        }
    ]
    outcome, result = launch(cli, tmp_path, spec)
    assert outcome.code != 0
    assert result["failure"] is True
    assert result["failureMessage"].endswith(
        'templates.istio (version 0): template: istio:39:4: executing "labels" at <fail "labels should ...>:'
        " error calling fail: labels should not contain 'response_code'"
    )
    assert "Traceback" not in outcome.err


def test_a_declared_engine_wins_over_detection(cli, tmp_path: Path, prometheus: Server) -> None:
    """``templateEngine: jinja2`` on a Go template reads it as Jinja2 (which fails on ``{{ .``);
    ``templateEngine: go`` on a template that has no Go-only syntax renders it with Go."""
    go_template = str(TEMPLATES / "testdata-istio-prom.tpl")
    spec = [{"task": "custommetrics", "with": {"templates": {"p": go_template}, "templateEngine": "jinja2"}}]
    outcome, result = launch(cli, tmp_path, spec)
    assert outcome.code != 0
    assert "templates.p (version 0): template line 37: expected token" in result["failureMessage"]

    ambiguous = tmp_path / "ambiguous.tpl"
    ambiguous.write_text(
        "url: {{ print .url }}\nmetrics:\n- name: requests\n  params: [{name: query, value: "
        + json.dumps(ISTIO_QUERIES["request-count"][0])
        + "}]\n  jqExpression: .data.result[0].value[1] | tonumber\n"
    )
    spec = [
        {
            "task": "custommetrics",
            "with": {
                "templates": {"p": str(ambiguous)},
                "values": {"url": f"{prometheus.url}/api/v1/query"},
                "templateEngine": "go",
            },
        }
    ]
    (tmp_path / "second").mkdir()
    outcome, result = launch(cli, tmp_path / "second", spec)
    assert outcome.code == 0, outcome.err
    assert result["insights"]["nonHistMetricValues"][0]["p/requests"] == [43.0]


def test_a_bad_template_engine_is_a_one_line_usage_error(cli, tmp_path: Path) -> None:
    spec = [{"task": "notify", "with": {"url": "http://127.0.0.1:9/", "templateEngine": "mustache"}}]
    outcome, _ = launch(cli, tmp_path, spec)
    assert outcome.code == 2
    assert "templateEngine" in outcome.err
    assert "Traceback" not in outcome.err


# --- notify payloads ---------------------------------------------------------------------------

RECORD = {"task": "record-metrics", "with": {"versions": 2, "values": {"app/latency": [20, 45]}}}
ITER8_REPORT_FIELDS = [
    "timeStamp",
    "completed",
    "noTaskFailures",
    "numTasks",
    "numCompletedTasks",
    "numLoops",
    "experiment",
]


@pytest.fixture
def receiver() -> Iterator[Server]:
    with Server(lambda request: Reply(200, {"ok": True})) as server:
        yield server


def test_iter8s_github_payload_template(cli, tmp_path: Path, receiver: Server) -> None:
    notify = {
        "task": "notify",
        "with": {
            "url": f"{receiver.url}/dispatches",
            "payloadTemplateFile": str(TEMPLATES / "payload-github.tpl"),
        },
    }
    outcome, _ = launch(cli, tmp_path, [RECORD, notify])
    assert outcome.code == 0, outcome.err
    [request] = receiver.requests
    body = json.loads(request.body)
    assert body["event_type"] == "iter8"
    report = body["client_payload"]
    assert list(report) == ITER8_REPORT_FIELDS
    assert report["noTaskFailures"] is True
    assert report["numTasks"] == 2
    assert report["numCompletedTasks"] == 1
    assert report["experiment"]["spec"] == [{"task": "record-metrics"}, {"task": "notify"}]
    assert report["experiment"]["result"]["insights"]["numVersions"] == 2
    # toPrettyJson indents as Go's json.MarshalIndent does.
    assert request.body.decode().startswith(
        '{\n  "event_type": "iter8",\n  "client_payload": {\n  "timeStamp": '
    )


def test_iter8s_slack_payload_template(cli, tmp_path: Path, receiver: Server) -> None:
    slack = {
        "task": "slack",
        "with": {"url": f"{receiver.url}/hook", "payloadTemplateFile": str(TEMPLATES / "payload-slack.tpl")},
    }
    outcome, _ = launch(cli, tmp_path, [RECORD, slack])
    assert outcome.code == 0, outcome.err
    [request] = receiver.requests
    # Iter8's template leaves the "text" string unclosed: the payload is Iter8's, byte for byte in
    # shape, so it is not JSON either; the report inside is escaped as Iter8 escaped it.
    body = request.body.decode()
    prefix = '{\n  "text": "Your Iter8 report is ready: '
    assert body.startswith(prefix)
    assert body.endswith("\n}")
    report = json.loads(json.loads('"' + body[len(prefix) : -2] + '"'))
    assert list(report) == ITER8_REPORT_FIELDS
    assert report["experiment"]["result"]["numCompletedTasks"] == 1


def test_a_declared_go_engine_leaves_the_presets_default_payload_alone(
    cli, tmp_path: Path, receiver: Server
) -> None:
    slack = {"task": "slack", "with": {"url": f"{receiver.url}/hook", "templateEngine": "go"}}
    outcome, _ = launch(cli, tmp_path, [RECORD, slack])
    assert outcome.code == 0, outcome.err
    assert json.loads(receiver.requests[0].body)["text"].startswith(
        "Iter8 experiment go: running; 1 tasks completed"
    )


def test_an_inline_go_payload_reads_the_report_by_go_field_names(
    cli, tmp_path: Path, receiver: Server
) -> None:
    payload = (
        '{"done": {{ .Report.NumCompletedTasks }}, "ok": {{ .Report.NoTaskFailures }},'
        ' "versions": {{ .Report.Experiment.Result.Insights.NumVersions }},'
        ' "tasks": {{ range $i, $t := .Report.Experiment.Spec }}{{ if $i }}+{{ end }}{{ $t.task | quote }}{{ end }}}'
    )
    notify = {"task": "notify", "with": {"url": f"{receiver.url}/hook", "payloadTemplate": payload}}
    outcome, _ = launch(cli, tmp_path, [RECORD, notify])
    assert outcome.code == 0, outcome.err
    assert receiver.requests[0].body.decode() == (
        '{"done": 1, "ok": true, "versions": 2, "tasks": "record-metrics"+"notify"}'
    )


def test_a_go_payload_error_fails_the_notification_with_one_line(
    cli, tmp_path: Path, receiver: Server
) -> None:
    notify = {
        "task": "notify",
        "with": {"url": f"{receiver.url}/hook", "payloadTemplate": "{{ .Report.Nope }}"},
    }
    outcome, result = launch(cli, tmp_path, [RECORD, notify])
    assert outcome.code != 0
    assert result["failureMessage"].endswith(
        'payload template: template: payload:1:3: executing "payload" at <.Report.Nope>:'
        " can't evaluate field Nope in type base.Report"
    )
    assert receiver.requests == []


# --- Iter8's charts, rendered by the same engine -------------------------------------------------

CHARTS = TEMPLATES / "charts"


def test_iter8s_experiment_chart_renders_the_experiment_iter8_launched() -> None:
    """charts/iter8 (v0.15.0) with a tutorial's values: http with warmup, assess, slack."""
    url = "http://httpbin.default/get"
    values = {
        "tasks": ["http", "assess", "slack"],
        "http": {"url": url, "warmupNumRequests": 10},
        "assess": {"SLOs": {"upper": {"http/latency-mean": 50, "http/error-count": 0}}},
        "slack": {"url": "https://hooks.slack.com/services/x"},
    }
    [experiment] = render_chart("iter8", '{{ include "experiment" . }}', values)
    assert experiment["spec"] == [
        {"task": "http", "with": {"numRequests": 10, "url": url, "warmup": True}},
        # Iter8's chart copies the values before it drops the warmup options: the main task keeps them.
        {"task": "http", "with": {"url": url, "warmupNumRequests": 10}},
        {
            "task": "assess",
            "with": {
                "SLOs": {
                    "upper": [
                        {"metric": "http/error-count", "limit": 0},
                        {"metric": "http/latency-mean", "limit": 50},
                    ]
                }
            },
        },
        {
            "task": "notify",
            "with": {
                "url": "https://hooks.slack.com/services/x",
                "method": "POST",
                "payloadTemplateURL": "https://raw.githubusercontent.com/iter8-tools/iter8/iter8-0.13.7/templates/notify/_payload-slack.tpl",
                "softFailure": True,
            },
        },
    ]
    result = experiment["result"]
    assert (result["numCompletedTasks"], result["failure"], result["iter8Version"]) == (0, False, "v0.14")
    assert "Your Iter8 report" not in str(experiment)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", result["startTime"])

    [job] = render_chart("iter8", '{{ include "k.job" . }}', {"runner": "job"})
    assert job["kind"] == "Job"
    assert job["metadata"]["name"] == "app-1-job"
    command = job["spec"]["template"]["spec"]["containers"][0]["command"][2]
    assert command.strip() == "iter8 k run --namespace default --group app -l info"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"tasks": []}, "error calling fail: .Values.tasks is empty"),
        ({"tasks": ["nope"]}, "error calling fail: task name must be one of assess, custommetrics"),
        ({"tasks": ["http"], "http": {}}, "error calling fail: http values object is nil"),
        (
            {"tasks": ["http"], "http": {"qps": 8}},
            "error calling fail: please set the url parameter or the endpoints",
        ),
    ],
)
def test_iter8s_experiment_chart_refuses_what_it_refused(values: dict[str, Any], message: str) -> None:
    from kubectl_iter8 import gotemplate

    with pytest.raises(gotemplate.TemplateExecError, match=message):
        render_chart("iter8", '{{ include "experiment" . }}', values)


@pytest.mark.parametrize(
    ("environment", "strategy", "gvr_short", "kind"),
    [
        ("deployment-istio", "blue-green", "vs", "VirtualService"),
        ("deployment-istio", "canary", "vs", "VirtualService"),
        ("deployment-istio", "mirror", "vs", "VirtualService"),
        ("deployment-gtw", "blue-green", "httproute", "HTTPRoute"),
        ("deployment-gtw", "canary", "httproute", "HTTPRoute"),
        ("kserve", "blue-green", "vs", "VirtualService"),
        ("kserve", "canary", "vs", "VirtualService"),
        ("kserve-modelmesh-istio", "blue-green", "vs", "VirtualService"),
        ("kserve-modelmesh-istio", "canary", "vs", "VirtualService"),
    ],
)
def test_iter8s_release_chart_routemaps_and_their_routing_templates(
    environment: str, strategy: str, gvr_short: str, kind: str
) -> None:
    """charts/release (v1.1.2) renders routemaps whose routing templates are Go templates over
    ``.Weights``; Iter8's controller rendered those with Go's builtins only and missingkey=zero."""
    from kubectl_iter8 import gotemplate

    versions = MODEL_VERSIONS if environment.startswith("kserve") else DEPLOYMENT_VERSIONS
    application = {
        "metadata": {"name": "app", "namespace": "default"},
        "strategy": strategy,
        "versions": versions,
    }
    main = (CHARTS / "release" / "templates" / "release.yaml").read_text()
    docs = render_chart("release", main, {"environment": environment, "application": application})
    [routemap] = [d for d in docs if d["metadata"].get("labels", {}).get("iter8.tools/kind") == "routemap"]
    assert routemap["metadata"]["name"] == "app-routemap"
    spec = yaml.safe_load(routemap["data"]["strSpec"])
    assert len(spec["versions"]) == 2
    [(name, routing)] = spec["routingTemplates"].items()
    assert (name, routing["gvrShort"]) == (strategy, gvr_short)
    template = gotemplate.parse(routing["template"], name=name, functions="builtin", missing_key="zero")
    split = template.execute({"Weights": [70, 30]})
    primary_only = template.execute({"Weights": [100, 0]})
    assert [d["kind"] for d in yaml.safe_load_all(split) if d] == [kind]
    assert [d["kind"] for d in yaml.safe_load_all(primary_only) if d] == [kind]
    # A template over the weights (blue-green, canary on Istio) changes with them; Iter8's Gateway
    # API canary routes by the candidate's matches alone.
    assert (split != primary_only) == ("Weights" in routing["template"])


def test_iter8s_istio_canary_sends_matching_requests_to_a_ready_candidate() -> None:
    from kubectl_iter8 import gotemplate

    application = {
        "metadata": {"name": "app", "namespace": "default"},
        "strategy": "canary",
        "versions": DEPLOYMENT_VERSIONS,
    }
    main = (CHARTS / "release" / "templates" / "release.yaml").read_text()
    docs = render_chart("release", main, {"environment": "deployment-istio", "application": application})
    [routemap] = [d for d in docs if d["metadata"]["name"] == "app-routemap"]
    template = yaml.safe_load(routemap["data"]["strSpec"])["routingTemplates"]["canary"]["template"]

    def routes(weights: list[int]) -> list[dict[str, Any]]:
        rendered = gotemplate.render(template, {"Weights": weights}, functions="builtin", missing_key="zero")
        return [
            {"name": r["name"], "match": r.get("match"), "host": r["route"][0]["destination"]["host"]}
            for r in yaml.safe_load(rendered)["spec"]["http"]
        ]

    # The default canary match (Iter8's chart: header traffic=test) goes to the candidate.
    assert routes([70, 30]) == [
        {
            "name": "app-1",
            "match": [{"headers": {"traffic": {"exact": "test"}}}],
            "host": "app-1.default.svc.cluster.local",
        },
        {"name": "app-0", "match": None, "host": "app-0.default.svc.cluster.local"},
    ]
    assert routes([100, 0]) == [{"name": "app-0", "match": None, "host": "app-0.default.svc.cluster.local"}]
