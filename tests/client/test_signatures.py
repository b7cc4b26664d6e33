"""The sync and async clients offer the same public methods, with the same parameters and the
same defaults (written once, in ``bankr_client._poll``)."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from bankr_client import AsyncBankrClient, BankrClient
from bankr_client._poll import DEFAULT_INTERVAL, DEFAULT_MAX_ATTEMPTS, DEFAULT_TIMEOUT

#: Where the two clients differ by nature: the httpx types they drive, and the context manager.
_ASYNC_ONLY_WORDS = {
    "AsyncBaseTransport": "BaseTransport",
    "AsyncClient": "Client",
    "AsyncBankrClient": "BankrClient",
}
#: The sync client's own extra: the transport of the async twin that runs ``prompt_many``.
_SYNC_ONLY_PARAMETERS = {"async_transport"}
_IO_METHODS = {"__enter__", "__exit__", "__aenter__", "__aexit__", "close", "aclose"}


def _public_methods(cls: type) -> dict[str, Any]:
    return {
        name: member
        for name, member in vars(cls).items()
        if callable(member)
        and (not name.startswith("_") or name == "__init__")
        and name not in _IO_METHODS
    }


def _shape(function: Any) -> list[tuple[str, Any, Any, str]]:
    shape = []
    for parameter in inspect.signature(function).parameters.values():
        if parameter.name in _SYNC_ONLY_PARAMETERS:
            continue
        annotation = str(parameter.annotation)
        for async_word, sync_word in _ASYNC_ONLY_WORDS.items():
            annotation = annotation.replace(async_word, sync_word)
        shape.append((parameter.name, parameter.kind, parameter.default, annotation))
    return shape


def test_both_clients_have_the_same_public_methods() -> None:
    assert sorted(_public_methods(BankrClient)) == sorted(_public_methods(AsyncBankrClient))


@pytest.mark.parametrize("name", sorted(_public_methods(BankrClient)))
def test_sync_and_async_signatures_match(name: str) -> None:
    sync = _public_methods(BankrClient)[name]
    async_ = _public_methods(AsyncBankrClient)[name]
    assert _shape(sync) == _shape(async_)


@pytest.mark.parametrize("cls", [BankrClient, AsyncBankrClient])
@pytest.mark.parametrize("name", ["poll_job", "prompt_and_wait", "with_retry", "prompt_many"])
def test_waiting_methods_default_to_the_sdks_polling_budget(cls: type, name: str) -> None:
    parameters = inspect.signature(getattr(cls, name)).parameters
    defaults = {p: parameters[p].default for p in ("interval", "max_attempts", "timeout")}
    assert defaults == {
        "interval": DEFAULT_INTERVAL,
        "max_attempts": DEFAULT_MAX_ATTEMPTS,
        "timeout": DEFAULT_TIMEOUT,
    }
    assert (DEFAULT_INTERVAL, DEFAULT_MAX_ATTEMPTS, DEFAULT_TIMEOUT) == (2.0, 150, 300.0)
