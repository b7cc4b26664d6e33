"""The reference client passes every check in every contract scenario that exercises it.

Each scenario of :data:`mockbankr.contracts.SCENARIOS` (both flavours) runs in-process as
recording runs it (same seed, rules, credentials and client construction), then the
journal is graded at the scenario's end. No check may fail, and the checks each scenario
exercises are pinned, so a grading that stopped looking would be caught too.
"""

from __future__ import annotations

import random

import bankr_client
import pytest

from mockbankr import Settings
from mockbankr.contracts import SCENARIOS, TEST_CREDENTIALS, Scenario
from mockbankr.contracts.format import parse_rules
from mockbankr.contracts.scenarios import Actors, build_client, fixed_nonces, run_call
from mockbankr.testing import MockbankrEnv
from mockbankr.verdicts import CHECKS, Report

pytestmark = pytest.mark.anyio

SEED = 1
_ALWAYS = {"deadline", "no-double-pay"}
_POLLED = _ALWAYS | {"poll-interval", "stop-at-terminal", "abandoned-job"}
#: The checks (beyond none) each scenario gives a chance to fail, per flavour-less name.
EXERCISED: dict[str, set[str]] = {
    "completed": _POLLED,
    "pay-and-wait": _POLLED,
    "failed": _POLLED,
    "cancel-pending": _ALWAYS | {"stop-at-terminal", "abandoned-job"},
    "cancel-processing": _POLLED,
    "cancelled-by-other": _POLLED,
    "poll-timeout": _ALWAYS | {"poll-interval"},
    "max-attempts": _ALWAYS | {"poll-interval"},
    "retry-503": _POLLED | {"backoff"},
    # The 429 answers the first poll; the next one, 7 s later, finds the job completed.
    "rate-limit-429": _POLLED - {"poll-interval"} | {"retry-after", "backoff"},
    "hung-request": {"deadline", "no-double-pay"},
    "unknown-job": {"deadline", "not-found-loop"},
    "bad-key": set(),
    "refused-payment": set(),
    "over-cap": set(),
}
#: In x402, the 503 of retry-503 lands on the unpaid first try, which names no payer.
X402_UNATTRIBUTED = {"x402-retry-503": {"backoff"}}


async def run(scenario: Scenario) -> Report:
    settings = Settings(
        seed=SEED,
        api_keys=frozenset({TEST_CREDENTIALS.api_key or ""}),
        rules=parse_rules(scenario.name, scenario.rules),
    )
    async with MockbankrEnv(seed=SEED, settings=settings) as env:

        def client(rng_seed: int) -> bankr_client.AsyncBankrClient:
            return build_client(
                scenario.flavour,
                scenario.client,
                TEST_CREDENTIALS,
                base_url=env.base_url,
                transport=env.transport,
                clock=env.clock,
                unix_now=env.clock.now,
                rng=random.Random(rng_seed),
                nonce=fixed_nonces(SEED),
            )

        actors = Actors(client=client(SEED), other=client(SEED + 1), clock=env.clock)
        try:
            end = await run_call(scenario.call, actors, start=env.clock.now())
        finally:
            await actors.client.aclose()
            await actors.other.aclose()
        assert (end.status or end.error) == scenario.expected
        return env.verdicts()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.parametrize("name", sorted(SCENARIOS))
async def test_the_reference_client_passes_every_check_a_scenario_exercises(name: str) -> None:
    scenario = SCENARIOS[name]

    report = await run(scenario)

    assert not report.failed, report.describe()
    exercised = {
        check
        for client in report.clients
        for check, verdict in client.verdicts.items()
        if verdict.outcome == "pass"
    }
    expected = expected_in(name)
    assert exercised == expected
    for client in report.clients:
        assert client.user_agents == (f"bankr-client-python/{bankr_client.__version__}",)


def expected_in(name: str) -> set[str]:
    return EXERCISED[name.removeprefix("x402-")] - X402_UNATTRIBUTED.get(name, set())


@pytest.mark.parametrize("flavour", ["api-key", "x402"])
def test_every_check_is_exercised_in_each_flavour(flavour: str) -> None:
    names = [name for name, scenario in SCENARIOS.items() if scenario.flavour == flavour]

    assert set().union(*map(expected_in, names)) == set(CHECKS)
