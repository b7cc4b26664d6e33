"""The shipped locustfile, unchanged, under Locust's own command line against a live server:
headless (then ``experiment report``), distributed (a master and a worker), and with its web
UI. Each run is bounded (a few users, a few seconds) and its stats are checked against the
server's journal."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from mockbankr.cli import main
from tests.experiments.conftest import serve

pytestmark = pytest.mark.live

USERS = 20
EXPERIMENT = """
[experiment]
name = "locust"
seed = 5

[fleet]
agents = 20
mix = { price = 1.0, swap = 1.0 }

[[policies]]
name = "fast-polling"
kind = "reference"
interval_s = 1.0
"""


def _locust_stats(summary: str) -> dict[str, int]:
    """Request counts by name from the final table Locust prints (its last rows win)."""
    counts: dict[str, int] = {}
    for line in summary.splitlines():
        found = re.match(r"^(?:GET|POST)?\s+(\S+)\s+(\d+)\s+\d+\(", line)
        if found:
            counts[found.group(1)] = int(found.group(2))
    return counts


def _locustfile() -> str:
    return subprocess.run(
        [sys.executable, "-m", "mockbankr.experiments.locustfile"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def _locust() -> str:
    return str(Path(sys.executable).parent / "locust")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _env(tmp_path: Path) -> dict[str, str]:
    experiment = tmp_path / "locust.toml"
    experiment.write_text(EXPERIMENT)
    return {**os.environ, "MOCKBANKR_EXPERIMENT": str(experiment)}


@contextmanager
def _started(command: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    """A process of ours, ended (by its own id) if the test leaves it running."""
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=30)


def _journal(base_url: str) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = httpx.get(f"{base_url}/__mock/journal").json()["entries"]
    return entries


def _agrees(stats: dict[str, int], entries: list[dict[str, Any]], users: int) -> None:
    """Locust's counts against the journal's: Locust stops its users mid-request, so at
    most one request per user is in the journal and not in the stats."""
    prompts = [e for e in entries if e["path"] == "/agent/prompt"]
    polls = [e for e in entries if e["method"] == "GET" and e["path"].startswith("/agent/job/")]
    assert stats["Aggregated"] <= len(entries) <= stats["Aggregated"] + users
    assert stats["/agent/prompt"] <= len(prompts) <= stats["/agent/prompt"] + users
    assert stats["/agent/job/[id]"] <= len(polls) <= stats["/agent/job/[id]"] + users
    assert len(prompts) >= users  # every user asked at least once
    assert len({e["owner"] for e in prompts}) == users  # each user is its own agent


def test_a_headless_locust_run_is_what_the_journal_saw(tmp_path: Path) -> None:
    locustfile = _locustfile()
    with serve("--speed", "20", "--journal-size", "500000") as base_url:
        env = _env(tmp_path)
        run = subprocess.run(
            [
                _locust(),
                "-f",
                locustfile,
                "--headless",
                "-u",
                str(USERS),
                "-r",
                str(USERS),
                "-t",
                "10s",
                "--host",
                base_url,
                "--only-summary",
                "--stop-timeout",
                "0",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=90,
        )
        assert run.returncode == 0, run.stderr[-2000:]
        entries = _journal(base_url)
        _agrees(_locust_stats(run.stdout + run.stderr), entries, USERS)
        prompts = [e for e in entries if e["path"] == "/agent/prompt"]

        out = tmp_path / "report"
        result = CliRunner().invoke(
            main, ["experiment", "report", "--base-url", base_url, "--out", str(out)]
        )
        assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    metrics = results["policies"][0]["metrics"]
    assert metrics["requests"] == len(entries)
    assert metrics["prompts_sent"] == len(prompts)
    assert metrics["jobs_created"] == sum(1 for e in prompts if e["status"] == 202)
    assert metrics["successes"] > 0
    assert (out / "report.html").read_text().count("<svg") == 4


DISTRIBUTED_USERS = 6


def test_a_distributed_run_master_and_worker_is_what_the_journal_saw(tmp_path: Path) -> None:
    locustfile = _locustfile()
    port = str(_free_port())
    with serve("--speed", "20", "--journal-size", "500000") as base_url:
        env = _env(tmp_path)
        users = str(DISTRIBUTED_USERS)
        master = [
            *(_locust(), "-f", locustfile, "--master", "--master-bind-host", "127.0.0.1"),
            *("--master-bind-port", port, "--expect-workers", "1"),
            *("--expect-workers-max-wait", "30", "--headless", "-u", users, "-r", users),
            *("-t", "3s", "--host", base_url, "--only-summary", "--stop-timeout", "0"),
        ]
        worker = [
            *(_locust(), "-f", locustfile, "--worker", "--master-host", "127.0.0.1"),
            *("--master-port", port, "--host", base_url),
        ]
        with _started(master, env) as leader, _started(worker, env) as follower:
            out, err = leader.communicate(timeout=90)
            assert leader.returncode == 0, err[-2000:]
            follower.wait(timeout=30)  # the master tells its worker to quit
        assert follower.returncode == 0
        # A master runs no users: every request in its stats is one its worker reported.
        _agrees(_locust_stats(out + err), _journal(base_url), DISTRIBUTED_USERS)


def test_the_web_ui_starts_serves_its_page_and_live_stats(tmp_path: Path) -> None:
    locustfile = _locustfile()
    port = _free_port()
    with serve("--speed", "20", "--journal-size", "500000") as base_url:
        command = [
            *(_locust(), "-f", locustfile, "--web-host", "127.0.0.1", "--web-port", str(port)),
            # Started at once; stopped by us through the UI once its stats show.
            *("--autostart", "-u", "3", "-r", "3", "-t", "60s"),
            *("--host", base_url),
        ]
        ui = f"http://127.0.0.1:{port}"
        with _started(command, _env(tmp_path)) as locust:
            page = _first_answer(f"{ui}/", locust)
            assert page.status_code == 200
            assert "<html" in page.text.lower()
            assert "locust" in page.text.lower()
            seen: dict[str, int] = {}
            for _ in range(200):  # its stats show within 20 s
                stats = httpx.get(f"{ui}/stats/requests", timeout=5.0).json()
                seen = {row["name"]: row["num_requests"] for row in stats["stats"]}
                if seen.get("/agent/prompt", 0) > 0 and seen.get("/agent/job/[id]", 0) > 0:
                    break
                threading.Event().wait(0.1)
            assert seen.get("/agent/prompt", 0) > 0, seen
            assert seen.get("/agent/job/[id]", 0) > 0, seen
            assert httpx.post(f"{ui}/stop", timeout=5.0).status_code == 200
            state = ""
            for _ in range(100):  # its users stop within 10 s
                state = httpx.get(f"{ui}/stats/requests", timeout=5.0).json()["state"]
                if state == "stopped":
                    break
                threading.Event().wait(0.1)
            locust.terminate()  # the UI stays up after a stop: end it (our process, by id)
            _, err = locust.communicate(timeout=60)
        assert state == "stopped"
        assert "Traceback" not in err, err[-2000:]
        entries = _journal(base_url)
    prompts = [e for e in entries if e["path"] == "/agent/prompt"]
    assert seen["/agent/prompt"] <= len(prompts)
    assert len({e["owner"] for e in prompts}) == 3


def _first_answer(url: str, process: subprocess.Popen[str]) -> httpx.Response:
    """``url``'s first answer, once the process listens (at most 30 s)."""
    for _ in range(300):
        try:
            return httpx.get(url, timeout=5.0)
        except httpx.HTTPError:
            if process.poll() is not None:
                raise AssertionError(f"locust exited: {process.stderr}") from None
            threading.Event().wait(0.1)
    raise AssertionError(f"nothing answered at {url}")
