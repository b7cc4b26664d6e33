"""Verify (the provider side): send a contract's requests to a server, check its answers.

For each contract, in order, at each recorded offset: rebuild the request (ids bound from
the server's own earlier answers, credentials generated afresh: the key, signatures, a new
x402 payment for the server's own challenge), send it with the recorded read timeout, and
compare the answer with the file through its matchers: status, the headers that matter,
body fields and types. A recorded timeout expects no answer within that time.

Targets: the simulator in-process (a fresh :class:`~mockbankr.testing.MockbankrEnv` per
contract, with the contract's seed and rules, its virtual clock set to each offset), or a
URL. A URL with a ``/__mock`` control plane (``mockbankr serve``) is reset, given the rules,
and its clock is stopped and stepped to each offset (:class:`SteppedClock`), so a poll
recorded at the instant a job finishes lands on that instant, whatever ``--speed`` the
server runs at; a request recorded as unanswered must stay so for :data:`HANG_GRACE_S`
of real time before and after its clock reaches the client's deadline. One without (the
real Bankr API) runs only the contracts that need no rules, in real time, and only those
that spend money when ``allow_spend`` is set.

Example::

    results = asyncio.run(verify_all(load_contracts(Path("contracts"))))
    render_report(results, Console())
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx
from bankr_client import BankrError, X402Auth
from eth_account import Account
from eth_account.messages import encode_defunct
from rich.console import Console
from rich.table import Table
from rich.text import Text

from mockbankr.clock import RealClock
from mockbankr.contracts._match import Difference, compare, pointer_to, resolve
from mockbankr.contracts._target import (
    SteppedClock,
    has_control_plane,
    install_rules,
    step_clock,
)
from mockbankr.contracts.format import (
    RESPONSE_HEADERS,
    Contract,
    ContractError,
    Exchange,
    load_contract,
)
from mockbankr.contracts.scenarios import TEST_CREDENTIALS, Credentials, fixed_nonces
from mockbankr.settings import Settings
from mockbankr.store import JobStore
from mockbankr.testing import MockbankrEnv

__all__ = [
    "HANG_GRACE_S",
    "VerifyResult",
    "load_contracts",
    "render_report",
    "spends_money",
    "verify_all",
    "verify_in_process",
    "verify_live",
]

Outcome = Literal["pass", "fail", "skip"]

#: On a stepped server clock, the real seconds an unanswered request is watched for
#: (before and after the clock reaches the client's deadline).
HANG_GRACE_S = 0.5

#: On a stepped server clock, no simulated time passes while a request is in flight: the
#: read timeout only guards against a stuck machine.
_STEPPED_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class VerifyResult:
    """One contract's verdict; ``detail`` is the first difference (or why it was skipped).

    Example::

        VerifyResult("completed", "api-key", "fail", 3, 4,
                     "exchange 3 (...): /response/body/status: expected ...")
    """

    scenario: str
    flavour: str
    outcome: Outcome
    checked: int
    total: int
    detail: str | None = None


def load_contracts(directory: Path) -> list[Contract]:
    """Every ``*.json`` contract in ``directory``, by name; :class:`ContractError` if none."""
    paths = sorted(directory.glob("*.json"))
    if not paths:
        raise ContractError(f"no contract files (*.json) in {directory}")
    return [load_contract(path) for path in paths]


def spends_money(contract: Contract) -> bool:
    """Whether the contract gets a prompt accepted (a real server charges for that)."""
    return any(
        e.request.path.endswith("/prompt") and e.response is not None and e.response.status < 300
        for e in contract.exchanges
    )


@functools.lru_cache(maxsize=256)
def _sign(message: str, private_key: str) -> str:
    # Every poll of a job signs the same message, and the signature is deterministic.
    signed = Account.sign_message(encode_defunct(text=message), private_key=private_key)
    signature: str = signed.signature.to_0x_hex()
    return signature


@dataclass
class _Run:
    contract: Contract
    http: httpx.AsyncClient
    wait: Callable[[float], Awaitable[None]]
    unix_now: Callable[[], float]
    credentials: Credentials
    nonce: Callable[[], bytes] | None
    stepped: bool = False

    async def check(self) -> VerifyResult:
        bindings: dict[str, Any] = {}
        challenge: dict[str, Any] | None = None
        contract = self.contract
        for index, exchange in enumerate(contract.exchanges):
            request = exchange.request
            where = f"exchange {index} ({request.method} {request.path} @{exchange.at}s)"
            try:
                await self.wait(exchange.at)
                difference, body = await self._exchange(exchange, bindings, challenge)
            except (ContractError, BankrError, KeyError, ValueError) as exc:
                difference, body = Difference("/request", "a request to send", repr(exc)), None
            if difference is not None:
                return self._result("fail", index, str(difference.within(where)))
            if isinstance(body, dict) and body.get("x402Version") is not None:
                challenge = body
        return self._result("pass", len(contract.exchanges))

    def _result(self, outcome: Outcome, checked: int, detail: str | None = None) -> VerifyResult:
        contract = self.contract
        return VerifyResult(
            contract.scenario,
            contract.flavour,
            outcome,
            checked,
            len(contract.exchanges),
            detail,
        )

    def _credential(
        self, name: str, headers: dict[str, str], challenge: dict[str, Any] | None
    ) -> str:
        creds = self.credentials
        value: str | None
        if name == "api_key":
            value = creds.api_key
        elif name == "bad_api_key":
            value = creds.bad_api_key
        elif name == "wallet_address":
            value = creds.wallet_address
        elif name == "job_signature":
            if creds.private_key is None:
                raise ContractError("no wallet key to sign job requests")
            value = _sign(headers["x-message"], creds.private_key)
        else:
            value = self._payment(challenge)
        if value is None:
            raise ContractError(f"no credential {name!r} for this target")
        return value

    def _payment(self, challenge: dict[str, Any] | None) -> str:
        """A fresh X-PAYMENT for the server's own last challenge, signed like the client."""
        if challenge is None or self.credentials.private_key is None:
            raise ContractError("an X-PAYMENT needs an earlier 402 challenge and a wallet key")
        options = self.contract.client
        cap: dict[str, Any] = {}
        if options.max_payment_usdc is not None:
            cap["max_payment_usdc"] = options.max_payment_usdc
        auth = X402Auth(self.credentials.private_key, nonce=self.nonce, **cap)
        return auth.pay(challenge, now=self.unix_now() + options.clock_skew)

    def _request(
        self, exchange: Exchange, bindings: dict[str, Any], challenge: dict[str, Any] | None
    ) -> httpx.Request:
        recorded = exchange.request
        matchers = exchange.matchers

        def no_credential(name: str) -> Any:
            raise ContractError(f"a credential ({name}) where none is expected")

        def value(pointer: str, literal: Any) -> Any:
            return resolve(
                literal,
                pointer=pointer,
                matchers=matchers,
                bindings=bindings,
                credential=no_credential,
            )

        headers: dict[str, str] = {}
        secret: list[tuple[str, str]] = []
        for name, literal in recorded.headers.items():
            pointer = pointer_to("/request/headers", name)
            credential = matchers.get(pointer)
            if credential is not None and credential.credential is not None:
                secret.append((name, credential.credential))
            else:
                headers[name] = value(pointer, literal)
        for name, kind in secret:  # after x-message: a signature signs it
            headers[name] = self._credential(kind, headers, challenge)
        body = value("/request/body", recorded.body)
        return self.http.build_request(
            recorded.method,
            value("/request/path", recorded.path),
            headers=headers,
            content=None if body is None else json.dumps(body).encode(),
            timeout=max(recorded.timeout, _STEPPED_TIMEOUT_S) if self.stepped else recorded.timeout,
        )

    async def _exchange(
        self, exchange: Exchange, bindings: dict[str, Any], challenge: dict[str, Any] | None
    ) -> tuple[Difference | None, Any]:
        request = self._request(exchange, bindings, challenge)
        timeout = exchange.request.timeout
        recorded = exchange.response
        if recorded is None and self.stepped:
            return await self._unanswered(request, exchange), None
        try:
            response = await self.http.send(request)
        except httpx.TimeoutException:
            if recorded is None:
                return None, None
            return Difference(
                "/response", f"HTTP {recorded.status}", f"no answer in {timeout} s"
            ), None
        except httpx.HTTPError as exc:
            return Difference("/response", "an answer", f"{type(exc).__name__}: {exc}"), None
        if recorded is None:
            return (
                Difference(
                    "/response", f"no answer within {timeout} s", f"HTTP {response.status_code}"
                ),
                None,
            )
        try:
            body = response.json() if response.content else None
        except ValueError:
            body = response.text
        actual = {
            "status": response.status_code,
            "headers": {k: v for k, v in response.headers.items() if k in RESPONSE_HEADERS},
            "body": body,
        }
        expected = {"status": recorded.status, "headers": recorded.headers, "body": recorded.body}
        difference = compare(
            expected, actual, pointer="/response", matchers=exchange.matchers, bindings=bindings
        )
        return difference, body

    async def _unanswered(self, request: httpx.Request, exchange: Exchange) -> Difference | None:
        """On a stepped clock: no answer before, nor once, the clock reaches the deadline."""
        timeout = exchange.request.timeout
        sending = asyncio.ensure_future(self.http.send(request))
        try:
            for when in (exchange.at, exchange.at + timeout):
                await self.wait(when)  # the client gives up when the clock reaches at + timeout
                done, _ = await asyncio.wait({sending}, timeout=HANG_GRACE_S)
                if done:
                    break
            else:
                return None  # unanswered, as recorded
        finally:
            if not sending.done():
                sending.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sending
        error = sending.exception()
        if isinstance(error, httpx.TimeoutException):
            return None
        if error is not None:
            return Difference("/response", "no answer", f"{type(error).__name__}: {error}")
        return Difference(
            "/response", f"no answer within {timeout} s", f"HTTP {sending.result().status_code}"
        )


