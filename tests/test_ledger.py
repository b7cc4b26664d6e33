"""The spend ledger: entries, totals, per-payer and per-status tallies, duplicate submits."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mockbankr.ledger import JOB_STATUSES, LedgerEntry, summarize
from mockbankr.money import USDC_BASE
from mockbankr.x402 import transaction_hash

ALICE = "0xaAaAaAaaAaAaAaaAaAAAAAAAAaaaAaAaAaaAaaAa"
BOB = "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"
PRICE = 100_000


def entry(
    n: int,
    *,
    payer: str = ALICE,
    prompt: str = "price of ETH",
    at: float = 0.0,
    amount: int = PRICE,
) -> LedgerEntry:
    nonce = "0x" + f"{n:064x}"
    return LedgerEntry(
        payer=payer,
        amount_atomic=amount,
        asset=USDC_BASE,
        network="base",
        nonce=nonce,
        job_id=f"job_{n}",
        prompt=prompt,
        at=at,
        transaction=transaction_hash(nonce),
    )


def groups(summary: dict[str, Any]) -> list[list[str]]:
    return [group["jobIds"] for group in summary["duplicates"]]


def test_an_entry_is_frozen_and_encodes_with_camel_case_keys() -> None:
    e = entry(1, at=12.5)
    keys = [
        "payer",
        "amountAtomic",
        "asset",
        "network",
        "nonce",
        "jobId",
        "prompt",
        "at",
        "transaction",
    ]
    assert list(msgspec.to_builtins(e)) == keys
    assert msgspec.json.decode(msgspec.json.encode(e), type=LedgerEntry) == e
    with pytest.raises(AttributeError):
        e.amount_atomic = 0  # type: ignore[misc]
    assert hash(e) == hash(entry(1, at=12.5))


def test_an_empty_ledger() -> None:
    summary = summarize([], {})
    assert (summary["count"], summary["totalAtomic"], summary["totalUsdc"]) == (0, "0", "0")
    assert summary["byPayer"] == {}
    assert summary["byStatus"] == {
        s: {"count": 0, "totalAtomic": "0", "totalUsdc": "0"} for s in (*JOB_STATUSES, "unknown")
    }
    assert (summary["duplicates"], summary["duplicateCount"], summary["entries"]) == ([], 0, [])
    assert (summary["assets"], summary["networks"]) == ([], [])


def test_totals_per_payer_and_per_final_status() -> None:
    entries = [
        entry(1, at=0),
        entry(2, payer=BOB, prompt="swap", at=100),
        entry(3, prompt="balance", at=200),
        entry(4, payer=BOB, prompt="bridge", at=300, amount=250_000),
        entry(5, prompt="analysis", at=400),
        entry(6, prompt="orphan", at=500),
    ]
    final = {
        "job_1": "completed",
        "job_2": "failed",
        "job_3": "cancelled",
        "job_4": "completed",
        "job_5": "processing",
    }
    summary = summarize(entries, final)
    assert summary["count"] == 6
    assert (summary["totalAtomic"], summary["totalUsdc"]) == ("750000", "0.75")
    assert summary["byPayer"] == {
        ALICE: {"count": 4, "totalAtomic": "400000", "totalUsdc": "0.4"},
        BOB: {"count": 2, "totalAtomic": "350000", "totalUsdc": "0.35"},
    }
    by_status = {status: (v["count"], v["totalUsdc"]) for status, v in summary["byStatus"].items()}
    assert by_status == {
        "pending": (0, "0"),
        "processing": (1, "0.1"),
        "completed": (2, "0.35"),
        "failed": (1, "0.1"),  # a failed job still cost its price
        "cancelled": (1, "0.1"),  # and so did a cancelled one
        "unknown": (1, "0.1"),  # job_6 has no final status
    }
    assert (summary["assets"], summary["networks"]) == ([USDC_BASE], ["base"])
    assert summary["duplicates"] == []
    json.dumps(summary)  # JSON-ready as is


def test_an_unexpected_status_is_counted_as_unknown() -> None:
    summary = summarize([entry(1)], {"job_1": "exploded"})
    assert summary["byStatus"]["unknown"]["count"] == 1
    assert "exploded" not in summary["byStatus"]


def test_entries_are_camel_case_dicts_with_money_as_strings() -> None:
    e = entry(7, at=3.25, amount=1)
    [data] = summarize([e], {"job_7": "pending"})["entries"]
    assert data == {
        "payer": ALICE,
        "amountAtomic": "1",
        "amountUsdc": "0.000001",
        "asset": USDC_BASE,
        "network": "base",
        "nonce": e.nonce,
        "jobId": "job_7",
        "prompt": "price of ETH",
        "at": 3.25,
        "transaction": e.transaction,
    }


@pytest.mark.parametrize(
    ("amounts", "atomic", "usdc"),
    [
        ([PRICE], "100000", "0.1"),
        ([PRICE] * 10, "1000000", "1"),
        ([PRICE, 1], "100001", "0.100001"),
        ([PRICE] * 12, "1200000", "1.2"),
        ([10**30], str(10**30), "1" + "0" * 24),
        ([0], "0", "0"),
    ],
)
def test_total_formatting(amounts: list[int], atomic: str, usdc: str) -> None:
    entries = [entry(i, prompt=str(i), at=i * 1000.0, amount=a) for i, a in enumerate(amounts)]
    summary = summarize(entries, {})
    assert (summary["totalAtomic"], summary["totalUsdc"]) == (atomic, usdc)


@pytest.mark.parametrize(
    ("gap", "duplicate"),
    [(0.0, True), (59.999, True), (60.0, True), (60.000001, False), (61.0, False)],
)
def test_duplicates_at_the_60_second_boundary(gap: float, duplicate: bool) -> None:
    summary = summarize([entry(1, at=1000.0), entry(2, at=1000.0 + gap)], {})
    assert groups(summary) == ([["job_1", "job_2"]] if duplicate else [])


def test_a_duplicate_group_reports_who_what_when_and_the_extra_cost() -> None:
    entries = [entry(1, at=10.0), entry(2, at=40.0), entry(3, at=90.0, amount=150_000)]
    [group] = summarize(entries, {})["duplicates"]
    assert group == {
        "payer": ALICE,
        "prompt": "price of ETH",
        "count": 3,
        "jobIds": ["job_1", "job_2", "job_3"],  # 10 -> 40 -> 90: chained, though 10 -> 90 > 60
        "firstAt": 10.0,
        "lastAt": 90.0,
        "extraAtomic": "250000",
        "extraUsdc": "0.25",
    }
    summary = summarize(entries, {})
    assert (summary["duplicateCount"], summary["duplicateExtraUsdc"]) == (2, "0.25")


def test_duplicates_need_the_same_payer_and_the_same_prompt() -> None:
    entries = [
        entry(1, at=0.0),
        entry(2, payer=BOB, at=1.0),
        entry(3, prompt="price of eth", at=2.0),  # prompts compare exactly
        entry(4, at=500.0),
        entry(5, payer=BOB, at=530.0),
    ]
    assert groups(summarize(entries, {})) == []  # 4 and 5 are 30 s apart, but not the same payer


def test_duplicates_ignore_input_order_and_list_groups_by_first_time() -> None:
    entries = [
        entry(4, payer=BOB, prompt="swap", at=205.0),
        entry(3, payer=BOB, prompt="swap", at=200.0),
        entry(2, at=130.0),
        entry(1, at=100.0),
    ]
    assert groups(summarize(entries, {})) == [["job_1", "job_2"], ["job_3", "job_4"]]


def test_the_duplicate_window_is_a_parameter() -> None:
    entries = [entry(1, at=0.0), entry(2, at=100.0)]
    assert groups(summarize(entries, {}, duplicate_window=100.0)) == [["job_1", "job_2"]]
    assert groups(summarize(entries, {}, duplicate_window=0.0)) == []
    assert groups(summarize([entry(1, at=5.0), entry(2, at=5.0)], {}, duplicate_window=0.0)) == [
        ["job_1", "job_2"]
    ]


@pytest.mark.parametrize("window", [-1.0, float("nan")])
def test_a_negative_or_nan_window_is_refused(window: float) -> None:
    with pytest.raises(ValueError, match="duplicate_window"):
        summarize([], {}, duplicate_window=window)


def _oracle_groups(entries: list[LedgerEntry], window: float) -> set[frozenset[str]]:
    """Connected components of 'same payer and prompt, at most `window` apart', by brute force."""
    parent = list(range(len(entries)))

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    for i, a in enumerate(entries):
        for j, b in enumerate(entries[:i]):
            if (a.payer, a.prompt) == (b.payer, b.prompt) and abs(a.at - b.at) <= window:
                parent[root(i)] = root(j)
    components: dict[int, set[str]] = {}
    for i, e in enumerate(entries):
        components.setdefault(root(i), set()).add(e.job_id)
    return {frozenset(c) for c in components.values() if len(c) > 1}


LEDGERS = st.lists(
    st.tuples(
        st.sampled_from([ALICE, BOB]),
        st.sampled_from(["a", "b", "c"]),
        st.floats(min_value=0, max_value=600, allow_nan=False),
        st.sampled_from([*JOB_STATUSES, None]),
    ),
    max_size=40,
)


@given(LEDGERS)
def test_every_total_is_the_price_times_the_entries(
    rows: list[tuple[str, str, float, str | None]],
) -> None:
    entries = [entry(i, payer=p, prompt=q, at=t) for i, (p, q, t, _) in enumerate(rows)]
    final = {f"job_{i}": s for i, (*_, s) in enumerate(rows) if s is not None}
    summary = summarize(entries, final)
    assert int(summary["totalAtomic"]) == PRICE * len(entries)
    assert sum(int(v["totalAtomic"]) for v in summary["byPayer"].values()) == PRICE * len(entries)
    assert sum(v["count"] for v in summary["byStatus"].values()) == len(entries)
    for status, tally in summary["byStatus"].items():
        assert int(tally["totalAtomic"]) == PRICE * tally["count"]
        expected = sum(1 for *_, s in rows if (s or "unknown") == status)
        assert tally["count"] == expected
    assert len(summary["entries"]) == len(entries)


@given(LEDGERS, st.sampled_from([0.0, 30.0, 60.0, 120.0]))
def test_duplicate_groups_match_a_brute_force_oracle(
    rows: list[tuple[str, str, float, str | None]], window: float
) -> None:
    entries = [entry(i, payer=p, prompt=q, at=t) for i, (p, q, t, _) in enumerate(rows)]
    summary = summarize(entries, {}, duplicate_window=window)
    assert {frozenset(g) for g in groups(summary)} == _oracle_groups(entries, window)
    for group in summary["duplicates"]:
        assert int(group["extraAtomic"]) == PRICE * (group["count"] - 1)
        assert group["firstAt"] <= group["lastAt"]
    assert summary["duplicateCount"] == sum(len(g) - 1 for g in groups(summary))
