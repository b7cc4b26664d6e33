"""Keys, accounts and their errors over HTTP, as Bankr documents them (spec 1.7, 1.8).

Every documented auth, access and quota error, for both ``X-API-Key`` and
``Authorization: Bearer``: the status, the exact body, and that nothing was created
or charged (no job, no prompt counted against any account).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from mockbankr import Settings, VirtualClock, create_app
from mockbankr.accounts import parse_keys
from mockbankr.clock import DEFAULT_EPOCH, iso
from mockbankr.jobs import READ_ONLY_RESPONSE
from mockbankr.store import JobStore
from mockbankr.testing import SyncClockTransport
from tests.conftest import STORES

PRICE = "What is the price of ETH?"
SWAP = "Swap 10 USDC for ETH"
DAY = 86_400

KEYS: dict[str, Any] = {
    "accounts": {
        "club": {"plan": "club"},
        "maxed": {"plan": "max-mode"},
        "nosub": {"plan": "none"},
        "tiny": {"plan": "max-mode"},
    },
    "keys": [
        {"key": "bk_club", "account": "club"},
        {"key": "bk_club_2", "account": "club"},
        {"key": "bk_noagent", "account": "club", "agentApiEnabled": False},
        {"key": "bk_ro", "account": "club", "readOnly": True},
        {"key": "bk_revoked", "account": "club", "revoked": True},
        {"key": "bk_elsewhere", "account": "club", "allowedIps": ["10.0.0.0/8"]},
        {"key": "bk_here", "account": "club", "allowedIps": ["127.0.0.0/8", "::1"]},
        {"key": "bk_maxed", "account": "maxed"},
        {"key": "bk_nosub", "account": "nosub"},
        {"key": "bk_tiny", "account": "tiny", "dailyLimit": 2},
        {"key": "bk_tiny_plain", "account": "tiny"},
    ],
}

KEY_REQUIRED = {"error": "API key required", "message": "API key is missing or invalid"}
INVALID_KEY = {"error": "Invalid API key", "message": "API key is missing or invalid"}
NO_AGENT = {
    "error": "Agent API access not enabled",
    "message": "Enable agent access for your API key",
}
IP_REFUSED = {
    "error": "IP address not allowed",
    "message": "IP address not allowed for this API key",
}
SUBSCRIPTION = {
    "error": "subscription_required",
    "message": "Agent API prompts need Bankr Club, or Max Mode with LLM credit",
    "remediation": [
        "Join Bankr Club at https://bankr.bot/club for 1,000 prompts a day",
        "Or turn on Max Mode with LLM credit (bankr llm credits add <usd>) for 100 prompts a day",
    ],
}


@pytest.fixture
def keyed_app(clock: VirtualClock, store: JobStore) -> Starlette:
    """On the memory store, or (tests parametrized over ``store_kind``) on Redis too, where
    the quota is counted by the store's script."""
    settings = Settings(seed=1, keys=parse_keys(KEYS))
    return create_app(settings, clock=clock, rng=random.Random(1), store=store)


@pytest.fixture
def raw(keyed_app: Starlette, clock: VirtualClock) -> Iterator[httpx.Client]:
    """A client with no key: each request says which key it sends, and how."""
    transport = SyncClockTransport(keyed_app, clock)
    with httpx.Client(transport=transport, base_url="http://mockbankr.local") as client:
        yield client


def sent(key: str | None, form: str) -> dict[str, str]:
    if key is None:
        return {}
    return {"X-API-Key": key} if form == "x-api-key" else {"Authorization": f"Bearer {key}"}


def state(http: httpx.Client) -> tuple[int, dict[str, int]]:
    """What a refused request must not change: the number of jobs, each account's usage."""
    jobs = http.get("/__mock/jobs").json()["total"]
    accounts = http.get("/__mock/keys").json()["accounts"]
    return jobs, {name: account["used"] for name, account in accounts.items()}


def make_job(http: httpx.Client, key: str = "bk_club") -> str:
    response = http.post("/agent/prompt", json={"prompt": PRICE}, headers={"X-API-Key": key})
    assert response.status_code == 202, response.text
    job_id: str = response.json()["jobId"]
    return job_id


