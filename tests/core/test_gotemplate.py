"""The Go template language (``kubectl_iter8.gotemplate``): the examples of Go's text/template
documentation, and the rules of its lexer, parser and executor, each with the output Go gives."""

from __future__ import annotations

from typing import Any

import pytest

from kubectl_iter8 import gotemplate
from kubectl_iter8.errors import Iter8Error, TemplateExecError, TemplateParseError


def render(text: str, data: Any = None, **options: Any) -> str:
    return gotemplate.render(text, {} if data is None else data, name="t", **options)


# The examples of https://pkg.go.dev/text/template ("Examples" and "Pipelines"), each printing
# "output" quoted.
GO_DOC_PIPELINES = [
    '{{"\\"output\\""}}',
    '{{`"output"`}}',
    '{{printf "%q" "output"}}',
    '{{"output" | printf "%q"}}',
    '{{printf "%q" (print "out" "put")}}',
    '{{"put" | printf "%s%s" "out" | printf "%q"}}',
    '{{"output" | printf "%s" | printf "%q"}}',
    '{{with "output"}}{{printf "%q" .}}{{end}}',
    '{{with $x := "output" | printf "%q"}}{{$x}}{{end}}',
    '{{with $x := "output"}}{{printf "%q" $x}}{{end}}',
    '{{with $x := "output"}}{{$x | printf "%q"}}{{end}}',
]


@pytest.mark.parametrize("text", GO_DOC_PIPELINES)
def test_the_go_documentations_pipeline_examples(text: str) -> None:
    assert render(text) == '"output"'


def test_the_go_documentations_trim_markers_example() -> None:
    assert render('"{{23 -}} < {{- 45}}"') == '"23<45"'


LETTER = """
Dear {{.Name}},
{{if .Attended}}
It was a pleasure to see you at the wedding.
{{- else}}
It is a shame you couldn't make it to the wedding.
{{- end}}
{{with .Gift -}}
Thank you for the lovely {{.}}.
{{end}}
Best wishes,
Josie
"""


def test_the_go_documentations_letter_example() -> None:
    recipients = [
        {"Name": "Aunt Mildred", "Gift": "bone china tea set", "Attended": True},
        {"Name": "Uncle John", "Gift": "moleskin pants", "Attended": False},
        {"Name": "Cousin Rodney", "Gift": "", "Attended": False},
    ]
    letters = [render(LETTER, r) for r in recipients]
    assert letters[0] == (
        "\nDear Aunt Mildred,\n\nIt was a pleasure to see you at the wedding.\n"
        "Thank you for the lovely bone china tea set.\n\nBest wishes,\nJosie\n"
    )
    assert letters[1] == (
        "\nDear Uncle John,\n\nIt is a shame you couldn't make it to the wedding.\n"
        "Thank you for the lovely moleskin pants.\n\nBest wishes,\nJosie\n"
    )
    assert letters[2] == (
        "\nDear Cousin Rodney,\n\nIt is a shame you couldn't make it to the wedding.\n\nBest wishes,\nJosie\n"
    )


def test_the_go_documentations_block_example() -> None:
    master = 'Names:{{block "list" .}}{{"\\n"}}{{range .}}{{println "-" .}}{{end}}{{end}}'
    guardians = ["Gamora", "Groot", "Nebula", "Rocket", "Star-Lord"]
    assert render(master, guardians) == "Names:\n- Gamora\n- Groot\n- Nebula\n- Rocket\n- Star-Lord\n"


def test_define_and_template_calls_with_their_own_dot() -> None:
    text = '{{define "T1"}}ONE{{end}}{{define "T2"}}TWO {{template "T1"}}{{end}}{{define "T3"}}{{template "T1"}} {{template "T2"}}{{end}}{{template "T3"}}'
    assert render(text) == "ONE TWO ONE"
    assert render('{{define "x"}}[{{.}} {{$}}]{{end}}{{template "x" .a}}', {"a": 1}) == "[1 1]"
    # Without an argument the template's dot is "no value": its fields are too, not errors.
    assert (
        render('{{define "x"}}[{{.}} {{.a.b}}]{{end}}{{template "x"}}', {"a": 1}) == "[<no value> <no value>]"
    )
    assert gotemplate.parse('{{define "a"}}{{end}}{{block "b" .}}{{end}}').defined == ["a", "b"]


# --- data: fields, maps, missing keys, printing -----------------------------------------------


