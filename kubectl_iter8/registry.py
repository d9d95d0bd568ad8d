"""Registries that plugins fill through the ``iter8_register_*`` hooks.

The host owns each registry and hands it to every plugin in turn (tox's typed registry, llm's
``register`` callback); the registry remembers which plugin added what, so duplicates are refused
with both names in the message and ``kubectl iter8 plugins`` can say who provides each name.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from .errors import DuplicateNameError, UsageError

if TYPE_CHECKING:
    from .routemap import Router
    from .task import Task

T = TypeVar("T")


class Registry(Generic[T]):
    """Named items, each added by one plugin; a name (or alias) may be claimed only once."""

    #: What the registry holds, for messages ("task", "router", ...).
    kind = "item"

    def __init__(self) -> None:
        self._items: dict[str, T] = {}
        self._aliases: dict[str, str] = {}
        self._owner: dict[str, str] = {}
        #: The plugin whose hook is running; set by the host around each hook call.
        self.current_plugin = "<unknown>"

    def _claim(self, name: str) -> None:
        owner = self._owner.get(name)
        if owner is not None:
            raise DuplicateNameError(
                f"{self.kind} name {name!r} is already registered by plugin {owner!r}",
                plugin=self.current_plugin,
            )
        self._owner[name] = self.current_plugin

    def add(self, name: str, item: T, *, aliases: tuple[str, ...] = ()) -> None:
        """Register ``item`` under ``name`` and ``aliases``.

        :raises DuplicateNameError: when a name is already registered, by any plugin.
        """
        if not name:
            raise DuplicateNameError(f"a {self.kind} needs a non-empty name", plugin=self.current_plugin)
        for claimed in (name, *aliases):
            self._claim(claimed)
        self._items[name] = item
        for alias in aliases:
            self._aliases[alias] = name

    def canonical(self, name: str) -> str | None:
        """The registered name that ``name`` (a name or alias) refers to, or None."""
        if name in self._items:
            return name
        return self._aliases.get(name)

    def get(self, name: str) -> T:
        """The item registered as ``name`` (or under that alias).

        :raises UsageError: when no plugin registered the name.
        """
        canonical = self.canonical(name)
        if canonical is None:
            known = ", ".join(sorted(self._items)) or "none"
            raise UsageError(f"unknown {self.kind} {name!r} (known: {known})")
        return self._items[canonical]

    def owner(self, name: str) -> str:
        return self._owner[name]

    def names(self) -> list[str]:
        return sorted(self._items)

    def provided_by(self, plugin: str) -> list[str]:
        """Names (not aliases) that ``plugin`` registered."""
        return [name for name in self.names() if self._owner[name] == plugin]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.canonical(name) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)


class TaskRegistry(Registry["type[Task[Any]]"]):
    """Task classes by ``task:`` name."""

    kind = "task"

    def register(self, task: type[Task[Any]]) -> None:
        """Register a task class under its ``name`` and ``aliases``."""
        self.add(task.name, task, aliases=tuple(task.aliases))


#: A kind a router writes: (API group, kind); the core group is "".
RoutingKind = tuple[str, str]


def kind_of(obj: dict[str, Any]) -> RoutingKind:
    """The (API group, kind) of a Kubernetes object, from its apiVersion and kind."""
    api_version = str(obj.get("apiVersion") or "")
    group = api_version.rpartition("/")[0]
    return group, str(obj.get("kind") or "")


def kind_name(kind: RoutingKind) -> str:
    """``Kind.group`` (kubectl's spelling), ``Kind`` for the core group."""
    return f"{kind[1]}.{kind[0]}" if kind[0] else kind[1]


class RouterRegistry(Registry["Router"]):
    """Route plugins by name (``istio``, ``gateway-api``, ...), with the kinds each one writes.

    The controller writes with its own rights, so a router may only render the kinds it declares
    in its ``kinds`` attribute (a tuple of (API group, kind)). ``kinds = None`` means "the kinds
    the controller's configuration allows" (the ``template`` router: its kinds come from whoever
    writes the routemap, so the operator of the controller decides, not the routemap's author).
    A router without ``kinds`` may write nothing.
    """

    kind = "router"

    def __init__(self) -> None:
        super().__init__()
        self._kinds: dict[str, frozenset[RoutingKind] | None] = {}

    def register(self, router: Router) -> None:
        self.add(router.name, router)
        declared = getattr(router, "kinds", ())
        self._kinds[router.name] = None if declared is None else frozenset(tuple(k) for k in declared)

    def kinds(self, name: str) -> frozenset[RoutingKind] | None:
        """The kinds router ``name`` declares (None: the controller's configuration decides)."""
        canonical = self.canonical(name)
        return self._kinds.get(canonical or name, frozenset())

    def declared_kinds(self) -> frozenset[RoutingKind]:
        """Every kind some router declares (not counting the configurable ones)."""
        return frozenset(k for kinds in self._kinds.values() if kinds is not None for k in kinds)


@dataclass(frozen=True)
class ResourceType:
    """A kind the controller can watch, and the conditions that make an object of it ready.

    ``name`` is the short name routemaps use in ``gvrShort`` (``deploy``, ``svc``, ``isvc``).
    """

    name: str
    group: str
    version: str
    resource: str
    kind: str
    conditions: tuple[str, ...] = field(default=())


class ResourceTypeRegistry(Registry[ResourceType]):
    """Watchable kinds by short name (``deployment``, ``isvc``, ...)."""

    kind = "resource type"

    def register(self, resource_type: ResourceType) -> None:
        self.add(resource_type.name, resource_type)
