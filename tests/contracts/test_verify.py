"""Verify (provider side): the simulator against every contract, and proof it can fail."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from mockbankr.contracts import (
    TEST_CREDENTIALS,
    Credentials,
    load_contract,
    verify_all,
    verify_in_process,
    verify_live,
)
from mockbankr.contracts._target import has_control_plane, install_rules
from mockbankr.contracts.cli import contracts
from mockbankr.contracts.verify import spends_money
from mockbankr.settings import Settings
from mockbankr.store import JobStore
from mockbankr.testing import LiveServer, MockbankrEnv
from tests.conftest import STORES

from .conftest import CONTRACTS, NAMES, PATHS, Mutation, mutated, raw

pytestmark = pytest.mark.anyio

#: rich sizes its table to COLUMNS; wide enough that no difference is folded.
WIDE = {"COLUMNS": "200"}


@pytest.fixture(params=STORES)
def store_kind(request: pytest.FixtureRequest) -> str:
    """Every contract verifies on the memory store and on Redis."""
    kind: str = request.param
    return kind


@pytest.mark.parametrize("path", PATHS, ids=NAMES)
async def test_the_simulator_verifies_every_contract(path: Path, store: JobStore) -> None:
    result = await verify_in_process(load_contract(path), store=store)
    assert result.outcome == "pass", result.detail
    assert result.checked == result.total > 0


def _status(data: dict[str, Any]) -> None:
    data["exchanges"][0]["response"]["status"] = 200


def _missing_field(data: dict[str, Any]) -> None:
    del data["exchanges"][3]["response"]["body"]["processingTime"]
    del data["exchanges"][3]["matchers"]["/response/body/processingTime"]


def _extra_field(data: dict[str, Any]) -> None:
    data["exchanges"][2]["response"]["body"]["queuePosition"] = 1


def _shifted_offset(data: dict[str, Any]) -> None:
    data["exchanges"][3]["at"] = 2.0  # the completed answer, asked for 2 s early


def _header(data: dict[str, Any]) -> None:
    data["exchanges"][1]["response"]["headers"]["retry-after"] = "9"


def _no_rules(data: dict[str, Any]) -> None:
    data["rules"] = []


def _impossible_id(data: dict[str, Any]) -> None:
    data["exchanges"][1]["matchers"]["/response/body/jobId"]["regex"] = "^job-[0-9]+$"


def _answer_instead_of_hang(data: dict[str, Any]) -> None:
    exchange = data["exchanges"][1]
    del exchange["timed_out_after"]
    exchange["response"] = {"status": 200, "headers": {}, "body": {}}


def _hang_instead_of_answer(data: dict[str, Any]) -> None:
    exchange = data["exchanges"][0]
    del exchange["response"]
    exchange["timed_out_after"] = 30.0
    exchange["matchers"] = {
        k: v for k, v in exchange["matchers"].items() if k.startswith("/request/")
    }


MUTATIONS: list[tuple[str, Mutation, str, str]] = [
    ("completed", _status, "exchange 0 ", "/response/status: expected 200, got 202"),
    ("completed", _missing_field, "exchange 3 ", "/response/body/processingTime: expected no"),
    ("completed", _extra_field, "exchange 2 ", "/response/body/queuePosition: expected the"),
    ("completed", _shifted_offset, "exchange 3 ", "/response/body/status: expected 'completed'"),
    ("rate-limit-429", _header, "exchange 1 ", "/response/headers/retry-after: expected '9'"),
    ("retry-503", _no_rules, "exchange 0 ", "/response/status: expected 503, got 202"),
    ("x402-pay-and-wait", _impossible_id, "exchange 1 ", "/response/body/jobId: expected a str"),
    ("hung-request", _answer_instead_of_hang, "exchange 1 ", "expected HTTP 200, got no answer"),
    ("unknown-job", _hang_instead_of_answer, "exchange 0 ", "expected no answer within 30.0 s"),
]


@pytest.mark.parametrize(
    ("name", "mutate", "where", "says"), MUTATIONS, ids=[m[1].__name__[1:] for m in MUTATIONS]
)
async def test_a_mutated_contract_fails_verify_and_names_the_difference(
    name: str, mutate: Mutation, where: str, says: str
) -> None:
    result = await verify_in_process(mutated(name, mutate))
    assert result.outcome == "fail"
    assert result.detail is not None
    assert result.detail.startswith(where)
    assert says in result.detail


def test_the_cli_exits_non_zero_and_shows_the_first_difference(tmp_path: Path) -> None:
    for name in ("completed", "unknown-job"):
        data = raw(name)
        if name == "completed":
            _status(data)
        (tmp_path / f"{name}.json").write_text(json.dumps(data, indent=2))
    result = CliRunner(env=WIDE).invoke(contracts, ["verify", "--dir", str(tmp_path)])
    assert result.exit_code == 1, result.output
    assert "FAIL" in result.output
    assert "/response/status: expected 200, got 202" in result.output
    assert "1 passed, 1 failed, 0 skipped" in result.output


def test_the_cli_verifies_the_committed_contracts() -> None:
    result = CliRunner(env=WIDE).invoke(contracts, ["verify", "--dir", str(CONTRACTS)])
    assert result.exit_code == 0, result.output
    assert f"{len(PATHS)} passed, 0 failed, 0 skipped" in result.output


def test_the_cli_verifies_one_scenario_and_refuses_an_unknown_one() -> None:
    runner = CliRunner(env=WIDE)
    one = runner.invoke(contracts, ["verify", "--dir", str(CONTRACTS), "--scenario", "bad-key"])
    assert one.exit_code == 0, one.output
    assert "1 passed" in one.output
    unknown = runner.invoke(contracts, ["verify", "--dir", str(CONTRACTS), "--scenario", "nope"])
    assert unknown.exit_code == 2
    assert "no contract for nope" in unknown.output


def test_the_cli_refuses_a_folder_without_contracts(tmp_path: Path) -> None:
    result = CliRunner(env=WIDE).invoke(contracts, ["verify", "--dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "no contract files" in result.output


class _NoControlPlane(httpx.AsyncBaseTransport):
    """The simulator in-process, minus /__mock: what the real API looks like to verify."""

    def __init__(self, env: MockbankrEnv) -> None:
        self._inner = env.transport

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/__mock"):
            return httpx.Response(404, json={"error": "Not found", "message": "no route"})
        return await self._inner.handle_async_request(request)


def _contract(name: str) -> Any:
    return load_contract(CONTRACTS / f"{name}.json")


async def test_without_a_control_plane_verify_skips_steered_and_paid_contracts() -> None:
    settings = Settings(seed=1, api_keys=frozenset({TEST_CREDENTIALS.api_key}))
    async with MockbankrEnv(seed=1, settings=settings) as env:
        transport = _NoControlPlane(env)

        async def live(name: str, **kwargs: Any) -> Any:
            kwargs.setdefault("credentials", TEST_CREDENTIALS)
            return await verify_live(
                _contract(name), base_url=env.base_url, transport=transport, **kwargs
            )

        steered = await live("retry-503")
        assert (steered.outcome, steered.detail) == (
            "skip",
            "steered by fault rules; this server has no /__mock control plane",
        )
        paid = await live("completed")
        assert paid.outcome == "skip"
        assert paid.detail is not None
        assert "--allow-spend" in paid.detail
        no_key = await live(
            "unknown-job", credentials=Credentials(None, "bk_revoked", private_key=None)
        )
        assert (no_key.outcome, no_key.detail) == ("skip", "needs an API key: set BANKR_API_KEY")
        free = await live("unknown-job")
        assert free.outcome == "pass", free.detail
        assert (await live("x402-over-cap")).outcome == "pass"


def test_which_contracts_spend_money() -> None:
    spending = {name for name in NAMES if spends_money(_contract(name))}
    assert spending == {
        f"{prefix}{name}"
        for prefix in ("", "x402-")
        for name in (
            "cancel-pending",
            "cancel-processing",
            "cancelled-by-other",
            "failed",
            "hung-request",
            "max-attempts",
            "poll-timeout",
            "rate-limit-429",
            "retry-503",
        )
    } | {"completed", "x402-pay-and-wait"}


@pytest.mark.live
def test_verify_against_a_live_server_with_its_control_plane() -> None:
    # seed= as well: LiveServer seeds its simulator from it, not from settings.seed.
    settings = Settings(seed=1, api_keys=frozenset({TEST_CREDENTIALS.api_key}))
    names = [  # all at offset 0, so real time costs nothing; two of them pay
        "unknown-job",
        "bad-key",
        "cancel-pending",
        "x402-cancel-pending",
        "x402-over-cap",
        "x402-refused-payment",
    ]
    with LiveServer(seed=1, settings=settings) as server:
        env = {
            "BANKR_API_KEY": TEST_CREDENTIALS.api_key,
            "BANKR_PRIVATE_KEY": TEST_CREDENTIALS.private_key,
            **WIDE,
        }
        result = CliRunner(env=env).invoke(
            contracts,
            ["verify", "--dir", str(CONTRACTS), "--base-url", server.base_url]
            + [arg for name in names for arg in ("--scenario", name)],
        )
    assert result.exit_code == 0, result.output
    # A mockbankr server has a control plane: nothing costs money, no --allow-spend needed.
    assert f"{len(names)} passed, 0 failed, 0 skipped" in result.output


async def test_rules_are_installed_through_the_control_plane() -> None:
    async with MockbankrEnv(seed=1) as env:
        assert await has_control_plane(env.http)
        await env.http.post("/__mock/rules", json={"action": {"drop": {}}})
        await install_rules(env.http, _contract("retry-503").rules)
        listed = (await env.http.get("/__mock/rules")).json()["rules"]
        assert [rule["match"] for rule in listed] == [{"method": "POST", "path": "/agent/prompt"}]
        assert listed[0]["remaining"] == 1


#: Contracts whose polls land on the instants a job starts or ends, and the hung ones.
STEPPED = [
    "completed",
    "failed",
    "x402-failed",
    "cancel-processing",
    "x402-pay-and-wait",
    "rate-limit-429",
    "hung-request",
    "x402-hung-request",
]


@pytest.mark.live
async def test_verify_steps_a_fast_live_server_clock_and_passes_every_time() -> None:
    # A live server at --speed 20 would run 20 simulated seconds per real one: real-time
    # offsets could never match. verify stops its clock and steps it to each offset.
    settings = Settings(seed=1, speed=20, api_keys=frozenset({TEST_CREDENTIALS.api_key}))
    chosen = [_contract(name) for name in STEPPED]
    with LiveServer(seed=1, settings=settings) as server:
        for _ in range(2):
            results = await verify_all(
                chosen, base_url=server.base_url, credentials=TEST_CREDENTIALS
            )
            assert [(r.scenario, r.outcome, r.detail) for r in results] == [
                (name, "pass", None) for name in STEPPED
            ]
        async with httpx.AsyncClient(base_url=server.base_url) as http:
            clock = (await http.get("/__mock/clock")).json()
        assert clock["speed"] == 20  # given back after each contract
