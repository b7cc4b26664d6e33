"""Grading: each client's polling, timeout and retry behaviour, judged from the journal.

A pure function of journal entries and :class:`Thresholds` (no clock, no I/O, no HTTP):
:func:`grade` groups the entries by owner (an API key or a wallet) and gives each client
one :class:`~mockbankr.verdicts.Verdict` per check (see :mod:`mockbankr.verdicts`).

Times are simulated: a request *arrives* at ``sim_time`` and is *answered*
``sim_latency_ms`` later. "After an answer" means arriving at or after that answer.
Each offending poll is charged to one check, in this order: a poll after a terminal
answer is ``stop-at-terminal``, after a 404 ``not-found-loop``; only other polls count
for ``deadline`` and ``poll-interval``. A request after an error is judged by
``retry-after`` (when the error said how long to wait) or ``backoff``, not by the poll
interval. So one mistake fails one check.

=====================  ==================================================================
``poll-interval``      a poll of a job comes less than ``interval - tolerance`` after the
                       previous poll of it, which was answered with a non-terminal status
                       (a cancel of the job in between starts afresh)
``stop-at-terminal``   a job is polled again after a poll answered completed, failed or
                       cancelled
``deadline``           a job is polled more than ``timeout + tolerance`` after the prompt
                       that created it, or more than ``max_attempts`` times
``retry-after``        after a 429 or 503 with ``Retry-After``, a request of the client
                       arrives before that time (less ``tolerance``)
``backoff``            after a 429 or 5xx without ``Retry-After``, the same request again
                       (same method and path, same prompt) comes sooner than
                       ``min(backoff_base * 2**(n-1), backoff_max) * (1 - jitter)`` for
                       the n-th retry, or more than ``max_retries`` retries in a row
``no-double-pay``      the same prompt again within ``duplicate_window`` of an earlier one
                       that was accepted and whose job was not seen to fail or be
                       cancelled (still live, or completed), or that got an answer which
                       did not prove it refused: no answer (a timeout, a dropped
                       connection) or a 5xx other than 503
``abandoned-job``      an accepted job never answered terminal (or 404) and never
                       cancelled, not polled for more than ``timeout`` by ``now``
``not-found-loop``     a job is polled again after a 404 for it
=====================  ==================================================================

Money: each duplicate job that was accepted, and each abandoned job, wastes ``price``.

Example::

    report = grade(journal.entries(), Thresholds(interval=1.0), now=clock.now())
    for client in report.clients:
        print(client.owner, client.failed)
"""

from __future__ import annotations

import bisect
import itertools
import math
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from typing import Final

from mockbankr.journal import Entry
from mockbankr.verdicts import (
    MAX_INCIDENTS,
    ClientVerdicts,
    Incident,
    Report,
    Thresholds,
    Verdict,
    Window,
    is_owner,
)

__all__ = ["grade"]

_TERMINAL = frozenset({"completed", "failed", "cancelled"})
_PROMPT_PATHS = frozenset({"/agent/prompt", "/v2/prompt"})
_JOB_PATH = re.compile(r"^/(?:agent|v2)/job/([^/]+)(/cancel)?$")


def _answered(entry: Entry) -> float:
    return entry.sim_time + entry.sim_latency_ms / 1000


def _is_error(status: int) -> bool:
    return status == 429 or status >= 500


def _ambiguous(status: int) -> bool:
    """A prompt answer that does not prove the prompt was refused."""
    return status == 0 or (status >= 500 and status != 503)


