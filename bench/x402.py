"""The cost of verifying one x402 payment: paid prompts against API-key prompts (issue 4).

Every paid prompt needs a fresh, valid ``X-PAYMENT`` header (its nonce is single-use).
They are signed before any timing, with ``tests/_x402_signing.make_payment_header``
(byte for byte what x402-fetch sends): signing is the client's cost, not the server's.
That module is imported as ``tests._x402_signing`` from the repository root, which is on
``sys.path`` whenever ``python -m bench`` runs (``bench`` is found the same way); nothing
is copied, so the benchmark pays exactly what the tests pay.

* **in-process** (the main figure, the least noisy): the app's ASGI callable is called
  directly, as a server would, with ``POST /agent/prompt`` (``X-API-Key``) and
  ``POST /v2/prompt`` (``X-PAYMENT``), in batches that alternate for :data:`ROUNDS`
  rounds. Each answer must be a 202. The ratio is the median over the rounds of
  paid-prompt throughput / API-key-prompt throughput.
* **verify_payment alone**: the pure function on each paid batch's headers, right after
  the batch, and its share of a paid prompt.
* **over uvicorn**: ``python -m bench._serve prompt`` on one core; on the other, a
  Python load loop sending pre-encoded requests over :data:`CONNECTIONS` keep-alive
  connections. The ratio is of prompts per CPU-second of the server process (CPU
  time from ``/proc/PID/task/*/schedstat``, in nanoseconds), so the client's own
  speed does not count.

Target: the uvicorn ratio at least 0.4 (it was 0.021 with pure-Python ECDSA). eth-keys
recovers signatures with ``coincurve`` (libsecp256k1), a mockbankr dependency since issue 10;
the report says which backend ran.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
from eth_account import Account
from eth_keys.backends import get_backend
from starlette.types import ASGIApp, Message

from bench._prompts import API_KEYS, prompt
from bench.client import quiet_httpx
from bench.figures import BenchError, Figure, at_least, info
from bench.poll import _cpus, _Server, _server
from mockbankr.app import create_app
from mockbankr.clock import VirtualClock
from mockbankr.settings import Settings
from mockbankr.store import MemoryStore
from mockbankr.x402 import challenge_body, verify_payment

__all__ = ["KEY_BATCH", "PAID_BATCH", "ROUNDS", "run"]

logger = logging.getLogger("bench")

ROUNDS = 9
PAID_BATCH = 20
KEY_BATCH = 100
UVICORN_ROUNDS = 7
UVICORN_KEY_BATCH = 1000
#: Requests in flight over uvicorn, and how long one batch may take at most.
CONNECTIONS = 8
LOAD_TIMEOUT_S = 60
#: A well-known test key (never a real wallet).
PAYER_KEY = bytes.fromhex("11" * 32)
RESOURCE = "http://mockbankr.local/v2/prompt"

MakeHeader = Callable[..., str]


def _make_payment_header() -> MakeHeader:
    try:
        from tests._x402_signing import make_payment_header
    except ImportError as exc:
        raise BenchError(
            "x402: cannot import tests._x402_signing; run `python -m bench` from the"
            f" repository root ({exc})"
        ) from exc
    return make_payment_header


def _headers(requirement: dict[str, Any], count: int, now: float) -> list[str]:
    """``count`` X-PAYMENT headers paying ``requirement``, valid for an hour from ``now``."""
    make = _make_payment_header()
    account = Account.from_key(PAYER_KEY)
    return [make(account, requirement, now=now, valid_before=int(now) + 3600) for _ in range(count)]


async def _post(app: ASGIApp, path: str, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    """One request straight into the ASGI app; anything but a 202 cannot be measured."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"mockbankr.local"),
            (b"content-type", b"application/json"),
            (b"content-length", b"%d" % len(body)),
            *headers,
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("mockbankr.local", 80),
    }
    sent = False
    answer: list[Message] = []

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        answer.append(message)

    await app(scope, receive, send)
    if answer[0]["status"] != 202:
        raise BenchError(f"x402: POST {path} answered {answer[0]['status']}: {answer[1:]}")


