"""The named scenarios: client code, the rules that steer the simulator, the expected end.

A scenario is data plus one of the :data:`CALLS` (short async functions that use only the
reference client's public API). Recording runs it against the simulator; replay runs the
same call, named in the contract file, against the recorded responses. Both build their
clients with :func:`build_client`, so the only thing that differs is the transport.

Every scenario runs with a fixed seed; rules make the rare outcomes (a failure, a stuck job,
a 503, a 429, a hang) happen on purpose. Scenarios without rules can also be verified
against a server that has no ``/__mock`` control plane, such as the real Bankr API.

Example::

    scenario = SCENARIOS["completed"]
    scenario.call.method, scenario.expected  # ("prompt_and_wait", End(at=0.0, status=...))
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
from bankr_client import (
    ApiKeyAuth,
    AsyncBankrClient,
    Auth,
    BankrError,
    JobStatus,
    RetryPolicy,
    X402Auth,
)
from eth_account import Account
from eth_utils.crypto import keccak

from mockbankr.contracts.format import Call, ClientOptions, ContractError, End, Flavour

__all__ = [
    "Actors",
    "CALLS",
    "Credentials",
    "SCENARIOS",
    "Scenario",
    "TEST_CREDENTIALS",
    "UnixClock",
    "build_client",
    "fixed_nonces",
    "run_call",
]

#: A job id no server has: what the 404 scenarios poll.
UNKNOWN_JOB = "job_0000DOESNOTEXIST"
PRICE = "What is the price of ETH?"
SWAP = "Swap 10 USDC for ETH"
ANALYSIS = "Analyze the ETH market"


class UnixClock(Protocol):
    """The clock a scenario runs on (any ``mockbankr`` or ``bankr_client`` clock)."""

    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...

    def sleep_sync(self, seconds: float) -> None: ...


@dataclass(frozen=True)
class Credentials:
    """The secrets a scenario's clients use; they never reach a contract file.

    ``private_key`` pays x402 challenges and signs job requests (``None``: x402 scenarios
    cannot run). ``bad_api_key`` is a key the server must refuse.

    Example::

        Credentials(api_key=os.environ["BANKR_API_KEY"], bad_api_key="bk_invalid",
                    private_key=None)
    """

    api_key: str | None
    bad_api_key: str
    private_key: str | None

    @property
    def wallet_address(self) -> str | None:
        if self.private_key is None:
            return None
        address: str = Account.from_key(self.private_key).address
        return address

    def secrets(self) -> tuple[str, ...]:
        """Every string that must never appear in a contract file."""
        found = [self.api_key, self.bad_api_key]
        if self.private_key is not None:
            raw = self.private_key.removeprefix("0x").lower()
            found += [raw, raw.upper()]
        return tuple(s for s in found if s)


def _test_private_key() -> str:
    # A key derived from a constant phrase: the same in every run, never funded anywhere.
    return "0x" + keccak(text="mockbankr contract harness: a test key, never fund it").hex()


#: The credentials of in-process recording, replay and verification.
TEST_CREDENTIALS = Credentials(
    api_key="bk_contracts_test_key",
    bad_api_key="bk_contracts_revoked_key",
    private_key=_test_private_key(),
)


def fixed_nonces(seed: int) -> Callable[[], bytes]:
    """Deterministic x402 nonces (in-process only: a real server must never see a repeat)."""
    counter = iter(range(1 << 62))
    return lambda: keccak(text=f"mockbankr contracts nonce {seed} {next(counter)}")


def build_client(
    flavour: Flavour,
    options: ClientOptions,
    credentials: Credentials,
    *,
    base_url: str,
    transport: httpx.AsyncBaseTransport | None,
    clock: UnixClock,
    unix_now: Callable[[], float],
    rng: random.Random,
    nonce: Callable[[], bytes] | None = None,
    retry: RetryPolicy | None = None,
) -> AsyncBankrClient:
    """A reference client for one actor of a scenario.

    ``unix_now`` is the wallet's clock for x402 validity windows (``clock_skew`` is added);
    ``retry`` replaces the client's default policy (tests break it on purpose).
    """
    auth: Auth
    if flavour == "api-key":
        key = credentials.api_key if options.api_key == "valid" else credentials.bad_api_key
        if key is None:
            raise ContractError("this scenario needs an API key (set BANKR_API_KEY)")
        auth = ApiKeyAuth(key)
    else:
        if credentials.private_key is None:
            raise ContractError("this scenario needs a wallet key (set BANKR_PRIVATE_KEY)")
        skew = options.clock_skew
        x402: dict[str, Any] = {"now": lambda: unix_now() + skew, "nonce": nonce}
        if options.max_payment_usdc is not None:
            x402["max_payment_usdc"] = options.max_payment_usdc
        auth = X402Auth(credentials.private_key, **x402)
    extra: dict[str, Any] = {}
    if options.timeout is not None:
        extra["timeout"] = options.timeout
    if retry is not None:
        extra["retry"] = retry
    return AsyncBankrClient(base_url, auth=auth, transport=transport, clock=clock, rng=rng, **extra)


@dataclass(frozen=True)
class Actors:
    """What a call's code gets: the scenario's ``client``, ``other`` (another party with the
    same credentials, e.g. a second process) and the shared ``clock``."""

    client: AsyncBankrClient
    other: AsyncBankrClient
    clock: UnixClock


CallCode = Callable[[Actors, Mapping[str, Any]], Awaitable[JobStatus]]


async def _prompt_and_wait(actors: Actors, args: Mapping[str, Any]) -> JobStatus:
    return await actors.client.prompt_and_wait(**args)


async def _poll_job(actors: Actors, args: Mapping[str, Any]) -> JobStatus:
    return await actors.client.poll_job(**args)


async def _cancel_while_pending(actors: Actors, args: Mapping[str, Any]) -> JobStatus:
    """Prompt, see it pending, cancel it, then poll: the poll must end at ``cancelled``."""
    client = actors.client
    job_id = (await client.prompt(args["prompt"])).job_id
    await client.get_job_status(job_id)
    await client.cancel_job(job_id)
    return await client.poll_job(job_id)


async def _cancel_while_processing(actors: Actors, args: Mapping[str, Any]) -> JobStatus:
    """Prompt, read the status every ``interval`` until processing, cancel, then poll."""
    client = actors.client
    job_id = (await client.prompt(args["prompt"])).job_id
    while (await client.get_job_status(job_id)).status != "processing":
        await actors.clock.sleep(args["interval"])
    await client.cancel_job(job_id)
    return await client.poll_job(job_id)


async def _cancelled_by_other(actors: Actors, args: Mapping[str, Any]) -> JobStatus:
    """Prompt and poll; ``cancel_after`` seconds in, another party cancels the job."""
    job_id = (await actors.client.prompt(args["prompt"])).job_id

    async def other_party() -> None:
        await actors.clock.sleep(args["cancel_after"])
        await actors.other.cancel_job(job_id)

    other = asyncio.ensure_future(other_party())
    try:
        return await actors.client.poll_job(job_id)
    finally:
        await other


#: The client code of every scenario, by the name a contract's ``call.method`` gives.
CALLS: Mapping[str, CallCode] = {
    "cancel_while_pending": _cancel_while_pending,
    "cancel_while_processing": _cancel_while_processing,
    "cancelled_by_other": _cancelled_by_other,
    "poll_job": _poll_job,
    "prompt_and_wait": _prompt_and_wait,
}


async def run_call(
    call: Call, actors: Actors, *, code: CallCode | None = None, start: float
) -> End:
    """Run a call to its end: the status it returned, or the client error it raised."""
    run = code if code is not None else CALLS.get(call.method)
    if run is None:
        raise ContractError(f"unknown call {call.method!r} (known: {', '.join(CALLS)})")
    try:
        status = await run(actors, call.args)
    except BankrError as exc:
        return End(at=round(actors.clock.now() - start, 6), error=type(exc).__name__)
    return End(at=round(actors.clock.now() - start, 6), status=status.status.value)


@dataclass(frozen=True)
class Scenario:
    """A named scenario: its flavour, call, rules, client options and the end it must reach
    (``expected`` is a status or an error class name)."""

    name: str
    flavour: Flavour
    description: str
    call: Call
    expected: str
    rules: tuple[dict[str, Any], ...] = ()
    client: ClientOptions = field(default_factory=ClientOptions)


def _job(prompt: str, **shape: Any) -> dict[str, Any]:
    return {"match": {"prompt": prompt}, "action": {"job": shape}}


def _respond(
    method: str, path: str, status: int, body: dict[str, str], headers: dict[str, str]
) -> dict[str, Any]:
    return {
        "match": {"method": method, "path": path},
        "action": {"respond": {"status": status, "body": body, "headers": headers}},
        "times": 1,
    }


def _both(
    name: str,
    description: str,
    call: Call,
    expected: str,
    rules: Callable[[str], tuple[dict[str, Any], ...]] = lambda prefix: (),
    *,
    x402_name: str | None = None,
) -> list[Scenario]:
    """The scenario in both flavours: ``name`` (API key) and ``x402-name``."""
    return [
        Scenario(name, "api-key", description, call, expected, rules("/agent")),
        Scenario(
            x402_name or f"x402-{name}",
            "x402",
            description + " (x402: paid, signed job requests)",
            call,
            expected,
            rules("/v2"),
        ),
    ]


_UNAVAILABLE = {"error": "Service unavailable", "message": "Try again shortly"}
_RATE_LIMITED = {"error": "Rate limit exceeded", "message": "Retry after 7 seconds"}


def _scenarios() -> list[Scenario]:
    wait = "prompt_and_wait"
    found = [
        *_both(
            "completed",
            "Prompt, poll every 2 s until completed",
            Call(method=wait, args={"prompt": PRICE}),
            "completed",
            x402_name="x402-pay-and-wait",
        ),
        *_both(
            "failed",
            "A swap the agent fails after 6 s: polling ends at failed, returned not raised",
            Call(method=wait, args={"prompt": SWAP}),
            "failed",
            lambda _: (_job("Swap", outcome="failed", error="Insufficient balance", latency=6),),
        ),
        *_both(
            "cancel-pending",
            "The client cancels its job while pending; the poll after it ends at once",
            Call(method="cancel_while_pending", args={"prompt": ANALYSIS}),
            "cancelled",
        ),
        *_both(
            "cancel-processing",
            "The client waits for processing, cancels, and the poll ends at cancelled",
            Call(method="cancel_while_processing", args={"prompt": ANALYSIS, "interval": 2.0}),
            "cancelled",
        ),
        *_both(
            "cancelled-by-other",
            "Another party cancels the job 5 s in; the poll ends at the next status",
            Call(method="cancelled_by_other", args={"prompt": ANALYSIS, "cancel_after": 5.0}),
            "cancelled",
        ),
        *_both(
            "poll-timeout",
            "A job stuck in processing: the 20 s deadline ends polling, exactly at 20 s",
            Call(method=wait, args={"prompt": "stuck price", "timeout": 20.0}),
            "PollTimeoutError",
            lambda _: (_job("stuck", outcome="stuck"),),
        ),
        *_both(
            "max-attempts",
            "A job stuck in processing: polling stops after max_attempts=5 status requests",
            Call(method=wait, args={"prompt": "stuck price", "max_attempts": 5}),
            "PollAttemptsExceededError",
            lambda _: (_job("stuck", outcome="stuck"),),
        ),
        *_both(
            "retry-503",
            "The prompt gets a 503 (provably not accepted): resent after a jittered backoff",
            Call(method=wait, args={"prompt": PRICE}),
            "completed",
            lambda p: (_respond("POST", f"{p}/prompt", 503, _UNAVAILABLE, {}),),
        ),
        *_both(
            "rate-limit-429",
            "The first poll gets 429 with Retry-After: 7; the next poll comes 7 s later",
            Call(method=wait, args={"prompt": PRICE}),
            "completed",
            lambda p: (_respond("GET", f"{p}/job/*", 429, _RATE_LIMITED, {"Retry-After": "7"}),),
        ),
        *_both(
            "hung-request",
            "The first poll never gets an answer: its timeout is capped by the 12 s deadline",
            Call(method=wait, args={"prompt": PRICE, "timeout": 12.0}),
            "PollTimeoutError",
            lambda p: (
                {
                    "match": {"method": "GET", "path": f"{p}/job/*"},
                    "action": {"hang": {}},
                    "times": 1,
                },
            ),
        ),
        *_both(
            "unknown-job",
            "Polling a job id the server never issued: 404 at once, no retry",
            Call(method="poll_job", args={"job_id": UNKNOWN_JOB}),
            "NotFoundError",
        ),
        Scenario(
            "bad-key",
            "api-key",
            "A revoked API key: 401 on the prompt, no retry",
            Call(method=wait, args={"prompt": PRICE}),
            "AuthenticationError",
            client=ClientOptions(api_key="invalid"),
        ),
        Scenario(
            "x402-refused-payment",
            "x402",
            "A wallet whose clock is an hour slow signs an expired authorization: refused",
            Call(method=wait, args={"prompt": PRICE}),
            "PaymentRequiredError",
            client=ClientOptions(clock_skew=-3600.0),
        ),
        Scenario(
            "x402-over-cap",
            "x402",
            "The price (0.10 USDC) is above the client's 0.05 USDC cap: it refuses to pay",
            Call(method=wait, args={"prompt": PRICE}),
            "PaymentRequiredError",
            client=ClientOptions(max_payment_usdc="0.05"),
        ),
    ]
    return sorted(found, key=lambda s: s.name)


#: Every named scenario, by name.
SCENARIOS: Mapping[str, Scenario] = {s.name: s for s in _scenarios()}
