"""The one validation path for every number that comes in.

JSON fields, ``X-Mockbankr-*`` headers, query parameters, rules files and CLI
flags all go through :func:`parse_int` or :func:`parse_float` with a named
:class:`Bound`. A number is accepted only when it is

* a JSON/TOML number (never a boolean), or text of ASCII digits with an optional
  sign and decimal point (no exponent, no ``inf``/``nan``, no superscripts or
  other Unicode digits, at most :data:`MAX_NUMBER_TEXT` characters);
* finite, and an integer where an integer is expected;
* within its documented bound.

Anything else raises :class:`~mockbankr.errors.InvalidNumber`, a
:class:`~mockbankr.errors.ConfigError` naming the field, which every caller turns
into a 400 (or a CLI usage error). Huge integers are compared as integers, so a
400-digit ``advance`` is refused without an ``OverflowError``.

Example::

    parse_float("12.5", "X-Mockbankr-Latency", LATENCY) == 12.5
    parse_int(10**400, "times", TIMES)  # raises InvalidNumber("times: must be ...")
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

from mockbankr.errors import InvalidNumber

__all__ = [
    "ADVANCE",
    "AFTER",
    "Bound",
    "CLOCK_LIMIT",
    "DAILY_LIMIT",
    "DELAY",
    "FAULT_STATUS",
    "FINISH_IN",
    "GRACEFUL_TIMEOUT",
    "JOURNAL_BYTES",
    "JOURNAL_SIZE",
    "LATENCY",
    "MAX_DELAY_SECONDS",
    "MAX_JOB_SECONDS",
    "MAX_NUMBER_TEXT",
    "MAX_SPEED",
    "MAX_TIMES",
    "MIN_SPEED",
    "NOW",
    "PORT",
    "PROBABILITY",
    "QUERY_LIMIT",
    "QUERY_OFFSET",
    "RESPOND_STATUS",
    "SEED",
    "SPEED",
    "TIMES",
    "parse_float",
    "parse_int",
]

#: The longest text a number may be written in (digits, sign and point).
MAX_NUMBER_TEXT = 40

_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_INTEGER = re.compile(r"[+-]?[0-9]+")
#: Query parameters a document declares as numbers may be written with an exponent
#: (``1e-05``, what generated clients and schemathesis send); only where asked for.
_SCIENTIFIC = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,3})?")
_BLANK = " \t"  # what HTTP and flags may carry around a value; nothing Unicode


@dataclasses.dataclass(frozen=True)
class Bound:
    """The documented range of one kind of number: ``lo <= x <= hi``.

    ``lo_open`` makes the lower end exclusive; ``unit`` goes into error messages.
    ``gap_to`` refuses the values strictly between ``lo`` and ``gap_to``: ``lo`` itself is
    allowed, the next allowed value is ``gap_to`` (a speed is 0 or at least 1e-6).

    Example::

        Bound(0, 3600, unit="seconds").describe() == "within 0..3600 seconds"
    """

    lo: float
    hi: float
    lo_open: bool = False
    unit: str = ""
    gap_to: float | None = None

    def contains(self, value: float) -> bool:
        above = value > self.lo if self.lo_open else value >= self.lo
        in_gap = self.gap_to is not None and self.lo < value < self.gap_to
        return above and value <= self.hi and not in_gap

    def json_schema(self, *, integer: bool = False) -> dict[str, Any]:
        """This bound as a JSON Schema (for the OpenAPI document).

        Example::

            TIMES.json_schema(integer=True) == {"type": "integer", "minimum": 1,
                                                "maximum": 2147483648}
        """
        kind = "integer" if integer else "number"
        if self.gap_to is not None:
            return {
                "type": kind,
                "anyOf": [{"enum": [self.lo]}, {"minimum": self.gap_to, "maximum": self.hi}],
            }
        schema: dict[str, Any] = {"type": kind}
        schema["exclusiveMinimum" if self.lo_open else "minimum"] = self.lo
        schema["maximum"] = self.hi
        return schema

    def describe(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        lo, hi = _show(self.lo), _show(self.hi)
        if self.gap_to is not None:
            return f"{lo} or within {_show(self.gap_to)}..{hi}{unit}"
        if self.lo_open:
            return f"> {lo} and <= {hi}{unit}"
        return f"within {lo}..{hi}{unit}"


def _show(x: float) -> str:
    if isinstance(x, int) or (x.is_integer() and abs(x) < 1e15):
        return str(int(x))
    return f"{x:g}"


#: Delays and hangs hold a connection: an hour at most (simulated seconds).
MAX_DELAY_SECONDS = 3600.0
#: The longest a job may be shaped or steered to last: 365 simulated days.
MAX_JOB_SECONDS = 365 * 86_400.0
#: How often a rule may fire at most.
MAX_TIMES = 2**31
#: The fastest a scaled clock may run (0 freezes it).
MAX_SPEED = 1e6
#: The slowest a running scaled clock may go: below it (a denormal such as 5e-324) a
#: clock is frozen in all but name, so 0 says so and anything between is refused.
MIN_SPEED = 1e-6
#: The latest instant the clock may be set or advanced to, and where a running clock
#: stops (9000-01-01T00:00:00Z): far enough before the last ISO timestamp (year
#: 9999) that every job scheduled from it (at most :data:`MAX_JOB_SECONDS` ahead) still
#: has a printable time.
CLOCK_LIMIT = 221845392000.0

DELAY = Bound(0, MAX_DELAY_SECONDS, unit="seconds")
LATENCY = Bound(0, MAX_JOB_SECONDS, lo_open=True, unit="seconds")
AFTER = Bound(0, MAX_JOB_SECONDS, unit="seconds")
FINISH_IN = Bound(0, MAX_JOB_SECONDS, unit="seconds")
ADVANCE = Bound(0, CLOCK_LIMIT, unit="seconds")
NOW = Bound(0, CLOCK_LIMIT, unit="unix seconds")
SPEED = Bound(0, MAX_SPEED, unit="x", gap_to=MIN_SPEED)
TIMES = Bound(1, MAX_TIMES)
PROBABILITY = Bound(0, 1)
RESPOND_STATUS = Bound(200, 599)
FAULT_STATUS = RESPOND_STATUS
QUERY_OFFSET = Bound(0, 10**12)
QUERY_LIMIT = Bound(1, 1000)
PORT = Bound(0, 65535)
SEED = Bound(0, 2**64 - 1)
JOURNAL_SIZE = Bound(1, 1_000_000)
JOURNAL_BYTES = Bound(64 * 1024, 1 << 40, unit="bytes")
DAILY_LIMIT = Bound(1, MAX_TIMES)
GRACEFUL_TIMEOUT = Bound(0, MAX_DELAY_SECONDS, unit="seconds")


def _fail(field: str, bound: Bound, raw: object, what: str) -> InvalidNumber:
    shown = repr(raw)
    if len(shown) > 48:
        shown = shown[:45] + "..."
    return InvalidNumber(f"{field}: expected {what} {bound.describe()}, got {shown}", field=field)


def _from_text(raw: str, field: str, bound: Bound, *, integer: bool, exponent: bool) -> int | float:
    text = raw.strip(_BLANK)
    pattern = _SCIENTIFIC if exponent else _INTEGER if integer else _DECIMAL
    what = "an integer" if integer else "a number"
    if len(text) > MAX_NUMBER_TEXT or not pattern.fullmatch(text):
        raise _fail(field, bound, raw, what)
    if exponent:
        return float(text)  # an integer is then checked as an integral float
    return int(text) if integer else float(text)


def _check(
    raw: object, field: str, bound: Bound, *, integer: bool, exponent: bool = False
) -> int | float:
    what = "an integer" if integer else "a number"
    if isinstance(raw, str):
        value: int | float = _from_text(raw, field, bound, integer=integer, exponent=exponent)
    elif isinstance(raw, bool) or not isinstance(raw, int | float):
        raise _fail(field, bound, raw, what)
    else:
        value = raw
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _fail(field, bound, raw, what)
        if integer:
            if not value.is_integer():
                raise _fail(field, bound, raw, what)
            if not bound.contains(value):  # compare before int(): no huge ints made
                raise _fail(field, bound, raw, what)
            value = int(value)
    # An int is compared as an int: exact, and no OverflowError however long it is.
    if not bound.contains(value):
        raise _fail(field, bound, raw, what)
    return value


def parse_int(raw: object, field: str, bound: Bound, *, exponent: bool = False) -> int:
    """An integer from JSON, TOML or text, within ``bound``; else :class:`InvalidNumber`.

    A float with no fraction (``3.0``) is accepted as the integer it is; ``exponent``
    lets text be written with one (``"1e3"``, for documented numeric query parameters).

    Example::

        parse_int("2", "times", TIMES) == 2
    """
    return int(_check(raw, field, bound, integer=True, exponent=exponent))


def parse_float(raw: object, field: str, bound: Bound, *, exponent: bool = False) -> float:
    """A finite number from JSON, TOML or text, within ``bound``; else :class:`InvalidNumber`.

    ``exponent`` lets text be written with one (``"1e-05"``), as :func:`parse_int`.

    Example::

        parse_float(2, "delay.seconds", DELAY) == 2.0
    """
    return float(_check(raw, field, bound, integer=False, exponent=exponent))
