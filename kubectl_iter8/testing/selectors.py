"""Label and field selectors, parsed from the query string and applied to stored objects.

Lists, watches and deletecollection filter with them, and a watch must also turn a MODIFIED event
into ADDED or DELETED when an object starts or stops matching, so the fake parses each selector
once into a predicate.

Label selectors support the full syntax (``a=b``, ``a==b``, ``a!=b``, ``a in (x,y)``,
``a notin (x,y)``, ``a``, ``!a``). Field selectors support ``=``, ``==`` and ``!=`` on any dotted
path (``metadata.name``, ``metadata.namespace``, ``status.phase``, ``spec.nodeName``, ...); unlike
kube-apiserver, the fake does not reject paths a resource does not index.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .apierrors import bad_request

Predicate = Callable[[dict[str, Any]], bool]

_SET_RE = re.compile(r"^\s*(!?)\s*([A-Za-z0-9_./-]+)\s+(in|notin)\s+\((.*)\)\s*$")
_EQ_RE = re.compile(r"^\s*([A-Za-z0-9_./-]+)\s*(==|!=|=)\s*([A-Za-z0-9_.-]*)\s*$")
_EXISTS_RE = re.compile(r"^\s*(!?)\s*([A-Za-z0-9_./-]+)\s*$")


def _split_terms(text: str) -> list[str]:
    """Split on commas that are not inside ``( )``."""
    terms: list[str] = []
    depth = 0
    current = ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            terms.append(current)
            current = ""
        else:
            current += ch
    terms.append(current)
    return [t for t in terms if t.strip()]


def _labels(obj: dict[str, Any]) -> dict[str, str]:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return {str(k): str(v) for k, v in labels.items()}


def _label_term(term: str) -> Predicate:
    m = _SET_RE.match(term)
    if m and not m.group(1):
        key, op = m.group(2), m.group(3)
        values = {v.strip() for v in m.group(4).split(",") if v.strip()}
        if op == "in":
            return lambda o: _labels(o).get(key) in values
        return lambda o: _labels(o).get(key) not in values
    m = _EQ_RE.match(term)
    if m:
        key, op, value = m.group(1), m.group(2), m.group(3)
        if op == "!=":
            return lambda o: _labels(o).get(key) != value
        return lambda o: _labels(o).get(key) == value
    m = _EXISTS_RE.match(term)
    if m:
        negate, key = bool(m.group(1)), m.group(2)
        return lambda o: (key in _labels(o)) != negate
    raise bad_request(f"unable to parse requirement: found '{term.strip()}', expected a label selector term")


def label_selector(text: str | None) -> Predicate:
    """A predicate for a ``labelSelector`` query value (``None`` or empty matches everything)."""
    if not text:
        return lambda _o: True
    preds = [_label_term(t) for t in _split_terms(text)]
    return lambda o: all(p(o) for p in preds)


def field_value(obj: dict[str, Any], path: str) -> str | None:
    """The value at a dotted path, rendered as a field selector compares it (``None`` if absent)."""
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    if isinstance(cur, bool):
        return "true" if cur else "false"
    if isinstance(cur, (dict, list)) or cur is None:
        return None
    return str(cur)


def field_selector(text: str | None) -> Predicate:
    """A predicate for a ``fieldSelector`` query value (``None`` or empty matches everything)."""
    if not text:
        return lambda _o: True
    preds: list[Predicate] = []
    for term in _split_terms(text):
        m = _EQ_RE.match(term)
        if not m:
            raise bad_request(f'invalid field selector: "{term.strip()}"')
        path, op, value = m.group(1), m.group(2), m.group(3)

        def pred(o: dict[str, Any], path: str = path, op: str = op, value: str = value) -> bool:
            actual = field_value(o, path) or ""
            return actual != value if op == "!=" else actual == value

        preds.append(pred)
    return lambda o: all(p(o) for p in preds)


def match_labels(selector: dict[str, Any] | None) -> str:
    """A ``LabelSelector`` object (``matchLabels`` + ``matchExpressions``) as selector text."""
    if not selector:
        return ""
    terms = [f"{k}={v}" for k, v in (selector.get("matchLabels") or {}).items()]
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In":
            terms.append(f"{key} in ({','.join(values)})")
        elif op == "NotIn":
            terms.append(f"{key} notin ({','.join(values)})")
        elif op == "Exists":
            terms.append(key)
        elif op == "DoesNotExist":
            terms.append(f"!{key}")
    return ",".join(terms)
