"""The request journal: what arrived, what it got, and when, bounded in entries and bytes.

Besides the request line and the status, each entry keeps what grading a client's
behaviour over time needs (:mod:`mockbankr.grading`): its User-Agent, a short hash of
a prompt (never the prompt), the ``Retry-After`` it was answered with, the job it
created or read, and the job status a poll answered.

A request is journaled when it arrives (:meth:`Journal.begin`, an *in-flight* entry
with status 0) and completed when it ends (:meth:`Journal.finish`), so a request a
``hang`` rule holds is visible while it is held. An API key is never kept: the journal
shows its :func:`key_fingerprint`. Every text field is cut to :data:`MAX_TEXT`
characters, and the journal keeps at most ``size`` entries and about ``max_bytes``
bytes (an estimate from the entries' text lengths): the oldest finished entries go
first.

Another storage (:mod:`mockbankr.redis_journal`, one journal for every server on a
Redis) implements the same methods: :meth:`~Journal.begin` hands back an opaque handle
that only :meth:`~Journal.finish` reads, and every read (:meth:`~Journal.entries`,
:meth:`~Journal.query`, :meth:`~Journal.entry`) builds fresh :class:`Entry` values;
nothing outside the journal holds or mutates its state. A reader first awaits
:meth:`~RequestJournal.sync` (a shared journal loads what every server wrote; here it
does nothing), and clears with :meth:`~RequestJournal.aclear`.
"""

from __future__ import annotations

import collections
import fnmatch
import functools
import hashlib
import operator
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Final, Literal, Protocol

import msgspec

from mockbankr.clock import iso, perf_seconds, wall_time

__all__ = [
    "DEFAULT_JOURNAL_BYTES",
    "ENTRY_OVERHEAD",
    "Entry",
    "FILTERS",
    "FINGERPRINT_HEX",
    "Handle",
    "Journal",
    "MAX_ENTRY_BYTES",
    "MAX_TEXT",
    "RequestJournal",
    "key_fingerprint",
    "owner_matches",
    "prompt_key",
    "select_entries",
]

#: The longest text the journal keeps in one field (method, path, owner, job id, fault,
#: User-Agent, job status); a longer one is cut to this many characters, ending in "…".
MAX_TEXT: Final = 256
#: What the journal keeps by default, in bytes (``--journal-bytes``).
DEFAULT_JOURNAL_BYTES: Final = 64 * 1024 * 1024
#: The estimated size of an entry besides its text, in bytes: its tuple, numbers and
#: string headers (measured with tracemalloc; see ``tests/test_journal.py``).
ENTRY_OVERHEAD: Final = 600
#: The largest estimated size of one entry (every text field at :data:`MAX_TEXT`).
MAX_ENTRY_BYTES: Final = ENTRY_OVERHEAD + 8 * MAX_TEXT
#: How many hex digits of a key's SHA-256 its fingerprint shows: enough that the keys of
#: a large experiment (thousands of agents) never share one, so no two clients merge.
FINGERPRINT_HEX: Final = 12

#: The handle of a journaled request, from :meth:`Journal.begin` to :meth:`Journal.finish`.
#: Opaque to callers (here, the entry's sequence number).
Handle = int

State = Literal["in-flight", "done"]


def prompt_key(prompt: str) -> str:
    """A short stable identity of a prompt's text (16 hex digits), kept instead of the text.

    Example::

        prompt_key("What is the price of ETH?")  # the same 16 hex digits in every run
    """
    return hashlib.blake2b(prompt.encode("utf-8", "replace"), digest_size=8).hexdigest()


@functools.lru_cache(maxsize=4096)
def key_fingerprint(key: str) -> str:
    """How the journal, the verdicts and the CLI show an API key: never the key itself.

    ``bk_`` (when the key starts with it), ``…``, then the first 12 hex digits of the
    key's SHA-256. A fingerprint contains ``…``, which no key can (keys are Latin-1).

    Example::

        key_fingerprint("bk_live_secret")  # 'bk_…' + 12 hex digits
    """
    prefix = "bk_" if key.startswith("bk_") else ""
    digest = hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()
    return f"{prefix}…{digest[:FINGERPRINT_HEX]}"


