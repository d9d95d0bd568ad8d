"""``kubectl iter8 controller serve`` and ``kubectl iter8 controller manifests``.

Imports of the controller machinery (and of the Kubernetes client) happen inside the commands, so
that ``kubectl iter8 --help`` stays cheap; ``logging`` too (with ``traceback``, ``string`` and
``threading``), which is why the JSON formatter is defined when ``serve`` sets up its logs.
"""

from __future__ import annotations

import re
import sys
from typing import TYPE_CHECKING, Any

import click

from kubectl_iter8.commands.common import CLIState, pass_state

if TYPE_CHECKING:
    import logging

    from kubectl_iter8.registry import ResourceType

    from .config import Settings


#: A namespace name: an RFC 1123 label.
_NAMESPACE = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


def _json_formatter() -> logging.Formatter:
    import json
    import logging

    class JSONFormatter(logging.Formatter):
        """One JSON object per log line: time, level, logger, message (and the exception, if any)."""

        def format(self, record: logging.LogRecord) -> str:
            line = {
                "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
                "level": record.levelname.lower(),
                "logger": record.name,
                "message": record.getMessage(),
            }
            if record.exc_info:
                line["exception"] = self.formatException(record.exc_info)
            return json.dumps(line)

    return JSONFormatter()


def _setup_logging(log_format: str) -> None:
    import logging

    root = logging.getLogger()
    formatter: logging.Formatter = (
        _json_formatter()
        if log_format == "json"
        else logging.Formatter("%(asctime)s %(levelname)-7s %(message)s")
    )
    for handler in root.handlers or [logging.StreamHandler(sys.stderr)]:
        handler.setFormatter(formatter)
        if handler not in root.handlers:
            root.addHandler(handler)


def _types(state: CLIState, settings: Settings) -> list[ResourceType]:
    registry = state.require_hooks().resource_types
    types = {name: registry.get(name) for name in registry.names()}
    for extra in settings.extra_resource_types:
        types[extra.name] = extra
    return [types[name] for name in sorted(types)]


def _settings(config: str | None, **changes: Any) -> Settings:
    from dataclasses import replace

    from .config import Settings, load_config

    settings = Settings()
    if config:
        settings = load_config(config, settings)
    return replace(settings, **{k: v for k, v in changes.items() if v is not None})


@click.group("controller")
def controller() -> None:
    """The traffic controller: keeps routing objects pointing at the versions that are ready."""


