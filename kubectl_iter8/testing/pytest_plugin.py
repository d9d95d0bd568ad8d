"""pytest fixtures for plugin authors and both Kubernetes tiers, and loud test tiers.

Not registered through an entry point (importing aiohttp in every pytest run of every project
that has kubectl-iter8 installed would be rude); enable it in a conftest.py with
``pytest_plugins = ["kubectl_iter8.testing.pytest_plugin"]``.

**The CLI and the plugin host.** ``cli``: runs ``kubectl iter8 ARGS`` in-process (``cli("version",
"--short")``, ``cli("launch", "-f", "-", stdin=text)``) and returns an :class:`Outcome` (exit code,
standard output, standard error; a conftest.py imports it from :mod:`kubectl_iter8.testing.outcome`).
``plugin_host``: ``plugin_host(my_plugin)`` registers plugins (modules, objects with ``@hookimpl``
functions, or importable names) through ``ITER8_PLUGINS`` as a user would, with the built-ins and
without the installed third-party plugins, and returns a fresh :class:`~kubectl_iter8.host.Iter8Hooks`;
``cli`` in the same test sees the same plugins.

**The fake tier.** ``fake_kube``: a fresh :class:`~kubectl_iter8.testing.FakeKube` per test, with
``KUBECONFIG`` (and ``KUBECACHEDIR``) set to it.

**The real tier.** ``kube_control_plane``: one :class:`~kubectl_iter8.testing.controlplane.ControlPlane`
and its :class:`~kubectl_iter8.testing.node.NodeStandIn` for the whole run (started on first use, ~5 s);
``real_kube``: a namespace of its own per test on it, with ``KUBECONFIG`` set to an admin kubeconfig
whose context namespace is that namespace (deleted after the test). The binaries come from
``$ITER8_KUBE_ASSETS``, else from the folders of the ini option ``iter8_kube_assets`` (relative to
the rootdir; see :func:`~kubectl_iter8.testing.controlplane.find_assets`); the CRD files or folders of
the ini option ``iter8_kube_crds`` that exist are installed before its controllers start.

**Tiers.** A test that cannot run because something outside the repository is missing calls
:func:`skip_tier`; the end of the run names each skipped tier in one loud line, and with
``ITER8_REQUIRE_TIERS=1`` (for CI) a skipped tier fails the run.

The ``kubernetes`` package reads ``$KUBECONFIG`` once, when it is imported, so setting the
variable is not enough for code that calls ``config.load_kube_config()`` without a file: the
fixtures also point the package's default location at the cluster, in the sync and the asyncio
client, if they are already imported (if not, they read the variable when they are).
"""

from __future__ import annotations

import io
import os
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, NoReturn

import pytest

from ..cli import main
from ..host import Iter8Hooks
from .controlplane import AssetsNotFoundError, ControlPlane, find_assets
from .fake import FakeKube
from .node import NodeStandIn
from .outcome import Outcome
from .real import RealKube
from .server import kubeconfig_yaml

_DEFAULT_LOCATION_MODULES = (
    "kubernetes.config",
    "kubernetes.config.kube_config",
    "kubernetes.aio.config",
    "kubernetes.aio.config.kube_config",
)
_TIER_PREFIX = "[tier "
_skipped_tiers: dict[str, tuple[str, int]] = {}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "iter8_kube_crds",
        "CRD files or folders the real control plane installs before its controllers start (if present)",
        type="paths",
        default=[],
    )
    parser.addini(
        "iter8_kube_assets",
        "folders with kube-apiserver and kube-controller-manager (or bin/*.xz), after $ITER8_KUBE_ASSETS",
        type="paths",
        default=[],
    )


# --- tiers -----------------------------------------------------------------------------------------


def skip_tier(tier: str, reason: str) -> NoReturn:
    """Skip this test: tier ``tier`` cannot run here. ``reason`` says what is missing and how to get it."""
    pytest.skip(f"{_TIER_PREFIX}{tier}] {reason}")


def _tier_of(reason: str) -> tuple[str, str] | None:
    text = reason.removeprefix("Skipped: ")
    if not text.startswith(_TIER_PREFIX) or "] " not in text:
        return None
    tier, _, rest = text[len(_TIER_PREFIX) :].partition("] ")
    return tier, rest


def _tiers_required() -> bool:
    return os.environ.get("ITER8_REQUIRE_TIERS") == "1"


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and isinstance(report.longrepr, tuple):
        found = _tier_of(str(report.longrepr[2]))
        if found is not None:
            tier, reason = found
            _skipped_tiers[tier] = (reason, _skipped_tiers.get(tier, ("", 0))[1] + 1)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    if _skipped_tiers and _tiers_required() and session.exitstatus in (0, pytest.ExitCode.NO_TESTS_COLLECTED):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for tier, (reason, count) in sorted(_skipped_tiers.items()):
        terminalreporter.write_line(
            f"TIER NOT RUN: {tier} ({count} tests skipped): {reason}", red=True, bold=True
        )
    if _skipped_tiers and _tiers_required():
        terminalreporter.write_line(
            "ITER8_REQUIRE_TIERS=1: a skipped tier fails the run", red=True, bold=True
        )


