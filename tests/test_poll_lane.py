"""Hot status polls skip the router: steering answers them itself (its *lane*), and the
answer, the journal and the metrics are exactly what the router's endpoint gives.

Two apps, built alike on one seed, get the same requests: one as served (the lane on),
one whose steering knows no status polls (every poll goes through the router). Their
answers, journals and request counts must not differ, for the polls of both flavours,
their errors, and generated paths and headers.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route

from mockbankr import MemoryStore, Settings, VirtualClock, create_app
from mockbankr._http import StatusPoll
from mockbankr.steering import SteeringMiddleware
from mockbankr.testing import SyncClockTransport

KEY = "bk_lane"
OTHER_KEY = "bk_lane_other"
PROMPTS = ["What is the price of ETH?", "Swap 1 ETH for USDC", "Analyse my portfolio risk"]


def _app(*, lane: bool) -> tuple[Starlette, httpx.Client, VirtualClock]:
    clock = VirtualClock()
    settings_ = Settings(seed=7, api_keys=frozenset({KEY, OTHER_KEY}))
    app = create_app(settings_, clock=clock, rng=random.Random(7), store=MemoryStore())
    if not lane:  # the same steering, knowing no status polls: the router answers them
        app.user_middleware = [
            Middleware(m.cls, *m.args, **{**m.kwargs, "polls": {}})
            if m.cls is SteeringMiddleware
            else m
            for m in app.user_middleware
        ]
        app.middleware_stack = None
    http = httpx.Client(transport=SyncClockTransport(app, clock), base_url="http://127.0.0.1")
    return app, http, clock


class Twins:
    """The served app and its lane-less twin, with the same jobs."""

    def __init__(self) -> None:
        self.apps = [_app(lane=True), _app(lane=False)]
        self.job_ids: list[str] = []
        for i, prompt in enumerate(PROMPTS * 2):
            key = KEY if i % 2 == 0 else OTHER_KEY
            ids = {self._prompt(http, key, prompt) for _, http, _ in self.apps}
            assert len(ids) == 1, "one seed: both apps give the same job ids"
            self.job_ids.append(ids.pop())
        for _, _, clock in self.apps:
            clock.advance(3.0)  # a mix of pending, processing and completed jobs

    @staticmethod
    def _prompt(http: httpx.Client, key: str, prompt: str) -> str:
        answer = http.post("/agent/prompt", json={"prompt": prompt}, headers={"X-API-Key": key})
        assert answer.status_code == 202, answer.text
        job_id: str = answer.json()["jobId"]
        return job_id

    def send(self, method: str, path: str, headers: dict[str, str]) -> list[httpx.Response]:
        return [http.request(method, path, headers=headers) for _, http, _ in self.apps]

    def journals(self) -> list[list[dict[str, Any]]]:
        return [
            [_comparable(e.to_json()) for e in app.state.journal.entries()]
            for app, _, _ in self.apps
        ]

    def counts(self) -> list[dict[tuple[str, int], int]]:
        return [asyncio.run(app.state.counters.snapshot()).requests for app, _, _ in self.apps]

    def close(self) -> None:
        for _, http, _ in self.apps:
            http.close()


def _comparable(entry: dict[str, Any]) -> dict[str, Any]:
    """A journal entry without what differs between any two runs (wall-clock times)."""
    return {k: v for k, v in entry.items() if k not in ("latencyMs", "wallTime")}


@pytest.fixture(scope="module")
def twins() -> Iterator[Twins]:
    pair = Twins()
    yield pair
    pair.close()


def _same(twins: Twins, method: str, path: str, headers: dict[str, str]) -> httpx.Response:
    lane, routed = twins.send(method, path, headers)
    assert lane.status_code == routed.status_code, (path, headers, lane.text, routed.text)
    assert lane.content == routed.content
    assert sorted(lane.headers.multi_items()) == sorted(routed.headers.multi_items())
    return lane


def _scenarios(job_ids: list[str]) -> list[tuple[str, dict[str, str], int]]:
    mine, theirs = job_ids[0], job_ids[1]
    return [
        (f"/agent/job/{mine}", {"X-API-Key": KEY}, 200),
        (f"/agent/job/{mine}", {"Authorization": f"Bearer {KEY}"}, 200),
        (f"/agent/job/{mine}", {"X-API-Key": KEY, "User-Agent": "lane-test/1"}, 200),
        (f"/agent/job/{theirs}", {"X-API-Key": KEY}, 404),  # another account's job
        ("/agent/job/job_nope", {"X-API-Key": KEY}, 404),
        (f"/agent/job/{mine}", {}, 401),
        (f"/agent/job/{mine}", {"X-API-Key": "bk_unknown"}, 401),
        ("/agent/job/%20", {"X-API-Key": KEY}, 400),  # a blank id
        (f"/agent/job/{mine}/", {"X-API-Key": KEY}, 404),  # not a poll: the router's 404
        (f"/v2/job/{mine}", {}, 401),  # an x402 job read needs its signature
    ]


def test_polls_and_their_errors_answer_as_the_router_does(twins: Twins) -> None:
    statuses = []
    for path, headers, _ in _scenarios(twins.job_ids):
        statuses.append(_same(twins, "GET", path, headers).status_code)
    assert statuses == [status for _, _, status in _scenarios(twins.job_ids)]
    lane_journal, routed_journal = twins.journals()
    assert lane_journal == routed_journal
    assert [e["jobStatus"] for e in lane_journal[-10:][:3]] != [None, None, None]
    lane_counts, routed_counts = twins.counts()
    assert lane_counts == routed_counts
    assert lane_counts[("/agent/job/{job_id}", 200)] >= 3


def test_a_hot_poll_never_reaches_the_router() -> None:
    app, http, _ = _app(lane=True)
    with http:
        job_id = Twins._prompt(http, KEY, PROMPTS[0])
        # From here on the router's poll endpoint fails: only a poll it answers shows it.
        for i, route in enumerate(app.router.routes):
            if isinstance(route, Route) and isinstance(route.endpoint, StatusPoll):
                app.router.routes[i] = Route(route.path, _broken, methods=["GET"])
        hot = http.get(f"/agent/job/{job_id}", headers={"X-API-Key": KEY})
        assert hot.status_code == 200
        assert hot.json()["jobId"] == job_id
        # A steered poll (a directive) takes the full path, through the router.
        with pytest.raises(RuntimeError, match="the router answered"):
            http.get(f"/agent/job/{job_id}", headers={"X-API-Key": KEY, "X-Mockbankr-Latency": "1"})


async def _broken(request: Any) -> None:
    raise RuntimeError("the router answered this poll")


_SEGMENT = st.text(alphabet=st.sampled_from("abcjob_XYZ019-. %/é"), min_size=0, max_size=12)
_HEADERS = st.fixed_dictionaries(
    {},
    optional={
        "X-API-Key": st.sampled_from([KEY, OTHER_KEY, "", " ", "bk_unknown", KEY + " "]),
        "Authorization": st.sampled_from([f"Bearer {KEY}", "Bearer", "Basic x", ""]),
        "User-Agent": st.sampled_from(["a", "lane/1 (x)", ""]),
        "Content-Length": st.sampled_from(["0"]),
    },
)


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    flavour=st.sampled_from(["/agent/job/", "/v2/job/"]),
    job=st.one_of(st.integers(0, len(PROMPTS) * 2 - 1), _SEGMENT),
    headers=_HEADERS,
    method=st.sampled_from(["GET", "GET", "HEAD"]),
)
def test_generated_polls_answer_as_the_router_does(
    twins: Twins, flavour: str, job: int | str, headers: dict[str, str], method: str
) -> None:
    job_id = twins.job_ids[job] if isinstance(job, int) else job
    _same(twins, method, flavour + job_id, headers)
    lane_journal, routed_journal = twins.journals()
    assert lane_journal[-1] == routed_journal[-1]
    lane_counts, routed_counts = twins.counts()
    assert lane_counts == routed_counts
