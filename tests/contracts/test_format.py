"""The contract file format: the loader rejects unknown keys and inconsistent files."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from mockbankr.contracts import ContractError, dump_contract, load_contract, loads_contract
from mockbankr.contracts._match import Difference, compare
from mockbankr.contracts.format import Matcher

from .conftest import CONTRACTS, NAMES, PATHS, raw


@pytest.mark.parametrize("path", PATHS, ids=NAMES)
def test_every_committed_file_loads_and_is_written_back_byte_for_byte(path: Path) -> None:
    contract = load_contract(path)
    assert dump_contract(contract) == path.read_bytes()


def test_there_are_at_least_the_fourteen_scenarios_of_the_issue() -> None:
    wanted = {
        "completed",
        "failed",
        "cancel-pending",
        "cancel-processing",
        "cancelled-by-other",
        "poll-timeout",
        "max-attempts",
        "retry-503",
        "rate-limit-429",
        "hung-request",
        "unknown-job",
        "bad-key",
        "x402-pay-and-wait",
        "x402-refused-payment",
    }
    assert wanted <= set(NAMES)
    flavours = {load_contract(path).flavour for path in PATHS}
    assert flavours == {"api-key", "x402"}


def _load(data: dict[str, Any]) -> Any:
    return loads_contract(json.dumps(data), source="test")


UNKNOWN_KEYS = [
    ("top level", lambda d: d.update(comment="hand edit")),
    ("client", lambda d: d["client"].update(verbose=True)),
    ("call", lambda d: d["call"].update(kwargs={})),
    ("end", lambda d: d["end"].update(reason="x")),
    ("exchange", lambda d: d["exchanges"][0].update(latency=0.1)),
    ("request", lambda d: d["exchanges"][0]["request"].update(query={})),
    ("response", lambda d: d["exchanges"][0]["response"].update(reason="OK")),
    ("matcher", lambda d: d["exchanges"][0]["matchers"]["/response/body/jobId"].update(opt=1)),
]


@pytest.mark.parametrize(("where", "edit"), UNKNOWN_KEYS, ids=[u[0] for u in UNKNOWN_KEYS])
def test_the_loader_rejects_an_unknown_key_at_every_level(where: str, edit: Any) -> None:
    data = raw("completed")
    edit(data)
    with pytest.raises(ContractError, match="unknown field"):
        _load(data)


def _exchange0(data: dict[str, Any]) -> dict[str, Any]:
    exchange: dict[str, Any] = data["exchanges"][0]
    return exchange


INVALID = [
    (
        "two kinds",
        lambda d: _exchange0(d)["matchers"].update(
            {"/response/body/status": {"type": "string", "regex": "x"}}
        ),
        "exactly one of",
    ),
    (
        "no kind",
        lambda d: _exchange0(d)["matchers"].update({"/response/body/status": {"bind": "x"}}),
        "exactly one of",
    ),
    (
        "bad regex",
        lambda d: _exchange0(d)["matchers"].update({"/response/body/status": {"regex": "("}}),
        "invalid regex",
    ),
    (
        "dangling pointer",
        lambda d: _exchange0(d)["matchers"].update({"/response/body/nope": {"type": "string"}}),
        "points at nothing",
    ),
    (
        "not a pointer",
        lambda d: _exchange0(d)["matchers"].update({"response.body.status": {"type": "string"}}),
        "not a JSON pointer",
    ),
    (
        "used before bound",
        lambda d: _exchange0(d)["matchers"].update({"/response/body/status": {"same": "later"}}),
        "before any matcher binds it",
    ),
    (
        "bound twice",
        lambda d: d["exchanges"][1]["matchers"].update(
            {"/response/body/jobId": {"regex": ".*", "bind": "job_id"}}
        ),
        "bound twice",
    ),
    ("both outcomes", lambda d: _exchange0(d).update(timed_out_after=1.0), "exactly one of"),
    ("end both", lambda d: d["end"].update(error="PollTimeoutError"), "end needs exactly one"),
    ("time going back", lambda d: d["exchanges"][2].update(at=-1.0), "before the previous"),
    (
        "upper-case header",
        lambda d: _exchange0(d)["request"]["headers"].update({"X-Api-Key": "x"}),
        "must be lower case",
    ),
    ("invalid rule", lambda d: d["rules"].append({"action": {}}), "action needs exactly one"),
    ("other format", lambda d: d.update(format=2), "format 2"),
    ("wrong type", lambda d: d["end"].update(at="soon"), "Expected `float`"),
]


@pytest.mark.parametrize(("case", "edit", "says"), INVALID, ids=[i[0] for i in INVALID])
def test_the_loader_rejects_an_inconsistent_file(case: str, edit: Any, says: str) -> None:
    data = raw("completed")
    edit(data)
    with pytest.raises(ContractError, match=says):
        _load(data)


def test_a_file_must_be_named_after_its_scenario(tmp_path: Path) -> None:
    path = tmp_path / "other-name.json"
    path.write_bytes((CONTRACTS / "completed.json").read_bytes())
    with pytest.raises(ContractError, match=re.escape("must be named completed.json")):
        load_contract(path)


def test_the_writer_is_sorted_indented_and_ends_with_a_newline() -> None:
    text = (CONTRACTS / "completed.json").read_text()
    assert text.endswith("}\n")
    assert not text.endswith("\n\n")
    assert text == json.dumps(json.loads(text), sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def _cmp(expected: Any, actual: Any, matchers: dict[str, Matcher] | None = None) -> Any:
    bindings: dict[str, Any] = {}
    return compare(expected, actual, pointer="", matchers=matchers or {}, bindings=bindings)


def test_compare_reports_the_status_before_the_fields_that_follow_from_it() -> None:
    found = _cmp({"status": "completed", "completedAt": "t"}, {"status": "processing"})
    assert found == Difference("/status", "'completed'", "'processing'")


def test_compare_keeps_json_types_apart() -> None:
    assert _cmp({"a": 1}, {"a": 1.0}) is None
    assert _cmp({"a": True}, {"a": 1}) is not None
    assert _cmp({"a": "1"}, {"a": 1}) is not None
    assert _cmp([1, 2], [1, 2, 3]) == Difference("", "an array of 2 items", "3 items")


def test_matchers_bind_and_reuse_values() -> None:
    bindings: dict[str, Any] = {}
    bind = {"/id": Matcher(regex="^job_[A-Z]+$", bind="job_id")}
    assert (
        compare({"id": "x"}, {"id": "job_AB"}, pointer="", matchers=bind, bindings=bindings) is None
    )
    assert bindings == {"job_id": "job_AB"}
    reuse = {"/p": Matcher(format="/agent/job/{job_id}"), "/id": Matcher(same="job_id")}
    assert (
        compare(
            {"p": "", "id": ""},
            {"p": "/agent/job/job_AB", "id": "job_AB"},
            pointer="",
            matchers=reuse,
            bindings=bindings,
        )
        is None
    )
    wrong = compare({"id": ""}, {"id": "job_CD"}, pointer="", matchers=reuse, bindings=bindings)
    assert wrong == Difference("/id", "'job_AB' (same as job_id)", "'job_CD'")
    assert _cmp({"n": 0}, {"n": 3.5}, {"/n": Matcher(type="integer")}) == Difference(
        "/n", "a JSON integer", "3.5"
    )
