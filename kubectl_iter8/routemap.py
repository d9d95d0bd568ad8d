"""Routemaps: which resources make up each version of an app, and how traffic should reach them.

A routemap is Iter8-shaped: a ConfigMap labelled ``iter8.tools/kind: routemap`` whose
``data.strSpec`` is YAML::

    versions:                      # index 0 is the primary
    - resources: [{gvrShort: svc, name: httpbin-0}, {gvrShort: deploy, name: httpbin-0}]
      weight: 90                   # optional, default 1; annotation iter8.tools/weight overrides it
    - resources: [{gvrShort: svc, name: httpbin-1}, {gvrShort: deploy, name: httpbin-1}]
      weight: 10
      match: [{headers: {x-canary: {exact: "true"}}}]
    routing:
      router: istio                # a route plugin
      strategy: blue-green         # blue-green | canary | mirror
      host: httpbin                # and whatever else the router needs

or, as Iter8 v1.x's ``release`` chart writes them, with ``routingTemplates`` instead of
``routing``: Go templates over the weights, each rendering one routing object (see
:class:`RoutingTemplate`; the controller renders them in ``controller/routing_templates.py``)::

    routingTemplates:
      blue-green: {gvrShort: vs, template: "apiVersion: ...{{ index .Weights 1 }}..."}

This module holds the model shared by the controller (which computes availability and weights)
and the route plugins (which turn a routemap and weights into routing objects). It is pure: it
never talks to the cluster.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import UsageError
from .rollout import RolloutPolicy
from .validation import validation_problems

KIND_LABEL = "iter8.tools/kind"
ROUTEMAP_KIND = "routemap"
WATCH_LABEL = "iter8.tools/watch"
WEIGHT_ANNOTATION = "iter8.tools/weight"
FINALIZER = "iter8.tools/finalizer"
SPEC_KEY = "strSpec"
#: Labels on every object written for a routemap: its routing objects (the built-in routers render
#: them, the controller adds them to any router's) and its status.
MANAGED_BY = {"app.kubernetes.io/managed-by": "iter8"}

Strategy = Literal["blue-green", "canary", "mirror"]
#: Where a version's desired weight comes from (:func:`desired_weight`).
WeightSource = Literal["annotation", "routemap", "default", "rollout"]
#: The longest routing template accepted (the whole spec is bounded too: boundedyaml's 256 KiB).
MAX_ROUTING_TEMPLATE = 64 * 1024
_GO_UINT32 = re.compile(r"[0-9]+")


def annotated_weight(obj: dict[str, Any] | None) -> int | None:
    """The weight a resource's ``iter8.tools/weight`` annotation asks for (None: none, or not a
    whole number >= 0)."""
    text = (((obj or {}).get("metadata") or {}).get("annotations") or {}).get(WEIGHT_ANNOTATION)
    if text is None:
        return None
    try:
        value = int(str(text).strip())
    except ValueError:
        return None
    return value if value >= 0 else None


class ResourceRef(BaseModel):
    """One object a version is made of, named by a short resource-type name (``svc``, ``deploy``)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    gvr_short: str = Field(alias="gvrShort", min_length=1)
    name: str = Field(min_length=1)
    namespace: str | None = None


