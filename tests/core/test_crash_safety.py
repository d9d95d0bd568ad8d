"""The result on disk is always a whole experiment: after every task, on Ctrl-C, and after a kill."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

# An unusual duration, so the orphaned sleep of the kill test can be found and stopped.
SLOW = "spec:\n- run: [echo, first]\n- run: [sleep, '29.317']\n- run: [echo, never]\n"


def start(tmp_path: Path) -> subprocess.Popen[str]:
    (tmp_path / "exp.yaml").write_text(SLOW)
    return subprocess.Popen(
        [sys.executable, "-m", "kubectl_iter8", "launch", "--local", "-f", "exp.yaml"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def wait_for_second_task(tmp_path: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        path = tmp_path / "experiment.yaml"
        if (
            path.exists()
            and (yaml.safe_load(path.read_text()) or {}).get("result", {}).get("numCompletedTasks") == 1
        ):
            return
        time.sleep(0.05)
    raise AssertionError("the first task never completed")


def test_ctrl_c_saves_the_run_as_interrupted(tmp_path: Path) -> None:
    proc = start(tmp_path)
    wait_for_second_task(tmp_path)
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 130, err
    assert "error: interrupted" in err
    assert "Traceback" not in err
    result = yaml.safe_load((tmp_path / "experiment.yaml").read_text())["result"]
    assert result["failure"] is True
    assert result["failureMessage"] == "spec[1] (run): interrupted"
    assert result["numCompletedTasks"] == 1


def test_a_killed_run_leaves_the_last_whole_result(tmp_path: Path) -> None:
    proc = start(tmp_path)
    wait_for_second_task(tmp_path)
    proc.kill()
    proc.communicate(timeout=20)
    doc = yaml.safe_load((tmp_path / "experiment.yaml").read_text())
    assert doc["spec"] == yaml.safe_load(SLOW)["spec"]
    assert doc["result"]["numCompletedTasks"] == 1
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".experiment.")] == []
    # The sleeping command runs in its own session, so a SIGKILL of the runner does not reach it.
    subprocess.run(["pkill", "-f", "sleep 29.317"], check=False)
