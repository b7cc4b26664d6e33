"""Verdicts served three ways: ``GET /__mock/verdicts``, ``MockbankrEnv.verdicts()`` and
``assert_verdicts_pass``; thresholds validated, windows reported, owners filtered."""

from __future__ import annotations

from typing import Any

import pytest

from mockbankr import ConfigError, Settings
from mockbankr.clock import DEFAULT_EPOCH
from mockbankr.errors import VerdictsFailed
from mockbankr.money import PaymentTerms
from mockbankr.testing import MockbankrEnv, assert_verdicts_pass
from mockbankr.verdicts import Thresholds, parse_since

pytestmark = pytest.mark.anyio

PRICE = "What is the price of ETH?"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def prompt_and_poll(env: MockbankrEnv, key: str, *, every: float, extra: int = 0) -> str:
    """Prompt, poll every ``every`` s until terminal, then ``extra`` more polls."""
    headers = {"X-API-Key": key, "User-Agent": "agent-" + key.removeprefix("bk_")}
    accepted = await env.http.post("/agent/prompt", json={"prompt": PRICE}, headers=headers)
    job_id: str = accepted.json()["jobId"]
    done = 0
    while True:
        answer = (await env.http.get(f"/agent/job/{job_id}", headers=headers)).json()
        if answer["status"] in ("completed", "failed", "cancelled"):
            done += 1
            if done > extra:
                return job_id
        await env.clock.sleep(every)


async def verdicts(env: MockbankrEnv, **params: Any) -> dict[str, Any]:
    response = await env.http.get("/__mock/verdicts", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# -- the endpoint ---------------------------------------------------------------------------


async def test_the_endpoint_grades_each_client_with_evidence() -> None:
    async with MockbankrEnv(seed=3) as env:
        await prompt_and_poll(env, "bk_good", every=2.0)
        job_id = await prompt_and_poll(env, "bk_bad", every=2.0, extra=2)

        data = await verdicts(env)

    assert data["failed"] is True
    assert data["window"]["complete"] is True
    by_agent = {tuple(c["userAgents"]): c for c in data["clients"]}
    good, bad = by_agent[("agent-good",)], by_agent[("agent-bad",)]
    assert good["failed"] == []
    assert good["verdicts"]["stop-at-terminal"] == {"verdict": "pass"}
    assert bad["failed"] == ["stop-at-terminal"]
    shown = bad["verdicts"]["stop-at-terminal"]
    assert shown["count"] == 2
    first = shown["evidence"][0]
    assert first["message"] == "polled again after the job answered completed"
    assert [(e["method"], e["path"], e["status"]) for e in first["entries"]] == [
        ("GET", f"/agent/job/{job_id}", 200)
    ] * 2
    assert all(e["jobStatus"] == "completed" for e in first["entries"])
    assert "bk_bad" not in str(data)  # keys appear as fingerprints only


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ({"interval": "-1"}, "interval"),
        ({"interval": "1e9"}, "interval"),  # exponents are numbers; 1e9 is out of range
        ({"interval": "1e999"}, "interval"),
        ({"max_attempts": "1e-1"}, "max_attempts"),
        ({"max_attempts": "1.5"}, "max_attempts"),
        ({"max_retries": "²"}, "max_retries"),
        ({"jitter": "2"}, "jitter"),
        ({"timeout": "0"}, "timeout"),
        ({"backoff_max": "0.5"}, "backoff_max"),
        ({"price_usdc": "0.0000001"}, "0.0000001"),
        ({"duplicate_window": "9" * 40}, "duplicate_window"),
        ({"since": "yesterday"}, "since"),
        ({"since": "99999999999999"}, "since"),
        ({"bogus": "1"}, "bogus"),
    ],
)
async def test_a_bad_parameter_is_a_400_naming_it(query: dict[str, str], named: str) -> None:
    async with MockbankrEnv() as env:
        response = await env.http.get("/__mock/verdicts", params=query)

    assert response.status_code == 400, response.text
    assert named in response.json()["message"]


async def test_thresholds_per_query_change_the_verdict() -> None:
    async with MockbankrEnv(seed=3) as env:
        await prompt_and_poll(env, "bk_eager", every=1.0)

        strict = await verdicts(env)
        lenient = await verdicts(env, interval="1", tolerance="0")

    assert strict["clients"][0]["failed"] == ["poll-interval"]
    assert lenient["clients"][0]["failed"] == []
    assert lenient["thresholds"]["interval"] == 1.0


async def test_a_threshold_written_with_an_exponent_is_accepted() -> None:
    # As a generated client (or schemathesis) writes a `number` query parameter.
    async with MockbankrEnv(seed=3) as env:
        await prompt_and_poll(env, "bk_eager", every=1.0)
        written = await verdicts(env, interval="1e0", tolerance="0E+0", max_attempts="1.5e2")

    assert written["thresholds"]["interval"] == 1.0
    assert written["thresholds"]["max_attempts"] == 150
    assert written["clients"][0]["failed"] == []  # the 1 s interval was applied


def test_thresholds_from_text_take_exponents() -> None:
    changed = Thresholds.from_params({"interval": "1e1", "max_attempts": "2E2", "jitter": "5e-1"})
    assert (changed.interval, changed.max_attempts, changed.jitter) == (10.0, 200, 0.5)
    assert isinstance(changed.max_attempts, int)