class _Client:
    """One owner's requests, arrival-ordered, with the per-job views the checks share."""

    def __init__(self, entries: list[Entry], t: Thresholds, now: float) -> None:
        entries.sort(key=lambda e: (e.sim_time, e.seq))
        self.entries = entries
        self.t = t
        self.now = now
        self.polls: dict[str, list[Entry]] = defaultdict(list)
        self.cancels: dict[str, list[Entry]] = defaultdict(list)
        self.prompts: list[Entry] = []
        for entry in entries:
            path = entry.path
            if path in _PROMPT_PATHS:
                if entry.method == "POST":
                    self.prompts.append(entry)
                continue
            found = _JOB_PATH.match(path)
            if found is None:
                continue
            if found.group(2) is None:
                if entry.method in ("GET", "HEAD"):
                    self.polls[found.group(1)].append(entry)
            elif entry.method == "POST":
                self.cancels[found.group(1)].append(entry)
        # Per job: the earliest terminal answer, the earliest 404, and which polls came
        # after either (charged to stop-at-terminal / not-found-loop, not elsewhere).
        self.terminal: dict[str, Entry] = {}
        self.gone: dict[str, Entry] = {}
        self.after_terminal: dict[str, list[tuple[Entry, Entry]]] = {}
        self.after_gone: dict[str, list[tuple[Entry, Entry]]] = {}
        self.live_polls: dict[str, list[Entry]] = {}
        for job, polls in self.polls.items():
            terminal: Entry | None = None
            gone: Entry | None = None
            for cancel in self.cancels.get(job, ()):
                if cancel.status == 404 and (gone is None or _answered(cancel) < _answered(gone)):
                    gone = cancel
            late_t: list[tuple[Entry, Entry]] = []
            late_g: list[tuple[Entry, Entry]] = []
            live: list[Entry] = []
            for poll in polls:
                if terminal is not None and poll.sim_time >= _answered(terminal):
                    late_t.append((terminal, poll))
                elif gone is not None and poll.sim_time >= _answered(gone):
                    late_g.append((gone, poll))
                else:
                    live.append(poll)
                if poll.status == 200 and poll.job_status in _TERMINAL:
                    if terminal is None or _answered(poll) < _answered(terminal):
                        terminal = poll
                elif poll.status == 404 and (gone is None or _answered(poll) < _answered(gone)):
                    gone = poll
            if terminal is not None:
                self.terminal[job] = terminal
            if gone is not None:
                self.gone[job] = gone
            self.after_terminal[job] = late_t
            self.after_gone[job] = late_g
            self.live_polls[job] = live

    # Each check returns (exercised, incidents, wasted atomic or None).

    def poll_interval(self) -> tuple[bool, list[Incident], None]:
        least = self.t.interval - self.t.tolerance
        exercised = False
        found: list[Incident] = []
        for job, polls in self.live_polls.items():
            cancels = [(c.sim_time, c.seq) for c in self.cancels.get(job, ())]
            for before, poll in itertools.pairwise(polls):
                if before.status != 200 or before.job_status in _TERMINAL:
                    continue
                if any(
                    (before.sim_time, before.seq) < at < (poll.sim_time, poll.seq) for at in cancels
                ):
                    continue  # the client changed the job in between: a new look is fair
                exercised = True
                gap = poll.sim_time - before.sim_time
                if gap < least:
                    found.append(
                        Incident(
                            f"polled again {gap:.3g} s after the previous poll"
                            f" (minimum {self.t.interval:g} s)",
                            (before, poll),
                        )
                    )
        return exercised, found, None

    def stop_at_terminal(self) -> tuple[bool, list[Incident], None]:
        found = [
            Incident(f"polled again after the job answered {terminal.job_status}", (terminal, poll))
            for pairs in self.after_terminal.values()
            for terminal, poll in pairs
        ]
        return bool(self.terminal), found, None

    def not_found_loop(self) -> tuple[bool, list[Incident], None]:
        found = [
            Incident("polled again after a 404 for the job", (gone, poll))
            for pairs in self.after_gone.values()
            for gone, poll in pairs
        ]
        return bool(self.gone), found, None

    def _created(self) -> dict[str, Entry]:
        return {
            p.job_id: p
            for p in self.prompts
            if 200 <= p.status < 300 and p.job_id is not None and p.path in _PROMPT_PATHS
        }

    def deadline(self) -> tuple[bool, list[Incident], None]:
        created = self._created()
        limit = self.t.timeout + self.t.tolerance
        found: list[Incident] = []
        for job, polls in self.live_polls.items():
            prompt = created.get(job)
            for number, poll in enumerate(polls, 1):
                if number > self.t.max_attempts:
                    found.append(
                        Incident(
                            f"poll number {number} of the job (maximum {self.t.max_attempts})",
                            (poll,),
                        )
                    )
                elif prompt is not None and poll.sim_time - prompt.sim_time > limit:
                    found.append(
                        Incident(
                            f"polled {poll.sim_time - prompt.sim_time:.4g} s after submitting"
                            f" (timeout {self.t.timeout:g} s)",
                            (prompt, poll),
                        )
                    )
        return any(self.live_polls.values()), found, None

    def retry_after(self) -> tuple[bool, list[Incident], None]:
        arrivals = [e.sim_time for e in self.entries]
        exercised = False
        offending: dict[int, Incident] = {}
        for index, error in enumerate(self.entries):
            if error.status not in (429, 503) or error.retry_after is None:
                continue
            exercised = True
            answered = _answered(error)
            until = answered + error.retry_after - self.t.tolerance
            # Requests after the error (arrival order) that arrived once it was answered.
            start = max(index + 1, bisect.bisect_left(arrivals, answered))
            end = bisect.bisect_left(arrivals, until)
            for entry in self.entries[start:end]:
                if entry.seq not in offending:
                    offending[entry.seq] = Incident(
                        f"sent {entry.sim_time - answered:.3g} s after a {error.status} that"
                        f" asked for {error.retry_after:g} s (Retry-After)",
                        (error, entry),
                    )
        return exercised, sorted(offending.values(), key=_first_arrival), None

    def backoff(self) -> tuple[bool, list[Incident], None]:
        t = self.t
        exercised = False
        streak: dict[tuple[str, str, str | None], tuple[int, Entry]] = {}
        found: list[Incident] = []
        for entry in self.entries:
            key = (entry.method, entry.path, entry.prompt_hash)
            previous = streak.get(key)
            if previous is not None and entry.sim_time >= _answered(previous[1]):
                retry, error = previous
                if retry > t.max_retries:
                    found.append(
                        Incident(
                            f"retry number {retry} in a row (maximum {t.max_retries})",
                            (error, entry),
                        )
                    )
                elif error.retry_after is None:
                    cap = min(t.backoff_base * 2.0 ** min(retry - 1, 1000), t.backoff_max)
                    least = cap * (1 - t.jitter) - t.tolerance
                    gap = entry.sim_time - _answered(error)
                    if gap < least:
                        found.append(
                            Incident(
                                f"retry number {retry} {gap:.3g} s after a {error.status}"
                                f" (backoff allows no less than {max(least, 0):.3g} s)",
                                (error, entry),
                            )
                        )
            if _is_error(entry.status):
                exercised = True
                streak[key] = ((previous[0] if previous else 0) + 1, entry)
            else:
                streak.pop(key, None)
        return exercised, found, None

    def no_double_pay(self) -> tuple[bool, list[Incident], int]:
        t = self.t
        # When the client learned that a job ended without a result (failed or
        # cancelled): a fresh prompt after that is a legitimate retry.
        ended: dict[str, float] = {}
        completed: set[str] = set()
        for job, polls in self.polls.items():
            for poll in polls:
                if poll.status == 200 and poll.job_status in ("failed", "cancelled"):
                    ended[job] = min(ended.get(job, math.inf), _answered(poll))
                elif poll.status == 200 and poll.job_status == "completed":
                    completed.add(job)
        for job, cancels in self.cancels.items():
            for cancel in cancels:
                if 200 <= cancel.status < 300:
                    ended[job] = min(ended.get(job, math.inf), _answered(cancel))
        exercised = False
        found: list[Incident] = []
        wasted = 0
        earlier: dict[str, list[Entry]] = defaultdict(list)
        for prompt in self.prompts:
            accepted = 200 <= prompt.status < 300
            if accepted or _ambiguous(prompt.status):
                exercised = True
            if prompt.prompt_hash is None:
                continue
            same = earlier[prompt.prompt_hash]
            for first in reversed(same):
                if prompt.sim_time - first.sim_time > t.duplicate_window:
                    break
                reason = _duplicate_reason(first, prompt, ended, completed)
                if reason is not None:
                    found.append(Incident(reason, (first, prompt)))
                    if accepted:
                        wasted += t.price_atomic
                    break
            same.append(prompt)
        return exercised, found, wasted

    def abandoned_job(self) -> tuple[bool, list[Incident], int]:
        exercised = False
        found: list[Incident] = []
        for job, prompt in self._created().items():
            polls = self.polls.get(job, [])
            if job in self.terminal or job in self.gone or self.cancels.get(job):
                exercised = True
                continue
            last = polls[-1] if polls else prompt
            idle = self.now - max(_answered(last), _answered(prompt))
            if idle > self.t.timeout:
                exercised = True
                found.append(
                    Incident(
                        f"job {job} left unfinished and not cancelled; not polled for"
                        f" {idle:.4g} s (timeout {self.t.timeout:g} s)",
                        (prompt, last) if last is not prompt else (prompt,),
                    )
                )
        return exercised, found, len(found) * self.t.price_atomic


