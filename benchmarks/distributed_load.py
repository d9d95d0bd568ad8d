"""Load spread over pods: total requests/s with 1 and 2 shards, and what coordinating them costs.

Runs on the real control plane (kube-apiserver + kube-controller-manager + etcd, the same binaries
as the ``real-kube`` test tier) with the node stand-in running every pod as a local process, against
the sample app on 127.0.0.1. For each pod count it launches an ``http`` task in the closed loop (as
fast as the connections allow) for ``--duration`` seconds and reports, from the stored result:

- total requests/s (all shards together; ``pods: 1`` is the runner's own process, no shards);
- for shards: the start-up barrier (the task's start to the common start instant), the largest
  start lag, the clock-skew bound, and the API writes each party made (from the audit log).

Everything shares this machine's cores: the sample app, every shard, the runner, the apiserver and
etcd. On 2 cores, 2 shards cannot double the rate; the figure says how close they come.

    python benchmarks/distributed_load.py                  # pods 1 and 2, 10 s each
    python benchmarks/distributed_load.py --pods 1 2 4 --duration 5
"""

from __future__ import annotations

import argparse
import base64
import collections
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import yaml

from kubectl_iter8.kube import SECRETS, Kube, KubeOptions
from kubectl_iter8.sample_app import running
from kubectl_iter8.testing.controlplane import ControlPlane, find_assets
from kubectl_iter8.testing.node import NodeStandIn

REPO = Path(__file__).resolve().parent.parent


def run_once(
    cp: ControlPlane, app_url: str, pods: int, duration: float, connections: int, env: dict[str, str]
) -> dict[str, Any]:
    namespace = f"bench-{uuid.uuid4().hex[:6]}"
    cp.kubectl("create", "namespace", namespace, check=True)
    group = f"load{pods}"
    task = {"url": f"{app_url}/get", "qps": 0, "duration": f"{duration}s", "connections": connections}
    if pods > 1:
        task["pods"] = pods
    with tempfile.TemporaryDirectory() as folder:
        spec = Path(folder) / "exp.yaml"
        spec.write_text(yaml.safe_dump({"spec": [{"task": "http", "with": task}]}))
        offset = cp.audit_offset()
        launched_at = time.monotonic()
        subprocess.run(
            ["kubectl-iter8", "launch", "-f", str(spec), "-g", group, "-n", namespace],
            env=env, check=True, capture_output=True, text=True,
        )  # fmt: skip
        waited = subprocess.run(
            ["kubectl-iter8", "assert", "-g", group, "-n", namespace, "-c", "completed,nofailure",
             "--timeout", f"{int(duration) + 180}s"],
            env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        wall = time.monotonic() - launched_at
    with Kube(KubeOptions(kubeconfig=str(cp.kubeconfig))) as kube:
        secret = kube.get(SECRETS, group, namespace)
    result = yaml.safe_load(base64.b64decode(secret["data"]["experiment.yaml"]))["result"]
    if waited.returncode != 0:
        raise SystemExit(f"error: pods={pods}: {result.get('failureMessage') or waited.stderr}")
    record = result["tasks"][0]
    details = record["details"]["endpoints"]["http"]
    writes: collections.Counter[str] = collections.Counter()
    for event in cp.audit(offset):
        user = str(event.get("user", {}).get("username", ""))
        if user.startswith(f"system:serviceaccount:{namespace}:"):
            account = user.rsplit(":", 1)[1]
            writes["shards" if "-shard-" in account else "runner"] += 1
    row: dict[str, Any] = {
        "pods": pods,
        "requests": details["requests"],
        "elapsed_s": details["elapsedSeconds"],
        "requests_per_s": details["requests"] / details["elapsedSeconds"],
        "launch_to_done_s": wall,
        "api_writes": dict(writes),
    }
    timing = details.get("pods")
    if timing:
        task_start = dt.datetime.fromisoformat(record["startTime"].replace("Z", "+00:00")).timestamp()
        row["barrier_s"] = timing["startAt"] - task_start
        row["start_lag_max_ms"] = timing["startLagMs"]["max"]
        row["clock_skew_bound_ms"] = timing["clockSkewBoundMs"]
    cp.kubectl("delete", "namespace", namespace, "--wait=false")
    return row


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pods", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args()
    assets = find_assets(REPO.parent / "shared" / "k8s")
    with tempfile.TemporaryDirectory(prefix="bench-kube-") as folder:
        cp = ControlPlane(assets, directory=folder).start()
        node = NodeStandIn(cp)
        bin_dir = str(Path(sys.executable).parent)
        node.env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
        env = {**os.environ, **cp.env(), "PATH": node.env["PATH"]}
        rows = []
        try:
            node.start()
            with running() as app:
                for pods in args.pods:
                    rows.append(run_once(cp, app.url, pods, args.duration, args.connections, env))
                    print(json.dumps(rows[-1]), flush=True)
        finally:
            node.stop()
            cp.stop()
    base = rows[0]["requests_per_s"]
    print(f"\n{'pods':>4} {'requests/s':>11} {'x pods=' + str(rows[0]['pods']):>10} {'barrier s':>10}")
    for row in rows:
        barrier = f"{row['barrier_s']:.2f}" if "barrier_s" in row else "-"
        ratio = row["requests_per_s"] / base
        print(f"{row['pods']:>4} {row['requests_per_s']:>11.0f} {ratio:>10.2f} {barrier:>10}")


if __name__ == "__main__":
    main()
