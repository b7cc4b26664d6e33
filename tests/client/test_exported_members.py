"""The public surface of bankr_client is deliberate: pinned here."""

from __future__ import annotations

import bankr_client

EXPECTED = [
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


def test_exported_members_are_pinned():
    assert bankr_client.__all__ == EXPECTED


def test_all_is_sorted_and_every_name_resolves():
    assert bankr_client.__all__ == sorted(bankr_client.__all__)
    for name in bankr_client.__all__:
        assert getattr(bankr_client, name) is not None


def test_public_objects_are_documented_with_an_example():
    for name in bankr_client.__all__:
        obj = getattr(bankr_client, name)
        if isinstance(obj, type) and obj.__module__.startswith("bankr_client"):
            assert obj.__doc__, name
            assert "Example::" in obj.__doc__, name