def owner_matches(owner: str | None, wanted: str) -> bool:
    """Whether a journaled owner (a wallet or a fingerprint) is ``wanted``: that owner
    as shown, or the whole API key whose fingerprint it is.

    Example::

        owner_matches(key_fingerprint("bk_1"), "bk_1")  # True
    """
    return owner is not None and (owner == wanted or owner == key_fingerprint(wanted))


class Entry(msgspec.Struct, frozen=True):
    """One request. ``owner`` is the wallet, or the API key's :func:`key_fingerprint`.

    ``sim_time`` and ``wall_time`` are when it arrived (unix seconds);
    ``latency_ms`` is wall time to answer, ``sim_latency_ms`` simulated time
    (a ``delay`` rule shows there). ``status`` is 0 when no answer was sent
    (a ``drop``, a ``hang`` the client gave up on) or none yet: ``in_flight`` is
    true while the request is being handled (then ``latency_ms`` is the wall
    time so far and ``sim_latency_ms`` 0). ``job_id`` is the job a request read or
    cancelled, or the one a prompt created. ``user_agent`` is what the client sent;
    ``prompt_hash`` is :func:`prompt_key` of a prompt's text; ``retry_after`` the
    seconds of an error answer's ``Retry-After``; ``job_status`` the status a
    status poll answered.
    """

    seq: int
    method: str
    path: str
    status: int
    owner: str | None
    job_id: str | None
    sim_time: float
    wall_time: float
    latency_ms: float
    sim_latency_ms: float = 0.0
    fault: str | None = None
    user_agent: str | None = None
    prompt_hash: str | None = None
    retry_after: float | None = None
    job_status: str | None = None
    in_flight: bool = False

    @property
    def state(self) -> State:
        """``"in-flight"`` while the request is being handled, then ``"done"``."""
        return "in-flight" if self.in_flight else "done"

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "state": self.state,
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "owner": self.owner,
            "jobId": self.job_id,
            "simTime": iso(self.sim_time),
            "wallTime": iso(self.wall_time),
            "latencyMs": round(self.latency_ms, 3),
            "simLatencyMs": round(self.sim_latency_ms, 3),
            "fault": self.fault,
            "userAgent": self.user_agent,
            "promptHash": self.prompt_hash,
            "retryAfter": self.retry_after,
            "jobStatus": self.job_status,
        }


#: The filters :meth:`Journal.query` understands (``path`` a glob, ``owner`` a wallet,
#: a fingerprint or a whole key, the rest exact).
FILTERS: Final = ("method", "path", "status", "owner", "job_id", "fault", "state")

_JOB_PATH = re.compile(r"^/(?:agent|v2)/job/([^/]+)")
_seq_of = operator.itemgetter(0)

#: A request in flight: seq, method, path, owner, arrived (simulated), started (perf
#: counter), User-Agent, its estimated size. Atomic values only, so the garbage
#: collector untracks the tuple.
_Open = tuple[int, str, str, str | None, float, float, str | None, int]

#: A finished request: seq, method, path, status, owner, job id, arrived, answered,
#: wall-clock arrival, wall latency, fault, User-Agent, prompt hash, Retry-After,
#: job status, its estimated size.
_Done = tuple[
    int,
    str,
    str,
    int,
    str | None,
    str | None,
    float,
    float,
    float,
    float,
    str | None,
    str | None,
    str | None,
    float | None,
    str | None,
    int,
]


def _job_id(job_id: str | None, path: str) -> str | None:
    if job_id is None and (found := _JOB_PATH.match(path)):
        return found.group(1)
    return job_id


