"""``mockbankr keys list | load | revoke | rotate`` against a live server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from mockbankr import VirtualClock
from mockbankr.cli import main
from mockbankr.testing import LiveServer

pytestmark = pytest.mark.live


@pytest.fixture
def server() -> Iterator[LiveServer]:
    with LiveServer(clock=VirtualClock(), seed=5) as live:
        yield live


def run(server: LiveServer, *args: str, code: int = 0) -> str:
    result = CliRunner().invoke(main, [*args, "--url", server.base_url])
    assert result.exit_code == code, result.output
    return result.output


def me(server: LiveServer, key: str) -> int:
    return httpx.get(f"{server.base_url}/wallet/me", headers={"X-API-Key": key}).status_code


def test_rotate_then_revoke_from_the_shell(server: LiveServer) -> None:
    assert run(server, "keys", "rotate", "bk_a", "--new-key", "bk_b") == "bk_b\n"
    assert (me(server, "bk_a"), me(server, "bk_b")) == (401, 200)
    drawn = run(server, "keys", "rotate", "bk_b").strip()
    assert drawn.startswith("bk_")
    assert run(server, "keys", "revoke", drawn) == f"revoked {drawn}\n"
    assert me(server, drawn) == 401
    listed = json.loads(run(server, "keys", "list", "--json"))
    assert sorted((k["key"], k["revoked"]) for k in listed["keys"]) == sorted(
        [("bk_a", True), ("bk_b", True), (drawn, True)]
    )
    assert "bk_a" in run(server, "keys", "list")


def test_load_a_keys_file_and_unknown_keys(server: LiveServer, tmp_path: Path) -> None:
    path = tmp_path / "keys.toml"
    path.write_text(
        '[accounts.acme]\nplan = "club"\n[[keys]]\nkey = "bk_ops"\naccount = "acme"\n'
        "dailyLimit = 7\n",
        encoding="utf-8",
    )
    loaded = json.loads(run(server, "keys", "load", str(path), "--json"))
    assert loaded["open"] is False
    assert loaded["keys"][0]["dailyLimit"] == 7
    assert (me(server, "bk_ops"), me(server, "bk_anything")) == (200, 401)
    assert "404" in run(server, "keys", "revoke", "bk_never", code=1)
    path.write_text('[accounts.acme]\nplan = "club"\ncolour = 1\n', encoding="utf-8")
    assert "accounts.acme.colour: unknown key" in run(server, "keys", "load", str(path), code=2)
