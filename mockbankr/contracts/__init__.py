"""The contract harness: the reference client and the simulator, kept honest with each other.

The only place (besides tests) that imports both ``mockbankr`` and ``bankr_client``.

* :mod:`~mockbankr.contracts.format`: the file model and its strict loader;
* :mod:`~mockbankr.contracts.scenarios`: the named scenarios (client code, rules, end);
* :mod:`~mockbankr.contracts.record`: run a scenario, capture it, write the file;
* :mod:`~mockbankr.contracts.replay`: the consumer side, with respx on virtual time;
* :mod:`~mockbankr.contracts.verify`: the provider side, in-process or at a URL;
* :mod:`~mockbankr.contracts.cli`: ``mockbankr contracts record|verify``.

Example::

    contract = load_contract(Path("contracts/completed.json"))
    assert asyncio.run(replay(contract)) is None
    assert asyncio.run(verify_in_process(contract)).outcome == "pass"
"""

from __future__ import annotations

from mockbankr.contracts._match import Difference
from mockbankr.contracts.format import (
    Contract,
    ContractError,
    dump_contract,
    load_contract,
    loads_contract,
)
from mockbankr.contracts.record import (
    DEFAULT_SEED,
    CapturingTransport,
    record_live,
    record_scenario,
    write_contract,
)
from mockbankr.contracts.replay import replay
from mockbankr.contracts.scenarios import SCENARIOS, TEST_CREDENTIALS, Credentials, Scenario
from mockbankr.contracts.verify import (
    VerifyResult,
    load_contracts,
    render_report,
    verify_all,
    verify_in_process,
    verify_live,
)

__all__ = [
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