def _done_entry(raw: _Done) -> Entry:
    (
        seq,
        method,
        path,
        status,
        owner,
        job_id,
        arrived,
        answered,
        wall,
        latency,
        fault,
        user_agent,
        prompt_hash,
        retry_after,
        job_status,
        _,
    ) = raw
    return Entry(
        seq=seq,
        method=method,
        path=path,
        status=status,
        owner=owner,
        job_id=_job_id(job_id, path),
        sim_time=arrived,
        wall_time=wall,
        latency_ms=latency * 1000,
        sim_latency_ms=(answered - arrived) * 1000,
        fault=fault,
        user_agent=user_agent,
        prompt_hash=prompt_hash,
        retry_after=retry_after,
        job_status=job_status,
    )


def _open_entry(raw: _Open, now_perf: float, now_wall: float) -> Entry:
    seq, method, path, owner, arrived, started, user_agent, _ = raw
    so_far = max(0.0, now_perf - started)
    return Entry(
        seq=seq,
        method=method,
        path=path,
        status=0,
        owner=owner,
        job_id=_job_id(None, path),
        sim_time=arrived,
        wall_time=now_wall - so_far,
        latency_ms=so_far * 1000,
        user_agent=user_agent,
        in_flight=True,
    )


def select_entries(
    entries: Iterable[Entry], filters: Mapping[str, str], *, limit: int | None = None
) -> list[Entry]:
    """The entries matching every filter, in the order given (see :data:`FILTERS`):
    what :meth:`Journal.query` answers, for any journal.

    Example::

        select_entries(journal.entries(), {"path": "/agent/job/*"}, limit=10)
    """
    unknown = set(filters) - set(FILTERS)
    if unknown:
        raise ValueError(f"unknown journal filter {sorted(unknown)[0]!r}; use {FILTERS}")
    wanted = dict(filters)
    path = wanted.pop("path", None)
    owner = wanted.pop("owner", None)
    owners = None if owner is None else {owner, key_fingerprint(owner)}
    out = [
        e
        for e in entries
        if (path is None or fnmatch.fnmatchcase(e.path, path))
        and (owners is None or e.owner in owners)
        and all(str(getattr(e, name)) == value for name, value in wanted.items())
    ]
    return out[-limit:] if limit else out


def _opened(
    handle: int,
    method: str,
    path: str,
    owner: str | None,
    arrived: float,
    started: float,
    user_agent: str | None,
) -> _Open:
    """A request as it arrives (:meth:`Journal.begin`): its texts cut to :data:`MAX_TEXT`,
    and its estimated size last."""
    # Inline checks, not calls: this runs for every request.
    if len(path) > MAX_TEXT:
        path = path[: MAX_TEXT - 1] + "…"
    if len(method) > MAX_TEXT:
        method = method[: MAX_TEXT - 1] + "…"
    size = ENTRY_OVERHEAD + len(method) + len(path)
    if owner is not None:
        if len(owner) > MAX_TEXT:
            owner = owner[: MAX_TEXT - 1] + "…"
        size += len(owner)
    if user_agent is not None:
        if len(user_agent) > MAX_TEXT:
            user_agent = user_agent[: MAX_TEXT - 1] + "…"
        size += len(user_agent)
    return (handle, method, path, owner, arrived, started, user_agent, size)


def _finished(
    opened: _Open,
    status: int,
    answered: float,
    ended: float,
    owner: str | None,
    job_id: str | None,
    fault: str | None,
    prompt_hash: str | None,
    retry_after: float | None,
    job_status: str | None,
) -> _Done:
    """The finished form of a request :func:`_opened` began (:meth:`Journal.finish`): its
    texts cut to :data:`MAX_TEXT`, and its estimated size last."""
    handle, method, path, claimed, arrived, started, user_agent, size = opened
    if owner is None:
        owner = claimed
    else:
        if len(owner) > MAX_TEXT:
            owner = owner[: MAX_TEXT - 1] + "…"
        size += len(owner) if claimed is None else len(owner) - len(claimed)
    if job_id is not None:
        if len(job_id) > MAX_TEXT:
            job_id = job_id[: MAX_TEXT - 1] + "…"
        size += len(job_id)
    if fault is not None:
        if len(fault) > MAX_TEXT:
            fault = fault[: MAX_TEXT - 1] + "…"
        size += len(fault)
    if job_status is not None:
        if len(job_status) > MAX_TEXT:
            job_status = job_status[: MAX_TEXT - 1] + "…"
        size += len(job_status)
    if prompt_hash is not None:
        prompt_hash = prompt_hash[:MAX_TEXT]
        size += len(prompt_hash)
    latency = ended - started
    return (
        handle,
        method,
        path,
        status,
        owner,
        job_id,
        arrived,
        answered,
        wall_time() - latency,
        latency,
        fault,
        user_agent,
        prompt_hash,
        retry_after,
        job_status,
        size,
    )