@controller.command("serve")
@click.option(
    "-n",
    "--namespace",
    "namespaces",
    multiple=True,
    metavar="NS",
    help="Namespace to watch (repeatable; default: the context's).",
)
@click.option("-A", "--all-namespaces", is_flag=True, help="Watch every namespace (needs a ClusterRole).")
@click.option("--config", metavar="FILE", help="YAML file with extra resourceTypes, defaultResync, workers.")
@click.option(
    "--http-address", default="127.0.0.1", show_default=True, help="Address of /healthz, /readyz, /metrics."
)
@click.option(
    "--http-port", type=int, default=8080, show_default=True, help="Port of /healthz, /readyz, /metrics."
)
@click.option(
    "--abn-port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Serve the A/B/n gRPC service (Lookup, WriteMetric) on this port (e.g. 50051; 0: any free port).",
)
@click.option(
    "--abn-address", default="127.0.0.1", show_default=True, help="Address the A/B/n service listens on."
)
@click.option(
    "--abn-store",
    envvar="ITER8_ABN_STORE",
    metavar="URL",
    help="Where A/B/n metrics are kept: sqlite:PATH, or redis://[:PASSWORD@]HOST[:PORT][/DB] for "
    "several replicas (also $ITER8_ABN_STORE, which keeps a password off the command line). "
    "Default: sqlite:$XDG_STATE_HOME/kubectl-iter8/abn.sqlite (~/.local/state/kubectl-iter8/abn.sqlite "
    "without $XDG_STATE_HOME; the folder is created with mode 0700).",
)
@click.option(
    "--abn-max-metrics",
    envvar="ITER8_ABN_MAX_METRICS",
    metavar="N",
    help="Distinct A/B/n metric names per application; a new one beyond is refused "
    "(also $ITER8_ABN_MAX_METRICS; default: 100).",
)
@click.option(
    "--abn-max-users",
    envvar="ITER8_ABN_MAX_USERS",
    metavar="N",
    help="A/B/n user records kept per application, the least recently seen deleted beyond "
    "(also $ITER8_ABN_MAX_USERS; default: 1000000).",
)
@click.option(
    "--abn-token-file",
    envvar="ITER8_ABN_TOKEN_FILE",
    metavar="FILE",
    help="File holding a shared token that A/B/n gRPC calls, /abnValues and /abnDashboard must carry "
    "as 'authorization: Bearer TOKEN' (also $ITER8_ABN_TOKEN_FILE; default: no token).",
)
@click.option(
    "--rollouts",
    is_flag=True,
    help="Run routemaps' rollout policies (launches analysis experiments; needs the RBAC of "
    "`controller manifests --rollouts`).",
)
@click.option(
    "--analysis-image",
    metavar="IMAGE",
    help="Image of the Jobs that run rollouts' analysis experiments (default: this version's image).",
)
@click.option("--leader-elect", is_flag=True, help="Take part in leader election; only the leader writes.")
@click.option(
    "--lease-namespace", metavar="NS", help="Namespace of the election Lease (default: the first watched)."
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default=None,
    help="Log lines as text (default) or JSON.",
)
@click.option(
    "--kubeconfig",
    metavar="PATH",
    help="Path to the kubeconfig file (default: $KUBECONFIG or ~/.kube/config).",
)
@click.option("--context", metavar="NAME", help="The kubeconfig context to use.")
@pass_state
def serve(
    state: CLIState,
    namespaces: tuple[str, ...],
    all_namespaces: bool,
    config: str | None,
    http_address: str,
    http_port: int,
    abn_port: int | None,
    abn_address: str,
    abn_store: str | None,
    abn_max_metrics: str | None,
    abn_max_users: str | None,
    abn_token_file: str | None,
    rollouts: bool,
    analysis_image: str | None,
    leader_elect: bool,
    lease_namespace: str | None,
    log_format: str | None,
    kubeconfig: str | None,
    context: str | None,
) -> None:
    """Run the controller until interrupted (SIGINT or SIGTERM)."""
    import logging
    import signal
    import threading

    from kubectl_iter8.errors import UsageError
    from kubectl_iter8.kube import Kube, KubeOptions

    from .manager import Controller

    if namespaces and all_namespaces:
        raise UsageError("Either --namespace or --all-namespaces can be used, not both.")
    abn = _abn_settings(abn_max_metrics, abn_max_users, abn_token_file) if abn_port is not None else {}
    options = KubeOptions(kubeconfig, context, None)
    if not namespaces and not all_namespaces:
        with Kube(options) as kube:
            namespaces = (kube.namespace,)
    settings = _settings(
        config,
        namespaces=None if all_namespaces else tuple(namespaces),
        http_address=http_address,
        http_port=http_port,
        abn_port=abn_port,
        abn_address=abn_address,
        abn_store=abn_store,
        **abn,
        leader_elect=leader_elect,
        lease_namespace=lease_namespace or (namespaces[0] if namespaces else "default"),
        log_format=log_format,
        rollouts=rollouts or None,
        analysis_image=analysis_image,
    )
    _setup_logging(settings.log_format)
    hooks = state.require_hooks()
    types = {name: hooks.resource_types.get(name) for name in hooks.resource_types.names()}
    ctl = Controller(
        settings,
        routers=hooks.routers,
        resource_types=types,
        kube_options=options,
        canonical=hooks.resource_types.canonical,
        # Task plugins (numpy and all) only where analyses are launched: 40 MB of a routing-only controller.
        tasks=hooks.tasks if settings.rollouts else None,
    )
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: ctl.request_stop())
    log = logging.getLogger("kubectl_iter8.controller")
    ctl.start()
    scope = "all namespaces" if settings.namespaces is None else ", ".join(settings.namespaces)
    log.info(
        "controller started: watching %s, resource types %s, routers %s, http on %s:%s",
        scope,
        ", ".join(sorted(ctl.types)) or "none",
        ", ".join(hooks.routers.names()) or "none",
        settings.http_address,
        ctl.http.port if ctl.http else http_port,
    )
    if ctl.abn is not None:
        log.info("A/B/n service on %s:%d, metrics in %s", abn_address, ctl.abn.port, ctl.abn.store_name)
    try:
        ctl.serve_forever()
    finally:
        ctl.stop()
        log.info("controller stopped")


def _abn_settings(max_metrics: str | None, max_users: str | None, token_file: str | None) -> dict[str, Any]:
    """The A/B/n caps and token as settings, each checked here so that a bad one names its flag, or
    its variable when the value came from the environment.

    :raises UsageError: one line naming the flag or the variable (never the token).
    """
    from click.core import ParameterSource

    from .abn.limits import Limits, positive, read_token_file

    ctx = click.get_current_context()

    def name(param: str, variable: str) -> str:
        from_env = ctx.get_parameter_source(param) is ParameterSource.ENVIRONMENT
        return f"${variable}" if from_env else "--" + param.replace("_", "-")

    def cap(param: str, variable: str, value: str | None, default: int) -> int:
        return positive(value, name(param, variable)) if value is not None and value.strip() else default

    limits = Limits(
        max_metrics=cap("abn_max_metrics", "ITER8_ABN_MAX_METRICS", max_metrics, Limits.max_metrics),
        max_users=cap("abn_max_users", "ITER8_ABN_MAX_USERS", max_users, Limits.max_users),
    )
    token = None
    if token_file is not None and token_file.strip():
        token = read_token_file(token_file.strip(), name("abn_token_file", "ITER8_ABN_TOKEN_FILE"))
    return {"abn_limits": limits, "abn_token": token}


