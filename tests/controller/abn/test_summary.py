"""The read side's pure functions, against numbers worked out by hand."""

from __future__ import annotations

import json
import math
import sys

import pytest
from kubectl_iter8.controller.abn.store import Values
from kubectl_iter8.controller.abn.summary import (
    Stats,
    VersionSummary,
    dashboard,
    histogram,
    per_user,
    prometheus_lines,
    samples,
    summarize,
)

# revenue, version 1: alice bought 10 then 5, bob 3; carol and dave were assigned and bought nothing.
# version 0: erin bought 4; frank was assigned. Version 2 has assigned users and no value at all.
VALUES = Values(
    metrics={
        "revenue": {1: {"alice": [10.0, 5.0], "bob": [3.0]}, 0: {"erin": [4.0]}},
        "clicks": {1: {"carol": [1.0]}},
    },
    users={1: {"alice", "bob", "carol", "dave"}, 0: {"erin", "frank"}, 2: {"gina"}},
)


def test_stats():
    # mean 5; squared deviations 9 1 1 1 0 0 4 16 = 32; sample variance 32 / 7
    assert Stats.of([2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]) == Stats(
        8, 5.0, pytest.approx(math.sqrt(32 / 7)), 2.0, 9.0
    )
    assert Stats.of([3.5]) == Stats(1, 3.5, 0.0, 3.5, 3.5)
    with pytest.raises(ValueError, match="no values"):
        Stats.of([])


def test_per_user_sums_and_pads_with_zeros():
    assert per_user(VALUES, "revenue", 1) == [15.0, 3.0, 0.0, 0.0]  # alice 10 + 5, bob, carol, dave
    assert per_user(VALUES, "clicks", 1) == [1.0, 0.0, 0.0, 0.0]
    assert per_user(VALUES, "revenue", 0) == [4.0, 0.0]
    # A user who wrote without being recorded as assigned still counts, once.
    assert per_user(Values({"m": {0: {"x": [1.0, 1.0]}}}, {0: {"y"}}), "m", 0) == [2.0, 0.0]


def test_summarize():
    s = summarize(VALUES)
    assert list(s) == ["clicks", "revenue"]
    assert list(s["revenue"]) == [0, 1]  # versions sorted; version 2 has no revenue value: absent
    revenue = s["revenue"][1]
    # transactions 10 5 3: mean 6, squared deviations 16 1 9 = 26, variance 13
    assert revenue.transactions == Stats(3, 6.0, pytest.approx(math.sqrt(13)), 3.0, 10.0)
    # users 15 3 0 0: mean 4.5, squared deviations 110.25 2.25 20.25 20.25 = 153, variance 51
    assert revenue.users == Stats(4, 4.5, pytest.approx(math.sqrt(51)), 0.0, 15.0)
    # users 4 0: mean 2, variance 8
    assert s["revenue"][0] == VersionSummary(
        Stats(1, 4.0, 0.0, 4.0, 4.0), Stats(2, 2.0, pytest.approx(math.sqrt(8)), 0.0, 4.0)
    )
    assert s["clicks"][1].users == Stats(4, 0.25, pytest.approx(0.5), 0.0, 1.0)  # 1 0 0 0: variance 0.75/3
    assert summarize(Values()) == {}
    assert summarize(Values({"m": {0: {}}}, {0: {"u"}})) == {}


def test_histogram_buckets_and_labels():
    # 1 .. 11 in 10 buckets of width 1; a value on an inner edge goes up, the greatest into the last.
    rows = histogram({1: [3.5, 11.0], 0: [1.0, 2.0, 3.0]})
    labels = [f"{i}.0 - {i + 1}.0" for i in range(1, 11)]
    assert [r["Bucket"] for r in rows] == labels * 2
    assert [r["Version"] for r in rows] == ["0"] * 10 + ["1"] * 10
    counts = [r["Value"] for r in rows]
    assert counts[:10] == [1, 1, 1, 0, 0, 0, 0, 0, 0, 0]  # version 0: 1, 2, 3
    assert counts[10:] == [0, 0, 1, 0, 0, 0, 0, 0, 0, 1]  # version 1: 3.5, 11


def test_histogram_labels_are_floored_to_one_decimal():
    # -1.05 .. 0.95 in buckets of width 0.2: edges -1.05 -0.85 ... 0.75 0.95, floored (not rounded).
    rows = histogram({0: [-1.05, 0.95]})
    assert [r["Bucket"] for r in rows] == [
        "-1.1 - -0.9",
        "-0.9 - -0.7",
        "-0.7 - -0.5",
        "-0.5 - -0.3",
        "-0.3 - -0.1",
        "-0.1 - 0.1",
        "0.1 - 0.3",
        "0.3 - 0.5",
        "0.5 - 0.7",
        "0.7 - 0.9",
    ]
    assert [r["Value"] for r in rows] == [1, 0, 0, 0, 0, 0, 0, 0, 0, 1]


def test_histogram_of_equal_values_has_one_bucket():
    assert histogram({0: [2.0, 2.0], 3: [2.0]}) == [
        {"Version": "0", "Bucket": "2.0 - 2.0", "Value": 2},
        {"Version": "3", "Bucket": "2.0 - 2.0", "Value": 1},
    ]
    assert histogram({}) == []


