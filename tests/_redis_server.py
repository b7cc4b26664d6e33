"""A real ``redis-server`` (Debian's) on a free loopback port, for the shared-store tests.

One server per test session, in its own temporary directory, persisting nothing
(``--save "" --appendonly no``). :meth:`RedisServer.kill` and :meth:`RedisServer.start`
stop and restart it on the same port (the store-loss tests).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

#: Wall seconds a starting redis-server may take before the fixture gives up.
START_TIMEOUT = 10.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class RedisServer:
    """One ``redis-server`` process this session started (only its own PID is ever killed)."""

    def __init__(self, binary: str, directory: Path) -> None:
        self.binary = binary
        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        args += ["--save", "", "--appendonly", "no", "--dir", str(self.directory)]
        self.process = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self.directory
        )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.process.returncode}")
            if self.ping():
                return
            time.sleep(0.02)
        self.kill()
        raise RuntimeError(f"redis-server did not answer on port {self.port}")

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL the server this fixture started, and wait for it."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def flush(self) -> None:
        """Empty every database (a clean store for the next test)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as conn:
            conn.sendall(b"FLUSHALL\r\n")
            assert conn.recv(16).startswith(b"+OK")


def start_redis(directory: Path) -> RedisServer:
    """A running server, or skip (fail under ``MOCKBANKR_REQUIRE_PEERS=1``, as in ``make
    test``) when ``redis-server`` is not installed."""
    binary = shutil.which("redis-server")
    if binary is None:
        reason = "redis-server is not on PATH (Debian: apt-get install redis-server)"
        if os.environ.get("MOCKBANKR_REQUIRE_PEERS") == "1":
            pytest.fail(f"{reason} [MOCKBANKR_REQUIRE_PEERS=1]")
        pytest.skip(reason)
    server = RedisServer(binary, directory)
    server.start()
    return server