@controller.command("manifests")
@click.option(
    "-n", "--namespace", default="iter8-system", show_default=True, help="Where the controller runs."
)
@click.option(
    "--create-namespace/--no-create-namespace",
    default=True,
    show_default=True,
    help="Begin with the Namespace the controller runs in (leave it out when it exists and holds "
    "other things: kubectl delete -f would delete it too).",
)
@click.option(
    "-w",
    "--watch-namespace",
    "watch_namespaces",
    multiple=True,
    metavar="NS",
    help="Namespace whose apps the controller routes: a Role there (repeatable; default: default).",
)
@click.option(
    "-A",
    "--all-namespaces",
    "--cluster-scoped",
    "cluster_scoped",
    is_flag=True,
    help="Watch every namespace: a ClusterRole instead of Roles.",
)
@click.option(
    "--network-policy/--no-network-policy",
    default=True,
    show_default=True,
    help="End with a NetworkPolicy: the HTTP port open, the A/B/n port only to the watched namespaces.",
)
@click.option(
    "--rollouts",
    is_flag=True,
    help="Also grant what rollout policies take: launching analysis experiments (Secrets, Jobs, "
    "ServiceAccounts, Roles) and rewriting a routemap on promotion.",
)
@click.option(
    "--config",
    metavar="FILE",
    help="The same configuration file serve gets (extra resource types; templateKinds become writable).",
)
@click.option("--image", help="Container image (default: the project's image of this version).")
@click.option("--http-port", type=int, default=8080, show_default=True, help="Port of the HTTP endpoints.")
@click.option(
    "--abn-port",
    type=click.IntRange(0, 65535),
    default=50051,
    show_default=True,
    help="Port of the A/B/n gRPC service (0: no A/B/n service).",
)
@click.option(
    "--abn-store-secret",
    metavar="NAME",
    help="Secret whose key 'url' names the A/B/n store (e.g. redis://:PASSWORD@redis:6379/0); "
    "default: SQLite on an emptyDir volume (one replica).",
)
@pass_state
def manifests_command(
    state: CLIState,
    namespace: str,
    create_namespace: bool,
    watch_namespaces: tuple[str, ...],
    cluster_scoped: bool,
    network_policy: bool,
    rollouts: bool,
    config: str | None,
    image: str | None,
    http_port: int,
    abn_port: int,
    abn_store_secret: str | None,
) -> None:
    """Print the controller's Namespace, ServiceAccount, RBAC, Deployment and Service, for kubectl apply.

    \b
    Watch the apps of two namespaces, running in iter8-system:
      kubectl iter8 controller manifests -w shop -w payments | kubectl apply -f -
    """
    import yaml

    from kubectl_iter8.errors import UsageError

    from .manifests import DEFAULT_WATCH, IMAGE, manifests

    if watch_namespaces and cluster_scoped:
        raise UsageError("Either --watch-namespace or --all-namespaces can be used, not both.")
    for flag, value in [("--namespace", namespace), *(("--watch-namespace", ns) for ns in watch_namespaces)]:
        if not _NAMESPACE.fullmatch(value):
            raise UsageError(
                f"{flag} {value!r}: not a namespace name (lower-case letters, digits and '-', "
                "starting and ending with a letter or digit, at most 63 characters)"
            )
    settings = _settings(config)
    routers = state.require_hooks().routers
    objects = manifests(
        _types(state, settings),
        namespace=namespace,
        watch_namespaces=watch_namespaces or DEFAULT_WATCH,
        cluster_scoped=cluster_scoped,
        create_namespace=create_namespace,
        network_policy=network_policy,
        routing_kinds={*routers.declared_kinds(), *settings.template_kinds},
        image=image or IMAGE,
        http_port=http_port,
        abn_port=abn_port,
        abn_store_secret=abn_store_secret,
        rollouts=rollouts,
    )
    import json

    # Through JSON, so that objects sharing a dict are written out in full, without YAML anchors.
    click.echo(yaml.safe_dump_all(json.loads(json.dumps(objects)), sort_keys=False), nl=False)
