"""The outermost ASGI layer: bounded requests, and a control plane no web page can drive.

Before anything else looks at a request, :class:`RequestGuard`

* refuses request headers over :data:`MAX_HEADER_BYTES` in all (431); an
  ``X-API-Key`` over 256 characters is the 401 of :mod:`mockbankr.accounts`;
* reads a request body as a stream, counting: a body over :data:`MAX_BODY_BYTES`
  (by its ``Content-Length`` at once, or while it streams) is refused before more
  is buffered, with the documented ``Prompt too long`` 400 on the prompt routes and
  a 413 elsewhere; a body that stops arriving for ``body_timeout`` seconds is a 408.
  Both close the connection, so a stalled or oversized client holds nothing;
* on ``/__mock/*``, unless an admin token is configured (then every control call
  carries a bearer token, which no page of another site can attach), refuses what a
  browser could be tricked into sending (CSRF and DNS rebinding): a ``POST`` without
  ``Content-Type: application/json`` (415), an ``Origin`` that is neither loopback
  nor the server itself (403), and a ``Host`` that is not a loopback name or the
  configured host (403). Requests from the in-process transports
  (:mod:`mockbankr._asgi`, marked with :data:`IN_PROCESS`) come from no browser and
  skip the ``Host`` check only.

  The 415 is for a request the app would act on: a method the path does not declare is
  the router's 405 (an unknown path its 404), whatever the content type, because the
  guard asks the app's ``routes`` first. And a ``POST`` with no body and no
  ``Content-Type`` at all carries nothing to misread: it reaches its endpoint (only
  ``POST /__mock/reset`` takes no body; the others answer their 400), with or without an
  admin token. A page of another site sending it is still refused by its ``Origin``.

Example::

    app = RequestGuard(app, clock=RealClock(), configured_host="127.0.0.1",
                       admin_token=None, routes=routes)
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import msgspec
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mockbankr import wire
from mockbankr.clock import Clock, ClockTimeout
from mockbankr.errors import ApiError

__all__ = [
    "BODY_TIMEOUT",
    "IN_PROCESS",
    "MAX_BODY_BYTES",
    "MAX_HEADER_BYTES",
    "RequestGuard",
    "is_loopback_host",
]

#: Request bodies above this size are refused while they stream in.
MAX_BODY_BYTES = 256 * 1024
#: All request header names and values together, at most.
MAX_HEADER_BYTES = 32 * 1024
#: Seconds a request body may pause between two chunks before it is a 408.
BODY_TIMEOUT = 10.0

#: The ASGI scope extension the in-process transports set on every request.
IN_PROCESS = "mockbankr.in_process"

_PROMPT_PATHS = ("/agent/prompt", "/v2/prompt")  # as rules.PROMPT_PATHS
_NO_BODY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class _Refused(Exception):
    """Raised inside the guarded ``receive``: the body must not be read further."""

    def __init__(self, error: ApiError) -> None:
        super().__init__(error.message)
        self.error = error


def is_loopback_host(host: str) -> bool:
    """Whether a ``Host``/``Origin`` host name (port stripped) is this machine.

    ``localhost`` and any ``*.localhost`` (RFC 6761) and loopback addresses.

    Example::

        is_loopback_host("127.0.0.1") and not is_loopback_host("evil.example")
    """
    host = host.strip("[]").lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _split_host(value: str) -> str:
    """The host of a ``Host`` header value (``name:port``, ``[v6]:port``)."""
    try:
        return urlsplit("//" + value).hostname or ""
    except ValueError:
        return ""


def _body_too_large(path: str) -> ApiError:
    """The answer to a body over the limit: the documented one on the prompt routes."""
    if path in _PROMPT_PATHS:
        return wire.prompt_too_long()
    return wire.body_too_large(MAX_BODY_BYTES)


async def _send_error(send: Send, error: ApiError, *, close: bool) -> None:
    payload = msgspec.json.encode(error.body())
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
    ]
    if close:  # the rest of the body is never read: the connection cannot be reused
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": error.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


class RequestGuard:
    """Bounds every request before the app sees it; guards ``/__mock/*`` from browsers.

    ``clock`` times out stalled bodies (a wall clock on a live server, the test's
    virtual clock in-process). ``configured_host`` is the ``--host`` the server
    listens on, accepted as a ``Host`` of the control plane besides loopback names.
    ``routes`` are the app's: a control ``POST`` no route declares is left to the
    router's 405 or 404 (none given: every control ``POST`` is checked).

    Example::

        app = RequestGuard(app, clock=clock, configured_host="127.0.0.1", admin_token=None,
                           routes=routes)
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        clock: Clock,
        configured_host: str,
        admin_token: str | None,
        body_timeout: float = BODY_TIMEOUT,
        max_body: int = MAX_BODY_BYTES,
        routes: Sequence[BaseRoute] | None = None,
    ) -> None:
        self.app = app
        self.clock = clock
        self.configured_host = configured_host.strip("[]").lower()
        self.admin_token = admin_token
        self.body_timeout = body_timeout
        self.max_body = max_body
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        error, length, chunked = self._check_headers(scope)
        if error is not None:
            await _send_error(send, error, close=False)
            return
        path: str = scope["path"]
        if length is not None and length > self.max_body:
            await _send_error(send, _body_too_large(path), close=True)
            return
        if length == 0 or (length is None and not chunked and scope["method"] in _NO_BODY_METHODS):
            await self.app(scope, receive, send)  # no body to bound: the poll's path
            return
        started = False

        def tracking_send(message: Message) -> Any:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            return send(message)

        try:
            await self.app(scope, self._bounded(receive, path), tracking_send)
        except _Refused as refused:
            if not started:
                await _send_error(send, refused.error, close=True)

    def _check_headers(self, scope: Scope) -> tuple[ApiError | None, int | None, bool]:
        total = 0
        length: int | None = None
        chunked = False
        origin = host = content_type = None
        for name, value in scope["headers"]:
            total += len(name) + len(value)
            if name == b"content-length":
                if not value.isdigit() or len(value) > 18:
                    return wire.invalid_json("a bad Content-Length"), None, False
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = True
            elif name == b"origin":
                origin = value
            elif name == b"host":
                host = value
            elif name == b"content-type":
                content_type = value
        if total > MAX_HEADER_BYTES:
            return wire.headers_too_large(MAX_HEADER_BYTES), None, False
        if scope["path"].startswith("/__mock") and self.admin_token is None:
            # With an admin token every control call carries a bearer token, which no page
            # of another site can attach: the token is the guard then.
            bodiless = content_type is None and not chunked and not length
            error = self._check_control(scope, origin, host, content_type, bodiless=bodiless)
            return error, length, chunked
        return None, length, chunked

    def _routed(self, scope: Scope) -> bool:
        """Whether a route of the app takes this method on this path (else: 404 or 405)."""
        if self.routes is None:
            return True
        return any(route.matches(scope)[0] == Match.FULL for route in self.routes)

    def _check_control(
        self,
        scope: Scope,
        origin: bytes | None,
        host: bytes | None,
        content_type: bytes | None,
        *,
        bodiless: bool,
    ) -> ApiError | None:
        host_text = host.decode("latin-1") if host is not None else ""
        host_name = _split_host(host_text)
        in_process = IN_PROCESS in scope.get("extensions", {})
        if not (in_process or is_loopback_host(host_name) or host_name == self.configured_host):
            return wire.forbidden(
                f"The control plane answers Host names of loopback or {self.configured_host}"
                f" only, got {host_text[:80]!r} (a DNS-rebinding guard; --admin-token lifts it)"
            )
        if origin is not None:
            origin_text = origin.decode("latin-1")
            try:
                parts = urlsplit(origin_text)
                same_server = parts.netloc.lower() == host_text.lower()
                origin_host = parts.hostname or ""
            except ValueError:
                same_server, origin_host = False, ""
            if not (same_server or is_loopback_host(origin_host)):
                return wire.forbidden(
                    "The control plane refuses requests from web pages of other origins"
                    f" ({origin_text[:80]!r})"
                )
        # A POST is what a web page can send cross-site without a preflight (a form, or
        # fetch with text/plain); DELETE, PUT and PATCH always need one, which we never grant.
        # A POST no route takes changes nothing: the router's 405 (or 404) says why. One with
        # no body and no Content-Type has nothing to misread (a browser sending it cross-site
        # also sends its Origin, refused above).
        if scope["method"] == "POST" and not bodiless and self._routed(scope):
            media = (content_type or b"").split(b";", 1)[0].strip().lower()
            if media != b"application/json":
                return wire.unsupported_media_type(
                    "Control-plane changes with a body need Content-Type: application/json"
                )
        return None

    def _bounded(self, receive: Receive, path: str) -> Receive:
        """``receive``, counting body bytes and timing out pauses between chunks."""
        seen = 0
        clock, timeout, limit = self.clock, self.body_timeout, self.max_body

        complete = False

        async def bounded() -> Message:
            nonlocal seen, complete
            if complete:  # the body is in: what follows is a disconnect, whenever it comes
                return await receive()
            message = await _within(receive(), clock, timeout)
            if message is None:
                raise _Refused(wire.request_timeout(timeout))
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _Refused(_body_too_large(path))
                complete = not message.get("more_body", False)
            return message

        return bounded


async def _within(awaitable: Any, clock: Clock, seconds: float) -> Message | None:
    """The message ``awaitable`` gives, or ``None`` if it takes ``seconds`` on ``clock``.

    No task per call: the wait runs inline under a clock timer (see :class:`ClockTimeout`).
    """
    deadline = ClockTimeout(clock, seconds)
    try:
        async with deadline:
            message: Message = await awaitable
    except TimeoutError:
        if not deadline.expired():
            raise
        return None
    return message