@pytest.mark.parametrize(
    ("text", "data", "output"),
    [
        ("{{.a.b.c}}", {"a": {"b": {"c": "deep"}}}, "deep"),
        ("{{.missing}}", {}, "<no value>"),
        ("{{.missing.deeper}}", {}, "<no value>"),
        ("{{.}}", {"b": 2, "a": [1, "x"]}, "map[a:[1 x] b:2]"),
        ("{{.l}}", {"l": [1, 2.5, None, True, {"k": None}]}, "[1 2.5 <nil> true map[k:<nil>]]"),
        ("{{.n}}", {"n": None}, "<no value>"),
        (
            "{{.f}} {{.g}} {{.h}} {{.i}} {{.j}}",
            {"f": 0.5, "g": 1e6, "h": 123456.0, "i": 1e-5, "j": 50.0},
            "0.5 1e+06 123456 1e-05 50",
        ),
        (
            "{{1e21}} {{-2.5e-7}} {{3.0}} {{0x1F}} {{0o17}} {{0b101}} {{1_000}} {{'a'}}",
            {},
            "1e+21 -2.5e-07 3 31 15 5 1000 97",
        ),
        ("{{$}}", {"x": 1}, "map[x:1]"),
        ("{{true}} {{false}}", {}, "true false"),
    ],
)
def test_values_print_as_go_prints_them(text: str, data: Any, output: str) -> None:
    assert render(text, data) == output


def test_missing_key_options() -> None:
    assert render("{{.x}}", {}, missing_key="zero") == "<no value>"
    with pytest.raises(TemplateExecError, match='map has no entry for key "x"'):
        render("{{.x}}", {}, missing_key="error")


@pytest.mark.parametrize(
    ("text", "data", "message"),
    [
        ("{{.a.b}}", {"a": None}, r"at <\.a\.b>: nil pointer evaluating interface \{\}\.b"),
        ("{{.a.b}}", {"a": "text"}, "can't evaluate field b in type string"),
        ("{{.a.b}}", {"a": [1]}, r"can't evaluate field b in type \[\]interface \{\}"),
        ("{{.a 1}}", {"a": 1}, "a is not a method but has arguments"),
        ('{{"x" 1}}', {}, "can't give argument to non-function"),
        ("{{range .a}}{{end}}", {"a": True}, "range can't iterate over true"),
        ('{{template "nope"}}', {}, 'template "nope" not defined'),
        ("{{nil}}", {}, "nil is not a command"),
    ],
)
def test_execution_errors_are_one_line_like_gos(text: str, data: Any, message: str) -> None:
    with pytest.raises(TemplateExecError, match=message) as caught:
        render(text, data)
    assert str(caught.value).startswith("template: t:1:")
    assert "\n" not in str(caught.value)
    assert isinstance(caught.value, Iter8Error)


def test_an_execution_error_names_the_defined_template_and_its_line() -> None:
    text = 'line one\n{{define "inner"}}\n  {{ .x.y }}\n{{end}}{{template "inner" .}}'
    with pytest.raises(TemplateExecError) as caught:
        render(text, {"x": 3})
    assert str(caught.value) == (
        'template: t:3:5: executing "inner" at <.x.y>: can\'t evaluate field y in type int'
    )


# --- control structures ----------------------------------------------------------------------


def test_if_else_if_else_and_truth_of_go_zero_values() -> None:
    text = "{{if .a}}a{{else if .b}}b{{else}}none{{end}}"
    assert render(text, {"a": 1}) == "a"
    assert render(text, {"a": 0, "b": "x"}) == "b"
    for zero in (0, 0.0, "", None, [], {}, False):
        assert render(text, {"a": zero, "b": zero}) == "none"
    assert render(text, {}) == "none"


def test_with_else_with() -> None:
    text = "{{with .a}}a={{.}}{{else with .b}}b={{.}}{{else}}none{{end}}"
    assert render(text, {"a": "x"}) == "a=x"
    assert render(text, {"b": 2}) == "b=2"
    assert render(text, {}) == "none"


