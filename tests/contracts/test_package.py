"""The harness's public surface, its layout, and its command group."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
from click.testing import CliRunner

import mockbankr.contracts
from mockbankr.contracts.cli import contracts, default_contracts_dir

MODULES = ["_match", "_target", "cli", "format", "record", "replay", "scenarios", "verify"]
PACKAGE = Path(mockbankr.contracts.__file__).parent


def test_the_exported_names_are_pinned() -> None:
    assert mockbankr.contracts.__all__ == [
        "CapturingTransport",
        "Contract",
        "ContractError",
        "Credentials",
        "DEFAULT_SEED",
        "Difference",
        "SCENARIOS",
        "Scenario",
        "TEST_CREDENTIALS",
        "VerifyResult",
        "dump_contract",
        "load_contract",
        "load_contracts",
        "loads_contract",
        "record_live",
        "record_scenario",
        "render_report",
        "replay",
        "verify_all",
        "verify_in_process",
        "verify_live",
        "write_contract",
    ]
    for name in mockbankr.contracts.__all__:
        assert hasattr(mockbankr.contracts, name)


@pytest.mark.parametrize("name", MODULES)
def test_every_module_has_a_sorted_all_and_stays_small(name: str) -> None:
    module = importlib.import_module(f"mockbankr.contracts.{name}")
    exported = module.__all__
    assert exported == sorted(exported)
    assert all(hasattr(module, member) for member in exported)
    assert len((PACKAGE / f"{name}.py").read_text().splitlines()) < 500


def test_the_group_has_record_and_verify() -> None:
    result = CliRunner().invoke(contracts, ["--help"])
    assert result.exit_code == 0
    assert "record" in result.output
    assert "verify" in result.output
    verify = CliRunner().invoke(contracts, ["verify", "--help"])
    assert "--base-url" in verify.output
    assert "--dir" in verify.output
    assert "wherever the command is run from" in " ".join(verify.output.split())


def test_the_default_folder_is_the_checkouts_whatever_the_current_folder() -> None:
    assert default_contracts_dir() == Path(__file__).resolve().parents[2] / "contracts"
