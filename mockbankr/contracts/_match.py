"""Comparing what was seen with what a contract holds, through its matchers.

Pure functions, shared by both sides: replay compares the client's requests, verify the
server's responses. A value under a matcher's pointer is checked by the matcher (and may be
bound to a name); every other value must be equal, objects must have exactly the recorded
keys, and arrays the recorded length. The first difference is returned, with its pointer.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mockbankr.contracts.format import ContractError, Matcher

__all__ = [
    "CredentialCheck",
    "Difference",
    "bind_from",
    "check",
    "compare",
    "pointer_to",
    "resolve",
    "shown",
]

#: ``(credential name, actual value)`` -> an error text, or ``None`` when it fits.
CredentialCheck = Callable[[str, Any], str | None]

_TEMPLATE = re.compile(r"\{([a-z][a-z0-9_]*)\}")


@dataclass(frozen=True)
class Difference:
    """The first place where what was seen differs from the contract.

    Example::

        str(Difference("/response/body/status", "'completed'", "'processing'"))
        # "/response/body/status: expected 'completed', got 'processing'"
    """

    pointer: str
    expected: str
    actual: str
    context: str = ""

    def __str__(self) -> str:
        where = f"{self.context}: " if self.context else ""
        return f"{where}{self.pointer}: expected {self.expected}, got {self.actual}"

    def within(self, context: str) -> Difference:
        return Difference(self.pointer, self.expected, self.actual, context)


def pointer_to(parent: str, token: str | int) -> str:
    """The JSON pointer of ``token`` under ``parent`` (RFC 6901 escaping)."""
    return f"{parent}/{str(token).replace('~', '~0').replace('/', '~1')}"


def shown(value: Any, limit: int = 80) -> str:
    """A short printable form of a JSON value."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else type(value).__name__


def _fill(template: str, bindings: Mapping[str, Any]) -> str:
    def one(found: re.Match[str]) -> str:
        name = found.group(1)
        if name not in bindings:
            raise ContractError(f"{name!r} is not bound (yet)")
        return str(bindings[name])

    return _TEMPLATE.sub(one, template)


def check(
    matcher: Matcher,
    actual: Any,
    bindings: dict[str, Any],
    credential: CredentialCheck | None = None,
) -> str | None:
    """Why ``actual`` does not fit ``matcher`` (an "expected ..." text), or ``None``.

    A fitting value is bound under ``matcher.bind``.
    """
    problem: str | None = None
    if matcher.type is not None:
        kind = _json_type(actual)
        fits = kind == matcher.type or (matcher.type == "number" and kind == "integer")
        problem = None if fits else f"a JSON {matcher.type}"
    elif matcher.regex is not None:
        fits = isinstance(actual, str) and re.fullmatch(matcher.regex, actual) is not None
        problem = None if fits else f"a string matching {matcher.regex!r}"
    elif matcher.same is not None:
        expected = bindings.get(matcher.same)
        problem = None if actual == expected else f"{shown(expected)} (same as {matcher.same})"
    elif matcher.format is not None:
        expected = _fill(matcher.format, bindings)
        problem = None if actual == expected else f"{shown(expected)} ({matcher.format})"
    elif matcher.credential is not None:
        if credential is None:
            raise ContractError(f"no way to check a {matcher.credential} here")
        problem = credential(matcher.credential, actual)
    if problem is None and matcher.bind is not None:
        bindings[matcher.bind] = actual
    return problem


#: Compared first, so the first difference reported is the most telling one: an HTTP
#: status, then a job's status and error, before the fields that follow from them.
_FIRST = ("status", "error")


def _priority(key: str) -> tuple[int, str]:
    return (_FIRST.index(key), "") if key in _FIRST else (len(_FIRST), key)


def _equal(expected: Any, actual: Any) -> bool:
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(expected) is type(actual) and expected == actual
    if isinstance(expected, int | float) and isinstance(actual, int | float):
        return expected == actual
    return type(expected) is type(actual) and bool(expected == actual)


def compare(
    expected: Any,
    actual: Any,
    *,
    pointer: str,
    matchers: Mapping[str, Matcher],
    bindings: dict[str, Any],
    credential: CredentialCheck | None = None,
) -> Difference | None:
    """The first difference between a recorded value and an actual one, or ``None``.

    Depth first; object keys in sorted order except ``status`` and ``error`` first (an
    exchange's status comes before its headers and body); a key the actual value has but
    the recorded one lacks is reported after every recorded key. Matched values are bound
    as a side effect.
    """
    matcher = matchers.get(pointer)
    if matcher is not None:
        problem = check(matcher, actual, bindings, credential)
        return None if problem is None else Difference(pointer, problem, shown(actual))
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return Difference(pointer, "an object", shown(actual))
        for key in sorted(expected, key=_priority):
            if key not in actual:
                return Difference(pointer_to(pointer, key), "the field", "nothing (missing)")
            found = compare(
                expected[key],
                actual[key],
                pointer=pointer_to(pointer, key),
                matchers=matchers,
                bindings=bindings,
                credential=credential,
            )
            if found is not None:
                return found
        for key in sorted(actual):
            if key not in expected:
                return Difference(
                    pointer_to(pointer, key), "no such field", f"{shown(actual[key])} (unexpected)"
                )
        return None
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return Difference(pointer, "an array", shown(actual))
        if len(actual) != len(expected):
            return Difference(pointer, f"an array of {len(expected)} items", f"{len(actual)} items")
        for i, (want, got) in enumerate(zip(expected, actual, strict=True)):
            found = compare(
                want,
                got,
                pointer=pointer_to(pointer, i),
                matchers=matchers,
                bindings=bindings,
                credential=credential,
            )
            if found is not None:
                return found
        return None
    if not _equal(expected, actual):
        return Difference(pointer, shown(expected), shown(actual))
    return None


def bind_from(
    recorded: Any, *, pointer: str, matchers: Mapping[str, Matcher], bindings: dict[str, Any]
) -> None:
    """Bind the names of every binding matcher under ``pointer`` to the recorded values
    (what a replay serves is what the client will reuse)."""
    for key, matcher in matchers.items():
        if matcher.bind is None or not key.startswith(pointer + "/"):
            continue
        node = recorded
        for token in key[len(pointer) + 1 :].split("/"):
            token = token.replace("~1", "/").replace("~0", "~")
            node = node[int(token)] if isinstance(node, list) else node[token]
        bindings[matcher.bind] = node


def resolve(
    recorded: Any,
    *,
    pointer: str,
    matchers: Mapping[str, Matcher],
    bindings: Mapping[str, Any],
    credential: Callable[[str], Any],
) -> Any:
    """The value to send for a recorded one: ``same``/``format`` filled from ``bindings``,
    credentials from ``credential(name)``, everything else as recorded."""
    matcher = matchers.get(pointer)
    if matcher is not None:
        if matcher.same is not None:
            return bindings[matcher.same]
        if matcher.format is not None:
            return _fill(matcher.format, bindings)
        if matcher.credential is not None:
            return credential(matcher.credential)
        return recorded
    if isinstance(recorded, dict):
        return {
            key: resolve(
                value,
                pointer=pointer_to(pointer, key),
                matchers=matchers,
                bindings=bindings,
                credential=credential,
            )
            for key, value in recorded.items()
        }
    if isinstance(recorded, list):
        return [
            resolve(
                value,
                pointer=pointer_to(pointer, i),
                matchers=matchers,
                bindings=bindings,
                credential=credential,
            )
            for i, value in enumerate(recorded)
        ]
    return recorded
