"""The contract file model, its strict loader, and its deterministic writer.

A contract is one JSON file, ``contracts/<scenario>.json``, holding what one named scenario
of the reference client sent and received (``contracts/README.md`` describes every key).
The loader decodes it into frozen msgspec structs that **forbid unknown keys** at every
level, then checks what a schema cannot: exactly one matcher kind, pointers into existing
parts of an exchange, names bound before use, valid rules, offsets that never go back.

The writer is the only way a file is made: sorted keys, two-space indentation, a trailing
newline, so the same recording gives the same bytes.

Example::

    contract = load_contract(Path("contracts/completed.json"))
    contract.exchanges[0].request.path  # "/agent/prompt"
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import msgspec

from mockbankr.errors import ConfigError, ContractError
from mockbankr.rules import Rule, parse_rule

__all__ = [
    "Call",
    "ClientOptions",
    "Contract",
    "ContractError",
    "Credential",
    "End",
    "Exchange",
    "FORMAT_VERSION",
    "Flavour",
    "JsonType",
    "Matcher",
    "REQUEST_HEADERS",
    "RESPONSE_HEADERS",
    "RecordedRequest",
    "RecordedResponse",
    "dump_contract",
    "load_contract",
    "loads_contract",
    "parse_pointer",
    "parse_rules",
]

#: The version of the file format; bump it on any incompatible change.
FORMAT_VERSION = 1

#: Request headers a contract keeps (lower case); every other header is left out.
REQUEST_HEADERS = frozenset(
    {
        "content-type",
        "x-api-key",
        "x-partner-key",
        "x-payment",
        "wallet-address",
        "x-signature",
        "x-message",
    }
)
#: Response headers a contract keeps (lower case).
RESPONSE_HEADERS = frozenset({"content-type", "retry-after", "x-payment-response"})

Flavour = Literal["api-key", "x402"]
Actor = Literal["client", "other"]
JsonType = Literal["string", "integer", "number", "boolean", "null", "array", "object"]
#: Values derived from a secret: a file holds a placeholder, and each side supplies its own.
Credential = Literal["api_key", "bad_api_key", "wallet_address", "job_signature", "x402_payment"]

_MATCHER_KINDS = ("type", "regex", "same", "format", "credential")
_NAME = re.compile(r"[a-z][a-z0-9_]*")
_TEMPLATE_NAME = re.compile(r"\{([a-z][a-z0-9_]*)\}")


class _Strict(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    pass


class Matcher(_Strict, frozen=True, omit_defaults=True):
    """How to match one dynamic value: exactly one kind, and optionally ``bind``.

    * ``type``: a JSON type (``string``, ``integer``, ``number``, ``boolean``, ``null``,
      ``array``, ``object``);
    * ``regex``: a string the regex matches in full;
    * ``same``: equal to the value bound earlier under this name;
    * ``format``: a string equal to the template with ``{name}`` replaced by bound values;
    * ``credential``: derived from a secret; the file holds a placeholder.

    ``bind`` names the matched value, for a later ``same`` or ``format``.
    """

    type: JsonType | None = None
    regex: str | None = None
    same: str | None = None
    format: str | None = None
    credential: Credential | None = None
    bind: str | None = None

    @property
    def kind(self) -> str:
        return next(k for k in _MATCHER_KINDS if getattr(self, k) is not None)


class RecordedRequest(_Strict, frozen=True):
    """What the client sent. ``timeout`` is its own read timeout, in seconds."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    timeout: float


class RecordedResponse(_Strict, frozen=True):
    """What the server answered (``body`` is the decoded JSON)."""

    status: int
    headers: dict[str, str]
    body: Any


class Exchange(_Strict, frozen=True, omit_defaults=True, kw_only=True):
    """One request, sent ``at`` seconds after the scenario started, and its outcome:
    a ``response``, or ``timed_out_after`` seconds without one.

    ``matchers`` maps JSON pointers into this exchange (``/response/body/jobId``,
    ``/request/headers/x-api-key``, ``/request/path``) to :class:`Matcher`s; every other
    value must be equal.
    """

    actor: Actor = "client"
    at: float
    request: RecordedRequest
    response: RecordedResponse | None = None
    timed_out_after: float | None = None
    matchers: dict[str, Matcher] = {}


class Call(_Strict, frozen=True):
    """The client call the scenario makes (a name in ``mockbankr.contracts.scenarios.CALLS``)."""

    method: str
    args: dict[str, Any]


class ClientOptions(_Strict, frozen=True):
    """How the scenario's client was built, beyond its defaults.

    ``api_key`` picks the valid or the invalid key (api-key flavour); ``timeout`` is the
    per-request timeout (``None``: the client's default); ``max_payment_usdc`` the x402 cap
    (``None``: default); ``clock_skew`` shifts the wallet's unix clock (x402 validity window).
    """

    api_key: Literal["valid", "invalid"] = "valid"
    timeout: float | None = None
    max_payment_usdc: str | None = None
    clock_skew: float = 0.0


class End(_Strict, frozen=True, omit_defaults=True, kw_only=True):
    """How the scenario ended, ``at`` seconds after it started: a job ``status`` returned,
    or an ``error`` (the client's exception class name) raised."""

    at: float
    status: str | None = None
    error: str | None = None


