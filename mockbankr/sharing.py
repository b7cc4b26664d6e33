"""The ASGI middleware that keeps a server in step with the others on a shared store.

Before each request: one round trip reads the shared areas' versions (and the polled
job, which the store then serves without another); an area changed elsewhere is
reloaded (:meth:`~mockbankr.shared.SharedState.before`). Before the response starts:
what this request changed is published (:meth:`~mockbankr.shared.SharedState.after`),
so a client that got its answer finds the change on every server. A lost store is the
503 of :func:`mockbankr.wire.store_unavailable`.

Example::

    app.add_middleware(SharedStateMiddleware, shared=SharedState(backend, ...))
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mockbankr import wire
from mockbankr.errors import StoreUnavailable
from mockbankr.shared import SharedState

__all__ = ["SharedStateMiddleware"]

_POLLS = ("/agent/job/", "/v2/job/")


def _polled_job(scope: Scope) -> str | None:
    """The job id of a status poll (``GET /agent/job/{id}``), else ``None``."""
    path: str = scope["path"]
    if scope["method"] != "GET" or not path.startswith(_POLLS):
        return None
    job_id = path.rsplit("/", 1)[1]
    return job_id if path.count("/") == 3 and job_id else None


class SharedStateMiddleware:
    """Sync a server's shared areas around every HTTP request (see the module)."""

    def __init__(self, app: ASGIApp, *, shared: SharedState) -> None:
        self.app = app
        self.shared = shared

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        shared = self.shared
        try:
            await shared.before(_polled_job(scope), control=scope["path"].startswith("/__mock"))
        except StoreUnavailable as exc:
            await _send_error(send, exc)
            return

        async def publishing_send(message: Message) -> None:
            if message["type"] == "http.response.start" and shared.changed():
                await shared.after()
            await send(message)

        await self.app(scope, receive, publishing_send)


async def _send_error(send: Send, exc: StoreUnavailable) -> None:
    error = wire.api_error(exc)
    response = wire.JSONResponse(error.body(), status_code=error.status_code, headers=error.headers)
    await response({"type": "http"}, _no_receive, send)


async def _no_receive() -> Message:  # pragma: no cover - a JSON response never reads
    return {"type": "http.disconnect"}
