"""Every code block of README.md runs as written, so no example can go stale.

The blocks are found by their fences, whoever wrote them:

* ``sh``/``bash``/``shell``: run by bash (``set -euo pipefail``) from the repository root,
  with ``.venv/bin`` and ``.peer/node_modules/.bin`` on ``PATH`` (as the quick start says), a
  fresh ``HOME``, and a live server. A line that starts a server (``make run …`` or
  ``mockbankr serve …``) is that server: it runs in the background until the block ends.
  Otherwise the test starts ``mockbankr serve --seed 1`` (real time). Either way the server
  listens on a free port, given as ``MOCKBANKR_PORT``/``MOCKBANKR_URL``, and every
  ``127.0.0.1:8402`` in the block is rewritten to it.
* ``python``: run as a script, or by pytest (from an empty folder, no project config) when
  it defines ``test_`` functions; with a live server as above if it names ``127.0.0.1:8402``.
* ``js``: run by node as an ES module beside ``.peer/node_modules`` (the official SDK).
* ``json`` and ``toml``: parsed; a JSON object with an ``action`` must be a valid rule, a
  TOML document with ``accounts`` a valid keys file.

Only a block that needs the real Bankr API may be exempt, with the line
``<!-- readme-test: exempt, needs the real Bankr API -->`` right above its fence.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mockbankr.accounts import parse_keys
from mockbankr.rules import parse_rule

pytestmark = pytest.mark.live

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
PEER_BIN = REPO / ".peer" / "node_modules" / ".bin"

#: The exemption marker, and the only reason it may give.
EXEMPT = re.compile(r"<!--\s*readme-test:\s*exempt,\s*(?P<reason>.*?)\s*-->")
EXEMPT_REASON = "needs the real Bankr API"

SHELL = {"sh", "bash", "shell"}
KNOWN = SHELL | {"python", "js", "json", "toml"}
SERVER_LINE = re.compile(r"^\s*(make run\b|mockbankr serve\b)")
#: Upper bounds: a block that runs longer than this is broken, not slow.
BLOCK_TIMEOUT = 180.0
START_TIMEOUT = 30.0


@dataclasses.dataclass(frozen=True)
class Block:
    """One fenced code block: its language, its text, where it starts, and its exemption."""

    language: str
    code: str
    line: int
    exempt: str | None

    @property
    def id(self) -> str:
        return f"L{self.line}-{self.language or 'plain'}"


def readme_blocks(text: str) -> list[Block]:
    """The fenced blocks of a Markdown text, in order."""
    blocks: list[Block] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        fence = re.match(r"^(```+)\s*([\w-]*)", lines[index])
        if fence is None:
            index += 1
            continue
        start = index
        previous = next((lines[i] for i in range(start - 1, -1, -1) if lines[i].strip()), "")
        marker = EXEMPT.search(previous)
        body: list[str] = []
        index += 1
        while index < len(lines) and not lines[index].startswith(fence.group(1)):
            body.append(lines[index])
            index += 1
        index += 1
        blocks.append(
            Block(
                language=fence.group(2).lower(),
                code="\n".join(body) + "\n",
                line=start + 1,
                exempt=marker.group("reason") if marker else None,
            )
        )
    return blocks


BLOCKS = readme_blocks(README.read_text(encoding="utf-8"))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _environment(port: int, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BANKR_", "MOCKBANKR_"))}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), str(PEER_BIN), env["PATH"]])
    env["HOME"] = str(home)
    env["MOCKBANKR_PORT"] = str(port)
    # A block that starts its own server gives no --seed; without one, a price query
    # fails 5% of the time (the timing table's failure_probability) and so would the test.
    env["MOCKBANKR_SEED"] = "1"
    env["MOCKBANKR_URL"] = f"http://127.0.0.1:{port}"
    env["NO_COLOR"] = "1"
    return env


def _require_peers(code: str) -> None:
    if not PEER_BIN.is_dir():
        reason = "the official Node clients are not installed: run `make peer`"
        if os.environ.get("MOCKBANKR_REQUIRE_PEERS") == "1":
            pytest.fail(f"{reason} [MOCKBANKR_REQUIRE_PEERS=1]")
        pytest.skip(reason)


@contextlib.contextmanager
def _server(command: list[str] | str, env: dict[str, str], port: int) -> Iterator[None]:
    """A server process (its own session, so make's child goes too), up until the block ends."""
    process = subprocess.Popen(
        command,
        shell=isinstance(command, str),
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if process.poll() is not None:
                stderr = process.stderr.read().decode() if process.stderr else ""
                pytest.fail(f"the server stopped at start: {stderr}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/_health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"no server on port {port} after {START_TIMEOUT}s"
            time.sleep(0.1)
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        if process.stderr:
            process.stderr.close()


def _run(command: list[str], env: dict[str, str], cwd: Path, block: Block) -> None:
    result = subprocess.run(
        command,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=BLOCK_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, (
        f"README.md line {block.line} ({block.language}) exited {result.returncode}\n"
        f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    )


def test_the_readme_has_blocks_of_every_kind_the_test_runs() -> None:
    languages = {block.language for block in BLOCKS}
    assert {"sh", "python", "js", "json"} <= languages


@pytest.mark.parametrize("block", BLOCKS, ids=lambda block: block.id)
def test_readme_block_runs_as_written(block: Block, tmp_path: Path) -> None:
    if block.exempt is not None:
        assert block.exempt == EXEMPT_REASON, (
            f"line {block.line}: only a block that {EXEMPT_REASON} may be exempt"
        )
        return
    assert block.language in KNOWN, (
        f"README.md line {block.line}: a ```{block.language} block; give it one of"
        f" {sorted(KNOWN)} or mark it exempt"
    )
    if block.language == "json":
        data = json.loads(block.code)
        if isinstance(data, dict) and "action" in data:
            parse_rule(data)
        return
    if block.language == "toml":
        data = tomllib.loads(block.code)
        if "accounts" in data:  # a keys file, as `mockbankr serve --keys` reads it
            parse_keys(data)
        return
    port = _free_port()
    home = tmp_path / "home"
    home.mkdir()
    env = _environment(port, home)
    code = block.code.replace("127.0.0.1:8402", f"127.0.0.1:{port}")
    if block.language == "python":
        script = tmp_path / ("test_readme_block.py" if "def test_" in code else "block.py")
        script.write_text(code, encoding="utf-8")
        if script.name.startswith("test_"):
            command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", script.name]
        else:
            command = [sys.executable, script.name]
        with contextlib.ExitStack() as stack:
            if code != block.code:  # it talks to a server
                stack.enter_context(_server(_serve_command(port), env, port))
            _run(command, env, tmp_path, block)
        return
    if block.language == "js":
        _require_peers(code)
        script = REPO / ".peer" / f"readme-block-{block.line}.mjs"
        script.write_text(code, encoding="utf-8")
        try:
            with _server(_serve_command(port), env, port):
                _run(["node", str(script)], env, tmp_path, block)
        finally:
            script.unlink()
        return
    if re.search(r"^\s*(\S+=\S+\s+)*bankr\s", code, re.M):
        _require_peers(code)
    lines = code.splitlines()
    starts = [line for line in lines if SERVER_LINE.match(line)]
    assert len(starts) <= 1, f"line {block.line}: a block starts at most one server"
    rest = "\n".join(line for line in lines if not SERVER_LINE.match(line))
    script = tmp_path / "block.sh"
    script.write_text(f"set -euo pipefail\n{rest}\n", encoding="utf-8")
    server: list[str] | str = starts[0].split("#")[0].strip() if starts else _serve_command(port)
    with _server(server, env, port):
        _run(["bash", str(script)], env, REPO, block)


def _serve_command(port: int) -> list[str]:
    return [
        sys.executable, "-m", "mockbankr.cli", "serve",
        "--port", str(port), "--seed", "1",
    ]  # fmt: skip
