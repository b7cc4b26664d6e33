"""The API-key flavour (``/agent/*`` and ``/wallet/me``), used by ``@bankr/cli``.

The key comes in ``X-API-Key`` or ``Authorization: Bearer`` (docs/wire.md 1.8). Who it is
and what it may do is :mod:`mockbankr.accounts`' business: its refusals
(:class:`~mockbankr.errors.AccessDenied`) and the quota's
(:class:`~mockbankr.errors.DailyLimitExceeded`) reach the wire through
:data:`mockbankr.wire.DOMAIN_ERRORS`. A job belongs to the account of the key that
created it (in the default mode, each key is an account of its own).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope

from mockbankr import wire
from mockbankr._http import read_prompt_object, valid_prompt
from mockbankr.accounts import Caller, KeyBook, Plan, wallet_of
from mockbankr.context import RequestContext, context_of
from mockbankr.core import Simulator
from mockbankr.jobs import cancel_body, thread_of
from mockbankr.journal import key_fingerprint, prompt_key
from mockbankr.limits import DailyLimit
from mockbankr.wire import JSONResponse

__all__ = ["AgentApi", "parse_prompt_body"]


def parse_prompt_body(data: dict[str, Any]) -> tuple[str, str | None]:
    """Validate a prompt body: ``(prompt, threadId or None)``, or the documented 400."""
    prompt = valid_prompt(data)
    thread_id = data.get("threadId")
    if thread_id is not None and not isinstance(thread_id, str):
        raise wire.invalid_json("threadId must be a string")
    return prompt, thread_id or None


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

    @staticmethod
    def identify(scope: Scope) -> str | None:
        """Who the caller claims to be, unchecked: its first non-empty ``X-API-Key``, else
        the key of an ``Authorization: Bearer`` (docs/wire.md 1.8: both are accepted everywhere).

        The one answer authentication, the steering rules and the journal use.
        """
        bearer = None
        for name, value in scope["headers"]:
            if name == b"x-api-key":
                key: str = value.decode("latin-1").strip()
                if key:
                    return key
            elif name == b"authorization" and bearer is None:
                scheme, _, token = value.decode("latin-1").strip().partition(" ")
                bearer = token.strip() if scheme.lower() == "bearer" else ""
        return bearer or None

    def caller(self, scope: Scope, ctx: RequestContext, *, agent: bool = True) -> Caller:
        """The caller behind the request's key (noted in ``ctx`` for the journal), or
        :class:`~mockbankr.errors.AccessDenied` (401/403 on the wire).

        ``agent``: the endpoint is under ``/agent/*``, so the key needs ``agentApiEnabled``.
        """
        key = self.identify(scope)
        client = scope.get("client")
        caller = self.keys.identify(key, client_ip=client[0] if client else None)
        # The journal shows a key's fingerprint, never the key.
        ctx.owner = None if key is None else key_fingerprint(key)
        if agent:
            self.keys.check_agent(caller)
        return caller

    def owner(self, request: Request) -> str:
        """The owner id of the caller's account, or the documented 401/403."""
        return self.authenticate(request.scope, context_of(request.scope))

    def authenticate(self, scope: Scope, ctx: RequestContext, job_id: str = "") -> str:
        """The owner id of the caller's account, for :class:`~mockbankr._http.StatusPoll`."""
        return self.caller(scope, ctx).owner

    async def health(self, request: Request) -> Response:
        # docs/wire.md 1.8: /_health "ignores the key and always answers 200"; the key check
        # is GET /wallet/me.
        return JSONResponse({"status": "ok"})

    async def prompt(self, request: Request) -> Response:
        ctx = context_of(request.scope)
        caller = self.caller(request.scope, ctx)
        self.keys.check_prompt(caller)
        prompt, thread_id = parse_prompt_body(await read_prompt_object(request))
        ctx.prompt_hash = prompt_key(prompt)
        limit = caller.daily_limit
        if limit is not None:
            await self.quota.acquire(
                caller.account.id,
                limit=limit,
                now=self._sim.clock.now(),
                upgrade=caller.account.plan is not Plan.CLUB,
            )
        job = await self._sim.submit(
            prompt,
            owner=caller.owner,
            thread_id=thread_id,
            shape=ctx.shape,
            read_only=caller.key.read_only,
        )
        ctx.job_id = job.id
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

    @staticmethod
    def _me_body(caller: Caller) -> dict[str, Any]:
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
        return JSONResponse(self._me_body(self.caller(request.scope, context_of(request.scope))))

    async def wallet_me(self, request: Request) -> Response:
        """``GET /wallet/me``: the key check Bankr documents now (docs/wire.md 1.8). Any valid key
        works (``agentApiEnabled`` does not gate it); the body is ``/agent/me``'s, whose
        replacement it is (docs/wire.md 1.6).
        """
        ctx = context_of(request.scope)
        return JSONResponse(self._me_body(self.caller(request.scope, ctx, agent=False)))

    async def job_id_missing(self, request: Request) -> Response:
        self.owner(request)
        raise wire.job_id_required()

    @staticmethod
    def _job_id(request: Request) -> str:
        job_id: str = request.path_params["job_id"].strip()
        if not job_id:
            raise wire.job_id_required()
        context_of(request.scope).job_id = job_id
        return job_id
