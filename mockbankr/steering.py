"""The ASGI shell of the control plane: applies fault rules and writes the journal.

It wraps the Bankr routes (never ``/__mock/*``). For each request it picks an
action from the ``X-Mockbankr-*`` headers or else from the :class:`RuleSet`,
carries it out, and journals the request (a
:class:`~mockbankr.journal.RequestJournal`: when it arrives, and when it ends). What the
request learns travels in its :class:`~mockbankr.context.RequestContext`: a
``job`` action goes down to the prompt handler as ``shape``, the owner and job
id come back up for the journal. Who the caller is comes from the flavours'
``identify`` functions.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import operator
import re
import sys
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, ClassVar, Protocol

import msgspec
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mockbankr import wire
from mockbankr.clock import Clock, iso, perf_seconds
from mockbankr.context import CONTEXT_KEY, RequestContext
from mockbankr.counters import RequestCounters
from mockbankr.errors import ApiError, ConfigError, MockbankrError
from mockbankr.journal import RequestJournal, key_fingerprint, prompt_key
from mockbankr.lifetime import Lifetime
from mockbankr.rules import (
    DIRECTIVE_HEADERS,
    PROMPT_PATHS,
    Action,
    Request,
    RuleSet,
    directive_action,
)
from mockbankr.timing import TimingTable
from mockbankr.wire import MAX_PROMPT_LENGTH, decode_json

__all__ = ["ConnectionDropped", "SteeringMiddleware", "retry_after_seconds"]

logger = logging.getLogger("mockbankr")

_MALFORMED = b'{"success": true, "jobId": "job_'
_name = operator.itemgetter(0)  # of a raw (name, value) header


class ConnectionDropped(MockbankrError):
    """Raised by a ``drop`` action: the server closes the connection without an answer.

    Behind uvicorn the client sees the connection close mid-response; in-process
    the clock transports turn it into ``httpx.RemoteProtocolError``.
    """


#: A flavour's answer to who the caller of a request claims to be (unverified).
Identify = Callable[[Scope], str | None]


class StatusBody(Protocol):
    """A status-poll endpoint (:class:`mockbankr._http.StatusPoll`)."""

    async def answer(self, scope: Scope, job_id: str, send: Send) -> None:
        """Send the caller's job's status (200), or raise its error before sending."""
        ...


#: The status polls steering answers itself on the hot path: path prefix (``/agent/job/``)
#: to the route's template and its endpoint.
Polls = Mapping[str, tuple[str, StatusBody]]
#: The route template of a path no route answered (a rule answered it, or a 404).
RouteOf = Callable[[str], str]


def _unmatched(path: str) -> str:
    return "unmatched"


#: The longest Retry-After the journal keeps (a day); longer ones are cut to it.
MAX_RETRY_AFTER = 86_400.0
#: Delta-seconds (fractions tolerated): ASCII digits only, so "²" or "1e308" are no number.
_DELTA_SECONDS = re.compile(r"[0-9]{1,12}(?:\.[0-9]{1,6})?")
#: The longest User-Agent the journal keeps (longer ones are cut).
MAX_USER_AGENT = 200


def retry_after_seconds(headers: Iterable[tuple[bytes, bytes]], now: float) -> float | None:
    """The seconds a raw header list's ``Retry-After`` asks for, or ``None``.

    Delta-seconds or an HTTP date (read against ``now``, simulated unix seconds);
    anything else is ignored. The result is within ``0..MAX_RETRY_AFTER``.

    Example::

        retry_after_seconds([(b"retry-after", b"7")], now=0.0)  # 7.0
    """
    for name, value in headers:
        if name.lower() != b"retry-after":
            continue
        text = value[:64].decode("latin-1").strip()
        if _DELTA_SECONDS.fullmatch(text):
            seconds = float(text)
        else:
            try:
                seconds = email.utils.parsedate_to_datetime(text).timestamp() - now
            except (TypeError, ValueError, IndexError, OverflowError):
                return None
        return min(max(seconds, 0.0), MAX_RETRY_AFTER)
    return None


def _user_agent(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"user-agent":
            # Interned: a client sends the same one every time, the journal keeps one copy.
            return sys.intern(value[:MAX_USER_AGENT].decode("latin-1"))
    return None


#: Statuses that carry no body (RFC 9110 15.3.5, 15.4.5): a body would be read as
#: the start of the next response on a keep-alive connection.
_BODYLESS = frozenset({204, 304})


async def _send_json(send: Send, status: int, body: Any, headers: dict[str, str]) -> None:
    extra = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    if status in _BODYLESS:
        await send({"type": "http.response.start", "status": status, "headers": extra})
        await send({"type": "http.response.body", "body": b""})
        return
    payload = msgspec.json.encode(body)
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": raw + extra})
    await send({"type": "http.response.body", "body": payload})


_STOPPING = {"error": "Service unavailable", "message": "mockbankr is shutting down"}


async def _wait_unless_interrupted(
    clock: Clock, seconds: float, receive: Receive, lifetime: Lifetime
) -> tuple[str, Receive]:
    """Wait ``seconds`` on ``clock``, unless the client goes or the server stops.

    Returns why it ended (``"elapsed"``, ``"gone"`` or ``"stopping"``) and a
    ``receive`` that replays what was read meanwhile (the body, bounded by the guard).
    """
    buffered: list[Message] = []

    async def listen() -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            buffered.append(message)

    sleeping = asyncio.ensure_future(clock.sleep(seconds))
    listening = asyncio.ensure_future(listen())
    stopping = asyncio.ensure_future(lifetime.wait())
    waits: set[asyncio.Future[None]] = {sleeping, listening, stopping}
    try:
        done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in waits:
            task.cancel()
    if listening in done and listening.exception() is not None:
        raise listening.exception()  # type: ignore[misc]
    reason = "gone" if listening in done else "stopping" if stopping in done else "elapsed"

    async def replay() -> Message:
        return buffered.pop(0) if buffered else await receive()

    return reason, replay


class SteeringMiddleware:
    """Rules, directives and the journal, around the Bankr routes.

    Example::

        app = SteeringMiddleware(app, rules=RuleSet(rng), journal=Journal(10_000),
                                 clock=clock, table=table, identify_key=agent.identify,
                                 identify_wallet=v2.identify)
    """

    #: Whether to look for directives and rules at all. Only the rules benchmark's
    #: baseline turns it off (so that it measures what the look costs).
    check_steering: ClassVar[bool] = True

    def __init__(
        self,
        app: ASGIApp,
        *,
        rules: RuleSet,
        journal: RequestJournal,
        clock: Clock,
        table: TimingTable,
        identify_key: Identify,
        identify_wallet: Identify,
        log_requests: bool = False,
        lifetime: Lifetime | None = None,
        counters: RequestCounters | None = None,
        route_of: RouteOf = _unmatched,
        polls: Polls | None = None,
    ) -> None:
        self.app = app
        #: Status polls answered here on the hot path, past the router (see :meth:`_lane`).
        self.polls = dict(polls or {})
        #: Requests by route and status, rule firings (``None``: metrics are off).
        self.counters = counters
        self.route_of = route_of
        self.lifetime = lifetime or Lifetime()
        self.identify_key = identify_key
        self.identify_wallet = identify_wallet
        self.log_requests = log_requests
        self.rules = rules
        self.journal = journal
        self.clock = clock
        self.table = table

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/__mock"):
            await self.app(scope, receive, send)
            return
        hot = self.is_hot(scope)
        handle = self.open(scope, hot=hot)
        ctx: RequestContext = scope[CONTEXT_KEY]
        status = 0
        retry_after: float | None = None

        def recording_send(message: Message) -> Awaitable[None]:
            # A plain function handing back send's awaitable: no extra coroutine per message.
            nonlocal status, retry_after
            if message["type"] == "http.response.start":
                status = message["status"]
                if status >= 400:  # only errors are looked at, so the hot path pays nothing
                    retry_after = retry_after_seconds(message.get("headers", ()), self.clock.now())
            return send(message)

        lane = self._lane(scope) if hot else None
        route: str | None = None
        try:
            if lane is not None:  # a hot status poll: answered here, past the router
                route, endpoint, job_id = lane
                status, retry_after = await self._poll(endpoint, job_id, scope, receive, send)
                return
            if hot:
                # No directive, and no rule could match (none at all, or only rules for
                # other methods, keys and paths), so no extra layers.
                await self.app(scope, receive, recording_send)
                return
            text = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            try:
                action, rule_id, receive = await self._choose(scope, receive, text)
            except ConfigError as exc:
                ctx.fault = "directive"
                body = {"error": "Invalid request", "message": str(exc)}
                await _send_json(recording_send, 400, body, {})
                return
            if action is not None:
                ctx.fault = action.kind
                if rule_id is not None:
                    ctx.rule_id = rule_id
                if (
                    action.job is None
                    and ctx.prompt_hash is None
                    and scope["method"] == "POST"
                    and scope["path"] in PROMPT_PATHS
                ):
                    # The app may not see this prompt: note which it was, for the verdicts.
                    prompt, receive = await self._peek_prompt(receive)
                    if prompt is not None:
                        ctx.prompt_hash = prompt_key(prompt)
            await self._run(action, scope, receive, recording_send, ctx)
        except ConnectionDropped:
            status = 0  # the client got no answer, whatever was started
            raise
        finally:
            if route is None and (matched := scope.get("route")) is not None:
                route = matched.path  # the router notes the route it matched
            await self.close(scope, handle, status, hot=hot, retry_after=retry_after, route=route)

    def _lane(self, scope: Scope) -> tuple[str, StatusBody, str] | None:
        """A status poll (``GET /agent/job/{job_id}``, ``GET /v2/job/{job_id}``): its route
        template, endpoint and job id; else ``None``. Status polls are most requests: on the
        hot path they skip the router and its exception layer (errors are answered here as
        the app's handlers answer them)."""
        if scope["method"] != "GET" or scope.get("root_path"):
            return None
        path: str = scope["path"]
        for prefix, (template, endpoint) in self.polls.items():
            if path.startswith(prefix):
                job_id = path[len(prefix) :]
                if not job_id or "/" in job_id:  # the router's {job_id}: one non-empty segment
                    return None
                return template, endpoint, job_id
        return None

    async def _poll(
        self, endpoint: StatusBody, job_id: str, scope: Scope, receive: Receive, send: Send
    ) -> tuple[int, float | None]:
        """Answer a status poll; its status and, for an error, its Retry-After seconds."""
        try:
            await endpoint.answer(scope, job_id, send)
            return 200, None
        except ApiError as exc:
            error = exc
        except MockbankrError as exc:  # a domain error: its wire form, as the app's handler
            try:
                error = wire.api_error(exc)
            except KeyError:
                raise exc from None  # no wire form: the app's last-resort handler answers
        response = wire.error_response(error)
        await response(scope, receive, send)
        return error.status_code, retry_after_seconds(response.raw_headers, self.clock.now())

    def is_hot(self, scope: Scope) -> bool:
        """Whether a request takes the hot path: no directive among its headers (a C-level
        look at the names), and no rule that could match it (the rules' cheapest test).
        Most requests do."""
        return not self.check_steering or (
            DIRECTIVE_HEADERS.isdisjoint(map(_name, scope["headers"]))
            and (not self.rules.active or not self._could_match(scope))
        )

    def open(self, scope: Scope, *, hot: bool) -> int:
        """Begin a request: its :class:`RequestContext` (in ``scope``) and its journal entry,
        in flight until :meth:`close`; the journal's handle."""
        started = perf_seconds()
        scope[CONTEXT_KEY] = RequestContext()
        # A steered request (a hang, a delay) may be held long: it shows who it claims to
        # be at once; on the hot path the owner is known when it ends.
        return self.journal.begin(
            scope["method"],
            scope["path"],
            None if hot else self._claimed_owner(scope),
            self.clock.now(),
            started,
            user_agent=_user_agent(scope),
        )

    async def close(
        self,
        scope: Scope,
        handle: int,
        status: int,
        *,
        hot: bool,
        retry_after: float | None,
        route: str | None,
    ) -> None:
        """End a request :meth:`open` began: complete its journal entry (status 0: no
        answer) and count it; ``route`` is the template of the route that answered
        (``None``: a rule's answer, or a 404)."""
        ctx: RequestContext = scope[CONTEXT_KEY]
        owner = ctx.owner
        if owner is None and hot:  # not authenticated: who the caller claims to be
            owner = self._claimed_owner(scope)
        self.journal.finish(
            handle,
            status,
            answered=self.clock.now(),
            ended=perf_seconds(),
            owner=owner,  # None: the claim it began with
            job_id=ctx.job_id,
            fault=ctx.fault,
            prompt_hash=ctx.prompt_hash,
            retry_after=retry_after,
            job_status=ctx.job_status,
        )
        counters = self.counters
        if counters is not None:
            counters.count_request(
                route if route is not None else self.route_of(scope["path"]), status
            )
            if ctx.rule_id is not None:
                counters.count_fault(ctx.rule_id)
        if self.log_requests:  # before any await: a shared journal writes behind
            self._log(handle)
        if counters is not None and counters.flush_due:  # a shared store's (the answer is sent)
            await counters.flush()

    def _claimed_owner(self, scope: Scope) -> str | None:
        """Who the caller claims to be, as the journal shows it: a key's fingerprint,
        else a wallet (until a flavour authenticates it, :attr:`RequestContext.owner`)."""
        key = self.identify_key(scope)
        if key is not None:
            return key_fingerprint(key)
        return self.identify_wallet(scope)

    def _log(self, handle: int) -> None:
        entry = self.journal.entry(handle)
        if entry is None:  # the journal was cleared meanwhile
            return
        logger.info(
            "request method=%s path=%s status=%s owner=%s job=%s fault=%s"
            " sim_time=%s latency_ms=%.2f",
            entry.method,
            entry.path,
            entry.status,
            entry.owner,
            entry.job_id,
            entry.fault,
            iso(entry.sim_time),
            entry.latency_ms,
        )

    def _could_match(self, scope: Scope) -> bool:
        return self.rules.could_match(scope["method"], self.identify_key(scope), scope["path"])

    async def _choose(
        self, scope: Scope, receive: Receive, headers: dict[str, str]
    ) -> tuple[Action | None, str | None, Receive]:
        """The action for this request (a directive's or a rule's), the id of the rule
        that chose it (``None`` for a directive), and the ``receive`` to go on with."""
        action = directive_action(headers)
        if action is not None or not len(self.rules):
            return action, None, receive
        prompt = None
        method = scope["method"]
        if self.rules.needs_prompt and method == "POST" and scope["path"] in PROMPT_PATHS:
            prompt, receive = await self._peek_prompt(receive)
        request = Request(
            method=method,
            path=scope["path"],
            key=self.identify_key(scope),
            wallet=self.identify_wallet(scope),
            prompt=prompt,
            category=self.table.classify(prompt) if prompt is not None else None,
        )
        if self.rules.claim is not None:  # counted across the servers of a shared store
            rule = await self.rules.pick_shared(request)
        else:
            rule = self.rules.pick_rule(request)
        if rule is None:
            return None, None, receive
        return rule.action, rule.id, receive

    @staticmethod
    async def _peek_prompt(receive: Receive) -> tuple[str | None, Receive]:
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False) or message["type"] != "http.request":
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        try:
            data = decode_json(body)
        except msgspec.DecodeError:
            return None, replay
        prompt = data.get("prompt") if isinstance(data, dict) else None
        if not isinstance(prompt, str) or len(prompt) > MAX_PROMPT_LENGTH:
            # Sizes first: an over-long prompt is refused by the handler, never matched
            # against a rule or classified.
            return None, replay
        return prompt, replay

    async def _run(
        self,
        action: Action | None,
        scope: Scope,
        receive: Receive,
        send: Send,
        ctx: RequestContext,
    ) -> None:
        if action is None:
            await self.app(scope, receive, send)
        elif action.respond is not None:
            respond = action.respond
            body = respond.body if respond.body is not None else {}
            await _send_json(send, respond.status, body, respond.headers)
        elif action.delay is not None:
            why, receive = await _wait_unless_interrupted(
                self.clock, action.delay.seconds, receive, self.lifetime
            )
            if why == "stopping":
                await _send_json(send, 503, _STOPPING, {"connection": "close"})
            elif why == "elapsed":
                await self.app(scope, receive, send)
        elif action.hang is not None:
            why, receive = await _wait_unless_interrupted(
                self.clock, action.hang.seconds, receive, self.lifetime
            )
            if why == "stopping":
                await _send_json(send, 503, _STOPPING, {"connection": "close"})
                return
            if why == "gone":
                return  # nobody to answer: the slot is free, the journal says status 0
            await _send_json(
                send,
                504,
                {"error": "Gateway timeout", "message": "mockbankr hung this request (hang rule)"},
                {},
            )
        elif action.drop is not None:
            # Start a response that never arrives whole: uvicorn then closes the connection.
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"64")],
                }
            )
            raise ConnectionDropped("dropped by a mockbankr rule")
        elif action.malformed is not None:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(_MALFORMED)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": _MALFORMED})
        else:
            ctx.shape = action.job
            await self.app(scope, receive, send)
