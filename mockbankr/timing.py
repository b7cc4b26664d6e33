"""The timing table: how long each kind of prompt takes, how it fails, what it answers.

The table is data (``fixtures/timing.toml``), validated on load into frozen
structs. A prompt is classified by the first category whose keyword occurs in it
(case-insensitive), falling back to the table's ``default`` category.

A category's ``range`` is the whole time a user waits, from submission to the
terminal status; its ``queue_delay`` (the pending phase) is part of it::

    created_at ── queue_delay ──> started_at ── processing ──> finished_at
    └──────────────────── total, sampled from range ──────────────────┘
"""

from __future__ import annotations

import math
import random
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

import msgspec

from mockbankr.errors import FixtureError

__all__ = [
    "Category",
    "Sample",
    "TimingTable",
    "default_fixtures_dir",
    "load_timing",
]

_T = TypeVar("_T")

Distribution = Literal["uniform", "triangular", "lognormal"]


class Category(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One row of the timing table.

    Example::

        table.categories["price"].range == (2.0, 5.0)
    """

    description: str = ""
    keywords: tuple[str, ...] = ()
    range: tuple[float, float]
    queue_delay: tuple[float, float] = (0.0, 0.0)
    distribution: Distribution = "uniform"
    #: Most likely total, for ``triangular`` (defaults to the middle of the range).
    mode: float | None = None
    #: Spread in log space, for ``lognormal`` (its median is the range's geometric mean).
    sigma: float = 0.5
    failure_probability: float = 0.0
    errors: tuple[str, ...] = ("The agent could not complete this request",)
    responses: tuple[str, ...]
    status_updates: tuple[str, ...] = ()
    transactions: tuple[dict[str, Any], ...] = ()
    rich_data: tuple[dict[str, Any], ...] = ()

    def sample(self, rng: random.Random) -> Sample:
        """Draw one job's schedule (relative to submission) and outcome."""
        lo, hi = self.range
        if self.distribution == "triangular":
            total = rng.triangular(lo, hi, self.mode if self.mode is not None else (lo + hi) / 2)
        elif self.distribution == "lognormal":
            total = rng.lognormvariate(math.log(math.sqrt(lo * hi)), self.sigma)
        else:
            total = rng.uniform(lo, hi)
        total = min(hi, max(lo, total))
        pending = rng.uniform(*self.queue_delay)
        failed = rng.random() < self.failure_probability
        variant = rng.randrange(len(self.errors) if failed else len(self.responses))
        return Sample(pending=pending, total=total, failed=failed, variant=variant)


class Sample(msgspec.Struct, frozen=True):
    """A sampled schedule: seconds after submission, and the outcome."""

    pending: float
    total: float
    failed: bool
    variant: int


class _TableFile(msgspec.Struct, forbid_unknown_fields=True):
    default: str
    categories: dict[str, dict[str, Any]]


class TimingTable(msgspec.Struct, frozen=True):
    """The validated table, categories in file order.

    Example::

        table = load_timing()
        table.classify("What is the price of ETH?").name == "price"
    """

    default: str
    categories: dict[str, Category]
    path: str = "<memory>"

    def classify(self, prompt: str) -> str:
        """The name of the first category with a keyword in ``prompt``, else the default."""
        text = prompt.lower()
        for name, category in self.categories.items():
            if any(word in text for word in category.keywords):
                return name
        return self.default

    def __getitem__(self, name: str) -> Category:
        return self.categories[name]


def default_fixtures_dir() -> Path:
    """The fixtures shipped with mockbankr (the repository's ``fixtures/`` folder)."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "fixtures", here / "_fixtures"):
        if (candidate / "timing.toml").is_file():
            return candidate
    raise FixtureError("the built-in fixtures are missing", path=str(here / "_fixtures"))


def load_timing(fixtures_dir: Path | None = None) -> TimingTable:
    """Load and validate ``timing.toml`` from ``fixtures_dir`` (default: the built-in one).

    Raises :class:`~mockbankr.errors.FixtureError` naming the file and the key for
    an unknown key, a wrong type or an impossible range.
    """
    path = (fixtures_dir or default_fixtures_dir()) / "timing.toml"
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise FixtureError(
            f"cannot read the timing table ({exc.strerror})", path=str(path)
        ) from exc
    except tomllib.TOMLDecodeError as exc:
        raise FixtureError(f"invalid TOML ({exc})", path=str(path)) from exc
    return parse_timing(raw, path=str(path))


def parse_timing(raw: Mapping[str, Any], *, path: str = "<memory>") -> TimingTable:
    """Validate an already-parsed table (see :func:`load_timing`)."""
    top = _convert(raw, _TableFile, path, prefix="")
    categories: dict[str, Category] = {}
    for name, row in top.categories.items():
        category = _convert(row, Category, path, prefix=f"categories.{name}")
        _check_category(name, category, path)
        categories[name] = msgspec.structs.replace(
            category, keywords=tuple(k.lower() for k in category.keywords)
        )
    if top.default not in categories:
        raise FixtureError(
            f"names no category (known: {', '.join(categories)})", path=path, key="default"
        )
    return TimingTable(default=top.default, categories=categories, path=path)


def _convert(raw: Any, kind: type[_T], path: str, *, prefix: str) -> _T:
    try:
        return msgspec.convert(raw, kind)
    except msgspec.ValidationError as exc:
        message, _, where = str(exc).partition(" - at `$")
        key = ".".join(part for part in (prefix, where.rstrip("`").lstrip(".")) if part)
        raise FixtureError(message, path=path, key=key or None) from exc


def _check_category(name: str, c: Category, path: str) -> None:
    def fail(key: str, message: str) -> None:
        raise FixtureError(message, path=path, key=f"categories.{name}.{key}")

    lo, hi = c.range
    if not (math.isfinite(lo) and math.isfinite(hi) and 0 < lo <= hi):
        fail("range", f"must be [min, max] seconds with 0 < min <= max, got [{lo}, {hi}]")
    qlo, qhi = c.queue_delay
    if not (0 <= qlo <= qhi < lo):
        fail(
            "queue_delay",
            f"must be [min, max] with 0 <= min <= max < range min ({lo}), got [{qlo}, {qhi}]:"
            " the pending phase is part of the total range",
        )
    if c.mode is not None and not lo <= c.mode <= hi:
        fail("mode", f"must lie within the range [{lo}, {hi}], got {c.mode}")
    if not c.sigma > 0:
        fail("sigma", f"must be positive, got {c.sigma}")
    if not 0 <= c.failure_probability <= 1:
        fail("failure_probability", f"must be within [0, 1], got {c.failure_probability}")
    if not c.responses:
        fail("responses", "needs at least one response text")
    if c.failure_probability > 0 and not c.errors:
        fail("errors", "needs at least one error text when failure_probability > 0")
    for i, item in enumerate((*c.transactions, *c.rich_data)):
        if not isinstance(item.get("type"), str):
            fail("transactions/rich_data", f"item {i} needs a string 'type'")