class RequestJournal(Protocol):
    """What the server needs of a journal; :class:`Journal` keeps it in memory.

    Another storage (a shared one, :class:`~mockbankr.redis_journal.RedisJournal`)
    implements the same: ``begin`` and ``finish`` run on every request, synchronously,
    so a remote one buffers them and writes them in the background; the handle is
    whatever it needs to find the entry again. Reads return fresh :class:`Entry`
    values, in arrival order (``seq``), as of the last :meth:`sync`, which a reader
    awaits first.
    """

    #: The most entries it keeps.
    size: int
    #: About the most bytes it keeps (estimated as :class:`Journal` does).
    max_bytes: int

    def begin(
        self,
        method: str,
        path: str,
        owner: str | None,
        arrived: float,
        started: float,
        *,
        user_agent: str | None = None,
    ) -> Handle: ...

    def finish(
        self,
        handle: Handle,
        status: int,
        *,
        answered: float,
        ended: float,
        owner: str | None = None,
        job_id: str | None = None,
        fault: str | None = None,
        prompt_hash: str | None = None,
        retry_after: float | None = None,
        job_status: str | None = None,
    ) -> None: ...

    def entry(self, handle: Handle) -> Entry | None: ...

    def entries(self) -> list[Entry]: ...

    def query(self, filters: Mapping[str, str], *, limit: int | None = None) -> list[Entry]: ...

    async def sync(self) -> None:
        """Bring the reads up to date: write what this server buffered, load what every
        server wrote (a shared journal; a lost store is a ``StoreUnavailable``)."""
        ...

    async def flush(self) -> None:
        """Write what this server buffered (a shared journal: at shutdown)."""
        ...

    async def aclear(self) -> None:
        """Forget every entry, finished or in flight, on every server sharing it."""
        ...

    @property
    def dropped(self) -> int: ...

    def __len__(self) -> int: ...


