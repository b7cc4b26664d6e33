"""The API-key flavour (``/agent/*``), used by ``@bankr/cli``: HTTP <-> core calls.

Authentication is ``X-API-Key``. By default any non-empty key is accepted;
``Settings.api_keys`` restricts the set. A job belongs to the key that created it.
"""

from __future__ import annotations

import hashlib
from typing import Any

from eth_utils.address import to_checksum_address
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope

from mockbankr import wire
from mockbankr._http import read_prompt_object, valid_prompt
from mockbankr.context import RequestContext, context_of
from mockbankr.core import Simulator
from mockbankr.jobs import cancel_body, thread_of
from mockbankr.journal import prompt_key
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
    """The ``/agent/*`` endpoints over one :class:`~mockbankr.core.Simulator`.

    Example::

        api = AgentApi(sim, api_keys=frozenset())
        Route("/agent/prompt", api.prompt, methods=["POST"])
    """

    def __init__(
        self, sim: Simulator, *, api_keys: frozenset[str], limit: DailyLimit | None = None
    ) -> None:
        self._sim = sim
        self._keys = api_keys
        self._limit = limit

    @staticmethod
    def identify(scope: Scope) -> str | None:
        """Who the caller claims to be: its ``X-API-Key`` (the first one), unchecked.

        The one answer authentication, the steering rules and the journal use.
        """
        for name, value in scope["headers"]:
            if name == b"x-api-key":
                key: str = value.decode("latin-1").strip()
                return key or None
        return None

    def owner(self, request: Request) -> str:
        """The owner id of the caller's key, or the documented 401."""
        return self.authenticate(request.scope, context_of(request.scope))

    def authenticate(self, scope: Scope, ctx: RequestContext, job_id: str = "") -> str:
        """The owner id of the caller's key (noted in ``ctx`` for the journal), or a 401."""
        key = self.identify(scope)
        if key is None or (self._keys and key not in self._keys):
            raise wire.auth_required()
        ctx.owner = key
        return "key:" + key

    async def health(self, request: Request) -> Response:
        # Public, as a load balancer's check; a key that is sent must be valid,
        # so `curl /_health -H "X-API-Key: ..."` doubles as a key test (docs/wire.md 1.2).
        if "x-api-key" in request.headers:
            self.owner(request)
        return JSONResponse({"status": "ok"})

    async def prompt(self, request: Request) -> Response:
        owner = self.owner(request)
        prompt, thread_id = parse_prompt_body(await read_prompt_object(request))
        ctx = context_of(request.scope)
        ctx.prompt_hash = prompt_key(prompt)
        if self._limit is not None:
            self._limit.take(owner, self._sim.clock.now())
        job = await self._sim.submit(prompt, owner=owner, thread_id=thread_id, shape=ctx.shape)
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

    async def me(self, request: Request) -> Response:
        """``GET /agent/me`` (removed upstream, still called by ``bankr login`` and ``whoami``).

        The wallet is a made-up address derived from the key, stable across runs.
        """
        key = self.owner(request).removeprefix("key:")
        digest = hashlib.sha256(key.encode()).hexdigest()
        return JSONResponse(
            {
                "success": True,
                "wallets": [{"chain": "evm", "address": to_checksum_address("0x" + digest[:40])}],
                "socialAccounts": [],
                "bankrClub": {"active": False},
                "leaderboard": {"score": 0},
            }
        )

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