# (method, path, key, status, body); JOB is replaced by a job of account "club".
ERRORS: list[tuple[str, str, str | None, int, dict[str, Any]]] = [
    *[
        (method, path, None, 401, KEY_REQUIRED)
        for method, path in [
            ("POST", "/agent/prompt"),
            ("GET", "/agent/job/JOB"),
            ("POST", "/agent/job/JOB/cancel"),
            ("GET", "/agent/me"),
            ("GET", "/wallet/me"),
        ]
    ],
    *[
        (method, path, key, 401, INVALID_KEY)
        for key in ("bk_wrong", "bk_revoked", "bk_" + "x" * 300)
        for method, path in [
            ("POST", "/agent/prompt"),
            ("GET", "/agent/job/JOB"),
            ("POST", "/agent/job/JOB/cancel"),
            ("GET", "/agent/me"),
            ("GET", "/wallet/me"),
        ]
    ],
    *[
        (method, path, "bk_noagent", 403, NO_AGENT)
        for method, path in [
            ("POST", "/agent/prompt"),
            ("GET", "/agent/job/JOB"),
            ("POST", "/agent/job/JOB/cancel"),
            ("GET", "/agent/me"),
        ]
    ],
    *[
        (method, path, "bk_elsewhere", 403, IP_REFUSED)
        for method, path in [
            ("POST", "/agent/prompt"),
            ("GET", "/agent/job/JOB"),
            ("POST", "/agent/job/JOB/cancel"),
            ("GET", "/wallet/me"),
        ]
    ],
    ("POST", "/agent/prompt", "bk_nosub", 403, SUBSCRIPTION),
]


@pytest.mark.parametrize("form", ["x-api-key", "bearer"])
@pytest.mark.parametrize(("method", "path", "key", "status", "body"), ERRORS)
def test_every_documented_auth_and_access_error(
    raw: httpx.Client,
    form: str,
    method: str,
    path: str,
    key: str | None,
    status: int,
    body: dict[str, Any],
) -> None:
    job_id = make_job(raw)
    before = state(raw)
    content = b'{"prompt": "Swap 1 ETH for USDC"}' if path == "/agent/prompt" else None
    response = raw.request(
        method, path.replace("JOB", job_id), headers=sent(key, form), content=content
    )
    assert (response.status_code, response.json()) == (status, body)
    assert response.headers["content-type"] == "application/json"
    assert state(raw) == before
    owner = raw.get(f"/agent/job/{job_id}", headers={"X-API-Key": "bk_club"}).json()
    assert owner["status"] == "pending"  # a refused cancel cancelled nothing


@pytest.mark.parametrize(
    ("store_kind", "form"), [("memory", "x-api-key"), ("memory", "bearer"), ("redis", "bearer")]
)
@pytest.mark.parametrize(
    ("plan_key", "limit", "upgrade"),
    [("bk_maxed", 100, True), ("bk_tiny", 2, True), ("bk_club", 1000, False)],
)
def test_the_quota_429_is_the_documented_body(
    raw: httpx.Client, clock: VirtualClock, form: str, plan_key: str, limit: int, upgrade: bool
) -> None:
    headers = sent(plan_key, form)
    first_at = clock.now()
    for _ in range(limit):
        assert raw.post("/agent/prompt", json={"prompt": PRICE}, headers=headers).status_code == 202
        clock.advance(1)
    before = state(raw)
    response = raw.post("/agent/prompt", json={"prompt": PRICE}, headers=headers)
    reset = first_at + DAY
    sentence = " Upgrade to Bankr Club for 1000 messages/day." if upgrade else ""
    assert response.status_code == 429
    assert response.json() == {
        "error": "Daily limit exceeded",
        "message": f"You have reached your daily API limit of {limit} messages.{sentence}"
        f" Resets at {iso(reset)}",
        "resetAt": round(reset * 1000),
        "limit": limit,
        "used": limit,
    }
    assert state(raw) == before


