"""What importing costs: ``import mockbankr`` and the pytest plugin load nothing heavy, the client
needs eth-account only to pay, and signatures are checked by libsecp256k1 (coincurve)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import mockbankr

#: Modules a cheap import must not load.
HEAVY = (
    "starlette",
    "uvicorn",
    "httpx",
    "rich",
    "eth_account",
    "bankr_client",
    "mockbankr.app",
    "prometheus_client",
    "redis",
    "granian",
)


def loaded_after(code: str) -> list[str]:
    """The heavy modules a fresh interpreter has loaded after running ``code``."""
    probe = (
        f"{code}\nimport json, sys\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.startswith({HEAVY!r}))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    loaded: list[str] = json.loads(result.stdout)
    return loaded


@pytest.mark.parametrize(
    "code",
    [
        "import mockbankr",
        "import mockbankr.clock",
        "from mockbankr import VirtualClock",
        "import mockbankr.pytest_plugin",
    ],
)
def test_cheap_imports_load_nothing_heavy(code: str) -> None:
    assert loaded_after(code) == []


def test_a_public_name_loads_its_module_on_first_use() -> None:
    assert loaded_after("from mockbankr import create_app") != []


@pytest.mark.parametrize("name", mockbankr.__all__)
def test_every_lazy_name_is_the_object_its_module_defines(name: str) -> None:
    import importlib

    home = importlib.import_module(mockbankr._HOMES[name])
    assert getattr(mockbankr, name) is getattr(home, name)
    assert name in dir(mockbankr)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = mockbankr.Nope  # type: ignore[attr-defined]


def test_the_bankr_client_imports_without_eth_account_until_it_must_pay() -> None:
    code = (
        "import sys\nsys.modules['eth_account'] = None  # as if the x402 extra were missing\n"
        "import bankr_client\n"
        "bankr_client.BankrClient('http://127.0.0.1:1', api_key='bk_x').close()\n"
        "try:\n    bankr_client.X402Auth('0x' + '11' * 32)\n"
        "except ImportError as exc:\n    print(exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == "X402Auth needs eth-account: pip install 'bankr-client[x402]'\n"


def test_payments_are_recovered_by_libsecp256k1() -> None:
    from eth_account import Account
    from eth_account.messages import encode_defunct
    from eth_keys.backends import CoinCurveECCBackend

    assert isinstance(Account._keys.backend, CoinCurveECCBackend)
    signer = Account.from_key("0x" + "11" * 32)
    signed = signer.sign_message(encode_defunct(text="Get job status for job_1"))
    message = encode_defunct(text="Get job status for job_1")
    assert Account.recover_message(message, signature=signed.signature) == signer.address