async def _in_process() -> tuple[list[float], list[float], list[float], str]:
    """Seconds per (API-key prompt, paid prompt) per round, verify_payment alone, backend."""
    clock = VirtualClock()
    app = create_app(Settings(seed=1), clock=clock, rng=random.Random(1), store=MemoryStore())
    terms = app.state.settings.payment
    requirement = challenge_body(terms, RESOURCE)["accepts"][0]
    headers = _headers(requirement, (ROUNDS + 1) * PAID_BATCH, clock.now())
    verify: list[float] = []
    counter = iter(range(10**9))

    def body() -> bytes:
        return msgspec.json.encode({"prompt": prompt(next(counter))})

    async def key_batch() -> float:
        gc.collect()
        started = time.perf_counter()
        for i in range(KEY_BATCH):
            key = API_KEYS[i % len(API_KEYS)].encode()
            await _post(app, "/agent/prompt", [(b"x-api-key", key)], body())
        return (time.perf_counter() - started) / KEY_BATCH

    async def paid_batch() -> float:
        gc.collect()
        batch = [headers.pop() for _ in range(PAID_BATCH)]
        started = time.perf_counter()
        for header in batch:
            await _post(app, "/v2/prompt", [(b"x-payment", header.encode())], body())
        elapsed = (time.perf_counter() - started) / PAID_BATCH
        # The pure function on the same headers, right after (it does not check nonces).
        started = time.perf_counter()
        for header in batch:
            verify_payment(header, terms, clock.now())
        verify.append((time.perf_counter() - started) / PAID_BATCH)
        return elapsed

    await key_batch()  # warm-up of both
    await paid_batch()
    key: list[float] = []
    paid: list[float] = []
    for round_ in range(ROUNDS):
        if round_ % 2 == 0:
            key.append(await key_batch())
            paid.append(await paid_batch())
        else:
            paid.append(await paid_batch())
            key.append(await key_batch())
    del verify[0]  # the warm-up's
    if clock.now() != VirtualClock().now():
        raise BenchError("x402: the virtual clock moved during the benchmark")
    return key, paid, verify, type(get_backend()).__name__


def _cpu_seconds(server: _Server) -> float:
    """The server's CPU time: schedstat (ns) of every thread, else clock ticks."""
    try:
        tasks = Path(f"/proc/{server.pid}/task").iterdir()
        return sum(int((t / "schedstat").read_text().split()[0]) for t in tasks) / 1e9
    except (OSError, ValueError, IndexError):
        return server.cpu_seconds()


@contextlib.contextmanager
def _pinned_to(cpu: str | None) -> Iterator[None]:
    """Run this process on ``cpu`` (the load generator's core) for a while."""
    if cpu is None:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {int(cpu)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def _request(path: str, header: tuple[str, str], body: bytes) -> bytes:
    """A complete HTTP/1.1 request, encoded once before timing."""
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n{header[0]}: {header[1]}\r\n\r\n"
    ).encode("latin-1") + body


async def _load(port: int, requests: list[bytes]) -> None:
    """Send ``requests`` over :data:`CONNECTIONS` keep-alive connections; each must get a 202.

    Pre-encoded requests and hand-read responses keep the client cheap, and several
    in flight keep the server busy: a server that goes idle between requests pays for
    waking up (about 100 us a request on a VM), which is not the cost of a prompt.
    """
    todo = iter(requests)

    async def connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for request in todo:
                writer.write(request)
                status = int((await reader.readline()).split()[1])
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.partition(b":")
                    if name.lower() == b"content-length":
                        length = int(value)
                answer = await reader.readexactly(length)
                if status != 202:
                    raise BenchError(f"x402: a prompt over uvicorn answered {status}: {answer!r}")
        finally:
            writer.close()

    await asyncio.wait_for(
        asyncio.gather(*(connection() for _ in range(CONNECTIONS))), LOAD_TIMEOUT_S
    )


