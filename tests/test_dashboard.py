"""``/__mock/ui`` in-process: the page and its files, their protection, and the newest-first
job pages it reads (the browser tests in tests/test_dashboard_browser.py drive the page itself).
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator

import httpx
import pytest

from mockbankr import MemoryStore, Settings, VirtualClock, create_app
from mockbankr.testing import SyncClockTransport
from tests.conftest import KEY

TOKEN = "s3cret-token"


def _client(settings: Settings) -> httpx.Client:
    clock = VirtualClock()
    app = create_app(settings, clock=clock, rng=random.Random(1), store=MemoryStore())
    return httpx.Client(transport=SyncClockTransport(app, clock), base_url="http://127.0.0.1")


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with _client(Settings(seed=1)) as client:
        yield client


def test_the_page_and_its_files_come_from_the_server_only(http: httpx.Client) -> None:
    page = http.get("/__mock/ui")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "connect-src 'self'" in csp
    assert page.headers["x-frame-options"] == "DENY"
    # Every file the page names is one of the server's own, and the server has it.
    linked = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert linked == ["data:,", "/__mock/ui/dashboard.css", "/__mock/ui/dashboard.js"]
    for path in linked[1:]:
        asset = http.get(path)
        assert asset.status_code == 200, path
        assert asset.headers["content-security-policy"] == csp
    assert http.get("/__mock/ui/dashboard.js").headers["content-type"].startswith("text/javascript")
    assert not re.search(r"https?://", http.get("/__mock/ui/dashboard.js").text)


@pytest.mark.parametrize("name", ["index.html", "nothing.js", "..%2fapp.py", "dashboard.JS"])
def test_only_the_pages_files_are_served(http: httpx.Client, name: str) -> None:
    response = http.get(f"/__mock/ui/{name}")
    assert response.status_code == 404
    assert response.json()["error"] == "Not found"


def test_with_a_token_the_page_is_served_but_its_data_needs_the_token() -> None:
    with _client(Settings(seed=1, admin_token=TOKEN)) as http:
        assert http.get("/__mock/ui").status_code == 200
        assert http.get("/__mock/ui/dashboard.js").status_code == 200
        assert http.get("/__mock/jobs").status_code == 401
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        assert http.get("/__mock/jobs", headers=bearer).status_code == 200


def test_a_page_from_another_site_cannot_read_it() -> None:
    """Without a token the page is the control plane's: an Origin of another site is refused
    (in-process there is no Host to check; the live server checks it too)."""
    with _client(Settings(seed=1)) as http:
        for path in ("/__mock/ui", "/__mock/ui/dashboard.js"):
            response = http.get(path, headers={"Origin": "http://evil.example"})
            assert response.status_code == 403, path


def _submit(http: httpx.Client, count: int) -> list[str]:
    ids = []
    for i in range(count):
        prompt = "What is the price of ETH?" if i % 2 else "Swap 10 USDC for ETH"
        response = http.post("/agent/prompt", json={"prompt": prompt}, headers={"X-API-Key": KEY})
        assert response.status_code == 202
        ids.append(response.json()["jobId"])
    return ids


def test_jobs_newest_first_page_by_page(http: httpx.Client) -> None:
    ids = _submit(http, 7)
    newest = list(reversed(ids))
    seen = []
    for offset in (0, 3, 6):
        page = http.get("/__mock/jobs", params={"order": "newest", "offset": offset, "limit": 3})
        body = page.json()
        assert (body["total"], body["offset"], body["limit"]) == (7, offset, 3)
        seen += [job["jobId"] for job in body["jobs"]]
    assert seen == newest
    beyond = http.get("/__mock/jobs", params={"order": "newest", "offset": 9}).json()
    assert (beyond["jobs"], beyond["total"]) == ([], 7)
    oldest = http.get("/__mock/jobs", params={"order": "oldest", "limit": 2}).json()["jobs"]
    assert [job["jobId"] for job in oldest] == ids[:2]


def test_jobs_newest_first_with_a_filter(http: httpx.Client) -> None:
    ids = _submit(http, 6)
    swaps = [job_id for i, job_id in enumerate(ids) if i % 2 == 0]
    body = http.get(
        "/__mock/jobs", params={"order": "newest", "category": "swap", "limit": 2}
    ).json()
    assert body["total"] == 3
    assert [job["jobId"] for job in body["jobs"]] == swaps[::-1][:2]
    job = body["jobs"][0]
    assert job["ownerLabel"].startswith("bk_…")
    assert KEY not in job["ownerLabel"]
    assert job["costUsdc"] == "0.1"


@pytest.mark.parametrize("order", ["", "NEWEST", "random", "newest;"])
def test_an_unknown_order_is_a_400(http: httpx.Client, order: str) -> None:
    response = http.get("/__mock/jobs", params={"order": order})
    assert response.status_code == 400
    assert "order must be oldest or newest" in response.json()["message"]


def test_a_jobs_owner_shows_as_the_journal_shows_it(http: httpx.Client) -> None:
    """One fingerprint per API key in every table of the page (never the key itself)."""
    (job_id,) = _submit(http, 1)
    job = http.get(f"/__mock/jobs/{job_id}").json()
    (entry,) = http.get("/__mock/journal", params={"path": "/agent/prompt"}).json()["entries"]
    assert job["ownerLabel"] == entry["owner"]
    assert KEY not in job["ownerLabel"]
    (client,) = http.get("/__mock/verdicts").json()["clients"]
    assert client["owner"] == job["ownerLabel"]
