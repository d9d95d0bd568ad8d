"""The ``template`` router: user-supplied Jinja2 templates, for any router without a plugin.

Each template renders zero or more Kubernetes objects as YAML (documents separated by ``---``; an
empty output renders nothing, as in Iter8). Templates are inline only (the controller reads no
files for a routemap) and run in a bounded Jinja2 sandbox (:mod:`.sandbox`: time, size and range
limits) with ``StrictUndefined``, so a misspelt name is an error rather than an empty string. The
kinds they may render are the controller's to decide (``kinds = None``; see the registry). The
data they see:

``name``, ``namespace``, ``labels``, ``strategy``
    the routemap's.
``versions``
    one mapping per version, primary first: ``index``, ``name`` (the version label), ``resources``
    (``gvrShort``, ``name``, ``namespace``: the routemap's when the resource has none), ``weight``
    (the controller's, 0 when unavailable), ``available``, ``serving`` (may receive traffic),
    ``share`` (its blue-green percentage, the shares adding up to 100), ``match``,
    ``configuredWeight`` (the routemap's ``weight``).
``weights``, ``available``, ``shares``
    the same per-version values as lists.
``weighted``
    indices of the versions in a blue-green split (the primary alone when nothing serves).
``candidates``
    indices of the serving candidates (canary match routes, mirrors).
``values``
    the router option ``values``, as given.
``percentages(weights)``, ``resource(index, gvrShort)``
    helpers: whole percentages adding up to 100; the name of a version's first resource of a type.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from kubectl_iter8.routemap import RouteMap, RoutingState

from .common import (
    RouteError,
    backend_name,
    blue_green_shares,
    check_state,
    percentages,
    serves,
    serving_candidates,
    strategy_of,
    validate_config,
)

if TYPE_CHECKING:
    from .sandbox import BoundedEnvironment

#: The kind a template's ``gvrShort`` promises, for the short names this router knows.
KNOWN_KINDS = {
    "vs": "VirtualService",
    "dr": "DestinationRule",
    "se": "ServiceEntry",
    "httproute": "HTTPRoute",
    "grpcroute": "GRPCRoute",
    "svc": "Service",
    "cm": "ConfigMap",
    "deploy": "Deployment",
    "isvc": "InferenceService",
}


def environment() -> BoundedEnvironment:
    from .sandbox import environment as bounded

    return bounded()


class TemplateSpec(BaseModel):
    """One template, inline: the controller renders routemaps from anyone and reads no files."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    #: The resource type of the objects rendered; their kind is checked for the short names known here.
    gvr_short: str | None = Field(default=None, alias="gvrShort", min_length=1)
    #: The Jinja2 source.
    template: str

    @model_validator(mode="before")
    @classmethod
    def _inline(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"template": data}
        if isinstance(data, dict) and "file" in data:
            # A path would be read with the controller's rights (/dev/zero, its token), and the
            # error would tell which files exist: templates are inline only.
            raise ValueError("file is not supported: give the template inline (template: ...)")
        return data

    @field_validator("template")
    @classmethod
    def _compiles(cls, text: str) -> str:
        from jinja2 import TemplateSyntaxError

        try:
            environment().parse(text)
        except TemplateSyntaxError as exc:
            raise ValueError(f"template syntax error on line {exc.lineno}: {exc.message}") from None
        return text


class TemplateConfig(BaseModel):
    """The ``routing`` options of the ``template`` router."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    #: The templates, each an inline Jinja2 string or a mapping ``{gvrShort?, template}``.
    templates: list[TemplateSpec] = Field(min_length=1)
    #: Anything the templates want, available to them as ``values``.
    values: dict[str, Any] = Field(default_factory=dict)


def template_data(routemap: RouteMap, state: RoutingState, values: Mapping[str, Any]) -> dict[str, Any]:
    """What the templates see (see the module docstring)."""
    blue_green = blue_green_shares(state)
    weighted = [i for i, _ in blue_green]
    shares_of = dict(blue_green)
    shares = [shares_of.get(i, 0) for i in range(len(state.weights))]
    versions = [
        {
            "index": i,
            "name": version.label,
            "resources": [
                {"gvrShort": r.gvr_short, "name": r.name, "namespace": r.namespace or routemap.namespace}
                for r in version.resources
            ],
            "weight": state.weights[i],
            "available": state.available[i],
            "serving": serves(state, i),
            "share": shares[i],
            "match": [dict(m) for m in version.match] if version.match is not None else None,
            "configuredWeight": version.weight,
        }
        for i, version in enumerate(routemap.spec.versions)
    ]

    def resource(index: int, gvr_short: str) -> str:
        return backend_name(routemap, index, gvr_short)[0]

    return {
        "name": routemap.name,
        "namespace": routemap.namespace,
        "labels": dict(routemap.labels),
        "strategy": strategy_of(routemap),
        "versions": versions,
        "weights": list(state.weights),
        "available": list(state.available),
        "shares": shares,
        "weighted": weighted,
        "candidates": serving_candidates(state),
        "values": dict(values),
        "percentages": percentages,
        "resource": resource,
    }


class TemplateRouter:
    """Renders user-supplied Jinja2 templates into routing objects."""

    name = "template"
    #: Whatever the controller's configuration allows (``templateKinds``), never what a routemap asks.
    kinds = None
    Config: type[BaseModel] = TemplateConfig

    def render(
        self, routemap: RouteMap, state: RoutingState, config: BaseModel | Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        from jinja2 import TemplateError

        from kubectl_iter8 import boundedyaml

        from .sandbox import render

        cfg = validate_config(TemplateConfig, config, self.name)
        check_state(routemap, state)
        data = template_data(routemap, state, cfg.values)
        where = f'routemap "{routemap.namespace}/{routemap.name}": router {self.name}'
        objects: list[dict[str, Any]] = []
        for i, spec in enumerate(cfg.templates):
            source = f"templates[{i}]"
            try:
                text = render(spec.template, data)
            except RouteError as exc:
                raise RouteError(f"{exc} (router {self.name}, {source})") from None
            except (TemplateError, ValueError, TypeError, ArithmeticError, MemoryError) as exc:
                message = getattr(exc, "message", None) or str(exc)
                raise RouteError(
                    boundedyaml.truncate(f"{where}: {source}: {type(exc).__name__}: {message}")
                ) from None
            try:
                documents = [doc for doc in boundedyaml.load_all(text) if doc is not None]
            except boundedyaml.BoundedYAMLError as exc:
                raise RouteError(f"{where}: {source} did not render valid YAML: {exc}") from None
            for doc in documents:
                objects.append(self._checked(doc, spec, f"{where}: {source}"))
        return objects

    @staticmethod
    def _checked(doc: Any, spec: TemplateSpec, where: str) -> dict[str, Any]:
        if not isinstance(doc, dict):
            raise RouteError(f"{where} rendered a {type(doc).__name__}, not a Kubernetes object")
        missing = [key for key in ("apiVersion", "kind") if not isinstance(doc.get(key), str) or not doc[key]]
        name = (doc.get("metadata") or {}).get("name") if isinstance(doc.get("metadata"), dict) else None
        if not isinstance(name, str) or not name:
            missing.append("metadata.name")
        if missing:
            raise RouteError(f"{where} rendered an object without {', '.join(missing)}")
        expected = KNOWN_KINDS.get(spec.gvr_short or "")
        if expected is not None and doc["kind"] != expected:
            raise RouteError(
                f"{where} rendered a {doc['kind']}, but its gvrShort {spec.gvr_short} is a {expected}"
            )
        return doc
