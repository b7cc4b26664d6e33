"""Experiments in-process: accounting identities, determinism, and the 503-storm economics."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mockbankr.experiments import parse_experiment
from mockbankr.experiments.output import WALL_FIELDS
from tests.experiments.conftest import example, run

_FAULTS = [
    {"match": {"method": "GET"}, "action": {"respond": {"status": 503}}, "probability": 0.3},
    {"match": {"method": "POST"}, "action": {"respond": {"status": 429}}, "times": 3},
    {"match": {"method": "POST"}, "action": {"respond": {"status": 500}}, "times": 2},
    {"match": {"category": "swap"}, "action": {"job": {"outcome": "stuck"}}},
    {"match": {"category": "price"}, "action": {"job": {"outcome": "failed"}}, "times": 2},
    {"match": {"method": "GET"}, "action": {"drop": {}}, "probability": 0.1},
]

_reference = st.fixed_dictionaries(
    {
        "kind": st.just("reference"),
        "interval_s": st.sampled_from([0.5, 2.0, 5.0]),
        "timeout_s": st.sampled_from([5.0, 20.0, 300.0]),
        "retries": st.integers(0, 3),
        "cancel_on_timeout": st.booleans(),
        "jitter": st.booleans(),
    }
)
_naive = st.fixed_dictionaries(
    {
        "kind": st.just("naive"),
        "interval_s": st.sampled_from([1.0, 2.0]),
        "timeout_s": st.sampled_from([5.0, 60.0]),
        "retries": st.integers(1, 3),
    }
)


@st.composite
def experiment_files(draw: st.DrawFn) -> dict[str, Any]:
    policies = draw(st.lists(st.one_of(_reference, _naive), min_size=1, max_size=2))
    for i, policy in enumerate(policies):
        policy["name"] = f"p{i}"
    mix = draw(
        st.dictionaries(
            st.sampled_from(["price", "balance", "swap", "analysis"]),
            st.integers(1, 3).map(float),
            min_size=1,
        )
    )
    return {
        "experiment": {
            "name": "generated",
            "seed": draw(st.integers(0, 1000)),
            "flavour": draw(st.sampled_from(["api-key", "x402"])),
            "duration_s": draw(st.sampled_from([0.0, 10.0])),
        },
        "server": {"daily_limit": draw(st.sampled_from([None, 2]))},
        "fleet": {
            "agents": draw(st.integers(1, 4)),
            "tasks_per_agent": draw(st.integers(1, 2)),
            "task_every_s": 5.0,
            "mix": mix,
        },
        "faults": draw(st.lists(st.sampled_from(_FAULTS), max_size=2, unique_by=json.dumps)),
        "policies": policies,
    }


def _without_none(raw: dict[str, Any]) -> dict[str, Any]:
    return {
        k: _without_none(v) if isinstance(v, dict) else v for k, v in raw.items() if v is not None
    }


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(experiment_files())
def test_accounting_identities_hold_per_policy(raw: dict[str, Any]) -> None:
    spec = parse_experiment(_without_none(raw))
    results, rows = run(spec)
    for entry in results["policies"]:
        m = entry["metrics"]
        fates = m["successes"] + m["failures"] + m["cancelled"] + m["timeouts"]
        assert fates + m["still_running"] == m["jobs_created"]
        assert len(rows[entry["name"]]) == m["jobs_created"]
        price = 0.10
        assert entry["paid_prompts"] == m["jobs_created"]
        assert m["usdc_spent"] == round(price * entry["paid_prompts"], 6)
        if spec.experiment.flavour == "x402":
            assert entry["ledger"]["usdc"] == m["usdc_spent"]
            assert entry["ledger"]["count"] == m["jobs_created"]
        assert entry["journal"]["covered"]
        assert m["requests"] == entry["journal"]["recorded"] == entry["journal"]["sent"]
        split = m["usdc_split"]
        assert round(sum(split.values()), 6) == m["usdc_spent"]
        assert m["usdc_wasted"] == round(split["duplicate"] + split["abandoned"], 6)
        assert m["tasks_answered"] <= m["tasks"] == spec.task_count


def _strip_wall(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_wall(v) for k, v in value.items() if k not in WALL_FIELDS}
    if isinstance(value, list):
        return [_strip_wall(v) for v in value]
    return value


def test_the_same_file_twice_gives_identical_results() -> None:
    spec = example("storm-503")
    first, first_rows = run(spec)
    second, second_rows = run(spec)
    assert first["wall_s"] >= 0
    assert _strip_wall(first) == _strip_wall(second)
    assert first_rows == second_rows
    # Not vacuous: the run did something, and a different seed gives other numbers.
    assert first["policies"][0]["metrics"]["requests"] > 100


def test_a_503_storm_makes_the_naive_pattern_pay_for_duplicates() -> None:
    results, _ = run(example("storm-503"))
    by_name = {p["name"]: p["metrics"] for p in results["policies"]}
    naive, reference = by_name["naive"], by_name["reference"]
    assert naive["usdc_wasted"] > 0
    # The seed's pattern re-prompts while its first job still runs: each storm costs it
    # at least $10 more than the reference client (on 100 agents), and the reference
    # client never pays twice for one task.
    assert naive["usdc_wasted"] - reference["usdc_wasted"] >= 10.0
    assert naive["usdc_split"]["duplicate"] >= 10.0
    assert reference["usdc_split"]["duplicate"] == 0
    assert naive["jobs_created"] > reference["jobs_created"] == 100
    # The verdicts grading sees it too: the naive agents fail no-double-pay, no reference
    # agent does.
    verdicts = {p["name"]: p["verdicts"] for p in results["policies"]}
    assert "no-double-pay" in verdicts["naive"]["failed_checks"]
    assert verdicts["naive"]["checks"]["no-double-pay"]["fail"] > 50
    assert verdicts["reference"]["failed_checks"] == []
    assert verdicts["reference"]["checks"]["no-double-pay"]["pass"] == 100


def test_the_daily_limit_bites_and_the_reference_client_does_not_retry_it() -> None:
    results, _ = run(example("daily-limit"))
    by_name = {p["name"]: p["metrics"] for p in results["policies"]}
    # 20 agents x 4 tasks over the limit of 6: 80 refused prompts, each sent once.
    assert by_name["reference"]["rate_limited"] == 80
    assert by_name["naive"]["rate_limited"] > 2 * 80
    assert by_name["reference"]["first_rate_limited_s"] == 360.0
