"""Numeric CLI flags, checked by :mod:`mockbankr.validate` like every other number.

Example::

    @click.option("--speed", type=NumberParam(SPEED), default=1.0)
"""

from __future__ import annotations

import click

from mockbankr.errors import InvalidNumber
from mockbankr.validate import Bound, parse_float, parse_int

__all__ = ["NumberParam"]


class NumberParam(click.ParamType[int | float]):
    """A click type for one bounded number; a bad value is a usage error naming the flag.

    Example::

        click.option("--journal-size", type=NumberParam(JOURNAL_SIZE, integer=True))
    """

    def __init__(self, bound: Bound, *, integer: bool = False) -> None:
        self.bound = bound
        self.integer = integer
        self.name = "integer" if integer else "number"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> int | float:
        field = param.opts[0] if param is not None and param.opts else "value"
        try:
            if self.integer:
                return parse_int(value, field, self.bound)
            return parse_float(value, field, self.bound)
        except InvalidNumber as exc:
            self.fail(str(exc), param, ctx)
