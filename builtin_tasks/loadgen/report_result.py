"""Sending the result to the controller when ``$METRICS_SERVER_URL`` is set, as Iter8 v1.x's tasks did.

Iter8's experiment Job had ``METRICS_SERVER_URL`` and PUT the experiment's result to
``$METRICS_SERVER_URL/testResult?namespace=NS&test=NAME`` after each task, for its Grafana
dashboards (``/httpDashboard``, ``/grpcDashboard``; served by ``controller serve``, see
``controller/testresults.py``). Here the http and grpc tasks send it when their load has run,
successful or not, with this entry counted as done (the runner counts it just after), and the
experiment's ``name`` and ``namespace`` added (Iter8's result had them). With
``$METRICS_SERVER_TOKEN`` set, it goes as a bearer token (the controller's A/B/n token, when it has one).

A failure to send is a warning, not a task failure: the dashboards are a view, and a load test that
ran is not to be lost to an unreachable controller (Iter8 stopped the run there).
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import Any

from kubectl_iter8.task import TaskContext

URL_ENV = "METRICS_SERVER_URL"
TOKEN_ENV = "METRICS_SERVER_TOKEN"
PATH = "/testResult"
#: Seconds for the whole PUT: the controller answers from memory.
TIMEOUT = 10.0


def body(ctx: TaskContext, *, failed: bool) -> dict[str, Any]:
    """The result as Iter8 sent it: as stored now, with this entry done, its name and namespace."""
    document = ctx.result.dump()
    document["numCompletedTasks"] = ctx.result.num_completed_tasks + 1
    if failed:
        document["failure"] = True
    document["name"] = ctx.metadata.get("name") or "default"
    document["namespace"] = ctx.metadata.get("namespace") or "default"
    return document


async def report(ctx: TaskContext, *, failed: bool = False) -> bool:
    """PUT the result to ``$METRICS_SERVER_URL``; whether it was taken (False also when unset)."""
    base = os.environ.get(URL_ENV, "").strip()
    if not base:
        return False
    import httpx

    document = body(ctx, failed=failed)
    params = {"namespace": document["namespace"], "test": document["name"]}
    headers = {}
    token = os.environ.get(TOKEN_ENV, "").strip()
    if token:
        headers["Authorization"] = f"Bearer {token}"
    url = base.rstrip("/") + PATH
    try:
        async with ctx.http_client(timeout=TIMEOUT) as client:
            response = await client.put(url, params=params, json=document, headers=headers)
    except httpx.HTTPError as exc:
        ctx.logger.warning("%s: cannot send the result to %s: %s", URL_ENV, url, exc or type(exc).__name__)
        return False
    if response.status_code != 200:
        ctx.logger.warning(
            "%s: %s refused the result: %d %s",
            URL_ENV,
            url,
            response.status_code,
            response.text[:200].strip(),
        )
        return False
    ctx.log(f"result sent to {url} (namespace {params['namespace']}, test {params['test']})")
    return True


async def run_and_report(ctx: TaskContext, run: Callable[[TaskContext], Awaitable[None]]) -> None:
    """``run`` the task, then :func:`report` the result, failed or not (the failure is re-raised)."""
    try:
        await run(ctx)
    except Exception:
        await report(ctx, failed=True)
        raise
    await report(ctx)