async def verify_in_process(
    contract: Contract,
    *,
    credentials: Credentials = TEST_CREDENTIALS,
    store: JobStore | None = None,
) -> VerifyResult:
    """Verify ``contract`` against a fresh in-process simulator (its seed, its rules), on
    ``store`` (default: a new memory store; an empty shared one gives the same result)."""
    keys = frozenset({credentials.api_key}) if credentials.api_key else frozenset()
    settings = Settings(seed=contract.seed, api_keys=keys, rules=contract.parsed_rules())
    async with MockbankrEnv(seed=contract.seed, settings=settings, store=store) as env:
        start = env.clock.now()

        async def wait(at: float) -> None:
            if start + at > env.clock.now():
                env.clock.set(start + at)

        run = _Run(
            contract, env.http, wait, env.clock.now, credentials, fixed_nonces(contract.seed)
        )
        return await run.check()


async def verify_live(
    contract: Contract,
    *,
    base_url: str,
    credentials: Credentials,
    allow_spend: bool = False,
    transport: httpx.AsyncBaseTransport | None = None,
) -> VerifyResult:
    """Verify ``contract`` against the server at ``base_url``, in real time (see module).

    ``transport`` replaces the network (tests).
    """

    def skip(reason: str) -> VerifyResult:
        total = len(contract.exchanges)
        return VerifyResult(contract.scenario, contract.flavour, "skip", 0, total, reason)

    if contract.flavour == "api-key" and credentials.api_key is None:
        return skip("needs an API key: set BANKR_API_KEY")
    if contract.flavour == "x402" and credentials.private_key is None:
        return skip("needs a wallet key: set BANKR_PRIVATE_KEY")
    async with httpx.AsyncClient(base_url=base_url, transport=transport) as http:
        control = await has_control_plane(http)
        stepped: SteppedClock | None = None
        if control:
            await install_rules(http, contract.rules)
            stepped = await step_clock(http)
        elif contract.rules:
            return skip("steered by fault rules; this server has no /__mock control plane")
        elif spends_money(contract) and not allow_spend:
            return skip("a prompt the server accepts costs real money: pass --allow-spend")
        clock = RealClock()  # payments are signed with the wall clock, as clients do
        if stepped is None:
            start = clock.now()

            async def wait(at: float) -> None:
                await clock.sleep(start + at - clock.now())

            return await _Run(contract, http, wait, clock.now, credentials, None).check()
        held = stepped

        async def step(at: float) -> None:
            await held.advance_to(held.start + at)

        try:
            return await _Run(contract, http, step, clock.now, credentials, None, True).check()
        finally:
            await held.restore()


