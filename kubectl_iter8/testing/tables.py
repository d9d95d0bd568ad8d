"""Server-side printing: ``meta.k8s.io/v1`` Tables, so ``kubectl get`` shows the usual columns.

kubectl asks for ``Accept: application/json;as=Table;v=v1;g=meta.k8s.io`` and prints whatever
columns the server returns (otherwise only NAME and AGE). The fake renders the printer columns a
CRD declares (``additionalPrinterColumns``, JSONPath subset: dotted fields, ``[n]`` and
``[?(@.field=="value")]`` filters) and, for the common built-ins, the columns kube-apiserver's
printers show (deployments, pods, jobs, configmaps, secrets, namespaces, services,
serviceaccounts, events, leases, CRDs); every other kind gets NAME and AGE.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from .discovery import ResourceInfo

Obj = dict[str, Any]
Column = tuple[str, str, int, Callable[[Obj], Any]]  # name, type, priority, cell


def human_duration(seconds: float) -> str:
    """apimachinery's ``HumanDuration``: 45s, 4m30s, 35m, 5h12m, 30h, 6d3h, 120d, 3y."""
    s = max(0, int(seconds))
    minutes, hours, days = s // 60, s // 3600, s // 86400
    if s < 120:
        return f"{s}s"
    if minutes < 10:
        return f"{minutes}m{s % 60}s" if s % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 192:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    if days < 730:
        return f"{days}d"
    return f"{days // 365}y"


def age(timestamp: Any) -> str:
    if not isinstance(timestamp, str) or not timestamp:
        return "<unknown>"
    try:
        when = datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return "<unknown>"
    return human_duration((datetime.now(UTC) - when).total_seconds())


_STEP_RE = re.compile(
    r"\.([A-Za-z0-9_-]+)|\[(\d+)\]|\[\?\(@\.([A-Za-z0-9_.-]+)\s*==\s*['\"]([^'\"]*)['\"]\)\]|\[\*\]"
)


def jsonpath(obj: Any, path: str) -> Any:
    """The first value at a simple JSONPath (``.status.conditions[?(@.type=="Ready")].status``)."""
    path = path.strip()
    if path.startswith("{") and path.endswith("}"):
        path = path[1:-1]
    values = [obj]
    pos = 0
    while pos < len(path):
        m = _STEP_RE.match(path, pos)
        if not m:
            return None
        pos = m.end()
        nxt: list[Any] = []
        for v in values:
            if m.group(1) is not None and isinstance(v, dict) and m.group(1) in v:
                nxt.append(v[m.group(1)])
            elif m.group(2) is not None and isinstance(v, list) and int(m.group(2)) < len(v):
                nxt.append(v[int(m.group(2))])
            elif m.group(3) is not None and isinstance(v, list):
                nxt.extend(
                    i for i in v if isinstance(i, dict) and str(jsonpath(i, "." + m.group(3))) == m.group(4)
                )
            elif m.group(0) == "[*]" and isinstance(v, list):
                nxt.extend(v)
        values = nxt
    return values[0] if values else None


def _meta(obj: Obj, key: str) -> Any:
    return (obj.get("metadata") or {}).get(key)


def _status(obj: Obj) -> Obj:
    return obj.get("status") or {}


def _spec(obj: Obj) -> Obj:
    return obj.get("spec") or {}


def _condition(obj: Obj, kind: str) -> str | None:
    for c in _status(obj).get("conditions") or []:
        if c.get("type") == kind:
            return str(c.get("status"))
    return None


def _job_status(obj: Obj) -> str:
    for kind, label in (("Complete", "Complete"), ("Failed", "Failed"), ("Suspended", "Suspended")):
        if _condition(obj, kind) == "True":
            return label
    return "Running"


