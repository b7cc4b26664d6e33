"""The Starlette application: one routes table, one error shape, built by a factory.

Example::

    app = create_app(Settings(seed=1), clock=VirtualClock(), rng=random.Random(1),
                     store=MemoryStore())
"""

from __future__ import annotations

import logging
import random
import time
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mockbankr import wire
from mockbankr.agent_api import AgentApi
from mockbankr.clock import Clock
from mockbankr.core import Simulator
from mockbankr.errors import ApiError
from mockbankr.settings import Settings
from mockbankr.store import JobStore
from mockbankr.timing import TimingTable, load_timing
from mockbankr.wire import JSONResponse

__all__ = ["build_routes", "create_app"]

logger = logging.getLogger("mockbankr")


def build_routes(agent: AgentApi) -> list[BaseRoute]:
    """Every route of the server, fixed paths before parameterised ones."""
    return [
        Route("/_health", agent.health, methods=["GET"]),
        Route("/agent/prompt", agent.prompt, methods=["POST"]),
        Route("/agent/job", agent.job_id_missing, methods=["GET"]),
        Route("/agent/job/", agent.job_id_missing, methods=["GET"]),
        Route("/agent/job/{job_id}", agent.job, methods=["GET"]),
        Route("/agent/job/{job_id}/cancel", agent.cancel, methods=["POST"]),
    ]


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return JSONResponse(exc.body(), status_code=exc.status_code, headers=exc.headers or None)


async def _http_error(request: Request, exc: Exception) -> Response:
    # Starlette's router raises these for unknown routes and wrong methods.
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        error = wire.method_not_allowed(request.method, request.url.path, exc.headers)
    elif exc.status_code == 404:
        error = wire.route_not_found(request.method, request.url.path)
    else:
        error = ApiError(exc.status_code, "HTTP error", str(exc.detail))
    return await _api_error(request, error)


async def _server_error(request: Request, exc: Exception) -> Response:
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return JSONResponse(
        {"error": "Internal server error", "message": f"mockbankr bug: {type(exc).__name__}"},
        status_code=500,
    )


class _RequestLog:
    """One structured log line per request: method, path, status, latency."""

    def __init__(self, app: ASGIApp, clock: Clock) -> None:
        self.app = app
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()  # instrumentation only, never logic
        status: dict[str, Any] = {}

        async def send_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            logger.info(
                "request method=%s path=%s status=%s sim_time=%.3f latency_ms=%.2f",
                scope["method"],
                scope["path"],
                status.get("code", "-"),
                self.clock.now(),
                (time.perf_counter() - started) * 1000,
            )


def create_app(
    settings: Settings,
    *,
    clock: Clock,
    rng: random.Random,
    store: JobStore,
    table: TimingTable | None = None,
) -> Starlette:
    """Build a mockbankr server. Everything it depends on is passed in.

    ``table`` defaults to the timing table in ``settings.fixtures`` (or the
    built-in one). The simulator is reachable as ``app.state.simulator``.
    """
    sim = Simulator(table or load_timing(settings.fixtures), clock=clock, rng=rng, store=store)
    agent = AgentApi(sim, api_keys=settings.api_keys)
    app = Starlette(
        routes=build_routes(agent),
        exception_handlers={
            ApiError: _api_error,
            HTTPException: _http_error,
            Exception: _server_error,
        },
    )
    app.state.simulator = sim
    app.state.settings = settings
    if settings.log_requests:
        app.add_middleware(_RequestLog, clock=clock)
    return app
