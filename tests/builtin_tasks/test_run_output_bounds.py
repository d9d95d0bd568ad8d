"""The ``run`` task keeps only the last 64 KiB of what a command prints, in memory as well as in
the stored result, and quotes a short excerpt of its last line when it fails."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml
from kubectl_iter8.builtin_tasks.run import LINE_LIMIT, OUTPUT_LIMIT

#: A Kubernetes Secret (where a cluster run stores its result) holds at most 1 MiB.
SECRET_LIMIT = 1024 * 1024


def experiment(tmp_path: Path, command: str) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump({"spec": [{"run": command, "shell": True}]}))
    return path


def test_huge_output_is_streamed_not_buffered(tmp_path: Path) -> None:
    path = experiment(tmp_path, "head -c 200000000 /dev/zero")
    # Peak memory of the whole CLI process, measured in a fresh process so no other test counts.
    probe = (
        "import resource, subprocess, sys\n"
        "subprocess.run(sys.argv[1:], check=True, capture_output=True)\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    argv = [sys.executable, "-m", "kubectl_iter8", "launch", "--local", "-f", str(path)]
    argv += ["--run-dir", str(tmp_path / "run")]
    peak_kib = int(
        subprocess.run([sys.executable, "-c", probe, *argv], capture_output=True, text=True).stdout
    )
    assert peak_kib < 150 * 1024, f"peak RSS {peak_kib} KiB"
    result = yaml.safe_load((tmp_path / "run" / "experiment.yaml").read_text())["result"]
    details = result["tasks"][0]["details"]
    assert details["outputTruncated"] is True
    assert details["output"] == "\0" * OUTPUT_LIMIT


def test_a_failing_command_with_a_huge_last_line_stores_under_a_secrets_limit(cli, tmp_path: Path) -> None:
    # One 33 MB last line: binary junk, then 30 MB of 'y', then "end".
    script = "head -c 3000000 /dev/urandom | tr -d '\\n'; head -c 30000000 /dev/zero | tr '\\0' y; printf end; exit 3"
    outcome = cli(
        "launch", "--local", "-f", str(experiment(tmp_path, script)), "--run-dir", str(tmp_path / "run")
    )
    assert outcome.code == 1
    stored = (tmp_path / "run" / "experiment.yaml").read_bytes()
    assert len(stored) < SECRET_LIMIT / 2
    result = yaml.safe_load(stored)["result"]
    message = result["failureMessage"]
    assert message.startswith("spec[0] (run): command exited with code 3: ...")
    assert message.endswith("yyy" + "end")
    assert len(message) < LINE_LIMIT + 100
    assert len(outcome.err) < 2 * LINE_LIMIT + 500
    assert len(result["tasks"][0]["details"]["output"]) <= OUTPUT_LIMIT
