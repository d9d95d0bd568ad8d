"""Structural-schema defaulting of custom resources, as kube-apiserver does it on every write.

A CRD's ``openAPIV3Schema`` may give fields a ``default``; the real server fills in every missing
field that has one, at any depth (Gateway API's HTTPRoute gets ``matches: [{path: {type: PathPrefix,
value: /}}]`` in each rule, ``weight: 1``, ``group``/``kind`` in each backendRef, and so on). A routing
object read back from the server therefore holds more than was written, and code that compares what
it wrote with what it reads (or a test that reads the route) must expect it. The fake did not do this
until the real control plane showed the difference.

The server also writes numbers back the way Go encodes them: ``25.0`` comes back as ``25``
(:func:`integral_numbers`).

Only defaulting is done here: no pruning of unknown fields, no validation.
"""

from __future__ import annotations

import copy
from typing import Any


def apply_defaults(value: Any, schema: dict[str, Any]) -> None:
    """Fill in ``value`` (changed in place) with the defaults ``schema`` declares for missing fields."""
    if isinstance(value, dict):
        properties = schema.get("properties") or {}
        for name, sub in properties.items():
            if name not in value and "default" in sub:
                value[name] = copy.deepcopy(sub["default"])
        for name, item in value.items():
            sub = properties.get(name)
            if sub is None:
                extra = schema.get("additionalProperties")
                sub = extra if isinstance(extra, dict) else None
            if sub is not None:
                apply_defaults(item, sub)
    elif isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, dict):
            for item in value:
                apply_defaults(item, items)


def integral_numbers(value: Any) -> Any:
    """``value`` with every float that has an integral value turned into an int, as a stored object reads."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: integral_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [integral_numbers(v) for v in value]
    return value


def version_schema(crd: dict[str, Any], version: str) -> dict[str, Any] | None:
    """The ``openAPIV3Schema`` of ``version`` in a CRD object, or None."""
    for served in (crd.get("spec") or {}).get("versions") or []:
        if served.get("name") == version:
            schema = (served.get("schema") or {}).get("openAPIV3Schema")
            return schema if isinstance(schema, dict) else None
    return None
