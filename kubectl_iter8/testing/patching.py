"""The four PATCH flavours: JSON merge, JSON patch, strategic merge and server-side apply.

Kubernetes picks the flavour from the request's Content-Type, and clients depend on the difference
(``kubectl apply`` sends strategic merge patches with ``$setElementOrder`` directives for built-in
kinds and JSON merge patches for custom resources; controllers send JSON patches and apply
configurations). What the fake does:

* ``application/merge-patch+json``: RFC 7386 exactly (``null`` deletes, lists are replaced).
* ``application/json-patch+json``: RFC 6902 through ``jsonpatch`` (a failing ``test`` is a 422).
* ``application/strategic-merge-patch+json`` (built-in kinds only; custom resources get 415 as
  from kube-apiserver): a merge patch in which lists of objects under the well-known field names
  below are merged by key (``containers``/``env``/``volumes`` by ``name``, ``volumeMounts`` by
  ``mountPath``, ``ports`` by ``containerPort`` or ``port``, ``conditions`` by ``type``,
  ``ownerReferences`` by ``uid``, ...), ``metadata.finalizers`` is merged as a set, and the
  directives ``$patch: replace|delete|merge``, ``$retainKeys``, ``$setElementOrder/<list>`` and
  ``$deleteFromPrimitiveList/<list>`` are honoured. The table is by field name only, not by the
  Go struct tags of each type, so exotic lists (e.g. ``tolerations``) are replaced.
* ``application/apply-patch+yaml``: server-side apply without ``managedFields``: the applied
  configuration is merged like a strategic merge patch (built-ins) or a merge patch (custom
  resources), and fields that the same ``fieldManager`` applied last time but no longer applies are
  removed. Without ``managedFields`` ownership is approximated: when another field manager wrote
  the object last, a non-forced apply conflicts (409) on each leaf it sets to a value other than
  the live one, unless it applied that very value itself last time. Lists are leaves. kubectl's
  move of its client-side apply's fields to its server-side manager is honoured: ``kubectl`` owns
  what ``kubectl-client-side-apply`` wrote.
"""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch

from .apierrors import ApiError

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"

#: Lists of objects merged by key in strategic merge patches (field name -> merge key candidates).
MERGE_KEYS: dict[str, tuple[str, ...]] = {
    "containers": ("name",),
    "initContainers": ("name",),
    "ephemeralContainers": ("name",),
    "env": ("name",),
    "volumes": ("name",),
    "volumeMounts": ("mountPath",),
    "volumeDevices": ("devicePath",),
    "imagePullSecrets": ("name",),
    "hostAliases": ("ip",),
    "ports": ("containerPort", "port"),
    "conditions": ("type",),
    "ownerReferences": ("uid",),
    "topologySpreadConstraints": ("topologyKey",),
    "resourceClaims": ("name",),
}
#: Lists of scalars merged as sets in strategic merge patches.
MERGE_SETS = frozenset({"finalizers"})


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (the result shares unpatched values with ``target``)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def json_patch(target: dict[str, Any], operations: Any) -> dict[str, Any]:
    """RFC 6902 JSON patch; a malformed or failing patch is a 422 as from kube-apiserver."""
    if not isinstance(operations, list):
        raise ApiError(
            400, "BadRequest", "json: cannot unmarshal object into Go value of type jsonpatch.Patch"
        )
    try:
        result = jsonpatch.apply_patch(target, operations)
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
        raise ApiError(
            422, "Invalid", f"the server rejected our request due to an error in our request: {exc}"
        ) from None
    if not isinstance(result, dict):
        raise ApiError(422, "Invalid", "the patch did not produce an object")
    return result


def _item_key(field: str, items: list[Any]) -> str | None:
    candidates = MERGE_KEYS.get(field)
    if not candidates:
        return None
    for key in candidates:
        if any(isinstance(i, dict) and key in i for i in items):
            return key
    return candidates[0]


