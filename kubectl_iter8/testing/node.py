"""A node stand-in for the real control plane: the kubelet's part, played locally.

The real control plane has no scheduler, kubelet or container runtime, so pods would stay Pending.
:class:`NodeStandIn` does what kwok does, plus running the commands a test wants run:

- registers one Ready Node (InternalIP 127.0.0.1) and renews its Lease in ``kube-node-lease``, so the
  node lifecycle controller never marks it NotReady or evicts its pods;
- binds every Pending pod to it (``pods/NAME/binding``);
- reports each pod Running with its containers Ready and an IP of its own from 198.18.0.0/15 (a range
  reserved for benchmarks, never routed, and valid in Endpoints where loopback is not; nothing is ever
  sent to it), so the real ReplicaSet and Deployment
  controllers make Deployments Available. Readiness can be held back: :meth:`NodeStandIn.hold` (by
  namespace and name prefix) or the pod annotation ``testing.iter8.tools/ready: "false"``. An image
  under ``127.0.0.1:1/`` cannot be pulled: the pod stays Pending in ``ErrImagePull``, as on a real node;
- runs the command of the pods that :attr:`NodeStandIn.runs` selects (by default those of Jobs, and any pod
  annotated ``testing.iter8.tools/run: "true"``, such as a Deployment's that runs the sample app) as a local
  process, with a kubeconfig carrying a TokenRequest token of the pod's ServiceAccount (so the process
  has exactly that account's RBAC), the pod's env (values, fieldRefs, among them a label or annotation
  such as the completion index an Indexed Job's pods get, ConfigMap and Secret refs) and each emptyDir
  mount mapped to a folder of its own, then reports Succeeded or Failed with the exit code (128 + the
  signal for a process killed by one, as a container runtime reports it; :meth:`NodeStandIn.kill` kills
  one, as a crashed or OOM-killed container). The process shares the node's network: it listens on
  127.0.0.1 (a pod says so with ``hostPort`` equal to ``containerPort``; the pod IP is never reached). A
  run pod with a ``readinessProbe`` (``httpGet`` or ``tcpSocket``, on 127.0.0.1 unless it names a host)
  is Ready only while the probe passes: it is probed every :attr:`NodeStandIn.probe_interval` (time is
  compressed: ``periodSeconds`` and ``initialDelaySeconds`` are not waited for), with the probe's
  ``successThreshold`` and ``failureThreshold``; other probe kinds are not run. A process that exits is
  not restarted (``restartPolicy`` is not honoured): its pod ends Succeeded or Failed;
- serves container logs on a TLS port published in the Node's ``daemonEndpoints``, so ``kubectl logs``
  works through the apiserver;
- finishes graceful deletions (the kubelet's final ``DELETE`` with grace period 0), so namespaces,
  ReplicaSets and Jobs can be deleted; a pod's process still running is stopped first (SIGTERM, then
  SIGKILL after the pod's grace period, at most :attr:`NodeStandIn.grace_limit`), as at
  :meth:`NodeStandIn.stop`.

It polls the pod list (every 0.1 s) rather than watching: it is simpler, and a test cluster has few pods.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import http.server
import os
import re
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import KubeError, KubeNotFoundError
from ..kube import GVR, PODS, Kube, KubeOptions
from .common import self_signed_certificate
from .controlplane import ControlPlane

NODES = GVR("", "v1", "nodes", namespaced=False)
LEASES = GVR("coordination.k8s.io", "v1", "leases")
CONFIGMAPS = GVR("", "v1", "configmaps")
SECRETS = GVR("", "v1", "secrets")
READY_ANNOTATION = "testing.iter8.tools/ready"
#: A pod annotated with this set to ``"true"`` has its command run by the default :attr:`NodeStandIn.runs`.
RUN_ANNOTATION = "testing.iter8.tools/run"
UNPULLABLE = "127.0.0.1:1/"
_LOG_PATH = re.compile(r"^/containerLogs/([^/]+)/([^/]+)/([^/?]+)")
#: ``metadata.labels['KEY']`` or ``metadata.annotations['KEY']`` in a fieldRef.
_FIELD_KEY = re.compile(r"^metadata\.(labels|annotations)\['([^']+)'\]$")
Obj = dict[str, Any]


def _now(micro: bool = False) -> str:
    stamp = datetime.now(UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if micro else stamp.strftime("%Y-%m-%dT%H:%M:%SZ")


def _owned_by_job(pod: Obj) -> bool:
    return any(ref.get("kind") == "Job" for ref in pod["metadata"].get("ownerReferences") or [])


def runs_by_default(pod: Obj) -> bool:
    """The pods whose command the stand-in runs unless told otherwise: Jobs' and those annotated
    ``testing.iter8.tools/run: "true"``."""
    annotations = pod["metadata"].get("annotations") or {}
    return _owned_by_job(pod) or annotations.get(RUN_ANNOTATION) == "true"


@dataclass
class _Pod:
    """What the stand-in knows of one pod it runs or reports (keyed by uid)."""

    namespace: str
    name: str
    ip: str
    ready: bool | None = None
    #: Whether its command was run (or failed to start).
    started: bool = False
    process: subprocess.Popen[bytes] | None = None
    logs: dict[str, bytearray] = field(default_factory=dict)
    #: The readiness probe's current outcome; None when the pod has no probe the stand-in runs.
    probe_ok: bool | None = None
    #: Its process has ended and the end was reported: nothing reports Running again.
    finished: bool = False
    #: Its deletion is stopping the process: the final ``DELETE`` follows the process's end.
    terminating: bool = False
    #: Held while its status is reported, so that a late "Running" never overwrites the end.
    report_lock: threading.Lock = field(default_factory=threading.Lock)


class NodeStandIn:
    """Plays the kubelet of one Node (see the module docstring).

    :param control_plane: the cluster to join.
    :param name: the Node's name.
    :param workdir: where processes run and emptyDirs live (default: under the control plane's directory).
    """

    def __init__(
        self, control_plane: ControlPlane, *, name: str = "iter8-node", workdir: Path | None = None
    ) -> None:
        self.control_plane = control_plane
        self.name = name
        self.workdir = workdir or control_plane.directory / "node"
        self.workdir.mkdir(parents=True, exist_ok=True)
        #: Which pods have their command run; the others are only reported Running.
        self.runs: Callable[[Obj], bool] = runs_by_default
        #: Seconds between two readiness probes of a run pod.
        self.probe_interval = 0.1
        #: The longest a process is given to end after SIGTERM (deletion, :meth:`stop`) before SIGKILL.
        self.grace_limit = 5.0
        #: Extra environment for every process run (e.g. ``PATH``, ``PYTHONPATH`` of the code under test).
        self.env: dict[str, str] = {}
        #: The ENTRYPOINT of images whose pods give only ``args`` (there are no images to read it from).
        self.entrypoints: dict[str, list[str]] = {}
        self._held: set[tuple[str, str]] = set()
        self._pods: dict[str, _Pod] = {}
        self._allocated = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._loop_thread: threading.Thread | None = None
        self._logs_server: http.server.ThreadingHTTPServer | None = None

    # --- lifecycle -------------------------------------------------------------------------------

    def start(self) -> NodeStandIn:
        self._kube = Kube(KubeOptions(kubeconfig=str(self.control_plane.kubeconfig)))
        self._serve_logs()
        assert self._logs_server is not None
        node = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": self.name,
                "labels": {
                    "kubernetes.io/hostname": self.name,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    "type": "iter8-stand-in",
                },
            },
        }
        with contextlib.suppress(KubeError):
            self._kube.create(NODES, node)
        self._heartbeat()
        self._loop_thread = self._spawn(self._loop, "node-standin-pods")
        return self

    def stop(self) -> None:
        """Stop polling, stop every process still running (SIGTERM, then SIGKILL after
        :attr:`grace_limit`) and close the log server. Stopping again does nothing."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        if self._loop_thread is not None:
            self._loop_thread.join(10)  # after this, no process is started any more
        with self._lock:
            processes = [p.process for p in self._pods.values() if p.process is not None]
        _stop_processes(processes, self.grace_limit)
        for thread in list(self._threads):
            thread.join(10)
        if self._logs_server is not None:
            self._logs_server.shutdown()
            self._logs_server.server_close()
        self._kube.close()

    def __enter__(self) -> NodeStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _spawn(self, target: Callable[..., None], name: str, *args: Any) -> threading.Thread:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        thread.start()
        return thread

    # --- readiness -------------------------------------------------------------------------------

    def hold(self, namespace: str, prefix: str) -> None:
        """Report pods in ``namespace`` whose names start with ``prefix`` not ready, until :meth:`release`."""
        with self._lock:
            self._held.add((namespace, prefix))

    def release(self, namespace: str, prefix: str) -> None:
        with self._lock:
            self._held.discard((namespace, prefix))

    def _wants_ready(self, pod: Obj) -> bool:
        meta = pod["metadata"]
        if (meta.get("annotations") or {}).get(READY_ANNOTATION) == "false":
            return False
        return not any(meta["namespace"] == ns and meta["name"].startswith(p) for ns, p in self._held)

    def kill(self, namespace: str, prefix: str) -> list[str]:
        """Kill (SIGKILL) the running processes of pods in ``namespace`` whose names start with
        ``prefix``; their pods then fail with exit code 137. Returns the pods' names."""
        with self._lock:
            victims = [
                pod
                for pod in self._pods.values()
                if pod.namespace == namespace
                and pod.name.startswith(prefix)
                and pod.process is not None
                and pod.process.poll() is None
            ]
        for pod in victims:
            assert pod.process is not None
            pod.process.kill()
        return [pod.name for pod in victims]

    # --- the node --------------------------------------------------------------------------------

    def _heartbeat(self) -> None:
        assert self._logs_server is not None
        port = self._logs_server.server_address[1]
        stamp = _now()
        conditions = [
            {"type": t, "status": "False", "reason": f"KubeletHas{r}", "lastHeartbeatTime": stamp,
             "lastTransitionTime": stamp}
            for t, r in (("MemoryPressure", "SufficientMemory"), ("DiskPressure", "NoDiskPressure"),
                         ("PIDPressure", "SufficientPID"))
        ]  # fmt: skip
        conditions.append(
            {"type": "Ready", "status": "True", "reason": "KubeletReady", "lastHeartbeatTime": stamp,
             "lastTransitionTime": stamp, "message": "kubelet is posting ready status (stand-in)"}
        )  # fmt: skip
        capacity = {"cpu": "16", "memory": "64Gi", "pods": "250", "ephemeral-storage": "100Gi"}
        status = {
            "conditions": conditions,
            "addresses": [
                {"type": "InternalIP", "address": "127.0.0.1"},
                {"type": "Hostname", "address": self.name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
            "capacity": capacity,
            "allocatable": capacity,
            "nodeInfo": {
                "kubeletVersion": "v1.36.2", "kubeProxyVersion": "", "operatingSystem": "linux",
                "architecture": "amd64", "containerRuntimeVersion": "stand-in://0", "osImage": "stand-in",
                "kernelVersion": "", "machineID": "", "systemUUID": "", "bootID": "",
            },
        }  # fmt: skip
        self._kube.request(
            "PATCH",
            NODES.path(None, self.name, "status"),
            body={"status": status},
            content_type="application/merge-patch+json",
        )
        lease = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.name, "namespace": "kube-node-lease"},
            "spec": {"holderIdentity": self.name, "leaseDurationSeconds": 40, "renewTime": _now(micro=True)},
        }
        self._kube.apply(LEASES, lease, "kube-node-lease")

    def _loop(self) -> None:
        beat = time.monotonic()
        while not self._stopping.is_set():
            # A failure (a namespace going away, a conflict) is for the next round to see again; it
            # must not hold back the other pods of this one.
            with contextlib.suppress(KubeError):
                if time.monotonic() - beat > 10:
                    self._heartbeat()
                    beat = time.monotonic()
                for pod in self._all_pods():
                    with contextlib.suppress(KubeError):
                        self._sync(pod)
            self._stopping.wait(0.1)

    def _all_pods(self) -> list[Obj]:
        items: list[Obj] = self._kube.request("GET", "/api/v1/pods").get("items") or []
        return items

    # --- pods ------------------------------------------------------------------------------------

    def _sync(self, pod: Obj) -> None:
        meta, spec = pod["metadata"], pod["spec"]
        uid, namespace, name = meta["uid"], meta["namespace"], meta["name"]
        if meta.get("deletionTimestamp"):
            self._finish_deletion(pod)
            return
        if not spec.get("nodeName"):
            self._kube.request(
                "POST",
                PODS.path(namespace, name, "binding"),
                body={"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name},
                      "target": {"apiVersion": "v1", "kind": "Node", "name": self.name}},
            )  # fmt: skip
            return
        if spec["nodeName"] != self.name or (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            return
        with self._lock:
            known = self._pods.get(uid)
            if known is None:
                self._allocated += 1
                ip = f"198.18.{self._allocated >> 8 & 255}.{self._allocated & 255}"
                known = self._pods[uid] = _Pod(namespace, name, ip)
            ready = self._wants_ready(pod)
        if known.started:
            self._report_running(pod, known, wanted=ready)
        elif self.runs(pod) and not self._unpullable(pod):
            self._run(pod, known, wanted=ready)
        elif known.ready != ready:
            self._report(pod, known, ready=ready)
            known.ready = ready

    def _report_running(self, pod: Obj, known: _Pod, *, wanted: bool) -> None:
        """Report a run pod's readiness when it changed: wanted (not held back) and its probe passing."""
        with known.report_lock:
            if known.finished or known.terminating:
                return
            ready = wanted and known.probe_ok is not False
            if ready != known.ready:
                self._report(pod, known, ready=ready)
                known.ready = ready

    @staticmethod
    def _unpullable(pod: Obj) -> bool:
        return any(str(c.get("image", "")).startswith(UNPULLABLE) for c in pod["spec"]["containers"])

    def _report(
        self, pod: Obj, known: _Pod, *, ready: bool, terminated: dict[str, Any] | None = None
    ) -> None:
        meta, spec = pod["metadata"], pod["spec"]
        stamp = _now()
        started = (pod.get("status") or {}).get("startTime") or stamp
        unpullable = self._unpullable(pod)
        ready = ready and not unpullable and terminated is None

        def condition(kind: str, ok: bool) -> Obj:
            return {"type": kind, "status": "True" if ok else "False", "lastTransitionTime": stamp}

        containers = []
        for c in spec["containers"]:
            if terminated is not None:
                state: Obj = {"terminated": {**terminated, "startedAt": started, "finishedAt": stamp}}
            elif unpullable:
                state = {"waiting": {"reason": "ErrImagePull", "message": f"cannot pull {c.get('image')}"}}
            else:
                state = {"running": {"startedAt": started}}
            containers.append(
                {"name": c["name"], "image": c.get("image", ""), "imageID": "", "ready": ready,
                 "started": "running" in state, "restartCount": 0, "state": state,
                 "containerID": f"stand-in://{meta['uid']}-{c['name']}"}
            )  # fmt: skip
        if terminated is not None:
            phase = "Succeeded" if terminated["exitCode"] == 0 else "Failed"
        else:
            phase = "Pending" if unpullable else "Running"
        status = {
            "phase": phase,
            "hostIP": "127.0.0.1",
            "hostIPs": [{"ip": "127.0.0.1"}],
            "podIP": known.ip,
            "podIPs": [{"ip": known.ip}],
            "startTime": started,
            "conditions": [
                condition("PodReadyToStartContainers", True),
                condition("Initialized", True),
                condition("Ready", ready),
                condition("ContainersReady", ready),
                condition("PodScheduled", True),
            ],
            "containerStatuses": containers,
        }
        self._kube.request(
            "PATCH",
            PODS.path(meta["namespace"], meta["name"], "status"),
            body={"status": status},
            content_type="application/strategic-merge-patch+json",
        )

    def _finish_deletion(self, pod: Obj) -> None:
        meta = pod["metadata"]
        with self._lock:
            known = self._pods.get(meta["uid"])
            if known is not None and known.terminating:
                return  # its process is being stopped; the final DELETE follows
            running = known is not None and known.process is not None and known.process.poll() is None
            if known is not None and running:
                known.terminating = True
            else:
                self._pods.pop(meta["uid"], None)
        if known is not None and running:
            self._spawn(self._terminate, f"node-standin-stop-{meta['name']}", pod, known)
            return
        self._delete_finally(pod)

    def _terminate(self, pod: Obj, known: _Pod) -> None:
        """Stop a deleted pod's process as a kubelet does (SIGTERM, SIGKILL after the grace period),
        then remove the pod."""
        meta = pod["metadata"]
        asked = meta.get("deletionGracePeriodSeconds", pod["spec"].get("terminationGracePeriodSeconds", 30))
        assert known.process is not None
        _stop_processes([known.process], min(float(asked or 0), self.grace_limit))
        with self._lock:
            self._pods.pop(meta["uid"], None)
        with contextlib.suppress(KubeError):
            self._delete_finally(pod)

    def _delete_finally(self, pod: Obj) -> None:
        meta = pod["metadata"]
        with contextlib.suppress(KubeNotFoundError):
            self._kube.request(
                "DELETE",
                PODS.path(meta["namespace"], meta["name"]),
                body={"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0,
                      "preconditions": {"uid": meta["uid"]}},
            )  # fmt: skip

    # --- processes -------------------------------------------------------------------------------

    def _run(self, pod: Obj, known: _Pod, *, wanted: bool) -> None:
        meta, spec = pod["metadata"], pod["spec"]
        container = spec["containers"][0]
        folder = self.workdir / meta["namespace"] / meta["name"]
        folder.mkdir(parents=True, exist_ok=True)
        command = container.get("command") or self.entrypoints.get(container.get("image", ""), [])
        argv = [*command, *(container.get("args") or [])]
        env = self._env(pod, known, container, folder)
        log = known.logs.setdefault(container["name"], bytearray())
        known.started = True
        try:
            known.process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                cwd=folder,
            )  # fmt: skip
        except OSError as exc:
            log += f"stand-in: cannot start {argv[:1]}: {exc}\n".encode()
            with known.report_lock:
                known.finished = True
                self._report(pod, known, ready=False, terminated={"exitCode": 128, "reason": "StartError"})
            return
        probe = container.get("readinessProbe") or {}
        if "httpGet" in probe or "tcpSocket" in probe:
            known.probe_ok = False  # as a kubelet: not ready before the first success
            self._spawn(self._probe, f"node-standin-probe-{meta['name']}", known, container, probe)
        self._spawn(self._wait, f"node-standin-{meta['name']}", pod, known, log)
        self._report_running(pod, known, wanted=wanted)

    def _wait(self, pod: Obj, known: _Pod, log: bytearray) -> None:
        process = known.process
        assert process is not None
        assert process.stdout is not None
        with process.stdout:
            while chunk := os.read(process.stdout.fileno(), 65536):
                log += chunk
        code = process.wait()
        if code < 0:
            code = 128 - code  # killed by a signal: a runtime reports 128 + its number
        with known.report_lock:
            known.finished = True
            if known.terminating:
                return  # a deleted pod: its final DELETE follows, no status to report
            with contextlib.suppress(KubeError):
                self._report(
                    pod,
                    known,
                    ready=False,
                    terminated={"exitCode": code, "reason": "Completed" if code == 0 else "Error"},
                )

    def _probe(self, known: _Pod, container: Obj, probe: Obj) -> None:
        """Run a readiness probe against the process until it ends, setting ``known.probe_ok``."""
        process = known.process
        assert process is not None
        successes_needed = int(probe.get("successThreshold") or 1)
        failures_allowed = int(probe.get("failureThreshold") or 3)
        timeout = min(float(probe.get("timeoutSeconds") or 1), 1.0)
        successes = failures = 0
        while not self._stopping.is_set() and process.poll() is None and not known.terminating:
            if _probe_once(probe, container, timeout):
                successes, failures = successes + 1, 0
                if successes >= successes_needed:
                    known.probe_ok = True
            else:
                successes, failures = 0, failures + 1
                if failures >= failures_allowed:
                    known.probe_ok = False
            self._stopping.wait(self.probe_interval)

    def _env(self, pod: Obj, known: _Pod, container: Obj, folder: Path) -> dict[str, str]:
        meta, spec = pod["metadata"], pod["spec"]
        namespace = meta["namespace"]
        account = spec.get("serviceAccountName") or "default"
        token = self.control_plane.token(namespace, account)
        kubeconfig = self.control_plane.kubeconfig_for(token, folder / "kubeconfig", namespace=namespace)
        mounts: dict[str, str] = {}
        empty_dirs = {v["name"] for v in spec.get("volumes") or [] if "emptyDir" in v}
        for mount in container.get("volumeMounts") or []:
            if mount["name"] in empty_dirs:
                local = folder / "volumes" / mount["name"]
                local.mkdir(parents=True, exist_ok=True)
                mounts[mount["mountPath"].rstrip("/")] = str(local)

        def local_path(value: str) -> str:
            for path, local in mounts.items():
                if value == path or value.startswith(path + "/"):
                    return local + value[len(path) :]
            return value

        fields = {
            "metadata.name": meta["name"],
            "metadata.namespace": namespace,
            "metadata.uid": meta["uid"],
            "spec.serviceAccountName": account,
            "spec.nodeName": self.name,
            "status.podIP": known.ip,
            "status.hostIP": "127.0.0.1",
        }
        env = {k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_")}
        env.update(self.env)
        for source in container.get("envFrom") or []:
            prefix = source.get("prefix", "")
            if "configMapRef" in source:
                env.update(
                    {
                        prefix + k: v
                        for k, v in self._data(CONFIGMAPS, source["configMapRef"]["name"], namespace).items()
                    }
                )
            if "secretRef" in source:
                env.update(
                    {
                        prefix + k: v
                        for k, v in self._data(SECRETS, source["secretRef"]["name"], namespace).items()
                    }
                )
        for var in container.get("env") or []:
            ref = var.get("valueFrom") or {}
            if "value" in var:
                env[var["name"]] = local_path(str(var["value"]))
            elif "fieldRef" in ref:
                path = ref["fieldRef"].get("fieldPath", "")
                keyed = _FIELD_KEY.match(path)
                if keyed is not None:
                    env[var["name"]] = str((meta.get(keyed.group(1)) or {}).get(keyed.group(2), ""))
                else:
                    env[var["name"]] = fields.get(path, "")
            elif "configMapKeyRef" in ref or "secretKeyRef" in ref:
                gvr, key_ref = (
                    (CONFIGMAPS, ref["configMapKeyRef"])
                    if "configMapKeyRef" in ref
                    else (SECRETS, ref["secretKeyRef"])
                )
                data = self._data(gvr, key_ref["name"], namespace)
                if key_ref["key"] in data:
                    env[var["name"]] = data[key_ref["key"]]
        env["KUBECONFIG"] = str(kubeconfig)
        return env

    def _data(self, gvr: GVR, name: str, namespace: str) -> dict[str, str]:
        obj = self._kube.find(gvr, name, namespace) or {}
        data = {k: str(v) for k, v in (obj.get("data") or {}).items()}
        if gvr is SECRETS:
            data = {k: base64.b64decode(v).decode(errors="replace") for k, v in data.items()}
        return data

    # --- logs ------------------------------------------------------------------------------------

    def logs(self, namespace: str, pod: str, container: str | None = None) -> str:
        """What the process of a pod has printed so far."""
        with self._lock:
            for known in self._pods.values():
                if (known.namespace, known.name) == (namespace, pod):
                    chunks = [bytes(v) for k, v in known.logs.items() if container in (None, k)]
                    return b"".join(chunks).decode(errors="replace")
        return ""

    def _serve_logs(self) -> None:
        stand_in = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                match = _LOG_PATH.match(self.path)
                if match is None:
                    self.send_error(404)
                    return
                body = stand_in.logs(*match.groups()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        cert, key = self_signed_certificate(self.workdir, "kubelet")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        server.socket = context.wrap_socket(server.socket, server_side=True)
        self._logs_server = server
        thread = threading.Thread(target=server.serve_forever, name="node-standin-logs", daemon=True)
        thread.start()


def _stop_processes(processes: list[subprocess.Popen[bytes]], grace: float) -> None:
    """SIGTERM each running process, then SIGKILL those still running after ``grace`` seconds."""
    running = [p for p in processes if p.poll() is None]
    for process in running:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
    deadline = time.monotonic() + grace
    for process in running:
        try:
            process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _probe_port(port: Any, container: Obj) -> int | None:
    """A probe's port: a number, or the name of one of the container's ports."""
    if isinstance(port, int):
        return port
    if isinstance(port, str) and port.isdigit():
        return int(port)
    for declared in container.get("ports") or []:
        if declared.get("name") == port:
            return int(declared["containerPort"])
    return None


def _probe_once(probe: Obj, container: Obj, timeout: float) -> bool:
    """One readiness probe, as a kubelet runs it: an HTTP GET answered 200-399, or a TCP connect."""
    action = probe.get("httpGet") or probe.get("tcpSocket") or {}
    port = _probe_port(action.get("port"), container)
    if port is None:
        return False
    host = action.get("host") or "127.0.0.1"
    if "tcpSocket" in probe:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
        except OSError:
            return False
        return True
    connection: http.client.HTTPConnection
    if str(action.get("scheme", "HTTP")).upper() == "HTTPS":
        # A kubelet does not verify the certificate of an HTTPS probe either.
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        connection = http.client.HTTPSConnection(host, port, timeout=timeout, context=context)
    else:
        connection = http.client.HTTPConnection(host, port, timeout=timeout)
    headers = {h["name"]: h["value"] for h in action.get("httpHeaders") or [] if "name" in h}
    try:
        connection.request("GET", action.get("path") or "/", headers=headers)
        status = connection.getresponse().status
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()
    return 200 <= status < 400
