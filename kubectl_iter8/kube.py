"""The one place that talks to the Kubernetes API.

Built on the official ``kubernetes`` client for what it does well (kubeconfig and in-cluster
configuration, authentication, TLS) but used generically: objects are plain dicts and resources
are named by group/version/resource, so custom resources need no generated classes and no
discovery round-trip. Every error becomes a :class:`~kubectl_iter8.errors.KubeError` with a
kubectl-like one-line message; transient failures (429, 5xx, connection resets) are retried with
back-off, and :meth:`Kube.update` retries read-modify-write cycles on 409 conflicts.

The client library is imported when a :class:`Kube` is created, never at module import, so that
commands that do not touch a cluster start fast.
"""

from __future__ import annotations

import builtins
import json
import os
import re
import threading
import time
import urllib.parse
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .errors import (
    KubeConflictError,
    KubeError,
    KubeForbiddenError,
    KubeGoneError,
    KubeNotFoundError,
    KubeUnreachableError,
    UsageError,
)

#: Seconds to wait before each retry of a transient failure (429, 5xx).
RETRY_DELAYS = (0.2, 0.5, 1.0, 2.0, 4.0)
#: Seconds to wait before each retry when the server did not answer at all: fail fast, it is rarely a blip.
CONNECT_RETRY_DELAYS = (0.2, 0.5)
#: How long a request reuses the Authorization header it was given (see ``Kube._auth_headers``).
AUTH_REFRESH = 1.0
#: HTTP statuses worth retrying: the server asked us to slow down or could not serve right now.
TRANSIENT = frozenset({429, 500, 502, 503, 504})
IN_CLUSTER_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
#: The Content-Type of each kind of PATCH (``apply`` is server-side apply).
PATCH_TYPES = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "apply": "application/apply-patch+yaml",
}


@dataclass(frozen=True)
class GVR:
    """A resource by API group, version and plural name (``apps/v1 deployments``)."""

    group: str
    version: str
    resource: str
    namespaced: bool = True
    #: The singular name used in messages; derived from ``resource`` when not given.
    singular: str = ""

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def name(self) -> str:
        """The singular name for messages: ``secret``, ``deployment``, ``ingress``."""
        if self.singular:
            return self.singular
        plural = self.resource
        for ending, replacement in (("ies", "y"), ("sses", "ss"), ("xes", "x"), ("s", "")):
            if plural.endswith(ending):
                return plural[: -len(ending)] + replacement
        return plural

    def path(
        self, namespace: str | None = None, name: str | None = None, subresource: str | None = None
    ) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{urllib.parse.quote(namespace)}"
        base += f"/{self.resource}"
        if name:
            base += f"/{urllib.parse.quote(name)}"
        if subresource:
            base += f"/{subresource}"
        return base


SECRETS = GVR("", "v1", "secrets")
SERVICE_ACCOUNTS = GVR("", "v1", "serviceaccounts")
PODS = GVR("", "v1", "pods")
NAMESPACES = GVR("", "v1", "namespaces", namespaced=False)
ROLES = GVR("rbac.authorization.k8s.io", "v1", "roles")
ROLE_BINDINGS = GVR("rbac.authorization.k8s.io", "v1", "rolebindings")
JOBS = GVR("batch", "v1", "jobs")
CRON_JOBS = GVR("batch", "v1", "cronjobs")
DEPLOYMENTS = GVR("apps", "v1", "deployments")
CONFIGMAPS = GVR("", "v1", "configmaps")
EVENTS = GVR("", "v1", "events")
LEASES = GVR("coordination.k8s.io", "v1", "leases")


@dataclass(frozen=True)
class KubeOptions:
    """Where to connect, as kubectl's flags say it (``--kubeconfig``, ``--context``, ``-n``)."""

    kubeconfig: str | None = None
    context: str | None = None
    namespace: str | None = None


