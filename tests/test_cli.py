from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from mockbankr.cli import main


@pytest.mark.parametrize(
    ("args", "env", "text"),
    [
        (["--speed", "-1"], {}, "Invalid value for '--speed'"),
        (["--speed", "2000000"], {}, "--speed: expected a number 0 or within 1e-06..1000000 x"),
        (["--speed", "inf"], {}, "Invalid value for '--speed'"),
        (["--seed", "²"], {}, "--seed: expected an integer"),
        (["--journal-size", "1" * 400], {}, "--journal-size: expected an integer"),
        (["--journal-bytes", "1000"], {}, "--journal-bytes: expected an integer within 65536"),
        (["--journal-bytes", "1e9"], {}, "--journal-bytes: expected an integer"),
        ([], {"MOCKBANKR_JOURNAL_BYTES": "-1"}, "--journal-bytes: expected an integer"),
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
        ("--journal-bytes", "MOCKBANKR_JOURNAL_BYTES"),
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


@pytest.mark.parametrize("host", ["203.0.113.7", "no-such-host.invalid"])
def test_an_unusable_host_gets_a_host_hint_not_a_port_hint(host: str) -> None:
    result = CliRunner().invoke(main, ["serve", "--host", host, "--port", "0"])
    assert result.exit_code == 1
    assert f"cannot listen on {host}:0" in result.output
    assert "--host must be an address or name of this machine" in result.output
    assert "another server" not in result.output


def test_help_documents_the_key_separator_and_the_admin_token_length() -> None:
    output = CliRunner().invoke(main, ["serve", "--help"], terminal_width=200).output
    assert "separated by spaces" in output
    assert "at least 8 characters" in output


def test_help_lists_every_command() -> None:
    output = CliRunner().invoke(main, ["--help"]).output
    for command in ("clock", "contracts", "jobs", "journal", "ledger", "reset", "rules", "serve"):
        assert f"  {command} " in output, command


def test_a_rule_error_in_a_rules_file_names_the_rule_once(tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text("[[rules]]\ntimes = 0\n[rules.action.drop]\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["serve", "--rules", str(rules)])
    assert result.exit_code == 1
    assert "rules.toml: rules[0]: times: expected an integer within 1..2147483648" in result.output
    assert result.output.count("rules[0]") == 1


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )


def test_help_imports_neither_the_app_nor_the_harness() -> None:
    code = (
        "import sys\nfrom click.testing import CliRunner\nfrom mockbankr.cli import main\n"
        "assert CliRunner().invoke(main, ['--help']).exit_code == 0\n"
        "heavy = ('starlette', 'uvicorn', 'httpx', 'rich', 'eth_account', 'bankr_client',"
        " 'mockbankr.app', 'mockbankr.contracts')\n"
        "print(sorted({m for m in sys.modules if m.startswith(heavy)}))"
    )
    result = _python(code)
    assert (result.returncode, result.stdout.strip()) == (0, "[]"), result.stderr


def test_contracts_without_the_extra_is_one_line_and_exit_2() -> None:
    code = (
        "import sys\nsys.modules['bankr_client'] = None  # as if bankr-client were not installed\n"
        "from mockbankr.cli import main\nmain(['contracts', 'verify', '--dir', 'anywhere'])"
    )
    result = _python(code)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "Error: mockbankr contracts needs the contracts extra: pip install"
        " 'mockbankr[contracts]' (no module named 'bankr_client')"
    ]


def test_contracts_verify_finds_the_files_from_any_folder(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mockbankr.cli", "contracts", "verify", "--scenario", "completed"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed, 0 failed" in result.stdout


@pytest.mark.parametrize(
    ("rule", "key"),
    [
        ('[rules.match]\ncategory = "teleport"\n[rules.action]\ndrop = {}\n', "match.category"),
        ('[rules.action.job]\ncategory = "teleport"\n', "action.job.category"),
    ],
)
def test_an_unknown_category_in_a_rules_file_stops_serve_at_start(
    tmp_path: Path, rule: str, key: str
) -> None:
    # The port is taken, so a server that did not check its rules at start would fail
    # on the port instead, with the wrong message, rather than serve.
    rules = tmp_path / "rules.toml"
    rules.write_text(f"[[rules]]\n[rules.action]\ndrop = {{}}\n\n[[rules]]\n{rule}", "utf-8")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(main, ["serve", "--rules", str(rules), "--port", str(port)])
    assert result.exit_code == 1
    assert f"{rules}: rules[1].{key}: unknown category 'teleport' (known: " in result.output


def test_the_pay_to_default_shown_in_help_is_the_one_used() -> None:
    from mockbankr.cli import _DEFAULT_PAY_TO_SHOWN
    from mockbankr.money import DEFAULT_PAY_TO, PaymentTerms

    assert _DEFAULT_PAY_TO_SHOWN == DEFAULT_PAY_TO == PaymentTerms().pay_to
    output = CliRunner().invoke(main, ["serve", "--help"], terminal_width=200).output
    assert DEFAULT_PAY_TO in output
