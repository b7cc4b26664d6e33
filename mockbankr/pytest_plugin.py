"""pytest fixtures for users' suites (registered through the ``pytest11`` entry point).

* ``mockbankr_env``: a :class:`~mockbankr.testing.MockbankrEnv`, in-process on
  virtual time (seed 0).
* ``bankr_client``: the env's async reference client.
* ``mockbankr_server``: a :class:`~mockbankr.testing.LiveServer` on a free loopback
  port, at speed 50, for non-Python clients; use its ``base_url``.

Nothing of the simulator is imported until a test asks for one of these fixtures, so the
plugin costs a pytest session that does not use it next to nothing.

Example::

    import pytest


    @pytest.mark.anyio
    async def test_price(bankr_client):
        job = await bankr_client.prompt_and_wait("What is the price of ETH?")
        assert job.status == "completed"
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from bankr_client import AsyncBankrClient

    from mockbankr.testing import LiveServer, MockbankrEnv

__all__ = ["bankr_client", "mockbankr_env", "mockbankr_server"]


@pytest.fixture
def mockbankr_env() -> Iterator[MockbankrEnv]:
    """The simulator in-process on a VirtualClock, with reference clients wired to it."""
    from mockbankr.testing import MockbankrEnv

    env = MockbankrEnv(seed=0)
    try:
        yield env
    finally:
        env.close_sync()


@pytest.fixture
def bankr_client(mockbankr_env: MockbankrEnv) -> AsyncBankrClient:
    """An ``AsyncBankrClient`` on ``mockbankr_env`` (API key ``bk_test``)."""
    return mockbankr_env.client


@pytest.fixture
def mockbankr_server() -> Iterator[LiveServer]:
    """A live uvicorn serving mockbankr at speed 50 on a free loopback port."""
    from mockbankr.testing import LiveServer

    with LiveServer(speed=50, seed=0) as server:
        yield server
