"""The HTTP face of the fake: an aiohttp application that speaks the Kubernetes REST protocol.

One catch-all route parses the URL the way kube-apiserver does (``/api/v1/...``, ``/apis/{group}/
{version}/...``, optional ``namespaces/{ns}``, a name, a subresource), because aiohttp's route
patterns can't tell ``/api/v1/namespaces/{ns}/{plural}`` from ``/api/v1/namespaces/{name}/status``
without knowing which resources exist, and CRDs come and go at run time. Each request is then a
verb on a :class:`~kubectl_iter8.testing.discovery.ResourceInfo`, checked against injected faults
and denials, and carried out by the :class:`~kubectl_iter8.testing.store.Store`.

Watches are newline-delimited JSON events on a chunked ``application/json`` response (kubectl
refuses other content types), filtered per watcher, ending at ``timeoutSeconds``, on
:meth:`Faults.drop_watches` or at shutdown. ``handler_cancellation`` is on so that a client that
goes away ends its handler at once and shutdown never waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml
from aiohttp import web

from . import apierrors, protobuf, tables
from .apierrors import ApiError
from .controllers import Controllers
from .discovery import REVIEWS, SCALABLE, Registry, ResourceInfo
from .faults import Faults
from .patching import APPLY_PATCH, JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH, json_patch, merge_patch
from .selectors import field_selector, label_selector, match_labels
from .store import Event, Obj, Store

_YAML_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

KUBE_VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0-fake",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.23.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}

_DROP = object()
_ABORT = object()


@dataclass(frozen=True)
class RequestRecord:
    """One HTTP request the fake answered (``FakeKube.requests``)."""

    method: str
    path: str
    status: int
    time: float


@dataclass
class _Target:
    info: ResourceInfo
    version: str
    namespace: str | None
    name: str | None
    subresource: str | None


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=json.dumps(body, separators=(",", ":")).encode(),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def _not_found_path() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource", details={})


class ApiServer:
    """Routes HTTP requests to the store; see the module docstring."""

    def __init__(self, store: Store, registry: Registry, faults: Faults, controllers: Controllers) -> None:
        self.store = store
        self.registry = registry
        self.faults = faults
        self.controllers = controllers
        self.requests: list[RequestRecord] = []
        self._watch_queues: set[asyncio.Queue[object]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        faults._dropper = self.drop_watches

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    @property
    def open_watches(self) -> int:
        return len(self._watch_queues)

    def drop_watches(self, *, abort: bool = False) -> int:
        """End every open watch (thread-safe); returns how many were open.

        Events already committed are sent first. ``abort`` cuts the connection instead of ending
        the chunked response, as a network failure would.
        """
        queues = list(self._watch_queues)
        if self._loop is not None and not self._loop.is_closed():
            for queue in queues:
                self._loop.call_soon_threadsafe(queue.put_nowait, _ABORT if abort else _DROP)
        return len(queues)

    # --- entry point -------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        status = 500
        try:
            if self.faults.latency > 0:
                await asyncio.sleep(self.faults.latency)
            response = await self._route(request)
        except ApiError as exc:
            status = exc.code
            return _json(exc.status, exc.code, exc.headers)
        else:
            status = response.status
            return response
        finally:
            self.requests.append(RequestRecord(request.method, request.path_qs, status, time.time()))

    async def _route(self, request: web.Request) -> web.StreamResponse:
        parts = [p for p in request.path.split("/") if p]
        if not parts:
            return _json({"paths": ["/api", "/api/v1", "/apis", "/openapi/v3", "/version", "/healthz"]})
        head = parts[0]
        if head == "version" and len(parts) == 1:
            return _json(KUBE_VERSION)
        if head in ("healthz", "livez", "readyz"):
            return web.Response(text="ok")
        if head == "openapi":
            if parts[1:] == ["v2"]:
                return self._openapi_v2(request)
            return self._openapi(parts)
        if head == "api":
            if len(parts) == 1:
                return _json(self.registry.api_versions())
            group, version, rest = "", parts[1], parts[2:]
        elif head == "apis":
            if len(parts) == 1:
                return _json(self.registry.api_group_list())
            if len(parts) == 2:
                doc = self.registry.api_group(parts[1])
                if doc is None:
                    raise _not_found_path()
                return _json(doc)
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise _not_found_path()
        if not rest:
            listing = self.registry.api_resource_list(group, version)
            if listing is None:
                raise _not_found_path()
            return _json(listing)
        watch_prefix = rest[0] == "watch"
        if watch_prefix:
            rest = rest[1:]
        target = self._target(group, version, rest)
        return await self._dispatch(request, target, watch_prefix)

    @staticmethod
    def _openapi_v2(request: web.Request) -> web.Response:
        """An OpenAPI v2 document without definitions.

        kubectl validates on the client what the server cannot (a ``kind: List`` manifest) with the
        v2 schema, which it fetches as protobuf and skips for kinds it does not define; an empty
        protobuf message is an empty document, so every kind passes. JSON clients get JSON.
        """
        if "protobuf" in request.headers.get("Accept", ""):
            return web.Response(
                body=b"", content_type="application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
            )
        return _json({"swagger": "2.0", "info": {"title": "Kubernetes", "version": "v1.32.0"}, "paths": {}})

    def _openapi(self, parts: list[str]) -> web.Response:
        if parts[1:2] != ["v3"]:
            raise _not_found_path()
        if len(parts) == 2:
            return _json(self.registry.openapi_index())
        rest = parts[2:]
        if rest[0] == "api" and len(rest) == 2:
            doc = self.registry.openapi_document("", rest[1])
        elif rest[0] == "apis" and len(rest) == 3:
            doc = self.registry.openapi_document(rest[1], rest[2])
        else:
            doc = None
        if doc is None:
            raise _not_found_path()
        return _json(doc)

    def _target(self, group: str, version: str, rest: list[str]) -> _Target:
        namespace: str | None = None
        if rest[0] == "namespaces" and len(rest) >= 3:
            inner = self.registry.lookup(group, version, rest[2])
            if inner is not None and inner.namespaced:
                namespace, rest = rest[1], rest[2:]
        if len(rest) > 3:
            raise _not_found_path()
        info = self.registry.lookup(group, version, rest[0])
        if info is None:
            raise _not_found_path()
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if namespace is not None and not info.namespaced:
            raise _not_found_path()
        if info.namespaced and namespace is None and name is not None:
            raise _not_found_path()
        if sub is not None and not (
            (sub == "status" and (info.has_status(version) or info.key == "namespaces"))
            or (sub == "log" and info.key == "pods")
            or (sub == "scale" and info.key in SCALABLE)
        ):
            raise _not_found_path()
        return _Target(info, version, namespace, name, sub)

    # --- verbs -------------------------------------------------------------------------------

    async def _dispatch(self, request: web.Request, t: _Target, watch_prefix: bool) -> web.StreamResponse:
        q = request.query
        method = request.method
        watch = watch_prefix or q.get("watch", "").lower() in ("true", "1")
        if method == "GET":
            verb = "get" if t.name and not watch else ("watch" if watch else "list")
        else:
            verb = {
                "POST": "create",
                "PUT": "update",
                "PATCH": "patch",
                "DELETE": "delete" if t.name else "deletecollection",
            }.get(method, "")
            if (
                not verb
                or (verb != "create" and not t.name and verb != "deletecollection")
                or (verb == "create" and t.name)
            ):
                raise ApiError(
                    405, "MethodNotAllowed", "the server does not allow this method on the requested resource"
                )
        failure = self.faults.check(verb, t.info, t.subresource, t.namespace, t.name or "")
        if failure is not None:
            raise failure
        dry_run = "All" in q.getall("dryRun", [])
        if t.info.key in REVIEWS:
            if verb != "create":
                raise ApiError(405, "MethodNotAllowed", "the server does not allow this method")
            return _json(self._review(await self._body(request)), 201)
        if t.subresource == "scale":
            return await self._scale(request, t, verb, dry_run)
        if verb == "get":
            if t.subresource == "log":
                return await self._log(request, t)
            obj = self.store.get(t.info, t.namespace, t.name or "")
            tabler = self._tabler(request, t)
            if tabler is not None:
                return _json(tabler([obj], obj["metadata"]["resourceVersion"], True))
            return self._out(obj, t)
        if verb == "list":
            return self._list(request, t)
        if verb == "watch":
            return await self._watch(request, t)
        if verb == "create":
            body = await self._body(request)
            obj = self.store.create(
                t.info,
                t.namespace,
                body,
                version=t.version,
                dry_run=dry_run,
                field_manager=q.get("fieldManager"),
            )
            return self._out(obj, t, 201)
        assert t.name is not None or verb == "deletecollection"
        if verb == "update":
            body = await self._body(request)
            obj = self.store.update(
                t.info,
                t.namespace,
                t.name or "",
                body,
                subresource=t.subresource,
                version=t.version,
                dry_run=dry_run,
                field_manager=q.get("fieldManager"),
            )
            return self._out(obj, t)
        if verb == "patch":
            content_type = request.content_type
            if content_type not in (MERGE_PATCH, JSON_PATCH, STRATEGIC_MERGE_PATCH, APPLY_PATCH):
                raise ApiError(
                    415,
                    "UnsupportedMediaType",
                    f"the body of the request was in an unknown format - accepted media types include: "
                    f"{JSON_PATCH}, {MERGE_PATCH}, {APPLY_PATCH}, {STRATEGIC_MERGE_PATCH}",
                )
            patch = await self._body(request, yaml_ok=content_type == APPLY_PATCH)
            obj, created = self.store.patch(
                t.info,
                t.namespace,
                t.name or "",
                content_type,
                patch,
                subresource=t.subresource,
                version=t.version,
                dry_run=dry_run,
                field_manager=q.get("fieldManager"),
                force=q.get("force") == "true",
            )
            return self._out(obj, t, 201 if created else 200)
        options = await self._body(request, optional=True) or {}
        propagation = q.get("propagationPolicy") or options.get("propagationPolicy")
        if options.get("orphanDependents") is True:
            propagation = "Orphan"
        if verb == "deletecollection":
            return self._delete_collection(request, t, propagation, dry_run)
        obj, gone = self.store.delete(
            t.info,
            t.namespace,
            t.name or "",
            propagation=propagation,
            preconditions=options.get("preconditions"),
            dry_run=dry_run,
        )
        if gone and t.info.key != "pods":
            details: dict[str, Any] = {"name": t.name, "kind": t.info.plural, "uid": obj["metadata"]["uid"]}
            if t.info.group:
                details["group"] = t.info.group
            return _json(
                {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Success",
                    "details": details,
                }
            )
        return self._out(obj, t)

    def _review(self, body: Obj) -> Obj:
        """Answer a SelfSubjectAccessReview from the :meth:`Faults.forbid` rules (all else is allowed)."""
        attrs = (body.get("spec") or {}).get("resourceAttributes") or {}
        info = self.registry.get(attrs.get("group", ""), attrs.get("resource", ""))
        denied = info is not None and self.faults.is_forbidden(
            attrs.get("verb", ""), info, attrs.get("subresource") or None, attrs.get("namespace") or None
        )
        return {
            "kind": "SelfSubjectAccessReview",
            "apiVersion": "authorization.k8s.io/v1",
            "metadata": {"creationTimestamp": None},
            "spec": body.get("spec") or {},
            "status": {"allowed": not denied},
        }

    async def _scale(self, request: web.Request, t: _Target, verb: str, dry_run: bool) -> web.Response:
        """``/scale`` of Deployments, ReplicaSets and StatefulSets, as an autoscaling/v1 Scale."""
        if verb not in ("get", "update", "patch"):
            raise ApiError(
                405, "MethodNotAllowed", "the server does not allow this method on the requested resource"
            )
        name = t.name or ""

        def as_scale(obj: Obj) -> Obj:
            meta = obj["metadata"]
            selector = (obj.get("spec") or {}).get("selector") or {}
            return {
                "kind": "Scale",
                "apiVersion": "autoscaling/v1",
                "metadata": {
                    k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                },
                "spec": {"replicas": (obj.get("spec") or {}).get("replicas", 1)},
                "status": {
                    "replicas": (obj.get("status") or {}).get("replicas", 0),
                    "selector": match_labels(selector),
                },
            }

        current = self.store.get(t.info, t.namespace, name)
        if verb == "get":
            return _json(as_scale(current))
        body = await self._body(request, yaml_ok=request.content_type == APPLY_PATCH)
        if verb == "update":
            wanted = body
        elif request.content_type == JSON_PATCH:
            wanted = json_patch(as_scale(current), body)
        else:
            wanted = merge_patch(as_scale(current), body)
        wanted_rv = (wanted.get("metadata") or {}).get("resourceVersion")
        if wanted_rv and wanted_rv != current["metadata"]["resourceVersion"]:
            raise apierrors.conflict(t.info.group, t.info.plural, name)
        replicas = (wanted.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or replicas < 0:
            raise apierrors.invalid(
                "Scale", "autoscaling", name, "spec.replicas", "Invalid value", str(replicas)
            )
        current.setdefault("spec", {})["replicas"] = replicas
        obj = self.store.update(
            t.info, t.namespace, name, current, version=t.version, dry_run=dry_run, verb=verb
        )
        return _json(as_scale(obj))

    async def _body(self, request: web.Request, *, yaml_ok: bool = False, optional: bool = False) -> Any:
        raw = await request.read()
        if not raw:
            if optional:
                return None
            raise apierrors.bad_request("the request body is empty")
        if "protobuf" in request.content_type:
            return protobuf.decode(raw)
        try:
            if yaml_ok or request.content_type in ("application/yaml", "application/apply-patch+yaml"):
                # Clients send apply patches as JSON (valid YAML): parsed as JSON first, since
                # PyYAML's parser took a sixth of the fake's time under load.
                if raw.lstrip()[:1] in (b"{", b"["):
                    with contextlib.suppress(ValueError):
                        return json.loads(raw)
                return yaml.load(raw, Loader=_YAML_LOADER)
            return json.loads(raw)
        except (ValueError, yaml.YAMLError) as exc:
            raise apierrors.bad_request(f"the request body is not valid: {exc}") from None

    def _out(self, obj: Obj, t: _Target, status: int = 200) -> web.Response:
        return _json(self._present(obj, t), status)

    @staticmethod
    def _present(obj: Obj, t: _Target) -> Obj:
        if not t.info.builtin:
            obj = {**obj, "apiVersion": t.info.api_version(t.version)}
        return obj

    def _tabler(self, request: web.Request, t: _Target) -> Callable[[list[Obj], str, bool], Obj] | None:
        """Renders objects as a ``Table`` if the client asked for one (kubectl's human output)."""
        if "as=Table" not in request.headers.get("Accept", ""):
            return None
        crd: Obj | None = None
        if not t.info.builtin:
            crd_info = self.registry.get("apiextensions.k8s.io", "customresourcedefinitions")
            assert crd_info is not None
            with self.store.lock:
                crd = self.store.find(crd_info, None, f"{t.info.plural}.{t.info.group}")
        include = request.query.get("includeObject", "PartialObjectMetadata")

        def render(items: list[Obj], rv: str, headers: bool) -> Obj:
            shown = [self._present(i, t) for i in items]
            return tables.table(t.info, t.version, crd, shown, rv, include, headers=headers)

        return render

    def _list(self, request: web.Request, t: _Target) -> web.Response:
        q = request.query
        limit = int(q.get("limit") or 0)
        start = 0
        if q.get("continue"):
            try:
                start = int(q["continue"])
            except ValueError:
                raise apierrors.bad_request("invalid continue token") from None
        items, rv, remaining = self.store.page(
            t.info,
            t.namespace,
            label_selector(q.get("labelSelector")),
            field_selector(q.get("fieldSelector")),
            start=start,
            limit=max(limit, 0),
        )
        meta: dict[str, Any] = {"resourceVersion": str(rv)}
        if limit > 0 and remaining:
            meta["continue"] = str(start + limit)
            meta["remainingItemCount"] = remaining
        tabler = self._tabler(request, t)
        if tabler is not None:
            return _json({**tabler(items, str(rv), True), "metadata": meta})
        return _json(
            {
                "kind": t.info.list_kind,
                "apiVersion": t.info.api_version(t.version),
                "metadata": meta,
                "items": [self._present(i, t) for i in items],
            }
        )

    def _delete_collection(
        self, request: web.Request, t: _Target, propagation: str | None, dry_run: bool
    ) -> web.Response:
        q = request.query
        items, _ = self.store.list(
            t.info,
            t.namespace,
            label_selector(q.get("labelSelector")),
            field_selector(q.get("fieldSelector")),
        )
        out = []
        for item in items:
            with contextlib.suppress(ApiError):
                obj, _ = self.store.delete(
                    t.info,
                    item["metadata"].get("namespace"),
                    item["metadata"]["name"],
                    propagation=propagation,
                    dry_run=dry_run,
                )
                out.append(self._present(obj, t))
        return _json(
            {
                "kind": t.info.list_kind,
                "apiVersion": t.info.api_version(t.version),
                "metadata": {"resourceVersion": str(self.store.rv)},
                "items": out,
            }
        )

    async def _log(self, request: web.Request, t: _Target) -> web.StreamResponse:
        ns = t.namespace or "default"
        self.store.get(t.info, t.namespace, t.name or "")  # 404 for an unknown pod
        follow = request.query.get("follow", "").lower() in ("true", "1")
        data, done = self.controllers.log(ns, t.name or "")
        tail = request.query.get("tailLines")
        if not follow or done:
            if tail is not None:
                lines = data.splitlines(keepends=True)
                data = b"".join(lines[-int(tail) :]) if int(tail) > 0 else b""
            return web.Response(body=data, content_type="text/plain")
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        offset = 0
        while True:
            chunk, done = await self.controllers.follow(ns, t.name or "", offset)
            if chunk:
                offset += len(chunk)
                await response.write(chunk)
            if done:
                break
        await response.write_eof()
        return response

    async def _watch(self, request: web.Request, t: _Target) -> web.StreamResponse:
        q = request.query
        labels = label_selector(q.get("labelSelector"))
        fields = field_selector(q.get("fieldSelector"))
        name_filter = t.name
        namespace = t.namespace

        def matches(obj: Obj | None) -> bool:
            if obj is None:
                return False
            meta = obj["metadata"]
            return (
                (namespace is None or meta.get("namespace") == namespace)
                and (name_filter is None or meta.get("name") == name_filter)
                and labels(obj)
                and fields(obj)
            )

        timeout = float(q["timeoutSeconds"]) if q.get("timeoutSeconds") else None
        rv_text = q.get("resourceVersion") or ""
        send_initial = q.get("sendInitialEvents", "").lower() == "true"
        bookmarks = q.get("allowWatchBookmarks", "").lower() == "true"
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[object] = asyncio.Queue()
        initial: list[tuple[str, Obj]] = []
        error: ApiError | None = None
        sub_id: int | None = None
        with self.store.lock:
            if rv_text in ("", "0") or send_initial:
                items, _ = self.store.list(t.info, namespace)
                initial = [("ADDED", o) for o in items if matches(o)]
                start_rv = self.store.rv
            else:
                try:
                    start_rv = int(rv_text)
                except ValueError:
                    raise apierrors.bad_request(f"invalid resource version: {rv_text}") from None
                try:
                    for event in self.store.events_since(t.info.key, start_rv):
                        kind = self._event_type(event, matches)
                        if kind is not None:
                            initial.append((kind, event.new))
                except ApiError as exc:
                    error = exc
            if error is None:

                def deliver(event: Event) -> None:
                    loop.call_soon_threadsafe(queue.put_nowait, event)

                sub_id = self.store.subscribe(t.info.key, deliver)
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        self._watch_queues.add(queue)
        try:
            if error is not None:
                await self._send(response, "ERROR", error.status)
                return response
            tabler = self._tabler(request, t)

            def present(obj: Obj) -> Obj:
                if tabler is None:
                    return self._present(obj, t)
                return tabler([obj], obj["metadata"]["resourceVersion"], True)

            for kind, obj in initial:
                await self._send(response, kind, present(obj))
            if send_initial and bookmarks:
                await self._send(
                    response,
                    "BOOKMARK",
                    {
                        "kind": t.info.kind,
                        "apiVersion": t.info.api_version(t.version),
                        "metadata": {
                            "resourceVersion": str(start_rv),
                            "annotations": {"k8s.io/initial-events-end": "true"},
                        },
                    },
                )
            deadline = None if timeout is None else loop.time() + timeout
            while True:
                wait = None if deadline is None else deadline - loop.time()
                if wait is not None and wait <= 0:
                    break
                try:
                    item = await asyncio.wait_for(queue.get(), wait)
                except TimeoutError:
                    break
                if item is _DROP:
                    break
                if item is _ABORT:
                    if request.transport is not None:
                        request.transport.abort()
                    return response
                assert isinstance(item, Event)
                kind = self._event_type(item, matches)
                if kind is not None:
                    await self._send(response, kind, present(item.new))
            await response.write_eof()
        finally:
            self._watch_queues.discard(queue)
            if sub_id is not None:
                self.store.unsubscribe(sub_id)
        return response

    @staticmethod
    def _event_type(event: Event, matches: Any) -> str | None:
        now = matches(event.new) if event.type != "DELETED" else False
        before = matches(event.old) if event.type != "ADDED" else False
        if event.type == "DELETED":
            return "DELETED" if before else None
        if now and before:
            return "MODIFIED"
        if now:
            return "ADDED"
        if before:
            return "DELETED"
        return None

    @staticmethod
    async def _send(response: web.StreamResponse, kind: str, obj: Obj) -> None:
        line = json.dumps({"type": kind, "object": obj}, separators=(",", ":")) + "\n"
        await response.write(line.encode())


def kubeconfig_yaml(
    url: str, token: str, *, context: str = "fake", namespace: str = "default", ca: str | None = None
) -> str:
    """A kubeconfig for ``url`` with one cluster, user and context, all named ``context``.

    :param ca: path of the certificate authority file for an ``https`` server.
    """
    cluster: dict[str, str] = {"server": url}
    if ca is not None:
        cluster["certificate-authority"] = ca
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": context, "cluster": cluster}],
        "users": [{"name": context, "user": {"token": token}}],
        "contexts": [
            {"name": context, "context": {"cluster": context, "user": context, "namespace": namespace}}
        ],
        "current-context": context,
        "preferences": {},
    }
    return yaml.safe_dump(doc, sort_keys=False)
