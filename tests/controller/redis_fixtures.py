"""A real ``redis-server`` (the Debian package) for the A/B/n Redis store tests (fixtures for conftest.py).

One server for the session (``redis_url`` empties it before each test), and ``redis_server`` for a
test of its own that stops and restarts it. Both persist every write as production should:
``appendonly yes``, ``appendfsync always``, no RDB snapshots. A missing ``redis-server`` fails the
tests (CI installs it; a skip would hide the Redis backend going untested).
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

REDIS_SERVER = "redis-server"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """``redis-server`` on 127.0.0.1:``port`` with its data in ``workdir``; restartable on the same data."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which(REDIS_SERVER)
        if binary is None:
            pytest.fail(
                f"{REDIS_SERVER} not found on PATH: install the Debian package redis-server (.ci/run does)"
            )
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, decode_responses=True, socket_timeout=5)

    def start(self) -> RedisServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        args = [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.workdir),
            "--save", "",
            "--appendonly", "yes",
            "--appendfsync", "always",
            "--daemonize", "no",
            "--logfile", str(self.workdir / "redis.log"),
        ]  # fmt: skip
        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL)
        client = self.client()
        deadline = time.monotonic() + 10
        try:
            while True:
                try:
                    client.ping()
                except redis.ConnectionError:
                    if self.process.poll() is not None or time.monotonic() > deadline:
                        log = (self.workdir / "redis.log").read_text(errors="replace")[-2000:]
                        self.stop()
                        pytest.fail(f"redis-server on port {self.port} did not answer PING:\n{log}")
                    time.sleep(0.02)
                else:
                    return self
        finally:
            client.close()

    def kill(self) -> None:
        """Stop the server at once (SIGKILL), as a crash would: only what it persisted remains."""
        self.stop(signal.SIGKILL)

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None


@pytest.fixture(scope="session")
def redis_session_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_session_server: RedisServer) -> str:
    """The URL of the session's Redis server, emptied for this test."""
    client = redis_session_server.client()
    try:
        client.flushall()
    finally:
        client.close()
    return redis_session_server.url


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis server of this test's own, which it may kill and start again."""
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()
