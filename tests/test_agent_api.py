"""The API-key flavour against docs/wire.md section 1, through HTTP in-process."""

from __future__ import annotations

import random
from typing import Any

import httpx
import pytest

from mockbankr import MemoryStore, Settings, VirtualClock, create_app
from mockbankr.core import Simulator
from mockbankr.journal import key_fingerprint
from mockbankr.testing import SyncClockTransport
from tests.conftest import OTHER_KEY, STORES, rewrite, snapshot, stored

PRICE = "What is the price of ETH?"


@pytest.fixture(params=STORES)
def store_kind(request: pytest.FixtureRequest) -> str:
    """The lifecycle runs on the memory store and on Redis."""
    kind: str = request.param
    return kind


def submit(http: httpx.Client, prompt: str = PRICE, **extra: Any) -> dict[str, Any]:
    response = http.post("/agent/prompt", json={"prompt": prompt, **extra})
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    return body


def test_prompt_answers_202_with_the_documented_fields(http: httpx.Client) -> None:
    body = submit(http)
    assert set(body) == {"success", "jobId", "threadId", "status", "message"}
    assert body["success"] is True
    assert body["status"] == "pending"
    assert body["jobId"].startswith("job_")
    assert body["threadId"].startswith("thr_")


def test_a_given_thread_id_is_kept(http: httpx.Client) -> None:
    body = submit(http, threadId="thr_mine")
    assert body["threadId"] == "thr_mine"
    assert http.get(f"/agent/job/{body['jobId']}").json()["threadId"] == "thr_mine"


def test_a_prompt_of_exactly_10000_characters_is_accepted(http: httpx.Client) -> None:
    submit(http, "x" * 10_000)


def test_job_fields_appear_per_status(
    http: httpx.Client, clock: VirtualClock, sim: Simulator
) -> None:
    job_id = submit(http, "Swap 10 USDC for ETH")["jobId"]
    record = stored(sim, job_id)
    always = {
        "success",
        "jobId",
        "threadId",
        "status",
        "prompt",
        "createdAt",
        "cancellable",
        "statusUpdates",
    }

    pending = http.get(f"/agent/job/{job_id}").json()
    assert set(pending) == always
    assert (pending["status"], pending["cancellable"]) == ("pending", True)

    clock.set(record.started_at)
    processing = http.get(f"/agent/job/{job_id}").json()
    assert set(processing) == always | {"startedAt"}
    assert (processing["status"], processing["cancellable"]) == ("processing", True)
    assert processing["statusUpdates"][0]["message"] == "Analyzing request..."

    clock.set(record.finished_at)
    done = http.get(f"/agent/job/{job_id}").json()
    assert done["status"] == ("failed" if record.failed else "completed")
    assert done["cancellable"] is False
    if not record.failed:
        assert set(done) == always | {
            "startedAt",
            "completedAt",
            "processingTime",
            "response",
            "richData",
            "transactions",
        }
        assert done["transactions"][0]["type"] == "swap"
        assert done["processingTime"] == round((record.finished_at - record.created_at) * 1000)
        assert len(done["statusUpdates"]) == 3


def test_failed_job_is_200_with_error_and_completed_at(
    http: httpx.Client, sim: Simulator, clock: VirtualClock
) -> None:
    job_id = submit(http)["jobId"]
    record = rewrite(sim, job_id, failed=True, error="boom")
    clock.set(record.finished_at + 1)
    response = http.get(f"/agent/job/{job_id}")
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["error"], body["success"]) == ("failed", "boom", True)
    assert "completedAt" in body
    assert "processingTime" not in body
    assert "response" not in body


def test_processing_time_is_completed_minus_created_in_ms(clock: VirtualClock) -> None:
    # The docs' example: created 10:30:00, completed 10:30:03, processingTime 3000.
    from mockbankr.jobs import JobRecord, job_body
    from mockbankr.timing import load_timing

    job = JobRecord(
        "job_X",
        "key:k",
        "p",
        None,
        "price",
        created_at=1736937000.0,
        started_at=1736937001.0,
        finished_at=1736937003.0,
    )
    body = job_body(job, load_timing()["price"], 1736937010.0)
    assert (body["createdAt"], body["completedAt"], body["processingTime"]) == (
        "2025-01-15T10:30:00.000Z",
        "2025-01-15T10:30:03.000Z",
        3000,
    )


def test_cancel_a_live_job_then_again(http: httpx.Client, clock: VirtualClock) -> None:
    job_id = submit(http)["jobId"]
    first = http.post(f"/agent/job/{job_id}/cancel")
    assert first.status_code == 200
    assert set(first.json()) == {"success", "jobId", "status", "prompt", "createdAt", "cancelledAt"}
    assert first.json()["status"] == "cancelled"
    clock.advance(100)
    again = http.post(f"/agent/job/{job_id}/cancel")
    assert (again.status_code, again.json()) == (200, first.json())
    polled = http.get(f"/agent/job/{job_id}").json()
    assert polled["status"] == "cancelled"
    assert polled["cancelledAt"] == first.json()["cancelledAt"]
    assert polled["cancellable"] is False


