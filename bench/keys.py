"""What the key check costs a status poll: a keys file against the default, in-process.

Two apps in one process, each with 2,000 live jobs of one key: the default app (any
key, each its own account) and one started from a keys file of 1,000 accounts and
1,000 keys (the polling key with an ``allowedIps`` allowlist, so every poll runs the
whole check: lookup, revoked, IP, agent flag). Each poll is one call of the ASGI app
with a prepared scope (no sockets, no HTTP client), so the check is a large share of
what is measured. Runs of :data:`POLLS` polls alternate default, keyed, default, ...
for :data:`ROUNDS` rounds after a warm-up; the figure is the median over the rounds of
keyed / default polls per CPU-second. A second default app measured the same way gives
the noise (default / default). Target: :data:`TARGET_RATIO`.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from typing import Any

from starlette.applications import Starlette

from bench.figures import BenchError, Figure, at_least, info
from mockbankr import MemoryStore, Settings, VirtualClock, create_app
from mockbankr.accounts import parse_keys

__all__ = ["POLLS", "ROUNDS", "TARGET_RATIO", "run"]

TARGET_RATIO = 0.9
ROUNDS = 7
POLLS = 4_000
JOBS = 2_000
KEY = "bk_poll"


def _keys_document() -> dict[str, Any]:
    accounts = {f"acct{i}": {"plan": "club"} for i in range(1_000)}
    keys: list[dict[str, Any]] = [
        {"key": f"bk_other_{i}", "account": f"acct{i}"} for i in range(1, 1_000)
    ]
    keys.append({"key": KEY, "account": "acct0", "allowedIps": ["10.0.0.0/8", "127.0.0.0/8"]})
    return {"accounts": accounts, "keys": keys}


class _Poller:
    """One app with its jobs, polled by direct ASGI calls."""

    def __init__(self, settings: Settings) -> None:
        self.clock = VirtualClock()
        self.app: Starlette = create_app(
            settings, clock=self.clock, rng=random.Random(1), store=MemoryStore()
        )
        self.ids: list[str] = []
        self.statuses: dict[int, int] = {}

    async def call(self, method: str, path: str, body: bytes = b"") -> int:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": b"",
            "headers": [(b"x-api-key", KEY.encode()), (b"content-type", b"application/json")],
            "client": ("127.0.0.1", 40000),
            "server": ("bench", 80),
        }
        status = 0

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        await self.app(scope, receive, send)
        return status

    async def fill(self) -> None:
        sim = self.app.state.simulator
        owner = "account:acct0" if self.app.state.settings.keys else "key:" + KEY
        for _ in range(JOBS):
            job = await sim.submit("Analyze the ETH market in depth", owner=owner)
            self.ids.append(job.id)
        if await self.call("GET", f"/agent/job/{self.ids[0]}") != 200:
            raise BenchError("keys: a poll of an existing job did not answer 200")

    async def polls(self, count: int, rng: random.Random) -> float:
        """Polls per CPU-second over ``count`` polls of random jobs."""
        paths = [f"/agent/job/{rng.choice(self.ids)}" for _ in range(count)]
        start = time.process_time()
        for path in paths:
            status = await self.call("GET", path)
            self.statuses[status] = self.statuses.get(status, 0) + 1
        return count / (time.process_time() - start)


async def _measure() -> dict[str, list[float]]:
    apps = {
        "default": _Poller(Settings(seed=1)),
        "default again": _Poller(Settings(seed=1)),
        "keys file": _Poller(Settings(seed=1, keys=parse_keys(_keys_document()))),
    }
    for poller in apps.values():
        await poller.fill()
    rng = random.Random(7)
    for poller in apps.values():  # warm-up
        await poller.polls(POLLS // 4, rng)
    rates: dict[str, list[float]] = {name: [] for name in apps}
    order = list(apps)
    for round_ in range(ROUNDS):
        for name in order[round_ % 3 :] + order[: round_ % 3]:
            rates[name].append(await apps[name].polls(POLLS, rng))
    for name, poller in apps.items():
        if set(poller.statuses) != {200}:
            raise BenchError(f"keys: {name} answered {poller.statuses}, not only 200")
    return rates


def run() -> list[Figure]:
    rates = asyncio.run(_measure())
    ratios = [k / d for k, d in zip(rates["keys file"], rates["default"], strict=True)]
    noise = [a / d for a, d in zip(rates["default again"], rates["default"], strict=True)]
    return [
        at_least(
            "keys: keys-file / default polls per CPU-s",
            statistics.median(ratios),
            "x",
            TARGET_RATIO,
        ),
        info("keys: default / default (noise)", statistics.median(noise), "x"),
        info(
            "keys: default polls per CPU-s (in-process)",
            statistics.median(rates["default"]),
            "polls/s",
        ),
    ]
