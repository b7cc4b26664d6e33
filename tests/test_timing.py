from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mockbankr.errors import FixtureError
from mockbankr.timing import load_timing, parse_timing

TABLE = load_timing()

SEED_TABLE = {
    "price": (2.0, 5.0),
    "balance": (2.0, 5.0),
    "swap": (5.0, 15.0),
    "analysis": (10.0, 30.0),
}


def test_built_in_table_has_the_seed_categories_and_ranges() -> None:
    assert {name: TABLE[name].range for name in SEED_TABLE} == SEED_TABLE
    assert TABLE.default in TABLE.categories


@pytest.mark.parametrize(
    ("prompt", "category"),
    [
        ("What is the price of ETH?", "price"),
        ("Check my BALANCE on base", "balance"),
        ("Swap 10 USDC for ETH", "swap"),
        ("Analyze the ETH price trend", "analysis"),  # first matching category wins
        ("Tell me a joke", "general"),
    ],
)
def test_classify_takes_the_first_matching_category(prompt: str, category: str) -> None:
    assert TABLE.classify(prompt) == category


def test_swap_outcome_is_the_sdk_swap_shape_on_base() -> None:
    (tx,) = TABLE["swap"].transactions
    assert tx["type"] == "swap"
    assert tx["metadata"]["transaction"]["chainId"] == 8453
    assert set(tx["metadata"]["__ORIGINAL_TX_DATA__"]) >= {
        "chain",
        "humanReadableMessage",
        "inputTokenAddress",
        "inputTokenAmount",
        "inputTokenTicker",
        "outputTokenAddress",
        "outputTokenTicker",
        "receiver",
    }
    assert {item["type"] for item in TABLE["analysis"].rich_data} <= {"chart", "social-card"}


@given(st.sampled_from(sorted(TABLE.categories)), st.integers(0, 2**64))
def test_every_sample_lies_within_its_category_range(name: str, seed: int) -> None:
    category = TABLE[name]
    sample = category.sample(random.Random(seed))
    lo, hi = category.range
    assert lo <= sample.total <= hi
    assert category.queue_delay[0] <= sample.pending <= category.queue_delay[1]
    assert sample.pending < sample.total
    assert 0 <= sample.variant < len(category.errors if sample.failed else category.responses)


@given(st.sampled_from(sorted(TABLE.categories)), st.integers(0, 2**64))
def test_the_same_seed_gives_the_same_sample(name: str, seed: int) -> None:
    assert TABLE[name].sample(random.Random(seed)) == TABLE[name].sample(random.Random(seed))


@pytest.mark.parametrize("distribution", ["uniform", "triangular", "lognormal"])
def test_every_distribution_is_clipped_to_the_range(distribution: str) -> None:
    table = parse_timing(_table(distribution=distribution, range=[1.0, 1.5], sigma=3.0))
    rng = random.Random(5)
    totals = [table["only"].sample(rng).total for _ in range(2000)]
    assert min(totals) >= 1.0
    assert max(totals) <= 1.5


def _table(**category: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"range": [2.0, 5.0], "queue_delay": [0.1, 0.5], "responses": ["ok"]}
    return {"default": "only", "categories": {"only": {**base, **category}}}


@pytest.mark.parametrize(
    ("raw", "key", "text"),
    [
        (_table(colour="red"), "categories.only", "unknown field `colour`"),
        ({**_table(), "extra": 1}, None, "unknown field `extra`"),
        (_table(range=[5.0, 2.0]), "categories.only.range", "min <= max"),
        (_table(range=[0.0, 2.0]), "categories.only.range", "0 < min"),
        (_table(queue_delay=[1.0, 3.0]), "categories.only.queue_delay", "< range min"),
        (_table(distribution="gaussian"), "categories.only.distribution", "Invalid enum value"),
        (_table(mode=9.0, distribution="triangular"), "categories.only.mode", "within"),
        (_table(failure_probability=1.5), "categories.only.failure_probability", "[0, 1]"),
        (_table(responses=[]), "categories.only.responses", "at least one"),
        (_table(range="fast"), "categories.only.range", "Expected `array`"),
        ({"default": "missing", "categories": _table()["categories"]}, "default", "names no"),
    ],
)
def test_invalid_tables_name_the_file_and_the_key(
    raw: dict[str, Any], key: str | None, text: str
) -> None:
    with pytest.raises(FixtureError) as caught:
        parse_timing(raw, path="my/timing.toml")
    assert caught.value.path == "my/timing.toml"
    assert caught.value.key == key
    assert text in str(caught.value)
    assert str(caught.value).startswith("my/timing.toml")


def test_load_timing_reports_unreadable_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(FixtureError, match="cannot read"):
        load_timing(tmp_path)
    (tmp_path / "timing.toml").write_text("default = [", encoding="utf-8")
    with pytest.raises(FixtureError, match="invalid TOML"):
        load_timing(tmp_path)
