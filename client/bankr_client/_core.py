"""The I/O-free core both clients share: settings, request building, and every operation.

Each operation is a generator (a "sans-I/O" coroutine). It never touches the network or
sleeps; it *yields* what it needs done -- :class:`Send` a request, or :class:`Sleep` -- and
is resumed with the outcome: an ``httpx.Response`` or the ``httpx.RequestError`` raised while
sending (for :class:`Send`), ``None`` (for :class:`Sleep`). Its return value is the result.
:class:`~bankr_client.BankrClient` and :class:`~bankr_client.AsyncBankrClient` differ only in
how they carry these effects out (blocking vs ``await``), so no logic exists twice.
"""

from __future__ import annotations

import functools
import json as json_module
import math
import os
import random
import time
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from bankr_client._poll import Deadline, Poller
from bankr_client._version import __version__
from bankr_client._wire import (
    error_from_response,
    parse_job_response,
    parse_prompt_response,
    transport_error,
)
from bankr_client.auth import ApiKeyAuth, Auth, X402Auth
from bankr_client.clock import Clock, SystemClock
from bankr_client.errors import (
    APIError,
    BankrError,
    ConfigError,
    JobCancelledError,
    JobFailedError,
    ProtocolError,
    TransportError,
)
from bankr_client.models import (
    JobStatus,
    JobStatusName,
    PromptResponse,
    RetryAttempt,
    RetryResult,
)
from bankr_client.retry import RetryPolicy

__all__ = [
    "DEFAULT_BASE_URL",
    "Core",
    "Effect",
    "Op",
    "Reply",
    "Send",
    "Settings",
    "Sleep",
    "StatusCallback",
    "configure",
    "validate_wait",
]

T = TypeVar("T")

DEFAULT_BASE_URL = "https://api.bankr.bot"


@dataclass(frozen=True)
class Send:
    """Send ``request``; resume with the response or the ``httpx.RequestError`` raised."""

    request: httpx.Request


@dataclass(frozen=True)
class Sleep:
    """Sleep ``seconds`` on the client's clock; resume with ``None``."""

    seconds: float


Effect = Send | Sleep
Reply = httpx.Response | httpx.RequestError | None
Op = Generator[Effect, Reply, T]
StatusCallback = Callable[[JobStatus], object]


@dataclass(frozen=True)
class Settings:
    """Everything a client was configured with, validated (see :func:`configure`)."""

    base_url: str
    auth: Auth
    timeout: float
    retry: RetryPolicy
    clock: Clock
    rng: random.Random
    #: Unix seconds for x402 validity windows (see X402Auth).
    unix_now: Callable[[], float]


def _positive(name: str, value: float, *, allow_zero: bool = False) -> float:
    ok = (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and (value >= 0 if allow_zero else value > 0)
    )
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise ConfigError(f"{name} must be a finite number {bound}, got {value!r}")
    return float(value)


