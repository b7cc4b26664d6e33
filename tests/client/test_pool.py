"""The gated pool: at most ``limit`` requests in flight, each slot freed when its body closes."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from bankr_client import ConfigError, GatedTransport, pooled_transport


class _Counting(httpx.AsyncBaseTransport):
    def __init__(self) -> None:
        self.in_flight = 0
        self.peak = 0
        self.fail = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        self.in_flight -= 1
        if self.fail:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, stream=httpx.ByteStream(b"ok"))


@pytest.mark.anyio
async def test_at_most_limit_requests_reach_the_pool() -> None:
    inner = _Counting()
    async with httpx.AsyncClient(transport=GatedTransport(inner, 3)) as client:
        responses = await asyncio.gather(*(client.get("http://x/") for _ in range(40)))
    assert [r.status_code for r in responses] == [200] * 40
    assert inner.peak == 3


@pytest.mark.anyio
async def test_a_failed_request_frees_its_slot() -> None:
    inner = _Counting()
    inner.fail = True
    transport = GatedTransport(inner, 1)
    async with httpx.AsyncClient(transport=transport) as client:
        for _ in range(3):  # with a leaked slot, the second request would wait forever
            with pytest.raises(httpx.ConnectError):
                await asyncio.wait_for(client.get("http://x/"), timeout=5)


def test_nonsense_limits_are_refused() -> None:
    for bad in (0, -1, True, 2.5):
        with pytest.raises(ConfigError):
            pooled_transport(bad)  # type: ignore[arg-type]
        with pytest.raises(ConfigError):
            GatedTransport(httpx.AsyncHTTPTransport(), bad)  # type: ignore[arg-type]
