"""Verdicts: what grading a client's behaviour over time answers, and what it allows.

:class:`Thresholds` are what each check allows (the documented client defaults unless
set); a :class:`Report` holds, per client (an owner: an API key or a wallet), one
:class:`Verdict` per check in :data:`CHECKS`: ``pass``, ``fail`` or ``not-exercised``
(the run never gave the check a chance to fail). A failure carries its count, the
journal entries that show it (:class:`Incident`) and, where money is involved, the USDC
it wasted. The checks themselves are in :mod:`mockbankr.grading`.

Example::

    report = grade(journal.entries(), Thresholds(interval=1.0))  # mockbankr.grading.grade
    print(report.describe() or "every client behaved")
"""

from __future__ import annotations

import dataclasses
import datetime
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Final, Literal

from mockbankr.clock import MAX_TIME, iso
from mockbankr.errors import ConfigError
from mockbankr.journal import Entry, key_fingerprint, owner_matches
from mockbankr.money import atomic_to_usdc, usdc_to_atomic
from mockbankr.validate import Bound, parse_float, parse_int

__all__ = [
    "CHECKS",
    "ClientVerdicts",
    "Incident",
    "MAX_INCIDENTS",
    "MAX_PRICE_ATOMIC",
    "Report",
    "THRESHOLD_BOUNDS",
    "THRESHOLD_NAMES",
    "Thresholds",
    "Verdict",
    "Window",
    "is_owner",
    "owner_label",
    "parse_since",
    "server_thresholds",
]

#: The checks, in the order reports list them.
CHECKS: Final = (
    "poll-interval",
    "stop-at-terminal",
    "deadline",
    "retry-after",
    "backoff",
    "no-double-pay",
    "abandoned-job",
    "not-found-loop",
)

#: At most this many incidents are kept per failed check (``count`` has them all).
MAX_INCIDENTS = 10

Outcome = Literal["pass", "fail", "not-exercised"]

_NUMBER = re.compile(r"[0-9]{1,12}(?:\.[0-9]{1,6})?")


def owner_label(owner: str) -> str:
    """How a report shows an owner: a wallet address as it is, an API key as a fingerprint.

    Example::

        owner_label("bk_live_secret")  # key_fingerprint("bk_live_secret"): 'bk_…' + 12 hex
    """
    if owner.startswith("0x") or "…" in owner:  # a wallet, or already a fingerprint
        return owner
    return key_fingerprint(owner)


def is_owner(owner: str, wanted: str) -> bool:
    """Whether ``wanted`` names ``owner`` (as journaled): that owner, its label, or the
    whole API key whose fingerprint it is.

    Example::

        is_owner(key_fingerprint("bk_1"), "bk_1")  # True
    """
    return owner_matches(owner, wanted) or wanted == owner_label(owner)


def parse_since(text: str) -> float:
    """A ``since`` value: simulated unix seconds, or an ISO-8601 time (UTC unless it says).

    Example::

        parse_since("2025-01-15T10:30:00Z") == parse_since("1736937000")  # True
    """
    if len(text) > 40:
        raise ConfigError(f"since must be unix seconds or an ISO-8601 time, got {text[:40]!r}…")
    if _NUMBER.fullmatch(text):
        value = float(text)
    else:
        try:
            when = datetime.datetime.fromisoformat(text)
        except ValueError:
            raise ConfigError(
                f"since must be unix seconds or an ISO-8601 time, got {text!r}"
            ) from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=datetime.UTC)
        value = when.timestamp()
    # Before the epoch is "everything", past the last timestamp "nothing": not an error.
    return min(max(value, 0.0), MAX_TIME)


def server_thresholds(price_atomic: int) -> Thresholds:
    """The default thresholds of a server whose jobs cost ``price_atomic`` (USDC units).

    Example::

        server_thresholds(settings.payment.price_atomic).price_usdc  # '0.1'
    """
    return Thresholds(price_usdc=atomic_to_usdc(min(price_atomic, MAX_PRICE_ATOMIC)))


# -- thresholds ---------------------------------------------------------------------


