"""What one agent does for one task, under each kind of policy.

* ``reference``: the reference client (``bankr_client``) with the policy's knobs: one
  ``prompt_and_wait``, retries as its :class:`~bankr_client.RetryPolicy` allows (a prompt
  only when provably refused), and a cancel when it gives up, if ``cancel_on_timeout``.
* ``naive``: the seed's documented pattern, literally: ``withRetry`` around
  ``promptAndWait``. Up to ``retries`` attempts; each prompts, then polls every
  ``interval_s`` (``cancelled`` is not terminal, as in the official SDK) until completed or
  failed, ``max_attempts`` polls or ``timeout_s``; any HTTP error, a timeout or a failed job
  re-prompts blindly after ``2**i`` seconds.

The naive pattern is a generator of effects (:class:`~bankr_client._core.Send` and
``Sleep``), like the reference client's core, so the in-process runner (async) and the
locustfile (sync, gevent) drive the same code.

Example::

    agent = AgentIdentity(seed=1, index=0, flavour="api-key", now=clock.now)
    client = reference_client(policy, agent, transport=transport, base_url=url, clock=clock)
    await run_task(policy, agent, "price of ETH", transport=transport, client=client,
                   base_url=url, clock=clock)
"""

from __future__ import annotations

import contextlib
import functools
import json as json_module
import random
from collections.abc import Generator
from typing import Any

import httpx
from bankr_client import (
    ApiKeyAuth,
    AsyncBankrClient,
    BankrClient,
    BankrError,
    PollError,
    RetryPolicy,
    X402Auth,
)
from bankr_client._core import Send, Sleep, parse_url

from mockbankr.experiments.spec import NaivePolicy, Policy, ReferencePolicy

__all__ = [
    "AgentIdentity",
    "naive_task",
    "reference_client",
    "retry_policy",
    "run_task",
    "run_task_sync",
    "send_direct",
]

Auth = ApiKeyAuth | X402Auth
NaiveOp = Generator[Send | Sleep, httpx.Response | httpx.RequestError | None, str]


class AgentIdentity:
    """One agent's credentials: its own API key or its own wallet, derived from the seed.

    Example::

        agent = AgentIdentity(seed=1, index=17, flavour="x402", now=clock.now)
    """

    def __init__(self, *, seed: int, index: int, flavour: str, now: Any = None) -> None:
        self.index = index
        rng = random.Random(f"{seed}:{index}")
        self.rng = rng
        self.auth: Auth
        if flavour == "x402":
            key = "0x" + rng.getrandbits(256).to_bytes(32, "big").hex()
            nonces = random.Random(f"nonce:{seed}:{index}")
            self.auth = X402Auth(
                key, now=now, nonce=lambda: nonces.getrandbits(256).to_bytes(32, "big")
            )
        else:
            self.auth = ApiKeyAuth(f"bk_exp_{seed % 10**6}_{index}")


def _send(method: str, url: str, headers: dict[str, str], timeout: float, json: Any = None) -> Send:
    """The request httpx builds from ``json=``, built as the reference client builds it (a
    remembered URL, the body's headers given): a fleet sends thousands."""
    parsed = parse_url(url)
    fields = {"Host": parsed.netloc.decode("ascii"), **headers}
    body = b""
    if json is not None:
        body = json_module.dumps(
            json, ensure_ascii=False, separators=(",", ":"), allow_nan=False
        ).encode("utf-8")
        fields["Content-Length"] = str(len(body))
        fields["Content-Type"] = "application/json"
    elif method == "POST":
        fields["Content-Length"] = "0"
    request = httpx.Request(
        method,
        parsed,
        headers=fields,
        stream=httpx.ByteStream(body),
        extensions={"timeout": httpx.Timeout(timeout).as_dict()},
    )
    request.read()
    return Send(request)


async def send_direct(
    transport: httpx.AsyncBaseTransport, request: httpx.Request
) -> httpx.Response:
    """``request`` through ``transport``, its body read: ``httpx.AsyncClient.send`` without
    the auth, redirect, cookie and hook machinery the naive pattern does not use (a sixth of
    a fleet's CPU in-process)."""
    try:
        response = await transport.handle_async_request(request)
    except httpx.RequestError as exc:
        exc.request = request
        raise
    response.request = request
    try:
        await response.aread()
    except BaseException:
        await response.aclose()
        raise
    return response


class _Refused(Exception):
    """An answer the naive pattern treats as a failed attempt."""


def _naive_prompt_and_wait(
    policy: NaivePolicy, auth: Auth, base_url: str, prompt: str, now: Any
) -> NaiveOp:
    timeout = policy.timeout_s
    body = auth.prompt_body(prompt, None)
    url = base_url + auth.prompt_path
    reply = yield _send("POST", url, auth.prompt_headers(), timeout, body)
    if (
        isinstance(reply, httpx.Response)
        and reply.status_code == 402
        and isinstance(auth, X402Auth)
    ):
        reply.read()
        payment = auth.pay(reply.json(), now=now())
        headers = {**auth.prompt_headers(), "X-PAYMENT": payment}
        reply = yield _send("POST", url, headers, timeout, body)
    if not isinstance(reply, httpx.Response) or not reply.is_success:
        raise _Refused
    reply.read()
    job_id = reply.json().get("jobId")
    if not isinstance(job_id, str):
        raise _Refused
    started = now()
    for _ in range(policy.max_attempts):
        if now() - started >= timeout:
            break
        reply = yield _send(
            "GET",
            base_url + auth.job_path(job_id),
            auth.job_headers(job_id, cancel=False),
            timeout,
        )
        if not isinstance(reply, httpx.Response) or not reply.is_success:
            raise _Refused
        reply.read()
        status = reply.json().get("status")
        if status in ("completed", "failed"):  # the SDK: "cancelled" is not terminal
            return str(status)
        yield Sleep(policy.interval_s)
    raise _Refused


