"""Iter8's chart-values shorthand: Helm's ``--set`` family parsed as Helm's strvals parser does,
merging, and the spec it builds.

The table cases are Helm's own (``pkg/strvals/parser_test.go``: TestParseSet, TestParseInto,
TestParseIntoString, TestParseJSON, TestParseSetNestedLevels, TestSetIndex), ported as data.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fuzzing import FUZZ, bounded
from hypothesis import given
from hypothesis import strategies as st

from kubectl_iter8.errors import InvalidExperimentError, UsageError
from kubectl_iter8.host import Iter8Hooks
from kubectl_iter8.values import (
    MAX_INDEX,
    MAX_NESTED_NAMES,
    MAX_VALUE_BYTES,
    ValueFlags,
    deep_merge,
    experiment_from_values,
    merged_document,
    parse_into,
    typed_value,
)


def apply(*sets: str, flag: str = "--set", into: dict[str, Any] | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {} if into is None else into
    for expression in sets:
        parse_into(expression, doc, flag=flag)
    return doc


# --- Helm's TestParseSet ---------------------------------------------------------------------

HELM_PARSE_SET = [
    ("name1=null,f=false,t=true", {"name1": None, "f": False, "t": True}),
    ("name1=value1", {"name1": "value1"}),
    ("name1=value1,name2=value2", {"name1": "value1", "name2": "value2"}),
    ("name1=value1,name2=value2,", {"name1": "value1", "name2": "value2"}),
    ("name1=,name2=value2", {"name1": "", "name2": "value2"}),
    ("leading_zeros=00009", {"leading_zeros": "00009"}),
    ("zero_int=0", {"zero_int": 0}),
    ("long_int=1234567890", {"long_int": 1234567890}),
    ("boolean=true", {"boolean": True}),
    ("is_null=null", {"is_null": None}),
    ("name1=one\\,two,name2=three\\,four", {"name1": "one,two", "name2": "three,four"}),
    ("name1=one\\=two,name2=three\\=four", {"name1": "one=two", "name2": "three=four"}),
    ("name1=one two three,name2=three two one", {"name1": "one two three", "name2": "three two one"}),
    ("outer.inner=value", {"outer": {"inner": "value"}}),
    ("outer.middle.inner=value", {"outer": {"middle": {"inner": "value"}}}),
    ("outer.inner1=value,outer.inner2=value2", {"outer": {"inner1": "value", "inner2": "value2"}}),
    (
        "outer.inner1=value,outer.middle.inner=value",
        {"outer": {"inner1": "value", "middle": {"inner": "value"}}},
    ),
    ("name1.name2=", {"name1": {"name2": ""}}),
    ("name1={value1,value2}", {"name1": ["value1", "value2"]}),
    (
        "name1={value1,value2},name2={value1,value2}",
        {"name1": ["value1", "value2"], "name2": ["value1", "value2"]},
    ),
    ("name1={1021,902}", {"name1": [1021, 902]}),
    ("name1.name2={value1,value2}", {"name1": {"name2": ["value1", "value2"]}}),
    ("list[0]=foo", {"list": ["foo"]}),
    ("list[0].foo=bar", {"list": [{"foo": "bar"}]}),
    ("list[0].foo=bar,list[0].hello=world", {"list": [{"foo": "bar", "hello": "world"}]}),
    ("list[0]=foo,list[1]=bar", {"list": ["foo", "bar"]}),
    ("list[0]=foo,list[1]=bar,", {"list": ["foo", "bar"]}),
    ("list[0]=foo,list[3]=bar", {"list": ["foo", None, None, "bar"]}),
    ("noval[0]", {"noval": []}),
    ("noval[0]=", {"noval": [""]}),
    ("nested[0][0]=1", {"nested": [[1]]}),
    ("nested[1][1]=1", {"nested": [None, [None, 1]]}),
    ("name1.name2[0].foo=bar,name1.name2[1].foo=bar", {"name1": {"name2": [{"foo": "bar"}, {"foo": "bar"}]}}),
    ("name1.name2[1].foo=bar,name1.name2[0].foo=bar", {"name1": {"name2": [{"foo": "bar"}, {"foo": "bar"}]}}),
    ("name1.name2[1].foo=bar", {"name1": {"name2": [None, {"foo": "bar"}]}}),
    # Beyond Helm's table: what its typedVal does with other spellings.
    ("a=TRUE,b=False,c=NULL", {"a": True, "b": False, "c": None}),
    ("float=1.5,exp=1e3,neg=-7,plus=+7,minus0=-0", {"float": "1.5", "exp": "1e3", "neg": -7, "plus": 7, "minus0": 0}),
    ("big=9223372036854775807,bigger=9223372036854775808", {"big": 2**63 - 1, "bigger": "9223372036854775808"}),
    ("empty={}", {"empty": [""]}),
    ("mixed={50,75.5,true,x}", {"mixed": [50, "75.5", True, "x"]}),
    (r"dotted\.key=1,end=a\\", {"dotted.key": 1, "end": "a\\"}),
    ("url=http://127.0.0.1:8080/get?a=b", {"url": "http://127.0.0.1:8080/get?a=b"}),
]  # fmt: skip

HELM_PARSE_SET_ERRORS = [
    ("name1=value1,,,,name2=value2,", "empty assignment"),
    ("name1,name2=", "key 'name1' has no value (cannot end with ,)"),
    ("name1,name2=value2", "key 'name1' has no value"),
    ("name1,name2=value2\\", "key 'name1' has no value"),
    ("name1,name2", "key 'name1' has no value"),
    ("name1.name2", "key 'name2' has no value"),
    ("name1.name2,name1.name3", "key 'name2' has no value"),
    ("name1.=name2", "empty key"),
    ("name1.,name2", "empty assignment"),
    ("name1={1021,902", "a list must end with '}'"),
    ("list[0].foo=bar,list[-30].hello=world", "negative index -30 not allowed"),
    ("list[0]=foo,list[-20]=bar", "negative index -20 not allowed"),
    ("illegal[0]name.foo=bar", "unexpected 'name' after an index"),
    ("]={}].", "']' is not a mapping (it holds a list)"),
    # Beyond Helm's table.
    ("a..b=1", "empty key"),
    ("=1", "empty key"),
    ("a[x]=1", "bad index 'x'"),
    ("a[1", "an index without its closing ]"),
    (f"a[{MAX_INDEX + 1}]=1", f"index '{MAX_INDEX + 1}' is too large (at most {MAX_INDEX})"),
    ("a[99999999999999999999]=1", "index '99999999999999999999' is too large"),
    ("a[-99999999999999999999]=1", "negative index '-99999999999999999999' not allowed"),
    ("novalue", "key 'novalue' has no value"),
]  # fmt: skip


@pytest.mark.parametrize(("expression", "expected"), HELM_PARSE_SET)
def test_helm_parse_set(expression: str, expected: dict[str, Any]) -> None:
    assert apply(expression) == expected


@pytest.mark.parametrize(("expression", "message"), HELM_PARSE_SET_ERRORS)
def test_helm_parse_set_errors_are_one_line_naming_the_flag(expression: str, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        apply(expression)
    text = str(caught.value)
    assert text.startswith(f"--set {expression!r}: ")
    assert message in text
    assert "\n" not in text


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("long_int_string=1234567890", {"long_int_string": "1234567890"}),
        ("boolean=true", {"boolean": "true"}),
        ("is_null=null", {"is_null": "null"}),
        ("zero=0", {"zero": "0"}),
        ("list={1,true}", {"list": ["1", "true"]}),
    ],
)
def test_helm_parse_string(expression: str, expected: dict[str, Any]) -> None:
    assert apply(expression, flag="--set-string") == expected


# --- Helm's TestParseInto, TestParseIntoString, TestSetIndex ----------------------------------


def test_helm_parse_into_overwrites_and_keeps_the_rest() -> None:
    got = {"outer": {"inner1": "overwrite", "inner2": "value2"}}
    apply("outer.inner1=value1,outer.inner3=value3,outer.inner4=4", into=got)
    assert got == {"outer": {"inner1": "value1", "inner2": "value2", "inner3": "value3", "inner4": 4}}


@pytest.mark.parametrize(
    ("first", "second", "start", "expected"),
    [
        (
            "listOuter[0][0].type=listValue",
            "listOuter[0][0].status=alive",
            {},
            {"listOuter": [[{"type": "listValue", "status": "alive"}]]},
        ),
        (
            "listOuter[0][0].type=listValue",
            "listOuter[1][0].status=alive",
            {},
            {"listOuter": [[{"type": "listValue"}], [{"status": "alive"}]]},
        ),
        (
            "listOuter[0][1][0].type=listValue",
            "listOuter[0][0][1].status=alive",
            {"listOuter": [[[{"exited": "old"}]]]},
            {"listOuter": [[[{"exited": "old"}, {"status": "alive"}], [{"type": "listValue"}]]]},
        ),
    ],
)
def test_helm_parse_into_nested_lists(
    first: str, second: str, start: dict[str, Any], expected: dict[str, Any]
) -> None:
    assert apply(first, second, into=start) == expected


def test_helm_parse_into_string() -> None:
    got = {"outer": {"inner1": "overwrite", "inner2": "value2"}}
    apply("outer.inner1=1,outer.inner3=3", flag="--set-string", into=got)
    assert got == {"outer": {"inner1": "1", "inner2": "value2", "inner3": "3"}}


@pytest.mark.parametrize(
    ("initial", "expression", "expected"),
    [
        ([0, 1], "l[2]=2", [0, 1, 2]),
        ([0, 1], "l[1]=2", [0, 2]),
        ([0, 1, 2, 3, 4, 5], "l[3]=4", [0, 1, 2, 4, 4, 5]),
    ],
)
def test_helm_set_index(initial: list[Any], expression: str, expected: list[Any]) -> None:
    assert apply(expression, into={"l": initial}) == {"l": expected}


def test_helm_nested_name_levels() -> None:
    assert apply("outer.middle.inner=value") == {"outer": {"middle": {"inner": "value"}}}
    deepest = ".".join(f"name{i}" for i in range(1, MAX_NESTED_NAMES + 2))
    assert apply(f"{deepest}=value")  # 30 dots: Helm's limit
    too_deep = ".".join(f"name{i}" for i in range(1, MAX_NESTED_NAMES + 3))
    with pytest.raises(UsageError, match=f"more than {MAX_NESTED_NAMES} nested names"):
        apply(f"{too_deep}=value")


def test_assignments_into_the_wrong_kind_are_refused() -> None:
    with pytest.raises(UsageError, match=r"^--set 'a.b=y': 'a' is not a mapping \(it holds a list\)$"):
        apply("a[0]=x", "a.b=y")
    with pytest.raises(UsageError, match=r"'a' is not a list \(it holds a mapping\)"):
        apply("a.b=x", "a[0]=y")
    with pytest.raises(UsageError, match=r"'a' is not a list \(it holds null\)"):
        apply("a=null", "a[0]=y")
    with pytest.raises(UsageError, match=r"item 0 is not a list \(it holds the value 'x'\)"):
        apply("a[0]=x", "a[0][0]=y")


# --- Helm's TestParseJSON, --set-file ------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "start", "expected"),
    [
        (
            'outer.inner1="1",outer.inner3=3,outer.inner4=true,outer.inner5="true"',
            {"outer": {"inner1": "overwrite", "inner2": "value2"}},
            {"outer": {"inner1": "1", "inner2": "value2", "inner3": 3, "inner4": True, "inner5": "true"}},
        ),
        (
            'outer.inner1={"a":"1","b":2,"c":[1,2,3]},outer.inner3=["new value 1","new value 2"],'
            'outer.inner4={"aa":"1","bb":2,"cc":[1,2,3]},outer.inner5=[{"A":"1","B":2,"C":[1,2,3]}]',
            {"outer": {"inner1": {"x": "overwrite"}, "inner2": "value2", "inner3": ["overwrite"]}},
            {
                "outer": {
                    "inner1": {"a": "1", "b": 2, "c": [1, 2, 3]},
                    "inner2": "value2",
                    "inner3": ["new value 1", "new value 2"],
                    "inner4": {"aa": "1", "bb": 2, "cc": [1, 2, 3]},
                    "inner5": [{"A": "1", "B": 2, "C": [1, 2, 3]}],
                }
            },
        ),
        (
            'outer.inner1=,outer.inner3={"aa":"1","bb":2,"cc":[1,2,3]},outer.inner3.cc[1]=null',
            {"outer": {"inner1": {"x": "overwrite"}, "inner2": "value2"}},
            {
                "outer": {
                    "inner1": None,
                    "inner2": "value2",
                    "inner3": {"aa": "1", "bb": 2, "cc": [1, None, 3]},
                }
            },
        ),
        ('{"a": {"b": 1}, "c": [true]}', {"a": {"x": 0}}, {"a": {"x": 0, "b": 1}, "c": [True]}),
        ("list[1]= [1, 2] ,x=1.5, y = 2", {}, {"list": [None, [1, 2]], "x": 1.5, " y ": 2}),
    ],
)
def test_helm_parse_json(expression: str, start: dict[str, Any], expected: dict[str, Any]) -> None:
    assert apply(expression, flag="--set-json", into=start) == expected


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        (
            'outer.inner1={"a":"1","b":2,"c":[1,2,3]},outer.inner3=["new value 1","new value 2"],'
            'outer.inner4={"aa":"1","bb":2,"cc":[1,2,3]},outer.inner5={"A":"1","B":2,"C":[1,2,3]}]',
            "key ']' has no value",
        ),
        ("a={nope}", "invalid JSON value: Expecting property name enclosed in double quotes"),
        ("a=NaN", "invalid JSON value: NaN is not JSON"),
        ('{"a": 1', "invalid JSON"),
        ("[1, 2]", "empty key"),
        ("a=" + "[" * 200 + "]" * 200, "nested deeper than 100 levels"),
        ("a=" + "[" * 100_000, "JSON value nested too deeply"),
    ],
)
def test_bad_json_is_one_line_naming_the_flag(expression: str, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        apply(expression, flag="--set-json")
    assert str(caught.value).startswith("--set-json ")
    assert message in str(caught.value)
    assert len(str(caught.value)) < 300


def test_set_json_is_size_limited() -> None:
    with pytest.raises(UsageError, match=f"larger than {MAX_VALUE_BYTES} bytes"):
        apply("a=" + json.dumps("x" * MAX_VALUE_BYTES), flag="--set-json")


def test_set_file_reads_contents_as_strings_with_limits(tmp_path: Path) -> None:
    (tmp_path / "body.json").write_text('{"text": "hi"}\n')
    (tmp_path / "n.txt").write_text("50")
    got = apply(f"notify.payload={tmp_path / 'body.json'},n={tmp_path / 'n.txt'}", flag="--set-file")
    assert got == {"notify": {"payload": '{"text": "hi"}\n'}, "n": "50"}
    (tmp_path / "big").write_bytes(b"x" * (MAX_VALUE_BYTES + 1))
    (tmp_path / "bin").write_bytes(b"\xff\xfe")
    for path, message in [
        (tmp_path / "big", f"larger than {MAX_VALUE_BYTES} bytes"),
        (tmp_path / "bin", "not a UTF-8 text file"),
        (tmp_path / "missing", "no such file"),
        (tmp_path, "is a directory"),
    ]:
        with pytest.raises(UsageError, match=f"^--set-file 'a=.*': '.*': {message}"):
            apply(f"a={path}", flag="--set-file")


# --- merging in Helm's order ------------------------------------------------------------------


def test_flags_apply_in_helms_order_whatever_the_command_line_order(tmp_path: Path) -> None:
    (tmp_path / "v.yaml").write_text("a: file\nb: file\nc: file\nd: file\nkeep: {x: 1}\n")
    (tmp_path / "d.txt").write_text("file-contents")
    flags = ValueFlags(
        files=[str(tmp_path / "v.yaml")],
        sets=["b=set,c=set,d=set", "keep.y=2"],
        set_strings=["c=7,d=string"],
        set_files=[f"d={tmp_path / 'd.txt'}"],
        set_jsons=['a="json",b="json",c="json",d="json"'],
    )
    assert merged_document(flags) == {
        "a": "json",
        "b": "set",
        "c": "7",
        "d": "file-contents",
        "keep": {"x": 1, "y": 2},
    }


def test_typed_value_matches_helms_typedval() -> None:
    assert [typed_value(v) for v in ["0", "00", "01", "10", "-1", "1.0", "True", "nULL", ""]] == [
        0, "00", "01", 10, -1, "1.0", True, None, "",
    ]  # fmt: skip


def test_deep_merge_merges_mappings_and_replaces_the_rest() -> None:
    base = {"a": {"b": 1, "c": [1]}, "d": 1}
    assert deep_merge(base, {"a": {"c": [2], "e": 3}}) == {"a": {"b": 1, "c": [2], "e": 3}, "d": 1}
    assert base == {"a": {"b": 1, "c": [1]}, "d": 1}


# --- the spec chart values build -------------------------------------------------------------


def test_values_build_the_same_spec_as_the_iter8_chart() -> None:
    tasks = Iter8Hooks(env={"ITER8_NO_AUTOLOAD": "1"}).tasks
    values = apply("tasks={run,assess}", "run.cmd=echo hi", "assess.SLOs.upper.x/y=1", "runner=job")
    experiment = experiment_from_values(values, tasks)
    assert experiment.spec == [
        {"task": "run", "with": {"cmd": "echo hi"}},
        {"task": "assess", "with": {"SLOs": {"upper": {"x/y": 1}}}},
    ]


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (["tasks={run}", "rnu.cmd=true"], "unknown key 'rnu' in values"),
        (["tasks={nope}"], "tasks: unknown task 'nope'"),
        (["run.cmd=true"], "tasks: expected a list of task names"),
    ],
)
def test_bad_values_name_the_key(sets: list[str], message: str) -> None:
    tasks = Iter8Hooks(env={"ITER8_NO_AUTOLOAD": "1"}).tasks
    with pytest.raises(InvalidExperimentError, match=message):
        experiment_from_values(apply(*sets), tasks)


# --- any argument is applied or refused in one line ------------------------------------------

SET_ALPHABET = "ab.[]{},=\\0123456789 -\"':nultrefs"


@FUZZ
@given(
    expression=st.text(alphabet=SET_ALPHABET, min_size=1, max_size=80),
    flag=st.sampled_from(["--set", "--set-string", "--set-json"]),
)
def test_any_argument_is_applied_or_refused_in_one_line(expression: str, flag: str) -> None:
    doc: dict[str, Any] = {"spec": [{"with": {"qps": 5}}]}
    with bounded():
        try:
            parse_into(expression, doc, flag=flag)
        except UsageError as exc:
            message = str(exc)
            assert message.startswith(f"{flag} ")
            assert "\n" not in message
            assert len(message) < 400
        else:
            json.dumps(doc)  # plain data, nothing else
