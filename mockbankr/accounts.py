"""Accounts and API keys as Bankr documents them: who a key is and what it may do.

Plain data and plain checks, no HTTP (the API-key flavour maps the outcomes to
the documented wire errors; see ``docs/wire.md`` sections 1.7 and 1.8):

* an **account** has a plan: ``club`` (1,000 prompts a day), ``max-mode`` (100)
  or ``none`` (prompts refused with ``403 subscription_required``);
* a **key** belongs to one account and carries Bankr's flags: ``agentApiEnabled``
  (new keys: on), ``readOnly`` (off), a custom ``dailyLimit`` that replaces the
  account's, ``revoked``, and an ``allowedIps`` allowlist;
* a rotated key keeps its account, name, flags and limit under a new value;
  the old value, like a revoked one, answers ``401 Invalid API key``.

A keys file (``mockbankr serve --keys FILE``, or ``PUT /__mock/keys`` with the
same keys as JSON)::

    [accounts.acme]
    plan = "club"

    [[keys]]
    key = "bk_agent"
    account = "acme"
    readOnly = true

Without one, every non-empty key is accepted (or only the ``--api-key`` list),
each as an account of its own with no subscription check: today's default.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import ipaddress
import random
import re
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any

import msgspec

from mockbankr.errors import AccessDenied, ConfigError, FixtureError

__all__ = [
    "Account",
    "AccountEntry",
    "ApiKey",
    "Caller",
    "Denial",
    "KeyBook",
    "KeyConfig",
    "KeyEntry",
    "KeysDocument",
    "MAX_KEY_LENGTH",
    "Plan",
    "load_keys_file",
    "parse_keys",
]

#: The longest API key accepted anywhere (Bankr's are ``bk_`` plus 32 characters).
MAX_KEY_LENGTH = 256
#: What a declared key may contain: printable ASCII without spaces (it travels in a header).
KEY_PATTERN = r"^[!-~]{1,256}$"
_KEY = re.compile(KEY_PATTERN)
_ACCOUNT_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
_ACCOUNT = re.compile(_ACCOUNT_PATTERN)
#: The most accounts, and keys, one configuration may declare.
MAX_ACCOUNTS = 1_000
MAX_KEYS = 10_000
MAX_DAILY_LIMIT = 10_000_000
MAX_ALLOWED_IPS = 64
#: The largest keys file read (bytes).
MAX_FILE_BYTES = 1 << 20
#: Bankr refuses allowlist ranges broader than these prefixes (docs/wire.md 1.8, safety.md).
_MIN_PREFIX = {4: 8, 6: 16}

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class Plan(enum.StrEnum):
    """An account's subscription, which sets its daily prompt quota (docs/wire.md 1.8)."""

    #: Bankr Club: 1,000 prompts per rolling 24 hours.
    CLUB = "club"
    #: No Club, Max Mode with LLM credit: 100 prompts per rolling 24 hours.
    MAX_MODE = "max-mode"
    #: Neither: ``/agent/prompt`` answers ``403 subscription_required``.
    NONE = "none"

    @property
    def daily_limit(self) -> int | None:
        return _PLAN_LIMITS[self]


_PLAN_LIMITS = {Plan.CLUB: 1_000, Plan.MAX_MODE: 100, Plan.NONE: None}


class Denial(enum.StrEnum):
    """Why a key check refused a request; the flavour picks the wire error."""

    #: No key in ``X-API-Key`` nor ``Authorization: Bearer``.
    KEY_REQUIRED = "key-required"
    #: A wrong, revoked or rotated key (or one too long to be a key).
    INVALID_KEY = "invalid-key"
    #: The caller's address is outside the key's ``allowedIps``.
    IP_NOT_ALLOWED = "ip-not-allowed"
    #: The key has ``agentApiEnabled`` off and asked for ``/agent/*``.
    AGENT_API_DISABLED = "agent-api-disabled"
    #: The account has neither Bankr Club nor Max Mode, and prompted.
    SUBSCRIPTION_REQUIRED = "subscription-required"


