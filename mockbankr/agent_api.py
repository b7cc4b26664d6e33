"""The API-key flavour (``/agent/*``), used by ``@bankr/cli``: HTTP <-> core calls.

The key comes in ``X-API-Key`` or ``Authorization: Bearer`` (spec 1.8). Who it is
and what it may do is :mod:`mockbankr.accounts`' business; this module maps its
refusals to the documented errors. A job belongs to the account of the key that
created it (in the default mode each key is an account of its own).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from mockbankr import wire
from mockbankr.accounts import Caller, KeyBook, Plan, wallet_of
from mockbankr.core import Simulator
from mockbankr.errors import AccessDenied, QuotaExceeded
from mockbankr.jobs import cancel_body, thread_of
from mockbankr.limits import DailyLimit
from mockbankr.wire import JSONResponse

__all__ = ["AgentApi", "StatusPoll", "api_key_of", "parse_prompt_body", "read_json_object"]

#: Request bodies above this size are refused before parsing.
MAX_BODY_BYTES = 256 * 1024


async def read_json_object(request: Request, *, prompt: bool = True) -> dict[str, Any]:
    """The request body as a JSON object, or a 400.

    For a prompt (``prompt=True``) an empty or oversized body gets the documented
    prompt errors; for the control plane, plain ones.
    """
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise wire.prompt_too_long() if prompt else wire.invalid_json("over 256 KiB")
    if not body.strip():
        raise wire.invalid_request() if prompt else wire.invalid_json("the body is empty")
    try:
        data = wire.decode_json(body)
    except msgspec.DecodeError as exc:
        raise wire.invalid_json(f"malformed JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise wire.invalid_json(f"got a JSON {type(data).__name__}, not an object")
    return data


def parse_prompt_body(data: dict[str, Any]) -> tuple[str, str | None]:
    """Validate a prompt body: ``(prompt, threadId or None)``, or the documented 400."""
    prompt = data.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise wire.invalid_request()
    if len(prompt) > wire.MAX_PROMPT_LENGTH:
        raise wire.prompt_too_long()
    thread_id = data.get("threadId")
    if thread_id is not None and not isinstance(thread_id, str):
        raise wire.invalid_json("threadId must be a string")
    return prompt, thread_id or None


Authenticate = Callable[[Scope, str], str]


def api_key_of(headers: Headers) -> str | None:
    """The key a request sent: ``X-API-Key``, else ``Authorization: Bearer`` (spec 1.8).

    Example::

        api_key_of(Headers({"authorization": "Bearer bk_1"})) == "bk_1"
    """
    key = headers.get("x-api-key", "").strip()
    if key:
        return key
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        return token.strip() or None
    return None


class StatusPoll:
    """``GET .../job/{job_id}`` as a bare ASGI app, for both flavours.

    Status polls are most of the traffic, so this endpoint skips Starlette's
    ``Request`` and ``Response`` objects. Errors are raised as usual and reach
    the app's error handlers.

    Example::

        Route("/agent/job/{job_id}", StatusPoll(sim, agent.authenticate_poll), methods=["GET"])
    """

    def __init__(self, sim: Simulator, authenticate: Authenticate) -> None:
        self._sim = sim
        self._authenticate = authenticate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        job_id: str = scope["path_params"]["job_id"]
        state: dict[str, Any] = scope.setdefault("state", {})
        state["job_id"] = job_id
        owner = self._authenticate(scope, job_id)
        if not job_id.strip():
            raise wire.job_id_required()
        body = await self._sim.poll(job_id, owner=owner)
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class AgentApi:
    """The ``/agent/*`` endpoints (and ``/wallet/me``) over one
    :class:`~mockbankr.core.Simulator`.

    Example::

        api = AgentApi(sim, keys=KeyBook(KeyConfig.default(), rng=rng), quota=DailyLimit())
        Route("/agent/prompt", api.prompt, methods=["POST"])
    """

    def __init__(self, sim: Simulator, *, keys: KeyBook, quota: DailyLimit) -> None:
        self._sim = sim
        self.keys = keys
        self.quota = quota

    def identify(
        self, headers: Headers, state: dict[str, Any], client: Any, *, agent: bool = True
    ) -> Caller:
        """The caller of a request, or the documented 401/403.

        ``agent``: the endpoint is under ``/agent/*``, so the key needs
        ``agentApiEnabled``. The key is noted in the request ``state`` for the journal.
        """
        key = api_key_of(headers)
        try:
            caller = self.keys.identify(key, client_ip=client[0] if client else None)
            state["owner"] = key
            if agent:
                self.keys.check_agent(caller)
        except AccessDenied as exc:
            raise wire.access_denied(exc) from None
        return caller

    def caller(self, request: Request, *, agent: bool = True) -> Caller:
        """:meth:`identify` for a Starlette request."""
        state = request.scope.setdefault("state", {})
        return self.identify(request.headers, state, request.scope.get("client"), agent=agent)

    def owner(self, request: Request) -> str:
        """The owner id of the caller's account, or the documented 401/403."""
        return self.caller(request).owner

    def authenticate_poll(self, scope: Scope, job_id: str) -> str:
        """The owner id for :class:`StatusPoll`."""
        state = scope.setdefault("state", {})
        return self.identify(Headers(scope=scope), state, scope.get("client")).owner

    async def health(self, request: Request) -> Response:
        # Spec 1.8: /_health "ignores the key and always answers 200"; the key check
        # is GET /wallet/me.
        return JSONResponse({"status": "ok"})

    async def prompt(self, request: Request) -> Response:
        caller = self.caller(request)
        try:
            self.keys.check_prompt(caller)
        except AccessDenied as exc:
            raise wire.access_denied(exc) from None
        prompt, thread_id = parse_prompt_body(await read_json_object(request))
        limit = caller.daily_limit
        if limit is not None:
            try:
                self.quota.take(
                    caller.account.id,
                    limit=limit,
                    now=self._sim.clock.now(),
                    upgrade=caller.account.plan is not Plan.CLUB,
                )
            except QuotaExceeded as exc:
                raise wire.quota_exceeded(exc) from None
        job = await self._sim.submit(
            prompt,
            owner=caller.owner,
            thread_id=thread_id,
            shape=request.scope["state"].get("job_shape"),
            read_only=caller.key.read_only,
        )
        request.state.job_id = job.id
        return JSONResponse(
            {
                "success": True,
                "jobId": job.id,
                "threadId": thread_of(job),
                "status": "pending",
                "message": "Job submitted successfully",
            },
            status_code=202,
        )

    async def cancel(self, request: Request) -> Response:
        owner = self.owner(request)
        job = await self._sim.cancel(self._job_id(request), owner=owner)
        return JSONResponse(cancel_body(job))

    def _me_body(self, caller: Caller) -> dict[str, Any]:
        plan = caller.account.plan
        club: dict[str, Any] = {"active": plan is Plan.CLUB}
        if plan is Plan.CLUB:
            club["subscriptionType"] = "monthly"
        return {
            "success": True,
            "wallets": [{"chain": "evm", "address": wallet_of(caller.account)}],
            "socialAccounts": [],
            "bankrClub": club,
            "leaderboard": {"score": 0},
        }

    async def me(self, request: Request) -> Response:
        """``GET /agent/me`` (removed upstream, still called by ``bankr login`` and ``whoami``).

        The wallet is the account's: declared in the keys file, or a made-up address
        derived from the account (each key's own in the default mode), stable across runs.
        """
        return JSONResponse(self._me_body(self.caller(request)))

    async def wallet_me(self, request: Request) -> Response:
        """``GET /wallet/me``: the key check Bankr documents now (spec 1.8). Any key
        that is valid works (``agentApiEnabled`` does not gate it); the body is
        ``/agent/me``'s, whose replacement it is (spec 1.6).
        """
        return JSONResponse(self._me_body(self.caller(request, agent=False)))

    async def job_id_missing(self, request: Request) -> Response:
        self.owner(request)
        raise wire.job_id_required()

    @staticmethod
    def _job_id(request: Request) -> str:
        job_id: str = request.path_params["job_id"].strip()
        if not job_id:
            raise wire.job_id_required()
        request.scope.setdefault("state", {})["job_id"] = job_id
        return job_id
