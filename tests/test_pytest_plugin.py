"""A user's own suite gets the plugin's fixtures without any configuration."""

from __future__ import annotations

import pytest

USER_SUITE = """
import anyio
import httpx
import pytest

@pytest.fixture
def anyio_backend():
    return "asyncio"

@pytest.mark.anyio
async def test_in_process(bankr_client, mockbankr_env):
    t0 = mockbankr_env.clock.now()
    job = await bankr_client.prompt_and_wait("What is the price of ETH?", timeout=300)
    assert job.status in ("completed", "failed")
    assert 2 <= mockbankr_env.clock.now() - t0 <= 7

def test_live(mockbankr_server):
    response = httpx.post(mockbankr_server.base_url + "/agent/prompt",
                          json={"prompt": "hi"}, headers={"X-API-Key": "bk_user"})
    assert response.status_code == 202

def test_fails_on_purpose(bankr_client):
    assert bankr_client is None
"""


def test_users_suite_gets_the_fixtures(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=USER_SUITE)
    result = pytester.runpytest("-p", "anyio", "-W", "ignore::DeprecationWarning")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*test_fails_on_purpose*"])