async def verify_all(
    contracts: Sequence[Contract],
    *,
    base_url: str | None = None,
    credentials: Credentials = TEST_CREDENTIALS,
    allow_spend: bool = False,
    transport: httpx.AsyncBaseTransport | None = None,
) -> list[VerifyResult]:
    """Verify each contract in turn, in-process or against ``base_url`` (see
    :func:`verify_live` for ``transport``)."""
    results = []
    for contract in contracts:
        if base_url is None:
            results.append(await verify_in_process(contract, credentials=credentials))
        else:
            results.append(
                await verify_live(
                    contract,
                    base_url=base_url,
                    credentials=credentials,
                    allow_spend=allow_spend,
                    transport=transport,
                )
            )
    return results


_STYLES = {"pass": "bold green", "fail": "bold red", "skip": "yellow"}


def render_report(results: Sequence[VerifyResult], console: Console, *, title: str = "") -> None:
    """A table: scenario, flavour, result, exchanges checked, first difference."""
    table = Table(title=title or None, show_lines=False, expand=False)
    table.add_column("Scenario", no_wrap=True)
    table.add_column("Flavour", no_wrap=True)
    table.add_column("Result", no_wrap=True)
    table.add_column("Exchanges", justify="right", no_wrap=True)
    table.add_column("First difference", overflow="fold")
    for result in results:
        table.add_row(
            result.scenario,
            result.flavour,
            Text(
                result.outcome.upper() if result.outcome == "fail" else result.outcome,
                style=_STYLES[result.outcome],
            ),
            f"{result.checked}/{result.total}",
            result.detail or "",
        )
    console.print(table)
    counts = {o: sum(r.outcome == o for r in results) for o in ("pass", "fail", "skip")}
    console.print(f"{counts['pass']} passed, {counts['fail']} failed, {counts['skip']} skipped")