def test_range_over_lists_maps_and_ints_with_else_break_and_continue() -> None:
    assert render("{{range $i, $e := .}}<{{$i}}={{$e}}>{{end}}", [3, 4, 5]) == "<0=3><1=4><2=5>"
    assert render("{{range $e := .}}{{$e}}{{end}}", [3, 4]) == "34"
    assert render("{{range .}}{{.}}{{end}}", {"b": 2, "a": 1, "c": 3}) == "123"
    assert render("{{range $k, $v := .}}{{$k}}={{$v}};{{end}}", {"b": 2, "a": 1}) == "a=1;b=2;"
    assert render("{{range .}}x{{else}}empty{{end}}", []) == "empty"
    assert render("{{range .missing}}x{{else}}empty{{end}}", {}) == "empty"
    assert render("{{range 3}}{{.}}{{end}}") == "012"
    text = "{{range .}}{{if eq . 2}}{{continue}}{{end}}{{if eq . 4}}{{break}}{{end}}{{.}}{{end}}"
    assert render(text, [1, 2, 3, 4, 5]) == "13"


def test_variables_declare_assign_and_scope() -> None:
    assert render("{{$x := 1}}{{if true}}{{$x = 2}}{{end}}{{$x}}") == "2"
    assert render("{{$x := 1}}{{if true}}{{$x := 2}}{{$x}}{{end}}{{$x}}") == "21"
    assert render("{{range $i, $e := .}}{{end}}{{$}}", [1]) == "[1]"
    assert render("{{with $v := .a}}{{$v}}{{end}}", {"a": "v"}) == "v"
    assert render("{{range .}}{{$.n}}{{end}}", {"n": 7, "l": 1}) == "77"


def test_comments_and_trim_markers() -> None:
    assert render("a {{/* a comment */}} b") == "a  b"
    assert render("a  {{- /* trimmed */ -}}  b") == "ab"
    assert render("x\n\n  {{- 1 -}}\n\n  y") == "x1y"
    # "-3" is a number, not a trim marker.
    assert render("a {{-3}} b") == "a -3 b"


def test_parenthesized_pipelines_and_chains() -> None:
    assert render("{{(index . 0).name}}", [{"name": "first"}]) == "first"
    assert render('{{ (printf "%s-%s" "a" "b") | len }}') == "3"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{{.x", "unclosed action"),
        ("{{end}}", "unexpected {{end}}"),
        ("{{if .x}}", "unexpected EOF"),
        ("{{if}}{{end}}", "missing value for if"),
        ("{{nope 1}}", 'function "nope" not defined'),
        ("{{$x}}", 'undefined variable "\\$x"'),
        ("{{break}}", r"\{\{break\}\} outside \{\{range\}\}"),
        ("{{range .}}{{else}}{{else}}{{end}}", "expected end"),
        ("{{1 | 2}}", "non executable command in pipeline stage 2"),
        ("{{/* open", "unclosed comment"),
        ('{{"abc}}', "unterminated quoted string"),
        ("{{3x}}", "bad number syntax"),
        ('{{if 1}}{{define "x"}}{{end}}{{end}}', "unexpected <define>"),
        ("{{call .f}}", 'function "call" is not available'),
        ('{{env "HOME"}}', 'function "env" is not available in this sandbox'),
        ('{{readFile "/etc/passwd"}}', 'function "readFile" is not available'),
    ],
)
def test_parse_errors_name_the_template_and_line(text: str, message: str) -> None:
    with pytest.raises(TemplateParseError, match=message) as caught:
        gotemplate.parse("first line\n" + text, name="t")
    assert str(caught.value).startswith("template: t:2: ")


def test_a_routing_template_as_iter8s_controller_renders_it() -> None:
    """Iter8's release chart writes routing templates over ``.Weights`` for its controller, which
    renders them with Go's builtins only and ``missingkey=zero``."""
    template = (
        "http:\n"
        "{{- if gt (index .Weights 1) 0 }}\n"
        "- route: [{destination: {host: candidate}, weight: {{ index .Weights 1 }}}]\n"
        "{{- end }}\n"
        "- route: [{destination: {host: primary}, weight: {{ index .Weights 0 }}}]"
    )
    parsed = gotemplate.parse(template, name="canary", functions="builtin", missing_key="zero")
    assert parsed.execute({"Weights": [70, 30]}) == (
        "http:\n- route: [{destination: {host: candidate}, weight: 30}]\n"
        "- route: [{destination: {host: primary}, weight: 70}]"
    )
    assert "candidate" not in parsed.execute({"Weights": [100, 0]})
    with pytest.raises(TemplateParseError, match='function "toYaml" not defined'):
        gotemplate.parse("{{ toYaml . }}", functions="builtin")