@pytest.mark.parametrize("store_kind", STORES)
def test_the_window_rolls_24_simulated_hours_from_the_first_prompt(
    raw: httpx.Client, clock: VirtualClock
) -> None:
    tiny = {"X-API-Key": "bk_tiny"}
    assert raw.post("/agent/prompt", json={"prompt": PRICE}, headers=tiny).status_code == 202
    clock.advance(12 * 3600)
    assert raw.post("/agent/prompt", json={"prompt": PRICE}, headers=tiny).status_code == 202
    clock.advance(12 * 3600 - 1)
    refused = raw.post("/agent/prompt", json={"prompt": PRICE}, headers=tiny)
    assert refused.status_code == 429
    assert refused.json()["resetAt"] == (DEFAULT_EPOCH + DAY) * 1000
    clock.advance(1)  # the first prompt's window has closed
    assert raw.post("/agent/prompt", json={"prompt": PRICE}, headers=tiny).status_code == 202


@pytest.mark.parametrize("store_kind", STORES)
def test_two_keys_of_an_account_share_its_quota_and_a_custom_limit_replaces_it(
    raw: httpx.Client,
) -> None:
    def prompt(key: str) -> int:
        return raw.post("/agent/prompt", json={"prompt": PRICE}, headers={"X-API-Key": key})

    # Account "tiny" is max-mode (100 a day); bk_tiny's custom limit is 2.
    assert prompt("bk_tiny_plain").status_code == 202
    assert prompt("bk_tiny").status_code == 202
    over = prompt("bk_tiny")  # 2 used by the account: over bk_tiny's own limit
    assert over.status_code == 429
    assert (over.json()["limit"], over.json()["used"]) == (2, 2)
    # The other key still has the account's 100, of which the account used 2.
    for _ in range(98):
        assert prompt("bk_tiny_plain").status_code == 202
    spent = prompt("bk_tiny_plain")
    assert spent.status_code == 429
    assert (spent.json()["limit"], spent.json()["used"]) == (100, 100)
    # Another account is untouched.
    assert prompt("bk_maxed").status_code == 202
    assert raw.get("/__mock/keys").json()["accounts"]["tiny"]["used"] == 100


def test_keys_of_one_account_see_its_jobs(raw: httpx.Client) -> None:
    job_id = make_job(raw, "bk_club")
    other = raw.get(f"/agent/job/{job_id}", headers={"Authorization": "Bearer bk_club_2"})
    assert other.status_code == 200
    stranger = raw.get(f"/agent/job/{job_id}", headers={"X-API-Key": "bk_maxed"})
    assert stranger.status_code == 404


def test_a_read_only_key_prompts_but_a_transaction_completes_with_an_explanation(
    raw: httpx.Client, clock: VirtualClock
) -> None:
    ro = {"X-API-Key": "bk_ro"}
    swap = raw.post("/agent/prompt", json={"prompt": SWAP}, headers=ro).json()["jobId"]
    price = raw.post("/agent/prompt", json={"prompt": PRICE}, headers=ro).json()["jobId"]
    normal = raw.post("/agent/prompt", json={"prompt": SWAP}, headers={"X-API-Key": "bk_club"})
    clock.advance(3600)
    body = raw.get(f"/agent/job/{swap}", headers=ro).json()
    assert body["status"] == "completed"
    assert body["response"] == READ_ONLY_RESPONSE
    assert "transactions" not in body
    assert body["richData"] == []
    read = raw.get(f"/agent/job/{price}", headers=ro).json()
    assert read["status"] == "completed"
    assert read["response"] != READ_ONLY_RESPONSE
    full = raw.get(f"/agent/job/{normal.json()['jobId']}", headers={"X-API-Key": "bk_club"})
    assert full.json()["transactions"]


