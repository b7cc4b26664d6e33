"""Parsing the wire: job statuses and prompt answers; unknown fields kept, garbage refused."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from bankr_client import (
    JobStatus,
    JobStatusName,
    Price,
    PromptResponse,
    ProtocolError,
)
from hypothesis import given
from hypothesis import strategies as st

UTC = dt.UTC

DOCS_COMPLETED = {
    "success": True,
    "jobId": "abc123def456",
    "threadId": "thr_1",
    "status": "completed",
    "prompt": "what is the price of ETH?",
    "createdAt": "2024-01-15T10:30:00Z",
    "completedAt": "2024-01-15T10:30:03Z",
    "processingTime": 3000,
    "response": "ETH is $3,000",
    "richData": [],
    "cancellable": False,
}


def test_the_documented_completed_example():
    status = JobStatus.from_dict(DOCS_COMPLETED)
    assert status.job_id == "abc123def456"
    assert status.thread_id == "thr_1"
    assert status.status is JobStatusName.COMPLETED
    assert status.is_terminal
    assert status.response == "ETH is $3,000"
    assert status.processing_time == 3000
    assert status.cancellable is False
    assert status.created_at == dt.datetime(2024, 1, 15, 10, 30, tzinfo=UTC)
    assert status.completed_at == dt.datetime(2024, 1, 15, 10, 30, 3, tzinfo=UTC)
    assert status.started_at is None
    assert status.extra == {}
    assert status.raw == DOCS_COMPLETED


def test_timestamps_with_milliseconds_and_offsets_are_aware():
    status = JobStatus.from_dict(
        {
            "jobId": "j",
            "status": "cancelled",
            "createdAt": "2025-01-15T10:30:03.000Z",
            "startedAt": "2025-01-15T11:30:04.500+01:00",
            "cancelledAt": "2025-01-15T10:30:05",
        }
    )
    assert status.created_at == dt.datetime(2025, 1, 15, 10, 30, 3, tzinfo=UTC)
    assert status.started_at == dt.datetime(2025, 1, 15, 10, 30, 4, 500000, tzinfo=UTC)
    assert status.cancelled_at is not None
    assert status.cancelled_at.tzinfo is not None
    assert status.cancelled_at == dt.datetime(2025, 1, 15, 10, 30, 5, tzinfo=UTC)


def test_every_documented_field_is_parsed():
    status = JobStatus.from_dict(
        {
            "success": True,
            "jobId": "job_1",
            "status": "failed",
            "error": "Insufficient balance",
            "transactions": [{"type": "swap", "metadata": {"transaction": {"chainId": 8453}}}],
            "richData": [{"type": "chart", "url": "https://x"}],
            "statusUpdates": [
                {"message": "Checking balances...", "timestamp": "2025-01-15T10:30:01.000Z"},
                {"message": "Executing swap...", "timestamp": "2025-01-15T10:30:02.000Z"},
            ],
            "processingTime": 1500.0,
        }
    )
    assert status.error == "Insufficient balance"
    assert status.transactions[0]["type"] == "swap"
    assert status.rich_data == ({"type": "chart", "url": "https://x"},)
    assert [u.message for u in status.status_updates] == [
        "Checking balances...",
        "Executing swap...",
    ]
    assert status.status_updates[1].timestamp == dt.datetime(2025, 1, 15, 10, 30, 2, tzinfo=UTC)
    assert status.processing_time == 1500
    assert status.is_terminal


def test_job_status_names_and_terminality():
    assert [s.value for s in JobStatusName] == [
        "pending",
        "processing",
        "completed",
        "failed",
        "cancelled",
    ]
    assert {s for s in JobStatusName if s.is_terminal} == {
        JobStatusName.COMPLETED,
        JobStatusName.FAILED,
        JobStatusName.CANCELLED,
    }
    assert JobStatusName.PENDING == "pending"


json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
KNOWN = {
    "success", "jobId", "threadId", "status", "prompt", "response", "transactions", "richData",
    "statusUpdates", "error", "processingTime", "cancellable", "createdAt", "startedAt",
    "completedAt", "cancelledAt",
}  # fmt: skip


@given(
    extra=st.dictionaries(
        st.text(min_size=1).filter(lambda k: k not in KNOWN), json_values, max_size=5
    ),
    status=st.sampled_from([s.value for s in JobStatusName]),
)
def test_unknown_fields_are_kept_never_rejected(extra: dict[str, Any], status: str):
    parsed = JobStatus.from_dict({"jobId": "job_1", "status": status, **extra})
    assert parsed.extra == extra
    assert parsed.status == status


@given(data=json_values)
def test_arbitrary_json_either_parses_or_is_a_protocol_error(data: Any):
    try:
        parsed = JobStatus.from_dict(data)
    except ProtocolError:
        return
    assert isinstance(data, dict)
    assert parsed.job_id == data["jobId"]
    assert parsed.status == data["status"]


@pytest.mark.parametrize(
    "body",
    [
        {"error": "Job not found", "message": "No job found with ID job_1"},
        {"error": "Authentication required", "message": "Please provide a valid API key"},
        {"jobId": "job_1"},
        {"jobId": "job_1", "status": "queued"},
        {"jobId": "", "status": "pending"},
        {"jobId": 5, "status": "pending"},
        {"jobId": "job_1", "status": "pending", "success": False},
        {"jobId": "job_1", "status": "pending", "processingTime": "3000"},
        {"jobId": "job_1", "status": "pending", "processingTime": True},
        {"jobId": "job_1", "status": "pending", "processingTime": 1.5},
        {"jobId": "job_1", "status": "pending", "cancellable": "yes"},
        {"jobId": "job_1", "status": "pending", "createdAt": "yesterday"},
        {"jobId": "job_1", "status": "pending", "statusUpdates": [1]},
        {"jobId": "job_1", "status": "pending", "transactions": {}},
        [],
        "pending",
        None,
    ],
)
def test_what_is_not_a_job_status_is_refused(body: Any):
    with pytest.raises(ProtocolError):
        JobStatus.from_dict(body)


def test_prompt_response_api_key_flavour():
    r = PromptResponse.from_dict(
        {
            "success": True,
            "jobId": "job_1",
            "threadId": "thr_1",
            "status": "pending",
            "message": "Job created successfully",
            "queuePosition": 3,
        }
    )
    assert (r.job_id, r.thread_id, r.status, r.message) == (
        "job_1",
        "thr_1",
        JobStatusName.PENDING,
        "Job created successfully",
    )
    assert r.price is None
    assert r.extra == {"queuePosition": 3}


def test_prompt_response_x402_flavour_has_a_price_and_no_thread():
    r = PromptResponse.from_dict(
        {
            "success": True,
            "jobId": "job_123",
            "status": "pending",
            "message": "Prompt submitted successfully. Use the jobId to check status.",
            "price": {"amount": "100000", "asset": "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"},
        }
    )
    assert r.thread_id is None
    assert r.price == Price("100000", "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913")


@pytest.mark.parametrize(
    "body",
    [
        {"error": "Prompt too long", "message": "Prompt must be 10,000 characters or less"},
        {"jobId": "job_1"},
        {"jobId": "job_1", "status": "pending", "price": {"asset": "0x"}},
        {"jobId": "job_1", "status": "pending", "price": "0.10"},
    ],
)
def test_what_is_not_a_prompt_response_is_refused(body: Any):
    with pytest.raises(ProtocolError):
        PromptResponse.from_dict(body)
