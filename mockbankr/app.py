"""The Starlette application: one routes table, one error shape, built by a factory.

Example::

    app = create_app(Settings(seed=1), clock=VirtualClock(), rng=random.Random(1),
                     store=MemoryStore())
"""

from __future__ import annotations

import contextlib
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mockbankr import wire
from mockbankr._http import StatusPoll
from mockbankr.accounts import KeyBook
from mockbankr.agent_api import AgentApi
from mockbankr.clock import Clock
from mockbankr.control import ControlApi
from mockbankr.control_keys import KeysControl
from mockbankr.core import Simulator
from mockbankr.counters import MemoryCounters, RequestCounters
from mockbankr.dashboard import Dashboard
from mockbankr.errors import ApiError, MockbankrError, StoreUnavailable
from mockbankr.guard import RequestGuard
from mockbankr.journal import Journal, RequestJournal
from mockbankr.lifetime import Lifetime
from mockbankr.limits import DailyLimit
from mockbankr.metrics import MetricsEndpoint
from mockbankr.openapi import openapi_endpoint
from mockbankr.rules import RuleSet, check_categories
from mockbankr.settings import Settings
from mockbankr.shared import SharedState, StateBackend
from mockbankr.sharing import SharedStateMiddleware
from mockbankr.steering import ConnectionDropped, SteeringMiddleware
from mockbankr.store import JobStore
from mockbankr.timing import TimingTable, load_timing
from mockbankr.v2_api import V2Api
from mockbankr.verdicts import server_thresholds
from mockbankr.wire import JSONResponse

__all__ = ["build_routes", "create_app", "route_templates"]

logger = logging.getLogger("mockbankr")


Endpoint = Callable[[Request], Awaitable[Response]]