@dataclasses.dataclass(frozen=True, slots=True)
class Account:
    """One Bankr account: its plan and wallet. ``plan`` is ``None`` for the accounts of
    the default (no keys file) mode, whose limit is ``--daily-limit`` or none.

    Example::

        Account("acme", Plan.CLUB, daily_limit=1000, owner="account:acme")
    """

    id: str
    plan: Plan | None
    daily_limit: int | None
    #: Who owns the account's jobs, as the core knows it.
    owner: str
    #: The account's wallet address; ``None``: derived from the id (see :func:`wallet_of`).
    wallet: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class ApiKey:
    """One API key and its flags (Bankr's names in the keys file)."""

    key: str
    account: str
    name: str = ""
    agent_api_enabled: bool = True
    read_only: bool = False
    #: Prompts per rolling 24 h for this key, replacing the account's limit.
    daily_limit: int | None = None
    revoked: bool = False
    allowed_ips: tuple[IpNetwork, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "account": self.account,
            "name": self.name,
            "agentApiEnabled": self.agent_api_enabled,
            "readOnly": self.read_only,
            "dailyLimit": self.daily_limit,
            "revoked": self.revoked,
            "allowedIps": [str(net) for net in self.allowed_ips],
        }


@dataclasses.dataclass(frozen=True, slots=True)
class Caller:
    """What a successful key check established: the key and its account."""

    key: ApiKey
    account: Account

    @property
    def owner(self) -> str:
        """The owner of the jobs this caller creates and may read: its account."""
        return self.account.owner

    @property
    def daily_limit(self) -> int | None:
        """The key's custom limit if it has one, else the account's (docs/wire.md 1.8)."""
        custom = self.key.daily_limit
        return custom if custom is not None else self.account.daily_limit


def wallet_of(account: Account) -> str:
    """The account's wallet: the declared one, or a made-up address stable per account."""
    if account.wallet is not None:
        return account.wallet
    from eth_utils.address import to_checksum_address  # only /wallet/me needs it

    return str(to_checksum_address("0x" + hashlib.sha256(account.id.encode()).hexdigest()[:40]))


# -- the configuration ---------------------------------------------------------------------


class _Strict(msgspec.Struct, forbid_unknown_fields=True, frozen=True, rename="camel"):
    pass


_KeyText = Annotated[str, msgspec.Meta(pattern=KEY_PATTERN)]
_AccountId = Annotated[str, msgspec.Meta(pattern=_ACCOUNT_PATTERN)]
_Limit = Annotated[int, msgspec.Meta(ge=1, le=MAX_DAILY_LIMIT)]


class AccountEntry(_Strict, frozen=True):
    """An account of a keys document: its plan, and optionally its wallet."""

    plan: Plan
    wallet: Annotated[str, msgspec.Meta(pattern=r"^0x[0-9a-fA-F]{40}$")] | None = None


class KeyEntry(_Strict, frozen=True):
    """A key of a keys document, with Bankr's flag names (docs/wire.md 1.8 defaults)."""

    key: _KeyText
    account: _AccountId
    name: Annotated[str, msgspec.Meta(max_length=100)] = ""
    agent_api_enabled: bool = True
    read_only: bool = False
    daily_limit: _Limit | None = None
    revoked: bool = False
    allowed_ips: Annotated[
        list[Annotated[str, msgspec.Meta(max_length=64)]],
        msgspec.Meta(max_length=MAX_ALLOWED_IPS),
    ] = []


class KeysDocument(_Strict, frozen=True):
    """A keys file, or the body of ``PUT /__mock/keys``: accounts by id, then keys."""

    accounts: Annotated[dict[_AccountId, AccountEntry], msgspec.Meta(max_length=MAX_ACCOUNTS)]
    keys: Annotated[list[KeyEntry], msgspec.Meta(max_length=MAX_KEYS)] = []


@dataclasses.dataclass(frozen=True)
class KeyConfig:
    """Which keys a server accepts, frozen and validated.

    ``open``: any non-empty key not declared is accepted as an account of its own
    (the default without a keys file). ``default_limit``: the daily limit of those
    accounts (``--daily-limit``).

    Example::

        KeyConfig.default(api_keys=frozenset({"bk_1"}), daily_limit=None)
    """

    accounts: tuple[Account, ...] = ()
    keys: tuple[ApiKey, ...] = ()
    open: bool = True
    default_limit: int | None = None

    @classmethod
    def default(cls, *, api_keys: Iterable[str] = (), daily_limit: int | None = None) -> KeyConfig:
        """Today's behaviour: any key, or only ``api_keys``; each key its own account."""
        keys = tuple(ApiKey(key, account=key) for key in sorted(api_keys))
        for key in keys:
            if not _KEY.fullmatch(key.key):
                raise ConfigError(
                    f"API keys must be 1..{MAX_KEY_LENGTH} printable characters without"
                    f" spaces, got {key.key[:40]!r}"
                )
        return cls(keys=keys, open=not keys, default_limit=daily_limit)

    def to_json(self) -> dict[str, Any]:
        return {
            "open": self.open,
            "accounts": {
                a.id: {"plan": a.plan.value if a.plan else None, "dailyLimit": a.daily_limit}
                | ({"wallet": a.wallet} if a.wallet else {})
                for a in self.accounts
            },
            "keys": [k.to_json() for k in self.keys],
        }