def configure(
    base_url: str | None,
    api_key: str | None,
    *,
    auth: Auth | None,
    timeout: float,
    retry: RetryPolicy,
    clock: Clock | None,
    rng: random.Random | None,
) -> Settings:
    """Validate a client's arguments, filling defaults from ``BANKR_API_URL``/``BANKR_API_KEY``."""
    url = base_url if base_url is not None else os.environ.get("BANKR_API_URL") or DEFAULT_BASE_URL
    try:
        parsed = parse_url(url) if isinstance(url, str) else httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise ConfigError(f"base_url is not a URL: {url!r}") from exc
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ConfigError(f"base_url must be an absolute http(s) URL, got {url!r}")
    if auth is not None and api_key is not None:
        raise ConfigError("pass either api_key or auth, not both")
    if auth is None:
        key = api_key if api_key is not None else os.environ.get("BANKR_API_KEY")
        if not key:
            raise ConfigError("no credentials: pass api_key=, set BANKR_API_KEY, or pass auth=")
        auth = ApiKeyAuth(key)
    elif not isinstance(auth, ApiKeyAuth | X402Auth):
        raise ConfigError(f"auth must be an ApiKeyAuth or X402Auth, got {auth!r}")
    if not isinstance(retry, RetryPolicy):
        raise ConfigError(f"retry must be a RetryPolicy, got {retry!r}")
    if clock is not None and not (_clock_class(type(clock)) or isinstance(clock, Clock)):
        raise ConfigError(f"clock must have now(), sleep() and sleep_sync(), got {clock!r}")
    unix_now: Callable[[], float] = time.time
    if isinstance(auth, X402Auth) and auth.now is not None:
        unix_now = auth.now
    elif clock is not None and not isinstance(clock, SystemClock):
        # An injected clock is taken to count unix seconds, as every simulator clock does.
        unix_now = clock.now
    return Settings(
        base_url=url.rstrip("/"),
        auth=auth,
        timeout=_positive("timeout", timeout),
        retry=retry,
        clock=clock if clock is not None else SystemClock(),
        rng=rng if rng is not None else random.Random(),
        unix_now=unix_now,
    )


@functools.lru_cache(maxsize=64)
def _clock_class(kind: type) -> bool:
    """Whether every instance of ``kind`` is a :class:`Clock` (its methods are the class's).

    A protocol ``isinstance`` check looks every member up again each time (6 us: a fleet of
    a thousand agents makes a thousand clients on the same clock).
    """
    return issubclass(kind, Clock)


@functools.lru_cache(maxsize=4096)
def parse_url(url: str) -> httpx.URL:
    """``httpx.URL(url)``, remembered: parsing is most of what building a request costs.

    An ``httpx.URL`` is immutable, so one parsed URL serves every request to it (a job's
    polls, every agent's prompts); the cache is bounded, so unbounded job ids cannot grow it.
    """
    return httpx.URL(url)


def validate_wait(interval: float, max_attempts: int, timeout: float) -> None:
    """Reject nonsense polling arguments before any request is sent."""
    _positive("interval", interval, allow_zero=True)
    _positive("timeout", timeout)
    if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1:
        raise ConfigError(f"max_attempts must be an int >= 1, got {max_attempts!r}")


def _accept(reply: Reply, passthrough: frozenset[int] = frozenset()) -> httpx.Response:
    """The response of a successful exchange, or the error it amounts to."""
    if isinstance(reply, httpx.RequestError):
        raise transport_error(reply) from reply
    assert isinstance(reply, httpx.Response), "a Send must be answered with a response"
    if reply.is_success or reply.status_code in passthrough:
        return reply
    raise error_from_response(reply)


def _sent(error: BankrError) -> bool:
    return error.sent if isinstance(error, TransportError) else True