def _first_arrival(incident: Incident) -> tuple[float, int]:
    last = incident.entries[-1]
    return (last.sim_time, last.seq)


def _duplicate_reason(
    first: Entry, again: Entry, ended: Mapping[str, float], completed: set[str]
) -> str | None:
    gap = f"{again.sim_time - first.sim_time:.3g} s"
    if 200 <= first.status < 300:
        job = first.job_id
        if job is not None and ended.get(job, math.inf) <= again.sim_time:
            return None
        state = "it had completed" if job in completed else "it was still live"
        return f"the same prompt again {gap} after job {job} was accepted for it ({state})"
    if _ambiguous(first.status):
        answer = "no answer" if first.status == 0 else f"a {first.status}"
        return f"the same prompt again {gap} after {answer}, which did not prove it was refused"
    return None


_Check = Callable[[_Client], tuple[bool, list[Incident], int | None]]

_CHECKERS: Final[dict[str, _Check]] = {
    "poll-interval": _Client.poll_interval,
    "stop-at-terminal": _Client.stop_at_terminal,
    "deadline": _Client.deadline,
    "retry-after": _Client.retry_after,
    "backoff": _Client.backoff,
    "no-double-pay": _Client.no_double_pay,
    "abandoned-job": _Client.abandoned_job,
    "not-found-loop": _Client.not_found_loop,
}


