"""A server at a URL: find its ``/__mock`` control plane, and install a scenario's rules.

The real Bankr API has no control plane; a ``mockbankr serve`` has one (on loopback).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from mockbankr.contracts.format import ContractError

__all__ = ["has_control_plane", "install_rules"]


async def has_control_plane(http: httpx.AsyncClient) -> bool:
    """Whether the server answers ``GET /__mock/rules`` like mockbankr does."""
    try:
        response = await http.get("/__mock/rules", timeout=10.0)
    except httpx.HTTPError:
        return False
    if response.status_code != 200:
        return False
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and isinstance(body.get("rules"), list)


async def install_rules(http: httpx.AsyncClient, rules: Sequence[dict[str, Any]]) -> None:
    """Reset the server (jobs, rules, journal, ledger) and add ``rules`` in order."""
    response = await http.post("/__mock/reset", json={}, timeout=10.0)
    if response.status_code != 200:
        raise ContractError(f"POST /__mock/reset answered {response.status_code}")
    await http.delete("/__mock/rules", timeout=10.0)
    for rule in rules:
        response = await http.post("/__mock/rules", json=rule, timeout=10.0)
        if response.status_code != 201:
            raise ContractError(
                f"POST /__mock/rules refused a scenario rule ({response.status_code}):"
                f" {response.text[:200]}"
            )