def naive_task(policy: NaivePolicy, auth: Auth, base_url: str, prompt: str, now: Any) -> NaiveOp:
    """The seed's ``withRetry(prompt)`` as effects; returns ``"completed"`` or ``"gave up"``."""
    for i in range(policy.retries):
        try:
            status = yield from _naive_prompt_and_wait(policy, auth, base_url, prompt, now)
            if status == "completed":
                return status
        except (_Refused, ValueError):
            pass  # the seed's pattern re-prompts whatever went wrong
        yield Sleep(2.0**i)
    return "gave up"


def reference_client(
    policy: ReferencePolicy,
    agent: AgentIdentity,
    *,
    transport: httpx.AsyncBaseTransport,
    base_url: str,
    clock: Any,
) -> AsyncBankrClient:
    """The agent's reference client on a shared ``transport`` (never closed by it)."""
    return AsyncBankrClient(
        base_url,
        auth=agent.auth,
        timeout=policy.request_timeout_s,
        retry=retry_policy(policy),
        transport=transport,
        clock=clock,
        rng=agent.rng,
    )


@functools.lru_cache(maxsize=64)
def retry_policy(policy: ReferencePolicy) -> RetryPolicy:
    """The policy's :class:`~bankr_client.RetryPolicy` (one per policy, shared: both frozen)."""
    return RetryPolicy(
        max_retries=policy.retries,
        backoff_base=policy.backoff_base_s,
        backoff_max=policy.backoff_max_s,
        jitter=policy.jitter,
    )


async def _drive_async(op: NaiveOp, transport: httpx.AsyncBaseTransport, clock: Any) -> str:
    reply: httpx.Response | httpx.RequestError | None = None
    try:
        effect = next(op)
        while True:
            reply = None
            if isinstance(effect, Send):
                try:
                    reply = await send_direct(transport, effect.request)
                except httpx.RequestError as exc:
                    reply = exc
            else:
                await clock.sleep(effect.seconds)
            effect = op.send(reply)
    except StopIteration as stop:
        return str(stop.value)


def _drive_sync(op: NaiveOp, http: httpx.Client, clock: Any) -> str:
    try:
        effect = next(op)
        while True:
            reply: httpx.Response | httpx.RequestError | None = None
            if isinstance(effect, Send):
                try:
                    reply = http.send(effect.request)
                except httpx.RequestError as exc:
                    reply = exc
            else:
                clock.sleep_sync(effect.seconds)
            effect = op.send(reply)
    except StopIteration as stop:
        return str(stop.value)


async def run_task(
    policy: Policy,
    agent: AgentIdentity,
    prompt: str,
    *,
    transport: httpx.AsyncBaseTransport,
    client: AsyncBankrClient | None,
    base_url: str,
    clock: Any,
) -> None:
    """One task of one agent, on an asyncio loop (in-process or live).

    ``client`` is the agent's reference client (see :func:`reference_client`), for a
    reference policy; the naive pattern sends its requests through ``transport``.
    """
    if isinstance(policy, NaivePolicy):
        op = naive_task(policy, agent.auth, base_url, prompt, clock.now)
        await _drive_async(op, transport, clock)
        return
    assert client is not None
    try:
        await client.prompt_and_wait(
            prompt,
            interval=policy.interval_s,
            max_attempts=policy.max_attempts,
            timeout=policy.timeout_s,
        )
    except PollError as exc:
        if policy.cancel_on_timeout and exc.job_id is not None:
            with contextlib.suppress(BankrError):
                await client.cancel_job(exc.job_id)
    except BankrError:
        pass


def run_task_sync(
    policy: Policy,
    agent: AgentIdentity,
    prompt: str,
    *,
    transport: httpx.BaseTransport,
    base_url: str,
    clock: Any,
) -> None:
    """The same task, blocking (for Locust's gevent users), over ``transport``."""
    if isinstance(policy, NaivePolicy):
        with httpx.Client(transport=transport) as http:
            op = naive_task(policy, agent.auth, base_url, prompt, clock.now)
            _drive_sync(op, http, clock)
        return
    client = BankrClient(
        base_url,
        auth=agent.auth,
        timeout=policy.request_timeout_s,
        retry=retry_policy(policy),
        transport=transport,
        clock=clock,
        rng=agent.rng,
    )
    try:
        client.prompt_and_wait(
            prompt,
            interval=policy.interval_s,
            max_attempts=policy.max_attempts,
            timeout=policy.timeout_s,
        )
    except PollError as exc:
        if policy.cancel_on_timeout and exc.job_id is not None:
            with contextlib.suppress(BankrError):
                client.cancel_job(exc.job_id)
    except BankrError:
        pass