@pytest.mark.parametrize("failed", [False, True])
def test_cancel_a_finished_job_is_400(
    http: httpx.Client, sim: Simulator, clock: VirtualClock, failed: bool
) -> None:
    job_id = submit(http)["jobId"]
    record = rewrite(sim, job_id, failed=failed)
    clock.set(record.finished_at)
    response = http.post(f"/agent/job/{job_id}/cancel")
    word = "failed" if failed else "completed"
    assert response.status_code == 400
    assert response.json()["error"] == f"Job already {word}"
    assert response.json()["message"]
    assert http.get(f"/agent/job/{job_id}").json()["status"] == word


def test_jobs_belong_to_their_key(http: httpx.Client) -> None:
    job_id = submit(http)["jobId"]
    other = {"X-API-Key": OTHER_KEY}
    for response in (
        http.get(f"/agent/job/{job_id}", headers=other),
        http.post(f"/agent/job/{job_id}/cancel", headers=other),
    ):
        assert response.status_code == 404
        assert response.json() == {
            "error": "Job not found",
            "message": f"No job found with ID {job_id}",
        }
    assert http.get(f"/agent/job/{job_id}").json()["status"] == "pending"


def test_restricted_keys(clock: VirtualClock) -> None:
    app = create_app(
        Settings(api_keys=frozenset({"bk_good"})),
        clock=clock,
        rng=random.Random(0),
        store=MemoryStore(),
    )
    with httpx.Client(transport=SyncClockTransport(app, clock), base_url="http://m") as http:
        ok = http.post("/agent/prompt", json={"prompt": PRICE}, headers={"X-API-Key": "bk_good"})
        bad = http.post("/agent/prompt", json={"prompt": PRICE}, headers={"X-API-Key": "bk_bad"})
        assert ok.status_code == 202
        assert bad.status_code == 401
        # Spec 1.8: /_health ignores the key; /wallet/me is the key check.
        assert http.get("/_health", headers={"X-API-Key": "bk_bad"}).status_code == 200
        assert http.get("/_health").status_code == 200
        assert http.get("/wallet/me", headers={"X-API-Key": "bk_bad"}).status_code == 401
        assert http.get("/wallet/me", headers={"X-API-Key": "bk_good"}).status_code == 200


def test_me_gives_a_stable_made_up_wallet_per_key(http: httpx.Client) -> None:
    first = http.get("/agent/me").json()
    assert first["success"] is True
    (wallet,) = first["wallets"]
    assert wallet["chain"] == "evm"
    assert wallet["address"].startswith("0x")
    assert len(wallet["address"]) == 42
    assert http.get("/agent/me").json() == first
    other = http.get("/agent/me", headers={"X-API-Key": OTHER_KEY}).json()
    assert other["wallets"] != first["wallets"]
    assert http.get("/agent/me", headers={"X-API-Key": ""}).status_code == 401


def test_health(http: httpx.Client) -> None:
    response = http.get("/_health")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_same_seed_same_prompts_give_the_same_jobs() -> None:
    def run() -> list[dict[str, Any]]:
        clock = VirtualClock()
        app = create_app(Settings(seed=9), clock=clock, rng=random.Random(9), store=MemoryStore())
        with httpx.Client(
            transport=SyncClockTransport(app, clock),
            base_url="http://m",
            headers={"X-API-Key": "k"},
        ) as http:
            ids = [submit(http, p)["jobId"] for p in [PRICE, "Swap 1 ETH", "Analyze ETH"]]
            clock.advance(60)
            return [http.get(f"/agent/job/{i}").json() for i in ids]

    assert run() == run()