class Contract(_Strict, frozen=True):
    """One recorded scenario (see the module docstring and ``contracts/README.md``)."""

    format: int
    scenario: str
    description: str
    flavour: Flavour
    seed: int
    rules: list[dict[str, Any]]
    client: ClientOptions
    call: Call
    exchanges: list[Exchange]
    end: End

    def parsed_rules(self) -> tuple[Rule, ...]:
        """The scenario's fault rules, validated."""
        return parse_rules(self.scenario, self.rules)


def parse_rules(scenario: str, rules: Sequence[Mapping[str, Any]]) -> tuple[Rule, ...]:
    """Validate a scenario's rules (the JSON of ``POST /__mock/rules``); ``ConfigError``."""
    return tuple(parse_rule(raw, where=f"{scenario}: rules[{i}]") for i, raw in enumerate(rules))


def parse_pointer(pointer: str) -> list[str]:
    """The tokens of an RFC 6901 JSON pointer (``"/a/b~1c"`` -> ``["a", "b/c"]``)."""
    if not pointer.startswith("/"):
        raise ContractError(f"matcher key {pointer!r} is not a JSON pointer (starts with '/')")
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/")]


def _exists(root: Any, tokens: list[str]) -> bool:
    node = root
    for token in tokens:
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            return False
    return True


def _check_matcher(where: str, matcher: Matcher, bound: set[str]) -> None:
    kinds = [k for k in _MATCHER_KINDS if getattr(matcher, k) is not None]
    if len(kinds) != 1:
        raise ContractError(
            f"{where}: a matcher needs exactly one of {', '.join(_MATCHER_KINDS)}"
            f" (got {', '.join(kinds) or 'none'})"
        )
    if matcher.regex is not None:
        try:
            re.compile(matcher.regex)
        except re.error as exc:
            raise ContractError(f"{where}: invalid regex ({exc})") from exc
    used = [matcher.same] if matcher.same is not None else []
    if matcher.format is not None:
        used = _TEMPLATE_NAME.findall(matcher.format)
    for name in used:
        if name not in bound:
            raise ContractError(f"{where}: {name!r} is used before any matcher binds it")
    if matcher.bind is not None:
        if not _NAME.fullmatch(matcher.bind):
            raise ContractError(f"{where}: bind name {matcher.bind!r} is not snake_case")
        if matcher.bind in bound:
            raise ContractError(f"{where}: {matcher.bind!r} is bound twice")
        bound.add(matcher.bind)


def _validate(contract: Contract, source: str) -> None:
    if contract.format != FORMAT_VERSION:
        raise ContractError(f"{source}: format {contract.format} (this mockbankr reads 1)")
    try:
        contract.parsed_rules()
    except ConfigError as exc:
        raise ContractError(f"{source}: {exc}") from exc
    end = contract.end
    if (end.status is None) == (end.error is None):
        raise ContractError(f"{source}: end needs exactly one of status, error")
    bound: set[str] = set()
    last = 0.0
    for i, exchange in enumerate(contract.exchanges):
        where = f"{source}: exchanges[{i}]"
        if (exchange.response is None) == (exchange.timed_out_after is None):
            raise ContractError(f"{where}: needs exactly one of response, timed_out_after")
        if exchange.at < last:
            raise ContractError(f"{where}: at {exchange.at} is before the previous exchange")
        last = exchange.at
        headers = [exchange.request.headers]
        if exchange.response is not None:
            headers.append(exchange.response.headers)
        for names in headers:
            for name in names:
                if name != name.lower():
                    raise ContractError(f"{where}: header {name!r} must be lower case")
        root = msgspec.to_builtins(exchange)
        # Request matchers before response matchers: that is the order values are seen in.
        for pointer in sorted(exchange.matchers, key=lambda p: not p.startswith("/request/")):
            tokens = parse_pointer(pointer)
            if tokens[0] not in ("request", "response") or not _exists(root, tokens):
                raise ContractError(f"{where}: matcher {pointer!r} points at nothing")
            _check_matcher(f"{where}: {pointer}", exchange.matchers[pointer], bound)
    if end.at < last:
        raise ContractError(f"{source}: end.at {end.at} is before the last exchange")


def loads_contract(data: bytes | str, *, source: str = "<contract>") -> Contract:
    """Decode and validate a contract; :class:`ContractError` names the source and the key."""
    try:
        contract = msgspec.json.decode(data, type=Contract)
    except msgspec.DecodeError as exc:
        raise ContractError(f"{source}: {exc}") from exc
    _validate(contract, source)
    return contract


def load_contract(path: Path) -> Contract:
    """Load ``path``; its name must be ``<scenario>.json``."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ContractError(f"{path}: cannot read ({exc.strerror})") from exc
    contract = loads_contract(data, source=str(path))
    if path.name != f"{contract.scenario}.json":
        raise ContractError(
            f"{path}: holds scenario {contract.scenario!r}, so must be named"
            f" {contract.scenario}.json"
        )
    return contract


def dump_contract(contract: Contract) -> bytes:
    """The file's bytes: sorted keys, two-space indent, trailing newline (deterministic)."""
    text = json.dumps(msgspec.to_builtins(contract), sort_keys=True, indent=2, ensure_ascii=False)
    return (text + "\n").encode("utf-8")