class Core:
    """The operations of a client, as generators of effects (see the module docstring)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._headers = {
            # What httpx would add itself, given here so it need not look for it each time.
            "Host": parse_url(settings.base_url).netloc.decode("ascii"),
            "User-Agent": f"bankr-client-python/{__version__}",
            "Accept": "application/json",
        }

    # -- requests -------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str],
        timeout: float,
        json: Any = None,
    ) -> httpx.Request:
        # The request httpx would build from json=, built directly: with the body's headers
        # given and its stream read, httpx skips its header bookkeeping (half of the cost).
        fields = {**self._headers, **headers}
        body = b""
        if json is not None:
            body = json_module.dumps(
                json, ensure_ascii=False, separators=(",", ":"), allow_nan=False
            ).encode("utf-8")
            fields["Content-Length"] = str(len(body))
            fields["Content-Type"] = "application/json"
        elif method in ("POST", "PUT", "PATCH"):
            fields["Content-Length"] = "0"
        request = httpx.Request(
            method,
            parse_url(self.settings.base_url + path),
            headers=fields,
            stream=httpx.ByteStream(body),
            extensions={"timeout": httpx.Timeout(timeout).as_dict()},
        )
        request.read()
        return request

    def _timeout(self, deadline: Deadline | None) -> float | None:
        """The next request's timeout, capped by the time left; ``None`` when none is left."""
        if deadline is None:
            return self.settings.timeout
        remaining = deadline.remaining(self.settings.clock.now())
        return min(self.settings.timeout, remaining) if remaining > 0 else None

    def _exchange(
        self,
        build: Callable[[float], httpx.Request],
        *,
        is_read: bool,
        deadline: Deadline | None,
        passthrough: frozenset[int] = frozenset(),
    ) -> Op[httpx.Response]:
        """Send a request, retrying as the policy says; any deadline caps timeouts and waits."""
        attempt = 0
        last: BankrError | None = None
        while True:
            timeout = self._timeout(deadline)
            if timeout is None:
                assert deadline is not None
                raise deadline.expired(job_id=None, last_status=None) from last
            reply = yield Send(build(timeout))
            try:
                return _accept(reply, passthrough)
            except (APIError, TransportError) as error:
                remaining = (
                    None if deadline is None else deadline.remaining(self.settings.clock.now())
                )
                delay = self.settings.retry.decide(
                    attempt,
                    error,
                    is_read=is_read,
                    sent=_sent(error),
                    remaining=remaining,
                    rng=self.settings.rng,
                )
                if delay is None:
                    raise
                last = error
            attempt += 1
            yield Sleep(delay)

    # -- operations -----------------------------------------------------------------------

    def prompt(
        self, prompt: str, thread_id: str | None, deadline: Deadline | None = None
    ) -> Op[PromptResponse]:
        """Submit a prompt; with :class:`X402Auth`, pay a 402 challenge once."""
        auth = self.settings.auth
        body = auth.prompt_body(prompt, thread_id)
        headers = auth.prompt_headers()

        def build(timeout: float, payment: str | None = None) -> httpx.Request:
            extra = {**headers, "X-PAYMENT": payment} if payment else headers
            return self._request("POST", auth.prompt_path, extra, timeout, json=body)

        pays = isinstance(auth, X402Auth)
        response = yield from self._exchange(
            build, is_read=False, deadline=deadline, passthrough=frozenset({402} if pays else ())
        )
        if response.status_code == 402:
            assert isinstance(auth, X402Auth)
            try:
                challenge = response.json()
            except ValueError:
                raise error_from_response(response) from None
            if not isinstance(challenge, Mapping):
                raise error_from_response(response)
            payment = auth.pay(challenge, now=self.settings.unix_now())
            # The paid resend carries the *same* signed authorization on every try: its nonce
            # is single-use, so no resend can ever be charged twice. A 402 now is final.
            response = yield from self._exchange(
                lambda timeout: build(timeout, payment), is_read=False, deadline=deadline
            )
        return parse_prompt_response(response)

    def get_job_status(self, job_id: str) -> Op[JobStatus]:
        """One status read (retried on 429/5xx/transport errors)."""
        response = yield from self._exchange(
            lambda timeout: self._job_request(job_id, timeout), is_read=True, deadline=None
        )
        return parse_job_response(response)

    def _job_request(self, job_id: str, timeout: float) -> httpx.Request:
        auth = self.settings.auth
        headers = auth.job_headers(job_id, cancel=False)
        return self._request("GET", auth.job_path(job_id), headers, timeout)

    def cancel_job(self, job_id: str) -> Op[JobStatus]:
        """Cancel a job; the 200 body is returned whatever its status."""
        auth = self.settings.auth
        headers = auth.job_headers(job_id, cancel=True)
        response = yield from self._exchange(
            lambda timeout: self._request("POST", auth.cancel_path(job_id), headers, timeout),
            is_read=True,
            deadline=None,
        )
        return parse_job_response(response)

    def poll_job(
        self,
        job_id: str,
        *,
        interval: float,
        max_attempts: int,
        timeout: float,
        on_status: StatusCallback | None,
        deadline: Deadline | None = None,
    ) -> Op[JobStatus]:
        """Poll until a terminal status, within ``max_attempts`` requests and the deadline."""
        validate_wait(interval, max_attempts, timeout)
        clock = self.settings.clock
        if deadline is None:
            deadline = Deadline(clock.now() + timeout, timeout)
        poller = Poller(
            job_id,
            interval=interval,
            max_attempts=max_attempts,
            deadline=deadline,
            policy=self.settings.retry,
            rng=self.settings.rng,
        )
        while True:
            request_timeout = poller.before_request(clock.now(), self.settings.timeout)
            reply = yield Send(self._job_request(job_id, request_timeout))
            try:
                status = parse_job_response(_accept(reply))
            except (APIError, TransportError, ProtocolError) as error:
                delay = poller.after_error(error, clock.now())
            else:
                if on_status is not None:
                    on_status(status)
                wait = poller.after_status(status, clock.now())
                if wait is None:
                    return status
                delay = wait
            yield Sleep(delay)

    def prompt_and_wait(
        self,
        prompt: str,
        *,
        thread_id: str | None,
        interval: float,
        max_attempts: int,
        timeout: float,
        on_status: StatusCallback | None,
        raise_on_failure: bool,
    ) -> Op[JobStatus]:
        """Prompt, then poll; ``timeout`` is one deadline for both."""
        validate_wait(interval, max_attempts, timeout)
        deadline = Deadline(self.settings.clock.now() + timeout, timeout)
        accepted = yield from self.prompt(prompt, thread_id, deadline)
        status = yield from self.poll_job(
            accepted.job_id,
            interval=interval,
            max_attempts=max_attempts,
            timeout=timeout,
            on_status=on_status,
            deadline=deadline,
        )
        if raise_on_failure and status.status is JobStatusName.FAILED:
            raise JobFailedError(status)
        if raise_on_failure and status.status is JobStatusName.CANCELLED:
            raise JobCancelledError(status)
        return status

    def with_retry(
        self,
        prompt: str,
        *,
        thread_id: str | None,
        max_retries: int,
        backoff: RetryPolicy | None,
        interval: float,
        max_attempts: int,
        timeout: float,
        on_status: StatusCallback | None,
    ) -> Op[RetryResult]:
        """Re-prompt while the job ends failed or cancelled (see the clients' docstrings)."""
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ConfigError(f"max_retries must be an int >= 0, got {max_retries!r}")
        validate_wait(interval, max_attempts, timeout)
        policy = backoff if backoff is not None else self.settings.retry
        attempts: list[RetryAttempt] = []
        final: JobStatus | None = None
        paid = 0
        for number in range(max_retries + 1):
            delay = 0.0 if number == 0 else policy.backoff(number - 1, self.settings.rng)
            if number:
                yield Sleep(delay)
            job_id: str | None = None
            deadline = Deadline(self.settings.clock.now() + timeout, timeout)
            try:
                accepted = yield from self.prompt(prompt, thread_id, deadline)
                job_id = accepted.job_id
                paid += 1
                status = yield from self.poll_job(
                    job_id,
                    interval=interval,
                    max_attempts=max_attempts,
                    timeout=timeout,
                    on_status=on_status,
                    deadline=deadline,
                )
            except BankrError as error:
                # The job (if any) may still be running: re-prompting could pay for (and run)
                # it twice, so an error ends the retries.
                attempts.append(RetryAttempt(number, delay, job_id, None, error))
                return RetryResult(final, tuple(attempts), paid, error)
            attempts.append(RetryAttempt(number, delay, job_id, status, None))
            final = status
            if status.status is JobStatusName.COMPLETED:
                break
        return RetryResult(final, tuple(attempts), paid, None)