AUTH = {"X-API-Key": "bk_test"}
JSON = {**AUTH, "Content-Type": "application/json"}
BAD_INPUTS = [
    # (method, path, headers, content, status, error, message-substring)
    (
        "POST",
        "/agent/prompt",
        {},
        b'{"prompt":"hi"}',
        401,
        "API key required",
        "API key is missing or invalid",
    ),
    (
        "POST",
        "/agent/prompt",
        {"X-API-Key": "  "},
        b'{"prompt":"hi"}',
        401,
        "API key required",
        "missing or invalid",
    ),
    ("POST", "/agent/prompt", JSON, b"{", 400, "Invalid request", "malformed JSON"),
    (
        "POST",
        "/agent/prompt",
        JSON,
        b"",
        400,
        "Invalid request",
        "Request body must include a prompt",
    ),
    ("POST", "/agent/prompt", JSON, b'["prompt"]', 400, "Invalid request", "not an object"),
    ("POST", "/agent/prompt", JSON, b'"hi"', 400, "Invalid request", "not an object"),
    (
        "POST",
        "/agent/prompt",
        JSON,
        b"{}",
        400,
        "Invalid request",
        "Request body must include a prompt",
    ),
    (
        "POST",
        "/agent/prompt",
        JSON,
        b'{"prompt": 42}',
        400,
        "Invalid request",
        "Request body must include a prompt",
    ),
    (
        "POST",
        "/agent/prompt",
        JSON,
        b'{"prompt": null}',
        400,
        "Invalid request",
        "must include a prompt",
    ),
    (
        "POST",
        "/agent/prompt",
        JSON,
        b'{"prompt": "   "}',
        400,
        "Invalid request",
        "must include a prompt",
    ),
    (
        "POST",
        "/agent/prompt",
        JSON,
        b'{"prompt": "hi", "threadId": 7}',
        400,
        "Invalid request",
        "threadId must be a string",
    ),
    (
        "POST",
        "/agent/prompt",
        JSON,
        b'{"prompt": "' + b"x" * 10_001 + b'"}',
        400,
        "Prompt too long",
        "Prompt must be 10,000 characters or less",
    ),
    ("POST", "/agent/prompt", JSON, b"\xff\xfe", 400, "Invalid request", "malformed JSON"),
    (
        "GET",
        "/agent/job/job_NOPE",
        AUTH,
        b"",
        404,
        "Job not found",
        "No job found with ID job_NOPE",
    ),
    ("GET", "/agent/job/job_NOPE", {}, b"", 401, "API key required", "missing or invalid"),
    ("GET", "/agent/job/", AUTH, b"", 400, "Job ID required", "Please provide a job ID"),
    ("GET", "/agent/job", AUTH, b"", 400, "Job ID required", "Please provide a job ID"),
    ("POST", "/agent/job/job_NOPE/cancel", AUTH, b"", 404, "Job not found", "job_NOPE"),
    ("GET", "/agent/nothing", AUTH, b"", 404, "Not found", "No route for GET /agent/nothing"),
    ("DELETE", "/agent/prompt", AUTH, b"", 405, "Method not allowed", "DELETE"),
    ("GET", "/agent/prompt", AUTH, b"", 405, "Method not allowed", "GET"),
    ("DELETE", "/agent/job/JOB", AUTH, b"", 405, "Method not allowed", "DELETE"),
    ("GET", "/agent/job/JOB/cancel", AUTH, b"", 405, "Method not allowed", "GET"),
]


@pytest.mark.parametrize(
    ("method", "path", "headers", "content", "status", "error", "message"), BAD_INPUTS
)
def test_bad_input_gets_the_documented_error_and_changes_nothing(
    http: httpx.Client,
    sim: Simulator,
    clock: VirtualClock,
    method: str,
    path: str,
    headers: dict[str, str],
    content: bytes,
    status: int,
    error: str,
    message: str,
) -> None:
    job_id = submit(http)["jobId"]
    before = snapshot(sim)
    path = path.replace("JOB", job_id)
    response = http.request(method, path, headers={"X-API-Key": "", **headers}, content=content)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["error"] == error
    assert message in body["message"]
    assert set(body) == {"error", "message"}
    assert snapshot(sim) == before


@pytest.mark.parametrize(
    "body",
    [
        b'{"prompt": "hi", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b"[" * 200_000,
        b'{"a":' * 40_000,
    ],
)
def test_hostile_nesting_is_a_400_not_a_crash(http: httpx.Client, body: bytes) -> None:
    import eth_account  # noqa: F401 - its py_ecc raises the recursion limit past the C stack

    response = http.post("/agent/prompt", content=body)
    assert response.status_code == 400
    assert response.json()["error"] == "Invalid request"


def test_brackets_inside_the_prompt_text_are_fine(http: httpx.Client) -> None:
    submit(http, "[" * 5000 + "{" * 4000)


def test_rules_the_journal_and_authentication_agree_on_who_sent_two_keys(
    app: Any, clock: VirtualClock
) -> None:
    # One identity per request: the first X-API-Key, whoever asks.
    rule = {"match": {"key": "bk_second"}, "action": {"respond": {"status": 503}}}
    with httpx.Client(
        transport=SyncClockTransport(app, clock), base_url="http://mockbankr.local"
    ) as http:
        assert http.post("/__mock/rules", json=rule).status_code == 201
        both = [("X-API-Key", "bk_first"), ("X-API-Key", "bk_second")]
        response = http.post("/agent/prompt", json={"prompt": PRICE}, headers=both)
        assert response.status_code == 202, response.text
        job_id = response.json()["jobId"]
        assert http.get(f"/agent/job/{job_id}", headers={"X-API-Key": "bk_first"}).is_success
        (entry,) = http.get("/__mock/journal", params={"method": "POST"}).json()["entries"]
    assert (entry["owner"], entry["jobId"]) == (key_fingerprint("bk_first"), job_id)
