"""The live fleet's lean HTTP/1.1 transport, against a scripted server on a loopback port.

Each test's server is an ``asyncio`` server in the test's own loop that answers as the test
says (well, too much, malformed, not at all), so every path of the transport is exercised
on real sockets. Waits are events, never sleeps; the only timers are the transport's own
timeouts, set to a few hundredths of a second.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx
import pytest
from bankr_client import AsyncBankrClient, RequestNotSentError, RetryPolicy, TransportError

from mockbankr.errors import ConfigError
from mockbankr.experiments import transport as lean
from mockbankr.experiments.transport import LeanTransport

pytestmark = pytest.mark.live

#: The reference client without retries (a retry would wait on the real clock).
ONCE = RetryPolicy(max_retries=0)

Answer = Callable[[bytes, asyncio.StreamWriter], Awaitable[None]]

OK = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"ok":true}'


class Server:
    """Reads requests (head and body) off each connection and hands them to ``answer``."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.connections = 0
        self.open = 0
        self.most_open = 0
        self.requests: list[bytes] = []
        self._arrived = asyncio.Event()
        self.tasks: set[asyncio.Task[None]] = set()

    async def received(self, count: int) -> None:
        """Return once ``count`` requests have arrived."""
        while len(self.requests) < count:
            self._arrived.clear()
            await self._arrived.wait()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        self.connections += 1
        self.open += 1
        self.most_open = max(self.most_open, self.open)
        try:
            await self._serve(reader, writer)
        except asyncio.CancelledError:
            pass  # the test is over: its server stops mid-answer
        finally:
            self.open -= 1
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            request = head + (await reader.readexactly(length) if length else b"")
            self.requests.append(request)
            self._arrived.set()
            await self.answer(request, writer)
            if writer.is_closing():
                return


@asynccontextmanager
async def serving(answer: Answer) -> AsyncIterator[tuple[str, Server]]:
    server = Server(answer)
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", server
    finally:
        listener.close()
        for task in server.tasks:
            task.cancel()
        await asyncio.gather(*server.tasks)


async def ok(request: bytes, writer: asyncio.StreamWriter) -> None:
    writer.write(OK)
    await writer.drain()


def get(url: str, **timeouts: float) -> httpx.Request:
    timeout = httpx.Timeout(5.0, **timeouts).as_dict()
    return httpx.Request("GET", url + "/agent/job/job_1", extensions={"timeout": timeout})


async def send(transport: LeanTransport, request: httpx.Request) -> httpx.Response:
    response = await transport.handle_async_request(request)
    await response.aread()
    return response


def test_requests_reuse_one_kept_alive_connection() -> None:
    async def main() -> None:
        async with serving(ok) as (url, server):
            transport = LeanTransport(url, max_connections=4)
            body = {"prompt": "price of ETH"}
            post = httpx.Request("POST", url + "/agent/prompt", json=body)
            first = await send(transport, post)
            second = await send(transport, get(url))
            await transport.aclose()
        assert (first.status_code, first.json()) == (200, {"ok": True})
        assert second.headers["content-type"] == "application/json"
        assert server.connections == 1
        sent = server.requests[0]
        assert sent.startswith(b"POST /agent/prompt HTTP/1.1\r\n")
        assert b"\r\nContent-Length: 25\r\n" in sent
        assert sent.endswith(b'\r\n\r\n{"prompt":"price of ETH"}')
        assert server.requests[1].startswith(b"GET /agent/job/job_1 HTTP/1.1\r\nHost: 127.0.0.1:")

    asyncio.run(main())


def test_a_chunked_body_is_read_whole() -> None:
    async def chunked(request: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b'3\r\n{"a\r\n5\r\n":12}\r\n0\r\n\r\n'
        )
        await writer.drain()

    async def main() -> None:
        async with serving(chunked) as (url, _):
            transport = LeanTransport(url, max_connections=1)
            response = await send(transport, get(url))
            again = await send(transport, get(url))
            await transport.aclose()
        assert response.json() == again.json() == {"a": 12}

    asyncio.run(main())


def test_no_more_connections_than_the_pool_allows() -> None:
    release = asyncio.Event()

    async def held(request: bytes, writer: asyncio.StreamWriter) -> None:
        await release.wait()
        await ok(request, writer)

    async def main() -> list[int]:
        async with serving(held) as (url, server):
            transport = LeanTransport(url, max_connections=2)
            pending = [asyncio.ensure_future(send(transport, get(url))) for _ in range(7)]
            await server.received(2)  # both connections busy: the rest queue
            release.set()
            responses = await asyncio.gather(*pending)
            await transport.aclose()
            assert server.most_open == 2
            assert len(server.requests) == 7
            return [r.status_code for r in responses]

    assert asyncio.run(main()) == [200] * 7


