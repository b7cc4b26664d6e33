"""The one validation path for numbers: what passes, what is refused, and how it is named."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mockbankr.errors import ConfigError, InvalidNumber
from mockbankr.validate import (
    DELAY,
    LATENCY,
    RESPOND_STATUS,
    SPEED,
    TIMES,
    Bound,
    parse_float,
    parse_int,
)


@pytest.mark.parametrize(
    ("raw", "bound", "expected"),
    [
        ("12.5", LATENCY, 12.5),
        (" 2 ", DELAY, 2.0),
        ("\t3.\t", DELAY, 3.0),
        (".5", DELAY, 0.5),
        (7, DELAY, 7.0),
        (0, SPEED, 0.0),
        (3600, DELAY, 3600.0),
    ],
)
def test_numbers_within_their_bound_pass(raw: object, bound: Bound, expected: float) -> None:
    assert parse_float(raw, "field", bound) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "²",  # a superscript digit: str.isdigit() says yes
        "٣",  # an Arabic-Indic digit: float() would read it
        "1e3",  # no exponents in text
        "inf",
        "nan",
        "Infinity",
        "1" * 41,  # longer than any number a field needs
        "",
        " ",
        "1 2",
        "0x10",
        "1_000",
        "--1",
        True,  # JSON true is not 1
        None,
        [1],
        {"n": 1},
        math.inf,
        -math.inf,
        math.nan,
        10**400,  # an OverflowError if turned into a float
        -(10**400),
        1e308,
        3600.0000001,
        -0.1,
    ],
)
def test_anything_else_is_refused_naming_the_field(raw: object) -> None:
    with pytest.raises(InvalidNumber) as caught:
        parse_float(raw, "X-Mockbankr-Fault delay", DELAY)
    assert caught.value.field == "X-Mockbankr-Fault delay"
    assert str(caught.value).startswith("X-Mockbankr-Fault delay: expected a number within 0..3600")
    assert isinstance(caught.value, ConfigError)  # every caller already turns these into a 400


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("2", 2), (2, 2), (2.0, 2), ("+2", 2), (2**31, 2**31)],
)
def test_integers(raw: object, expected: int) -> None:
    assert parse_int(raw, "times", TIMES) == expected


@pytest.mark.parametrize("raw", ["2.5", 2.5, 0, 2**31 + 1, 2**64, 10**4000, "1" * 40, "٢", 1e300])
def test_integers_outside_their_bound_or_with_a_fraction_are_refused(raw: object) -> None:
    with pytest.raises(InvalidNumber, match=r"^times: expected an integer within 1\.\.2147483648"):
        parse_int(raw, "times", TIMES)


def test_an_open_lower_bound_excludes_it() -> None:
    with pytest.raises(InvalidNumber, match=r"> 0 and <= 31536000 seconds"):
        parse_float(0, "X-Mockbankr-Latency", LATENCY)


def test_the_bounds_in_the_openapi_document_are_the_checked_ones() -> None:
    assert RESPOND_STATUS.json_schema(integer=True) == {
        "type": "integer",
        "minimum": 200,
        "maximum": 599,
    }
    assert LATENCY.json_schema()["exclusiveMinimum"] == 0


@given(st.one_of(st.text(max_size=60), st.integers(), st.floats(), st.booleans(), st.none()))
def test_any_input_is_a_bounded_number_or_an_invalid_number(raw: object) -> None:
    try:
        value = parse_float(raw, "f", DELAY)
    except InvalidNumber:
        return
    assert math.isfinite(value)
    assert 0 <= value <= 3600
