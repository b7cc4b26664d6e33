"""``mockbankr serve`` as the user runs it, in a child process on a free loopback port.

Example::

    with live_server("--speed", "20") as server:
        httpx.get(server.url + "/_health")
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import httpx

from bench.figures import BenchError

__all__ = ["LiveProcess", "cpu_seconds", "live_server", "rss_bytes"]

#: Seconds a server has to answer its first health check.
START_TIMEOUT_S = 30.0


class LiveProcess(NamedTuple):
    url: str
    pid: int


def cpu_seconds(pid: int) -> float:
    """The CPU time (user + system) the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_bytes(pid: int) -> int:
    """The process's resident set size now (``VmRSS`` of ``/proc/PID/status``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise BenchError(f"no VmRSS for process {pid}")  # pragma: no cover - not Linux


@contextlib.contextmanager
def live_server(*args: str) -> Iterator[LiveProcess]:
    """Start ``mockbankr serve --port P ARGS``, wait until it answers, stop it after."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [str(Path(sys.executable).parent / "mockbankr"), "serve", "--port", str(port)]
    server = subprocess.Popen([*command, *args], stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        tick = threading.Event()
        for _ in range(int(START_TIMEOUT_S / 0.1)):
            if server.poll() is not None:
                raise BenchError(f"mockbankr serve exited with status {server.returncode}")
            try:
                httpx.get(f"{url}/_health", timeout=1.0)
                break
            except httpx.HTTPError:
                tick.wait(0.1)
        else:
            raise BenchError(f"mockbankr serve did not answer within {START_TIMEOUT_S} s")
        yield LiveProcess(url, server.pid)
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
