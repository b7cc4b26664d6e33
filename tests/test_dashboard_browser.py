"""``/__mock/ui`` in a real browser: Playwright driving Debian's ``/usr/bin/chromium``, headless.

Each test starts a live server on a loopback port (:class:`~mockbankr.testing.LiveServer`,
speed 0: simulated time moves only when the page or the test moves it), opens the page in
a fresh browser context, and saves a screenshot to ``test-artifacts/screenshots/``
(ignored by git). Waiting is Playwright's own: ``expect(...)`` retries until its timeout
(at most 2 s of wall time here), never a sleep. Playwright's own browser download is not
used: ``make test`` installs Debian's ``chromium`` (``SYSDEPS`` in the Makefile).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright

from mockbankr import Settings
from mockbankr.testing import LiveServer
from tests.conftest import KEY

pytestmark = [pytest.mark.live, pytest.mark.timeout(60)]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "screenshots"
#: Wall milliseconds a change may take to show in the page (it polls every second).
SHOWS_WITHIN = 2000
PRICE = "What is the price of ETH?"


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        reason = f"{CHROMIUM} is missing: apt-get install chromium (make test does)"
        if os.environ.get("MOCKBANKR_REQUIRE_PEERS") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    profile = tmp_path_factory.mktemp("chromium-profile")  # a new, empty user-data dir
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
        )
        try:
            yield context.browser or _only_context(context)
        finally:
            context.close()
    shutil.rmtree(profile, ignore_errors=True)


def _only_context(context: object) -> Browser:
    raise RuntimeError(f"no browser behind {context!r}")


@pytest.fixture
def server() -> Iterator[LiveServer]:
    with LiveServer(settings=Settings(seed=1, speed=0.0)) as live:
        yield live


class Watched:
    """A page with its console errors and every URL it requested."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.errors: list[str] = []
        self.requests: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))
        page.on("request", lambda request: self.requests.append(request.url))

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)


@pytest.fixture
def watched(
    browser: Browser, server: LiveServer, request: pytest.FixtureRequest
) -> Iterator[Watched]:
    context = browser.new_context(base_url=server.base_url)
    page = context.new_page()
    watch = Watched(page)
    page.goto("/__mock/ui")
    expect(page.locator("#clock-kind")).to_have_text("scaled", timeout=SHOWS_WITHIN)
    try:
        yield watch
    finally:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=SCREENSHOTS / f"{request.node.name}.png", full_page=True)
        context.close()


def submit(server: LiveServer, prompt: str = PRICE, key: str = KEY) -> str:
    response = httpx.post(
        server.base_url + "/agent/prompt", json={"prompt": prompt}, headers={"X-API-Key": key}
    )
    assert response.status_code == 202, response.text
    job_id: str = response.json()["jobId"]
    return job_id


def poll(server: LiveServer, job_id: str, key: str = KEY) -> httpx.Response:
    return httpx.get(f"{server.base_url}/agent/job/{job_id}", headers={"X-API-Key": key})


def test_the_page_loads_cleanly_from_its_own_origin(watched: Watched, server: LiveServer) -> None:
    page = watched.page
    expect(page.locator("#clock-speed")).to_have_text("0", timeout=SHOWS_WITHIN)
    expect(page.locator("#jobs-total")).to_have_text("(0)", timeout=SHOWS_WITHIN)
    expect(page.locator("#verdicts")).to_have_text("no clients yet", timeout=SHOWS_WITHIN)
    assert watched.errors == []
    origins = {f"{urlsplit(url).scheme}://{urlsplit(url).netloc}" for url in watched.requests}
    assert origins == {server.base_url}, watched.requests
    paths = {urlsplit(url).path for url in watched.requests}
    assert {"/__mock/ui", "/__mock/ui/dashboard.js", "/__mock/clock", "/__mock/jobs"} <= paths


def test_a_submitted_job_shows_in_the_table_within_two_seconds(
    watched: Watched, server: LiveServer
) -> None:
    job_id = submit(server)
    row = watched.page.locator(f'#jobs-table tr[data-job-id="{job_id}"]')
    expect(row).to_be_visible(timeout=SHOWS_WITHIN)
    expect(row.locator("td.status")).to_have_text("pending")
    expect(row.locator("td.category")).to_have_text("price")
    expect(row.locator("td.owner")).not_to_have_text(KEY)  # a fingerprint, not the key
    assert watched.errors == []