@dataclass(frozen=True)
class Thresholds:
    """What each check allows; the defaults are the documented client defaults.

    ``interval`` (2 s), ``max_attempts`` (150) and ``timeout`` (300 s) are the official
    SDK's polling defaults; ``max_retries`` (3) and ``backoff_base`` (1 s, doubling) the
    seed's retry pattern; ``duplicate_window`` (60 s) the ledger's; ``price_usdc``
    ($0.10) what a job costs. ``tolerance`` (seconds) absorbs timer granularity on
    every time comparison; ``jitter`` is the fraction of a backoff delay that jitter may
    take off (0.5 allows "equal jitter", ``[cap/2, cap]``). Nonsense raises
    :class:`~mockbankr.errors.ConfigError` naming the field.

    Example::

        Thresholds(interval=1.0, timeout=60.0)
        Thresholds.from_params({"max_retries": "5"})
    """

    interval: float = 2.0
    tolerance: float = 0.1
    timeout: float = 300.0
    max_attempts: int = 150
    max_retries: int = 3
    backoff_base: float = 1.0
    backoff_max: float = 30.0
    jitter: float = 0.5
    duplicate_window: float = 60.0
    price_usdc: str = "0.10"
    price_atomic: int = field(init=False, repr=False, compare=False, default=0)

    def __post_init__(self) -> None:
        for name, (low, high, integral) in THRESHOLD_BOUNDS.items():
            value = getattr(self, name)
            if isinstance(value, str):  # text comes in through from_params only
                raise ConfigError(f"{name} must be a number, got {value!r}")
            parse = parse_int if integral else parse_float
            object.__setattr__(self, name, parse(value, name, Bound(low, high)))
        if self.backoff_max < self.backoff_base:
            raise ConfigError(
                f"backoff_max ({self.backoff_max:g}) must be >= backoff_base"
                f" ({self.backoff_base:g})"
            )
        object.__setattr__(self, "price_atomic", _price_atomic(self.price_usdc))

    @classmethod
    def from_params(cls, params: Mapping[str, str], base: Thresholds | None = None) -> Thresholds:
        """Thresholds from text values (query parameters, CLI options) over ``base``.

        Numbers are decimals (ASCII digits, an optional fraction and exponent, as the
        document's ``number`` parameters are sent); an unknown name or a bad value raises
        :class:`ConfigError` naming it (both checked by :mod:`mockbankr.validate`).
        """
        base = base or cls()
        changes: dict[str, Any] = {}
        for name, text in params.items():
            if name not in THRESHOLD_NAMES:
                raise ConfigError(f"unknown threshold {name!r}; use {', '.join(THRESHOLD_NAMES)}")
            if name == "price_usdc":
                changes[name] = text
                continue
            low, high, integral = THRESHOLD_BOUNDS[name]
            parse = parse_int if integral else parse_float
            changes[name] = parse(text, name, Bound(low, high), exponent=True)
        values = {f.name: getattr(base, f.name) for f in fields(cls) if f.init}
        return cls(**{**values, **changes})

    def to_json(self) -> dict[str, Any]:
        out = {name: getattr(self, name) for name in THRESHOLD_NAMES}
        out["price_usdc"] = atomic_to_usdc(self.price_atomic)
        return out


#: Each numeric threshold's bounds (inclusive) and whether it is an integer.
THRESHOLD_BOUNDS: Final[dict[str, tuple[float, float, bool]]] = {
    "interval": (0.0, 86_400.0, False),
    "tolerance": (0.0, 3_600.0, False),
    "timeout": (0.001, 10_000_000.0, False),
    "max_attempts": (1, 10_000_000, True),
    "max_retries": (0, 1_000_000, True),
    "backoff_base": (0.0, 86_400.0, False),
    "backoff_max": (0.0, 86_400.0, False),
    "jitter": (0.0, 1.0, False),
    "duplicate_window": (0.0, 10_000_000.0, False),
}

#: The highest price a job may be given (a million USDC).
MAX_PRICE_ATOMIC: Final = 10**12

#: The names a query or a call may set.
THRESHOLD_NAMES: Final = (*THRESHOLD_BOUNDS, "price_usdc")


def _price_atomic(text: object) -> int:
    if not isinstance(text, str) or not _NUMBER.fullmatch(text):
        raise ConfigError(f"price_usdc must be a plain decimal USDC amount, got {text!r}")
    atomic = usdc_to_atomic(text)
    if atomic > MAX_PRICE_ATOMIC:
        raise ConfigError(f"price_usdc must be at most {atomic_to_usdc(MAX_PRICE_ATOMIC)}")
    return atomic


# -- results ------------------------------------------------------------------------


def _evidence(entry: Entry) -> dict[str, Any]:
    found: dict[str, Any] = {
        "seq": entry.seq,
        "simTime": iso(entry.sim_time),
        "method": entry.method,
        "path": entry.path,
        "status": entry.status,
    }
    if entry.job_status is not None:
        found["jobStatus"] = entry.job_status
    return found


@dataclass(frozen=True)
class Incident:
    """One occurrence of a failure: what happened, and the journal entries that show it."""

    message: str
    entries: tuple[Entry, ...]

    def to_json(self) -> dict[str, Any]:
        return {"message": self.message, "entries": [_evidence(e) for e in self.entries]}


@dataclass(frozen=True)
class Verdict:
    """One check's verdict for one client.

    ``count`` is the number of offending requests (abandoned jobs for
    ``abandoned-job``); ``incidents`` the first :data:`MAX_INCIDENTS` of them;
    ``wasted_atomic`` the USDC (atomic units) they cost, ``None`` for checks about
    requests rather than jobs.
    """

    check: str
    outcome: Outcome
    count: int = 0
    incidents: tuple[Incident, ...] = ()
    wasted_atomic: int | None = None

    @property
    def failed(self) -> bool:
        return self.outcome == "fail"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"verdict": self.outcome}
        if self.failed:
            out["count"] = self.count
            out["evidence"] = [incident.to_json() for incident in self.incidents]
        if self.wasted_atomic is not None and self.failed:
            out["usdcWasted"] = atomic_to_usdc(self.wasted_atomic)
        return out


