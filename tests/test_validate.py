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


@pytest.mark.parametrize("raw", [0, 0.0, "0", 1e-6, "0.000001", 1, 20, 1e6, "1000000"])
def test_a_speed_is_zero_or_between_a_millionth_and_a_million(raw: object) -> None:
    assert parse_float(raw, "speed", SPEED) == float(raw)


@pytest.mark.parametrize("raw", [5e-324, 1e-300, 1e-7, 9.99e-7, "0.0000009", 1e6 + 1, -1e-7])
def test_a_speed_in_the_gap_above_zero_or_past_a_million_is_refused(raw: object) -> None:
    with pytest.raises(InvalidNumber, match=r"^speed: expected a number "):
        parse_float(raw, "speed", SPEED)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("1e3", 1000.0), ("1E3", 1000.0), ("2.5e+2", 250.0), ("1e-05", 1e-05), (".5e1", 5.0)],
)
def test_an_exponent_is_read_where_asked_for(raw: str, expected: float) -> None:
    assert parse_float(raw, "limit", DELAY, exponent=True) == expected
    with pytest.raises(InvalidNumber):  # and only there
        parse_float(raw, "limit", DELAY)


@pytest.mark.parametrize("raw", ["1e", "e3", "1e3.5", "1e1000", "1e999", "1e+", "1ee3", "nan"])
def test_a_malformed_or_infinite_exponent_is_refused(raw: str) -> None:
    with pytest.raises(InvalidNumber, match=r"^limit: "):
        parse_float(raw, "limit", DELAY, exponent=True)


def test_an_integer_with_an_exponent_must_still_be_whole_and_in_bound() -> None:
    assert parse_int("1e3", "times", TIMES, exponent=True) == 1000
    assert parse_int("1.5e1", "times", TIMES, exponent=True) == 15
    for raw in ("1.5e0", "1e-1", "3e9"):
        with pytest.raises(InvalidNumber, match=r"^times: expected an integer"):
            parse_int(raw, "times", TIMES, exponent=True)


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
