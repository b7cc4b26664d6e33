"""The experiment file: strict validation, and every key documented in the README."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import msgspec
import pytest

from mockbankr.errors import ConfigError
from mockbankr.experiments import load_experiment, parse_experiment
from mockbankr.experiments.spec import (
    Experiment,
    Fleet,
    NaivePolicy,
    ReferencePolicy,
    ServerSpec,
)
from tests.experiments.conftest import examples

README = Path(__file__).resolve().parents[2] / "README.md"
CATEGORIES = frozenset({"price", "balance", "swap", "analysis", "general"})


def _minimal(**changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "experiment": {"name": "x"},
        "fleet": {"agents": 2},
        "policies": [{"name": "a", "kind": "reference"}],
    }
    for section, value in changes.items():
        raw[section] = value
    return raw


def test_a_minimal_file_is_valid_with_documented_defaults() -> None:
    spec = parse_experiment(_minimal(), categories=CATEGORIES)
    assert (spec.experiment.seed, spec.experiment.flavour) == (0, "api-key")
    assert spec.task_count == 2


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        (_minimal(extra={}), "'extra'"),
        (_minimal(fleet={"agents": 2, "agnets": 3}), "'fleet.agnets'"),
        (_minimal(experiment={"name": "x", "sed": 1}), "'experiment.sed'"),
        (_minimal(policies=[{"name": "a", "kind": "naive", "jitter": True}]), "jitter"),
        (_minimal(server={"daily_limt": 3}), "'server.daily_limt'"),
        (
            _minimal(faults=[{"match": {}, "action": {"respond": {"status": 503}}, "tims": 2}]),
            "tims",
        ),
    ],
)
def test_an_unknown_key_is_an_error_naming_it(raw: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(named)):
        parse_experiment(raw, categories=CATEGORIES)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"fleet": {}}, "exactly one of agents"),
        ({"fleet": {"agents": 2, "rate_per_s": 1.0}}, "exactly one of agents"),
        ({"fleet": {"agents": 0}}, "fleet.agents"),
        ({"fleet": {"agents": 10**7}}, "fleet.agents"),
        ({"fleet": {"agents": 1000, "tasks_per_agent": 1000}}, "over the limit"),
        ({"fleet": {"rate_per_s": 2.0}}, "duration_s > 0"),
        ({"fleet": {"agents": 2, "mix": {"lottery": 1.0}}}, "unknown category 'lottery'"),
        ({"fleet": {"agents": 2, "mix": {"price": 0.0}}}, "must not all be 0"),
        ({"experiment": {"name": "x", "duration_s": float("nan")}}, "duration_s"),
        ({"experiment": {"name": "x", "flavour": "oauth"}}, "flavour"),
        ({"experiment": {"name": "<script>"}}, "experiment.name"),
        ({"policies": []}, "1..16"),
        ({"policies": [{"name": "a", "kind": "reference"}] * 2}, "its own name"),
        ({"policies": [{"name": "a", "kind": "reference", "interval_s": 0}]}, "interval_s"),
        ({"policies": [{"name": "a", "kind": "reference", "timeout_s": -1}]}, "timeout_s"),
        ({"policies": [{"name": "a", "kind": "magic"}]}, "kind"),
        ({"policies": [{"name": "a", "kind": "naive", "max_attempts": 0}]}, "max_attempts"),
        ({"faults": [{"action": {"respond": {"status": 999}}}]}, "faults[0]"),
        ({"server": {"price_usdc": "ten"}}, "price_usdc"),
        ({"server": {"daily_limit": 0}}, "daily_limit"),
    ],
)
def test_nonsense_is_refused_naming_the_key(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_experiment(_minimal(**changes), categories=CATEGORIES)


def test_a_file_that_is_too_big_or_not_toml_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "big.toml"
    big.write_text("# " + "x" * 1_100_000)
    with pytest.raises(ConfigError, match="at most"):
        load_experiment(big)
    bad = tmp_path / "bad.toml"
    bad.write_text("[experiment\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_experiment(bad)


@pytest.mark.parametrize("path", examples(), ids=lambda p: p.stem)
def test_every_shipped_example_is_valid(path: Path) -> None:
    assert load_experiment(path, categories=CATEGORIES).policies


def test_the_examples_cover_what_the_issue_asks_for() -> None:
    names = {p.stem for p in examples()}
    assert {"polling", "storm-503", "daily-limit", "long-analysis", "fleet-1000"} <= names
    assert load_experiment(examples()[0].parent / "fleet-1000.toml").agent_count == 1000


def test_every_key_of_the_schema_is_documented_in_the_readme() -> None:
    text = README.read_text("utf-8")
    section = text[text.index("### The experiment file") :]
    section = section[: section.index("\n## ", 1)]
    sections = {
        "experiment": Experiment,
        "server": ServerSpec,
        "fleet": Fleet,
        "policies (reference)": ReferencePolicy,
        "policies (naive)": NaivePolicy,
    }
    for name, struct in sections.items():
        for field in msgspec.structs.fields(struct):
            assert f"`{field.encode_name}`" in section, f"{name}.{field.encode_name}"
    assert "`kind`" in section
    assert "`[[faults]]`" in section