@dataclass(frozen=True)
class ClientVerdicts:
    """Every check's verdict for one owner, with how it showed itself."""

    owner: str
    user_agents: tuple[str, ...]
    requests: int
    verdicts: Mapping[str, Verdict]

    @property
    def label(self) -> str:
        return owner_label(self.owner)

    @property
    def failed(self) -> list[str]:
        """The ids of the checks this client failed, in :data:`CHECKS` order."""
        return [check for check, verdict in self.verdicts.items() if verdict.failed]

    @property
    def wasted_atomic(self) -> int:
        return sum(v.wasted_atomic or 0 for v in self.verdicts.values() if v.failed)

    def to_json(self) -> dict[str, Any]:
        return {
            "owner": self.label,
            "userAgents": list(self.user_agents),
            "requests": self.requests,
            "failed": self.failed,
            "usdcWasted": atomic_to_usdc(self.wasted_atomic),
            "verdicts": {check: verdict.to_json() for check, verdict in self.verdicts.items()},
        }


@dataclass(frozen=True)
class Window:
    """What the graded entries cover: ``complete`` is false when the journal dropped
    requests of the graded period (it holds a bounded number)."""

    entries: int
    dropped: int
    first: float | None
    last: float | None
    since: float | None

    @property
    def complete(self) -> bool:
        if not self.dropped:
            return True
        # Entries were dropped, all older than the first one held: only a `since` at
        # or after that first entry leaves the graded period whole.
        return self.since is not None and self.first is not None and self.since >= self.first

    def to_json(self) -> dict[str, Any]:
        note = None
        if not self.complete:
            note = (
                f"the journal no longer holds the first {self.dropped} requests of the run:"
                " verdicts cover only what it holds (raise --journal-size)"
            )
        return {
            "complete": self.complete,
            "entries": self.entries,
            "dropped": self.dropped,
            "from": None if self.first is None else iso(self.first),
            "to": None if self.last is None else iso(self.last),
            "since": None if self.since is None else iso(self.since),
            "note": note,
        }


@dataclass(frozen=True)
class Report:
    """The verdicts of every client in a journal window."""

    clients: tuple[ClientVerdicts, ...]
    thresholds: Thresholds
    window: Window
    now: float | None
    unattributed: int

    @property
    def failed(self) -> bool:
        return any(client.failed for client in self.clients)

    def client(self, owner: str) -> ClientVerdicts:
        """The verdicts of one owner (as journaled, its label, or the whole API key)."""
        for found in self.clients:
            if is_owner(found.owner, owner):
                return found
        raise KeyError(f"no requests from {owner!r} in this report")

    def only(self, checks: Iterable[str]) -> Report:
        """This report with only the verdicts of ``checks``."""
        wanted = set(checks)
        clients = tuple(
            dataclasses.replace(c, verdicts={k: v for k, v in c.verdicts.items() if k in wanted})
            for c in self.clients
        )
        return dataclasses.replace(self, clients=clients)

    def to_json(self) -> dict[str, Any]:
        return {
            "failed": self.failed,
            "now": None if self.now is None else iso(self.now),
            "window": self.window.to_json(),
            "thresholds": self.thresholds.to_json(),
            "unattributed": self.unattributed,
            "clients": [client.to_json() for client in self.clients],
        }

    def describe(self) -> str:
        """A readable account of every failed check and its evidence ("" when none)."""
        lines: list[str] = []
        for client in self.clients:
            agents = ", ".join(client.user_agents) or "no User-Agent"
            for check in client.failed:
                verdict = client.verdicts[check]
                wasted = (
                    f", {atomic_to_usdc(verdict.wasted_atomic)} USDC wasted"
                    if verdict.wasted_atomic is not None
                    else ""
                )
                lines.append(
                    f"{client.label} ({agents}) fails {check}: {verdict.count} time"
                    f"{'' if verdict.count == 1 else 's'}{wasted}"
                )
                for incident in verdict.incidents:
                    lines.append(f"  - {incident.message}")
                    for entry in incident.entries:
                        status = f" ({entry.job_status})" if entry.job_status else ""
                        lines.append(
                            f"      {iso(entry.sim_time)} {entry.method} {entry.path}"
                            f" -> {entry.status}{status}"
                        )
                if verdict.count > len(verdict.incidents):
                    lines.append(f"  - ... and {verdict.count - len(verdict.incidents)} more")
        if lines and not self.window.complete:
            lines.append(f"note: {self.window.to_json()['note']}")
        return "\n".join(lines)


# -- grading ------------------------------------------------------------------------
