"""A server at a URL: find its ``/__mock`` control plane, install a scenario's rules, and
drive its clock.

The real Bankr API has no control plane; a ``mockbankr serve`` has one (on loopback).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from mockbankr.contracts.format import ContractError

__all__ = ["SteppedClock", "has_control_plane", "install_rules", "step_clock"]


async def has_control_plane(http: httpx.AsyncClient) -> bool:
    """Whether the server answers ``GET /__mock/rules`` like mockbankr does."""
    try:
        response = await http.get("/__mock/rules", timeout=10.0)
    except httpx.HTTPError:
        return False
    if response.status_code != 200:
        return False
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and isinstance(body.get("rules"), list)


async def install_rules(http: httpx.AsyncClient, rules: Sequence[dict[str, Any]]) -> None:
    """Reset the server (jobs, rules, journal, ledger) and add ``rules`` in order."""
    response = await http.post("/__mock/reset", json={}, timeout=10.0)
    if response.status_code != 200:
        raise ContractError(f"POST /__mock/reset answered {response.status_code}")
    await http.delete("/__mock/rules", timeout=10.0)
    for rule in rules:
        response = await http.post("/__mock/rules", json=rule, timeout=10.0)
        if response.status_code != 201:
            raise ContractError(
                f"POST /__mock/rules refused a scenario rule ({response.status_code}):"
                f" {response.text[:200]}"
            )


class SteppedClock:
    """A server's clock held still and moved by the harness, through ``/__mock/clock``.

    A contract's offsets then land on the server exactly as in-process: a poll recorded
    at the instant a job finishes sees it finished, however slow the machine or fast
    the server's ``--speed``. :meth:`restore` gives the clock its speed back.

    Example::

        clock = await step_clock(http)
        await clock.advance_to(clock.start + 6.0)
    """

    def __init__(self, http: httpx.AsyncClient, *, now: float, speed: float | None) -> None:
        self._http = http
        self.start = self.now = now
        self._speed = speed  # to give back; None: a virtual clock, never running

    async def advance_to(self, when: float) -> None:
        """Move the server's clock forward to ``when`` (unix seconds); never backwards."""
        # The server adds the step to the very float it last reported: now + (when - now)
        # is exactly ``when`` (the difference of two close floats is exact).
        if when <= self.now:
            return
        response = await self._http.post(
            "/__mock/clock", json={"advance": when - self.now}, timeout=10.0
        )
        if response.status_code != 200:
            raise ContractError(f"POST /__mock/clock answered {response.status_code}")
        self.now = float(response.json()["unix"])

    async def restore(self) -> None:
        """Let the clock run again at the speed it had (a virtual clock stays as it is)."""
        if self._speed:
            await self._http.post("/__mock/clock", json={"speed": self._speed}, timeout=10.0)


async def step_clock(http: httpx.AsyncClient) -> SteppedClock | None:
    """Stop the server's clock (speed 0) to step it, or ``None`` if it cannot be stopped."""
    response = await http.get("/__mock/clock", timeout=10.0)
    if response.status_code != 200:
        return None
    clock = response.json()
    if not isinstance(clock, dict) or clock.get("kind") not in ("scaled", "virtual"):
        return None  # a wall clock cannot be held still
    speed = clock.get("speed")
    if clock["kind"] == "scaled":
        response = await http.post("/__mock/clock", json={"speed": 0}, timeout=10.0)
        if response.status_code != 200:
            return None
        clock = response.json()
    return SteppedClock(http, now=float(clock["unix"]), speed=speed)