def _over_uvicorn() -> tuple[list[float], list[float]]:
    """Server CPU-seconds per (API-key prompt, paid prompt), one pair per round."""
    server_cpu, client_cpu = _cpus()
    with (
        tempfile.TemporaryDirectory(prefix="mockbankr-bench-") as tmp,
        _server("prompt", Path(tmp), server_cpu) as server,
        _pinned_to(client_cpu),
    ):
        # The terms as a client learns them: from the server's 402 challenge.
        challenge = httpx.post(f"{server.url}/v2/prompt", json={"prompt": "price of ETH"})
        if challenge.status_code != 402:
            raise BenchError(f"x402: an unpaid prompt answered {challenge.status_code}, not 402")
        requirement = challenge.json()["accepts"][0]
        payments = _headers(requirement, (UVICORN_ROUNDS + 1) * PAID_BATCH, time.time())
        counter = iter(range(10**9))

        def body() -> bytes:
            return msgspec.json.encode({"prompt": prompt(next(counter))})

        def batch(requests: list[bytes]) -> float:
            before = _cpu_seconds(server)
            asyncio.run(_load(server.facts["port"], requests))
            return (_cpu_seconds(server) - before) / len(requests)

        def key_batch(count: int) -> float:
            keys = [API_KEYS[i % len(API_KEYS)] for i in range(count)]
            return batch([_request("/agent/prompt", ("X-API-Key", key), body()) for key in keys])

        def paid_batch() -> float:
            headers = [payments.pop() for _ in range(PAID_BATCH)]
            return batch([_request("/v2/prompt", ("X-PAYMENT", h), body()) for h in headers])

        key_batch(UVICORN_KEY_BATCH // 4)  # warm-up of both
        paid_batch()
        key: list[float] = []
        paid: list[float] = []
        for round_ in range(UVICORN_ROUNDS):
            if round_ % 2 == 0:
                key.append(key_batch(UVICORN_KEY_BATCH))
                paid.append(paid_batch())
            else:
                paid.append(paid_batch())
                key.append(key_batch(UVICORN_KEY_BATCH))
    return key, paid


def _ratio(key: list[float], paid: list[float]) -> float:
    """Median over the rounds of paid-prompt throughput / API-key-prompt throughput."""
    return statistics.median(k / p for k, p in zip(key, paid, strict=True))


def run() -> list[Figure]:
    started = time.perf_counter()
    with quiet_httpx():
        key, paid, verify, backend = asyncio.run(_in_process())
        logger.info(
            "x402: in-process, API-key prompt %.0f us, paid prompt %.0f us; ECDSA backend %s",
            1e6 * statistics.median(key),
            1e6 * statistics.median(paid),
            backend,
        )
        u_key, u_paid = _over_uvicorn()
    logger.info(
        "x402: uvicorn, API-key prompt %.0f us, paid prompt %.0f us of server CPU; done in %.0f s",
        1e6 * statistics.median(u_key),
        1e6 * statistics.median(u_paid),
        time.perf_counter() - started,
    )
    coincurve = backend == "CoinCurveECCBackend"
    return [
        info("paid / API-key prompt throughput, in-process", _ratio(key, paid), "x"),
        info("API-key prompt, in-process, median", 1e6 * statistics.median(key), "us"),
        info("paid prompt, in-process, median", 1e6 * statistics.median(paid), "us"),
        info("verify_payment alone, median", 1e6 * statistics.median(verify), "us"),
        info(
            "verify_payment's share of a paid prompt, median",
            100 * statistics.median(v / p for v, p in zip(verify, paid, strict=True)),
            "%",
        ),
        at_least(
            "paid / API-key prompt throughput per server CPU-second, uvicorn",
            _ratio(u_key, u_paid),
            "x",
            0.4,
        ),
        info("API-key prompt, uvicorn, median", 1e6 * statistics.median(u_key), "us CPU"),
        info("paid prompt, uvicorn, median", 1e6 * statistics.median(u_paid), "us CPU"),
        info("coincurve installed (fast ECDSA recovery)", float(coincurve), "1 = yes"),
    ]
