"""Go's builtin functions, ``printf``'s verbs and the sprig functions, with the output Go and sprig
give; and the sandbox's limits and the engine detection rule."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from fuzzing import FUZZ, MAX_ERROR_CHARS, bounded
from hypothesis import given
from hypothesis import strategies as st

from kubectl_iter8 import gotemplate
from kubectl_iter8.errors import TemplateBoundsError, TemplateError, TemplateExecError, TemplateParseError


def render(text: str, data: Any = None, **options: Any) -> str:
    return gotemplate.render(text, {} if data is None else data, name="t", **options)


@pytest.mark.parametrize(
    ("text", "output"),
    [
        # Go's builtins
        ('{{and 1 0 2}} {{and 1 2}} {{or 0 "" 3}} {{or 0 ""}} {{not 0}}', "0 2 3  true"),
        ('{{len "héllo"}} {{len .l}} {{len .m}}', "6 3 1"),
        ('{{index .l 1}} {{index .m "k"}} {{index .n 0 1}} {{index .m "none"}}', "2 v b <no value>"),
        ('{{slice .l 1}} {{slice .l 1 2}} {{slice "abcdef" 2 4}}', "[2 3] [2] cd"),
        ('{{print 1 2 "a" "b" 3}}|{{println 1 "a"}}', "1 2ab3|1 a\n"),
        ('{{html "<a href=\'x\'>&\\"</a>"}}', "&lt;a href=&#39;x&#39;&gt;&amp;&#34;&lt;/a&gt;"),
        ('{{js "It\'d be <nice>."}}', "It\\'d be \\u003Cnice\\u003E."),
        ('{{urlquery "http://www.example.org/?a=b c"}}', "http%3A%2F%2Fwww.example.org%2F%3Fa%3Db+c"),
        (
            '{{eq 1 1}} {{eq 1 2 3 1}} {{eq "a" "b"}} {{ne 1 2}} {{eq 1 1.0}} {{eq .nil nil}}',
            "true true false true true true",
        ),
        ('{{lt 1 2}} {{le 2 2}} {{gt "b" "a"}} {{ge 1.5 2}}', "true true true false"),
        # printf
        ('{{printf "%s|%5s|%-5s|%.2s" "abc" "ab" "ab" "abc"}}', "abc|   ab|ab   |ab"),
        (
            '{{printf "%d|%5d|%-5d|%05d|%+d|%x|%X|%#x|%o|%b|%c" 42 42 42 42 42 255 255 255 8 5 65}}',
            "42|   42|42   |00042|+42|ff|FF|0xff|10|101|A",
        ),
        (
            '{{printf "%f|%.2f|%8.3f|%e|%g|%.3g|%v" 3.14159 3.14159 3.14159 1234.5678 0.000012 3.14159 2.5}}',
            "3.141590|3.14|   3.142|1.234568e+03|1.2e-05|3.14|2.5",
        ),
        ('{{printf "%.2f" 5}}', "5.00"),
        ('{{printf "%q|%v|%t|%T|%%" "a\\"b" .m true .l}}', '"a\\"b"|map[k:v]|true|[]interface {}|%'),
        ('{{printf "%d %s" "x" 3}}', "%!d(string=x) %!s(int=3)"),
        ('{{printf "%d"}} {{printf "x" 1}}', "%!d(MISSING) x%!(EXTRA int=1)"),
        ('{{printf "%s" .l}} {{printf "%d" .l}}', "[%!s(int=1) %!s(int=2) %!s(int=3)] [1 2 3]"),
        ('{{printf "%[2]s %[1]s %s" "a" "b"}} {{printf "%[3]d" 1}}', "b a b %!d(BADINDEX)"),
        ('{{printf "%*d|%-*d|%.*f" 4 7 3 7 1 2.25}} {{printf "%2000000d" 1}}', "   7|7  |2.2 %!(BADWIDTH)1"),
    ],
)
def test_builtins_and_printf(text: str, output: str) -> None:
    data = {"l": [1, 2, 3], "m": {"k": "v"}, "n": [["a", "b"]], "nil": None}
    assert render(text, data) == output


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{{eq "a" 1}}', "error calling eq: incompatible types for comparison"),
        ("{{eq .l .l}}", "error calling eq: non-comparable type"),
        ("{{lt true false}}", "error calling lt: invalid type for comparison"),
        ("{{index .l 5}}", "error calling index: index out of range: 5"),
        ("{{len 3}}", "error calling len: len of type int"),
        ("{{slice .l 2 1}}", "invalid slice index: 2 > 1"),
        ("{{not}}", "wrong number of args for not: want 1 got 0"),
    ],
)
def test_builtin_errors(text: str, message: str) -> None:
    with pytest.raises(TemplateExecError, match=message):
        render(text, {"l": [1, 2, 3]})


@pytest.mark.parametrize(
    ("text", "output"),
    [
        # strings
        ('{{.x | default "d"}} {{"" | default "d"}} {{.s | default "d"}} {{default true .f}}', "d d s true"),
        ('{{quote "a\\"b" 1 .missing}} {{squote "a" 2}}', '"a\\"b" "1" \'a\' \'2\''),
        (
            '{{upper "ab"}} {{lower "AB"}} {{title "hello world it\'s"}} {{trim "  x\\n"}} {{trimAll "$" "$5$"}}',
            "AB ab Hello World It'S x 5",
        ),
        ('{{splitn "," 2 "a,b,c"}} {{splitn "," -1 "a,b,c"}}', "map[_0:a _1:b,c] map[_0:a _1:b _2:c]"),
        (
            '{{trimPrefix "a" "abc"}} {{trimSuffix "c" "abc"}} {{replace "a" "b" "aaa"}} {{repeat 3 "ab"}}',
            "bc ab bbb ababab",
        ),
        (
            '{{contains "b" "abc"}} {{hasPrefix "a" "abc"}} {{hasSuffix "x" "abc"}} {{substr 1 3 "abcdef"}} {{trunc 3 "abcdef"}}',
            "true true false bc abc",
        ),
        (
            '{{indent 2 "a\\nb"}}|{{nindent 2 "c"}}|{{nospace "a b c"}}|{{cat "a" 1 .missing "b"}}',
            "  a\n  b|\n  c|abc|a 1 b",
        ),
        (
            '{{snakecase "FirstName"}} {{kebabcase "FirstName"}} {{camelcase "http_server"}} {{plural "one" "many" 2}}',
            "first_name first-name HttpServer many",
        ),
        (
            '{{splitList "," "a,b,c"}} {{(split "$" "foo$bar")._1}} {{join "-" (list 1 "b" .missing)}}',
            "[a b c] bar 1-b",
        ),
        (
            '{{regexMatch "^[a-z]+$" "abc"}} {{regexFind "[0-9]+" "ab123cd"}} {{regexFindAll "[0-9]" "a1b2c3" 2}}',
            "true 123 [1 2]",
        ),
        (
            '{{regexReplaceAll "a(x*)b" "-ab-axxb-" "${1}W"}} {{regexReplaceAllLiteral "a(x*)b" "-ab-" "${1}"}} {{regexSplit "z+" "pizza" -1}}',
            "-W-xxW- -${1}- [pi a]",
        ),
        # lists
        ("{{list 1 2 3}} {{first .l}} {{rest .l}} {{last .l}} {{initial .l}}", "[1 2 3] 1 [2 3] 3 [1 2]"),
        (
            "{{append .l 4}} {{prepend .l 0}} {{concat .l (list 9)}} {{reverse .l}} {{uniq (list 1 1 2)}}",
            "[1 2 3 4] [0 1 2 3] [1 2 3 9] [3 2 1] [1 2]",
        ),
        (
            '{{without .l 2}} {{has 2 .l}} {{compact (list 0 1 "" 2)}} {{sortAlpha (list "b" "a")}} {{until 3}} {{untilStep 1 7 3}} {{seq 3}}',
            "[1 3] true [1 2] [a b] [0 1 2] [1 4] 1 2 3",
        ),
        # dicts
        (
            '{{$d := dict "b" 1 "a" 2}}{{$d}} {{get $d "a"}} {{hasKey $d "c"}} {{keys $d}} {{values $d}}',
            "map[a:2 b:1] 2 false [a b] [2 1]",
        ),
        (
            '{{$d := dict "a" 1}}{{$_ := set $d "b" 2}}{{$d}} {{unset $d "a"}} {{pick .m "k"}} {{omit .m "k"}}',
            "map[a:1 b:2] map[b:2] map[k:v] map[]",
        ),
        (
            '{{merge (dict "a" 1) (dict "a" 2 "b" 3)}} {{mergeOverwrite (dict "a" 1) (dict "a" 2)}} {{dig "x" "y" "d" .deep}} {{dig "x" "z" "d" .deep}}',
            "map[a:1 b:3] map[a:2] found d",
        ),
        (
            '{{pluck "k" .m (dict "k" 2)}} {{coalesce "" 0 "z"}} {{empty .l}} {{empty (list)}} {{ternary "y" "n" false}}',
            "[v 2] z false true n",
        ),
        # types and math
        (
            '{{kindOf .l}} {{kindOf .m}} {{kindOf 1}} {{kindOf 1.5}} {{kindOf "s"}} {{kindOf .missing}} {{typeOf .m}} {{kindIs "map" .m}}',
            "slice map int float64 string invalid map[string]interface {} true",
        ),
        (
            '{{add 1 2 "3"}} {{add1 1}} {{sub 5 2}} {{mul 2 3 4}} {{div 7 2}} {{div -7 2}} {{mod -7 2}} {{max 1 5 3}} {{min 4 2}}',
            "6 2 3 24 3 -3 -1 5 2",
        ),
        (
            "{{addf 1.5 1}} {{subf 5 0.5}} {{mulf 1.5 2}} {{divf 1 4}} {{floor 1.7}} {{ceil 1.2}} {{round 2.345 2}}",
            "2.5 4.5 3 0.25 1 2 2.35",
        ),
        (
            '{{int "42"}} {{int 3.9}} {{atoi "x"}} {{float64 "1.5"}} {{toString 5}} {{toStrings .l}}',
            "42 3 0 1.5 5 [1 2 3]",
        ),
        # encodings
        (
            '{{b64enc "hello"}} {{b64dec "aGVsbG8="}} {{sha256sum "a" | trunc 8}} {{adler32sum "a"}}',
            "aGVsbG8= hello ca978112 6422626",
        ),
    ],
)
def test_sprig_functions(text: str, output: str) -> None:
    data = {"l": [1, 2, 3], "m": {"k": "v"}, "s": "s", "f": None, "deep": {"x": {"y": "found"}}}
    assert render(text, data) == output


def test_json_and_yaml_as_go_writes_them() -> None:
    data = {"b": [1, 2.0, 0.5, 1e21, None, "<&>"], "a": {"z": True, "y": {}}}
    assert render("{{toJson .}}", data) == (
        '{"a":{"y":{},"z":true},"b":[1,2,0.5,1e+21,null,"\\u003c\\u0026\\u003e"]}'
    )
    assert render("{{toRawJson .b}}", data) == '[1,2,0.5,1e+21,null,"<&>"]'
    assert render("{{toPrettyJson .a}}", data) == '{\n  "y": {},\n  "z": true\n}'
    assert render("{{toYaml .}}", {"b": [1, {"c": "d"}], "a": "x: y"}) == "a: 'x: y'\nb:\n- 1\n- c: d"
    assert render('{{(fromJson "{\\"a\\": [1]}").a}} {{(fromYaml "a: 1").a}} {{fromJson "nope"}}') == (
        "[1] 1 <no value>"
    )
    with pytest.raises(TemplateExecError, match="error calling mustFromJson: invalid JSON"):
        render('{{mustFromJson "nope"}}')
    report = gotemplate.GoStruct("base.Report", {"numTasks": 2, "completed": True})
    assert render("{{.R.NumTasks}} {{.R.Completed}} {{toJson .R}}", {"R": report}) == (
        '2 true {"numTasks":2,"completed":true}'
    )
    with pytest.raises(TemplateExecError, match="can't evaluate field numTasks in type base.Report"):
        render("{{.R.numTasks}}", {"R": report})


def test_dates_with_go_layouts() -> None:
    out = render('{{ now | date "2006-01-02T15:04:05Z07:00" }}')
    assert len(out) == 20
    assert out.endswith("Z")
    assert out[4] == "-"
    assert render('{{ date "Jan 2, 2006 at 3:04pm (MST)" 0 }}') == "Jan 1, 1970 at 12:00am (UTC)"
    assert render('{{ date "Monday 02/01/06 15:04:05.000" 1700000000.5 }}') == "Tuesday 14/11/23 22:13:20.500"
    assert render("{{ unixEpoch 1700000000 }} {{ duration 3723 }}") == "1700000000 1h2m3s"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{{fail "stop here"}}', 'at <fail "stop here">: error calling fail: stop here'),
        ('{{required "give .x" .x}}', "error calling required: give .x"),
        ("{{ternary 1 2 3}}", "ternary's condition must be a bool"),
        ("{{div 1 0}}", "integer divide by zero"),
        ('{{regexMatch "(a+)+$" "aaaa"}}', "nested quantifiers"),
        ('{{regexMatch "(" "a"}}', "error parsing regexp"),
        ('{{include "none" .}}', 'no template "none"'),
    ],
)
def test_sprig_errors(text: str, message: str) -> None:
    with pytest.raises(TemplateExecError, match=message):
        render(text)


def test_include_and_tpl() -> None:
    text = '{{define "name"}}app-{{.}}{{end}}{{include "name" "x" | upper}} {{tpl "{{ .a }}!" .}}'
    assert render(text, {"a": 1}) == "APP-X 1!"


# --- the sandbox ------------------------------------------------------------------------------


def test_no_python_attribute_is_reachable() -> None:
    class Secretive:
        password = "hunter2"

    for text in ("{{.obj.password}}", "{{.obj.__class__}}", "{{.s.__class__}}", "{{.s.upper}}"):
        with pytest.raises(TemplateExecError, match="can't evaluate field"):
            render(text, {"obj": Secretive(), "s": "text"})
    assert render("{{.__class__}}", {}) == "<no value>"


def test_templates_cannot_change_the_callers_data() -> None:
    data = {"m": {"a": 1}, "l": [1]}
    render('{{$_ := set .m "b" 2}}{{$_ := unset .m "a"}}{{$_ := merge .m (dict "c" 3)}}', data)
    assert data == {"m": {"a": 1}, "l": [1]}


@pytest.mark.parametrize(
    ("text", "limits", "message"),
    [
        (
            "{{range until 100000}}{{range until 100000}}{{end}}{{end}}",
            gotemplate.Limits(steps=10_000),
            "stopped after 10000 steps",
        ),
        (
            "{{range until 100000}}{{range until 100000}}{{end}}{{end}}",
            gotemplate.Limits(seconds=0.2, steps=10**12),
            r"stopped after 0.2s",
        ),
        (
            '{{range until 100000}}{{printf "%100s" "x"}}{{end}}',
            gotemplate.Limits(output=10_000),
            "output larger than 10000 characters",
        ),
        (
            '{{define "r"}}{{template "r" .}}{{end}}{{template "r" .}}',
            gotemplate.Limits(),
            "exceeded maximum template depth",
        ),
        (
            '{{$s := "xx"}}{{range until 40}}{{$s = print $s $s}}{{end}}',
            gotemplate.Limits(output=10_000),
            "print returned more than 10000 characters",
        ),
        (
            "{{$l := list 1}}{{range until 40}}{{$l = list $l $l}}{{end}}",
            gotemplate.Limits(elements=1000),
            "list returned more than 1000 elements",
        ),
        ('{{repeat 100000000 "x"}}', gotemplate.Limits(), "longer than 1000000 characters"),
        ("{{until 100000000}}", gotemplate.Limits(), "more than 100000 elements"),
    ],
)
def test_sandbox_limits_stop_a_runaway_template_quickly(
    text: str, limits: gotemplate.Limits, message: str
) -> None:
    started = time.monotonic()
    with pytest.raises(TemplateExecError, match=message) as caught:
        gotemplate.render(text, {}, name="t", limits=limits)
    assert time.monotonic() - started < 3
    assert "\n" not in str(caught.value)
    if "calling" not in str(caught.value):
        assert isinstance(caught.value, TemplateBoundsError)


def test_a_template_too_large_or_too_nested_is_refused() -> None:
    with pytest.raises(TemplateParseError, match="larger than"):
        gotemplate.parse("x" * (gotemplate.MAX_TEMPLATE_SIZE + 1))
    with pytest.raises(TemplateParseError, match="nested too deeply"):
        gotemplate.parse("{{" + "(" * 5000 + "1" + ")" * 5000 + "}}")


# --- which engine -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "engine"),
    [
        ("url: {{ .istioPromURL }}", "go"),
        ("{{- .x }}", "go"),
        ("{{ quote .x }}", "go"),
        ("{{ $x := 1 }}", "go"),
        ("{{/* note */}}", "go"),
        ("{{ range .l }}{{ end }}", "go"),
        ('{{- define "labels" }}{{ end }}', "go"),
        ('{{ template "x" }}', "go"),
        ("{{ .Report | toPrettyJson }}", "go"),
        ("{{ values.url }}", "jinja2"),
        ("{{ summary | tojson }}", "jinja2"),
        ("{% if x %}{{ .y }}{% endif %}", "jinja2"),
        ("{# comment #}", "jinja2"),
        ("plain: text", "jinja2"),
        ("{{ name }}", "jinja2"),
    ],
)
def test_engine_detection(text: str, engine: str) -> None:
    assert gotemplate.detect_engine(text) == engine


def test_a_declared_engine_wins_over_detection() -> None:
    assert gotemplate.choose_engine("{{ name }}", "go") == "go"
    assert gotemplate.choose_engine("{{ .name }}", "jinja2") == "jinja2"
    assert gotemplate.choose_engine("{{ .name }}", "auto") == "go"
    with pytest.raises(ValueError, match="templateEngine must be go, jinja2 or auto"):
        gotemplate.choose_engine("x", "mustache")


def test_every_offered_function_is_callable_from_a_template() -> None:
    names = gotemplate.function_names()
    assert {"default", "toYaml", "toPrettyJson", "regexReplaceAll", "kindOf", "fail", "include"} <= set(names)
    assert not set(names) & set(gotemplate.REFUSED)
    assert json.loads(render("{{ list " + " ".join(f'"{n}"' for n in names) + " | toJson }}")) == names


# --- any text: rendered, or refused in one line ---------------------------------------------------

_TOKENS = [
    "{{", "}}", "{{- ", " -}}", " ", ".", ".a", ".b.c", "$", "$x", ":=", "=", "|", "(", ")", "if", "else",
    "end", "range", "with", "define", "template", "block", "break", "continue", '"s"', "`r`", "'c'", "1",
    "2.5", "-3", "nil", "true", ",", "/*", "*/", "\n", "x", "printf", "len", "index", "slice", "eq", "lt",
    "and", "or", "not", "default", "toJson", "toYaml", "list", "dict", "set", "include", "tpl", "until",
    "repeat", "regexMatch", '"%d %s %v %q %5.2f %*d"', '"(a+)+"', "keys", "merge", "fail", "print",
]  # fmt: skip


@FUZZ
@given(pieces=st.lists(st.sampled_from(_TOKENS), max_size=40))
def test_any_template_renders_or_fails_with_one_line(pieces: list[str]) -> None:
    data = {"a": {"x": 1}, "b": {"c": [1, "two", None, 2.5]}, "l": [1, 2], "s": "str", "n": None}
    limits = gotemplate.Limits(seconds=2, steps=20_000, output=20_000)
    message = ""
    with bounded():
        try:
            gotemplate.render("".join(pieces), data, limits=limits)
        except TemplateError as exc:
            message = str(exc)
    assert "\n" not in message
    assert len(message) < MAX_ERROR_CHARS
