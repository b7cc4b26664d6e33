"""Record: run a scenario's client code, capture every exchange, write the contract file.

:class:`CapturingTransport` wraps the client's transport and notes each request with its
simulated offset, and its response (or its timeout). :func:`record_scenario` runs a
scenario in-process, on a :class:`~mockbankr.testing.MockbankrEnv` with the scenario's
rules and seed; :func:`record_live` runs it against a URL instead. The capture then
becomes a :class:`~mockbankr.contracts.format.Contract`: only the relevant headers are
kept, dynamic values get matchers, and credentials are replaced by placeholders (a
written file is checked for every secret the run used).

Example::

    contract = asyncio.run(record_scenario(SCENARIOS["completed"], seed=1))
    write_contract(contract, Path("contracts"))
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from mockbankr.clock import RealClock
from mockbankr.contracts._match import pointer_to
from mockbankr.contracts._target import has_control_plane, install_rules
from mockbankr.contracts.format import (
    FORMAT_VERSION,
    REQUEST_HEADERS,
    RESPONSE_HEADERS,
    Contract,
    ContractError,
    Credential,
    End,
    Exchange,
    Matcher,
    RecordedRequest,
    RecordedResponse,
    dump_contract,
    loads_contract,
    parse_rules,
)
from mockbankr.contracts.scenarios import (
    TEST_CREDENTIALS,
    Actors,
    Credentials,
    Scenario,
    UnixClock,
    build_client,
    fixed_nonces,
    run_call,
)
from mockbankr.settings import Settings
from mockbankr.testing import MockbankrEnv

__all__ = [
    "Captured",
    "CapturingTransport",
    "DEFAULT_SEED",
    "build_contract",
    "record_live",
    "record_scenario",
    "write_contract",
]

#: The seed of the committed contracts.
DEFAULT_SEED = 1

_ID_REGEX = r"^[A-Za-z0-9_-]+$"
_TIMESTAMP_REGEX = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$"
_URL_REGEX = r"^https?://[^/\s]+/\S*$"
_BASE64_REGEX = r"^[A-Za-z0-9+/]+=*$"
_JSON_TYPE_REGEX = r"^application/json(;.*)?$"
#: A number in a text that reads as unix seconds (2001 or later): a time, not a constant.
_UNIX_TIME = re.compile(r"(?<![\d.])\d{10}(?:\.\d+)?(?![\d.])")
_ID_FIELDS = {"jobId": "job_id", "threadId": "thread_id"}
_TIMESTAMP_FIELDS = frozenset({"createdAt", "startedAt", "completedAt", "cancelledAt", "timestamp"})
_SECRET_HEADERS: dict[str, Credential] = {
    "x-payment": "x402_payment",
    "x-signature": "job_signature",
    "wallet-address": "wallet_address",
}


@dataclass(frozen=True)
class Captured:
    """One exchange as it happened (offsets in seconds since the scenario started)."""

    actor: str
    at: float
    request: httpx.Request
    content: bytes
    timeout: float
    response: httpx.Response | None = None
    body: bytes = b""
    timed_out_after: float | None = None


class CapturingTransport(httpx.AsyncBaseTransport):
    """Passes requests to ``inner`` and appends each exchange to ``log``.

    It does not own ``inner``: closing it leaves ``inner`` open.

    Example::

        log: list[Captured] = []
        transport = CapturingTransport(env.transport, clock=env.clock, start=env.clock.now(),
                                       actor="client", log=log)
    """

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        *,
        clock: UnixClock,
        start: float,
        actor: str,
        log: list[Captured],
    ) -> None:
        self._inner = inner
        self._clock = clock
        self._start = start
        self._actor = actor
        self._log = log

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        at = self._clock.now() - self._start
        timeout = (request.extensions.get("timeout") or {}).get("read")
        if not isinstance(timeout, int | float):
            raise ContractError(f"{request.method} {request.url.path} has no read timeout")
        content = await request.aread()
        try:
            response = await self._inner.handle_async_request(request)
        except httpx.TimeoutException:
            waited = self._clock.now() - self._start - at
            self._log.append(
                Captured(self._actor, at, request, content, timeout, timed_out_after=waited)
            )
            raise
        body = await response.aread()
        await response.aclose()
        self._log.append(Captured(self._actor, at, request, content, timeout, response, body))
        # The body is decoded already: drop the headers that describe the encoded one.
        headers = [
            (k, v)
            for k, v in response.headers.multi_items()
            if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")
        ]
        return httpx.Response(response.status_code, headers=headers, content=body)

    async def aclose(self) -> None:
        pass


def _seconds(value: float) -> float:
    return round(value, 6)


def _json(data: bytes, what: str) -> Any:
    if not data:
        return None
    try:
        return json.loads(data)
    except ValueError as exc:
        raise ContractError(f"{what} is not JSON ({exc}): {data[:80]!r}") from exc


@dataclass
class _Inference:
    """Turns captured exchanges into contract exchanges: matchers, bindings, placeholders."""

    credentials: Credentials
    bindings: dict[str, str] = field(default_factory=dict)
    secrets: list[str] = field(default_factory=list)

    def _credential(self, name: str, value: str) -> Credential | None:
        if name == "x-api-key":
            if value == self.credentials.api_key:
                return "api_key"
            if value == self.credentials.bad_api_key:
                return "bad_api_key"
            raise ContractError("an X-API-Key that is none of the run's credentials")
        return _SECRET_HEADERS.get(name)

    def _string(self, value: str, pointer: str, matchers: dict[str, Matcher]) -> None:
        """``same`` or ``format`` for a string holding earlier bound values; a ``regex``
        for an answer's text that embeds unix times (they differ on every server)."""
        for name, bound in self.bindings.items():
            if value == bound:
                matchers[pointer] = Matcher(same=name)
                return
        template = value
        for name, bound in self.bindings.items():
            template = template.replace(bound, "{" + name + "}")
        if template != value:
            matchers[pointer] = Matcher(format=template)
        elif pointer.startswith("/response/") and _UNIX_TIME.search(value):
            parts = _UNIX_TIME.split(value)
            # re.escape escapes spaces too (for verbose mode); plain regexes read better.
            escaped = (re.escape(part).replace("\\ ", " ") for part in parts)
            regex = r"\d+(?:\.\d+)?".join(escaped)
            matchers[pointer] = Matcher(regex=f"^{regex}$")

    def _bind(self, field_name: str, value: str) -> Matcher:
        base = _ID_FIELDS[field_name]
        for name, bound in self.bindings.items():
            if bound == value:
                return Matcher(same=name)
        name, n = base, 1
        while name in self.bindings:
            n += 1
            name = f"{base}_{n}"
        self.bindings[name] = value
        return Matcher(regex=_ID_REGEX, bind=name)

    def _walk(self, node: Any, pointer: str, matchers: dict[str, Matcher]) -> None:
        if isinstance(node, dict):
            for key in sorted(node):
                value, child = node[key], pointer_to(pointer, key)
                response = pointer.startswith("/response/")
                if response and key in _ID_FIELDS and isinstance(value, str):
                    matchers[child] = self._bind(key, value)
                elif response and key in _TIMESTAMP_FIELDS and isinstance(value, str):
                    matchers[child] = Matcher(regex=_TIMESTAMP_REGEX)
                elif response and key == "processingTime":
                    matchers[child] = Matcher(type="integer")
                elif response and key == "resource" and isinstance(value, str):
                    matchers[child] = Matcher(regex=_URL_REGEX)
                else:
                    self._walk(value, child, matchers)
        elif isinstance(node, list):
            for i, value in enumerate(node):
                self._walk(value, pointer_to(pointer, i), matchers)
        elif isinstance(node, str):
            self._string(node, pointer, matchers)

    def exchange(self, captured: Captured) -> Exchange:
        matchers: dict[str, Matcher] = {}
        request = captured.request
        headers: dict[str, str] = {}
        for name, value in sorted(request.headers.items()):
            name = name.lower()
            if name not in REQUEST_HEADERS:
                continue
            pointer = pointer_to("/request/headers", name)
            credential = self._credential(name, value)
            if credential is not None:
                matchers[pointer] = Matcher(credential=credential)
                headers[name] = f"<{credential}>"
                self.secrets.append(value)
            else:
                headers[name] = value
                self._string(value, pointer, matchers)
        self._string(request.url.path, "/request/path", matchers)
        body = _json(captured.content, f"the body of {request.method} {request.url.path}")
        self._walk(body, "/request/body", matchers)
        recorded_request = RecordedRequest(
            method=request.method,
            path=request.url.path,
            headers=headers,
            body=body,
            timeout=_seconds(captured.timeout),
        )
        if captured.response is None:
            assert captured.timed_out_after is not None
            return Exchange(
                actor="client" if captured.actor == "client" else "other",
                at=_seconds(captured.at),
                request=recorded_request,
                timed_out_after=_seconds(captured.timed_out_after),
                matchers=matchers,
            )
        return Exchange(
            actor="client" if captured.actor == "client" else "other",
            at=_seconds(captured.at),
            request=recorded_request,
            response=self._response(captured, captured.response, matchers),
            matchers=matchers,
        )

    def _response(
        self, captured: Captured, response: httpx.Response, matchers: dict[str, Matcher]
    ) -> RecordedResponse:
        headers: dict[str, str] = {}
        for name, value in sorted(response.headers.items()):
            name = name.lower()
            if name not in RESPONSE_HEADERS:
                continue
            headers[name] = value
            pointer = pointer_to("/response/headers", name)
            if name == "content-type":
                matchers[pointer] = Matcher(regex=_JSON_TYPE_REGEX)
            elif name == "x-payment-response":
                matchers[pointer] = Matcher(regex=_BASE64_REGEX)
            else:
                self._string(value, pointer, matchers)
        what = f"the answer to {captured.request.method} {captured.request.url.path}"
        body = _json(captured.body, what)
        self._walk(body, "/response/body", matchers)
        return RecordedResponse(status=response.status_code, headers=headers, body=body)


