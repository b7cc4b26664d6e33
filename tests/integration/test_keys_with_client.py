"""The reference client meets Bankr's key errors: a key revoked mid-poll, a spent quota."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from bankr_client import AuthenticationError, PermissionDeniedError, RateLimitError

from mockbankr import Settings
from mockbankr.accounts import parse_keys
from mockbankr.testing import MockbankrEnv

ANALYSIS = "Analyze the ETH market and give me a detailed report"
PRICE = "What is the price of ETH?"


async def journal(env: MockbankrEnv, **filters: str) -> list[dict[str, Any]]:
    response = await env.http.get("/__mock/journal", params=filters)
    entries: list[dict[str, Any]] = response.json()["entries"]
    return entries


CLUB = parse_keys(
    {"accounts": {"c": {"plan": "club"}}, "keys": [{"key": "bk_test", "account": "c"}]}
)


@pytest.mark.anyio
@pytest.mark.parametrize("settings", [None, Settings(seed=1, keys=CLUB)], ids=["any-key", "keys"])
async def test_a_key_revoked_while_the_client_polls_ends_the_poll_with_401(
    settings: Settings | None,
) -> None:
    async with MockbankrEnv(seed=1, settings=settings) as env:
        job_id = (await env.client.prompt(ANALYSIS)).job_id
        revoked_at: list[float] = []

        async def revoke_later() -> None:
            await env.clock.sleep(5.0)
            response = await env.http.post("/__mock/keys/revoke", json={"key": env.api_key})
            assert response.status_code == 200
            revoked_at.append(env.clock.now())

        revoker = asyncio.ensure_future(revoke_later())
        with pytest.raises(AuthenticationError) as caught:
            await env.client.poll_job(job_id, interval=2.0, timeout=300.0)
        await revoker
        assert caught.value.status_code == 401
        assert caught.value.error == "Invalid API key"
        polls = await journal(env, method="GET", path=f"/agent/job/{job_id}")
        # Polls at 0, 2 and 4 s were answered; the first one after the revoke (6 s) is
        # the 401, and the client neither retried it nor polled again.
        assert [entry["status"] for entry in polls] == [200, 200, 200, 401]
        assert env.clock.now() == pytest.approx(revoked_at[0] + 1.0)


@pytest.mark.anyio
async def test_quota_and_access_errors_reach_the_client_typed_and_are_not_resent() -> None:
    keys = parse_keys(
        {
            "accounts": {"a": {"plan": "max-mode"}, "n": {"plan": "none"}},
            "keys": [
                {"key": "bk_a", "account": "a", "dailyLimit": 1},
                {"key": "bk_off", "account": "a", "agentApiEnabled": False},
                {"key": "bk_n", "account": "n"},
            ],
        }
    )
    async with MockbankrEnv(seed=1, settings=Settings(seed=1, keys=keys), api_key="bk_a") as env:
        job = await env.client.prompt_and_wait(PRICE)
        assert job.status == "completed"
        with pytest.raises(RateLimitError) as limited:
            await env.client.prompt(PRICE)
        assert (limited.value.limit, limited.value.used) == (1, 1)
        assert limited.value.reset_at is not None
        for key, error in (
            ("bk_off", "Agent API access not enabled"),
            ("bk_n", "subscription_required"),
        ):
            with pytest.raises(PermissionDeniedError) as denied:
                await env.async_client(api_key=key).prompt(PRICE)
            assert denied.value.error == error
        prompts = await journal(env, method="POST", path="/agent/prompt")
        # One accepted prompt, then each refusal once: a 4xx is never resent.
        assert [entry["status"] for entry in prompts] == [202, 429, 403, 403]
