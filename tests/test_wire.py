"""One table at the edge turns each domain error of the core into its documented wire error."""

from __future__ import annotations

import httpx
import pytest

from mockbankr import wire
from mockbankr.accounts import Denial
from mockbankr.errors import (
    AccessDenied,
    DailyLimitExceeded,
    JobFinished,
    JobIdCollision,
    JobNotFound,
    MockbankrError,
    StoreUnavailable,
    UnknownCategory,
)


@pytest.mark.parametrize(
    ("error", "status", "body"),
    [
        (
            JobNotFound("job_X"),
            404,
            {"error": "Job not found", "message": "No job found with ID job_X"},
        ),
        (
            JobFinished("job_X", "completed", action="cancel"),
            400,
            {
                "error": "Job already completed",
                "message": "Job job_X is already completed and cannot be cancelled",
            },
        ),
        (
            JobFinished("job_X", "failed", action="steer"),
            409,
            {
                "error": "Job already failed",
                "message": "Only a job that has not finished can be steered",
            },
        ),
        (
            JobIdCollision("job_X"),
            500,
            {"error": "Internal server error", "message": "job id collision"},
        ),
        (
            UnknownCategory("teleport", known=("price",)),
            400,
            {
                "error": "Invalid request",
                "message": "Request body must be a JSON object"
                " (unknown category 'teleport' in a job rule)",
            },
        ),
        (
            DailyLimitExceeded("key:a", limit=2, used=2, reset_at=1_764_486_400.0),
            429,
            {
                "error": "Daily limit exceeded",
                "message": "You have reached your daily API limit of 2 messages. Upgrade to"
                " Bankr Club for 1000 messages/day. Resets at 2025-11-30T07:06:40.000Z",
                "resetAt": 1_764_486_400_000,
                "limit": 2,
                "used": 2,
            },
        ),
        (
            DailyLimitExceeded(
                "club", limit=1000, used=1000, reset_at=1_764_486_400.0, upgrade=False
            ),
            429,
            {
                "error": "Daily limit exceeded",
                "message": "You have reached your daily API limit of 1000 messages."
                " Resets at 2025-11-30T07:06:40.000Z",
                "resetAt": 1_764_486_400_000,
                "limit": 1000,
                "used": 1000,
            },
        ),
        (
            StoreUnavailable("redis://127.0.0.1:6379/0", "Connection refused"),
            503,
            {
                "error": "Service unavailable",
                "message": "mockbankr's state store (redis://127.0.0.1:6379/0) cannot be"
                " reached (Connection refused); retry shortly",
            },
        ),
        (
            AccessDenied(Denial.KEY_REQUIRED, "none sent"),
            401,
            {"error": "API key required", "message": "API key is missing or invalid"},
        ),
        (
            AccessDenied(Denial.INVALID_KEY, "revoked"),
            401,
            {"error": "Invalid API key", "message": "API key is missing or invalid"},
        ),
        (
            AccessDenied(Denial.IP_NOT_ALLOWED, "10.1.1.1"),
            403,
            {
                "error": "IP address not allowed",
                "message": "IP address not allowed for this API key",
            },
        ),
        (
            AccessDenied(Denial.AGENT_API_DISABLED, "off"),
            403,
            {
                "error": "Agent API access not enabled",
                "message": "Enable agent access for your API key",
            },
        ),
        (
            AccessDenied(Denial.SUBSCRIPTION_REQUIRED, "none"),
            403,
            {
                "error": "subscription_required",
                "message": "Agent API prompts need Bankr Club, or Max Mode with LLM credit",
                "remediation": list(wire.SUBSCRIPTION_REMEDIATION),
            },
        ),
    ],
)
def test_each_domain_error_has_its_documented_wire_form(
    error: MockbankrError, status: int, body: dict[str, object]
) -> None:
    answer = wire.api_error(error)
    assert (answer.status_code, answer.body()) == (status, body)


def test_the_table_covers_every_domain_error_the_core_raises() -> None:
    assert set(wire.DOMAIN_ERRORS) == {
        AccessDenied,
        DailyLimitExceeded,
        JobFinished,
        JobIdCollision,
        JobNotFound,
        StoreUnavailable,
        UnknownCategory,
    }


def test_an_error_outside_the_table_has_no_wire_form() -> None:
    with pytest.raises(KeyError, match="MockbankrError"):
        wire.api_error(MockbankrError("a bug"))


def test_the_app_answers_a_domain_error_through_the_table(http: httpx.Client) -> None:
    job_id = http.post("/agent/prompt", json={"prompt": "hi"}).json()["jobId"]
    http.post(f"/__mock/jobs/{job_id}/outcome", json={"outcome": "completed", "finish_in": 0})
    cancel = http.post(f"/agent/job/{job_id}/cancel")
    assert (cancel.status_code, cancel.json()) == (
        400,
        wire.already_finished(job_id, "completed").body(),
    )
    steer = http.post(f"/__mock/jobs/{job_id}/outcome", json={"outcome": "failed"})
    assert (steer.status_code, steer.json()) == (409, wire.not_steerable("completed").body())
    missing = http.get("/agent/job/job_NOPE")
    assert (missing.status_code, missing.json()) == (404, wire.job_not_found("job_NOPE").body())
