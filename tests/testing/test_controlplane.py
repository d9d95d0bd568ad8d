"""The real control plane fixture itself: where its binaries come from, and that it leaves nothing behind."""

from __future__ import annotations

import lzma
import os
import socket
from pathlib import Path

import pytest

from kubectl_iter8.testing.controlplane import (
    ASSETS_ENV,
    AssetsNotFoundError,
    ControlPlane,
    ControlPlaneError,
    find_assets,
)
from kubectl_iter8.testing.pytest_plugin import skip_tier


def fake_binary(path: Path) -> None:
    path.write_text("#!/bin/sh\necho fake\n")
    path.chmod(0o755)


def test_the_environment_variable_wins_and_is_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ASSETS_ENV, str(tmp_path))
    fake_binary(tmp_path / "kube-apiserver")
    with pytest.raises(
        AssetsNotFoundError, match=f"^{ASSETS_ENV}={tmp_path}: no executable kube-controller-manager there$"
    ):
        find_assets(tmp_path / "elsewhere")
    fake_binary(tmp_path / "kube-controller-manager")
    assert find_assets(tmp_path / "elsewhere") == tmp_path


def test_compressed_binaries_are_unpacked_once_into_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ASSETS_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    shipped = tmp_path / "k8s"
    (shipped / "bin").mkdir(parents=True)
    for name in ("kube-apiserver", "kube-controller-manager"):
        (shipped / "bin" / f"{name}.xz").write_bytes(lzma.compress(f"#!/bin/sh\necho {name}\n".encode()))
    found = find_assets(tmp_path / "missing", shipped)
    assert found.parent == tmp_path / "cache" / "kubectl-iter8" / "kube-assets"
    assert (found / "kube-apiserver").read_text() == "#!/bin/sh\necho kube-apiserver\n"
    assert os.access(found / "kube-controller-manager", os.X_OK)
    stamp = (found / "kube-apiserver").stat().st_mtime_ns
    assert find_assets(shipped) == found
    assert (found / "kube-apiserver").stat().st_mtime_ns == stamp
    assert [p.name for p in found.parent.iterdir()] == [found.name]  # no staging folder left


def test_no_binaries_says_where_it_looked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ASSETS_ENV, raising=False)
    with pytest.raises(AssetsNotFoundError, match=f"set {ASSETS_ENV} \\(looked in {tmp_path}\\)$"):
        find_assets(tmp_path)


def test_a_process_that_cannot_start_is_reported_with_its_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assets = tmp_path / "assets"
    assets.mkdir()
    for name in ("kube-apiserver", "kube-controller-manager", "etcd"):
        (assets / name).write_text("#!/bin/sh\necho cannot start >&2\nexit 3\n")
        (assets / name).chmod(0o755)
    plane = ControlPlane(assets, directory=tmp_path / "run")
    with pytest.raises(ControlPlaneError, match="^etcd exited with code 3:\ncannot start$"):
        plane.start(timeout=10)


def test_stop_leaves_no_process_and_no_port(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    try:
        assets = find_assets(*request.config.getini("iter8_kube_assets"))
    except AssetsNotFoundError as exc:
        skip_tier("real-kube", str(exc))
    plane = ControlPlane(assets, directory=tmp_path / "run").start()
    pids = [proc.pid for _, proc in plane._processes]
    assert len(pids) == 3
    assert plane.kubectl("get", "--raw", "/readyz").stdout == "ok"
    plane.stop()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    with socket.socket() as s:
        # No listener is left (connections in TIME_WAIT may remain, as after any server).
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", plane.port))
        s.listen()


def test_audit_from_an_offset_skips_an_event_it_fell_inside(tmp_path: Path) -> None:
    plane = ControlPlane(tmp_path, directory=tmp_path)
    plane.audit_log.write_text('{"n": 1}\n{"n": 2}\n{"n": 3')  # the last event is still being written
    assert [e["n"] for e in plane.audit()] == [1, 2]
    assert [e["n"] for e in plane.audit(len('{"n": 1}\n'))] == [2]
    assert [e["n"] for e in plane.audit(3)] == [2]
