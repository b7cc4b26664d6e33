"""A lean HTTP/1.1 transport for live fleets: so a live run measures the server, not httpcore.

:class:`LeanTransport` is an ``httpx.AsyncBaseTransport`` for one origin: at most
``max_connections`` keep-alive connections, each an :class:`asyncio.Protocol` whose
responses are parsed by ``httptools`` (llhttp, the parser uvicorn uses; it comes with
``uvicorn[standard]``). Requests beyond the pool wait in a FIFO queue, at O(1) each.

Why: httpcore's pool rescans its queue against its connections on every change, and its
h11 connections go through anyio's stream wrappers; at 1,000 agents that cost the client
about 3 ms of CPU per request, four times what the server spends answering it. Here a
request costs its serialisation, one ``write`` and llhttp's callbacks.

Everything that comes back is bounded: the status line and headers (64 KiB in all) and the
body (:data:`MAX_BODY`); a response past a bound, malformed, or cut short ends its
connection and raises an ``httpx`` error, as httpcore would: ``ConnectError`` /
``ConnectTimeout`` / ``PoolTimeout`` before anything was written (the reference client
knows the request was not sent), ``ReadTimeout``, ``ReadError`` or ``RemoteProtocolError``
after. The request's ``timeout`` extension (``connect``, ``read``, ``pool``) applies.

Example::

    transport = lean_transport("http://127.0.0.1:8402", max_connections=8)
    client = AsyncBankrClient("http://127.0.0.1:8402", api_key="bk_x", transport=transport)
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from typing import Any, cast

import httpx

from mockbankr.errors import ConfigError

__all__ = ["KEEPALIVE_EXPIRY", "LeanTransport", "MAX_BODY", "MAX_HEAD", "lean_transport"]

#: The most bytes a response's status line and headers may take.
MAX_HEAD = 64 * 1024
#: The most bytes a response's body may take.
MAX_BODY = 16 * 1024 * 1024
#: Seconds an idle connection is reused for (uvicorn closes idle ones after 5 s).
KEEPALIVE_EXPIRY = 4.0


class _TooLarge(Exception):
    """A response past a bound (raised inside the parser's callbacks)."""


class _Failure(Exception):
    """Why a connection's exchange ended without a response (mapped to an httpx error)."""

    def __init__(self, kind: type[httpx.TransportError], message: str) -> None:
        super().__init__(message)
        self.kind = kind


class _Connection(asyncio.Protocol):
    """One keep-alive connection; one exchange at a time."""

    def __init__(self) -> None:
        import httptools

        self._parser = httptools.HttpResponseParser(self)
        self._errors: tuple[type[Exception], ...] = (httptools.HttpParserError,)
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = time.monotonic()
        self._waiter: asyncio.Future[None] | None = None
        self._headers: list[tuple[bytes, bytes]] = []
        self._body: list[bytes] = []
        self._head = 0
        self._size = 0
        self._status = 0
        self._keep = False
        self._done = False
        self._failure: _Failure | None = None

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        if self._waiter is None or self._done:
            self._fail(httpx.RemoteProtocolError, "the server sent data with no request pending")
            return
        try:
            self._parser.feed_data(data)
        except self._errors as exc:
            cause = exc.__context__ if isinstance(exc.__context__, _TooLarge) else exc
            self._fail(httpx.RemoteProtocolError, f"malformed response: {cause}")

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self._done:
            self._wake(_Failure(httpx.ReadError, "the server closed the connection"))

    # -- httptools callbacks -----------------------------------------------------------------

    def on_status(self, status: bytes) -> None:
        self._head += len(status)
        if self._head > MAX_HEAD:
            raise _TooLarge(f"its status line is over {MAX_HEAD} bytes")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head += len(name) + len(value) + 4
        if self._head > MAX_HEAD:
            raise _TooLarge(f"its status line and headers are over {MAX_HEAD} bytes")
        self._headers.append((name, value))

    def on_body(self, body: bytes) -> None:
        self._size += len(body)
        if self._size > MAX_BODY:
            raise _TooLarge(f"its body is over {MAX_BODY} bytes")
        self._body.append(body)

    def on_message_complete(self) -> None:
        self._status = self._parser.get_status_code()
        self._keep = self._parser.should_keep_alive()
        self._done = True
        self._wake(None)

    # -- exchanges ---------------------------------------------------------------------------

    def _fail(self, kind: type[httpx.TransportError], message: str) -> None:
        self._wake(_Failure(kind, message))
        self.close()

    def _wake(self, failure: _Failure | None) -> None:
        if failure is not None and self._failure is None:
            self._failure = failure
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _expire(self) -> None:
        self._wake(_Failure(httpx.ReadTimeout, "no response within the read timeout"))

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    async def exchange(
        self, data: bytes, read_timeout: float | None
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes, bool]:
        """Send one request; the response's status, headers, body, and whether to keep on."""
        assert self.transport is not None
        assert not self.closed
        self._headers, self._body = [], []
        self._head = self._size = 0
        self._done, self._failure = False, None
        loop = asyncio.get_running_loop()
        self._waiter = waiter = loop.create_future()
        self.transport.write(data)
        # A timer handle rather than asyncio.timeout(): a third of the cost, per request.
        timer = None if read_timeout is None else loop.call_later(read_timeout, self._expire)
        try:
            await waiter
        except BaseException:
            self.close()  # cancelled mid-exchange: the connection's state is unknown
            raise
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()
        if self._failure is not None:
            self.close()
            raise self._failure.kind(str(self._failure))
        self.idle_since = time.monotonic()
        return self._status, self._headers, b"".join(self._body), self._keep and not self.closed


def _expire(waiter: asyncio.Future[_Connection | None], seconds: float) -> None:
    if not waiter.done():
        waiter.set_exception(httpx.PoolTimeout(f"no connection free within {seconds} s"))


class LeanTransport(httpx.AsyncBaseTransport):
    """Keep-alive HTTP/1.1 connections to one origin (see the module docstring).

    Example::

        LeanTransport("http://127.0.0.1:8402", max_connections=8)
    """

    def __init__(self, base_url: str, *, max_connections: int) -> None:
        if (
            isinstance(max_connections, bool)
            or not isinstance(max_connections, int)
            or not 1 <= max_connections <= 10_000
        ):
            raise ConfigError(
                f"max_connections must be an int in 1..10000, got {max_connections!r}"
            )
        url = httpx.URL(base_url)
        if url.scheme not in ("http", "https") or not url.host:
            raise ConfigError(f"base URL must be an absolute http(s) URL, got {base_url!r}")
        self._scheme = url.scheme
        self._host = url.host
        self._port = url.port or (443 if url.scheme == "https" else 80)
        self._ssl: ssl.SSLContext | None = (
            ssl.create_default_context() if url.scheme == "https" else None
        )
        self._limit = max_connections
        self._open = 0
        self._idle: deque[_Connection] = deque()
        self._waiting: deque[asyncio.Future[_Connection | None]] = deque()
        self._closed = False

    # -- the pool ----------------------------------------------------------------------------

    async def _acquire(self, timeouts: dict[str, Any]) -> _Connection:
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()
            if not conn.closed and now - conn.idle_since < KEEPALIVE_EXPIRY:
                return conn
            conn.close()
            self._open -= 1
        if self._open < self._limit:
            self._open += 1
            return await self._connect_in_slot(timeouts.get("connect"))
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[_Connection | None] = loop.create_future()
        self._waiting.append(waiter)
        pool = timeouts.get("pool")
        timer = None if pool is None else loop.call_later(pool, _expire, waiter, pool)
        try:
            handed = await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                handed = waiter.result()  # handed over, then cancelled: pass it on
                if handed is None:
                    self._open -= 1
                    self._hand_over()
                else:
                    self._release(handed, keep=True)
            waiter.cancel()
            raise
        finally:
            if timer is not None:
                timer.cancel()
        if handed is not None:
            return handed
        # A slot was freed (its connection closed): open a new one in it.
        return await self._connect_in_slot(timeouts.get("connect"))

    async def _connect_in_slot(self, seconds: float | None) -> _Connection:
        """A new connection in a slot already counted; the slot is given back if it fails."""
        try:
            return await self._connect(seconds)
        except BaseException:
            self._open -= 1
            self._hand_over()
            raise

    async def _connect(self, seconds: float | None) -> _Connection:
        if self._closed:
            raise httpx.ConnectError("the transport is closed")
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(seconds):
                _, conn = await loop.create_connection(
                    _Connection,
                    self._host,
                    self._port,
                    ssl=self._ssl,
                    server_hostname=self._host if self._ssl else None,
                )
        except TimeoutError:
            raise httpx.ConnectTimeout(
                f"no connection to {self._host}:{self._port} within {seconds} s"
            ) from None
        except OSError as exc:
            raise httpx.ConnectError(f"cannot connect to {self._host}:{self._port}: {exc}") from exc
        return conn

    def _hand_over(self) -> None:
        """A slot freed with no connection to pass on: the first waiter opens its own."""
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                self._open += 1
                waiter.set_result(None)
                return

    def _release(self, conn: _Connection, *, keep: bool) -> None:
        if not keep or conn.closed or self._closed:
            conn.close()
            self._open -= 1
            self._hand_over()
            return
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        self._idle.append(conn)

    # -- httpx -------------------------------------------------------------------------------

    def _head(self, request: httpx.Request, length: int) -> bytes:
        url = request.url
        if url.host != self._host or (url.port or self._port) != self._port:
            raise httpx.UnsupportedProtocol(
                f"this transport talks to {self._host}:{self._port} only, not {url.host}"
            )
        if request.method in ("HEAD", "CONNECT"):
            # Their answers have no body whatever their headers say: not for this parser.
            raise httpx.UnsupportedProtocol(f"this transport does not send {request.method}")
        lines = [b"%s %s HTTP/1.1\r\n" % (request.method.encode(), url.raw_path)]
        has_host = has_length = False
        for name, value in request.headers.raw:
            lowered = name.lower()
            has_host = has_host or lowered == b"host"
            has_length = has_length or lowered == b"content-length"
            lines.append(b"%s: %s\r\n" % (name, value))
        if not has_host:
            lines.insert(1, b"Host: %s\r\n" % url.netloc)
        if length and not has_length:
            lines.append(b"Content-Length: %d\r\n" % length)
        lines.append(b"\r\n")
        return b"".join(lines)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            body = request.content  # read already, as every request the client builds is
        except httpx.RequestNotRead:
            body = await request.aread()
        data = self._head(request, len(body)) + body
        timeouts: dict[str, Any] = request.extensions.get("timeout", {})
        conn = await self._acquire(timeouts)
        while conn.closed:  # the server closed it while it was handed over: not sent yet
            self._release(conn, keep=False)
            conn = await self._acquire(timeouts)
        keep = False
        try:
            status, headers, content, keep = await conn.exchange(data, timeouts.get("read"))
        finally:
            self._release(conn, keep=keep)
        # A stream read at once is content= without its header bookkeeping (a quarter less).
        response = httpx.Response(
            status, headers=headers, stream=httpx.ByteStream(content), request=request
        )
        response.read()
        return response

    async def aclose(self) -> None:
        self._closed = True
        while self._idle:
            self._idle.pop().close()
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.cancel()


def lean_transport(base_url: str, max_connections: int) -> httpx.AsyncBaseTransport:
    """A :class:`LeanTransport`, or httpx's pooled one when ``httptools`` is not installed."""
    try:
        import httptools  # noqa: F401 -- comes with uvicorn[standard]
    except ImportError:  # pragma: no cover -- uvicorn[standard] brings it
        from bankr_client import pooled_transport

        return pooled_transport(max_connections)
    return LeanTransport(base_url, max_connections=max_connections)
