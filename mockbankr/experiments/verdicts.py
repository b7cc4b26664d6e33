"""The verdicts of every client check (issue 14's grading), per policy.

Grading is a pure function of the journal; this module only adapts a run's records to it.

Example::

    grade(records)   # {"available": False, ...} until the grading module is present
"""

from __future__ import annotations

from typing import Any

from mockbankr.experiments.records import Records

__all__ = ["grade"]


def grade(records: Records) -> dict[str, Any]:
    """The verdicts of the run's clients, as JSON-ready data."""
    return {"available": False, "reason": "the grading module (mockbankr.verdicts) is absent"}
