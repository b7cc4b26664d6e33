"""``mockbankr contracts``: record the contract files, check them, verify a provider.

The group is registered in ``mockbankr.cli`` with ``main.add_command(contracts)``. Secrets
for a live target come from the environment only: ``BANKR_API_KEY`` (API-key flavour) and
``BANKR_PRIVATE_KEY`` (x402 flavour); they never reach a file.

Example::

    mockbankr contracts record            # regenerate contracts/*.json in-process
    mockbankr contracts record --check    # CI: fail if the files differ from a fresh recording
    mockbankr contracts verify            # the simulator against every contract
    BANKR_API_KEY=bk_... mockbankr contracts verify --base-url https://api.bankr.bot
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import click
import httpx

from mockbankr._cli_remote import console, plural
from mockbankr._click_numbers import NumberParam
from mockbankr.contracts._target import has_control_plane
from mockbankr.contracts.format import Contract, ContractError, dump_contract
from mockbankr.contracts.record import DEFAULT_SEED, record_live, record_scenario, write_contract
from mockbankr.contracts.scenarios import SCENARIOS, TEST_CREDENTIALS, Credentials
from mockbankr.contracts.verify import load_contracts, render_report, verify_all
from mockbankr.validate import SEED

__all__ = ["contracts", "default_contracts_dir"]

_DIR = click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder of the contract files. Default: the checkout's contracts/ folder, or the"
    " copy installed with mockbankr; wherever the command is run from.",
)


def default_contracts_dir() -> Path:
    """The contract files that come with mockbankr, whatever the current folder.

    The checkout's ``contracts/`` (an editable install), else the copy the wheel carries
    in ``mockbankr/_contracts``.
    """
    package = Path(__file__).resolve().parents[1]
    checkout = package.parent / "contracts"
    if any(checkout.glob("*.json")):
        return checkout
    return package / "_contracts"


_BASE_URL = click.option(
    "--base-url",
    default=None,
    metavar="URL",
    help="A server to talk to instead of the in-process simulator (a mockbankr server's"
    " clock is stopped and stepped to each offset; any other server runs in real time).",
)
_ALLOW_SPEND = click.option(
    "--allow-spend",
    is_flag=True,
    help="Let scenarios send prompts a server without a /__mock control plane (the real"
    " Bankr API) accepts and charges for: $0.10 USDC per x402 prompt, and your daily quota.",
)


def _live_credentials() -> Credentials:
    return Credentials(
        api_key=os.environ.get("BANKR_API_KEY") or None,
        bad_api_key=TEST_CREDENTIALS.bad_api_key,
        private_key=os.environ.get("BANKR_PRIVATE_KEY") or None,
    )


@click.group("contracts", context_settings={"help_option_names": ["-h", "--help"]})
def contracts() -> None:
    """Record, check and verify the contracts between the reference client and the API.

    A contract (contracts/<scenario>.json) is what one scenario of the reference client sent
    and received, with time offsets and matchers for dynamic values. Files are regenerated
    by `record`, never edited by hand; `make test` replays them against the client and
    verifies them against the simulator.
    """


@contracts.command()
@click.option(
    "--scenario",
    "names",
    multiple=True,
    type=click.Choice(sorted(SCENARIOS)),
    help="Record only this scenario (repeatable). Default: all of them.",
)
@_BASE_URL
@_DIR
@click.option(
    "--seed",
    type=NumberParam(SEED, integer=True),
    default=DEFAULT_SEED,
    show_default=True,
    help="Seed of the run.",
)
@click.option(
    "--check",
    is_flag=True,
    help="Write nothing; exit 1 if a file differs from a fresh recording or has no scenario.",
)
@_ALLOW_SPEND
def record(
    names: tuple[str, ...],
    base_url: str | None,
    directory: Path | None,
    seed: int,
    check: bool,
    allow_spend: bool,
) -> None:
    """Run scenarios and write one contract file each (deterministic in-process).

    In-process (the default) each scenario runs on a MockbankrEnv on virtual time, with its
    rules and the seed: the same seed gives byte-identical files. With --base-url it runs
    in real time against that server instead (for exploring; such files are not
    reproducible and `make test` would flag them).
    """
    out = console()
    directory = directory or default_contracts_dir()
    selected = [SCENARIOS[name] for name in (names or sorted(SCENARIOS))]
    if base_url is not None and check:
        raise click.UsageError("--check compares in-process recordings; drop --base-url")
    stale: list[str] = []
    for scenario in selected:
        try:
            contract = asyncio.run(_record(scenario.name, base_url, seed, allow_spend))
        except ContractError as exc:
            raise click.ClickException(str(exc)) from exc
        path = directory / f"{contract.scenario}.json"
        fresh = dump_contract(contract)
        same = path.is_file() and path.read_bytes() == fresh
        if check:
            if not path.is_file():
                stale.append(f"{path}: missing (scenario {scenario.name} is not recorded)")
            elif not same:
                stale.append(f"{path}: differs from a fresh recording")
            continue
        write_contract(contract, directory)
        end = f"{contract.end.status or contract.end.error} @{contract.end.at}s"
        state = "unchanged" if same else "written"
        out.print(
            f"{state:9} {path} ({plural(len(contract.exchanges), 'exchange')}, ends {end})",
            soft_wrap=True,
        )
    if check:
        if not names:
            known = {f"{name}.json" for name in SCENARIOS}
            stale += [
                f"{p}: no scenario of that name"
                for p in sorted(directory.glob("*.json"))
                if p.name not in known
            ]
        for line in stale:
            out.print(line, style="red", soft_wrap=True)
        if stale:
            out.print("Regenerate them with: mockbankr contracts record")
            raise SystemExit(1)
        files = plural(len(selected), "contract file")
        out.print(
            f"{files} {'matches' if len(selected) == 1 else 'match'} a fresh recording"
            f" (seed {seed})"
        )


async def _record(name: str, base_url: str | None, seed: int, allow_spend: bool) -> Contract:
    scenario = SCENARIOS[name]
    if base_url is None:
        return await record_scenario(scenario, seed=seed)
    if not allow_spend and scenario.call.method != "poll_job":
        async with httpx.AsyncClient(base_url=base_url) as http:
            if not await has_control_plane(http):
                raise ContractError(
                    f"{name} sends prompts to {base_url}, which may charge for them:"
                    " pass --allow-spend"
                )
    return await record_live(
        scenario, base_url=base_url, seed=seed, credentials=_live_credentials()
    )


@contracts.command()
@_DIR
@_BASE_URL
@click.option(
    "--scenario",
    "names",
    multiple=True,
    metavar="NAME",
    help="Verify only this scenario (repeatable). Default: every file in --dir.",
)
@_ALLOW_SPEND
def verify(
    directory: Path | None, base_url: str | None, names: tuple[str, ...], allow_spend: bool
) -> None:
    """Send each contract's requests to a provider and check its answers; exit 1 on a mismatch.

    Without --base-url the provider is the simulator, in-process (a fresh one per contract,
    with the contract's seed and rules, on virtual time). With --base-url it is that server:
    a mockbankr server gets the rules through /__mock, and its clock is stopped (speed 0)
    and stepped to each recorded offset, then given its speed back, so the same contracts
    pass whatever its --speed; on one without (the real Bankr API) contracts run in real
    time and those that need rules are skipped. Credentials for a live server come from
    BANKR_API_KEY and BANKR_PRIVATE_KEY.
    """
    directory = directory or default_contracts_dir()
    try:
        found = load_contracts(directory)
    except ContractError as exc:
        raise click.ClickException(str(exc)) from exc
    chosen = [c for c in found if not names or c.scenario in names]
    missing = sorted(set(names) - {c.scenario for c in found})
    if missing:
        raise click.BadParameter(f"no contract for {', '.join(missing)} in {directory}")
    credentials = TEST_CREDENTIALS if base_url is None else _live_credentials()
    results = asyncio.run(
        verify_all(chosen, base_url=base_url, credentials=credentials, allow_spend=allow_spend)
    )
    target = base_url or "the in-process simulator"
    render_report(results, console(), title=f"Contracts in {directory} against {target}")
    if any(result.outcome == "fail" for result in results):
        raise SystemExit(1)