def build_contract(
    scenario: Scenario,
    *,
    seed: int,
    log: list[Captured],
    end: End,
    credentials: Credentials,
) -> Contract:
    """The contract of one run; refuses to build one that would leak a secret."""
    inference = _Inference(credentials)
    contract = Contract(
        format=FORMAT_VERSION,
        scenario=scenario.name,
        description=scenario.description,
        flavour=scenario.flavour,
        seed=seed,
        rules=[dict(rule) for rule in scenario.rules],
        client=scenario.client,
        call=scenario.call,
        exchanges=[inference.exchange(captured) for captured in log],
        end=end,
    )
    text = dump_contract(contract).decode("utf-8")
    for secret in (*credentials.secrets(), *inference.secrets):
        if secret and secret in text:
            raise ContractError(f"{scenario.name}: a secret would reach the contract file")
    loads_contract(text, source=f"{scenario.name} (as recorded)")
    return contract


def _actors(
    scenario: Scenario,
    credentials: Credentials,
    *,
    base_url: str,
    inner: httpx.AsyncBaseTransport,
    clock: UnixClock,
    start: float,
    log: list[Captured],
    seed: int,
    in_process: bool,
) -> Actors:
    def client(actor: str, rng_seed: int) -> Any:
        transport = CapturingTransport(inner, clock=clock, start=start, actor=actor, log=log)
        return build_client(
            scenario.flavour,
            scenario.client,
            credentials,
            base_url=base_url,
            transport=transport,
            clock=clock,
            unix_now=clock.now,
            rng=random.Random(rng_seed),
            nonce=fixed_nonces(seed) if in_process else None,
        )

    return Actors(client=client("client", seed), other=client("other", seed + 1), clock=clock)


