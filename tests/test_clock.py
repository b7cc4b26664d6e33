from __future__ import annotations

import asyncio
import math

import pytest

from mockbankr.clock import (
    CLOCK_LIMIT,
    ClockTimeout,
    ScaledClock,
    VirtualClock,
    call_later,
    iso,
)
from mockbankr.testing import MockbankrEnv


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


@pytest.mark.parametrize("speed", [-1.0, math.inf, math.nan])
def test_scaled_clock_rejects_a_negative_or_unbounded_speed(speed: float) -> None:
    with pytest.raises(ValueError, match="finite number >= 0"):
        ScaledClock(speed)


def test_speed_zero_freezes_a_scaled_clock() -> None:
    clock = ScaledClock(0, start=1000.0)
    assert clock.now() == 1000.0
    clock.advance(2.5)
    assert clock.now() == 1002.5
    assert clock.speed == 0


@pytest.mark.anyio
async def test_a_sleep_on_a_frozen_clock_ends_when_time_is_advanced() -> None:
    clock = ScaledClock(0, start=1000.0)
    task = asyncio.ensure_future(clock.sleep(10))
    await asyncio.sleep(0)
    clock.advance(4)
    await asyncio.sleep(0)
    assert not task.done()
    clock.advance(6)
    await asyncio.wait_for(task, timeout=5)  # a guard: it ends at once, not on wall time
    assert clock.now() == 1010.0


def test_a_running_clock_stops_at_the_limit() -> None:
    clock = ScaledClock(1e6, start=CLOCK_LIMIT)
    assert clock.now() == CLOCK_LIMIT
    with pytest.raises(ValueError, match="cannot go past 9000-01-01"):
        clock.advance(1)


@pytest.mark.parametrize("when", [CLOCK_LIMIT + 1, math.inf, math.nan])
def test_a_virtual_clock_cannot_be_set_past_the_limit(when: float) -> None:
    clock = VirtualClock(start=0.0)
    with pytest.raises(ValueError, match="cannot go past"):
        clock.set(when)
    assert clock.now() == 0.0


@pytest.mark.anyio
async def test_a_virtual_sleep_past_the_limit_leaves_time_at_the_limit() -> None:
    clock = VirtualClock(start=CLOCK_LIMIT - 5)
    task = asyncio.ensure_future(clock.sleep(1e308))
    for _ in range(20):
        await asyncio.sleep(0)
    assert clock.now() == CLOCK_LIMIT
    assert not task.done()
    task.cancel()
    clock = ScaledClock(20, start=1000.0)
    assert clock.now() >= 1000.0
    clock.set_speed(5)
    assert clock.speed == 5


@pytest.mark.anyio
async def test_a_virtual_timer_fires_at_its_instant_without_a_task() -> None:
    clock = VirtualClock(start=0.0)
    fired: list[float] = []
    before = asyncio.all_tasks()
    call_later(clock, 5, lambda: fired.append(clock.now()))
    cancelled = call_later(clock, 3, lambda: fired.append(-1.0))
    assert asyncio.all_tasks() == before
    cancelled.cancel()
    await clock.sleep(10)  # the loop settles: time jumps to the timer, then to 10
    assert fired == [5.0]
    assert clock.now() == 10.0


@pytest.mark.anyio
async def test_timers_given_up_on_do_not_pile_up_in_a_virtual_clock() -> None:
    clock = VirtualClock(start=0.0)
    keep = call_later(clock, 1, lambda: None)
    for _ in range(10_000):
        call_later(clock, 30, lambda: None).cancel()
    assert clock.scheduled <= 32  # the 10,000 cancelled ones are dropped as they come
    keep.cancel()


@pytest.mark.anyio
async def test_a_clock_timeout_expires_on_simulated_time() -> None:
    clock = VirtualClock(start=0.0)
    with pytest.raises(TimeoutError):
        async with ClockTimeout(clock, 5) as deadline:
            await clock.sleep(60)
    assert deadline.expired()
    assert clock.now() == 5.0
    async with ClockTimeout(clock, 5) as quick:
        await clock.sleep(1)
    assert not quick.expired()
    await clock.sleep(30)  # the timer of the block that ended is gone: nothing is cancelled
    assert clock.now() == 36.0


@pytest.mark.anyio
async def test_a_timer_on_a_frozen_scaled_clock_fires_when_time_reaches_it() -> None:
    clock = ScaledClock(0, start=0.0)
    fired: list[float] = []
    before = asyncio.all_tasks()
    call_later(clock, 5, lambda: fired.append(clock.now()))
    gone = call_later(clock, 5, lambda: fired.append(-1.0))
    gone.cancel()
    clock.advance(4.5)
    for _ in range(3):
        await asyncio.sleep(0)
    assert fired == []
    clock.advance(0.5)
    for _ in range(3):
        await asyncio.sleep(0)
    assert fired == [5.0]
    assert asyncio.all_tasks() == before


@pytest.mark.anyio
async def test_a_burst_of_requests_in_process_leaves_no_task_or_timer_behind() -> None:
    # 500 prompts sent without yielding: each used to leave a timer task (its read
    # timeout) and a sleeping task (the guard's body timeout) behind it.
    before = asyncio.all_tasks()
    async with MockbankrEnv(seed=1) as env:
        requests = [
            asyncio.ensure_future(
                env.http.post(
                    "/agent/prompt",
                    json={"prompt": "What is the price of ETH?"},
                    headers={"X-API-Key": "bk_test"},
                    timeout=30,
                )
            )
            for _ in range(500)
        ]
        await asyncio.sleep(0)  # each request runs until it first waits
        others = asyncio.all_tasks() - set(requests) - before
        assert len(others) == 0, f"{len(others)} tasks besides the requests"
        done, _ = await asyncio.wait(requests)
        assert {r.result().status_code for r in done} == {202}
        assert asyncio.all_tasks() == before
        assert env.clock.scheduled <= 32
