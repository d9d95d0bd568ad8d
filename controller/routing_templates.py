"""Iter8 v1.x routing templates: a routemap's ``routingTemplates``, rendered as Iter8's controller did.

Iter8's ``release`` chart writes routemaps whose ``strSpec`` carries, instead of a ``routing``
section for a router plugin, Go templates by name (``{name: {gvrShort, template}}``), each rendering
one routing object over the routemap and its weights (``{{ index .Weights 1 }}``). Iter8's controller
parsed each with ``missingkey=zero`` and Go's builtin functions only (no sprig), executed it over the
routemap, and server-side applied the one object it gave. Here the same templates run in the
project's Go engine (:mod:`kubectl_iter8.gotemplate`), bounded (2 s, 256 KiB of output), and what
they render goes through the same gate as a router's output (:func:`.plan.desired_objects`): only
``templateKinds``, stamped, ownership-checked, pruned when no longer rendered.

Kept in the controller rather than as a router plugin because the templates are the routemap's
own, not a ``routing.router`` choice, and the controller may not import the plugins.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubectl_iter8 import boundedyaml, gotemplate
from kubectl_iter8.registry import ResourceType, RoutingKind, kind_name, kind_of
from kubectl_iter8.routemap import RouteMap, RoutingState

from .errors import PermanentError
from .manifests import guess_resource

#: The sandbox of one routing template (the custom-metrics and notify templates have their own).
LIMITS = gotemplate.Limits(seconds=2, output=256 * 1024)

#: Routing kinds Iter8's controller configuration knew by short name: (API group, resource).
#: A configured resource type of the same short name wins (``resourceTypes``).
ROUTING_SHORT_NAMES: dict[str, tuple[str, str]] = {
    "vs": ("networking.istio.io", "virtualservices"),
    "dr": ("networking.istio.io", "destinationrules"),
    "se": ("networking.istio.io", "serviceentries"),
    "httproute": ("gateway.networking.k8s.io", "httproutes"),
    "grpcroute": ("gateway.networking.k8s.io", "grpcroutes"),
}

Obj = dict[str, Any]


def _fields(type_name: str, values: dict[str, Any]) -> gotemplate.GoStruct:
    return gotemplate.GoStruct(type_name, values, {key: key for key in values})


def template_data(routemap: RouteMap, state: RoutingState) -> gotemplate.GoStruct:
    """What the templates see: Iter8's routemap struct, by its Go field names.

    ``.Weights`` (the controller's weights, primary first: an unavailable version's is 0, and the
    primary's 1 when all would be 0), ``.Versions`` (each ``.Resources`` with ``.GVRShort``,
    ``.Name``, ``.Namespace``, and ``.Weight``, the routemap's), ``.Name``, ``.Namespace``,
    ``.Labels``, ``.UID`` and ``.GetName``/``.GetNamespace`` (Iter8's accessor methods), and
    ``.RoutingTemplates``.
    """
    versions = [
        _fields(
            "controllers.version",
            {
                "Resources": [
                    _fields(
                        "controllers.resource",
                        {"GVRShort": ref.gvr_short, "Name": ref.name, "Namespace": ref.namespace},
                    )
                    for ref in version.resources
                ],
                "Weight": version.weight,
                "Signature": None,
            },
        )
        for version in routemap.spec.versions
    ]
    templates = {
        name: _fields("controllers.routingTemplate", {"GVRShort": spec.gvr_short, "Template": spec.template})
        for name, spec in (routemap.spec.routing_templates or {}).items()
    }
    return _fields(
        "*controllers.routemap",
        {
            "Weights": list(state.weights),
            "Versions": versions,
            "RoutingTemplates": templates,
            "Name": routemap.name,
            "Namespace": routemap.namespace,
            "Labels": dict(routemap.labels),
            "UID": routemap.uid,
            "GetName": routemap.name,
            "GetNamespace": routemap.namespace,
        },
    )


def _target(gvr_short: str, types: Mapping[str, ResourceType]) -> tuple[str, str] | None:
    """(group, resource) a template's ``gvrShort`` names: a configured type, else a routing kind."""
    rtype = types.get(gvr_short)
    if rtype is not None:
        return rtype.group, rtype.resource
    return ROUTING_SHORT_NAMES.get(gvr_short)


def render(
    routemap: RouteMap,
    state: RoutingState,
    allowed: frozenset[RoutingKind],
    types: Mapping[str, ResourceType],
) -> list[tuple[str, Obj]]:
    """(template name, object) for every object the routemap's routing templates render.

    Templates run in name order (Iter8 walked a Go map, in no set order). An empty rendering is
    no object, as in Iter8; a rendering may hold several YAML documents.

    :raises PermanentError: a template that fails, renders something that is not a Kubernetes
        object, names an unknown ``gvrShort`` or renders another kind than it, or renders a kind
        not in ``allowed``; two templates that render the same object.
    """
    where = f'routemap "{routemap.namespace}/{routemap.name}"'
    data = template_data(routemap, state)
    out: list[tuple[str, Obj]] = []
    seen: dict[tuple[str, str], str] = {}
    for name, spec in sorted((routemap.spec.routing_templates or {}).items()):
        source = f"{where}: routingTemplates.{name}"
        target = _target(spec.gvr_short, types)
        if target is None:
            raise PermanentError(boundedyaml.truncate(f"{source}: unknown gvrShort {spec.gvr_short!r}"))
        try:
            template = gotemplate.parse(spec.template, name=name, functions="builtin", missing_key="zero")
            text = template.execute(data, LIMITS)
        except gotemplate.TemplateError as exc:
            raise PermanentError(boundedyaml.truncate(f"{source}: {exc}")) from None
        try:
            documents = [doc for doc in boundedyaml.load_all(text) if doc is not None]
        except boundedyaml.BoundedYAMLError as exc:
            raise PermanentError(boundedyaml.truncate(f"{source} did not render valid YAML: {exc}")) from None
        for doc in documents:
            obj = _checked(doc, source)
            group, kind = kind_of(obj)
            if (group, kind) not in allowed:
                may = ", ".join(sorted(kind_name(k) for k in allowed)) or "nothing"
                raise PermanentError(
                    f"{source} rendered a {kind_name((group, kind))}; it may write only: {may}"
                )
            if (group, guess_resource(kind)) != target:
                named = f"{target[1]}.{target[0]}" if target[0] else target[1]
                what = kind_name((group, kind))
                raise PermanentError(f"{source} rendered a {what}; its gvrShort {spec.gvr_short} is {named}")
            ident = (kind_name((group, kind)), str(obj["metadata"]["name"]))
            if ident in seen:
                raise PermanentError(
                    f"{source} renders {ident[0]} {ident[1]!r}, as routingTemplates.{seen[ident]} does"
                )
            seen[ident] = name
            out.append((name, obj))
    return out


def _checked(doc: Any, source: str) -> Obj:
    if not isinstance(doc, dict):
        raise PermanentError(f"{source} rendered a {type(doc).__name__}, not a Kubernetes object")
    meta = doc.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    missing = [key for key in ("apiVersion", "kind") if not isinstance(doc.get(key), str) or not doc[key]]
    if not isinstance(name, str) or not name:
        missing.append("metadata.name")
    if missing:
        raise PermanentError(f"{source} rendered an object without {', '.join(missing)}")
    return doc