def _error_location(exc: msgspec.ValidationError) -> tuple[str, str | None]:
    """``(message, key path)`` from msgspec's ``... - at `$.keys[0]``` text."""
    text = str(exc)
    message, _, at = text.partition(" - at `$")
    where = at.rstrip("`").lstrip(".") or None
    unknown = re.fullmatch(r"Object contains unknown field `(.+)`", message)
    if unknown:
        field = unknown.group(1)
        return "unknown key", f"{where}.{field}" if where else field
    missing = re.fullmatch(r"Object missing required field `(.+)`", message)
    if missing:
        field = missing.group(1)
        return "missing required key", f"{where}.{field}" if where else field
    return message, where


def _network(text: str) -> IpNetwork:
    net = ipaddress.ip_network(text.strip(), strict=False)
    if net.prefixlen < _MIN_PREFIX[net.version]:
        raise ValueError(
            f"IPv{net.version} ranges must be /{_MIN_PREFIX[net.version]} or narrower, got {text}"
        )
    return net


def parse_keys(raw: Any) -> KeyConfig:
    """Validate a keys document (the TOML file's content, or the control plane's JSON).

    Raises :class:`~mockbankr.errors.FixtureError` with ``path=""``; its ``key`` names
    the offending key, e.g. ``keys[1].readonly`` for an unknown one.
    """
    accounts = raw.get("accounts") if isinstance(raw, dict) else None
    if isinstance(accounts, dict) and len(accounts) <= MAX_ACCOUNTS:
        # Checked one by one first, so that an error names the account (msgspec says "[...]").
        for name, entry in accounts.items():
            if not isinstance(name, str) or not _ACCOUNT.fullmatch(name):
                raise FixtureError(
                    "an account id is 1..64 of A-Z a-z 0-9 _ . -",
                    path="",
                    key=f"accounts.{str(name)[:64]!r}",
                )
            try:
                msgspec.convert(entry, AccountEntry)
            except msgspec.ValidationError as exc:
                message, key = _error_location(exc)
                where = f"accounts.{name}" + (f".{key}" if key else "")
                raise FixtureError(message, path="", key=where) from exc
    try:
        doc = msgspec.convert(raw, KeysDocument)
    except msgspec.ValidationError as exc:
        message, key = _error_location(exc)
        raise FixtureError(message, path="", key=key) from exc
    accounts = tuple(
        Account(
            name,
            entry.plan,
            daily_limit=entry.plan.daily_limit,
            owner="account:" + name,
            wallet=entry.wallet,
        )
        for name, entry in sorted(doc.accounts.items())
    )
    seen: set[str] = set()
    keys = []
    for i, entry in enumerate(doc.keys):
        if entry.key in seen:
            raise FixtureError("the same key is declared twice", path="", key=f"keys[{i}].key")
        seen.add(entry.key)
        if entry.account not in doc.accounts:
            raise FixtureError(
                f"no account {entry.account!r} under [accounts]", path="", key=f"keys[{i}].account"
            )
        nets = []
        for j, text in enumerate(entry.allowed_ips):
            try:
                nets.append(_network(text))
            except ValueError as exc:
                raise FixtureError(str(exc), path="", key=f"keys[{i}].allowedIps[{j}]") from exc
        keys.append(
            ApiKey(
                entry.key,
                account=entry.account,
                name=entry.name,
                agent_api_enabled=entry.agent_api_enabled,
                read_only=entry.read_only,
                daily_limit=entry.daily_limit,
                revoked=entry.revoked,
                allowed_ips=tuple(nets),
            )
        )
    return KeyConfig(accounts=accounts, keys=tuple(keys), open=False)


