"""Every check can fail: scripted clients, each making exactly one mistake, graded.

Each client is a few lines of raw httpx on a :class:`~mockbankr.testing.MockbankrEnv`
(in-process, on its VirtualClock): it behaves well except for one mistake, and the
grading of the env's journal must fail that check and no other. A well-behaved script
beside them passes everything it exercises, so a check that fails everyone is caught.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from mockbankr.testing import MockbankrEnv
from mockbankr.verdicts import CHECKS, Report, Thresholds

pytestmark = pytest.mark.anyio

KEY = "bk_scripted"
HEADERS = {"X-API-Key": KEY, "User-Agent": "scripted-client/1.0"}
PRICE = "What is the price of ETH?"
TERMINAL = {"completed", "failed", "cancelled"}

Script = Callable[[MockbankrEnv], Awaitable[None]]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# -- a small raw client -----------------------------------------------------------------


async def submit(env: MockbankrEnv, prompt: str = PRICE, **headers: str) -> str:
    response = await env.http.post(
        "/agent/prompt", json={"prompt": prompt}, headers={**HEADERS, **headers}
    )
    assert response.status_code == 202, response.text
    job_id: str = response.json()["jobId"]
    return job_id


async def poll(env: MockbankrEnv, job_id: str) -> tuple[int, str | None]:
    response = await env.http.get(f"/agent/job/{job_id}", headers=HEADERS)
    status = response.json().get("status") if response.status_code == 200 else None
    return response.status_code, status


async def wait_done(env: MockbankrEnv, job_id: str, every: float = 2.0) -> str:
    """Poll every ``every`` s (after errors too, within the backoff) until terminal."""
    while True:
        _code, status = await poll(env, job_id)
        if status in TERMINAL:
            assert status is not None
            return status
        await env.clock.sleep(every)


async def cancel(env: MockbankrEnv, job_id: str) -> None:
    response = await env.http.post(f"/agent/job/{job_id}/cancel", headers=HEADERS)
    assert response.status_code == 200, response.text


async def add_rule(env: MockbankrEnv, rule: dict[str, Any]) -> None:
    response = await env.http.post("/__mock/rules", json=rule)
    assert response.status_code == 201, response.text


async def run(script: Script, thresholds: Thresholds | None = None) -> Report:
    async with MockbankrEnv(seed=7) as env:
        await script(env)
        return env.verdicts(thresholds)


# -- the scripts ---------------------------------------------------------------------------


async def well_behaved(env: MockbankrEnv) -> None:
    await wait_done(env, await submit(env))
    stuck = await submit(env, "Analyze the ETH market", **{"X-Mockbankr-Outcome": "stuck"})
    for _ in range(3):
        await poll(env, stuck)
        await env.clock.sleep(2)
    await cancel(env, stuck)


async def polls_too_fast(env: MockbankrEnv) -> None:
    await wait_done(env, await submit(env), every=0.5)


async def polls_after_terminal(env: MockbankrEnv) -> None:
    job_id = await submit(env)
    await wait_done(env, job_id)
    for _ in range(3):
        await env.clock.sleep(2)
        await poll(env, job_id)


async def polls_past_the_timeout(env: MockbankrEnv) -> None:
    start = env.clock.now()
    job_id = await submit(env, "Analyze the ETH market", **{"X-Mockbankr-Outcome": "stuck"})
    while env.clock.now() - start < 330:
        await poll(env, job_id)
        await env.clock.sleep(10)
    await cancel(env, job_id)


async def polls_too_often(env: MockbankrEnv) -> None:
    job_id = await submit(env, "Analyze the ETH market", **{"X-Mockbankr-Outcome": "stuck"})
    for _ in range(8):
        await poll(env, job_id)
        await env.clock.sleep(2)
    await cancel(env, job_id)


async def ignores_retry_after(env: MockbankrEnv) -> None:
    await add_rule(
        env,
        {
            "match": {"method": "GET", "path": "/agent/job/*"},
            "action": {"respond": {"status": 429, "headers": {"Retry-After": "7"}}},
            "times": 1,
        },
    )
    await wait_done(env, await submit(env))  # its next polls come 2 and 4 s later, not 7


async def retries_without_backoff(env: MockbankrEnv) -> None:
    await add_rule(
        env,
        {
            "match": {"method": "GET", "path": "/agent/job/*"},
            "action": {"respond": {"status": 503}},
            "times": 2,
        },
    )
    job_id = await submit(env)
    while True:
        code, status = await poll(env, job_id)
        if status in TERMINAL:
            return
        await env.clock.sleep(0.1 if code == 503 else 2.0)


async def retries_too_many_times(env: MockbankrEnv) -> None:
    await add_rule(
        env,
        {
            "match": {"method": "GET", "path": "/agent/job/*"},
            "action": {"respond": {"status": 502}},
            "times": 5,
        },
    )
    job_id = await submit(env)
    failures = 0
    while True:
        code, status = await poll(env, job_id)
        if status in TERMINAL:
            return
        failures = failures + 1 if code == 502 else 0
        await env.clock.sleep(2.0**failures if failures else 2.0)


async def resends_after_a_500(env: MockbankrEnv) -> None:
    response = await env.http.post(
        "/agent/prompt", json={"prompt": PRICE}, headers={**HEADERS, "X-Mockbankr-Fault": "500"}
    )
    assert response.status_code == 500
    await env.clock.sleep(1.0)  # a proper backoff: only the resend itself is wrong
    await wait_done(env, await submit(env))


async def resends_while_live(env: MockbankrEnv) -> None:
    first = await submit(env)
    await env.clock.sleep(1.0)
    second = await submit(env)
    await wait_done(env, first)
    await wait_done(env, second)


async def abandons_a_job(env: MockbankrEnv) -> None:
    job_id = await submit(env, "Analyze the ETH market", **{"X-Mockbankr-Outcome": "stuck"})
    for _ in range(3):
        await poll(env, job_id)
        await env.clock.sleep(2)
    env.advance(301)  # the client went away; the job is still running, paid for


async def loops_on_404(env: MockbankrEnv) -> None:
    for _ in range(3):
        code, _status = await poll(env, "job_NEVERISSUED")
        assert code == 404
        await env.clock.sleep(2)


MISTAKES: list[tuple[str, Script, int, str | None]] = [
    # (check, script, offending requests or jobs, USDC wasted)
    ("poll-interval", polls_too_fast, 8, None),
    ("stop-at-terminal", polls_after_terminal, 3, None),
    ("deadline", polls_past_the_timeout, 2, None),
    ("retry-after", ignores_retry_after, 2, None),
    ("backoff", retries_without_backoff, 2, None),
    ("backoff", retries_too_many_times, 2, None),
    ("no-double-pay", resends_after_a_500, 1, "0.1"),
    ("no-double-pay", resends_while_live, 1, "0.1"),
    ("abandoned-job", abandons_a_job, 1, "0.1"),
    ("not-found-loop", loops_on_404, 2, None),
]


@pytest.mark.parametrize(
    ("check", "script", "count", "wasted"),
    MISTAKES,
    ids=[f"{check}-{script.__name__}" for check, script, _, _ in MISTAKES],
)
async def test_one_mistake_fails_exactly_its_check(
    check: str, script: Script, count: int, wasted: str | None
) -> None:
    report = await run(script)

    (client,) = report.clients
    assert client.failed == [check], report.describe()
    verdict = client.verdicts[check]
    assert verdict.count == count, report.describe()
    assert verdict.incidents, "a failure shows its evidence"
    shown = client.to_json()["verdicts"][check]
    assert shown["verdict"] == "fail"
    assert shown.get("usdcWasted") == wasted
    for incident in shown["evidence"]:
        for entry in incident["entries"]:
            assert set(entry) >= {"simTime", "method", "path", "status"}


async def test_too_many_attempts_fail_the_deadline_check_at_a_set_maximum() -> None:
    report = await run(polls_too_often, Thresholds(max_attempts=5))

    (client,) = report.clients
    assert client.failed == ["deadline"], report.describe()
    assert client.verdicts["deadline"].count == 3
    assert "poll number 6 of the job (maximum 5)" in report.describe()
    # The same run is fine under the default maximum of 150.
    assert (await run(polls_too_often)).clients[0].failed == []


async def test_a_well_behaved_client_passes_every_check_it_exercises() -> None:
    report = await run(well_behaved)

    (client,) = report.clients
    outcomes = {check: v.outcome for check, v in client.verdicts.items()}
    assert outcomes == {
        "poll-interval": "pass",
        "stop-at-terminal": "pass",
        "deadline": "pass",
        "retry-after": "not-exercised",
        "backoff": "not-exercised",
        "no-double-pay": "pass",
        "abandoned-job": "pass",
        "not-found-loop": "not-exercised",
    }
    assert list(client.verdicts) == list(CHECKS)
    assert client.user_agents == ("scripted-client/1.0",)
    assert client.label.startswith("bk_…")
    assert KEY not in client.label
    assert not report.failed
    assert report.describe() == ""


async def test_a_thresholds_change_turns_a_mistake_into_acceptable_behaviour() -> None:
    # Polling every 0.5 s fails at the default 2 s, passes once 0.5 s is allowed.
    assert (await run(polls_too_fast, Thresholds(interval=0.5))).clients[0].failed == []
    # A prompt resent 1 s after it was accepted is no duplicate with a 0.5 s window.
    lenient = Thresholds(duplicate_window=0.5)
    assert (await run(resends_while_live, lenient)).clients[0].failed == []


async def test_the_report_reads_as_a_list_of_failures_with_their_evidence() -> None:
    report = await run(polls_after_terminal)

    text = report.describe()
    lines = text.splitlines()
    assert lines[0].startswith("bk_…")
    assert lines[0].endswith("(scripted-client/1.0) fails stop-at-terminal: 3 times")
    assert "  - polled again after the job answered completed" in lines
    assert any(line.strip().endswith("-> 200 (completed)") for line in lines)