async def _run(actors: Actors, scenario: Scenario, start: float) -> End:
    try:
        return await run_call(scenario.call, actors, start=start)
    finally:
        await actors.client.aclose()
        await actors.other.aclose()


def _settings(scenario: Scenario, seed: int, credentials: Credentials) -> Settings:
    keys = frozenset({credentials.api_key}) if credentials.api_key else frozenset()
    return Settings(seed=seed, api_keys=keys, rules=parse_rules(scenario.name, scenario.rules))


async def record_scenario(
    scenario: Scenario, *, seed: int = DEFAULT_SEED, credentials: Credentials = TEST_CREDENTIALS
) -> Contract:
    """Run ``scenario`` in-process on virtual time and return its contract.

    Raises :class:`ContractError` when the run does not end as the scenario was designed
    to (its rules or the simulator changed), rather than record a wrong contract.
    """
    env = MockbankrEnv(seed=seed, settings=_settings(scenario, seed, credentials))
    async with env:
        log: list[Captured] = []
        start = env.clock.now()
        actors = _actors(
            scenario,
            credentials,
            base_url=env.base_url,
            inner=env.transport,
            clock=env.clock,
            start=start,
            log=log,
            seed=seed,
            in_process=True,
        )
        end = await _run(actors, scenario, start)
    if (end.status or end.error) != scenario.expected:
        raise ContractError(
            f"{scenario.name}: ended with {end.status or end.error}, but the scenario is"
            f" designed to end with {scenario.expected}"
        )
    return build_contract(scenario, seed=seed, log=log, end=end, credentials=credentials)


async def record_live(
    scenario: Scenario, *, base_url: str, seed: int, credentials: Credentials
) -> Contract:
    """Run ``scenario`` against a server at ``base_url``, in real time.

    A server with a ``/__mock`` control plane is reset and given the scenario's rules; on
    one without (the real API) a scenario that needs rules raises :class:`ContractError`.
    Offsets are wall seconds, so such a file is not reproducible byte for byte.
    """
    async with httpx.AsyncClient(base_url=base_url) as http:
        if await has_control_plane(http):
            await install_rules(http, scenario.rules)
        elif scenario.rules:
            raise ContractError(f"{scenario.name} needs fault rules; {base_url} has no /__mock")
    clock = RealClock()
    log: list[Captured] = []
    inner = httpx.AsyncHTTPTransport()
    start = clock.now()
    try:
        actors = _actors(
            scenario,
            credentials,
            base_url=base_url,
            inner=inner,
            clock=clock,
            start=start,
            log=log,
            seed=seed,
            in_process=False,
        )
        end = await _run(actors, scenario, start)
    finally:
        await inner.aclose()
    return build_contract(scenario, seed=seed, log=log, end=end, credentials=credentials)


def write_contract(contract: Contract, directory: Path) -> Path:
    """Write ``<directory>/<scenario>.json`` (creating the folder); return its path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{contract.scenario}.json"
    path.write_bytes(dump_contract(contract))
    return path
