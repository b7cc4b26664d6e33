"""The blocking shell: runs the core's operations on an ``httpx.Client``.

``prompt_many`` is concurrent by nature, so the sync client runs it on asyncio: it builds an
:class:`AsyncBankrClient` "twin" from its own validated settings (same base URL, auth, timeout,
retry policy, clock and random generator) and runs the twin's ``prompt_many`` to completion.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import random
from collections.abc import Callable, Coroutine, Iterable
from types import TracebackType
from typing import Any, TypeVar

import httpx

from bankr_client._async_client import AsyncBankrClient
from bankr_client._core import Core, Op, Reply, Send, StatusCallback, configure
from bankr_client._poll import DEFAULT_INTERVAL, DEFAULT_MAX_ATTEMPTS, DEFAULT_TIMEOUT
from bankr_client.auth import Auth
from bankr_client.clock import Clock
from bankr_client.models import BatchItem, JobStatus, PromptResponse, RetryResult
from bankr_client.retry import RetryPolicy

__all__ = ["BankrClient"]

T = TypeVar("T")


def _run_blocking(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from sync code, even when a loop is already running
    in this thread (then on a fresh loop in a worker thread, while this thread waits)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(main())
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="bankr-batch") as pool:
        return pool.submit(lambda: asyncio.run(main())).result()


class BankrClient:
    """The blocking client for the Bankr agent API.

    ``base_url`` defaults to ``$BANKR_API_URL``, else ``https://api.bankr.bot``; ``api_key`` to
    ``$BANKR_API_KEY``. Pass ``auth=X402Auth(...)`` instead to pay per prompt on ``/v2/*``.
    ``timeout`` caps each request (seconds), ``retry`` says which failures are retried and how
    patiently, ``clock`` and ``rng`` inject time and randomness (defaults: the system clock and
    a fresh ``random.Random``). ``transport`` is an ``httpx.BaseTransport`` for this client;
    ``async_transport`` the ``httpx.AsyncBaseTransport`` of the asyncio twin that runs
    :meth:`prompt_many` (default: ``transport`` itself when it is also async-capable, as
    ``httpx.MockTransport`` is, else a fresh default transport per batch). The client never
    closes ``async_transport``: it is borrowed.

    Example::

        with BankrClient(api_key="bk_...") as client:
            job = client.prompt_and_wait("what is the price of ETH?")
            print(job.status, job.response)
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        auth: Auth | None = None,
        timeout: float = 30.0,
        retry: RetryPolicy = RetryPolicy(),  # noqa: B008 -- frozen, so sharing is safe
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._settings = configure(
            base_url, api_key, auth=auth, timeout=timeout, retry=retry, clock=clock, rng=rng
        )
        self._core = Core(self._settings)
        self._http = httpx.Client(transport=transport)
        if async_transport is None and isinstance(transport, httpx.AsyncBaseTransport):
            async_transport = transport
        self._async_transport = async_transport

    @property
    def base_url(self) -> str:
        """The API root every path is appended to."""
        return self._settings.base_url

    def __enter__(self) -> BankrClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool and ``transport``."""
        self._http.close()

    def _run(self, op: Op[T]) -> T:
        """Carry out an operation's effects: the only place this client does I/O."""
        try:
            effect = next(op)
            while True:
                reply: Reply = None
                if isinstance(effect, Send):
                    try:
                        reply = self._http.send(effect.request)
                    except httpx.RequestError as exc:
                        reply = exc
                else:
                    self._settings.clock.sleep_sync(effect.seconds)
                effect = op.send(reply)
        except StopIteration as stop:
            result: T = stop.value
            return result
        finally:
            op.close()

    def prompt(self, prompt: str, *, thread_id: str | None = None) -> PromptResponse:
        """Submit a prompt and return at once with its job id.

        API key: ``POST /agent/prompt`` with ``{"prompt", "threadId"?}``. x402: ``POST
        /v2/prompt``, paying one 402 challenge. A prompt is resent only when it provably was
        not accepted (connection never made, 429, 503): an accepted prompt is a paid job.

        Example::

            accepted = client.prompt("what is the price of ETH?", thread_id="thr_123")
            print(accepted.job_id, accepted.thread_id)
        """
        return self._run(self._core.prompt(prompt, thread_id))

    def get_job_status(self, job_id: str) -> JobStatus:
        """Read a job's status once (``GET /agent/job/{id}`` or ``/v2/job/{id}``).

        Retried on 429, 5xx and transport errors; an HTTP error is raised as an
        :class:`~bankr_client.errors.APIError`, never returned as a status.

        Example::

            job = client.get_job_status("job_abc123")
            if job.is_terminal: print(job.response or job.error)
        """
        return self._run(self._core.get_job_status(job_id))

    def cancel_job(self, job_id: str) -> JobStatus:
        """Ask to cancel a job (``POST .../job/{id}/cancel``) and return the answer's status.

        A 200 whose status is not ``cancelled`` (the job had already finished) is returned as
        it is; a 400 such as "Job already completed" raises ``BadRequestError``.

        Example::

            job = client.cancel_job("job_abc123")
            print(job.status)  # JobStatusName.CANCELLED, or the status it already had
        """
        return self._run(self._core.cancel_job(job_id))

    def poll_job(
        self,
        job_id: str,
        *,
        interval: float = DEFAULT_INTERVAL,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        timeout: float = DEFAULT_TIMEOUT,
        on_status: StatusCallback | None = None,
    ) -> JobStatus:
        """Poll a job every ``interval`` s until completed, failed **or cancelled**.

        ``timeout`` is a deadline on the client's clock: no sleep runs past it, each request's
        timeout is capped by the time left, and ``PollTimeoutError`` is raised at the latest
        one request after it. ``max_attempts`` counts status requests, retries included
        (``PollAttemptsExceededError``). ``on_status`` is called with every status read.
        Failed and cancelled jobs are returned, not raised.

        Example::

            job = client.poll_job("job_abc123", interval=1.0, timeout=60,
                                  on_status=lambda s: print(s.status))
        """
        return self._run(
            self._core.poll_job(
                job_id,
                interval=interval,
                max_attempts=max_attempts,
                timeout=timeout,
                on_status=on_status,
            )
        )

    def prompt_and_wait(
        self,
        prompt: str,
        *,
        thread_id: str | None = None,
        interval: float = DEFAULT_INTERVAL,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        timeout: float = DEFAULT_TIMEOUT,
        on_status: StatusCallback | None = None,
        raise_on_failure: bool = False,
    ) -> JobStatus:
        """:meth:`prompt`, then :meth:`poll_job`; ``timeout`` is one deadline for both.

        With ``raise_on_failure`` a failed job raises ``JobFailedError`` and a cancelled one
        ``JobCancelledError`` (both carry the final status); otherwise they are returned.

        Example::

            job = client.prompt_and_wait("swap 10 USDC to ETH", timeout=120,
                                         raise_on_failure=True)
        """
        return self._run(
            self._core.prompt_and_wait(
                prompt,
                thread_id=thread_id,
                interval=interval,
                max_attempts=max_attempts,
                timeout=timeout,
                on_status=on_status,
                raise_on_failure=raise_on_failure,
            )
        )

    def with_retry(
        self,
        prompt: str,
        *,
        thread_id: str | None = None,
        max_retries: int = 3,
        backoff: RetryPolicy | None = None,
        interval: float = DEFAULT_INTERVAL,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        timeout: float = DEFAULT_TIMEOUT,
        on_status: StatusCallback | None = None,
    ) -> RetryResult:
        """Re-prompt while the job ends ``failed`` or ``cancelled``, at most ``max_retries``
        times, sleeping ``backoff.backoff(n)`` before retry ``n + 1`` (default: the client's
        retry policy, i.e. 1 s, 2 s, 4 s with equal jitter: [0.5, 1], [1, 2], [2, 4]).

        Every new prompt is one more paid job, counted in ``RetryResult.paid_jobs``. An error
        (a poll timeout, a rejected prompt...) ends the retries at once and is reported in
        ``RetryResult.error``: the job may still be running, and prompting again could run
        and pay for it twice. ``timeout`` is the deadline of each attempt.

        Example::

            result = client.with_retry("swap 10 USDC to ETH", max_retries=3)
            print(result.succeeded, result.paid_jobs, [a.status for a in result.attempts])
        """
        return self._run(
            self._core.with_retry(
                prompt,
                thread_id=thread_id,
                max_retries=max_retries,
                backoff=backoff,
                interval=interval,
                max_attempts=max_attempts,
                timeout=timeout,
                on_status=on_status,
            )
        )

    def prompt_many(
        self,
        prompts: Iterable[str],
        *,
        concurrency: int = 8,
        interval: float = DEFAULT_INTERVAL,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        timeout: float = DEFAULT_TIMEOUT,
        on_status: StatusCallback | None = None,
        raise_on_failure: bool = False,
    ) -> list[BatchItem]:
        """:meth:`prompt_and_wait` for each prompt, at most ``concurrency`` at a time.

        Runs on asyncio through an :class:`AsyncBankrClient` twin with the same settings and
        ``async_transport`` (see the class docstring), so a virtual clock drives every job in
        one event loop. Items come back in input order, each with ``.result`` or ``.error``.

        Example::

            for item in client.prompt_many(["price of ETH", "price of BTC"], concurrency=2):
                print(item.prompt, item.result.response if item.ok else item.error)
        """
        todo = list(prompts)

        async def main() -> list[BatchItem]:
            twin = AsyncBankrClient._twin(self._settings, self._async_transport)
            async with twin:
                return await twin.prompt_many(
                    todo,
                    concurrency=concurrency,
                    interval=interval,
                    max_attempts=max_attempts,
                    timeout=timeout,
                    on_status=on_status,
                    raise_on_failure=raise_on_failure,
                )

        return _run_blocking(main)
