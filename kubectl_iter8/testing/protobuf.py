"""Decoding of the few protobuf request bodies kubectl sends, so ``kubectl create <kind>`` works.

kubectl's typed generators (``kubectl create namespace|configmap|secret generic|serviceaccount|
role|rolebinding|clusterrole|clusterrolebinding``) and ``kubectl auth can-i`` send their object as
``application/vnd.kubernetes.protobuf``: the magic ``k8s\\0`` followed by a ``runtime.Unknown``
envelope (type meta plus the typed message). A full decoder would need every type's ``.proto``
schema; these kinds have small ones, so their field numbers are listed here and everything else
(e.g. ``kubectl create deployment``) is answered 415 as before. Responses are always JSON, which
kubectl accepts.
"""

from __future__ import annotations

import base64
from typing import Any

from .apierrors import ApiError

MAGIC = b"k8s\x00"

# A field is (json name, type, repeated); a type is a scalar name or a message schema name.
Field = tuple[str, str, bool]
_S, _B, _I, _BOOL, _MSS, _MSB = "string", "bytes", "int", "bool", "map<string,string>", "map<string,bytes>"

SCHEMAS: dict[str, dict[int, Field]] = {
    "Unknown": {1: ("typeMeta", "TypeMeta", False), 2: ("raw", _B, False)},
    "TypeMeta": {1: ("apiVersion", _S, False), 2: ("kind", _S, False)},
    "ObjectMeta": {
        1: ("name", _S, False),
        2: ("generateName", _S, False),
        3: ("namespace", _S, False),
        5: ("uid", _S, False),
        6: ("resourceVersion", _S, False),
        11: ("labels", _MSS, False),
        12: ("annotations", _MSS, False),
        13: ("ownerReferences", "OwnerReference", True),
        14: ("finalizers", _S, True),
    },
    "OwnerReference": {
        1: ("kind", _S, False),
        3: ("name", _S, False),
        4: ("uid", _S, False),
        5: ("apiVersion", _S, False),
        6: ("controller", _BOOL, False),
        7: ("blockOwnerDeletion", _BOOL, False),
    },
    "Namespace": {1: ("metadata", "ObjectMeta", False), 2: ("spec", "NamespaceSpec", False)},
    "NamespaceSpec": {1: ("finalizers", _S, True)},
    "ConfigMap": {
        1: ("metadata", "ObjectMeta", False),
        2: ("data", _MSS, False),
        3: ("binaryData", _MSB, False),
        4: ("immutable", _BOOL, False),
    },
    "Secret": {
        1: ("metadata", "ObjectMeta", False),
        2: ("data", _MSB, False),
        3: ("type", _S, False),
        4: ("stringData", _MSS, False),
        5: ("immutable", _BOOL, False),
    },
    "ServiceAccount": {
        1: ("metadata", "ObjectMeta", False),
        2: ("secrets", "ObjectReference", True),
        3: ("imagePullSecrets", "LocalObjectReference", True),
        4: ("automountServiceAccountToken", _BOOL, False),
    },
    "ObjectReference": {
        1: ("kind", _S, False),
        2: ("namespace", _S, False),
        3: ("name", _S, False),
        4: ("uid", _S, False),
        5: ("apiVersion", _S, False),
    },
    "LocalObjectReference": {1: ("name", _S, False)},
    "SelfSubjectAccessReview": {
        1: ("metadata", "ObjectMeta", False),
        2: ("spec", "SelfSubjectAccessReviewSpec", False),
    },
    "SelfSubjectAccessReviewSpec": {
        1: ("resourceAttributes", "ResourceAttributes", False),
        2: ("nonResourceAttributes", "NonResourceAttributes", False),
    },
    "ResourceAttributes": {
        1: ("namespace", _S, False),
        2: ("verb", _S, False),
        3: ("group", _S, False),
        4: ("version", _S, False),
        5: ("resource", _S, False),
        6: ("subresource", _S, False),
        7: ("name", _S, False),
    },
    "NonResourceAttributes": {1: ("path", _S, False), 2: ("verb", _S, False)},
    "Role": {1: ("metadata", "ObjectMeta", False), 2: ("rules", "PolicyRule", True)},
    "ClusterRole": {1: ("metadata", "ObjectMeta", False), 2: ("rules", "PolicyRule", True)},
    "PolicyRule": {
        1: ("verbs", _S, True),
        2: ("apiGroups", _S, True),
        3: ("resources", _S, True),
        4: ("resourceNames", _S, True),
        5: ("nonResourceURLs", _S, True),
    },
    "RoleBinding": {
        1: ("metadata", "ObjectMeta", False),
        2: ("subjects", "Subject", True),
        3: ("roleRef", "RoleRef", False),
    },
    "ClusterRoleBinding": {
        1: ("metadata", "ObjectMeta", False),
        2: ("subjects", "Subject", True),
        3: ("roleRef", "RoleRef", False),
    },
    "Subject": {
        1: ("kind", _S, False),
        2: ("apiGroup", _S, False),
        3: ("name", _S, False),
        4: ("namespace", _S, False),
    },
    "RoleRef": {1: ("apiGroup", _S, False), 2: ("kind", _S, False), 3: ("name", _S, False)},
}


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data):
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, pos


