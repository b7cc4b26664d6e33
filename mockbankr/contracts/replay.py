"""Replay (the consumer side): the reference client against a contract's recorded answers.

A ``respx.Router`` (``assert_all_called``, ``assert_all_mocked``) gets one route per recorded
exchange, and serves it only in its turn. The client runs the contract's call on a
:class:`~mockbankr.clock.VirtualClock`; the side effects never move the clock, except for
a recorded timeout, which advances it by the request's own timeout before raising
``httpx.ReadTimeout``. So the offsets the client sends at come from its own sleeps: its
poll interval, its backoff, its deadline.

Each request must match its exchange: actor, offset, method, path, relevant headers
(credentials are checked against the replay's own: the key, the wallet, signatures that
recover to it), body and read timeout. Then the call must end as recorded, at the recorded
offset, having used every exchange.

Example::

    difference = asyncio.run(replay(load_contract(Path("contracts/completed.json"))))
    assert difference is None, difference
"""

from __future__ import annotations

import base64
import functools
import json
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import respx
from bankr_client import RetryPolicy
from eth_account import Account
from eth_account.messages import encode_defunct

from mockbankr.clock import DEFAULT_EPOCH, VirtualClock
from mockbankr.contracts._match import Difference, bind_from, compare, shown
from mockbankr.contracts.format import REQUEST_HEADERS, Call, Contract, ContractError, Exchange
from mockbankr.contracts.scenarios import (
    TEST_CREDENTIALS,
    Actors,
    CallCode,
    Credentials,
    build_client,
    run_call,
)

__all__ = ["OFFSET_TOLERANCE", "REPLAY_URL", "ReplayMismatch", "replay"]

#: Where the replayed client sends its requests (never resolved: respx answers).
REPLAY_URL = "http://contract.replay"
#: How far (seconds) an offset may be from the recorded one (files keep 6 decimals).
OFFSET_TOLERANCE = 2e-6


class ReplayMismatch(ContractError):
    """Raised inside a side effect: the client's request differs from the contract."""

    def __init__(self, difference: Difference) -> None:
        super().__init__(str(difference))
        self.difference = difference


def _describe(index: int, exchange: Exchange) -> str:
    request = exchange.request
    return f"exchange {index} ({exchange.actor} {request.method} {request.path} @{exchange.at}s)"


@dataclass
class _Replay:
    contract: Contract
    clock: VirtualClock
    credentials: Credentials
    start: float
    cursor: int = 0
    last_request: httpx.Request | None = None
    bindings: dict[str, Any] = field(default_factory=dict)

    def credential(self, headers: Mapping[str, str]) -> Any:
        wallet = self.credentials.wallet_address

        def check(name: str, actual: Any) -> str | None:
            expected: str | None
            if name == "api_key":
                expected = self.credentials.api_key
            elif name == "bad_api_key":
                expected = self.credentials.bad_api_key
            elif name == "wallet_address":
                expected = wallet
            elif name == "job_signature":
                return _signature_problem(headers.get("x-message", ""), actual, wallet)
            else:
                return _payment_problem(actual, wallet)
            return None if actual == expected else f"the replay's {name}"

        return check

    def effect(self, method: str, path: str) -> Any:
        """The side effect of the route for ``method path``: it answers only when the next
        exchange is one of its own (respx merges routes with equal patterns into one)."""

        def side_effect(request: httpx.Request) -> httpx.Response | None:
            index = self.cursor
            exchanges = self.contract.exchanges
            if index >= len(exchanges):
                return None
            exchange = exchanges[index]
            if (exchange.request.method, exchange.request.path) != (method, path):
                return None  # not this route's turn: no route matches, respx raises
            difference = self._check(exchange, request)
            if difference is not None:
                raise ReplayMismatch(difference.within(_describe(index, exchange)))
            self.cursor += 1
            if exchange.response is None:
                timeout = request.extensions["timeout"]["read"]
                self.clock.advance(timeout)
                raise httpx.ReadTimeout(f"no answer within {timeout} s (recorded)", request=request)
            response = exchange.response
            bind_from(
                {"status": response.status, "headers": response.headers, "body": response.body},
                pointer="/response",
                matchers=exchange.matchers,
                bindings=self.bindings,
            )
            return httpx.Response(
                response.status,
                headers=response.headers,
                content=b"" if response.body is None else json.dumps(response.body).encode(),
            )

        return side_effect

    def _check(self, exchange: Exchange, request: httpx.Request) -> Difference | None:
        actor = request.extensions.get("contract_actor", "client")
        if actor != exchange.actor:
            return Difference("/actor", repr(exchange.actor), repr(actor))
        at = self.clock.now() - self.start
        if abs(at - exchange.at) > OFFSET_TOLERANCE:
            return Difference("/at", f"{exchange.at} s", f"{round(at, 6)} s")
        timeout = request.extensions.get("timeout", {}).get("read")
        if timeout is None or abs(timeout - exchange.request.timeout) > OFFSET_TOLERANCE:
            return Difference("/request/timeout", f"{exchange.request.timeout} s", f"{timeout} s")
        headers = {k.lower(): v for k, v in request.headers.items() if k.lower() in REQUEST_HEADERS}
        content = request.read()
        try:
            body = json.loads(content) if content else None
        except ValueError:
            return Difference("/request/body", "JSON", shown(content))
        actual = {
            "method": request.method,
            "path": request.url.path,
            "headers": headers,
            "body": body,
        }
        recorded = exchange.request
        expected = {
            "method": recorded.method,
            "path": recorded.path,
            "headers": recorded.headers,
            "body": recorded.body,
        }
        return compare(
            expected,
            actual,
            pointer="/request",
            matchers=exchange.matchers,
            bindings=self.bindings,
            credential=self.credential(headers),
        )


