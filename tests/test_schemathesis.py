"""The published OpenAPI document tells the truth: schemathesis finds nothing to report.

Two runs of the same configuration (``tests/schemathesis.toml``: every check, every phase,
a fixed seed, a bounded number of examples) and the same hooks (``_schemathesis_hooks``:
valid credentials from the document's security schemes, signed x402 payments and job
headers, fault rules kept inert):

- **live**: the schemathesis command line, as a user runs it, against ``mockbankr serve
  --api-key`` on a free loopback port (so an invalid key really is invalid), with time
  stopped (``--speed 0``) and the run's keys document loaded. It must exit 0: no failure,
  and none of the warnings the configuration fails on (``missing_test_data`` above all:
  the stateful links reach real jobs, rules and keys). Deterministic: the same seed sends
  the same requests and gets the same statuses, run after run.
- **in-process**: schemathesis's pytest integration on the ASGI app, with its own seed; the
  stateful phase is the state machine schemathesis builds from the document's links.

Every operation of the document is exercised, so a route added later is covered as soon as
the document describes it.
"""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import _schemathesis_hooks as hooks
import httpx
import pytest
import schemathesis
from starlette.applications import Starlette

from mockbankr import MemoryStore, RealClock, Settings, VirtualClock, create_app
from mockbankr.openapi import openapi_document
from mockbankr.testing import SyncClockTransport

TESTS = Path(__file__).parent
CONFIG = TESTS / "schemathesis.toml"
#: The in-process run's own seed (the live run takes the configuration's).
IN_PROCESS_SEED = 20261202


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_until_up(process: subprocess.Popen[bytes], base: str) -> None:
    """Until the server answers (as tests/test_install.py waits for its own)."""
    deadline = time.monotonic() + 30
    while True:
        assert process.poll() is None, "the server stopped at start"
        try:
            httpx.get(f"{base}/_health", timeout=1)
            return
        except httpx.TransportError:
            assert time.monotonic() < deadline, f"no server at {base} after 30 s"
            time.sleep(0.1)


def _operations() -> set[str]:
    """Every operation of the document but the document itself (schemathesis skips that)."""
    return {
        f"{method.upper()} {path}"
        for path, item in openapi_document()["paths"].items()
        for method in item
    } - {"GET /openapi.json"}


@pytest.mark.live
@pytest.mark.timeout(300)
def test_schemathesis_with_every_check_and_phase_passes_against_a_live_server(
    tmp_path: Path,
) -> None:
    port = _free_port()
    # Time stands still (speed 0) until the run moves the clock: a job the run creates is
    # still there to cancel or steer when a link reaches it.
    serve = ["serve", "--port", str(port), "--seed", "12", "--speed", "0"]
    run_keys = (hooks.KEY, hooks.REVOKE_KEY, hooks.ROTATE_KEY)
    keys = [arg for key in run_keys for arg in ("--api-key", key)]
    server = subprocess.Popen(
        [sys.executable, "-m", "mockbankr.cli", *serve, *keys],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    report = tmp_path / "report.json"
    try:
        # The run's keys document, as the hooks load it again after each reset: the
        # --api-key keys on one account, so that a job keeps one owner all run long.
        base = f"http://127.0.0.1:{port}"
        _wait_until_up(server, base)
        httpx.put(f"{base}/__mock/keys", json=hooks.RUN_KEYS, timeout=10).raise_for_status()
        command = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG)]
        command += ["run", f"http://127.0.0.1:{port}/openapi.json", "--wait-for-schema", "30"]
        command += ["--checks", "all", "--phases", "examples,coverage,fuzzing,stateful"]
        command += ["--report", "json", "--report-json-path", str(report)]
        run = subprocess.run(
            command,
            cwd=TESTS,
            env={**os.environ, "PYTHONPATH": str(TESTS), "NO_COLOR": "1", hooks.LIVE_URL: base},
            capture_output=True,
            text=True,
            timeout=280,
            check=False,
        )
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=30)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert "Traceback" not in stderr.decode(), stderr.decode()[-4000:]
    summary = json.loads(report.read_text())
    assert summary["failures"] == []
    assert summary["errors"] == []
    assert summary["operations"]["tested"] == len(_operations())
    assert {name: p["status"] for name, p in summary["phases"].items()} == dict.fromkeys(
        ("examples", "coverage", "fuzzing", "stateful"), "success"
    )
    assert summary["warnings"]["missing_test_data"] == []
    assert summary["warnings"]["missing_auth"] == []


