"""The two distributions install like libraries, each into a fresh virtual environment.

Both wheels are built from the checkout; the mockbankr wheel is installed *without extras*
and must serve, drive a server from the shell, and answer ``mockbankr contracts`` with the
one line naming the extra; the bankr-client wheel alone imports ``bankr_client`` and cannot
import ``mockbankr``. Installs are offline (``--no-index``) from a wheelhouse kept in
``.venv/wheelhouse``, filled once through pip's configured index and cache.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

pytestmark = [pytest.mark.install, pytest.mark.live]

REPO = Path(__file__).resolve().parents[1]
WHEELHOUSE = Path(sys.prefix) / "wheelhouse"
#: Bounds: building, downloading or installing longer than this is a failure, not slowness.
STEP_TIMEOUT = 300.0
START_TIMEOUT = 60.0


def _run(*command: str | Path, timeout: float = STEP_TIMEOUT) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    return subprocess.run(
        [str(part) for part in command],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=env,
        stdin=subprocess.DEVNULL,
        cwd="/",  # not the checkout: `python -c` would import its mockbankr from there
    )


def _ok(*command: str | Path) -> str:
    result = _run(*command)
    assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def _pip(*args: str | Path) -> str:
    return _ok(sys.executable, "-m", "pip", "--disable-pip-version-check", *args)


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``{"mockbankr": wheel, "bankr-client": wheel}`` built from the checkout."""
    dist = tmp_path_factory.mktemp("dist")
    for project in (REPO, REPO / "client"):
        _pip("wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", dist, project)
    built = {path.name.split("-")[0].replace("_", "-"): path for path in dist.glob("*.whl")}
    assert sorted(built) == ["bankr-client", "mockbankr"]
    return built


def _install(target: Path, wheel: Path) -> Path:
    """A fresh venv at ``target`` with ``wheel`` and its dependencies; its ``bin`` folder."""
    _ok(sys.executable, "-m", "venv", "--without-pip", target)
    python = target / "bin" / "python"
    offline = ("--no-index", "--find-links", wheel.parent, "--find-links", WHEELHOUSE)
    install = ("--python", python, "install", "--quiet", *offline, wheel)
    if _run(sys.executable, "-m", "pip", *install).returncode != 0:
        # First run here, or a new dependency: fetch the dependencies (pip's index and cache).
        # Our own wheels never stay in the wheelhouse: pip would reuse a stale copy's metadata.
        _drop_own_wheels()
        _pip("download", "--quiet", "--dest", WHEELHOUSE, "--find-links", wheel.parent, wheel)
        _drop_own_wheels()
        _pip(*install)
    return target / "bin"


def _drop_own_wheels() -> None:
    for own in ("mockbankr-*.whl", "bankr_client-*.whl"):
        for path in WHEELHOUSE.glob(own):
            path.unlink()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def plain(wheels: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``bin`` folder of a venv holding the mockbankr wheel without extras."""
    return _install(tmp_path_factory.mktemp("plain") / "venv", wheels["mockbankr"])


@pytest.fixture(scope="module")
def served(plain: Path) -> Iterator[str]:
    """The URL of ``mockbankr serve`` run from the plain install."""
    port = _free_port()
    process = subprocess.Popen(
        [plain / "mockbankr", "serve", "--port", str(port), "--seed", "1"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
        cwd="/",
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            try:
                httpx.get(url + "/_health", timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, f"nothing on {url} after {START_TIMEOUT}s"
                time.sleep(0.2)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
        if process.stderr:
            process.stderr.close()


def test_the_plain_install_has_no_harness_dependencies(plain: Path) -> None:
    for module in ("bankr_client", "respx"):
        result = _run(plain / "python", "-c", f"import {module}")
        assert "ModuleNotFoundError" in result.stderr, module


def test_the_plain_install_serves(served: str) -> None:
    response = httpx.get(served + "/_health")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})
    prompt = httpx.post(
        served + "/agent/prompt", json={"prompt": "price of ETH"}, headers={"X-API-Key": "bk_i"}
    )
    assert prompt.status_code == 202


def test_the_plain_install_serves_the_dashboard_and_the_metrics(served: str) -> None:
    """The page's files are package data in the wheel; prometheus-client is a dependency."""
    for path in ("/__mock/ui", "/__mock/ui/dashboard.js", "/__mock/ui/dashboard.css"):
        response = httpx.get(served + path)
        assert response.status_code == 200, path
        assert response.content, path
    metrics = httpx.get(served + "/__mock/metrics")
    assert metrics.status_code == 200
    assert "mockbankr_requests_total" in metrics.text


def test_the_plain_install_drives_a_server_from_the_shell(plain: Path, served: str) -> None:
    for command in (["rules", "list"], ["journal"], ["ledger"], ["clock", "get"], ["jobs", "list"]):
        result = _run(plain / "mockbankr", *command, "--url", served, "--json")
        assert result.returncode == 0, (command, result.stderr)
        json.loads(result.stdout)


def test_contracts_without_the_extra_is_one_line_naming_it(plain: Path) -> None:
    result = _run(plain / "mockbankr", "contracts", "verify")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "Error: mockbankr contracts needs the contracts extra: pip install"
        " 'mockbankr[contracts]' (no module named 'bankr_client')"
    ]


def test_the_client_wheel_installs_alone(
    wheels: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> None:
    bin_dir = _install(tmp_path_factory.mktemp("client") / "venv", wheels["bankr-client"])
    code = (
        "import bankr_client, importlib.util\n"
        "print(importlib.util.find_spec('mockbankr'), importlib.util.find_spec('eth_account'))\n"
        "try:\n    bankr_client.X402Auth('0x' + '11' * 32)\n"
        "except ImportError as exc:\n    print(exc)\n"
    )
    assert _ok(bin_dir / "python", "-c", code).splitlines() == [
        "None None",
        "X402Auth needs eth-account: pip install 'bankr-client[x402]'",
    ]
