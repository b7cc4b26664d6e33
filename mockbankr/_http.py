"""HTTP helpers shared by both API flavours and the control plane.

Reading a bounded JSON body, validating a prompt, and the status-poll endpoint
(:class:`StatusPoll`). The flavours import these and never each other.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from mockbankr import wire
from mockbankr.context import RequestContext, context_of
from mockbankr.core import Simulator
from mockbankr.errors import ApiError
from mockbankr.jobs import JobStatus

__all__ = [
    "Authenticate",
    "MAX_BODY_BYTES",
    "StatusPoll",
    "answered_status",
    "read_json_object",
    "read_prompt_object",
    "valid_prompt",
]

#: Request bodies above this size are refused before parsing.
MAX_BODY_BYTES = 256 * 1024


async def _read_object(
    request: Request, too_big: Callable[[], ApiError], empty: Callable[[], ApiError]
) -> dict[str, Any]:
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise too_big()
    if not body.strip():
        raise empty()
    try:
        data = wire.decode_json(body)
    except msgspec.DecodeError as exc:
        raise wire.invalid_json(f"malformed JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise wire.invalid_json(f"got a JSON {type(data).__name__}, not an object")
    return data


_over_256_kib = functools.partial(wire.invalid_json, "over 256 KiB")
_empty_body = functools.partial(wire.invalid_json, "the body is empty")


async def read_json_object(request: Request) -> dict[str, Any]:
    """The request body as a JSON object of at most :data:`MAX_BODY_BYTES`, or a 400.

    Example::

        data = await read_json_object(request)  # {"advance": 60}
    """
    return await _read_object(request, _over_256_kib, _empty_body)


async def read_prompt_object(request: Request) -> dict[str, Any]:
    """A prompt request's body as a JSON object, or the documented prompt errors
    (an oversized body is "Prompt too long", an empty one "must include a prompt").

    Example::

        prompt = valid_prompt(await read_prompt_object(request))
    """
    return await _read_object(request, wire.prompt_too_long, wire.invalid_request)


def valid_prompt(data: dict[str, Any]) -> str:
    """The ``prompt`` of a request body, or the documented 400 (missing, blank, too long).

    Example::

        valid_prompt({"prompt": "What is the price of ETH?"})
    """
    prompt = data.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip(wire.PROMPT_SPACE):
        raise wire.invalid_request()
    if len(prompt) > wire.MAX_PROMPT_LENGTH:
        raise wire.prompt_too_long()
    return prompt


#: A flavour's authentication of a job request: ``(scope, context, job id)`` to the
#: owner id, or an :class:`~mockbankr.errors.ApiError` (401).
Authenticate = Callable[[Scope, RequestContext, str], str]

_STATUS_FIELD = b'"status":"'
#: Interned names: the journal keeps a reference, not a copy, per poll.
_STATUS_NAMES = {status.value.encode(): status.value for status in JobStatus}


def answered_status(body: bytes) -> str | None:
    """The ``status`` of an encoded job body, for the journal.

    The first ``"status":"`` is the field: inside a JSON string a quote is escaped.

    Example::

        answered_status(b'{"jobId":"job_1","status":"pending"}')  # 'pending'
    """
    start = body.find(_STATUS_FIELD)
    if start < 0:
        return None
    start += len(_STATUS_FIELD)
    return _STATUS_NAMES.get(body[start : body.find(b'"', start, start + 16)])


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
        await self.answer(scope, scope["path_params"]["job_id"], send)

    async def answer(self, scope: Scope, job_id: str, send: Send) -> None:
        """Send the caller's job's status (200), noted in the request's context for the
        journal; or raise the flavour's 401 or the job's 404 before anything is sent."""
        ctx = context_of(scope)
        ctx.job_id = job_id
        owner = self._authenticate(scope, ctx, job_id)
        if not job_id.strip():
            raise wire.job_id_required()
        body = await self._sim.poll(job_id, owner=owner)
        ctx.job_status = answered_status(body)
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
