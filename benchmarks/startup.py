#!/usr/bin/env python3
"""Start-up cost of ``kubectl iter8``, measured against ``kubectl version --client``.

One command::

    python benchmarks/startup.py [--runs N] [--warmup W] [--bin-dir DIR] [--archive PATH]

Runs through the real kubectl (which finds ``kubectl-iter8`` on the PATH, with this interpreter's
``bin`` directory in front, or ``--bin-dir``), as a user's shell would. With ``--archive`` (a Krew
archive, ``.tar.gz``, or the folder it was unpacked into) the same round also times the archive's
``kubectl-iter8``, found by kubectl on a PATH with that folder in front, so both ratios come from
the same rounds. Each round runs every command once, in an order that alternates from round to
round, so that slow spells of a busy machine hit both sides of a pair; the figure to quote is the
median of the per-round ratios ``time(kubectl iter8 --help) / time(kubectl version --client)``.
The archive prints ``--help`` and ``version`` as rendered when it was built (packaging/entry.py);
its ``--help`` rendered by click at run time (``ITER8_NO_PRERENDERED=1``) is timed too, to show
what that saves.
The 95% interval of a median comes from order statistics (distribution-free); quartiles show the
spread.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

BASELINE = "kubectl version --client"
ARCHIVE_HELP = "archive: kubectl iter8 --help"


def median_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """Distribution-free interval for the median: order statistics (j, n+1-j) of the sorted values.

    j is the largest rank with P(Binomial(n, 1/2) < j) <= (1 - confidence) / 2; for n=30 that is
    (x[10], x[21]), 1-based. With fewer than 6 values no such j exists and the range is returned.
    """
    xs = sorted(values)
    n = len(xs)
    alpha = (1 - confidence) / 2
    j, tail = 0, 0.0
    while j < n // 2:
        nxt = tail + math.comb(n, j) / 2**n  # P(X <= j)
        if nxt > alpha:
            break
        tail, j = nxt, j + 1
    if j == 0:
        return xs[0], xs[-1]
    return xs[j - 1], xs[n - j]


def unpack(archive: Path, into: Path) -> Path:
    """The folder of the archive's ``kubectl-iter8``: ``archive`` itself if it is a folder."""
    if archive.is_dir():
        return archive
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    return into


def time_once(cmd: Sequence[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        detail = proc.stderr.decode(errors="replace").strip().splitlines()
        raise SystemExit(f"error: `{' '.join(cmd)}` exited {proc.returncode}: {detail[-1] if detail else ''}")
    return elapsed


def describe(label: str, values: Sequence[float], unit: str, scale: float = 1.0) -> str:
    xs = [v * scale for v in values]
    q1, _, q3 = statistics.quantiles(xs, n=4, method="inclusive")
    lo, hi = median_interval(xs)
    return (
        f"  {label:<26} median {statistics.median(xs):7.3f}{unit}   "
        f"95% CI [{lo:.3f}, {hi:.3f}]   quartiles [{q1:.3f}, {q3:.3f}]   min {min(xs):.3f}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="startup.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30, help="paired rounds to time (default: 30)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed rounds first (default: 3)")
    parser.add_argument(
        "--bin-dir",
        type=Path,
        default=Path(sys.executable).parent,
        help="directory holding the kubectl-iter8 to time (default: this interpreter's bin, the venv)",
    )
    parser.add_argument(
        "--archive",
        type=Path,
        help="a Krew archive (.tar.gz) or its unpacked folder: time its kubectl-iter8 too",
    )
    args = parser.parse_args(argv)
    if args.runs < 2 or args.warmup < 0:
        print("error: --runs must be at least 2 and --warmup at least 0", file=sys.stderr)
        return 2
    if args.archive is not None and not args.archive.exists():
        print(f"error: --archive: no such file or folder: {args.archive}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="startup-") as tmp:
        archive_dir = unpack(args.archive, Path(tmp)) if args.archive is not None else None
        return measure(args.runs, args.warmup, args.bin_dir, archive_dir)


def measure(runs: int, warmup: int, bin_dir: Path, archive_dir: Path | None) -> int:

    kubectl = shutil.which("kubectl")
    if kubectl is None:
        print("error: kubectl is not on the PATH", file=sys.stderr)
        return 1
    bin_dir = bin_dir.resolve()
    for where in (bin_dir, archive_dir):
        if where is not None and not (where / "kubectl-iter8").exists():
            hint = " (run this with the project's venv python)" if where == bin_dir else ""
            print(f"error: no kubectl-iter8 in {where}{hint}", file=sys.stderr)
            return 1
    path = os.environ.get("PATH", "")
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{path}"}
    commands: dict[str, tuple[list[str], dict[str, str]]] = {
        "kubectl iter8 --help": ([kubectl, "iter8", "--help"], env),
        BASELINE: ([kubectl, "version", "--client"], env),
        "kubectl iter8 version": ([kubectl, "iter8", "version"], env),
        "python -I -c pass (floor)": ([sys.executable, "-I", "-c", "pass"], env),
    }
    if archive_dir is not None:
        # Without ITER8_* settings, which would make the archive render its output with click.
        user_env = {k: v for k, v in os.environ.items() if not k.startswith("ITER8_")}
        archive_env = {**user_env, "PATH": f"{archive_dir.resolve()}{os.pathsep}{path}"}
        commands[ARCHIVE_HELP] = ([kubectl, "iter8", "--help"], archive_env)
        commands["archive: kubectl iter8 version"] = ([kubectl, "iter8", "version"], archive_env)
        # Any ITER8_* variable makes the archive's entry point leave the output to click.
        click_env = {**archive_env, "ITER8_NO_PRERENDERED": "1"}
        commands["archive: --help by click"] = ([kubectl, "iter8", "--help"], click_env)
    labels = list(commands)

    print(f"kubectl: {kubectl}; kubectl-iter8: {bin_dir / 'kubectl-iter8'}")
    if archive_dir is not None:
        print(f"archive: {archive_dir / 'kubectl-iter8'}")
    print(f"{warmup} warm-up rounds, then {runs} rounds; each round runs every command once,")
    print("in an order that is reversed every other round.", flush=True)
    for _ in range(warmup):
        for label in labels:
            time_once(*commands[label])
    times: dict[str, list[float]] = {label: [] for label in labels}
    for round_no in range(runs):
        order = labels if round_no % 2 == 0 else labels[::-1]
        for label in order:
            times[label].append(time_once(*commands[label]))

    print("\nwall time per command (ms):")
    for label in labels:
        print(describe(label, times[label], " ms", scale=1000))
    print(f"\nper-round ratio to `{BASELINE}` (same round, so machine load cancels):")
    for label in labels:
        if label == BASELINE:
            continue
        ratios = [a / b for a, b in zip(times[label], times[BASELINE], strict=True)]
        print(describe(label, ratios, "x"))
    print()
    for label, what in (("kubectl iter8 --help", "pip install"), (ARCHIVE_HELP, "Krew archive")):
        if label in times:
            ratio = statistics.median(a / b for a, b in zip(times[label], times[BASELINE], strict=True))
            print(f"median ratio kubectl iter8 --help / {BASELINE}, {what}: {ratio:.2f} (n={runs})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