def _merge_list(field: str, original: list[Any], patch: list[Any], order: list[Any] | None) -> list[Any]:
    if field in MERGE_SETS and all(not isinstance(i, dict) for i in patch):
        result = list(original)
        result.extend(v for v in patch if v not in result)
        return result
    key = _item_key(field, [*original, *patch])
    if key is None or not all(isinstance(i, dict) for i in [*original, *patch]):
        return [_strip_directives(i) for i in patch]
    if any(isinstance(i, dict) and i.get("$patch") == "replace" for i in patch):
        return [_strip_directives(i) for i in patch if i.get("$patch") != "replace"]
    result = list(original)
    for item in patch:
        index = next((n for n, cur in enumerate(result) if cur.get(key) == item.get(key)), None)
        if item.get("$patch") == "delete":
            if index is not None:
                del result[index]
        elif index is None:
            result.append(_strip_directives(item))
        else:
            result[index] = strategic_merge(result[index], item)
    if order:
        wanted = [o.get(key) if isinstance(o, dict) else o for o in order]
        rank = {v: n for n, v in enumerate(wanted)}
        result.sort(key=lambda i: rank.get(i.get(key), len(rank)))
    return result


def _strip_directives(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_directives(v) for k, v in value.items() if not k.startswith("$") and v is not None}
    if isinstance(value, list):
        return [_strip_directives(v) for v in value]
    return value


def strategic_merge(target: Any, patch: Any) -> Any:
    """A strategic merge patch, as far as the fake implements it (see the module docstring).

    The result shares unpatched values with ``target``: copy it before changing it in place.
    """
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    directive = patch.get("$patch")
    if directive == "replace":
        return _strip_directives({k: v for k, v in patch.items() if k != "$patch"})
    if directive == "delete":
        return None
    # Shallow: untouched values are shared with ``target``; the store deep-copies what it keeps.
    result = dict(target) if isinstance(target, dict) else {}
    retain = patch.get("$retainKeys")
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys") or key.startswith("$setElementOrder/"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            if isinstance(result.get(field), list):
                result[field] = [v for v in result[field] if v not in value]
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list) and isinstance(result.get(key), list):
            order = patch.get(f"$setElementOrder/{key}")
            result[key] = _merge_list(key, result[key], value, order)
        elif isinstance(value, list):
            result[key] = [_strip_directives(i) for i in value if not (isinstance(i, dict) and "$patch" in i)]
        else:
            merged = strategic_merge(result.get(key), value)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    return result


def removed_fields(previous: Any, current: Any) -> Any:
    """A merge patch deleting what ``previous`` (an applied configuration) set and ``current`` does not."""
    if not isinstance(previous, dict) or not isinstance(current, dict):
        return None
    out: dict[str, Any] = {}
    for key, value in previous.items():
        if key not in current:
            out[key] = None
        else:
            sub = removed_fields(value, current[key])
            if sub:
                out[key] = sub
    return out


def apply_conflicts(live: Any, applied: Any, previous: Any, path: str = "") -> list[str]:
    """The fields (``.data.k``) a non-forced apply of ``applied`` may not set: see the docstring."""
    if isinstance(applied, dict) and isinstance(live, dict):
        before = previous if isinstance(previous, dict) else {}
        return [
            field
            for key, value in applied.items()
            if key in live
            for field in apply_conflicts(live[key], value, before.get(key), f"{path}.{key}")
        ]
    if applied == live or (previous == live and previous is not None):
        return []
    return [path]


def apply_patch(
    live: dict[str, Any] | None, applied: dict[str, Any], previous: dict[str, Any] | None, *, builtin: bool
) -> dict[str, Any]:
    """Server-side apply: merge ``applied`` into ``live``, dropping fields the manager stopped applying."""
    base = copy.deepcopy(live) if live is not None else {}
    if previous is not None:
        base = merge_patch(base, removed_fields(previous, applied) or {})
    merged = strategic_merge(base, applied) if builtin else merge_patch(base, applied)
    if not isinstance(merged, dict):
        raise ApiError(400, "BadRequest", "an applied configuration must be an object")
    return merged