def test_advance_10_s_completes_a_price_query(watched: Watched, server: LiveServer) -> None:
    job_id = submit(server)
    # The seed decides the outcome: this one completes (a price query fails 5% of the time).
    job = httpx.get(f"{server.base_url}/__mock/jobs/{job_id}").json()
    assert job["outcome"] == "completed"
    page = watched.page
    status = page.locator(f'#jobs-table tr[data-job-id="{job_id}"] td.status')
    expect(status).to_have_text("pending", timeout=SHOWS_WITHIN)
    page.click("#advance-10")
    expect(status).to_have_text("completed", timeout=SHOWS_WITHIN)
    # A click on the row opens the job's timeline and body.
    status.click()
    expect(page.locator("#job-detail-id")).to_have_text(job_id, timeout=SHOWS_WITHIN)
    expect(page.locator("#job-body")).to_contain_text('"status": "completed"')
    assert watched.errors == []


def test_a_rule_added_in_the_page_answers_the_next_poll_503(
    watched: Watched, server: LiveServer
) -> None:
    job_id = submit(server)
    page = watched.page
    rule = {
        "id": "from-the-page",
        "match": {"method": "GET", "path": "/agent/job/*"},
        "action": {"respond": {"status": 503, "body": {"error": "x", "message": "injected"}}},
        "times": 1,
    }
    page.fill("#rule-json", json.dumps(rule))
    page.click("#rule-add")
    row = page.locator('#rules-table tr[data-rule-id="from-the-page"]')
    expect(row).to_be_visible(timeout=SHOWS_WITHIN)
    assert poll(server, job_id).status_code == 503
    page.fill("#journal-path", "/agent/job/*")
    newest = page.locator("#journal-table tbody tr").first
    expect(newest.locator("td.status")).to_have_text("503", timeout=SHOWS_WITHIN)
    expect(newest).to_contain_text(f"/agent/job/{job_id}")
    expect(newest).to_contain_text("respond")
    expect(row.locator("td").nth(3)).to_have_text("0", timeout=SHOWS_WITHIN)  # used up
    assert watched.errors == []


def test_a_client_polling_too_fast_fails_poll_interval(
    watched: Watched, server: LiveServer
) -> None:
    key = "bk_impatient"
    job_id = submit(server, key=key)
    for _ in range(4):  # time stands still (speed 0): every poll 0 s after the previous
        assert poll(server, job_id, key).status_code == 200
    check = watched.page.locator('#verdicts .check[data-check="poll-interval"]')
    expect(check).to_have_attribute("data-verdict", "fail", timeout=SHOWS_WITHIN)
    expect(check).to_have_class("check fail")
    expect(watched.page.locator("#verdicts .evidence").first).to_contain_text("poll-interval")
    assert watched.errors == []


def test_with_an_admin_token_the_page_asks_for_it_once(browser: Browser) -> None:
    token = "s3cret-dashboard-token"
    with LiveServer(settings=Settings(seed=1, speed=0.0, admin_token=token)) as server:
        bearer = {"Authorization": f"Bearer {token}"}
        submitted = httpx.post(
            server.base_url + "/agent/prompt",
            json={"prompt": PRICE},
            headers={"X-API-Key": KEY},
        )
        job_id = submitted.json()["jobId"]
        context = browser.new_context(base_url=server.base_url)
        page = context.new_page()
        sent: list[str | None] = []
        page.on(
            "request",
            lambda request: (
                sent.append(request.headers.get("authorization"))
                if "/__mock/jobs" in request.url
                else None
            ),
        )
        try:
            page.goto("/__mock/ui")  # the page itself needs no token
            expect(page.locator("#status")).to_contain_text("admin token", timeout=SHOWS_WITHIN)
            assert set(sent) == {None}
            page.fill("#token", token)
            page.click("#token-form button[type=submit]")
            row = page.locator(f'#jobs-table tr[data-job-id="{job_id}"]')
            expect(row).to_be_visible(timeout=SHOWS_WITHIN)
            expect(page.locator("#status")).to_have_text("")
            assert sent[-1] == bearer["Authorization"]
            page.reload()  # kept by the tab: not asked again
            expect(row).to_be_visible(timeout=SHOWS_WITHIN)
        finally:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=SCREENSHOTS / "test_admin_token.png", full_page=True)
            context.close()
