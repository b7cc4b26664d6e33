"""A small catalogue of realistic prompts, one distinct ``str`` object per job.

A server receives each prompt from JSON parsing, so no two jobs share a prompt
object even when the texts are equal. :func:`prompt` builds each text with an
f-string for the same reason: benchmarks must not get cheap shared strings.
"""

from __future__ import annotations

__all__ = ["API_KEYS", "prompt"]

#: A few distinct API keys, as several developers sharing one server would use.
API_KEYS = ("bk_bench_alice", "bk_bench_bob", "bk_bench_carol", "bk_bench_dave")

_TOKENS = ("ETH", "USDC", "cbBTC", "DEGEN", "BRETT", "AERO", "TOSHI", "WELL", "VIRTUAL", "MORPHO")
_CHAINS = ("Base", "Ethereum", "Polygon", "Arbitrum", "Solana")


def prompt(i: int) -> str:
    """The ``i``-th prompt: a new string, one of eight shapes covering every category."""
    token = _TOKENS[i % len(_TOKENS)]
    other = _TOKENS[(i // 7) % len(_TOKENS)]
    chain = _CHAINS[(i // 3) % len(_CHAINS)]
    amount = 1 + i % 997
    match i % 8:
        case 0:
            return f"What is the price of {token}?"
        case 1:
            return f"How much is {amount} {token} worth in USD?"
        case 2:
            return f"Swap {amount} USDC for {token} on {chain}"
        case 3:
            return f"Sell {amount} {token} for {other} on {chain}"
        case 4:
            return f"What is my {chain} balance?"
        case 5:
            return f"Show my {chain} portfolio holdings including {token}"
        case 6:
            return f"Analyze the {token} price trend over the last {1 + i % 30} days"
        case _:
            return f"Tell me something interesting about {token} #{i}"