def test_dashboard():
    d = dashboard(VALUES)
    assert list(d) == ["clicks", "revenue"]
    revenue = d["revenue"]
    assert revenue["SummaryOverTransactions"] == [
        {"Version": 0, "Count": 1, "Mean": 4.0, "StdDev": 0.0, "Min": 4.0, "Max": 4.0},
        {
            "Version": 1,
            "Count": 3,
            "Mean": 6.0,
            "StdDev": pytest.approx(math.sqrt(13)),
            "Min": 3.0,
            "Max": 10.0,
        },
    ]
    assert revenue["SummaryOverUsers"][1] == {
        "Version": 1,
        "Count": 4,
        "Mean": 4.5,
        "StdDev": pytest.approx(math.sqrt(51)),
        "Min": 0.0,
        "Max": 15.0,
    }
    # over transactions: 3 .. 10 (width 0.7); version 0's 4 is in bucket int(1 / 0.7) = 1
    tx = revenue["HistogramsOverTransactions"]
    assert len(tx) == 20
    assert tx[0] == {"Version": "0", "Bucket": "3.0 - 3.7", "Value": 0}
    assert tx[1] == {"Version": "0", "Bucket": "3.7 - 4.4", "Value": 1}
    assert tx[19] == {"Version": "1", "Bucket": "9.3 - 10.0", "Value": 1}
    assert [r["Value"] for r in tx[10:]] == [1, 0, 1, 0, 0, 0, 0, 0, 0, 1]  # 3, 5, 10
    # over users: 0 .. 15 (width 1.5); version 0: 4 and 0; version 1: 15 3 0 0
    users = revenue["HistogramsOverUsers"]
    assert users[0] == {"Version": "0", "Bucket": "0.0 - 1.5", "Value": 1}
    counts = [r["Value"] for r in users]
    assert counts[:10] == [1, 0, 1, 0, 0, 0, 0, 0, 0, 0]  # 0 and 4
    assert counts[10:] == [2, 0, 1, 0, 0, 0, 0, 0, 0, 1]  # 0, 0, 3 and 15
    json.dumps(d, allow_nan=False)


def test_dashboard_numbers_stay_finite():
    huge = Values({"m": {0: {"u": [1e308, 1e308], "v": [-1e308]}}})
    text = json.dumps(dashboard(huge), allow_nan=False)
    assert str(sys.float_info.max) in text  # u's sum saturates instead of overflowing
    assert "inf" not in text
    assert "nan" not in text


def test_samples():
    assert samples("default/app", VALUES) == {
        "application": "default/app",
        "metrics": {
            "clicks": {"1": {"transactions": [1.0], "users": [1.0, 0.0, 0.0, 0.0]}},
            "revenue": {
                "0": {"transactions": [4.0], "users": [4.0, 0.0]},
                "1": {"transactions": [10.0, 5.0, 3.0], "users": [15.0, 3.0, 0.0, 0.0]},
            },
        },
    }


def test_prometheus_lines():
    one = Values({"m": {1: {"alice": [1.0, 2.0]}}}, {1: {"alice", "bob"}})
    lines = prometheus_lines({"ns/app": summarize(one)})
    assert lines[:8] == [
        "# HELP iter8_abn_metric_count Number of values of an A/B/n metric (over transactions) or of users (over users).",
        "# TYPE iter8_abn_metric_count gauge",
        'iter8_abn_metric_count{namespace="ns",application="app",metric="m",version="1",over="transactions"} 2',
        'iter8_abn_metric_count{namespace="ns",application="app",metric="m",version="1",over="users"} 2',
        "# HELP iter8_abn_metric_mean Mean of an A/B/n metric.",
        "# TYPE iter8_abn_metric_mean gauge",
        'iter8_abn_metric_mean{namespace="ns",application="app",metric="m",version="1",over="transactions"} 1.5',
        'iter8_abn_metric_mean{namespace="ns",application="app",metric="m",version="1",over="users"} 1.5',
    ]
    # users 3 and 0: sample stddev sqrt(4.5)
    assert lines[11] == (
        'iter8_abn_metric_stddev{namespace="ns",application="app",metric="m",version="1",over="users"} '
        + repr(math.sqrt(4.5))
    )
    assert (
        lines[-1]
        == 'iter8_abn_metric_max{namespace="ns",application="app",metric="m",version="1",over="users"} 3.0'
    )
    assert len(lines) == 5 * (2 + 2)


def test_prometheus_families_once_and_labels_escaped():
    odd = Values({'a\\b"c\nd': {0: {"u": [1.0]}}})
    lines = prometheus_lines({"ns/one": summarize(odd), "two": summarize(odd), "ns/none": {}})
    assert sum(line.startswith("# TYPE") for line in lines) == 5
    assert sum(line.startswith("# HELP") for line in lines) == 5
    assert len(lines) == 5 * (2 + 2 * 2)
    assert 'metric="a\\\\b\\"c\\nd"' in lines[2]
    assert lines[2].startswith('iter8_abn_metric_count{namespace="ns",application="one",')
    assert lines[4].startswith('iter8_abn_metric_count{namespace="default",application="two",')
    assert all("\n" not in line for line in lines)
    assert prometheus_lines({}) == [line for line in lines if line.startswith("#")]
