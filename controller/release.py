"""``kubectl iter8 release``: create, inspect, re-weight, promote and abort a routemap from the CLI.

The commands only read and write what the controller reads (the routemap ConfigMap, the
``iter8.tools/watch`` label and ``iter8.tools/weight`` annotation of the version resources) and
read what it writes (the status ConfigMap ``<routemap>-iter8-status``); the controller does the
routing. See ``docs/release.md``.

**Weights.** The release commands keep weights in the routemap. Because the annotation
``iter8.tools/weight`` on a version's resource overrides the routemap's weight (the controller's
rule, :func:`kubectl_iter8.routemap.desired_weight`), a command that sets a version's weight also
removes that annotation from the version's resources (otherwise the change would have no effect).

**Safety.** No command writes a routemap in which no *available* version would have weight above 0
(``weight`` refuses; ``promote`` refuses an unavailable candidate and moves the traffic in two
steps, the old primary staying in the routemap as the fallback until the candidate carries all the
traffic). ``abort`` is the exception: it sends everything to the primary, ready or not.

Imports of YAML, pydantic and the Kubernetes client happen inside the commands, so that
``kubectl iter8 --help`` stays cheap.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import click

from kubectl_iter8.commands.common import CLIState, emit, kube_options, pass_state
from kubectl_iter8.errors import Iter8Error, UsageError

from .release_common import connect, load_routemap
from .rollout_commands import COMMANDS as ROLLOUT_COMMANDS
from .rollout_commands import abort_rollout, describe, rollout_state
from .rollout_commands import line as rollout_line

if TYPE_CHECKING:
    from kubectl_iter8.kube import GVR, Kube
    from kubectl_iter8.registry import ResourceTypeRegistry
    from kubectl_iter8.routemap import RouteMap, WeightSource

Obj = dict[str, Any]
#: Seconds between two reads while waiting or watching.
POLL_INTERVAL = 0.5


# -------------------------------------------------------------------------------------------------
# Reading a release: the routemap, the live resources and the controller's status


@dataclass
class VersionView:
    index: int
    name: str
    resources: list[str]
    #: The weight the controller should apply (annotation, else routemap, else 1).
    desired: int
    #: Where ``desired`` comes from: ``routemap``, ``annotation`` or ``default``.
    source: WeightSource
    #: From the controller's status (None: not reported yet).
    available: bool | None = None
    applied: int | None = None
    reason: str | None = None


@dataclass
class ReleaseView:
    name: str
    namespace: str
    router: str | None
    strategy: str | None
    versions: list[VersionView]
    #: The controller's status is for the routemap's current resourceVersion.
    observed: bool = False
    reported: bool = False
    last_error: str | None = None
    routing_objects: list[dict[str, str]] = field(default_factory=list)
    #: The rollout, when the routemap has a policy (see :func:`.rollout_commands.describe`).
    rollout: dict[str, Any] | None = None

    def expected(self) -> list[int]:
        """The weights the controller applies when every version with a desired weight is available."""
        from kubectl_iter8.routemap import routed_weights

        return list(routed_weights([v.desired for v in self.versions], [True] * len(self.versions)))

    def pending(self, wanted: str = "applied") -> str | None:
        """None when the controller's status shows the desired weights applied (and, with
        ``wanted="all-available"``, every version available); otherwise why not, in a few words."""
        where = f'routemap "{self.namespace}/{self.name}"'
        if not self.reported:
            return f"the controller has not reported on {where} yet (is it running?)"
        if not self.observed:
            return f"the controller has not processed the latest change of {where} yet"
        if self.last_error:
            return f"the controller reports an error: {self.last_error}"
        for version, weight in zip(self.versions, self.expected(), strict=True):
            if (weight > 0 or wanted == "all-available") and not version.available:
                why = f": {version.reason}" if version.reason else ""
                return f"version {version.name} is not available{why}"
            if version.applied != weight:
                return f"version {version.name}: weight {weight} wanted, {version.applied} applied"
        return None

    def find(self, version: str) -> VersionView:
        """A version by its name or index."""
        for view in self.versions:
            if version in (view.name, str(view.index)):
                return view
        known = ", ".join(v.name for v in self.versions)
        raise UsageError(f'routemap "{self.name}" has no version {version!r} (versions: {known})')

    def as_dict(self) -> Obj:
        out = asdict(self)
        out["ready"] = self.pending() is None
        return out


def _types(state: CLIState) -> ResourceTypeRegistry:
    return state.require_hooks().resource_types


def _gvr(types: ResourceTypeRegistry, short: str) -> GVR:
    from kubectl_iter8.kube import GVR

    rtype = types.get(short)  # raises UsageError naming the known types
    return GVR(rtype.group, rtype.version, rtype.resource, singular=rtype.name)


def _live(kube: Kube, types: ResourceTypeRegistry, routemap: RouteMap) -> list[list[Obj | None]]:
    """Per version, its resources as they are now (None: missing or of an unknown type)."""
    out: list[list[Obj | None]] = []
    for version in routemap.spec.versions:
        objs: list[Obj | None] = []
        for ref in version.resources:
            if ref.gvr_short not in types:
                objs.append(None)
                continue
            objs.append(kube.find(_gvr(types, ref.gvr_short), ref.name, ref.namespace or routemap.namespace))
        out.append(objs)
    return out


def _view(kube: Kube, types: ResourceTypeRegistry, name: str) -> ReleaseView:
    from kubectl_iter8.kube import CONFIGMAPS
    from kubectl_iter8.routemap import desired_weight

    from .status import read_status, status_name

    cm, routemap = load_routemap(kube, name)
    live = _live(kube, types, routemap)
    status = read_status(kube.find(CONFIGMAPS, status_name(name)))
    reported = list(status.get("versions") or [])
    routing = routemap.spec.routing
    views = []
    for index, (version, objs) in enumerate(zip(routemap.spec.versions, live, strict=True)):
        desired, source = desired_weight(version, objs)
        view = VersionView(
            index=index,
            name=version.label,
            resources=[f"{r.gvr_short}/{r.name}" for r in version.resources],
            desired=desired,
            source=source,
        )
        if index < len(reported) and isinstance(reported[index], dict):
            entry = reported[index]
            view.available = bool(entry.get("available"))
            view.applied = int(entry.get("weight", 0))
            view.reason = entry.get("reason")
        views.append(view)
    rollout = None
    if routemap.spec.rollout is not None:
        state = rollout_state(kube, name)
        rollout = describe(routemap, state)
        if state is not None and len(views) == 2 and state.candidate_name == views[1].name:
            # The controller routes by the rollout's weights, not the routemap's.
            for view, weight in zip(views, (100 - state.weight, state.weight), strict=True):
                view.desired, view.source = weight, "rollout"
    observed = len(reported) == len(views) and str(status.get("observedResourceVersion")) == str(
        cm["metadata"].get("resourceVersion")
    )
    return ReleaseView(
        name=name,
        namespace=routemap.namespace or kube.namespace,
        router=routing.router if routing else None,
        strategy=routing.strategy if routing else None,
        versions=views,
        observed=observed,
        reported=bool(status),
        last_error=status.get("lastError"),
        routing_objects=list(status.get("routingObjects") or []),
        rollout=rollout,
    )


def _wait(
    read: Callable[[], ReleaseView], done: Callable[[ReleaseView], str | None], timeout: float, what: str
) -> ReleaseView:
    """Poll until ``done`` answers None; on timeout raise, with its last answer."""
    deadline = time.monotonic() + timeout
    while True:
        view = read()
        why = done(view)
        if why is None:
            return view
        if time.monotonic() >= deadline:
            raise Iter8Error(f"timed out after {timeout:g}s waiting for {what}: {why}")
        time.sleep(min(POLL_INTERVAL, max(0.0, deadline - time.monotonic())))


# -------------------------------------------------------------------------------------------------
# Writing a release


def _write_weights(
    kube: Kube,
    types: ResourceTypeRegistry,
    name: str,
    weights: dict[int, int],
    *,
    expect: list[str],
    order: list[int] | None = None,
) -> None:
    """Set the routemap weights of some versions (by index), optionally reorder (and drop) versions,
    then remove the weight annotations that would override the new weights.

    :param expect: the version names the indices refer to; a routemap changed meanwhile is refused.
    """
    import yaml

    from kubectl_iter8 import boundedyaml
    from kubectl_iter8.kube import CONFIGMAPS
    from kubectl_iter8.routemap import SPEC_KEY, WEIGHT_ANNOTATION, annotated_weight, parse_routemap

    def mutate(cm: Obj) -> Obj:
        if [v.label for v in parse_routemap(cm).spec.versions] != expect:
            raise Iter8Error(f'routemap "{name}" changed while the command ran; run it again')
        spec = boundedyaml.load(cm["data"][SPEC_KEY])
        versions = spec["versions"]
        for index, weight in weights.items():
            versions[index]["weight"] = weight
        if order is not None:
            spec["versions"] = [versions[i] for i in order]
        cm["data"][SPEC_KEY] = yaml.safe_dump(spec, sort_keys=False)
        parse_routemap(cm)  # never write a routemap the controller would refuse
        return cm

    routemap = parse_routemap(kube.update(CONFIGMAPS, name, mutate))
    # The versions whose weight was set (new index -> old index through ``order``).
    for new_index, version in enumerate(routemap.spec.versions):
        old_index = order[new_index] if order is not None else new_index
        if old_index not in weights:
            continue
        for ref in version.resources:
            if ref.gvr_short not in types:
                continue
            gvr = _gvr(types, ref.gvr_short)
            namespace = ref.namespace or routemap.namespace
            if annotated_weight(kube.find(gvr, ref.name, namespace)) is None:
                continue
            kube.patch(gvr, ref.name, {"metadata": {"annotations": {WEIGHT_ANNOTATION: None}}}, namespace)


def _refuse_unserved(view: ReleaseView, weights: list[int], what: str) -> None:
    """Refuse a change after which no available version would have weight above 0."""
    if not view.reported:
        raise Iter8Error(f"refusing to {what}: {view.pending()}")
    if not any(w > 0 and v.available for v, w in zip(view.versions, weights, strict=True)):
        raise Iter8Error(f"refusing to {what}: no available version would receive traffic")


# -------------------------------------------------------------------------------------------------
# Commands


def _duration(value: str, flag: str) -> float:
    from kubectl_iter8.durations import parse_duration

    try:
        return parse_duration(value)
    except ValueError as exc:
        raise UsageError(f"{flag}: {exc}") from None


@click.group("release")
def release() -> None:
    """Create, watch, re-weight, promote and abort releases (routemaps) run by the controller."""


def _parse_version(text: str) -> dict[str, Any]:
    """``[NAME=]TYPE/NAME[,TYPE/NAME...]`` as a routemap version."""
    label, sep, rest = text.partition("=")
    if not sep:
        label, rest = "", text
    resources = []
    for part in rest.split(","):
        kind, slash, name = part.strip().partition("/")
        if not slash or not kind or not name or "/" in name:
            raise UsageError(f"--version {text!r}: expected [NAME=]TYPE/NAME[,TYPE/NAME...], e.g. svc/app-v1")
        resources.append({"gvrShort": kind, "name": name})
    version: dict[str, Any] = {"name": label} if label else {}
    version["resources"] = resources
    return version


def _parse_assignment(text: str, flag: str) -> tuple[str, Any]:
    from kubectl_iter8 import boundedyaml

    key, sep, value = text.partition("=")
    if not sep or not key:
        raise UsageError(f"{flag} {text!r}: expected KEY=VALUE")
    try:
        return key, boundedyaml.load(value)
    except boundedyaml.BoundedYAMLError:
        raise UsageError(f"{flag} {text!r}: the value is not valid YAML") from None


@release.command("create")
@click.argument("name")
@click.option(
    "--version",
    "versions",
    multiple=True,
    required=True,
    metavar="[NAME=]TYPE/NAME,...",
    help="A version: its resources (repeatable; the first is the primary).",
)
@click.option(
    "--weight", "weights", multiple=True, type=click.IntRange(min=0), help="Weight of each version."
)
@click.option(
    "--match",
    "matches",
    multiple=True,
    metavar="INDEX=YAML",
    help="A candidate's request matches (canary), in the router's shape: 1='[{headers: ...}]'.",
)
@click.option("--router", required=True, help="The route plugin (istio, gateway-api, ...).")
@click.option(
    "--strategy",
    type=click.Choice(["blue-green", "canary", "mirror"]),
    default="blue-green",
    show_default=True,
)
@click.option("--set", "options", multiple=True, metavar="KEY=YAML", help="A router option (repeatable).")
@click.option("--dry-run", is_flag=True, help="Print the routemap; write nothing.")
@click.option(
    "-o", "--output", type=click.Choice(["yaml", "json"]), default="yaml", help="Format of --dry-run."
)
@kube_options
@pass_state
def create(
    state: CLIState,
    name: str,
    versions: tuple[str, ...],
    weights: tuple[int, ...],
    matches: tuple[str, ...],
    router: str,
    strategy: str,
    options: tuple[str, ...],
    dry_run: bool,
    output: str,
    kubeconfig: str | None,
    context: str | None,
    namespace: str | None,
) -> None:
    """Write the routemap NAME and label its resources for the controller."""
    import yaml

    from kubectl_iter8.kube import CONFIGMAPS
    from kubectl_iter8.routemap import KIND_LABEL, ROUTEMAP_KIND, SPEC_KEY, WATCH_LABEL, parse_routemap
    from kubectl_iter8.validation import router_config

    spec_versions = [_parse_version(v) for v in versions]
    if weights and len(weights) != len(spec_versions):
        raise UsageError(f"--weight: {len(weights)} given for {len(spec_versions)} versions")
    for version, weight in zip(spec_versions, weights, strict=False):
        version["weight"] = weight
    for text in matches:
        key, value = _parse_assignment(text, "--match")
        if not key.isdigit() or not 0 < int(key) < len(spec_versions):
            raise UsageError(
                f"--match {text!r}: INDEX must be a candidate's index (1..{len(spec_versions) - 1})"
            )
        if isinstance(value, dict):
            value = [value]
        spec_versions[int(key)]["match"] = value
    routing: dict[str, Any] = {"router": router, "strategy": strategy}
    for text in options:
        key, value = _parse_assignment(text, "--set")
        if key in ("router", "strategy"):
            raise UsageError(f"--set {key}: use --{key}")
        routing[key] = value
    routers = state.require_hooks().routers
    plugin = routers.get(router)
    # Refuse options the router's model refuses, in the words the controller would use.
    router_config(
        plugin.Config, {k: v for k, v in routing.items() if k not in ("router", "strategy")}, router
    )
    types = _types(state)
    for version in spec_versions:
        for ref in version["resources"]:
            _gvr(types, ref["gvrShort"])
    with connect(kubeconfig, context, namespace) as kube:
        cm: Obj = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": kube.namespace, "labels": {KIND_LABEL: ROUTEMAP_KIND}},
            "data": {
                SPEC_KEY: yaml.safe_dump({"versions": spec_versions, "routing": routing}, sort_keys=False)
            },
        }
        routemap = parse_routemap(cm)
        if dry_run:
            emit(cm, output)
            return
        if kube.find(CONFIGMAPS, name) is not None:
            raise UsageError(f'configmap "{name}" already exists in namespace "{kube.namespace}"')
        targets = []
        for parsed in routemap.spec.versions:
            for ref in parsed.resources:
                gvr = _gvr(types, ref.gvr_short)
                ns = ref.namespace or kube.namespace
                if kube.find(gvr, ref.name, ns) is None:
                    raise UsageError(f'{ref.gvr_short} "{ref.name}" not found in namespace "{ns}"')
                targets.append((gvr, ref.name, ns))
        for gvr, resource, ns in targets:
            kube.patch(gvr, resource, {"metadata": {"labels": {WATCH_LABEL: "true"}}}, ns)
        kube.create(CONFIGMAPS, cm)
    click.echo(f'release "{name}" created: {len(spec_versions)} versions, router {router}, {strategy}')


def _table(view: ReleaseView) -> str:
    from tabulate import tabulate

    rows = []
    for v in view.versions:
        role = "primary" if v.index == 0 else "candidate"
        ready = "-" if v.available is None else ("yes" if v.available else "no")
        applied = "-" if v.applied is None else str(v.applied)
        desired = f"{v.desired}" + ("" if v.source == "routemap" else f" ({v.source})")
        rows.append([v.name, role, ",".join(v.resources), ready, desired, applied, v.reason or ""])
    header = (
        f"release {view.namespace}/{view.name}  router: {view.router or '-'}  "
        f"strategy: {view.strategy or '-'}"
    )
    pending = view.pending()
    footer = "status: applied" if pending is None else f"status: pending: {pending}"
    table = tabulate(
        rows,
        headers=["VERSION", "ROLE", "RESOURCES", "AVAILABLE", "DESIRED", "APPLIED", "REASON"],
        tablefmt="plain",
    )
    if view.rollout is not None:
        footer += "\n" + rollout_line(view.rollout)
    return f"{header}\n{table}\n{footer}"


def _render(view: ReleaseView, output: str) -> str:
    import json

    if output == "json":
        return json.dumps(view.as_dict(), indent=2)
    if output == "yaml":
        from kubectl_iter8.storage import dump_yaml

        return dump_yaml(view.as_dict()).rstrip("\n")
    return _table(view)


@release.command("get")
@click.argument("name")
@click.option("-w", "--watch", is_flag=True, help="Print again whenever something changes (Ctrl-C ends).")
@click.option("--watch-timeout", type=float, default=None, hidden=True, help="Stop watching after N seconds.")
@click.option(
    "-o", "--output", type=click.Choice(["text", "json", "yaml"]), default="text", show_default=True
)
@kube_options
@pass_state
def get(
    state: CLIState,
    name: str,
    watch: bool,
    watch_timeout: float | None,
    output: str,
    kubeconfig: str | None,
    context: str | None,
    namespace: str | None,
) -> None:
    """Show each version: resources, availability, desired and applied weights, why not ready."""
    types = _types(state)
    with connect(kubeconfig, context, namespace) as kube:
        last = _render(_view(kube, types, name), output)
        click.echo(last)
        if not watch:
            return
        deadline = None if watch_timeout is None else time.monotonic() + watch_timeout
        try:
            while deadline is None or time.monotonic() < deadline:
                time.sleep(POLL_INTERVAL)
                text = _render(_view(kube, types, name), output)
                if text != last:
                    click.echo(("---\n" if output == "yaml" else "\n") + text)
                    last = text
        except KeyboardInterrupt:
            return


@release.command("weight")
@click.argument("name")
@click.argument("version")
@click.argument("weight", type=click.IntRange(min=0))
@kube_options
@pass_state
def weight_command(
    state: CLIState,
    name: str,
    version: str,
    weight: int,
    kubeconfig: str | None,
    context: str | None,
    namespace: str | None,
) -> None:
    """Set VERSION's weight (in the routemap; its weight annotations are removed)."""
    types = _types(state)
    with connect(kubeconfig, context, namespace) as kube:
        view = _view(kube, types, name)
        if view.rollout is not None:
            raise UsageError(
                f'release "{name}" has a rollout policy, which sets the weights '
                "(use approve, pause, resume, abort or retry)"
            )
        target = view.find(version)
        weights = [weight if v.index == target.index else v.desired for v in view.versions]
        _refuse_unserved(view, weights, f"set the weight of {target.name} to {weight}")
        _write_weights(kube, types, name, {target.index: weight}, expect=[v.name for v in view.versions])
    click.echo(f'release "{name}": version {target.name} weight {weight}')