def test_a_server_that_closes_without_answering_is_a_read_error() -> None:
    async def hang_up(request: bytes, writer: asyncio.StreamWriter) -> None:
        writer.close()

    async def main() -> None:
        async with serving(hang_up) as (url, server):
            transport = LeanTransport(url, max_connections=1)
            with pytest.raises(httpx.ReadError, match="closed the connection"):
                await send(transport, get(url))
            # The broken connection is dropped: the next request opens another.
            with pytest.raises(httpx.ReadError):
                await send(transport, get(url))
            await transport.aclose()
            assert server.connections == 2

    asyncio.run(main())


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * (lean.MAX_HEAD + 1) + b"\r\n\r\n", "headers"),
        (b"HTTP/1.1 200 " + b"a" * (lean.MAX_HEAD + 1) + b"\r\n\r\n", "status line"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 99999999\r\n\r\n" + b"x" * 70000, "body"),
        (b"SMTP/9 hello\r\n\r\n", "malformed"),
    ],
)
def test_an_oversized_or_malformed_answer_is_a_protocol_error(
    reply: bytes, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lean, "MAX_BODY", 65536)

    async def bad(request: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(reply)
        await writer.drain()

    async def main() -> None:
        async with serving(bad) as (url, _):
            transport = LeanTransport(url, max_connections=1)
            with pytest.raises(httpx.RemoteProtocolError, match=message):
                await send(transport, get(url))
            await transport.aclose()

    asyncio.run(main())


def test_an_unanswered_request_times_out() -> None:
    async def silent(request: bytes, writer: asyncio.StreamWriter) -> None:
        await asyncio.Event().wait()

    async def main() -> None:
        async with serving(silent) as (url, server):
            transport = LeanTransport(url, max_connections=1)
            with pytest.raises(httpx.ReadTimeout):
                await send(transport, get(url, read=0.05))
            # The timed-out connection is closed and its slot freed: the next request opens
            # another, and one that cannot get a connection in time is a pool timeout.
            stuck = asyncio.ensure_future(send(transport, get(url)))
            await server.received(2)
            with pytest.raises(httpx.PoolTimeout):
                await send(transport, get(url, pool=0.05))
            stuck.cancel()
            await transport.aclose()

    asyncio.run(main())


def test_a_refused_connection_is_known_not_sent_by_the_reference_client() -> None:
    async def main() -> None:
        async with serving(ok) as (url, _):
            pass  # closed: nothing listens on the port any more
        transport = LeanTransport(url, max_connections=1)
        with pytest.raises(httpx.ConnectError):
            await send(transport, get(url))
        client = AsyncBankrClient(url, api_key="bk_x", transport=transport, retry=ONCE)
        with pytest.raises(RequestNotSentError) as caught:
            await client.get_job_status("job_1")
        cause = caught.value.__cause__
        assert isinstance(cause, httpx.ConnectError)
        assert cause.request.url.path == "/agent/job/job_1"

    asyncio.run(main())


def test_the_reference_client_polls_through_it() -> None:
    async def job(request: bytes, writer: asyncio.StreamWriter) -> None:
        body = b'{"success":true,"jobId":"job_1","status":"completed","response":"42"}'
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        await writer.drain()

    async def main() -> None:
        async with serving(job) as (url, server):
            transport = LeanTransport(url, max_connections=1)
            client = AsyncBankrClient(url, api_key="bk_x", transport=transport, retry=ONCE)
            status = await client.get_job_status("job_1")
            again = await client.get_job_status("job_1")
            await transport.aclose()
            assert server.connections == 1
        assert (status.response, again.status.value) == ("42", "completed")

    asyncio.run(main())


def test_a_server_error_mid_body_is_a_transport_error_to_the_client() -> None:
    async def cut(request: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(b'HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{"success":')
        await writer.drain()
        writer.close()

    async def main() -> None:
        async with serving(cut) as (url, _):
            transport = LeanTransport(url, max_connections=1)
            client = AsyncBankrClient(url, api_key="bk_x", transport=transport, retry=ONCE)
            with pytest.raises(TransportError) as caught:
                await client.get_job_status("job_1")
            await transport.aclose()
        assert not isinstance(caught.value, RequestNotSentError)  # it was sent

    asyncio.run(main())


@pytest.mark.parametrize("bad", [0, -1, 10_001, True, 2.5, "8"])
def test_the_pool_size_is_bounded(bad: object) -> None:
    with pytest.raises(ConfigError, match="max_connections"):
        LeanTransport("http://127.0.0.1:1", max_connections=bad)  # type: ignore[arg-type]


def test_another_origin_is_refused() -> None:
    async def main() -> None:
        transport = LeanTransport("http://127.0.0.1:1", max_connections=1)
        request = httpx.Request("GET", "http://example.com/agent/job/x")
        with pytest.raises(httpx.UnsupportedProtocol, match=r"127\.0\.0\.1:1 only"):
            await transport.handle_async_request(request)

    asyncio.run(main())


def test_a_request_without_host_or_length_gets_them() -> None:
    async def main() -> None:
        async with serving(ok) as (url, server):
            transport = LeanTransport(url, max_connections=1)
            bare = httpx.Request(
                "POST", url + "/agent/prompt", stream=httpx.ByteStream(b'{"prompt":"x"}')
            )
            bare.headers = httpx.Headers()  # as a hand-made request may come
            await send(transport, bare)
            await transport.aclose()
        sent = server.requests[0]
        head = sent.split(b"\r\n\r\n")[0].split(b"\r\n")
        assert head[1] == b"Host: " + url.removeprefix("http://").encode()
        assert b"Content-Length: 14" in head
        assert sent.endswith(b'{"prompt":"x"}')

    asyncio.run(main())


def test_head_is_refused_rather_than_left_waiting_for_a_body() -> None:
    async def main() -> None:
        transport = LeanTransport("http://127.0.0.1:1", max_connections=1)
        with pytest.raises(httpx.UnsupportedProtocol, match="HEAD"):
            await transport.handle_async_request(httpx.Request("HEAD", "http://127.0.0.1:1/"))

    asyncio.run(main())