class Journal:
    """The last ``size`` requests (and at most about ``max_bytes``), oldest first.

    Recording is cheap (a tuple of plain values at each end of a request, sized from
    its text lengths); the :class:`Entry` view is built only when the journal is read.

    Example::

        journal = Journal(size=10_000)
        handle = journal.begin("GET", "/agent/job/job_1", "bk_…0123456789ab", 0.0, 0.0)
        journal.finish(handle, 200, answered=0.0, ended=0.001)
        journal.query({"method": "GET", "path": "/agent/job/*"})
    """

    def __init__(self, size: int, max_bytes: int = DEFAULT_JOURNAL_BYTES) -> None:
        if size < 1:
            raise ValueError(f"journal size must be >= 1, got {size}")
        if max_bytes < 1:
            raise ValueError(f"journal bytes must be >= 1, got {max_bytes}")
        self._done: collections.deque[_Done] = collections.deque()
        self._open: dict[int, _Open] = {}
        self._seq = 0
        self._bytes = 0  # estimated, of every entry held (finished and in flight)
        self._evicted = 0  # finished entries dropped since the last clear
        self.size = size
        self.max_bytes = max_bytes

    def begin(
        self,
        method: str,
        path: str,
        owner: str | None,
        arrived: float,
        started: float,
        *,
        user_agent: str | None = None,
    ) -> Handle:
        """Journal a request as it arrives: its method and path, who it claims to be
        (a wallet or a key's fingerprint, never a key; ``None`` if not known yet), its
        simulated arrival time and its perf-counter start. It shows as in flight until
        :meth:`finish`."""
        self._seq = seq = self._seq + 1
        opened = self._open[seq] = _opened(seq, method, path, owner, arrived, started, user_agent)
        self._bytes += opened[-1]
        return seq

    def finish(
        self,
        handle: Handle,
        status: int,
        *,
        answered: float,
        ended: float,
        owner: str | None = None,
        job_id: str | None = None,
        fault: str | None = None,
        prompt_hash: str | None = None,
        retry_after: float | None = None,
        job_status: str | None = None,
    ) -> None:
        """Complete a request begun with :meth:`begin`: its status (0: no answer), its
        simulated answer time and perf-counter end, the owner it authenticated as
        (``None``: the one it claimed), the job it was about, the fault it got, and
        what grading needs (see :class:`Entry`). A request the journal forgot
        meanwhile (:meth:`clear`) is not recorded."""
        opened = self._open.pop(handle, None)
        if opened is None:
            return
        finished = _finished(
            opened,
            status,
            answered,
            ended,
            owner,
            job_id,
            fault,
            prompt_hash,
            retry_after,
            job_status,
        )
        done = self._done
        done.append(finished)
        self._bytes += finished[-1] - opened[-1]
        if len(done) > self.size:  # full (the usual case once it is): the oldest goes
            self._bytes -= done.popleft()[-1]
            self._evicted += 1
        if self._bytes > self.max_bytes:
            self._evict()

    def _evict(self) -> None:
        done = self._done
        while done and self._bytes > self.max_bytes:
            self._bytes -= done.popleft()[-1]
            self._evicted += 1

    def clear(self) -> None:
        """Forget every entry, finished or in flight (a request in flight now is not
        recorded when it ends); the sequence numbers go on."""
        self._done.clear()
        self._open.clear()
        self._bytes = 0
        self._evicted = 0

    @property
    def dropped(self) -> int:
        """Finished requests since the last :meth:`clear` that the journal no longer holds."""
        return self._evicted

    @property
    def nbytes(self) -> int:
        """The estimated bytes of every entry held (at most about ``max_bytes``)."""
        return self._bytes

    def entry(self, handle: Handle) -> Entry | None:
        """The entry of one request, in flight or finished, if the journal still holds it."""
        opened = self._open.get(handle)
        if opened is not None:
            return _open_entry(opened, perf_seconds(), wall_time())
        for raw in reversed(self._done):  # a request just finished is the last one
            if raw[0] == handle:
                return _done_entry(raw)
        return None

    def _all(self) -> Iterator[Entry]:
        done: Iterable[_Done] = self._done
        if self._open:
            now_perf, now_wall = perf_seconds(), wall_time()
            opened = [_open_entry(raw, now_perf, now_wall) for raw in self._open.values()]
            finished = list(map(_done_entry, done))
            return iter(sorted(finished + opened, key=operator.attrgetter("seq")))
        # Finished entries are in the order they ended: sort them by arrival (seq).
        return map(_done_entry, sorted(done, key=_seq_of))

    def entries(self) -> list[Entry]:
        """Every entry held, in flight or finished, oldest (by arrival) first."""
        return list(self._all())

    def __len__(self) -> int:
        return len(self._done) + len(self._open)

    def query(self, filters: Mapping[str, str], *, limit: int | None = None) -> list[Entry]:
        """Entries matching every filter, oldest first (see :data:`FILTERS`).

        ``path`` is a glob; ``owner`` a wallet, a key's fingerprint or the whole key;
        ``state`` is ``in-flight`` or ``done``; the rest exact. ``limit`` keeps the
        newest ``limit`` matches. Unknown filters are an error.
        """
        return select_entries(self._all(), filters, limit=limit)

    async def sync(self) -> None:
        """Nothing to load: this journal is where it is read."""
        return None

    async def flush(self) -> None:
        """Nothing buffered: every request is recorded as it happens."""
        return None

    async def aclear(self) -> None:
        """:meth:`clear` (the protocol's form)."""
        self.clear()