@functools.lru_cache(maxsize=256)
def _signer(message: str, signature: str) -> str | None:
    # Every poll of a job signs the same message (deterministically): recover it once.
    try:
        signer: str = Account.recover_message(encode_defunct(text=message), signature=signature)
    except Exception:  # eth-account raises several types for a malformed signature
        return None
    return signer


def _signature_problem(message: str, signature: Any, wallet: str | None) -> str | None:
    signer = _signer(message, signature) if isinstance(signature, str) else None
    return None if signer == wallet else f"an EIP-191 signature of {message!r} by {wallet}"


def _payment_problem(header: Any, wallet: str | None) -> str | None:
    try:
        payment = json.loads(base64.b64decode(header, validate=True))
        payer = payment["payload"]["authorization"]["from"]
    except (ValueError, TypeError, KeyError):
        payer = None
    return None if payer == wallet else f"an x402 v1 payment from {wallet}"


class _ActorTransport(httpx.AsyncBaseTransport):
    """Tags each request with its actor, then hands it to the router."""

    def __init__(self, actor: str, inner: httpx.AsyncBaseTransport, state: _Replay) -> None:
        self._actor = actor
        self._inner = inner
        self._state = state

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        request.extensions = {**request.extensions, "contract_actor": self._actor}
        self._state.last_request = request
        return await self._inner.handle_async_request(request)


def _next_expected(contract: Contract, cursor: int) -> str:
    if cursor >= len(contract.exchanges):
        return "no further request"
    return _describe(cursor, contract.exchanges[cursor])


async def replay(
    contract: Contract,
    *,
    retry: RetryPolicy | None = None,
    code: CallCode | None = None,
    args: Mapping[str, Any] | None = None,
    credentials: Credentials = TEST_CREDENTIALS,
) -> Difference | None:
    """Replay ``contract`` against the reference client; the first difference, or ``None``.

    ``retry``, ``code`` and ``args`` replace the client's retry policy, the call's code and
    the call's arguments: tests break the client on purpose with them, to prove a replay
    can fail.
    """
    clock = VirtualClock(DEFAULT_EPOCH)
    state = _Replay(contract, clock, credentials, start=clock.now())
    router = respx.Router(assert_all_called=True, assert_all_mocked=True, base_url=REPLAY_URL)
    for method, path in dict.fromkeys(
        (e.request.method, e.request.path) for e in contract.exchanges
    ):
        router.route(method=method, path=path).side_effect = state.effect(method, path)
    inner = httpx.MockTransport(router.async_handler)

    def client(actor: str, seed: int) -> Any:
        return build_client(
            contract.flavour,
            contract.client,
            credentials,
            base_url=REPLAY_URL,
            transport=_ActorTransport(actor, inner, state),
            clock=clock,
            unix_now=clock.now,
            rng=random.Random(seed),
            retry=retry,
        )

    actors = Actors(client("client", contract.seed), client("other", contract.seed + 1), clock)
    call = contract.call if args is None else Call(method=contract.call.method, args=dict(args))
    try:
        end = await run_call(call, actors, code=code, start=state.start)
    except ReplayMismatch as exc:
        return exc.difference
    except respx.models.AllMockedAssertionError:
        request = state.last_request
        assert request is not None
        got = f"{request.method} {request.url.path} @{round(clock.now() - state.start, 6)}s"
        return Difference("/request", _next_expected(contract, state.cursor), got, "replay")
    finally:
        await actors.client.aclose()
        await actors.other.aclose()
    if state.cursor < len(contract.exchanges):
        return Difference(
            "/exchanges",
            _next_expected(contract, state.cursor),
            f"the call ended ({end.status or end.error} @{end.at}s) without sending it",
            "replay",
        )
    try:
        router.assert_all_called()
    except AssertionError as exc:  # pragma: no cover - the cursor check comes first
        return Difference("/exchanges", "every route called", str(exc), "replay")
    recorded = contract.end
    if (end.status, end.error) != (recorded.status, recorded.error):
        return Difference(
            "/end", recorded.status or str(recorded.error), end.status or str(end.error), "replay"
        )
    if abs(end.at - recorded.at) > OFFSET_TOLERANCE:
        return Difference("/end/at", f"{recorded.at} s", f"{end.at} s", "replay")
    return None