def _fields(data: bytes) -> list[tuple[int, int | bytes]]:
    out: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
            out.append((number, value))
        elif wire == 2:
            size, pos = _varint(data, pos)
            if pos + size > len(data):
                raise ValueError("truncated field")
            out.append((number, data[pos : pos + size]))
            pos += size
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
    return out


def _decode(schema: str, data: bytes) -> dict[str, Any]:
    fields = SCHEMAS[schema]
    out: dict[str, Any] = {}
    for number, raw in _fields(data):
        if number not in fields:
            continue
        name, kind, repeated = fields[number]
        value: Any
        if kind in (_MSS, _MSB):
            assert isinstance(raw, bytes)
            entry = dict(_fields(raw))
            key = entry.get(1, b"")
            val = entry.get(2, b"")
            assert isinstance(key, bytes)
            assert isinstance(val, bytes)
            text = base64.b64encode(val).decode() if kind == _MSB else val.decode()
            out.setdefault(name, {})[key.decode()] = text
            continue
        if kind == _S:
            assert isinstance(raw, bytes)
            value = raw.decode()
        elif kind in (_B, _I):
            value = raw
        elif kind == _BOOL:
            value = bool(raw)
        else:
            assert isinstance(raw, bytes)
            value = _decode(kind, raw)
        if repeated:
            out.setdefault(name, []).append(value)
        elif value not in ("", 0, False, {}, b""):
            out[name] = value
    return out


def decode(body: bytes) -> dict[str, Any]:
    """The JSON form of a protobuf request body; 415 for kinds the fake has no schema for."""
    if not body.startswith(MAGIC):
        raise ApiError(415, "UnsupportedMediaType", "the protobuf body lacks the k8s\\0 prefix")
    try:
        envelope = _decode("Unknown", body[len(MAGIC) :])
        type_meta = envelope.get("typeMeta") or {}
        kind = type_meta.get("kind", "")
        if kind not in SCHEMAS or kind in ("Unknown", "TypeMeta", "ObjectMeta"):
            raise ApiError(
                415,
                "UnsupportedMediaType",
                f"the fake cannot decode protobuf {kind or 'bodies'} - send JSON (kubectl apply -f) instead",
            )
        obj = _decode(kind, envelope.get("raw", b""))
    except (ValueError, UnicodeDecodeError, AssertionError) as exc:
        raise ApiError(400, "BadRequest", f"cannot decode the protobuf body: {exc}") from None
    return {"apiVersion": type_meta.get("apiVersion", ""), "kind": kind, **obj}
