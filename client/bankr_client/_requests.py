"""Requests built and sent the cheap way: what httpx does for this client, minus what it
never uses (a fleet of a thousand agents on one machine pays for every microsecond).

Shared by both clients and by mockbankr's experiment agents, so that a fleet's requests
are built exactly as the reference client builds them.
"""

from __future__ import annotations

import functools
import json as json_module
from typing import Any

import httpx

__all__ = ["build_request", "parse_url", "send_direct"]


@functools.lru_cache(maxsize=4096)
def parse_url(url: str) -> httpx.URL:
    """``httpx.URL(url)``, remembered: parsing is most of what building a request costs.

    An ``httpx.URL`` is immutable, so one parsed URL serves every request to it (a job's
    polls, every agent's prompts); the cache is bounded, so unbounded job ids cannot grow it.
    """
    return httpx.URL(url)


def build_request(
    method: str, url: str, headers: dict[str, str], timeout: float, json: Any = None
) -> httpx.Request:
    """The request httpx would build from ``json=``, built directly: with the body's
    headers given and its stream read, httpx skips its header bookkeeping (half of the
    cost). ``headers`` is taken over (the body's headers are added to it)."""
    body = b""
    if json is not None:
        body = json_module.dumps(
            json, ensure_ascii=False, separators=(",", ":"), allow_nan=False
        ).encode("utf-8")
        headers["Content-Length"] = str(len(body))
        headers["Content-Type"] = "application/json"
    elif method in ("POST", "PUT", "PATCH"):
        headers["Content-Length"] = "0"
    request = httpx.Request(
        method,
        parse_url(url),
        headers=headers,
        stream=httpx.ByteStream(body),
        extensions={"timeout": httpx.Timeout(timeout).as_dict()},
    )
    request.read()
    return request


async def send_direct(
    transport: httpx.AsyncBaseTransport, request: httpx.Request
) -> httpx.Response:
    """``request`` through ``transport``, its body read.

    What ``httpx.AsyncClient.send`` does for a client with an explicit transport and no
    auth, redirects, cookies or hooks, at a fifth of its CPU: with a thousand agents on
    one machine, that is what a client costs.
    """
    try:
        response = await transport.handle_async_request(request)
    except httpx.RequestError as exc:
        exc.request = request
        raise
    response.request = request
    try:
        await response.aread()
    except BaseException:
        await response.aclose()
        raise
    return response