def _job_duration(obj: Obj) -> str:
    start, end = _status(obj).get("startTime"), _status(obj).get("completionTime")
    if not start:
        return ""
    try:
        t0 = datetime.strptime(start, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        t1 = datetime.strptime(end, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC) if end else datetime.now(UTC)
    except ValueError:
        return ""
    return human_duration((t1 - t0).total_seconds())


def _pod_ready(obj: Obj) -> str:
    containers = _spec(obj).get("containers") or []
    statuses = _status(obj).get("containerStatuses") or []
    return f"{sum(1 for s in statuses if s.get('ready'))}/{len(containers)}"


def _ports(obj: Obj) -> str:
    ports = _spec(obj).get("ports") or []
    return ",".join(f"{p.get('port')}/{p.get('protocol', 'TCP')}" for p in ports) or "<none>"


def _containers(obj: Obj, key: str) -> str:
    containers = ((_spec(obj).get("template") or {}).get("spec") or {}).get("containers") or []
    return ",".join(str(c.get(key, "")) for c in containers)


def _selector(obj: Obj) -> str:
    labels = (_spec(obj).get("selector") or {}).get("matchLabels") or {}
    return ",".join(f"{k}={v}" for k, v in labels.items())


def _involved(obj: Obj) -> str:
    ref = obj.get("involvedObject") or obj.get("regarding") or {}
    return f"{str(ref.get('kind', '')).lower()}/{ref.get('name', '')}"


_NAME: Column = ("Name", "string", 0, lambda o: _meta(o, "name"))
_AGE: Column = ("Age", "string", 0, lambda o: age(_meta(o, "creationTimestamp")))

BUILTIN_COLUMNS: dict[str, list[Column]] = {
    "deployments.apps": [
        _NAME,
        (
            "Ready",
            "string",
            0,
            lambda o: f"{_status(o).get('readyReplicas', 0)}/{_spec(o).get('replicas', 1)}",
        ),
        ("Up-to-date", "integer", 0, lambda o: _status(o).get("updatedReplicas", 0)),
        ("Available", "integer", 0, lambda o: _status(o).get("availableReplicas", 0)),
        _AGE,
        ("Containers", "string", 1, lambda o: _containers(o, "name")),
        ("Images", "string", 1, lambda o: _containers(o, "image")),
        ("Selector", "string", 1, _selector),
    ],
    "pods": [
        _NAME,
        ("Ready", "string", 0, _pod_ready),
        ("Status", "string", 0, lambda o: _status(o).get("phase", "Pending")),
        ("Restarts", "string", 0, lambda o: "0"),
        _AGE,
        ("IP", "string", 1, lambda o: _status(o).get("podIP", "<none>")),
        ("Node", "string", 1, lambda o: _spec(o).get("nodeName", "<none>")),
    ],
    "jobs.batch": [
        _NAME,
        ("Status", "string", 0, _job_status),
        (
            "Completions",
            "string",
            0,
            lambda o: f"{_status(o).get('succeeded', 0)}/{_spec(o).get('completions', 1)}",
        ),
        ("Duration", "string", 0, _job_duration),
        _AGE,
    ],
    "configmaps": [
        _NAME,
        ("Data", "integer", 0, lambda o: len(o.get("data") or {}) + len(o.get("binaryData") or {})),
        _AGE,
    ],
    "secrets": [
        _NAME,
        ("Type", "string", 0, lambda o: o.get("type", "Opaque")),
        ("Data", "integer", 0, lambda o: len(o.get("data") or {})),
        _AGE,
    ],
    "namespaces": [_NAME, ("Status", "string", 0, lambda o: _status(o).get("phase", "Active")), _AGE],
    "services": [
        _NAME,
        ("Type", "string", 0, lambda o: _spec(o).get("type", "ClusterIP")),
        ("Cluster-IP", "string", 0, lambda o: _spec(o).get("clusterIP", "<none>")),
        ("External-IP", "string", 0, lambda o: "<none>"),
        ("Port(s)", "string", 0, _ports),
        _AGE,
    ],
    "serviceaccounts": [_NAME, ("Secrets", "integer", 0, lambda o: len(o.get("secrets") or [])), _AGE],
    "events": [
        ("Last Seen", "string", 0, lambda o: age(o.get("lastTimestamp") or _meta(o, "creationTimestamp"))),
        ("Type", "string", 0, lambda o: o.get("type", "Normal")),
        ("Reason", "string", 0, lambda o: o.get("reason", "")),
        ("Object", "string", 0, _involved),
        ("Message", "string", 0, lambda o: o.get("message", "")),
    ],
    "leases.coordination.k8s.io": [
        _NAME,
        ("Holder", "string", 0, lambda o: _spec(o).get("holderIdentity", "")),
        _AGE,
    ],
    "customresourcedefinitions.apiextensions.k8s.io": [
        _NAME,
        ("Created At", "date", 0, lambda o: _meta(o, "creationTimestamp")),
    ],
}


def columns(info: ResourceInfo, version: str, crd: Obj | None) -> list[Column]:
    """The columns of ``info`` (from its CRD's ``additionalPrinterColumns`` for custom resources)."""
    if info.builtin:
        return BUILTIN_COLUMNS.get(info.key, [_NAME, _AGE])
    spec_versions = ((crd or {}).get("spec") or {}).get("versions") or []
    declared = next(
        (v.get("additionalPrinterColumns") for v in spec_versions if v.get("name") == version), None
    )
    if not declared:
        return [_NAME, _AGE]
    out: list[Column] = [_NAME]
    for col in declared:
        path, kind = col.get("jsonPath", ""), col.get("type", "string")

        def cell(o: Obj, path: str = path, kind: str = kind) -> Any:
            # As apiextensions-apiserver: missing -> null, dates -> age, lists and maps -> JSON.
            value = jsonpath(o, path)
            if value is None:
                return None
            if kind == "date":
                return age(value)
            if isinstance(value, (list, dict)):
                return json.dumps(value, separators=(",", ":"))
            return value

        out.append(
            (col.get("name", path), "string" if kind == "date" else kind, int(col.get("priority", 0)), cell)
        )
    if not any(c.get("name", "").lower() == "age" for c in declared):
        out.append(_AGE)
    return out


def table(
    info: ResourceInfo,
    version: str,
    crd: Obj | None,
    items: list[Obj],
    resource_version: str,
    include_object: str,
    *,
    headers: bool = True,
) -> Obj:
    """A ``Table`` of ``items`` (``include_object``: None, Object or PartialObjectMetadata)."""
    cols = columns(info, version, crd)
    rows: list[Obj] = []
    for item in items:
        row: Obj = {"cells": [c[3](item) for c in cols]}
        if include_object == "Object":
            row["object"] = item
        elif include_object != "None":
            row["object"] = {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": item.get("metadata") or {},
            }
        rows.append(row)
    definitions = [
        {
            "name": name,
            "type": kind,
            "format": "name" if name == "Name" else "",
            "description": "",
            "priority": prio,
        }
        for name, kind, prio, _ in cols
    ]
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": definitions if headers else [],
        "rows": rows,
    }
