from __future__ import annotations

import socket
from pathlib import Path

import pytest
from click.testing import CliRunner

from mockbankr.cli import main


@pytest.mark.parametrize(
    ("args", "env", "text"),
    [
        (["--speed", "-1"], {}, "Invalid value for '--speed'"),
        (["--speed", "2000000"], {}, "--speed: expected a number within 0..1000000 x"),
        (["--speed", "inf"], {}, "Invalid value for '--speed'"),
        (["--seed", "²"], {}, "--seed: expected an integer"),
        (["--journal-size", "1" * 400], {}, "--journal-size: expected an integer"),
        (["--port", "70000"], {}, "Invalid value for '--port'"),
        ([], {"MOCKBANKR_SPEED": "fast"}, "Invalid value for '--speed'"),
        ([], {"MOCKBANKR_PORT": "-5"}, "Invalid value for '--port'"),
        (["--fixtures", "/does/not/exist"], {}, "does not exist"),
        (["--seed", "abc"], {}, "Invalid value for '--seed'"),
        (["--api-key", " "], {}, "API keys must be non-empty"),
    ],
)
def test_bad_values_exit_non_zero_with_a_clear_error(
    args: list[str], env: dict[str, str], text: str
) -> None:
    result = CliRunner().invoke(main, ["serve", *args], env=env)
    assert result.exit_code != 0
    assert text in result.output


def test_invalid_fixtures_are_reported_with_file_and_key(tmp_path: Path) -> None:
    (tmp_path / "timing.toml").write_text(
        'default = "x"\n[categories.x]\nrange = [3, 1]\nresponses = ["ok"]\n', encoding="utf-8"
    )
    result = CliRunner().invoke(main, ["serve", "--fixtures", str(tmp_path)])
    assert result.exit_code == 1
    assert "timing.toml: categories.x.range" in result.output


def test_a_port_in_use_is_a_clear_error() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(main, ["serve", "--port", str(port)])
    assert result.exit_code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.output


def test_help_explains_every_flag_and_its_environment_variable() -> None:
    result = CliRunner().invoke(main, ["serve", "--help"])
    assert result.exit_code == 0
    for flag, env in [
        ("--host", "MOCKBANKR_HOST"),
        ("--port", "MOCKBANKR_PORT"),
        ("--speed", "MOCKBANKR_SPEED"),
        ("--seed", "MOCKBANKR_SEED"),
        ("--fixtures", "MOCKBANKR_FIXTURES"),
        ("--api-key", "MOCKBANKR_API_KEY"),
        ("--log-requests", "MOCKBANKR_LOG_REQUESTS"),
    ]:
        assert flag in result.output
        assert env in result.output


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (["--price-usdc", "ten"], "not a decimal USDC amount"),
        (["--price-usdc", "0.0000001"], "more than 6 decimal places"),
        (["--pay-to", "0x123"], "pay_to"),
        (["--rules", "/does/not/exist.toml"], "does not exist"),
        (["--daily-limit", "0"], "Invalid value for '--daily-limit'"),
        (["--journal-size", "0"], "Invalid value for '--journal-size'"),
        (["--admin-token", "short"], "at least 8 characters"),
    ],
)
def test_bad_x402_and_control_values_are_clear_errors(args: list[str], text: str) -> None:
    result = CliRunner().invoke(main, ["serve", *args])
    assert result.exit_code != 0
    assert text in result.output


def test_an_invalid_rules_file_names_the_rule(tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text("[[rules]]\n[rules.action]\nexplode = {}\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["serve", "--rules", str(rules)])
    assert result.exit_code == 1
    assert "rules.toml: rules[0]" in result.output