@pytest.mark.parametrize("form", ["x-api-key", "bearer"])
def test_bearer_and_x_api_key_are_one_key(raw: httpx.Client, form: str) -> None:
    accepted = raw.post("/agent/prompt", json={"prompt": PRICE}, headers=sent("bk_club", form))
    assert accepted.status_code == 202
    job_id = accepted.json()["jobId"]
    for other in ("x-api-key", "bearer"):
        polled = raw.get(f"/agent/job/{job_id}", headers=sent("bk_club", other))
        assert polled.status_code == 200


def test_x_api_key_wins_over_bearer_and_an_empty_one_does_not_count(raw: httpx.Client) -> None:
    def wallet(*headers: tuple[str, str]) -> httpx.Response:
        return raw.get("/wallet/me", headers=list(headers))

    club = wallet(("X-API-Key", "bk_club")).json()
    assert wallet(("Authorization", "Bearer bk_maxed"), ("X-API-Key", "bk_club")).json() == club
    assert wallet(("X-API-Key", ""), ("Authorization", "Bearer bk_club")).json() == club
    refused = wallet(("X-API-Key", "bk_wrong"), ("Authorization", "Bearer bk_club"))
    assert (refused.status_code, refused.json()) == (401, INVALID_KEY)


@pytest.mark.parametrize(
    "authorization", ["Basic YWxhZGRpbjpvcGVu", "Bearer", "Bearer   ", "bk_club", "Token bk_club"]
)
def test_an_authorization_that_is_not_a_bearer_key_is_no_key(
    raw: httpx.Client, authorization: str
) -> None:
    response = raw.get("/wallet/me", headers={"Authorization": authorization})
    assert (response.status_code, response.json()) == (401, KEY_REQUIRED)


def test_health_ignores_the_key_and_always_answers_200(raw: httpx.Client) -> None:
    for headers in ({}, {"X-API-Key": "bk_wrong"}, {"Authorization": "Bearer bk_revoked"}):
        response = raw.get("/_health", headers=headers)
        assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_wallet_me_is_the_key_check(raw: httpx.Client) -> None:
    club = raw.get("/wallet/me", headers={"Authorization": "Bearer bk_club"})
    assert club.status_code == 200
    body = club.json()
    assert body["bankrClub"]["active"] is True
    # Every key of an account shows its one wallet, agent access or not.
    for key in ("bk_club_2", "bk_noagent", "bk_ro", "bk_here"):
        same = raw.get("/wallet/me", headers={"X-API-Key": key})
        assert same.status_code == 200
        assert same.json()["wallets"] == body["wallets"]
    other = raw.get("/wallet/me", headers={"X-API-Key": "bk_maxed"}).json()
    assert other["wallets"] != body["wallets"]
    assert other["bankrClub"] == {"active": False}


def test_a_revoked_key_is_refused_from_its_next_request(raw: httpx.Client) -> None:
    job_id = make_job(raw, "bk_club")
    revoked = raw.post("/__mock/keys/revoke", json={"key": "bk_club"})
    assert revoked.status_code == 200
    assert revoked.json()["key"]["revoked"] is True
    response = raw.get(f"/agent/job/{job_id}", headers={"X-API-Key": "bk_club"})
    assert (response.status_code, response.json()) == (401, INVALID_KEY)
    # The job itself was past authentication: another key of the account still sees it.
    assert raw.get(f"/agent/job/{job_id}", headers={"X-API-Key": "bk_club_2"}).status_code == 200


def test_a_rotated_key_keeps_account_flags_and_limit(raw: httpx.Client) -> None:
    job_id = make_job(raw, "bk_tiny")
    rotated = raw.post("/__mock/keys/rotate", json={"key": "bk_tiny", "newKey": "bk_tiny_new"})
    assert rotated.status_code == 200
    new = rotated.json()
    assert new["replaced"] == "bk_tiny"
    assert new["key"] == {
        "key": "bk_tiny_new",
        "account": "tiny",
        "name": "",
        "agentApiEnabled": True,
        "readOnly": False,
        "dailyLimit": 2,
        "revoked": False,
        "allowedIps": [],
    }
    old = raw.get(f"/agent/job/{job_id}", headers={"X-API-Key": "bk_tiny"})
    assert (old.status_code, old.json()) == (401, INVALID_KEY)
    assert raw.get(f"/agent/job/{job_id}", headers={"X-API-Key": "bk_tiny_new"}).status_code == 200
    headers = {"X-API-Key": "bk_tiny_new"}
    assert raw.post("/agent/prompt", json={"prompt": PRICE}, headers=headers).status_code == 202
    assert raw.post("/agent/prompt", json={"prompt": PRICE}, headers=headers).status_code == 429


