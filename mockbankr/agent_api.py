"""The API-key flavour (``/agent/*``), used by ``@bankr/cli``: HTTP <-> core calls.

Authentication is ``X-API-Key``. By default any non-empty key is accepted;
``Settings.api_keys`` restricts the set. A job belongs to the key that created it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import msgspec
from eth_utils.address import to_checksum_address
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from mockbankr import wire
from mockbankr.core import Simulator
from mockbankr.jobs import cancel_body, thread_of
from mockbankr.limits import DailyLimit
from mockbankr.wire import JSONResponse

__all__ = ["AgentApi", "StatusPoll", "parse_prompt_body", "read_json_object"]

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


Authenticate = Callable[[Headers, dict[str, Any], str], str]


class StatusPoll:
    """``GET .../job/{job_id}`` as a bare ASGI app, for both flavours.

    Status polls are most of the traffic, so this endpoint skips Starlette's
    ``Request`` and ``Response`` objects. Errors are raised as usual and reach
    the app's error handlers.

    Example::

        Route("/agent/job/{job_id}", StatusPoll(sim, agent.authenticate), methods=["GET"])
    """

    def __init__(self, sim: Simulator, authenticate: Authenticate) -> None:
        self._sim = sim
        self._authenticate = authenticate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        job_id: str = scope["path_params"]["job_id"]
        state: dict[str, Any] = scope.setdefault("state", {})
        state["job_id"] = job_id
        owner = self._authenticate(Headers(scope=scope), state, job_id)
        if not job_id.strip():
            raise wire.job_id_required()
        body = await self._sim.poll(job_id, owner=owner)
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


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
        return self.authenticate(request.headers, request.scope.setdefault("state", {}))

    def authenticate(self, headers: Headers, state: dict[str, Any], job_id: str = "") -> str:
        """The owner id of an ``X-API-Key``, noted in the request ``state`` for the journal."""
        key = headers.get("x-api-key", "").strip()
        if not key or (self._keys and key not in self._keys):
            raise wire.auth_required()
        state["owner"] = key
        return "key:" + key

    async def health(self, request: Request) -> Response:
        # Public, as a load balancer's check; a key that is sent must be valid,
        # so `curl /_health -H "X-API-Key: ..."` doubles as a key test (docs/wire.md 1.2).
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
