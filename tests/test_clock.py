from __future__ import annotations

import asyncio

import pytest

from mockbankr.clock import ScaledClock, VirtualClock, iso


def test_iso_matches_javascript_to_iso_string() -> None:
    assert iso(1736937003.0) == "2025-01-15T10:30:03.000Z"
    assert iso(1736937003.2504) == "2025-01-15T10:30:03.250Z"
    assert iso(0.9996) == "1970-01-01T00:00:01.000Z"


def test_virtual_clock_moves_only_when_advanced() -> None:
    clock = VirtualClock(start=100.0)
    assert clock.now() == 100.0
    clock.advance(2.5)
    clock.sleep_sync(0.5)
    assert clock.now() == 103.0
    with pytest.raises(ValueError, match="backwards"):
        clock.advance(-1)
    with pytest.raises(ValueError, match="backwards"):
        clock.set(50)


@pytest.mark.anyio
async def test_virtual_sleep_jumps_to_the_deadline() -> None:
    clock = VirtualClock(start=0.0)
    await clock.sleep(300)
    assert clock.now() == 300


@pytest.mark.anyio
async def test_concurrent_sleepers_wake_in_deadline_order() -> None:
    clock = VirtualClock(start=0.0)
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append((name, clock.now()))

    await asyncio.gather(sleeper("c", 3), sleeper("a", 1), sleeper("b", 2))
    assert woke == [("a", 1), ("b", 2), ("c", 3)]
    assert clock.now() == 3  # concurrent sleeps overlap, they do not add up


@pytest.mark.anyio
async def test_cancelled_sleeper_does_not_move_time() -> None:
    clock = VirtualClock(start=0.0)
    long = asyncio.ensure_future(clock.sleep(1000))
    await asyncio.sleep(0)
    long.cancel()
    await clock.sleep(1)
    assert clock.now() == 1


@pytest.mark.anyio
async def test_advance_wakes_due_sleepers() -> None:
    clock = VirtualClock(start=0.0)
    task = asyncio.ensure_future(clock.sleep(10))
    await asyncio.sleep(0)
    clock.advance(10)
    await task
    assert clock.now() == 10


def test_scaled_clock_rejects_non_positive_speed() -> None:
    with pytest.raises(ValueError, match="positive"):
        ScaledClock(0)
    clock = ScaledClock(20, start=1000.0)
    assert clock.now() >= 1000.0
    clock.set_speed(5)
    assert clock.speed == 5
