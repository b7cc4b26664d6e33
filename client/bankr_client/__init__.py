"""bankr_client: the reference Python client for the Bankr agent API.

Polling, timeouts and retries done right: every terminal status ends polling, the timeout is a
deadline, an HTTP error is never mistaken for a job status, and a prompt (a paid job) is resent
only when it provably was not accepted. Time and randomness are injectable, so the whole client
runs on the simulator's virtual clock.

Example::

    from bankr_client import BankrClient

    with BankrClient(api_key="bk_...") as client:
        job = client.prompt_and_wait("what is the price of ETH?")
        print(job.status, job.response)
"""

from __future__ import annotations

from bankr_client._async_client import AsyncBankrClient
from bankr_client._client import BankrClient
from bankr_client._pool import GatedTransport, pooled_transport
from bankr_client._version import __version__
from bankr_client.auth import USDC_BASE, ApiKeyAuth, Auth, X402Auth
from bankr_client.clock import Clock, SystemClock
from bankr_client.errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    BankrError,
    ConfigError,
    JobCancelledError,
    JobError,
    JobFailedError,
    NotFoundError,
    PaymentRequiredError,
    PermissionDeniedError,
    PollAttemptsExceededError,
    PollError,
    PollTimeoutError,
    ProtocolError,
    RateLimitError,
    RequestNotSentError,
    RequestTimeoutError,
    ServerError,
    TransportError,
)
from bankr_client.models import (
    BatchItem,
    JobStatus,
    JobStatusName,
    Price,
    PromptResponse,
    RetryAttempt,
    RetryResult,
    StatusUpdate,
)
from bankr_client.retry import RetryPolicy

__all__ = [
    "APIError",
    "ApiKeyAuth",
    "AsyncBankrClient",
    "Auth",
    "AuthenticationError",
    "BadRequestError",
    "BankrClient",
    "BankrError",
    "BatchItem",
    "Clock",
    "ConfigError",
    "GatedTransport",
    "JobCancelledError",
    "JobError",
    "JobFailedError",
    "JobStatus",
    "JobStatusName",
    "NotFoundError",
    "PaymentRequiredError",
    "PermissionDeniedError",
    "PollAttemptsExceededError",
    "PollError",
    "PollTimeoutError",
    "Price",
    "PromptResponse",
    "ProtocolError",
    "RateLimitError",
    "RequestNotSentError",
    "RequestTimeoutError",
    "RetryAttempt",
    "RetryPolicy",
    "RetryResult",
    "ServerError",
    "StatusUpdate",
    "SystemClock",
    "TransportError",
    "USDC_BASE",
    "X402Auth",
    "__version__",
    "pooled_transport",
]