class Kube:
    """A connection to one cluster, with a default namespace."""

    def __init__(self, options: KubeOptions | None = None) -> None:
        options = options or KubeOptions()
        from kubernetes import client, config
        from kubernetes.config.config_exception import ConfigException

        self._client = client
        path = options.kubeconfig or os.environ.get("KUBECONFIG")
        in_cluster = not path and "KUBERNETES_SERVICE_HOST" in os.environ
        try:
            if in_cluster:
                configuration = client.Configuration()
                config.load_incluster_config(client_configuration=configuration)
                configuration.retries = False
                self.api = client.ApiClient(configuration)
                context_namespace = _read(IN_CLUSTER_NAMESPACE)
            else:
                if path is None and not os.path.exists(os.path.expanduser("~/.kube/config")):
                    raise UsageError(
                        "no kubeconfig: pass --kubeconfig, set KUBECONFIG, or create ~/.kube/config"
                    )
                missing = [p for p in (path or "").split(os.pathsep) if p and not os.path.exists(p)]
                if missing:
                    flag = "--kubeconfig" if options.kubeconfig else "KUBECONFIG"
                    raise UsageError(f"{flag}: {missing[0]}: no such file")
                configuration = client.Configuration()
                config.load_kube_config(
                    config_file=path, context=options.context, client_configuration=configuration
                )
                configuration.retries = False  # retries are ours (see request), not urllib3's as well
                if not configuration.verify_ssl:
                    _quiet_unverified_https(str(configuration.host))
                self.api = client.ApiClient(configuration)
                context_namespace = _context_namespace(path, options.context)
        except ConfigException as exc:
            raise UsageError(f"kubeconfig: {_first_line(exc)}") from None
        except FileNotFoundError as exc:
            raise UsageError(f"--kubeconfig: {exc.filename}: no such file") from None
        self.host = str(self.api.configuration.host)
        self.namespace = options.namespace or context_namespace or "default"
        #: Seconds to wait before each retry of a transient failure; the controller shortens them,
        #: because its work queue retries with its own back-off.
        self.retry_delays: tuple[float, ...] = RETRY_DELAYS
        self._discovered: dict[str, dict[str, GVR]] = {}
        self._auth_cache: tuple[float, dict[str, str]] | None = None
        self._discovery_lock = threading.Lock()

    def close(self) -> None:
        self.api.close()

    def __enter__(self) -> Kube:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------------------------------------
    # Requests

    def request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        what: tuple[str, str] = ("", ""),
        raw: bool = False,
        timeout: float = 30,
    ) -> Any:
        """Send one request and return the decoded JSON (or text with ``raw``), retrying transient failures.

        :param what: how messages name the object and where it is: (``secret "x"``, `` in namespace "y"``).
        """
        from urllib3.exceptions import HTTPError

        rest = self._client.rest
        url = self.host + path + (f"?{urllib.parse.urlencode(query)}" if query else "")
        headers = {"Accept": "application/json", "Content-Type": content_type, **self._auth_headers()}
        unanswered = 0
        reauthorized = False
        for delay in (*self.retry_delays, None):
            try:
                response = self.api.call_api(
                    method, url, header_params=headers, body=body, _request_timeout=timeout
                )
                payload = response.read()
            except (HTTPError, OSError, rest.ApiException) as exc:
                unanswered += 1
                if delay is None or unanswered > len(CONNECT_RETRY_DELAYS):
                    raise KubeUnreachableError(
                        f"cannot reach the Kubernetes API server at {self.host}: {_cause(exc)}"
                    ) from None
                time.sleep(CONNECT_RETRY_DELAYS[unanswered - 1])
                continue
            status = int(response.status)
            if 200 <= status < 300:
                text = payload.decode("utf-8") if payload else ""
                return text if raw else (json.loads(text) if text else {})
            if status == 401 and not reauthorized and delay is not None:
                # The remembered token may have just expired: ask the loader for a fresh one, once.
                reauthorized = True
                self._auth_cache = None
                headers.update(self._auth_headers())
                continue
            if status in TRANSIENT and delay is not None:
                retry_after = response.getheader("Retry-After")
                time.sleep(float(retry_after) if retry_after and retry_after.isdigit() else delay)
                continue
            raise _error(status, payload, what if what[0] else (path, ""))
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def _auth_headers(self) -> dict[str, str]:
        """The Authorization header, asked of the kubeconfig loader at most once per
        :data:`AUTH_REFRESH` seconds: its refresh hook re-applies the whole configuration, proxies
        from the environment included, which was a quarter of every request's CPU time."""
        now = time.monotonic()
        cached = self._auth_cache
        if cached is not None and now - cached[0] < AUTH_REFRESH:
            return cached[1]
        headers: dict[str, str] = {}
        self.api.update_params_for_auth(headers, None, ["BearerToken"], "", "GET", None)
        self._auth_cache = (now, headers)
        return headers

    def get(self, gvr: GVR, name: str, namespace: str | None = None) -> dict[str, Any]:
        ns = self._ns(gvr, namespace)
        result: dict[str, Any] = self.request("GET", gvr.path(ns, name), what=_what(gvr, name, ns))
        return result

    def find(self, gvr: GVR, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        try:
            return self.get(gvr, name, namespace)
        except KubeNotFoundError:
            return None

    def list(
        self, gvr: GVR, namespace: str | None = None, *, label_selector: str = ""
    ) -> list[dict[str, Any]]:
        ns = self._ns(gvr, namespace)
        query = {"labelSelector": label_selector} if label_selector else None
        items: list[dict[str, Any]] = self.request(
            "GET", gvr.path(ns), query=query, what=(gvr.resource, _where(ns))
        ).get("items", [])
        return items

    def create(self, gvr: GVR, obj: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
        ns = self._ns(gvr, namespace)
        name = obj.get("metadata", {}).get("name", "")
        result: dict[str, Any] = self.request("POST", gvr.path(ns), body=obj, what=_what(gvr, name, ns))
        return result

    def replace(self, gvr: GVR, obj: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
        ns = self._ns(gvr, namespace)
        name = obj["metadata"]["name"]
        result: dict[str, Any] = self.request("PUT", gvr.path(ns, name), body=obj, what=_what(gvr, name, ns))
        return result

    def patch(
        self, gvr: GVR, name: str, patch: Any, namespace: str | None = None, *, kind: str = "merge"
    ) -> dict[str, Any]:
        """Patch with ``kind`` ``merge``, ``json`` or ``strategic``."""
        ns = self._ns(gvr, namespace)
        result: dict[str, Any] = self.request(
            "PATCH", gvr.path(ns, name), body=patch, content_type=PATCH_TYPES[kind], what=_what(gvr, name, ns)
        )
        return result

    def delete(
        self, gvr: GVR, name: str, namespace: str | None = None, *, propagation: str = "Background"
    ) -> bool:
        """Delete the object; False when it was already gone."""
        ns = self._ns(gvr, namespace)
        try:
            self.request(
                "DELETE",
                gvr.path(ns, name),
                body={"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": propagation},
                what=_what(gvr, name, ns),
            )
        except KubeNotFoundError:
            return False
        return True

    def apply(self, gvr: GVR, obj: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
        """Create the object, or replace it (keeping its resourceVersion) when it exists."""
        ns = self._ns(gvr, namespace)
        try:
            return self.create(gvr, obj, ns)
        except KubeConflictError:
            name = obj["metadata"]["name"]
            return self.update(gvr, name, lambda current: _merge_desired(current, obj), ns)

    def update(
        self,
        gvr: GVR,
        name: str,
        mutate: Callable[[dict[str, Any]], dict[str, Any]],
        namespace: str | None = None,
        *,
        attempts: int = 10,
    ) -> dict[str, Any]:
        """Read, change with ``mutate``, and write back; start again when someone else wrote first."""
        for attempt in range(attempts):
            current = self.get(gvr, name, namespace)
            try:
                return self.replace(gvr, mutate(current), namespace)
            except KubeConflictError:
                if attempt == attempts - 1:
                    raise
                time.sleep(RETRY_DELAYS[min(attempt, len(RETRY_DELAYS) - 1)] / 4)
        raise AssertionError("unreachable")  # pragma: no cover

    def logs(self, pod: str, namespace: str | None = None, *, container: str | None = None) -> str:
        ns = namespace or self.namespace
        query = {"container": container} if container else None
        text: str = self.request(
            "GET", PODS.path(ns, pod, "log"), query=query, raw=True, what=_what(PODS, pod, ns)
        )
        return text

    def _ns(self, gvr: GVR, namespace: str | None) -> str | None:
        return (namespace or self.namespace) if gvr.namespaced else None

    # ---------------------------------------------------------------------------------------------
    # What the traffic controller needs: lists with their resourceVersion, watch streams,
    # server-side apply, discovery of a kind's resource, and Events.

    def list_versioned(
        self,
        gvr: GVR,
        namespace: str | None,
        *,
        label_selector: str = "",
        page_size: int = 500,
        transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> tuple[builtins.list[dict[str, Any]], str]:
        """The items and the list's resourceVersion; ``namespace=None`` lists every namespace.

        Read in pages of ``page_size``, each item passed through ``transform`` as its page arrives:
        an informer that keeps a few fields of 50,000 objects never holds them all whole at once.
        The resourceVersion is the first page's: the API server serves every page from that
        snapshot, and a watch from it misses nothing even where pages are not one snapshot.
        """
        ns = namespace if gvr.namespaced else None
        items: builtins.list[dict[str, Any]] = []
        token = version = ""
        while True:
            query = {"labelSelector": label_selector} if label_selector else {}
            if page_size:
                query["limit"] = str(page_size)
            if token:
                query["continue"] = token
            body = self.request("GET", gvr.path(ns), query=query or None, what=(gvr.resource, _where(ns)))
            kind = str(body.get("kind") or "").removesuffix("List")
            for item in body.get("items") or []:  # list items carry neither kind nor apiVersion
                item.setdefault("apiVersion", gvr.api_version)
                if kind:
                    item.setdefault("kind", kind)
                items.append(transform(item) if transform is not None else item)
            meta = body.get("metadata") or {}
            version = version or str(meta.get("resourceVersion", ""))
            token = str(meta.get("continue") or "")
            if not token:
                return items, version

    def watch(
        self,
        gvr: GVR,
        namespace: str | None,
        *,
        label_selector: str = "",
        resource_version: str = "",
        timeout_seconds: int = 300,
    ) -> WatchStream:
        """Open a watch from ``resource_version`` (``namespace=None``: every namespace).

        The stream yields the decoded events (``{"type": ..., "object": ...}``), ERROR events
        included (a 410 ``Expired`` arrives that way), and ends when the server closes the watch.
        An HTTP error answer raises :class:`KubeError` here, before any event.
        """
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        ns = namespace if gvr.namespaced else None
        query = {"watch": "true", "timeoutSeconds": str(timeout_seconds), "allowWatchBookmarks": "true"}
        if label_selector:
            query["labelSelector"] = label_selector
        if resource_version:
            query["resourceVersion"] = resource_version
        path = gvr.path(ns)
        url = f"{self.host}{path}?{urllib.parse.urlencode(query)}"
        headers = {"Accept": "application/json", **self._auth_headers()}
        try:
            response = self.api.call_api(
                "GET", url, header_params=headers, _request_timeout=(10, timeout_seconds + 10)
            )
        except (HTTPError, OSError, ApiException) as exc:
            raise KubeUnreachableError(
                f"cannot reach the Kubernetes API server at {self.host}: {_cause(exc)}"
            ) from None
        status = int(response.status)
        if not 200 <= status < 300:
            raise _error(status, response.read(), (gvr.resource, _where(ns)))
        return WatchStream(response.response)

    def apply_server_side(
        self,
        gvr: GVR,
        obj: dict[str, Any],
        namespace: str | None = None,
        *,
        field_manager: str,
        force: bool = True,
    ) -> dict[str, Any]:
        """Server-side apply ``obj`` as ``field_manager``; with ``force``, taking over fields others
        own, else a field another manager set to another value is a :class:`KubeConflictError`."""
        ns = self._ns(gvr, namespace)
        name = obj["metadata"]["name"]
        result: dict[str, Any] = self.request(
            "PATCH",
            gvr.path(ns, name),
            query={"fieldManager": field_manager, "force": "true" if force else "false"},
            body=obj,
            content_type=PATCH_TYPES["apply"],
            what=_what(gvr, name, ns),
        )
        return result

    def resource_for(self, api_version: str, kind: str) -> GVR:
        """The resource that serves ``kind`` in ``api_version``, found through API discovery (cached).

        :raises UsageError: when the API server serves no such kind.
        """
        with self._discovery_lock:
            kinds = self._discovered.get(api_version)
        if kinds is None:
            group, _, version = api_version.rpartition("/")
            path = f"/apis/{api_version}" if group else f"/api/{version}"
            try:
                body = self.request("GET", path, what=(f'API group "{api_version}"', ""))
            except KubeNotFoundError:
                body = {}
            kinds = {}
            for res in body.get("resources") or []:
                if "/" in str(res.get("name", "")):
                    continue  # subresources
                kinds[str(res.get("kind"))] = GVR(
                    group, version, str(res["name"]), bool(res.get("namespaced", True))
                )
            with self._discovery_lock:
                self._discovered[api_version] = kinds
        gvr = kinds.get(kind)
        if gvr is None:
            raise UsageError(f"the API server does not serve kind {kind!r} in {api_version!r}")
        return gvr

    def record_event(
        self,
        involved: dict[str, Any],
        *,
        reason: str,
        message: str,
        type: str = "Normal",
        component: str = "iter8-controller",
    ) -> dict[str, Any]:
        """Create a core/v1 Event about ``involved`` (an object with apiVersion, kind and metadata)."""
        meta = involved.get("metadata") or {}
        namespace = meta.get("namespace") or self.namespace
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{meta.get('name', 'object')}.", "namespace": namespace},
            "involvedObject": {
                "apiVersion": involved.get("apiVersion", ""),
                "kind": involved.get("kind", ""),
                "name": meta.get("name", ""),
                "namespace": namespace,
                "uid": meta.get("uid", ""),
                "resourceVersion": meta.get("resourceVersion", ""),
            },
            "reason": reason,
            "message": message[:1024],
            "type": type,
            "source": {"component": component},
            "reportingComponent": component,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        return self.create(EVENTS, event, namespace)


class WatchStream:
    """One open watch: iterate for events; :meth:`close` (from any thread) ends the iteration."""

    def __init__(self, response: Any) -> None:
        self._response = response
        self._closed = False
        self._iterating = False

    def __iter__(self) -> Iterator[dict[str, Any]]:
        from urllib3.exceptions import HTTPError

        self._iterating = True
        buffer = b""
        try:
            for chunk in self._response.stream(65536, decode_content=True):
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if line.strip():
                        yield json.loads(line)
            if buffer.strip() and not self._closed:
                yield json.loads(buffer)
        except (HTTPError, OSError, ValueError) as exc:
            if self._closed:
                return
            raise KubeUnreachableError(f"the watch stream broke: {_cause(exc)}") from None
        finally:
            self._closed = True
            self._response.release_conn()

    def close(self) -> None:
        """Stop reading: the iteration ends (thread-safe, idempotent)."""
        if self._closed:
            return
        self._closed = True
        # shutdown() (urllib3 >= 2.3) unblocks a read in progress in another thread.
        shutdown = getattr(self._response, "shutdown", None)
        if shutdown is not None:
            shutdown()
        if not self._iterating:
            self._response.release_conn()


def _merge_desired(current: dict[str, Any], desired: dict[str, Any]) -> dict[str, Any]:
    """``desired`` with the identity the server gave ``current`` (resourceVersion, uid) kept."""
    merged = json.loads(json.dumps(desired))
    meta = merged.setdefault("metadata", {})
    meta["resourceVersion"] = current["metadata"]["resourceVersion"]
    for key in ("uid", "creationTimestamp", "finalizers"):
        if key in current["metadata"] and key not in meta:
            meta[key] = current["metadata"][key]
    return dict(merged)


def _where(namespace: str | None) -> str:
    return f' in namespace "{namespace}"' if namespace else ""


def _what(gvr: GVR, name: str, namespace: str | None) -> tuple[str, str]:
    return f'{gvr.name} "{name}"', _where(namespace)


def status_error(status: dict[str, Any], subject: str) -> KubeError:
    """The error a Kubernetes ``Status`` object (a watch's ERROR event) stands for."""
    return _error(int(status.get("code") or 500), json.dumps(status).encode(), (subject, ""))


def _error(status: int, payload: bytes, what: tuple[str, str]) -> KubeError:
    subject, where = what
    try:
        body = json.loads(payload)
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    reason = str(body.get("reason", ""))
    message = str(body.get("message", "")) or payload.decode("utf-8", "replace").strip()[:200]
    if status == 404:
        details = body.get("details") or {}
        if details.get("kind") == "namespaces":
            return KubeNotFoundError(
                f'namespace "{details.get("name")}" not found', status=status, reason=reason
            )
        return KubeNotFoundError(f"{subject} not found{where}", status=status, reason=reason)
    if status == 409:
        if reason == "AlreadyExists":
            return KubeConflictError(f"{subject} already exists{where}", status=status, reason=reason)
        return KubeConflictError(
            f"{subject}{where} was changed by someone else: {message}", status=status, reason=reason
        )
    if status == 410:
        return KubeGoneError(
            f"{subject}{where}: {message or 'history expired'}", status=status, reason=reason
        )
    if status in (401, 403):
        label = "unauthorized" if status == 401 else "forbidden"
        return KubeForbiddenError(f"{label}: {message or subject + where}", status=status, reason=reason)
    return KubeError(
        f"the API server refused the request for {subject}{where}: {status} {reason}: {message}",
        status=status,
        reason=reason,
    )


_CAUSES = {
    "Connection refused": "connection refused",
    "timed out": "timed out",
    "Name or service not known": "unknown host",
    "CERTIFICATE_VERIFY_FAILED": "TLS certificate not trusted",
}


def _cause(exc: BaseException) -> str:
    text = str(getattr(exc, "reason", None) or exc)
    return next((short for marker, short in _CAUSES.items() if marker in text), _first_line(exc))


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _quiet_unverified_https(server: str) -> None:
    """Silence urllib3's warning for every request to ``server``, which the kubeconfig chose not to verify.

    kubectl says nothing about ``insecure-skip-tls-verify: true``: the user asked for it. The filter
    names the server's host, so unverified requests to any other host still warn.
    """
    from urllib3.exceptions import InsecureRequestWarning

    host = urllib.parse.urlsplit(server).hostname or ""
    warnings.filterwarnings(
        "ignore",
        message=f"Unverified HTTPS request is being made to host '{re.escape(host)}'",
        category=InsecureRequestWarning,
    )


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip() or None
    except OSError:
        return None


def _context_namespace(path: str | None, context: str | None) -> str | None:
    from kubernetes import config

    contexts, active = config.list_kube_config_contexts(config_file=path)
    chosen = next((c for c in contexts if c.get("name") == context), None) if context else active
    namespace = ((chosen or {}).get("context") or {}).get("namespace")
    return str(namespace) if namespace else None
