"""The API-key flavour (``/agent/*``), used by ``@bankr/cli``: HTTP <-> core calls.

Authentication is ``X-API-Key``. By default any non-empty key is accepted;
``Settings.api_keys`` restricts the set. A job belongs to the key that created it.
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec
from eth_utils.address import to_checksum_address
from starlette.requests import Request
from starlette.responses import Response

from mockbankr import wire
from mockbankr.core import Simulator
from mockbankr.jobs import cancel_body, thread_of
from mockbankr.limits import DailyLimit
from mockbankr.wire import JSONResponse

__all__ = ["AgentApi", "parse_prompt_body"]

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

    def owner(self, request: Request) -> str:
        """The owner id of the caller's key, or the documented 401."""
        key = request.headers.get("x-api-key", "").strip()
        if not key or (self._keys and key not in self._keys):
            raise wire.auth_required()
        owner = "key:" + key
        request.scope.setdefault("state", {})["owner"] = key
        return owner

    async def health(self, request: Request) -> Response:
        # Public, as a load balancer's check; a key that is sent must be valid,
        # so `curl /_health -H "X-API-Key: ..."` doubles as a key test (spec 1.2).
        if "x-api-key" in request.headers:
            self.owner(request)
        return JSONResponse({"status": "ok"})

    async def prompt(self, request: Request) -> Response:
        owner = self.owner(request)
        prompt, thread_id = parse_prompt_body(await read_json_object(request))
        if self._limit is not None:
            self._limit.take(owner, self._sim.clock.now())
        job = await self._sim.submit(
            prompt, owner=owner, thread_id=thread_id, shape=request.scope["state"].get("job_shape")
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

    async def job(self, request: Request) -> Response:
        owner = self.owner(request)
        body = await self._sim.poll(self._job_id(request), owner=owner)
        return Response(body, media_type="application/json")

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
        request.scope.setdefault("state", {})["job_id"] = job_id
        return job_id