def test_rotation_draws_a_new_key_when_none_is_given(raw: httpx.Client) -> None:
    first = raw.post("/__mock/keys/rotate", json={"key": "bk_club"}).json()["key"]["key"]
    assert first.startswith("bk_")
    assert len(first) == 35
    assert raw.get("/wallet/me", headers={"X-API-Key": first}).status_code == 200
    again = raw.post("/__mock/keys/rotate", json={"key": "bk_club"})
    assert again.status_code == 404  # the old value is no longer an active key


def test_reset_returns_to_the_starting_keys(raw: httpx.Client) -> None:
    raw.post("/__mock/keys/revoke", json={"key": "bk_club"})
    assert raw.get("/wallet/me", headers={"X-API-Key": "bk_club"}).status_code == 401
    assert raw.post("/__mock/reset", json={}).status_code == 200
    assert raw.get("/wallet/me", headers={"X-API-Key": "bk_club"}).status_code == 200


def test_keys_can_be_loaded_through_the_control_plane(http: httpx.Client) -> None:
    # The default app accepts any key, until a keys document says otherwise.
    assert http.get("/wallet/me", headers={"X-API-Key": "bk_anything"}).status_code == 200
    loaded = http.put("/__mock/keys", json=KEYS)
    assert loaded.status_code == 200
    assert loaded.json()["open"] is False
    assert loaded.json()["accounts"]["tiny"] == {"plan": "max-mode", "dailyLimit": 100, "used": 0}
    refused = http.get("/wallet/me", headers={"X-API-Key": "bk_anything"})
    assert (refused.status_code, refused.json()) == (401, INVALID_KEY)
    assert http.get("/wallet/me", headers={"X-API-Key": "bk_club"}).status_code == 200


def test_the_default_mode_revokes_and_rotates_any_key(http: httpx.Client) -> None:
    job_id = http.post("/agent/prompt", json={"prompt": PRICE}).json()["jobId"]
    rotated = http.post("/__mock/keys/rotate", json={"key": "bk_test", "newKey": "bk_next"})
    assert rotated.status_code == 200
    old = http.get(f"/agent/job/{job_id}")
    assert (old.status_code, old.json()) == (401, INVALID_KEY)
    # The new key inherits the old key's account, so its jobs.
    assert http.get(f"/agent/job/{job_id}", headers={"X-API-Key": "bk_next"}).status_code == 200
    assert http.post("/__mock/keys/revoke", json={"key": "bk_next"}).status_code == 200
    assert http.get("/wallet/me", headers={"X-API-Key": "bk_next"}).status_code == 401
    assert http.get("/wallet/me", headers={"X-API-Key": "bk_fresh"}).status_code == 200