def _seeded_app() -> tuple[Starlette, list[str]]:
    """The app as the live run's server has it, holding jobs in every status; their ids.

    The clock is virtual: only the run moves it (``POST /__mock/clock``). The control plane is
    not on loopback here (schemathesis's ASGI client), so it takes the admin token the hooks
    send; x402 payments are signed for the wall clock, as for a live server.
    """
    clock = VirtualClock()
    app = create_app(
        Settings(
            seed=13,
            api_keys=frozenset({hooks.KEY, hooks.REVOKE_KEY, hooks.ROTATE_KEY}),
            admin_token=hooks.TOKEN,
        ),
        clock=clock,
        rng=random.Random(13),
        store=MemoryStore(),
        payment_clock=RealClock(),
    )
    transport = SyncClockTransport(app, clock)
    # No read timeout: it would be a virtual sleeper, and the guard's body timer runs on the
    # payment (wall) clock, so the virtual clock would jump to the timeout mid-request.
    http_client = httpx.Client(transport=transport, base_url="http://mockbankr.local", timeout=None)
    with http_client as http:

        def prompt(path: str, outcome: str | None = None, latency: float = 5) -> str:
            shape = {"X-Mockbankr-Latency": str(latency)}
            shape |= {"X-Mockbankr-Outcome": outcome} if outcome else {}
            case = in_process_operation("POST", path).Case(body={"prompt": "Swap 1 USDC"})
            response = http.post(path, json=case.body, headers=hooks.credentials(case) | shape)
            assert response.status_code == 202, response.text
            job_id: str = response.json()["jobId"]
            return job_id

        ids = [
            prompt(path, outcome, latency)
            for path in ("/agent/prompt", "/v2/prompt")
            for outcome, latency in [("completed", 5), ("failed", 5), (None, 500), ("stuck", 5)]
        ]
        clock.advance(60)  # completed, failed, processing (cancelled next), stuck processing
        for path, job_id in (("agent", ids[2]), ("v2", ids[6])):
            case = in_process_operation("POST", f"/{path}/job/{{jobId}}/cancel").Case(
                path_parameters={"jobId": job_id}
            )
            cancel = http.post(f"/{path}/job/{job_id}/cancel", headers=hooks.credentials(case))
            assert cancel.status_code == 200, cancel.text
        ids += [prompt("/agent/prompt", latency=500), prompt("/v2/prompt", latency=500)]
    return app, ids


def in_process_operation(method: str, path: str) -> Any:
    return _document[path][method]


_document = schemathesis.openapi.from_dict(openapi_document())


def _in_process_config(job_ids: list[str]) -> schemathesis.Config:
    """The live run's configuration, with its own seed and the seeded jobs to draw ids from."""
    data: dict[str, Any] = tomllib.loads(CONFIG.read_text())
    data["seed"] = IN_PROCESS_SEED
    data["dictionaries"] = {"jobs": {"values": job_ids}}
    data["parameters"] = {"jobId": {"dictionary": "jobs", "probability": 0.5}}
    return schemathesis.Config.from_dict(data)


# One app for the whole in-process run, as one server serves the whole live run.
_app, _job_ids = _seeded_app()
in_process = schemathesis.openapi.from_asgi(
    "/openapi.json", _app, config=_in_process_config(_job_ids)
)


@in_process.parametrize()
def test_every_operation_in_process_conforms_with_every_check(case: schemathesis.Case) -> None:
    case.call_and_validate()


class _FreshAppPerScenario(in_process.as_state_machine()):  # type: ignore[misc]
    """Each scenario starts from the same seeded app (the same job ids: the same seed), so
    a replayed scenario meets the same answers and the links it follows stay the same."""

    def setup(self) -> None:
        self.app, _ = _seeded_app()

    def call(self, case: schemathesis.Case, **kwargs: Any) -> Any:
        return case.call(app=self.app, **kwargs)


TestTheStatefulPhaseInProcess = _FreshAppPerScenario.TestCase


def test_the_in_process_run_covers_every_operation_of_the_document() -> None:
    covered = {result.ok().label for result in in_process.get_all_operations()}
    assert covered == _operations()


def test_the_stateful_phase_starts_from_what_creates_jobs_rules_and_keys() -> None:
    """Each producer of a declared link is where a stateful scenario may start (its entry
    points: schemathesis takes an operation only if what its body refers to, a prompt's
    threadId or walletAddress, is produced somewhere: the Thread and Wallet components)."""
    machine = in_process.as_state_machine()  # the links the document declares, no others
    assert sorted(machine.root_rules) == [
        "RANDOM__GET__mock_keys",
        "RANDOM__POST__mock_keys_rotate",
        "RANDOM__POST__mock_rules",
        "RANDOM__POST_agent_prompt",
        "RANDOM__POST_v2_prompt",
    ]