async def test_owner_and_since_narrow_what_is_graded() -> None:
    async with MockbankrEnv(seed=3) as env:
        await prompt_and_poll(env, "bk_one", every=2.0, extra=1)
        later = env.clock.now() + 100
        env.advance(100)
        await prompt_and_poll(env, "bk_two", every=2.0)
        everyone = await verdicts(env)
        label = next(c["owner"] for c in everyone["clients"] if c["failed"])

        by_key = await verdicts(env, owner="bk_one")
        by_label = await verdicts(env, owner=label)
        nobody = await verdicts(env, owner="bk_nobody")
        recent = await verdicts(env, since=str(later))

    assert len(everyone["clients"]) == 2
    assert [c["owner"] for c in by_key["clients"]] == [label]
    assert by_label["clients"] == by_key["clients"]
    assert nobody["clients"] == []
    assert [c["userAgents"] for c in recent["clients"]] == [["agent-two"]]
    assert recent["failed"] is False


async def test_the_answer_says_when_the_journal_lost_the_start_of_the_run() -> None:
    async with MockbankrEnv(seed=3, settings=Settings(seed=3, journal_size=4)) as env:
        await prompt_and_poll(env, "bk_busy", every=0.5)  # one prompt and at least 4 polls
        count = len(env.app.state.journal)

        data = await verdicts(env)
        held_from = data["window"]["from"]
        since_held = await verdicts(env, since=held_from)

    assert count == 4
    window = data["window"]
    assert (window["complete"], window["entries"]) == (False, 4)
    assert window["dropped"] >= 1
    assert "no longer holds" in window["note"]
    assert since_held["window"]["complete"] is True
    assert since_held["window"]["note"] is None


async def test_wasted_usdc_is_counted_at_the_servers_price() -> None:
    settings = Settings(seed=3, payment=PaymentTerms(price_atomic=250_000))
    async with MockbankrEnv(seed=3, settings=settings) as env:
        headers = {"X-API-Key": "bk_twice"}
        for _ in range(2):
            await env.http.post("/agent/prompt", json={"prompt": PRICE}, headers=headers)

        data = await verdicts(env)
        cheaper = await verdicts(env, price_usdc="0.01")

    client = data["clients"][0]
    assert client["failed"] == ["no-double-pay"]
    assert client["verdicts"]["no-double-pay"]["usdcWasted"] == "0.25"
    assert cheaper["clients"][0]["usdcWasted"] == "0.01"


# -- in-process ----------------------------------------------------------------------------


async def test_env_verdicts_take_thresholds_by_keyword() -> None:
    async with MockbankrEnv(seed=3) as env:
        await prompt_and_poll(env, "bk_eager", every=1.0)

        assert env.verdicts().clients[0].failed == ["poll-interval"]
        assert env.verdicts(interval=1.0, tolerance=0.0).clients[0].failed == []
        with pytest.raises(ConfigError, match="interval"):
            env.verdicts(interval=-1.0)


async def test_assert_verdicts_pass_fails_with_a_readable_report() -> None:
    async with MockbankrEnv(seed=3) as env:
        await prompt_and_poll(env, "bk_good", every=2.0)
        assert_verdicts_pass(env.verdicts())
        job_id = await prompt_and_poll(env, "bk_bad", every=1.0, extra=1)

        with pytest.raises(VerdictsFailed) as failed:
            assert_verdicts_pass(env.verdicts())
        assert_verdicts_pass(env.verdicts(), checks=["deadline", "backoff"])
        with pytest.raises(VerdictsFailed) as one:
            assert_verdicts_pass(env.verdicts(), checks=["stop-at-terminal"])
        with pytest.raises(ValueError, match="poll-intervals"):
            assert_verdicts_pass(env.verdicts(), checks=["poll-intervals"])

    assert isinstance(failed.value, AssertionError)
    text = str(failed.value)
    assert "(agent-bad) fails poll-interval:" in text
    assert "(agent-bad) fails stop-at-terminal: 1 time" in text
    assert "  - polled again after the job answered completed" in text
    assert f"GET /agent/job/{job_id} -> 200 (completed)" in text
    assert "agent-good" not in text
    assert "poll-interval" not in str(one.value)


# -- pure parts ----------------------------------------------------------------------------


def test_since_reads_unix_seconds_and_iso_times() -> None:
    assert parse_since("1736937000") == DEFAULT_EPOCH
    assert parse_since("2025-01-15T10:30:00Z") == DEFAULT_EPOCH
    assert parse_since("2025-01-15T10:30:00") == DEFAULT_EPOCH  # UTC unless it says
    assert parse_since("2025-01-15T11:30:00+01:00") == DEFAULT_EPOCH
    for bad in ("", "-5", "nan", "1e9", "2025-13-01", "x" * 100):
        with pytest.raises(ConfigError, match="since"):
            parse_since(bad)


def test_thresholds_from_text_keep_the_base_and_refuse_nonsense() -> None:
    base = Thresholds(timeout=60.0)
    changed = Thresholds.from_params({"max_retries": "5", "price_usdc": "0.25"}, base)
    assert (changed.timeout, changed.max_retries, changed.price_atomic) == (60.0, 5, 250_000)
    assert changed.to_json()["price_usdc"] == "0.25"
    for bad in ({"interval": "inf"}, {"timeout": "nan"}, {"max_attempts": "0"}):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            Thresholds.from_params(bad)
    with pytest.raises(ConfigError, match="interval"):
        Thresholds(interval=float("nan"))
    with pytest.raises(ConfigError, match="max_attempts"):
        Thresholds(max_attempts=True)
