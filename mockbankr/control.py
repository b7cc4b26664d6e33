"""The control plane, ``/__mock/*``: steer the clock, jobs and rules; read the journal.

It answers only callers on loopback, unless an admin token is configured; then
it requires ``Authorization: Bearer <token>`` from every caller, loopback included.
"""

from __future__ import annotations

import contextlib
import ipaddress
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from mockbankr._http import read_json_object
from mockbankr.clock import ScaledClock, VirtualClock, iso
from mockbankr.core import Simulator
from mockbankr.errors import ApiError, ConfigError, InvalidNumber
from mockbankr.grading import grade
from mockbankr.jobs import FOREVER, JobRecord, JobStatus, job_body, status_of
from mockbankr.journal import RequestJournal
from mockbankr.ledger import summarize
from mockbankr.money import atomic_to_usdc
from mockbankr.rules import RuleSet, parse_rule, unknown_categories
from mockbankr.validate import (
    ADVANCE,
    CLOCK_LIMIT,
    FINISH_IN,
    NOW,
    QUERY_LIMIT,
    QUERY_OFFSET,
    SPEED,
    Bound,
    parse_float,
    parse_int,
)
from mockbankr.verdicts import THRESHOLD_NAMES, Thresholds, owner_label, parse_since
from mockbankr.wire import JSONResponse

__all__ = ["ControlApi", "is_loopback"]

Endpoint = Callable[[Request], Awaitable[Response]]

#: The most journal entries one read may ask for (the journal keeps ``--journal-size``).
MAX_JOURNAL_LIMIT = 1_000_000

#: Up to this many paid jobs, the ledger reads each one; beyond, it walks the store once.
_LEDGER_LOOKUPS = 100


def _bad(message: str) -> ApiError:
    return ApiError(400, "Invalid request", message)


def _conflict(message: str) -> ApiError:
    return ApiError(409, "Clock conflict", message)


def is_loopback(host: str | None) -> bool:
    """Whether a peer address is on this machine."""
    if not host:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _int_param(request: Request, name: str, default: int, bound: Bound) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        return parse_int(raw, name, bound)
    except InvalidNumber as exc:
        raise _bad(str(exc)) from None


def _number(data: dict[str, Any], key: str, bound: Bound) -> float | None:
    if key not in data:
        return None
    value = data[key]
    if value is None:  # the document says number; leaving the key out is how to say "none"
        raise _bad(f"{key} must be a number, not null (leave {key} out instead)")
    if isinstance(value, str):  # JSON has numbers; text is for headers and query strings
        raise _bad(f"{key} must be a JSON number, got a string")
    try:
        return parse_float(value, key, bound)
    except InvalidNumber as exc:
        raise _bad(str(exc)) from None