def _route(path: str, **by_method: Endpoint) -> Route:
    """One route per path, whatever its methods, so a 405's ``Allow`` names them all."""
    if len(by_method) == 1:
        ((method, endpoint),) = by_method.items()
        return Route(path, endpoint, methods=[method])

    async def dispatch(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        return await by_method[method](request)

    return Route(path, dispatch, methods=list(by_method))


def build_routes(
    sim: Simulator,
    agent: AgentApi,
    v2: V2Api,
    control: ControlApi,
    keys: KeysControl | None = None,
    metrics: Endpoint | None = None,
    dashboard: Dashboard | None = None,
) -> list[BaseRoute]:
    """Every route of the server.

    The status polls come first: the router tries routes in order, and a poll is
    most requests. No fixed path overlaps them (``/agent/job/{job_id}`` never
    matches ``/agent/job`` or ``/agent/job/``), so fixed paths still win where
    paths overlap. ``metrics`` answers ``/__mock/metrics`` (default: a 404 saying
    metrics are off); ``dashboard`` serves ``/__mock/ui`` (default: one without a token).
    """
    c = control.guard
    keys = keys or KeysControl(agent.keys, agent.quota, sim.clock)
    dashboard = dashboard or Dashboard(control.guard, admin_token=None)
    return [
        Route("/agent/job/{job_id}", StatusPoll(sim, agent.authenticate), methods=["GET"]),
        Route("/v2/job/{job_id}", StatusPoll(sim, v2.authenticate), methods=["GET"]),
        _route("/agent/prompt", POST=agent.prompt),
        _route("/v2/prompt", POST=v2.prompt),
        _route("/agent/job/{job_id}/cancel", POST=agent.cancel),
        _route("/v2/job/{job_id}/cancel", POST=v2.cancel),
        _route("/agent/job", GET=agent.job_id_missing),
        _route("/agent/job/", GET=agent.job_id_missing),
        _route("/agent/me", GET=agent.me),
        _route("/wallet/me", GET=agent.wallet_me),
        _route("/_health", GET=agent.health),
        _route("/openapi.json", GET=openapi_endpoint),
        _route("/__mock/clock", GET=c(control.get_clock), POST=c(control.set_clock)),
        _route("/__mock/jobs", GET=c(control.list_jobs)),
        _route(
            "/__mock/rules",
            GET=c(control.list_rules),
            POST=c(control.add_rule),
            DELETE=c(control.clear_rules),
        ),
        _route("/__mock/journal", GET=c(control.get_journal), DELETE=c(control.clear_journal)),
        _route("/__mock/ledger", GET=c(control.get_ledger)),
        _route("/__mock/verdicts", GET=c(control.get_verdicts)),
        _route("/__mock/reset", POST=c(control.reset)),
        _route("/__mock/keys", GET=c(keys.get_keys), PUT=c(keys.put_keys)),
        _route("/__mock/keys/revoke", POST=c(keys.revoke)),
        _route("/__mock/keys/rotate", POST=c(keys.rotate)),
        _route("/__mock/jobs/{job_id}", GET=c(control.get_job)),
        _route("/__mock/jobs/{job_id}/outcome", POST=c(control.force_outcome)),
        _route("/__mock/rules/{rule_id}", GET=c(control.get_rule), DELETE=c(control.delete_rule)),
        _route("/__mock/metrics", GET=c(metrics or _metrics_off)),
        _route("/__mock/ui", GET=dashboard.page),
        _route("/__mock/ui/{asset}", GET=dashboard.asset),
    ]


async def _metrics_off(request: Request) -> Response:
    raise ApiError(404, "Metrics off", "This server runs with --no-metrics")


def route_templates(routes: list[BaseRoute]) -> Callable[[str], str]:
    """The route template a path would match (``"unmatched"`` if none): for the requests
    the router never saw (a rule answered them), so metrics still group them by route."""
    patterns = [(r.path_regex, r.path) for r in routes if isinstance(r, Route)]

    def template(path: str) -> str:
        return next((t for regex, t in patterns if regex.match(path)), "unmatched")

    return template


def status_polls(routes: list[BaseRoute]) -> dict[str, tuple[str, StatusPoll]]:
    """The status-poll routes (``/agent/job/{job_id}``...) by path prefix: steering answers
    a hot poll itself (:class:`~mockbankr.steering.SteeringMiddleware`)."""
    return {
        r.path.removesuffix("{job_id}"): (r.path, r.endpoint)
        for r in routes
        if isinstance(r, Route) and isinstance(r.endpoint, StatusPoll)
    }


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return wire.error_response(exc)


async def _domain_error(request: Request, exc: Exception) -> Response:
    # A domain error of the core: its wire form comes from the one table.
    assert isinstance(exc, MockbankrError)
    return await _api_error(request, wire.api_error(exc))


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
    if isinstance(exc, ConnectionDropped):  # a drop rule, on purpose: nothing to report
        return Response(status_code=500)
    if isinstance(exc, StoreUnavailable):  # raised in a middleware, past the router's handlers
        return await _domain_error(request, exc)
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return JSONResponse(
        {"error": "Internal server error", "message": f"mockbankr bug: {type(exc).__name__}"},
        status_code=500,
    )


def create_app(
    settings: Settings,
    *,
    clock: Clock,
    rng: random.Random,
    store: JobStore,
    table: TimingTable | None = None,
    payment_clock: Clock | None = None,
    journal: RequestJournal | None = None,
) -> Starlette:
    """Build a mockbankr server. Everything it depends on is passed in.

    ``table`` defaults to the timing table in ``settings.fixtures`` (or the
    built-in one). ``payment_clock`` checks x402 validity windows (default:
    ``clock``); a live server passes a wall clock, because the official SDK signs
    its payments with the real time however fast simulated time runs. ``journal``
    defaults to an in-memory :class:`~mockbankr.journal.Journal` of
    ``settings.journal_size`` entries and ``settings.journal_bytes`` bytes (with a
    shared store, the one journal every server on it shares). The
    simulator is reachable as ``app.state.simulator``, the journal as
    ``app.state.journal``.

    Raises :class:`~mockbankr.errors.FixtureError` when a rule of ``settings.rules``
    names a category the timing table does not have.
    """
    table = table or load_timing(settings.fixtures)
    lifetime = Lifetime()  # a GracefulServer stops it: hangs and delays end then
    check_categories(
        settings.rules,
        table.categories,
        source=str(settings.rules_file) if settings.rules_file else "Settings.rules",
    )
    sim = Simulator(table, clock=clock, rng=rng, store=store)
    rules = RuleSet(random.Random(rng.getrandbits(64)), list(settings.rules))
    if journal is None:
        # A shared store keeps one journal for every server on it.
        shared_journal = getattr(store, "request_journal", None)
        journal = (
            Journal(settings.journal_size, settings.journal_bytes)
            if shared_journal is None
            else shared_journal(settings.journal_size, settings.journal_bytes)
        )
    book = KeyBook(settings.key_config(), rng=random.Random(rng.getrandbits(64)))
    quota = DailyLimit()
    agent = AgentApi(sim, keys=book, quota=quota)

    async def clear_limits() -> None:
        book.reset()
        await quota.reset()  # in the shared store too

    counters: RequestCounters | None = None
    if settings.metrics:
        # A shared store counts requests where every server's scrape sees them.
        shared_counters = getattr(store, "request_counters", None)
        counters = shared_counters() if shared_counters is not None else MemoryCounters()
    reset_hooks: list[Callable[[], Awaitable[None]]] = [clear_limits]
    if counters is not None:
        reset_hooks.append(counters.clear)
    control = ControlApi(
        sim,
        rules,
        journal,
        admin_token=settings.admin_token,
        reset_hooks=reset_hooks,
        thresholds=server_thresholds(settings.payment.price_atomic),  # a job's cost
        price_atomic=settings.payment.price_atomic,
    )
    v2 = V2Api(sim, settings.payment, payment_clock=payment_clock or clock)
    metrics = (
        None
        if counters is None
        else MetricsEndpoint(sim, counters, price_atomic=settings.payment.price_atomic)
    )
    routes = build_routes(
        sim,
        agent,
        v2,
        control,
        metrics=metrics,
        dashboard=Dashboard(control.guard, admin_token=settings.admin_token),
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        lifetime.stop()  # a server stopping without a GracefulServer (granian) ends hangs
        if counters is not None and counters.flush_due:
            await counters.flush()  # what this server counted last
        with contextlib.suppress(StoreUnavailable):  # a lost store: nothing more to do
            await journal.flush()  # what this server journaled last
        close = getattr(store, "aclose", None)
        if close is not None:  # a shared store's connections of this event loop
            await close()

    app = Starlette(
        lifespan=lifespan,
        routes=routes,
        exception_handlers={
            ApiError: _api_error,
            **dict.fromkeys(wire.DOMAIN_ERRORS, _domain_error),
            HTTPException: _http_error,
            Exception: _server_error,
        },
    )
    app.add_middleware(
        SteeringMiddleware,
        rules=rules,
        journal=journal,
        clock=clock,
        table=table,
        identify_key=agent.identify,
        identify_wallet=v2.identify,
        log_requests=settings.log_requests,
        lifetime=lifetime,
        counters=counters,
        route_of=route_templates(routes),
        polls=status_polls(routes),
    )
    if isinstance(store, StateBackend):  # a shared store: the clock, rules, limits, keys too
        shared = SharedState(store, clock=clock, rules=rules, limits=quota, keys=book)
        control.exclusive = shared.exclusive  # control-plane changes: one at a time
        app.add_middleware(SharedStateMiddleware, shared=shared)
    # Outermost (added last): bounds every request before anything reads it.
    app.add_middleware(
        RequestGuard,
        clock=payment_clock or clock,
        configured_host=settings.host,
        admin_token=settings.admin_token,
        # The router's own list (routes added later included): a method no route takes is
        # the router's 405, before any 415.
        routes=app.router.routes,
    )
    app.router.redirect_slashes = False  # "/_health/" is a 404 in the wire shape, not a 307
    app.state.simulator = sim
    app.state.lifetime = lifetime
    app.state.settings = settings
    app.state.rules = rules
    app.state.journal = journal
    app.state.keys = book
    app.state.counters = counters
    return app
