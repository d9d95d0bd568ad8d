"""``FakeKube``: one fake API server, its thread and event loop, its kubeconfig, and the test helpers.

The server runs on its own event loop in a daemon thread, so that synchronous tests, subprocesses
(kubectl, a plugin, a Job's command) and asyncio code under test can all talk to it while the
test's own thread carries on. The helpers (``create``, ``get``, ``patch``, ...) call the same
:class:`~kubectl_iter8.testing.store.Store` the HTTP handlers call, so objects made by a test
behave exactly like objects made through the API (watch events, resourceVersions, audit records
with ``source="test"``).
"""

from __future__ import annotations

import asyncio
import builtins
import copy
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml
from aiohttp import web

from .common import ClusterHelpers, run_kubectl
from .controllers import Controllers
from .discovery import Registry, ResourceInfo
from .faults import Faults
from .patching import APPLY_PATCH, JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH
from .selectors import field_selector, label_selector
from .server import ApiServer, RequestRecord, kubeconfig_yaml
from .store import AuditRecord, Obj, Store

_YAML_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
#: Parsed CRD files by (path, mtime, size): the real CRDs are megabytes of YAML, parsed once per process.
_CRD_CACHE: dict[tuple[str, float, int], builtins.list[Any]] = {}
_CRD_CACHE_LOCK = threading.Lock()


def _load_yaml_documents(path: Path) -> builtins.list[Any]:
    stat = path.stat()
    key = (str(path.resolve()), stat.st_mtime, stat.st_size)
    with _CRD_CACHE_LOCK:
        if key not in _CRD_CACHE:
            with path.open("rb") as stream:
                _CRD_CACHE[key] = [d for d in yaml.load_all(stream, Loader=_YAML_LOADER) if d]
        return copy.deepcopy(_CRD_CACHE[key])


_PATCH_TYPES = {
    "merge": MERGE_PATCH,
    "json": JSON_PATCH,
    "strategic": STRATEGIC_MERGE_PATCH,
    "apply": APPLY_PATCH,
}