class ControlApi:
    """The ``/__mock/*`` endpoints.

    ``reset_hooks`` are extra callables run by ``POST /__mock/reset`` (the
    ledger and the daily-limit counters register theirs).

    Example::

        control = ControlApi(sim, rules, journal, admin_token=None)
        Route("/__mock/clock", control.guard(control.get_clock), methods=["GET"])
    """

    def __init__(
        self,
        sim: Simulator,
        rules: RuleSet,
        journal: RequestJournal,
        *,
        admin_token: str | None,
        reset_hooks: list[Callable[[], Awaitable[None]]] | None = None,
        thresholds: Thresholds | None = None,
        price_atomic: int = 100_000,
    ) -> None:
        self.sim = sim
        self.rules = rules
        self.journal = journal
        self.admin_token = admin_token
        self.reset_hooks = list(reset_hooks or [])
        self.thresholds = thresholds or Thresholds()
        #: What one job costs (USDC atomic units): a job's ``costUsdc``.
        self.price_usdc = atomic_to_usdc(price_atomic)
        #: Where a change (any method but GET) runs alone across servers sharing a store
        #: (:meth:`mockbankr.shared.SharedState.exclusive`); ``None``: this server only.
        self.exclusive: Callable[[], contextlib.AbstractAsyncContextManager[None]] | None = None

    def guard(self, endpoint: Endpoint) -> Endpoint:
        """Wrap an endpoint with the loopback / admin-token check."""

        async def guarded(request: Request) -> Response:
            self._authorize(request)
            exclusive = self.exclusive
            if exclusive is None or request.method in ("GET", "HEAD"):
                return await endpoint(request)
            await request.body()  # read first (kept for the endpoint): a slow body holds no lock
            async with exclusive():  # after the check: a refused caller never waits
                return await endpoint(request)

        guarded.__name__ = endpoint.__name__
        return guarded

    def _authorize(self, request: Request) -> None:
        if self.admin_token is None:
            host = request.client.host if request.client else None
            if not is_loopback(host):
                raise ApiError(
                    403,
                    "Forbidden",
                    "The control plane answers only on loopback; start mockbankr with"
                    " --admin-token to steer it from elsewhere",
                )
            return
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(
            token.strip().encode(), self.admin_token.encode()
        ):
            raise ApiError(
                401,
                "Authentication required",
                "The control plane needs Authorization: Bearer <admin token>",
            )

    # -- clock ----------------------------------------------------------------

    def _clock_json(self) -> dict[str, Any]:
        clock = self.sim.clock
        kind = (
            "virtual"
            if isinstance(clock, VirtualClock)
            else "scaled"
            if isinstance(clock, ScaledClock)
            else "real"
        )
        speed = (
            clock.speed if isinstance(clock, ScaledClock) else None if kind == "virtual" else 1.0
        )
        now = clock.now()
        return {"now": iso(now), "unix": now, "kind": kind, "speed": speed}

    async def get_clock(self, request: Request) -> Response:
        return JSONResponse(self._clock_json())

    async def set_clock(self, request: Request) -> Response:
        data = await read_json_object(request)
        unknown = set(data) - {"advance", "speed", "now"}
        if unknown or not data:
            raise _bad("expected one or more of advance (seconds), speed, now (unix seconds)")
        clock = self.sim.clock
        advance = _number(data, "advance", ADVANCE)
        speed = _number(data, "speed", SPEED)
        now = _number(data, "now", NOW)
        target = (now if now is not None else clock.now()) + (advance or 0.0)
        # Well-formed changes this clock cannot make now are conflicts with its state (409).
        if target > CLOCK_LIMIT:
            raise _conflict(f"the clock cannot go past {iso(CLOCK_LIMIT)}")
        if now is not None and not isinstance(clock, VirtualClock):
            raise _conflict("now can only be set on a virtual clock")
        if advance is not None and not isinstance(clock, VirtualClock | ScaledClock):
            raise _conflict("this clock is the wall clock and cannot be moved")
        if speed is not None and not isinstance(clock, ScaledClock):
            raise _conflict("speed can only be changed on a scaled clock (mockbankr serve)")
        try:
            if isinstance(clock, VirtualClock) and now is not None:
                clock.set(now)
            if isinstance(clock, VirtualClock | ScaledClock) and advance is not None:
                clock.advance(advance)
            if isinstance(clock, ScaledClock) and speed is not None:
                clock.set_speed(speed)
        except ValueError as exc:  # moving backwards, or past the limit
            raise _conflict(str(exc)) from exc
        return JSONResponse(self._clock_json())

    # -- jobs -----------------------------------------------------------------

    def _job_json(self, job: JobRecord, now: float) -> dict[str, Any]:
        return {
            "jobId": job.id,
            # Never a key: "key:" and its fingerprint ("wallet:" and the address as it is).
            "owner": _shown_owner(job.owner),
            "ownerLabel": owner_label(job.owner.partition(":")[2]),
            "prompt": job.prompt,
            "category": job.category,
            "status": status_of(job, now).value,
            "schedule": {
                "createdAt": iso(job.created_at),
                "startedAt": iso(job.started_at),
                "finishedAt": None if job.finished_at == FOREVER else iso(job.finished_at),
                "cancelledAt": None if job.cancelled_at is None else iso(job.cancelled_at),
            },
            "outcome": "failed" if job.failed else "completed",
            "fault": None if job.fault is None else msgspec.to_builtins(job.fault),
            "costUsdc": self.price_usdc,
        }

    async def list_jobs(self, request: Request) -> Response:
        params = request.query_params
        unknown = set(params) - {"status", "owner", "category", "offset", "limit", "order"}
        if unknown:
            raise _bad(f"unknown filter {sorted(unknown)[0]!r}")
        order = params.get("order", "oldest")
        if order not in ("oldest", "newest"):
            raise _bad(f"order must be oldest or newest, got {order!r}")
        status = params.get("status")
        if status is not None and status not in JobStatus.__members__.values():
            raise _bad(f"status must be one of {', '.join(JobStatus)}, got {status!r}")
        owner, category = params.get("owner"), params.get("category")
        offset = _int_param(request, "offset", 0, QUERY_OFFSET)
        limit = _int_param(request, "limit", 100, QUERY_LIMIT)
        now = self.sim.clock.now()

        def wanted(job: JobRecord) -> bool:
            return (
                (owner is None or _owner_matches(job.owner, owner))
                and (category is None or job.category == category)
                and (status is None or status_of(job, now).value == status)
            )

        store = self.sim.store
        if order == "oldest":
            page, total = await store.scan(wanted, offset=offset, limit=limit)
        else:
            # Newest first: the same page counted from the end of the submission order.
            if status is None and owner is None and category is None:
                total = await store.count()
                start = max(total - offset - limit, 0)
                size = max(min(limit, total - offset), 0)
                page = (await store.scan(wanted, offset=start, limit=size))[0] if size else []
            else:  # one pass: every match (references only), then the page from its end
                matches: list[JobRecord] = []

                def collect(job: JobRecord) -> bool:
                    if wanted(job):
                        matches.append(job)
                    return False

                await store.scan(collect, offset=0, limit=1)
                total = len(matches)
                page = matches[max(total - offset - limit, 0) : max(total - offset, 0)]
            page.reverse()
        return JSONResponse(
            {
                "jobs": [self._job_json(job, now) for job in page],
                "total": total,
                "offset": offset,
                "limit": limit,
            }
        )

    async def get_job(self, request: Request) -> Response:
        job = await self.sim.inspect(request.path_params["job_id"])
        now = self.sim.clock.now()
        return JSONResponse(
            {**self._job_json(job, now), "body": job_body(job, self.sim.table[job.category], now)}
        )

    async def force_outcome(self, request: Request) -> Response:
        data = await read_json_object(request)
        unknown = set(data) - {"outcome", "error", "finish_in"}
        if unknown:
            raise _bad(f"unknown key {sorted(unknown)[0]!r}; use outcome, error, finish_in")
        nulls = sorted(k for k in ("outcome", "error") if k in data and data[k] is None)
        if nulls:
            raise _bad(f"{nulls[0]} must not be null (leave it out instead)")
        outcome, error = data.get("outcome"), data.get("error")
        finish_in = _number(data, "finish_in", FINISH_IN)
        if outcome not in (None, "completed", "failed"):
            raise _bad(f"outcome must be completed or failed, got {outcome!r}")
        if error is not None and (outcome != "failed" or not isinstance(error, str)):
            raise _bad("error must be a string and goes with outcome failed")
        if outcome is None and finish_in is None:
            raise _bad("give an outcome, a finish_in (seconds from now), or both")
        job, now = await self.sim.force(
            request.path_params["job_id"], outcome=outcome, error=error, finish_in=finish_in
        )
        return JSONResponse(self._job_json(job, now))

    # -- rules ----------------------------------------------------------------

    async def list_rules(self, request: Request) -> Response:
        return JSONResponse({"rules": self.rules.listing()})

    async def add_rule(self, request: Request) -> Response:
        data = await read_json_object(request)
        try:
            rule = parse_rule(data)
        except ConfigError as exc:
            raise _bad(str(exc)) from exc
        for _, unknown in unknown_categories(rule, self.sim.table.categories):
            raise _bad(str(unknown))
        try:
            rule_id = self.rules.add(rule)
        except ConfigError as exc:  # the id is taken: a conflict with the rules there are
            raise ApiError(409, "Rule exists", str(exc)) from exc
        return JSONResponse(self.rules.describe(rule_id), status_code=201)

    async def get_rule(self, request: Request) -> Response:
        rule_id = request.path_params["rule_id"]
        listed = self.rules.describe(rule_id)
        if listed is None:
            raise ApiError(404, "Rule not found", f"No rule with id {rule_id}")
        return JSONResponse(listed)

    async def delete_rule(self, request: Request) -> Response:
        rule_id = request.path_params["rule_id"]
        if not self.rules.remove(rule_id):
            raise ApiError(404, "Rule not found", f"No rule with id {rule_id}")
        return JSONResponse({"deleted": rule_id})

    async def clear_rules(self, request: Request) -> Response:
        self.rules.clear()
        return JSONResponse({"rules": []})

    # -- journal ----------------------------------------------------------------

    async def get_journal(self, request: Request) -> Response:
        filters = {k: v for k, v in request.query_params.items() if k != "limit"}
        # Asking for more entries than the journal keeps gets all it keeps.
        limit = min(
            _int_param(request, "limit", self.journal.size, Bound(1, MAX_JOURNAL_LIMIT)),
            self.journal.size,
        )
        await self.journal.sync()  # a shared journal: what every server wrote
        try:
            entries = self.journal.query(filters, limit=limit)
        except ValueError as exc:
            raise _bad(str(exc)) from exc
        return JSONResponse(
            {
                "entries": [e.to_json() for e in entries],
                "size": self.journal.size,
                "maxBytes": self.journal.max_bytes,
                "dropped": self.journal.dropped,
            }
        )

    async def clear_journal(self, request: Request) -> Response:
        await self.journal.aclear()
        return JSONResponse({"entries": []})

    # -- verdicts ---------------------------------------------------------------

    async def get_verdicts(self, request: Request) -> Response:
        """Every client's verdicts over the journal, graded now (``owner``, ``since``
        and any threshold of :class:`~mockbankr.verdicts.Thresholds` as parameters)."""
        params = dict(request.query_params)
        unknown = set(params) - {"owner", "since", *THRESHOLD_NAMES}
        if unknown:
            raise _bad(
                f"unknown parameter {sorted(unknown)[0]!r}; use owner, since or a threshold"
                f" ({', '.join(THRESHOLD_NAMES)})"
            )
        owner, since = params.pop("owner", None), params.pop("since", None)
        try:
            thresholds = Thresholds.from_params(params, self.thresholds)
            start = None if since is None else parse_since(since)
        except ConfigError as exc:
            raise _bad(str(exc)) from exc
        await self.journal.sync()
        report = grade(
            self.journal.entries(),
            thresholds,
            now=self.sim.clock.now(),
            owner=owner,
            since=start,
            dropped=self.journal.dropped,
        )
        return JSONResponse(report.to_json())

    # -- ledger ---------------------------------------------------------------

    async def get_ledger(self, request: Request) -> Response:
        params = request.query_params
        unknown = set(params) - {"entries"}
        if unknown:
            raise _bad(f"unknown parameter {sorted(unknown)[0]!r}; the ledger takes entries")
        listed = params.get("entries", "true")
        if listed not in ("true", "false"):
            raise _bad(f"entries must be true or false, got {listed!r}")
        store = self.sim.store
        entries = await store.ledger()
        now = self.sim.clock.now()
        statuses: dict[str, str] = {}
        paid = {entry.job_id for entry in entries}
        if len(paid) <= _LEDGER_LOOKUPS:
            for job_id in paid:
                job = await store.get(job_id)
                if job is not None:
                    statuses[job_id] = status_of(job, now).value
        else:  # many paid jobs: one walk of the store beats a round trip per job

            def visit(job: JobRecord) -> bool:
                if job.id in paid:
                    statuses[job.id] = status_of(job, now).value
                return False  # keep nothing: the walk only reads

            await store.scan(visit, offset=0, limit=1)
        summary = summarize(entries, statuses)
        if listed == "false":
            del summary["entries"]
        return JSONResponse(summary)

    # -- reset ----------------------------------------------------------------

    async def reset(self, request: Request) -> Response:
        body = await request.body()
        data = await read_json_object(request) if body.strip() else {}
        unknown = set(data) - {"clock"}
        if unknown:
            raise _bad(f'unknown key {sorted(unknown)[0]!r}; reset takes {{"clock": true}}')
        reset_clock = data.get("clock", False)
        if not isinstance(reset_clock, bool):
            raise _bad(f"clock must be true or false, got {reset_clock!r}")
        clock = self.sim.clock
        if reset_clock:
            if not isinstance(clock, VirtualClock | ScaledClock):
                raise _bad("this clock is the wall clock and cannot be reset")
            clock.reset()
        await self.sim.reset()
        self.rules.reset()
        await self.journal.aclear()
        for hook in self.reset_hooks:
            await hook()
        return JSONResponse({"reset": True, "rules": len(self.rules)})


def _shown_owner(owner: str) -> str:
    """A job's owner as the control plane shows it: ``key:`` and the key's fingerprint
    (never the key), or ``wallet:`` and the address."""
    kind, _, who = owner.partition(":")
    return f"{kind}:{owner_label(who)}"


def _owner_matches(owner: str, wanted: str) -> bool:
    """Whether a job's owner is ``wanted``: the owner as stored or shown, with or without
    its ``key:``/``wallet:`` prefix (a whole key, or its fingerprint)."""
    who = owner.partition(":")[2]
    if wanted in (owner, who):
        return True
    shown = owner_label(who)
    return wanted in (shown, f"{owner.partition(':')[0]}:{shown}")