@release.command("abort")
@click.argument("name")
@kube_options
@pass_state
def abort(
    state: CLIState, name: str, kubeconfig: str | None, context: str | None, namespace: str | None
) -> None:
    """Send all traffic to the primary: every candidate's weight becomes 0."""
    types = _types(state)
    with connect(kubeconfig, context, namespace) as kube:
        view = _view(kube, types, name)
        primary = view.versions[0]
        if view.rollout is not None:
            abort_rollout(kube, name)
            click.echo(f'release "{name}": rollout aborted: all traffic to {primary.name}')
            return
        weights = {v.index: 0 for v in view.versions[1:]}
        weights[0] = primary.desired or 100
        _write_weights(kube, types, name, weights, expect=[v.name for v in view.versions])
    click.echo(f'release "{name}" aborted: all traffic to {primary.name}')


@release.command("promote")
@click.argument("name")
@click.argument("version", required=False)
@click.option("--keep-previous", is_flag=True, help="Keep the old primary in the routemap (weight 0).")
@click.option("--timeout", default="5m", show_default=True, help="How long to wait for each step.")
@kube_options
@pass_state
def promote(
    state: CLIState,
    name: str,
    version: str | None,
    keep_previous: bool,
    timeout: str,
    kubeconfig: str | None,
    context: str | None,
    namespace: str | None,
) -> None:
    """Make VERSION (default: the only candidate) the primary, with a ready version serving throughout."""
    seconds = _duration(timeout, "--timeout")
    types = _types(state)
    with connect(kubeconfig, context, namespace) as kube:
        view = _view(kube, types, name)
        if version is None:
            candidates = view.versions[1:]
            if len(candidates) != 1:
                names = ", ".join(v.name for v in candidates) or "none"
                raise UsageError(f"name the version to promote (candidates: {names})")
            target = candidates[0]
        else:
            target = view.find(version)
        if target.index == 0:
            raise UsageError(f"version {target.name} is already the primary")
        if not view.reported:
            raise Iter8Error(f"cannot promote {target.name}: {view.pending()}")
        if not target.available:
            why = f": {target.reason}" if target.reason else ""
            raise Iter8Error(f"cannot promote {target.name}: it is not available{why}")
        full = max(100, sum(v.desired for v in view.versions))
        index = target.index
        labels = [v.name for v in view.versions]

        def read() -> ReleaseView:
            return _view(kube, types, name)

        if view.strategy in (None, "blue-green"):
            # Step 1: all the weight to the candidate; the old primary stays as the fallback.
            shifted = {v.index: (full if v.index == index else 0) for v in view.versions}
            _write_weights(kube, types, name, shifted, expect=labels)
            click.echo(f"step 1/2: all traffic to {target.name}, waiting for the controller")
            _wait(read, ReleaseView.pending, seconds, f"{target.name} to carry all the traffic")
        # Step 2: the candidate becomes index 0 (one routemap write: one routing write).
        rest = [v.index for v in view.versions if v.index not in (index, 0)]
        order = [index, *([0] if keep_previous else []), *rest]
        final = {i: (full if i == index else 0) for i in order}
        _write_weights(kube, types, name, final, expect=labels, order=order)
        click.echo(f"step 2/2: {target.name} is the primary, waiting for the controller")
        _wait(read, ReleaseView.pending, seconds, f"{target.name} to serve as the primary")
    click.echo(f'release "{name}": {target.name} promoted')