class FakeKube(ClusterHelpers):
    """A fake Kubernetes API server on ``127.0.0.1`` (see the package docstring for a tour).

    :param directory: where the kubeconfig and the Jobs' working directory go (default: a new
        temporary directory, removed by :meth:`stop`).
    :param history: how many events the watch history keeps; a watch from an older
        resourceVersion gets 410 Gone.
    :param token: the bearer token written to the kubeconfig (any token is accepted).
    """

    context = "fake"
    namespace = "default"

    def __init__(
        self, *, directory: str | Path | None = None, history: int = 1000, token: str = "fake-token"
    ) -> None:
        self._own_dir = directory is None
        self.directory = (
            Path(directory) if directory is not None else Path(tempfile.mkdtemp(prefix="fakekube-"))
        )
        self.directory.mkdir(parents=True, exist_ok=True)
        self.token = token
        #: Path of the kubeconfig (context ``fake``, namespace ``default``), written by :meth:`start`.
        self.kubeconfig = self.directory / "kubeconfig"
        self.registry = Registry()
        self.store = Store(self.registry, history_size=history)
        #: Injected failures, latency and denials.
        self.faults = Faults()
        workdir = self.directory / "jobs"
        workdir.mkdir(exist_ok=True)
        #: The stand-in controllers: readiness policies and the Job runner.
        self.controllers = Controllers(self.store, self.kubeconfig, workdir)
        self._server = ApiServer(self.store, self.registry, self.faults, self.controllers)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0

    # --- lifecycle -----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeKube:
        """Start serving on a free port and write the kubeconfig; returns ``self``."""
        if self._thread is not None:
            raise RuntimeError("the fake is already running")
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        failure: builtins.list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._startup(loop))
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="fakekube", daemon=True)
        self._thread.start()
        ready.wait(30)
        if failure:
            self._thread.join()
            self._thread = None
            loop.close()
            raise failure[0]
        self.kubeconfig.write_text(kubeconfig_yaml(self.url, self.token, context=self.context))
        return self

    async def _startup(self, loop: asyncio.AbstractEventLoop) -> None:
        self.controllers.attach(loop)
        self._server.attach(loop)
        runner = web.AppRunner(
            self._server.app(), handler_cancellation=True, access_log=None, shutdown_timeout=1.0
        )
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        sockets = getattr(server, "sockets", None) or []
        self.port = int(sockets[0].getsockname()[1])
        self._runner = runner

    async def _shutdown(self) -> None:
        self._server.drop_watches()
        await self.controllers.shutdown()
        if self._runner is not None:
            await self._runner.cleanup()

    def stop(self) -> None:
        """Stop serving, kill running Job processes, and remove the temporary directory."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(15)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(15)
            loop.close()
            self._loop = self._thread = None
            if self._own_dir:
                shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> FakeKube:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def env(self) -> dict[str, str]:
        """Environment variables that point kubectl and clients at this fake."""
        cache = self.directory / "kube-cache"
        return {"KUBECONFIG": str(self.kubeconfig), "KUBECACHEDIR": str(cache)}

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = False, timeout: float = 30.0
    ) -> subprocess.CompletedProcess[str]:
        """Run the real ``kubectl ARGS`` against this fake (text mode, output captured)."""
        return run_kubectl(args, self.env(), input=input, check=check, timeout=timeout)

    def reset(self, *, keep_crds: bool = True) -> None:
        """Back to a fresh cluster: no objects (but CRDs, if ``keep_crds``), history, audit or faults."""
        self.faults.reset()
        self.controllers.reset()
        self.store.reset(keep_crds=keep_crds)
        self._server.requests.clear()

    # --- CRDs ----------------------------------------------------------------------------------

    def load_crds(self, *paths: str | Path | Iterable[str | Path]) -> builtins.list[str]:
        """Create (or replace) the CRDs in YAML files or directories; returns the CRD names.

        Each file may hold several documents; documents that are not CRDs are an error, empty
        documents are skipped. Every served version becomes discoverable, with its short names and
        categories, as soon as this returns.
        """
        files: builtins.list[Path] = []
        for item in paths:
            for entry in [item] if isinstance(item, (str, Path)) else item:
                path = Path(entry)
                files.extend(sorted(path.glob("*.y*ml")) if path.is_dir() else [path])
        names: builtins.list[str] = []
        for file in files:
            for doc in _load_yaml_documents(file):
                if doc.get("kind") != "CustomResourceDefinition":
                    raise ValueError(f"{file}: not a CustomResourceDefinition: {doc.get('kind')!r}")
                names.append(self.apply(doc, field_manager="load_crds")["metadata"]["name"])
        return names

    # --- helpers that bypass HTTP ------------------------------------------------------------

    def resource(self, name: str) -> ResourceInfo:
        """Resolve a resource name: ``deployments``, ``deploy``, ``Deployment``, ``vs``, ``plural.group``."""
        return self.registry.resolve(name)

    def _info_for(self, obj: Obj) -> ResourceInfo:
        info = self.registry.for_kind(obj.get("apiVersion", ""), obj.get("kind", ""))
        if info is None:
            raise KeyError(f"the fake serves no {obj.get('kind')!r} in {obj.get('apiVersion')!r}")
        return info

    def _ns(self, info: ResourceInfo, namespace: str | None, obj: Obj | None = None) -> str | None:
        if not info.namespaced:
            return None
        return namespace or ((obj or {}).get("metadata") or {}).get("namespace") or self.namespace

    def create(self, obj: Obj, namespace: str | None = None) -> Obj:
        """Create ``obj`` (apiVersion and kind required) as the API would; returns the stored object."""
        info = self._info_for(obj)
        return self.store.create(info, self._ns(info, namespace, obj), obj, source="test")

    def apply(self, obj: Obj, namespace: str | None = None, *, field_manager: str = "test") -> Obj:
        """Server-side apply ``obj``: create it or merge it into the live object."""
        info = self._info_for(obj)
        name = obj["metadata"]["name"]
        result, _ = self.store.patch(
            info,
            self._ns(info, namespace, obj),
            name,
            APPLY_PATCH,
            obj,
            field_manager=field_manager,
            force=True,
            source="test",
        )
        return result

    def get(self, resource: str, name: str, namespace: str | None = None) -> Obj:
        """The object (a copy); raises :class:`ApiError` (code 404) if it does not exist."""
        info = self.resource(resource)
        return self.store.get(info, self._ns(info, namespace), name)

    def list(
        self,
        resource: str,
        namespace: str | None = None,
        *,
        labels: str | None = None,
        fields: str | None = None,
    ) -> builtins.list[Obj]:
        """Objects of ``resource`` (all namespaces unless ``namespace``), filtered by selector strings."""
        info = self.resource(resource)
        items, _ = self.store.list(
            info, namespace if info.namespaced else None, label_selector(labels), field_selector(fields)
        )
        return items

    def update(self, obj: Obj, *, status: bool = False) -> Obj:
        """PUT ``obj`` (409 if its resourceVersion is stale); ``status=True`` writes ``/status``."""
        info = self._info_for(obj)
        meta = obj["metadata"]
        return self.store.update(
            info,
            self._ns(info, None, obj),
            meta["name"],
            obj,
            subresource="status" if status else None,
            source="test",
        )

    def patch(
        self,
        resource: str,
        name: str,
        patch: Any,
        namespace: str | None = None,
        *,
        type: str = "merge",
        status: bool = False,
    ) -> Obj:
        """PATCH with ``type`` merge, json, strategic or apply; ``status=True`` patches ``/status``."""
        info = self.resource(resource)
        result, _ = self.store.patch(
            info,
            self._ns(info, namespace),
            name,
            _PATCH_TYPES[type],
            patch,
            subresource="status" if status else None,
            field_manager="test",
            force=True,
            source="test",
        )
        return result

    def delete(
        self, resource: str, name: str, namespace: str | None = None, *, propagation: str | None = None
    ) -> Obj:
        """DELETE; returns the object (with deletionTimestamp if finalizers keep it)."""
        info = self.resource(resource)
        obj, _ = self.store.delete(
            info, self._ns(info, namespace), name, propagation=propagation, source="test"
        )
        return obj

    # --- stand-in controllers ------------------------------------------------------------------

    def mark_ready(
        self, resource: str, name: str, namespace: str | None = None, *, after: float | None = None
    ) -> None:
        """Write a ready status (Deployment Available, InferenceService Ready) now or ``after`` seconds.

        One-off, whatever the policy: with ``kube.controllers.deployments = "never"`` a later spec
        change leaves ``observedGeneration`` behind again, as a stuck rollout would.
        """
        info = self.resource(resource)
        self.controllers.mark(info, self._ns(info, namespace), name, after=after, ready=True)

    def mark_unready(
        self, resource: str, name: str, namespace: str | None = None, *, after: float | None = None
    ) -> None:
        """Write a not-ready status (conditions False, no available replicas)."""
        info = self.resource(resource)
        self.controllers.mark(info, self._ns(info, namespace), name, after=after, ready=False)

    def logs(self, pod: str, namespace: str | None = None) -> str:
        """What the process run for a Job's pod has printed so far."""
        data, _ = self.controllers.log(namespace or self.namespace, pod)
        return data.decode(errors="replace")

    # --- observation ---------------------------------------------------------------------------

    @property
    def audit(self) -> builtins.list[AuditRecord]:
        """Every persisted write so far, oldest first (a copy)."""
        with self.store.lock:
            return list(self.store.audit)

    @property
    def requests(self) -> builtins.list[RequestRecord]:
        """Every HTTP request answered so far, oldest first (a copy)."""
        return list(self._server.requests)

    @property
    def open_watches(self) -> int:
        """How many watch streams are open right now."""
        return self._server.open_watches

    def wait_for_watches(self, count: int = 1, *, timeout: float = 10.0) -> None:
        """Block until at least ``count`` watches are open (e.g. a controller under test has started)."""
        deadline = time.monotonic() + timeout
        while self.open_watches < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.open_watches} watches open after {timeout} s, expected {count}")
            time.sleep(0.01)

    @property
    def resource_version(self) -> int:
        """The current (latest) resourceVersion."""
        return self.store.rv

    def compact(self) -> None:
        """Forget the watch history, so watching from any older resourceVersion gets 410 Gone."""
        self.store.compact()

    def forbid(self, verb: str = "*", resource: str = "*", namespace: str | None = None) -> None:
        """Answer ``verb`` on ``resource`` (in ``namespace``) with 403 Forbidden until :meth:`reset`."""
        self.faults.forbid(verb, resource, namespace)

    def snapshot(self) -> dict[str, builtins.list[Obj]]:
        """All objects by resource key (deep copies), for assertions and debugging."""
        with self.store.lock:
            return {
                k: [copy.deepcopy(o) for _, o in sorted(t.items())]
                for k, t in self.store.objects.items()
                if t
            }