class Version(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    #: An optional display name (reports, the version response header); defaults to the first resource's name.
    name: str | None = None
    resources: list[ResourceRef] = Field(min_length=1)
    weight: int | None = Field(default=None, ge=0)
    #: Request matches that send traffic to this version under the canary strategy (router-specific shape).
    match: list[dict[str, Any]] | None = None

    @property
    def label(self) -> str:
        return self.name or self.resources[0].name


def desired_weight(version: Version, resources: Iterable[dict[str, Any] | None]) -> tuple[int, WeightSource]:
    """The weight ``version`` asks for, and where it comes from.

    ``resources`` are the version's live objects in the routemap's order (None: missing). The
    annotation ``iter8.tools/weight`` wins over the routemap's ``weight``; when several resources
    carry one, the first wins (Iter8 looked only at the first resource; any is friendlier to
    ``kubectl annotate``). Without either the weight is 1.
    """
    annotated = next((w for obj in resources if (w := annotated_weight(obj)) is not None), None)
    if annotated is not None:
        return annotated, "annotation"
    if version.weight is not None:
        return version.weight, "routemap"
    return 1, "default"


def iter8_desired_weight(
    version: Version, resources: Sequence[dict[str, Any] | None]
) -> tuple[int, WeightSource]:
    """The weight Iter8 v1.x gave ``version``: the ``iter8.tools/weight`` annotation of its *first*
    resource only (a base-10 unsigned 32-bit integer, as Go's ``strconv.ParseUint(s, 10, 32)``
    reads it), else the routemap's ``weight``, else 1. Used for routemaps with ``routingTemplates``,
    which Iter8's charts wrote (see docs/iter8-compat.md)."""
    first = resources[0] if resources else None
    text = (((first or {}).get("metadata") or {}).get("annotations") or {}).get(WEIGHT_ANNOTATION)
    if isinstance(text, str) and _GO_UINT32.fullmatch(text) and int(text) < 2**32:
        return int(text), "annotation"
    if version.weight is not None:
        return version.weight, "routemap"
    return 1, "default"


def routed_weights(desired: Sequence[int], available: Sequence[bool]) -> tuple[int, ...]:
    """The weights the routing objects get: an unavailable version's is 0; when every weight is 0
    the primary (version 0) gets 1, so the routing objects always send traffic somewhere."""
    weights = [w if up else 0 for w, up in zip(desired, available, strict=True)]
    if weights and not any(weights):
        weights[0] = 1
    return tuple(weights)


class Routing(BaseModel):
    """Which router renders the routing objects, with which strategy; other keys are the router's config."""

    model_config = ConfigDict(extra="allow", frozen=True)

    router: str = Field(min_length=1)
    strategy: Strategy = "blue-green"

    def options(self) -> dict[str, Any]:
        """The router-specific keys (everything but ``router`` and ``strategy``)."""
        return dict(self.model_extra or {})


class RoutingTemplate(BaseModel):
    """One of Iter8's routing templates: a Go text/template over the routemap (``.Weights``: the
    controller's weights, primary first) that renders a routing object of the resource type
    ``gvrShort`` (``vs``, ``httproute``, ...). Checked for syntax when the routemap is read."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    gvr_short: str = Field(alias="gvrShort", min_length=1)
    template: str = Field(max_length=MAX_ROUTING_TEMPLATE)


class RouteMapSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    versions: list[Version] = Field(min_length=1)
    routing: Routing | None = None
    #: Iter8 v1.x's routing: Go templates by name (see :class:`RoutingTemplate`); not with ``routing``.
    routing_templates: dict[str, RoutingTemplate] | None = Field(default=None, alias="routingTemplates")
    #: Progressive delivery: the controller steps the candidate's weight by analyses (see :mod:`.rollout`).
    rollout: RolloutPolicy | None = None

    @model_validator(mode="after")
    def _one_candidate(self) -> RouteMapSpec:
        if self.rollout is not None and len(self.versions) > 2:
            candidates = len(self.versions) - 1
            raise ValueError(f"a rollout takes a primary and one candidate, not {candidates} candidates")
        if self.rollout is not None and self.routing_templates is not None:
            # A promotion leaves one version, which Iter8's templates (`index .Weights 1`) cannot render.
            raise ValueError("a rollout needs routing (a router), not Iter8's routingTemplates")
        return self

    @model_validator(mode="after")
    def _routing_templates(self) -> RouteMapSpec:
        if self.routing_templates is None:
            return self
        if self.routing is not None:
            raise ValueError("give routing or routingTemplates, not both")
        from . import gotemplate

        for name, spec in self.routing_templates.items():
            try:
                gotemplate.parse(spec.template, name=name, functions="builtin", missing_key="zero")
            except gotemplate.TemplateError as exc:
                raise ValueError(f"routingTemplates.{name}.template: {exc}") from None
        return self


@dataclass(frozen=True)
class RouteMap:
    """A parsed routemap ConfigMap."""

    name: str
    namespace: str
    uid: str
    spec: RouteMapSpec
    labels: dict[str, str] = field(default_factory=dict)

    def owner_reference(self) -> dict[str, Any]:
        """What routing objects carry so that they are garbage-collected with the routemap."""
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }


def parse_routemap(configmap: dict[str, Any]) -> RouteMap:
    """The routemap in ``configmap``.

    :raises UsageError: naming the ConfigMap and the field when the spec is malformed.
    """
    from . import boundedyaml

    meta = configmap.get("metadata", {})
    where = f'routemap "{meta.get("namespace", "")}/{meta.get("name", "")}"'
    text = (configmap.get("data") or {}).get(SPEC_KEY)
    if text is None:
        raise UsageError(f"{where}: data.{SPEC_KEY} is missing")
    try:
        # Routemaps are written by anyone who may create a ConfigMap: bounded, or a few hundred
        # bytes of nested aliases would hold the controller for minutes (see boundedyaml).
        raw = boundedyaml.load(str(text))
    except boundedyaml.BoundedYAMLError as exc:
        raise UsageError(f"{where}: data.{SPEC_KEY} is not valid YAML: {exc}") from None
    try:
        spec = RouteMapSpec.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(validation_problems(exc))
        raise UsageError(boundedyaml.truncate(f"{where}: {problems}")) from None
    return RouteMap(
        name=meta.get("name", ""),
        namespace=meta.get("namespace", ""),
        uid=meta.get("uid", ""),
        spec=spec,
        labels=dict(meta.get("labels") or {}),
    )


@dataclass(frozen=True)
class RoutingState:
    """What the controller decided for one routemap: per version, available or not, and its weight.

    Weights are relative (not percentages); an unavailable version always has weight 0, and when no
    version is available the primary (index 0) carries everything.
    """

    available: tuple[bool, ...]
    weights: tuple[int, ...]


class Router(Protocol):
    """A route plugin: a pure function from a routemap and its routing state to routing objects.

    ``render`` must not read the cluster or the clock, so the controller can compare the objects it
    wants with those it has and tests can keep golden files. Every object it returns is a complete
    Kubernetes object (apiVersion, kind, metadata.name; the controller sets the namespace and the
    owner reference), and should add a response header naming the version that served.

    A router also declares ``kinds``: the (API group, kind) pairs it renders; the controller
    refuses any other (see :class:`~kubectl_iter8.registry.RouterRegistry`).
    """

    #: The name routemaps use in ``routing.router``.
    name: str
    #: The model of ``routing``'s router-specific keys (``extra="forbid"``). The caller validates the
    #: options against it (:func:`~kubectl_iter8.validation.router_config`) and ``render`` receives
    #: the instance.
    Config: type[BaseModel]

    def render(self, routemap: RouteMap, state: RoutingState, config: BaseModel) -> list[dict[str, Any]]: ...