def _verdict(check: str, exercised: bool, found: list[Incident], wasted: int | None) -> Verdict:
    if found:
        return Verdict(check, "fail", len(found), tuple(found[:MAX_INCIDENTS]), wasted)
    return Verdict(check, "pass" if exercised else "not-exercised", 0, (), wasted)


def grade(
    entries: Iterable[Entry],
    thresholds: Thresholds | None = None,
    *,
    now: float | None = None,
    owner: str | None = None,
    since: float | None = None,
    dropped: int = 0,
) -> Report:
    """Grade every client (owner) in ``entries``: a pure function of its arguments.

    ``now`` is when the grading happens (default: the last answer in ``entries``), which
    decides which jobs count as abandoned; ``owner`` keeps one owner (as journaled, its
    :func:`owner_label` or the whole API key: :func:`is_owner`); ``since`` keeps requests
    arriving at or after that simulated time; ``dropped`` is how many earlier requests the
    journal no longer holds. Requests still in flight are left out until they end.

    Example::

        report = grade(journal.entries(), dropped=journal.dropped, now=clock.now())
        assert not report.failed, report.describe()
    """
    t = thresholds or Thresholds()
    held = [e for e in entries if not e.in_flight]  # graded once answered
    first = min((e.sim_time for e in held), default=None)
    last = max((_answered(e) for e in held), default=None)
    when = now if now is not None else (last if last is not None else 0.0)
    by_owner: dict[str, list[Entry]] = defaultdict(list)
    unattributed = 0
    for entry in held:
        if since is not None and entry.sim_time < since:
            continue
        if entry.owner is None:
            unattributed += 1
        else:
            by_owner[entry.owner].append(entry)
    clients = []
    for name in sorted(by_owner):
        if owner is not None and not is_owner(name, owner):
            continue
        client = _Client(by_owner[name], t, when)
        verdicts = {check: _verdict(check, *run(client)) for check, run in _CHECKERS.items()}
        agents = sorted({e.user_agent for e in client.entries if e.user_agent is not None})
        clients.append(ClientVerdicts(name, tuple(agents), len(client.entries), verdicts))
    window = Window(entries=len(held), dropped=dropped, first=first, last=last, since=since)
    return Report(tuple(clients), t, window, when, unattributed)
