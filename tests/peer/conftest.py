"""Fixtures for the official Node clients (`make peer` installs them into ``.peer/``).

* ``peer_paths`` (session): node, the ``bankr`` binary and ``peer/sdk-run.mjs``, resolved
  from the repository root. Nothing is checked here: a test that runs a peer which is not
  installed is skipped with a reason that says to run ``make peer``, or fails with it when
  ``MOCKBANKR_REQUIRE_PEERS=1`` (``make test`` sets it, so CI cannot skip them silently).
* ``peer_env`` (session): the base environment of every peer process, ``PATH`` and locale
  only, so no ``BANKR_*`` variable or colour setting of the caller leaks in.
* ``bankr``: runs the CLI with a fresh temporary ``HOME`` per test (the CLI writes
  ``~/.bankr/config.json`` after each prompt, so a shared HOME would couple tests).
* ``sdk_run``: runs ``peer/sdk-run.mjs`` (one ``@bankr/sdk`` call) on a JSON command.
* ``serve``: starts ``LiveServer``s that stop at the end of the test.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, NoReturn

import pytest

from mockbankr.testing import LiveServer

REPO_ROOT = Path(__file__).resolve().parents[2]
PEER_DIR = REPO_ROOT / ".peer"

#: Longer than any single CLI run here (a prompt is done at its second poll, ~2 s),
#: far shorter than the CLI's own give-up time (150 polls x 2 s).
RUN_TIMEOUT = 30.0

#: ``serve(**LiveServer options)``, as the ``serve`` fixture gives it.
ServerFactory = Callable[..., LiveServer]

#: The only variables a peer process inherits.
_INHERITED = ("PATH", "LANG", "LC_ALL", "SYSTEMROOT", "TMPDIR")


@dataclasses.dataclass(frozen=True)
class PeerPaths:
    """Where the official clients live; ``node`` is ``None`` if it is not on PATH."""

    node: str | None
    bankr: Path
    sdk_client: Path
    sdk_run: Path
    peer_dir: Path
    #: A missing peer fails its tests instead of skipping them (``MOCKBANKR_REQUIRE_PEERS=1``).
    required: bool = False

    def require(self, path: Path, package: str) -> list[str]:
        """``[node, path]``, or skip (fail, if peers are required) saying how to install them."""
        if self.node is None:
            self._missing("node is not on PATH: the peer tests need Node 20 and npm 11")
        if not path.exists():
            self._missing(
                f"{package} is not installed ({path} is missing): run `make peer` "
                f"(it installs peer/package.json into {self.peer_dir})"
            )
        assert self.node is not None
        return [self.node, str(path)]

    def _missing(self, reason: str) -> NoReturn:
        if self.required:
            pytest.fail(f"{reason} [MOCKBANKR_REQUIRE_PEERS=1]")
        pytest.skip(reason)


@pytest.fixture(scope="session")
def peer_paths() -> PeerPaths:
    return PeerPaths(
        node=shutil.which("node"),
        bankr=PEER_DIR / "node_modules" / ".bin" / "bankr",
        sdk_client=PEER_DIR / "node_modules" / "@bankr" / "sdk" / "dist" / "client.js",
        sdk_run=REPO_ROOT / "peer" / "sdk-run.mjs",
        peer_dir=PEER_DIR,
        required=os.environ.get("MOCKBANKR_REQUIRE_PEERS") == "1",
    )


@pytest.fixture(scope="session")
def peer_env() -> Mapping[str, str]:
    return {name: os.environ[name] for name in _INHERITED if name in os.environ}


@dataclasses.dataclass(frozen=True)
class BankrCli:
    """The official ``bankr`` CLI, run as a subprocess with an isolated HOME.

    Example::

        result = bankr.run("status", job_id, url=server.base_url)
        assert result.returncode == 0
    """

    paths: PeerPaths
    base_env: Mapping[str, str]
    home: Path

    @property
    def config_file(self) -> Path:
        return self.home / ".bankr" / "config.json"

    def run(
        self,
        *args: str,
        url: str | None,
        key: str | None = "bk_test",
        stdin: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``bankr *args`` to completion; ``url``/``key`` set BANKR_API_URL/KEY."""
        command = self.paths.require(self.paths.bankr, "@bankr/cli")
        env = {**self.base_env, "HOME": str(self.home)}
        if url is not None:
            env["BANKR_API_URL"] = url
        if key is not None:
            env["BANKR_API_KEY"] = key
        return subprocess.run(
            [*command, *args],
            input=stdin,
            stdin=subprocess.DEVNULL if stdin is None else None,
            capture_output=True,
            text=True,
            env=env,
            cwd=self.home,
            timeout=RUN_TIMEOUT,
            check=False,
        )


@pytest.fixture
def bankr(peer_paths: PeerPaths, peer_env: Mapping[str, str], tmp_path: Path) -> BankrCli:
    home = tmp_path / "home"
    home.mkdir()
    return BankrCli(peer_paths, peer_env, home)


@dataclasses.dataclass(frozen=True)
class SdkRun:
    """``peer/sdk-run.mjs``: one official SDK call per run, one JSON line out.

    Example::

        code, out = sdk_run({"op": "address", "baseUrl": url, "privateKey": key})
        assert (code, out["ok"]) == (0, True)
    """

    paths: PeerPaths
    base_env: Mapping[str, str]
    home: Path

    def __call__(
        self, command: Mapping[str, Any], *, env: Mapping[str, str] | None = None
    ) -> tuple[int, dict[str, Any]]:
        """Run one command; ``(exit code, the parsed output line)``."""
        self.paths.require(self.paths.sdk_client, "@bankr/sdk")
        argv = self.paths.require(self.paths.sdk_run, "peer/sdk-run.mjs")
        result = subprocess.run(
            argv,
            input=json.dumps(command),
            capture_output=True,
            text=True,
            env={**self.base_env, "HOME": str(self.home), **(env or {})},
            cwd=self.home,
            timeout=RUN_TIMEOUT,
            check=False,
        )
        lines = result.stdout.splitlines()
        assert len(lines) == 1, f"expected one JSON line, got {result.stdout!r} {result.stderr!r}"
        output: dict[str, Any] = json.loads(lines[0])
        return result.returncode, output


@pytest.fixture
def sdk_run(peer_paths: PeerPaths, peer_env: Mapping[str, str], tmp_path: Path) -> SdkRun:
    home = tmp_path / "sdk-home"
    home.mkdir()
    return SdkRun(peer_paths, peer_env, home)


@pytest.fixture
def serve() -> Iterator[ServerFactory]:
    """``serve(**LiveServer options)`` starts a live server, stopped after the test."""
    with contextlib.ExitStack() as stack:

        def start(**options: Any) -> LiveServer:
            return stack.enter_context(LiveServer(**options))

        yield start