@release.command("status")
@click.argument("name")
@click.option("--timeout", default="0s", show_default=True, help="How long to wait (e.g. 60s, 5m).")
@click.option(
    "--for",
    "wanted",
    type=click.Choice(["applied", "all-available"]),
    default="applied",
    show_default=True,
    help="applied: the desired weights are applied and every weighted version is available; "
    "all-available: also every version is available.",
)
@kube_options
@pass_state
def status(
    state: CLIState,
    name: str,
    timeout: str,
    wanted: str,
    kubeconfig: str | None,
    context: str | None,
    namespace: str | None,
) -> None:
    """Exit 0 when the release is settled, 1 when --timeout passes first (for CI)."""
    seconds = _duration(timeout, "--timeout")
    types = _types(state)
    with connect(kubeconfig, context, namespace) as kube:
        _wait(
            lambda: _view(kube, types, name),
            lambda view: view.pending(wanted),
            seconds,
            f'release "{name}"',
        )
    click.echo(
        f'release "{name}": {"all versions available, " if wanted == "all-available" else ""}weights applied'
    )


@release.command("delete")
@click.argument("name")
@kube_options
def delete(name: str, kubeconfig: str | None, context: str | None, namespace: str | None) -> None:
    """Delete the routemap (its routing objects and status go with it); resources are left alone."""
    from kubectl_iter8.kube import CONFIGMAPS

    with connect(kubeconfig, context, namespace) as kube:
        load_routemap(kube, name)
        kube.delete(CONFIGMAPS, name)
    click.echo(f'release "{name}" deleted')


for _command in ROLLOUT_COMMANDS:
    release.add_command(_command)