# --- the CLI and the plugin host ---------------------------------------------------------------------


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Callable[..., Outcome]:
    """Run ``kubectl iter8 ARGS`` in-process (fast); returns exit code and captured output.

    ``cli(*args, stdin=None)``: ``stdin`` is the text the command reads from standard input. The
    plugins are loaded afresh on every call, from the environment at that moment (``plugin_host``,
    ``monkeypatch.setenv("ITER8_PLUGINS", ...)``).
    """

    def run(*args: str, stdin: str | None = None) -> Outcome:
        if stdin is not None:
            monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        capsys.readouterr()
        code = main(list(args))
        captured = capsys.readouterr()
        return Outcome(int(code), captured.out, captured.err)

    return run


@pytest.fixture
def plugin_host(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Iter8Hooks]:
    """Load plugins as ``kubectl iter8`` would, and return the plugin host that has them.

    ``plugin_host(*plugins, autoload=False)``: each plugin is a module, an object with
    ``@hookimpl`` functions (a class works), or the dotted name of an importable module. They go
    through ``ITER8_PLUGINS`` (set for the rest of the test, so ``cli`` loads them too), after the
    built-in plugins; a module or object is put in ``sys.modules`` (under its module's ``__name__``,
    else ``<module>.<qualname>``) for the test. Installed third-party plugins (the ``iter8`` entry
    points) are left out unless ``autoload=True``. Returns a fresh :class:`~kubectl_iter8.host.Iter8Hooks`:
    ``.tasks``, ``.routers`` and ``.resource_types`` run the registration hooks; a hook that fails
    raises :class:`~kubectl_iter8.errors.PluginError` naming the plugin.
    """

    def host(*plugins: object, autoload: bool = False) -> Iter8Hooks:
        names: list[str] = []
        for plugin in plugins:
            if isinstance(plugin, str):
                name = plugin
            else:
                if isinstance(plugin, ModuleType):
                    name = plugin.__name__
                else:
                    owner = getattr(plugin, "__module__", None) or "plugin"
                    name = f"{owner}.{getattr(plugin, '__qualname__', type(plugin).__qualname__)}"
                if sys.modules.get(name) is not plugin:
                    monkeypatch.setitem(sys.modules, name, plugin)
            if "," in name or not name.strip():
                raise ValueError(f"plugin_host: {name!r} cannot be a plugin name (ITER8_PLUGINS)")
            names.append(name)
        monkeypatch.setenv("ITER8_PLUGINS", ",".join(names))
        if autoload:
            monkeypatch.delenv("ITER8_NO_AUTOLOAD", raising=False)
        else:
            monkeypatch.setenv("ITER8_NO_AUTOLOAD", "1")
        return Iter8Hooks()

    return host


# --- clusters --------------------------------------------------------------------------------------


def _point_clients_at(kubeconfig: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    for name in _DEFAULT_LOCATION_MODULES:
        module = sys.modules.get(name)
        if module is not None and hasattr(module, "KUBE_CONFIG_DEFAULT_LOCATION"):
            monkeypatch.setattr(module, "KUBE_CONFIG_DEFAULT_LOCATION", str(kubeconfig))


@pytest.fixture
def fake_kube(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeKube]:
    """A running :class:`FakeKube` (no CRDs loaded); ``KUBECONFIG`` and ``KUBECACHEDIR`` point at it."""
    kube = FakeKube(directory=tmp_path / "fake-kube")
    kube.start()
    try:
        _point_clients_at(kube.kubeconfig, monkeypatch, kube.env())
        yield kube
    finally:
        kube.stop()


@dataclass
class ControlPlaneWithNode:
    """The session's real control plane and the node stand-in that runs its pods."""

    control_plane: ControlPlane
    node: NodeStandIn


@pytest.fixture(scope="session")
def kube_control_plane(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ControlPlaneWithNode]:
    """One real control plane with a node stand-in for the whole run (the ``real-kube`` tier)."""
    candidates = request.config.getini("iter8_kube_assets")
    try:
        assets = find_assets(*candidates)
    except AssetsNotFoundError as exc:
        skip_tier("real-kube", str(exc))
    crds = [path for path in request.config.getini("iter8_kube_crds") if path.exists()]
    control_plane = ControlPlane(assets, directory=tmp_path_factory.mktemp("kube"), crds=crds)
    try:
        control_plane.start()
    except AssetsNotFoundError as exc:  # etcd
        skip_tier("real-kube", str(exc))
    node = NodeStandIn(control_plane)
    try:
        node.start()
        yield ControlPlaneWithNode(control_plane, node)
    finally:
        node.stop()
        control_plane.stop()


@pytest.fixture
def real_kube(
    kube_control_plane: ControlPlaneWithNode, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[RealKube]:
    """A fresh namespace on the session's control plane; ``KUBECONFIG`` points at it (deleted afterwards)."""
    cp = kube_control_plane.control_plane
    namespace = f"t-{uuid.uuid4().hex[:10]}"
    cp.kubectl("create", "namespace", namespace, check=True)
    kubeconfig = tmp_path / "real-kubeconfig"
    kubeconfig.write_text(
        kubeconfig_yaml(cp.url, cp.token_value, context=cp.context, namespace=namespace, ca=str(cp.ca))
    )
    kube = RealKube(cp, kube_control_plane.node, namespace, kubeconfig)
    _point_clients_at(kubeconfig, monkeypatch, kube.env())
    try:
        yield kube
    finally:
        kube.close()
        cp.kubectl("delete", "namespace", namespace, "--wait=false")
