"""The spend ledger: what developers *would* have paid for ``/v2/prompt``. Nothing is settled.

Each accepted x402 payment becomes one immutable :class:`LedgerEntry`; the store keeps
them, and :func:`summarize` turns them into a JSON-ready report for the control plane
and the CLI. Pure: no clock, no I/O. Rendering (tables, colours) is the CLI's business.

Money in a summary is always given twice: ``...Usdc`` is the shortest exact decimal
string (``"0.1"``, ``"12.5"``, ``"0.000001"``) and ``...Atomic`` is the integer amount
in atomic units (6 decimals) as a decimal *string*, like x402's ``maxAmountRequired``,
so JavaScript readers never lose precision past 2**53. Amounts are summed as USDC;
``assets`` and ``networks`` list what the entries carry, so a mixed ledger is visible.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any, Final

import msgspec

from mockbankr.money import atomic_to_usdc

__all__ = ["JOB_STATUSES", "LedgerEntry", "summarize"]

JOB_STATUSES: Final = ("pending", "processing", "completed", "failed", "cancelled")
"""The statuses a summary counts; any other (or a job missing from ``final_status``) is
counted as ``"unknown"``."""


class LedgerEntry(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """One accepted payment for one prompt. Encodes to JSON with camelCase keys.

    ``at`` is simulated unix seconds; ``transaction`` the fake hash sent in
    ``X-PAYMENT-RESPONSE`` (:func:`mockbankr.x402.transaction_hash` of the nonce).

    Example::

        LedgerEntry(
            payer=paid.payer, amount_atomic=paid.value, asset=terms.asset,
            network=paid.network, nonce=paid.nonce, job_id=job.id, prompt=prompt,
            at=clock.now(), transaction=transaction_hash(paid.nonce),
        )
    """

    payer: str
    amount_atomic: int
    asset: str
    network: str
    nonce: str
    job_id: str
    prompt: str
    at: float
    transaction: str


def _money(atomic: int, prefix: str = "total") -> dict[str, str]:
    return {f"{prefix}Atomic": str(atomic), f"{prefix}Usdc": atomic_to_usdc(atomic)}


def _entry_dict(entry: LedgerEntry) -> dict[str, Any]:
    data: dict[str, Any] = msgspec.to_builtins(entry)
    data.update(_money(entry.amount_atomic, "amount"))
    return data


def _duplicate_groups(
    entries: Sequence[LedgerEntry], window: float
) -> list[list[tuple[int, LedgerEntry]]]:
    by_key: dict[tuple[str, str], list[tuple[int, LedgerEntry]]] = defaultdict(list)
    for index, entry in enumerate(entries):
        by_key[entry.payer, entry.prompt].append((index, entry))
    groups: list[list[tuple[int, LedgerEntry]]] = []
    for same in by_key.values():
        same.sort(key=lambda pair: (pair[1].at, pair[0]))
        run = [same[0]]
        for pair in same[1:]:
            if pair[1].at - run[-1][1].at <= window:
                run.append(pair)
                continue
            if len(run) > 1:
                groups.append(run)
            run = [pair]
        if len(run) > 1:
            groups.append(run)
    groups.sort(key=lambda run: (run[0][1].at, run[0][0]))
    return groups


def summarize(
    entries: Sequence[LedgerEntry],
    final_status: Mapping[str, str],
    *,
    duplicate_window: float = 60.0,
) -> dict[str, Any]:
    """Totals, per payer and per final job status, the entries, and likely duplicate submits.

    ``final_status[job_id]`` is the job's status now; a failed or cancelled job still
    cost its price. A *duplicate* is a run of paid submits by the same payer with the
    same prompt, each within ``duplicate_window`` simulated seconds (inclusive) of the
    previous one: the footprint of a blind retry. A run of three retries 40 s apart is
    one group of three. ``extra...`` is what the run cost beyond its first submit.

    Example::

        summary = summarize(store.ledger(), {j.id: status(j, now).value for j in jobs})
        summary["totalUsdc"], summary["duplicates"][0]["jobIds"]
    """
    if not duplicate_window >= 0:
        raise ValueError(f"duplicate_window must be >= 0, got {duplicate_window!r}")
    payers: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    statuses: dict[str, list[int]] = {status: [0, 0] for status in (*JOB_STATUSES, "unknown")}
    for entry in entries:
        status = final_status.get(entry.job_id, "unknown")
        for tally in (payers[entry.payer], statuses.get(status, statuses["unknown"])):
            tally[0] += 1
            tally[1] += entry.amount_atomic
    duplicates: list[dict[str, Any]] = []
    extra_total = 0
    for run in _duplicate_groups(entries, duplicate_window):
        first, *rest = (entry for _, entry in run)
        extra = sum(entry.amount_atomic for entry in rest)
        extra_total += extra
        duplicates.append(
            {
                "payer": first.payer,
                "prompt": first.prompt,
                "count": len(run),
                "jobIds": [entry.job_id for _, entry in run],
                "firstAt": first.at,
                "lastAt": run[-1][1].at,
                **_money(extra, "extra"),
            }
        )
    return {
        "count": len(entries),
        **_money(sum(entry.amount_atomic for entry in entries)),
        "assets": sorted({entry.asset for entry in entries}),
        "networks": sorted({entry.network for entry in entries}),
        "byPayer": {
            payer: {"count": count, **_money(atomic)}
            for payer, (count, atomic) in sorted(payers.items())
        },
        "byStatus": {
            status: {"count": count, **_money(atomic)}
            for status, (count, atomic) in statuses.items()
        },
        "duplicates": duplicates,
        "duplicateCount": sum(len(group["jobIds"]) - 1 for group in duplicates),
        **_money(extra_total, "duplicateExtra"),
        "entries": [_entry_dict(entry) for entry in entries],
    }
