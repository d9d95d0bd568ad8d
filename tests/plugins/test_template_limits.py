"""The template router's sandbox limits: a routemap's template cannot hang or exhaust the controller."""

from __future__ import annotations

import time

import pytest
from kubectl_iter8.plugins import sandbox
from kubectl_iter8.plugins.common import RouteError
from test_template_router import VIRTUAL_SERVICE, render

#: Each of these took minutes, gigabytes, or for ever (holding the GIL) before the limits.
HOSTILE = {
    "huge power": "{% set n = 9 %}{{ n ** (n ** n) }}",
    "string repetition": "{{ 'x' * 10 ** 9 }}",
    "list repetition": "{{ [1] * 10 ** 9 }}",
    "large range": "{% for i in range(99999) %}{% endfor %}",
    "concatenation": "{% set a = 'x' * 200000 %}{{ a ~ a }}",
    "center filter": "{{ 'x' | center(10 ** 9) }}",
    "padding method": "{{ 'x'.rjust(10 ** 9) }}",
    "format width": "{{ '{:>999999999}'.format(1) }}",
    "printf width": "{{ '%999999999d' % 1 }}",
    "format filter width": "{{ '%999999999d' | format(1) }}",
    "replace growth": "{{ ('x' * 100000) | replace('x', 'yyyyyyyyyy') }}",
    "join growth": "{{ (['x' * 100000] * 100) | join }}",
    "output size": "{% for i in range(9999) %}{{ 'x' * 1000 }}{% endfor %}",
}


@pytest.mark.parametrize("template", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_templates_fail_fast_with_a_short_error(template: str) -> None:
    started = time.monotonic()
    with pytest.raises(
        RouteError, match=r"templates\[0\]: (TemplateLimitError|SecurityError|UndefinedError)"
    ) as e:
        render([template])
    assert time.monotonic() - started < 1.0
    assert len(str(e.value)) < 1100


def test_a_long_render_is_stopped_at_the_deadline() -> None:
    nested = "{% for i in range(9999) %}{% for j in range(9999) %}{% endfor %}{% endfor %}"
    started = time.monotonic()
    with pytest.raises(sandbox.TemplateLimitError, match="longer than 0.2 s"):
        sandbox.render(nested, {}, max_seconds=0.2)
    assert time.monotonic() - started < 1.0


def test_namespace_attributes_cannot_grow_beyond_the_limit() -> None:
    # (Routemap templates see the routemap's namespace as `namespace`; other users of the sandbox
    # keep Jinja2's namespace(), the one mutable store, bounded too.)
    doubling = (
        "{% set ns = namespace(s='x') %}{% for i in range(60) %}{% set ns.s = ns.s + ns.s %}{% endfor %}"
    )
    with pytest.raises(sandbox.TemplateLimitError, match="a sum"):
        sandbox.render(doubling, {})
    with pytest.raises(sandbox.TemplateLimitError, match="namespace attribute 's'"):
        sandbox.render(
            "{% set ns = namespace() %}{% set ns.s = s %}",
            {"s": "x" * (sandbox.MAX_SIZE + 1)},
        )


def test_the_deadline_restores_the_previous_trace_function() -> None:
    import sys

    before = sys.gettrace()
    sandbox.render("{% for i in range(3) %}{{ i }}{% endfor %}", {})
    assert sys.gettrace() is before


def test_ordinary_templates_still_work_within_the_limits() -> None:
    text = sandbox.render(
        "{% for i in range(3) %}{{ i ~ '-' }}{% endfor %}{{ 'a-b' | replace('-', '_') }}"
        "{{ [1, 2] | join(',') }}{{ '%3d' | format(7) }}{{ 'ab'.center(4) }}{{ 2 ** 10 }}"
        "{% set ns = namespace(x=1) %}{% set ns.x = ns.x + 1 %}{{ ns.x }}",
        {},
    )
    assert text == "0-1-2-a_b1,2  7 ab 10242"
    (vs,) = render([{"gvrShort": "vs", "template": VIRTUAL_SERVICE}], host="h", port=80)
    assert vs["kind"] == "VirtualService"


def test_rendered_yaml_is_parsed_with_limits() -> None:
    laughs = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    )
    with pytest.raises(RouteError, match="did not render valid YAML: YAML expands to more than"):
        render([laughs])