def load_keys_file(path: Path) -> KeyConfig:
    """A keys file (TOML); errors name the file and the key.

    Example::

        load_keys_file(Path("keys.toml")).accounts[0].plan is Plan.CLUB
    """
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise FixtureError(f"cannot read the keys file ({exc.strerror})", path=str(path)) from exc
    if len(data) > MAX_FILE_BYTES:
        raise FixtureError(f"larger than {MAX_FILE_BYTES} bytes", path=str(path))
    try:
        raw = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise FixtureError(f"invalid TOML ({exc})", path=str(path)) from exc
    try:
        return parse_keys(raw)
    except FixtureError as exc:
        message = str(exc).removeprefix(f": {exc.key}: " if exc.key else ": ")
        raise FixtureError(message, path=str(path), key=exc.key) from exc


# -- the live book -----------------------------------------------------------------------


#: How many accepted keys :class:`KeyBook` keeps resolved.
_CALLER_CACHE = 4096
_NEW_KEY_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZabcdefghjkmnpqrstvwxyz"


_ExportedBook = tuple[
    bool,
    int | None,
    list[tuple[str, str | None, int | None, str, str | None]],
    list[tuple[str, str, str, bool, bool, int | None, bool, list[str]]],
]


class KeyBook:
    """The keys a running server accepts: look a key up, revoke it, rotate it.

    Starts from a :class:`KeyConfig`; :meth:`reset` returns to it, :meth:`replace`
    swaps in another. ``rng`` draws the values of rotated keys.

    Example::

        book = KeyBook(KeyConfig.default(), rng=random.Random(1))
        caller = book.identify("bk_1", client_ip="127.0.0.1")
        book.revoke("bk_1")
        book.identify("bk_1", client_ip=None)   # raises AccessDenied(INVALID_KEY)
    """

    def __init__(self, config: KeyConfig, *, rng: random.Random) -> None:
        self.initial = config
        self._rng = rng
        #: Counts the changes made here (replace, reset, revoke, rotate), not :meth:`load`.
        self.revision = 0
        self._install(config)

    def export(self) -> bytes:
        """The accounts and keys known now, for :meth:`load` in another server."""
        c = self.config
        accounts = [
            (a.id, a.plan.value if a.plan else None, a.daily_limit, a.owner, a.wallet)
            for a in c.accounts
        ]
        keys = [
            (
                k.key,
                k.account,
                k.name,
                k.agent_api_enabled,
                k.read_only,
                k.daily_limit,
                k.revoked,
                [str(net) for net in k.allowed_ips],
            )
            for k in c.keys
        ]
        return msgspec.msgpack.encode((c.open, c.default_limit, accounts, keys))

    def load(self, data: bytes) -> None:
        """Take the accounts and keys of an :meth:`export`."""
        open_, default_limit, accounts, keys = msgspec.msgpack.decode(data, type=_ExportedBook)
        config = KeyConfig(
            accounts=tuple(
                Account(i, Plan(plan) if plan else None, limit, owner, wallet)
                for i, plan, limit, owner, wallet in accounts
            ),
            keys=tuple(
                ApiKey(
                    k[0],
                    k[1],
                    k[2],
                    k[3],
                    k[4],
                    k[5],
                    k[6],
                    tuple(ipaddress.ip_network(net) for net in k[7]),
                )
                for k in keys
            ),
            open=open_,
            default_limit=default_limit,
        )
        revision = self.revision
        self._install(config)
        self.revision = revision  # loaded, not changed here

    def _install(self, config: KeyConfig) -> None:
        self.revision += 1
        self.config = config
        self._accounts = {account.id: account for account in config.accounts}
        self._keys = {key.key: key for key in config.keys}
        # Accepted keys, resolved once: every status poll checks its key. Any change of
        # the book empties it.
        self._callers: dict[str, Caller] = {}
        # (key, client address) -> whether the key's allowedIps let the address in.
        self._addresses: dict[tuple[str, str | None], bool] = {}

    def replace(self, config: KeyConfig) -> None:
        """Accept ``config``'s keys from now on (the jobs and quotas stay)."""
        self._install(config)

    def reset(self) -> None:
        """Back to the configuration the server started with."""
        self._install(self.initial)

    def _account(self, account_id: str) -> Account:
        found = self._accounts.get(account_id)
        if found is not None:
            return found
        # An account of the default mode: one per key (kept by its rotated successors).
        return Account(
            account_id, None, daily_limit=self.config.default_limit, owner="key:" + account_id
        )

    def lookup(self, key: str) -> ApiKey | None:
        """The key's record, whether revoked or not; ``None`` if it was never accepted."""
        found = self._keys.get(key)
        if found is None and self.config.open and _KEY.fullmatch(key):
            return ApiKey(key, account=key)
        return found

    def identify(self, key: str | None, *, client_ip: str | None) -> Caller:
        """The caller behind ``key``, or :class:`AccessDenied` (missing, invalid, wrong IP).

        Only the key itself is checked here; :meth:`check_agent` and
        :meth:`check_prompt` add what ``/agent/*`` and prompts need.
        """
        if not key:
            raise AccessDenied(Denial.KEY_REQUIRED, "no API key was sent")
        caller = self._callers.get(key)
        if caller is None:
            if len(key) > MAX_KEY_LENGTH:
                raise AccessDenied(Denial.INVALID_KEY, f"longer than {MAX_KEY_LENGTH} characters")
            found = self.lookup(key)
            if found is None or found.revoked:
                raise AccessDenied(Denial.INVALID_KEY, "unknown, revoked or rotated key")
            caller = Caller(found, self._account(found.account))
            if len(self._callers) >= _CALLER_CACHE:
                self._callers.clear()
            self._callers[key] = caller
        allowed = caller.key.allowed_ips
        if allowed:
            seen = (key, client_ip)
            ok = self._addresses.get(seen)
            if ok is None:
                ok = _ip_allowed(client_ip, allowed)
                if len(self._addresses) >= _CALLER_CACHE:
                    self._addresses.clear()
                self._addresses[seen] = ok
            if not ok:
                raise AccessDenied(Denial.IP_NOT_ALLOWED, f"{client_ip} is not in allowedIps")
        return caller

    @staticmethod
    def check_agent(caller: Caller) -> None:
        """``/agent/*`` needs ``agentApiEnabled``."""
        if not caller.key.agent_api_enabled:
            raise AccessDenied(Denial.AGENT_API_DISABLED, "agentApiEnabled is off")

    @staticmethod
    def check_prompt(caller: Caller) -> None:
        """A prompt needs an account with Bankr Club or Max Mode."""
        if caller.account.plan is Plan.NONE:
            raise AccessDenied(Denial.SUBSCRIPTION_REQUIRED, "the account's plan is none")

    def _active(self, key: str) -> ApiKey | None:
        found = self.lookup(key)
        return None if found is None or found.revoked else found

    def _store(self, key: ApiKey) -> None:
        if key.key not in self._keys and len(self._keys) >= MAX_KEYS:
            raise ConfigError(f"at most {MAX_KEYS} keys can be known; reset or load fewer")
        self._keys[key.key] = key
        self.revision += 1
        self._callers.clear()
        self._addresses.clear()
        self.config = dataclasses.replace(self.config, keys=tuple(self._keys.values()))

    def revoke(self, key: str) -> ApiKey | None:
        """Revoke ``key`` (again is fine); ``None`` if it was never accepted."""
        found = self.lookup(key)
        if found is None:
            return None
        revoked = dataclasses.replace(found, revoked=True)
        self._store(revoked)
        return revoked

    def rotate(self, key: str, new_key: str | None = None) -> ApiKey | None:
        """Replace ``key`` by ``new_key`` (drawn if ``None``) with the same account, name,
        flags and limit; the old value is revoked. ``None`` if ``key`` is not active.

        Raises :class:`ConfigError` for a ``new_key`` that is malformed or taken.
        """
        found = self._active(key)
        if found is None:
            return None
        if new_key is None:
            new_key = self._draw_key()
        elif not _KEY.fullmatch(new_key):
            raise ConfigError(
                f"newKey must be 1..{MAX_KEY_LENGTH} printable characters without spaces"
            )
        if new_key in self._keys or new_key == key:
            raise ConfigError(f"newKey {new_key!r} is already a key")
        successor = dataclasses.replace(found, key=new_key, revoked=False)
        self._store(successor)
        self._store(dataclasses.replace(found, revoked=True))
        return successor

    def _draw_key(self) -> str:
        while True:
            drawn = "bk_" + "".join(self._rng.choice(_NEW_KEY_ALPHABET) for _ in range(32))
            if drawn not in self._keys:
                return drawn

    def to_json(self) -> dict[str, Any]:
        """The accounts and keys known now, for the control plane."""
        return self.config.to_json()


def _ip_allowed(client_ip: str | None, allowed: tuple[IpNetwork, ...]) -> bool:
    if not client_ip:
        return False
    try:
        address = ipaddress.ip_address(client_ip)
    except ValueError:
        return False
    return any(address in net for net in allowed)
