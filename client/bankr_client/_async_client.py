"""The asyncio shell: runs the core's operations with ``await`` on an ``httpx.AsyncClient``."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterable
from types import TracebackType
from typing import TypeVar

import httpx

from bankr_client._core import (
    Core,
    Op,
    Reply,
    Send,
    Settings,
    StatusCallback,
    configure,
    validate_wait,
)
from bankr_client._poll import DEFAULT_INTERVAL, DEFAULT_MAX_ATTEMPTS, DEFAULT_TIMEOUT
from bankr_client._pool import pooled_transport
from bankr_client.auth import Auth
from bankr_client.clock import Clock
from bankr_client.errors import ConfigError
from bankr_client.models import BatchItem, JobStatus, PromptResponse, RetryResult
from bankr_client.retry import RetryPolicy

__all__ = ["AsyncBankrClient"]

T = TypeVar("T")


class AsyncBankrClient:
    """The asyncio client for the Bankr agent API. Same API as :class:`BankrClient`, awaited.

    ``transport`` is an ``httpx.AsyncBaseTransport`` (for tests: ``httpx.MockTransport`` or
    the simulator's in-process transport). Everything else is as for :class:`BankrClient`.

    Example::

        async with AsyncBankrClient(api_key="bk_...") as client:
            job = await client.prompt_and_wait("what is the price of ETH?")
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
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        settings = configure(
            base_url, api_key, auth=auth, timeout=timeout, retry=retry, clock=clock, rng=rng
        )
        self._setup(settings, transport, owns_transport=True)

    def _setup(
        self,
        settings: Settings,
        transport: httpx.AsyncBaseTransport | None,
        *,
        owns_transport: bool,
    ) -> None:
        self._settings = settings
        self._core = Core(settings)
        # No transport given: a pool that stays cheap with many requests in flight.
        self._transport = transport if transport is not None else pooled_transport()
        self._owns_transport = owns_transport

    @classmethod
    def _twin(
        cls, settings: Settings, transport: httpx.AsyncBaseTransport | None
    ) -> AsyncBankrClient:
        """A client on the same settings; a borrowed ``transport`` is never closed by it."""
        twin = cls.__new__(cls)
        twin._setup(settings, transport, owns_transport=transport is None)
        return twin

    @property
    def base_url(self) -> str:
        """The API root every path is appended to."""
        return self._settings.base_url

    async def __aenter__(self) -> AsyncBankrClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool (and the transport, unless it was borrowed)."""
        if self._owns_transport:
            await self._transport.aclose()

    async def _send(self, request: httpx.Request) -> httpx.Response:
        """``request`` through the transport, its body read.

        What ``httpx.AsyncClient.send`` does for a client with an explicit transport and
        no auth, redirects, cookies or hooks (this one uses none of them), at a fifth of its
        CPU: with a thousand agents on one machine, that is what the client costs.
        """
        try:
            response = await self._transport.handle_async_request(request)
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

    async def _run(self, op: Op[T]) -> T:
        """Carry out an operation's effects: the only place this client does I/O."""
        try:
            effect = next(op)
            while True:
                reply: Reply = None
                if isinstance(effect, Send):
                    try:
                        reply = await self._send(effect.request)
                    except httpx.RequestError as exc:
                        reply = exc
                else:
                    await self._settings.clock.sleep(effect.seconds)
                effect = op.send(reply)
        except StopIteration as stop:
            result: T = stop.value
            return result
        finally:
            op.close()

    async def prompt(self, prompt: str, *, thread_id: str | None = None) -> PromptResponse:
        """Submit a prompt (retried only when provably not accepted). See BankrClient.prompt.

        Example::

            accepted = await client.prompt("what is the price of ETH?")
        """
        return await self._run(self._core.prompt(prompt, thread_id))

    async def get_job_status(self, job_id: str) -> JobStatus:
        """Read a job's status once. See :meth:`BankrClient.get_job_status`.

        Example::

            job = await client.get_job_status("job_abc123")
        """
        return await self._run(self._core.get_job_status(job_id))

    async def cancel_job(self, job_id: str) -> JobStatus:
        """Ask to cancel a job. See :meth:`BankrClient.cancel_job`.

        Example::

            job = await client.cancel_job("job_abc123")
        """
        return await self._run(self._core.cancel_job(job_id))

    async def poll_job(
        self,
        job_id: str,
        *,
        interval: float = DEFAULT_INTERVAL,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109 -- a deadline on the injected clock
        on_status: StatusCallback | None = None,
    ) -> JobStatus:
        """Poll until a terminal status. See :meth:`BankrClient.poll_job`.

        Example::

            job = await client.poll_job("job_abc123", timeout=60)
        """
        return await self._run(
            self._core.poll_job(
                job_id,
                interval=interval,
                max_attempts=max_attempts,
                timeout=timeout,
                on_status=on_status,
            )
        )

    async def prompt_and_wait(
        self,
        prompt: str,
        *,
        thread_id: str | None = None,
        interval: float = DEFAULT_INTERVAL,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109 -- a deadline on the injected clock
        on_status: StatusCallback | None = None,
        raise_on_failure: bool = False,
    ) -> JobStatus:
        """Prompt, then poll to a terminal status. See :meth:`BankrClient.prompt_and_wait`.

        Example::

            job = await client.prompt_and_wait("swap 10 USDC to ETH", raise_on_failure=True)
        """
        return await self._run(
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

    async def with_retry(
        self,
        prompt: str,
        *,
        thread_id: str | None = None,
        max_retries: int = 3,
        backoff: RetryPolicy | None = None,
        interval: float = DEFAULT_INTERVAL,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109 -- a deadline on the injected clock
        on_status: StatusCallback | None = None,
    ) -> RetryResult:
        """Re-prompt while the job ends failed or cancelled. See :meth:`BankrClient.with_retry`.

        Example::

            result = await client.with_retry("swap 10 USDC to ETH")
        """
        return await self._run(
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

    async def prompt_many(
        self,
        prompts: Iterable[str],
        *,
        concurrency: int = 8,
        interval: float = DEFAULT_INTERVAL,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109 -- a deadline on the injected clock
        on_status: StatusCallback | None = None,
        raise_on_failure: bool = False,
    ) -> list[BatchItem]:
        """``prompt_and_wait`` for each prompt, at most ``concurrency`` at a time.

        Items come back in input order; each holds its result or its exception, so one failure
        never loses the others. A semaphore around each prompt's whole life keeps at most
        ``concurrency`` jobs, and so at most ``concurrency`` requests, in flight.

        Example::

            items = await client.prompt_many(["price of ETH", "price of BTC"], concurrency=2)
        """
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise ConfigError(f"concurrency must be an int >= 1, got {concurrency!r}")
        validate_wait(interval, max_attempts, timeout)
        todo = list(prompts)
        gate = asyncio.Semaphore(concurrency)

        async def one(prompt: str) -> BatchItem:
            async with gate:
                try:
                    result = await self.prompt_and_wait(
                        prompt,
                        interval=interval,
                        max_attempts=max_attempts,
                        timeout=timeout,
                        on_status=on_status,
                        raise_on_failure=raise_on_failure,
                    )
                except Exception as exc:
                    return BatchItem(prompt, error=exc)
                return BatchItem(prompt, result=result)

        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one(prompt)) for prompt in todo]
        return [task.result() for task in tasks]