@pytest.mark.parametrize(
    ("path", "body", "status", "needle"),
    [
        ("/__mock/keys/revoke", {}, 400, "key must be a string"),
        ("/__mock/keys/revoke", {"key": 7}, 400, "key must be a string"),
        ("/__mock/keys/revoke", {"key": ""}, 400, "key must be a string"),
        ("/__mock/keys/revoke", {"key": "k" * 257}, 400, "key must be a string"),
        ("/__mock/keys/revoke", {"key": "bk_club", "why": 1}, 400, "unknown key 'why'"),
        ("/__mock/keys/revoke", {"key": "bk_never"}, 404, "No active API key"),
        ("/__mock/keys/rotate", {"key": "bk_revoked"}, 404, "No active API key"),
        ("/__mock/keys/rotate", {"key": "bk_club", "newKey": "bk_club_2"}, 409, "already a key"),
        ("/__mock/keys/rotate", {"key": "bk_club", "newKey": "bk_club"}, 409, "already a key"),
        ("/__mock/keys/rotate", {"key": "bk_club", "newKey": "has space"}, 400, "printable"),
        ("/__mock/keys/rotate", {"key": "bk_club", "newKey": ["x"]}, 400, "newKey must be"),
        ("/__mock/keys/rotate", {"key": "bk_club", "newKey": None}, 400, "newKey must be"),
        ("/__mock/keys/rotate", {"key": "bk_club", "newKey": "n" * 257}, 400, "newKey must be"),
    ],
)
def test_hostile_control_input_is_a_4xx_that_changes_nothing(
    raw: httpx.Client, path: str, body: dict[str, Any], status: int, needle: str
) -> None:
    before = raw.get("/__mock/keys").json()
    response = raw.post(path, json=body)
    assert response.status_code == status
    assert needle in response.json()["message"]
    assert raw.get("/__mock/keys").json() == before


def test_a_hostile_account_name_is_not_echoed_whole(raw: httpx.Client) -> None:
    response = raw.put("/__mock/keys", json={"accounts": {"x" * 100_000: {"plan": "club"}}})
    assert response.status_code == 400
    assert "an account id is 1..64" in response.json()["message"]
    assert len(response.text) < 500


@pytest.mark.parametrize(
    ("document", "needle"),
    [
        ({}, "accounts: missing required key"),
        ({"accounts": {}, "extra": 1}, "extra: unknown key"),
        ({"accounts": {"a": {"plan": "gold"}}}, "accounts.a.plan"),
        ({"accounts": {"a": {"plan": "club", "colour": "red"}}}, "accounts.a.colour: unknown key"),
        ({"accounts": {"a b": {"plan": "club"}}}, "accounts"),
        (
            {"accounts": {"a": {"plan": "club"}}, "keys": [{"key": "k", "account": "b"}]},
            "keys[0].account: no account 'b'",
        ),
        (
            {"accounts": {"a": {"plan": "club"}}, "keys": [{"key": "k", "account": "a"}] * 2},
            "keys[1].key: the same key is declared twice",
        ),
        (
            {"accounts": {"a": {"plan": "club"}}, "keys": [{"key": "k", "account": "a", "x": 1}]},
            "keys[0].x: unknown key",
        ),
        (
            {
                "accounts": {"a": {"plan": "club"}},
                "keys": [{"key": "k", "account": "a", "dailyLimit": 10**400}],
            },
            "keys[0].dailyLimit",
        ),
        (
            {
                "accounts": {"a": {"plan": "club"}},
                "keys": [{"key": "k", "account": "a", "dailyLimit": 0}],
            },
            "keys[0].dailyLimit",
        ),
        (
            {
                "accounts": {"a": {"plan": "club"}},
                "keys": [{"key": "k", "account": "a", "readOnly": "yes"}],
            },
            "keys[0].readOnly",
        ),
        (
            {
                "accounts": {"a": {"plan": "club"}},
                "keys": [{"key": "k", "account": "a", "allowedIps": ["0.0.0.0/0"]}],
            },
            "keys[0].allowedIps[0]: IPv4 ranges must be /8 or narrower",
        ),
        (
            {
                "accounts": {"a": {"plan": "club"}},
                "keys": [{"key": "k", "account": "a", "allowedIps": ["not-an-ip"]}],
            },
            "keys[0].allowedIps[0]",
        ),
        ({"accounts": {"a": {"plan": "club", "wallet": "0x12"}}}, "accounts.a.wallet"),
        ({"accounts": {str(i): {"plan": "club"} for i in range(1001)}}, "accounts"),
    ],
)
def test_a_bad_keys_document_is_a_400_naming_the_key(
    raw: httpx.Client, document: dict[str, Any], needle: str
) -> None:
    before = raw.get("/__mock/keys").json()
    response = raw.put("/__mock/keys", json=document)
    assert response.status_code == 400, response.text
    assert needle in response.json()["message"]
    assert raw.get("/__mock/keys").json() == before
