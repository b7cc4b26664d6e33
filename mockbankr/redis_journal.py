"""The request journal on Redis: every server on one Redis writes to, and reads, one journal.

:class:`RedisJournal` implements :class:`~mockbankr.journal.RequestJournal` with the same
bounds, the same :class:`~mockbankr.journal.Entry` values and the same JSON as the memory
:class:`~mockbankr.journal.Journal`; it is built from a
:class:`~mockbankr.redis_store.RedisStore` (``--store redis://...``), on that store's
connections.

The request path stays local: :meth:`~RedisJournal.begin` and :meth:`~RedisJournal.finish`
record plain tuples, as in memory, and the entries are written behind, in the background:
one write in flight at a time (one script call, whatever accumulated meanwhile goes in the
next), at most every :data:`FLUSH_INTERVAL` seconds. A request that begins and ends
between two writes is written once, finished; one still open :data:`IN_FLIGHT_AFTER`
seconds after it arrived (a ``hang`` rule holds it, a slow client) is written in flight
and later replaced by its finished form, so every server shows it while it is held.

Readers await :meth:`~RedisJournal.sync` first: it writes this server's buffer (its
requests in flight too), waits :data:`READ_DELAY` for the other servers' writes behind,
and loads the shared journal, so a read on any server sees every request any server
answered before the read arrived (unless that server is starved of CPU for longer).
Sequence numbers are given by Redis when an entry is first written: unique across
servers, and in arrival order on each server (across servers, in the order they were
written). A lost Redis never fails a request: what could not be written is kept (at most
``size`` entries and ``max_bytes`` bytes, the oldest dropped and counted in ``dropped``)
and written when Redis is back; a read is a
:class:`~mockbankr.errors.StoreUnavailable` (the server's 503).

Layout (the store's hash tag, ``{mockbankr}``)::

    {mockbankr}:journal:done  list of finished entries, in the order they were written
    {mockbankr}:journal:open  hash seq -> an entry in flight
    {mockbankr}:journal:meta  hash: seq (the last one given), bytes (the estimate of
                              every entry held), dropped (finished entries trimmed),
                              cleared (wall-clock time of the last clear)

An entry is stored as ``b"<seq> <size> "`` and a msgpack array of its values (the size is
the memory journal's estimate, so the same ``--journal-bytes`` keeps the same entries).

Example::

    journal = store.request_journal(10_000, 64 * 1024 * 1024)
    handle = journal.begin("GET", "/agent/job/job_1", None, 0.0, perf_seconds())
    journal.finish(handle, 200, answered=0.0, ended=perf_seconds())
    await journal.sync()
    journal.entries()
"""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
import operator
from collections.abc import Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any, Final

import msgspec
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from mockbankr.clock import REAL_IO, perf_seconds, wall_time
from mockbankr.errors import StoreUnavailable
from mockbankr.journal import (
    DEFAULT_JOURNAL_BYTES,
    Entry,
    Handle,
    _done_entry,
    _finished,
    _job_id,
    _opened,
    select_entries,
)

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from mockbankr.redis_store import RedisStore

__all__ = ["FLUSH_INTERVAL", "IN_FLIGHT_AFTER", "READ_DELAY", "RETRY_INTERVAL", "RedisJournal"]

logger = logging.getLogger("mockbankr")

#: Seconds a request must have been open before it is written in flight (most requests
#: end sooner and are written once, finished).
IN_FLIGHT_AFTER: Final = 0.1
#: The least seconds between the starts of two background writes: an idle server writes a
#: request's entry as soon as it is answered; under load, one write carries many entries.
FLUSH_INTERVAL: Final = 0.01
#: Seconds a read waits (after writing this server's buffer) before it loads the journal:
#: longer than another server takes to write what it answered (a write in flight, the
#: interval, a round trip), so a read sees every request answered before it arrived.
READ_DELAY: Final = 0.03
#: Seconds before a background write is tried again after Redis could not be reached.
RETRY_INTERVAL: Final = 1.0

# KEYS: done, open, meta. ARGV: size, max bytes, lost (entries dropped by a server that
# could not write them), then one (ref, arrived, element) triple per entry: ref "o" an entry
# in flight, given a new seq; "0" a finished entry never shown in flight, given a new seq;
# else the seq of the in-flight form the finished one replaces (gone: the journal was
# cleared meanwhile, and the entry is not kept). ``arrived`` is its wall-clock arrival: one
# that arrived before the last clear is not kept either (as in memory). An element is
# "<size> <msgpack>". Returns the seqs given to the entries in flight, in order.
_PUSH = """
local function size_of(stored)
  local after_seq = string.find(stored, ' ', 1, true)
  return tonumber(string.match(stored, '^%d+', after_seq + 1))
end
local cleared = tonumber(redis.call('HGET', KEYS[3], 'cleared') or '0')
local new = 0
for i = 4, #ARGV, 3 do
  if (ARGV[i] == 'o' or ARGV[i] == '0') and tonumber(ARGV[i + 1]) >= cleared then
    new = new + 1
  end
end
local seq = 0
if new > 0 then seq = redis.call('HINCRBY', KEYS[3], 'seq', new) - new end
local bytes = tonumber(redis.call('HGET', KEYS[3], 'bytes') or '0')
local shown = {}
for i = 4, #ARGV, 3 do
  local ref, element = ARGV[i], ARGV[i + 2]
  local size = tonumber(string.match(element, '^%d+'))
  if tonumber(ARGV[i + 1]) < cleared then
    if ref == 'o' then shown[#shown + 1] = 0 end  -- arrived before the clear: forgotten
  elseif ref == 'o' then
    seq = seq + 1
    redis.call('HSET', KEYS[2], seq, seq .. ' ' .. element)
    bytes = bytes + size
    shown[#shown + 1] = seq
  elseif ref == '0' then
    seq = seq + 1
    redis.call('RPUSH', KEYS[1], seq .. ' ' .. element)
    bytes = bytes + size
  else
    local was = redis.call('HGET', KEYS[2], ref)
    if was then
      redis.call('HDEL', KEYS[2], ref)
      redis.call('RPUSH', KEYS[1], ref .. ' ' .. element)
      bytes = bytes + size - size_of(was)
    end
  end
end
local most_entries, most_bytes = tonumber(ARGV[1]), tonumber(ARGV[2])
local dropped = tonumber(ARGV[3])
local held = redis.call('LLEN', KEYS[1])
while held > 0 and (held > most_entries or bytes > most_bytes) do
  bytes = bytes - size_of(redis.call('LPOP', KEYS[1]))
  held = held - 1
  dropped = dropped + 1
end
redis.call('HSET', KEYS[3], 'bytes', bytes)
if dropped > 0 then redis.call('HINCRBY', KEYS[3], 'dropped', dropped) end
return shown
"""

#: A request in flight: handle, method, path, owner, arrived (simulated), started (perf
#: counter), User-Agent, its estimated size.
_Open = tuple[int, str, str, str | None, float, float, str | None, int]
#: A finished request: the memory journal's (``mockbankr.journal._Done``), its handle
#: in place of the seq.
_Done = tuple[Any, ...]

_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder().decode
_handle_of = operator.itemgetter(0)
_seq_of = operator.attrgetter("seq")


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class RedisJournal:
    """The journal every server on one Redis shares (see the module).

    Example::

        journal = RedisJournal(store, size=10_000)
    """

    def __init__(
        self, store: RedisStore, size: int, max_bytes: int = DEFAULT_JOURNAL_BYTES
    ) -> None:
        if size < 1:
            raise ValueError(f"journal size must be >= 1, got {size}")
        if max_bytes < 1:
            raise ValueError(f"journal bytes must be >= 1, got {max_bytes}")
        self.size = size
        self.max_bytes = max_bytes
        self._store = store
        tag = store.keys.tag + "journal:"
        self._keys = (tag + "done", tag + "open", tag + "meta")
        self._handle = 0
        self._open: dict[int, _Open] = {}  # in begin order
        self._shown: dict[int, int] = {}  # handle -> seq of its in-flight form (0: writing)
        self._pending: collections.deque[_Done] = collections.deque()
        self._pending_bytes = 0
        self._lost = 0  # finished entries dropped here, not yet counted in Redis
        # The writes: on one event loop, one in flight at a time.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._writer: asyncio.Task[None] | None = None  # writing behind (see _write_behind)
        self._due: asyncio.Future[None] | None = None  # it waits for an open request
        self._busy: asyncio.Future[None] | None = None  # a write in flight (done: it ended)
        self._last_start = float("-inf")
        self._retry_at = float("-inf")
        self._script: tuple[aioredis.Redis, AsyncScript] | None = None
        # What the last sync loaded.
        self._entries: list[Entry] = []
        self._dropped = 0

    # -- the request path ------------------------------------------------------------

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
        """As :meth:`mockbankr.journal.Journal.begin`; written if still open after
        :data:`IN_FLIGHT_AFTER` seconds."""
        self._handle = handle = self._handle + 1
        self._open[handle] = _opened(handle, method, path, owner, arrived, started, user_agent)
        if self._writer is None:
            self._wake()
        return handle

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
        """As :meth:`mockbankr.journal.Journal.finish`; written by the next background
        write. A request the journal forgot meanwhile (:meth:`aclear`, on any server, once
        it was shown in flight) is not recorded."""
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
        self._pending.append(finished)
        self._pending_bytes += finished[-1]
        if len(self._pending) > self.size or self._pending_bytes > self.max_bytes:
            self._shed()  # Redis is lost (or the journal tiny): the oldest unwritten go
        if self._writer is None or self._due is not None:
            self._wake()

    def _shed(self) -> None:
        pending = self._pending
        while pending and (len(pending) > self.size or self._pending_bytes > self.max_bytes):
            self._pending_bytes -= pending.popleft()[-1]
            self._lost += 1

    # -- background writes -----------------------------------------------------------

    def _adopt(self, loop: asyncio.AbstractEventLoop) -> None:
        """Write on ``loop`` from now on (a server has one loop; in-process tests may run
        several in turn): a writer of another loop is given up."""
        self._loop = loop
        self._writer = self._due = self._busy = None

    def _wake(self) -> None:
        """Have the writer write soon: start it, or end its wait for a request due in
        flight (finished entries are written at most every :data:`FLUSH_INTERVAL`)."""
        due = self._due
        if due is not None:
            if not due.done():
                due.set_result(None)
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # called outside a loop: the next flush() writes them
            return
        if loop is not self._loop:
            self._adopt(loop)
        if self._writer is None:
            self._writer = loop.create_task(self._write_behind())

    def _oldest_unshown(self) -> float | None:
        """When the oldest open request not yet shown in flight started (perf counter)."""
        shown = self._shown
        for handle, opened in self._open.items():
            if handle not in shown:
                return opened[5]
        return None

    async def _write_behind(self) -> None:
        """The writer: while there is something to write, one write at a time, the
        finished entries at most every :data:`FLUSH_INTERVAL`, an open request once it is
        :data:`IN_FLIGHT_AFTER` old; after a failure, again every :data:`RETRY_INTERVAL`.
        It never raises: the request path knows nothing of it."""
        loop = asyncio.get_running_loop()
        try:
            while True:
                now = loop.time()
                if self._pending or self._lost:
                    wait = max(self._last_start + FLUSH_INTERVAL, self._retry_at) - now
                    if wait > 0:
                        await asyncio.sleep(wait)
                else:
                    oldest = self._oldest_unshown()
                    if oldest is None:
                        return
                    wait = max(
                        oldest + IN_FLIGHT_AFTER - perf_seconds(),
                        self._retry_at - now,
                        self._last_start + FLUSH_INTERVAL - now,  # never a busy loop
                    )
                    if wait > 0:  # until it is due, unless a request ends meanwhile
                        due = self._due = loop.create_future()
                        timer = loop.call_later(wait, _resolve, due)
                        try:
                            await due
                        finally:
                            timer.cancel()
                            self._due = None
                        continue
                while (busy := self._busy) is not None:  # a reader's write
                    await busy
                try:
                    await self._guarded(functools.partial(self._write, force=False))
                except StoreUnavailable:
                    self._retry_at = loop.time() + RETRY_INTERVAL
                except Exception:  # a bug: reported, never raised into a request
                    logger.exception("the request journal could not be written")
                    self._retry_at = loop.time() + RETRY_INTERVAL
        finally:
            if self._writer is asyncio.current_task():
                self._writer = None

    async def _guarded(self, work: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run ``work`` as the one write in flight (a reader waits for it, and it for one)."""
        loop = asyncio.get_running_loop()
        while (busy := self._busy) is not None:
            await busy
        busy = self._busy = loop.create_future()
        self._last_start = loop.time()
        try:
            await work()
        finally:
            self._busy = None
            busy.set_result(None)

    async def _write(self, *, force: bool) -> None:
        """One script call: the finished entries buffered, the open ones due (``force``:
        every open one), and the count of those lost. What fails is kept for the next."""
        done = sorted(self._pending, key=_handle_of)  # seqs in arrival order
        self._pending.clear()
        self._pending_bytes = 0
        lost, self._lost = self._lost, 0
        shown = self._shown
        opened: list[_Open] = []
        if self._open:
            horizon = perf_seconds() - (0.0 if force else IN_FLIGHT_AFTER)
            for handle, raw in self._open.items():
                if raw[5] > horizon:
                    break  # begun later, as is every one after it
                if handle not in shown:
                    opened.append(raw)
        if not (done or opened or lost):
            return
        refs: dict[int, int] = {}
        for raw in done:
            seq = shown.pop(raw[0], None)
            if seq:
                refs[raw[0]] = seq
        items: list[tuple[int, bytes, float, bytes]] = []  # handle, ref, arrived, element
        for ended in done:
            ref = b"%d" % refs[ended[0]] if ended[0] in refs else b"0"
            items.append((ended[0], ref, ended[8], b"%d " % ended[-1] + _encode(ended[1:])))
        now_perf, now_wall = perf_seconds(), wall_time()
        for raw in opened:
            shown[raw[0]] = 0
            handle, method, path, owner, arrived, started, user_agent, size = raw
            since = now_wall - max(0.0, now_perf - started)  # wall time it arrived
            element = _encode((method, path, owner, arrived, since, user_agent))
            items.append((handle, b"o", since, b"%d " % size + element))
        if opened and done:
            items.sort(key=_handle_of)
        args: list[bytes | int | float] = [self.size, self.max_bytes, lost]
        for _, ref, arrived_wall, element in items:
            args += (ref, arrived_wall, element)
        try:
            given = await self._call(args)
        except BaseException:
            # Kept for the next write (the oldest first), within the journal's bounds.
            for raw in opened:
                shown.pop(raw[0], None)
            shown.update(refs)
            self._pending.extendleft(reversed(done))
            self._pending_bytes += sum(raw[-1] for raw in done)
            self._lost += lost
            self._shed()
            raise
        handles = [handle for handle, ref, _, _ in items if ref == b"o"]
        for handle, seq in zip(handles, given, strict=True):
            if handle in shown:  # not forgotten meanwhile (0: by a clear, on any server)
                shown[handle] = int(seq)

    async def _client(self) -> tuple[aioredis.Redis, AsyncScript]:
        client = await self._store.client()
        script = self._script
        if script is None or script[0] is not client:
            script = self._script = (client, client.register_script(_PUSH))
        return script

    async def _call(self, args: list[bytes | int | float]) -> list[Any]:
        try:
            _, script = await self._client()
            given: list[Any] = await script(keys=list(self._keys), args=args)
            return given
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            raise StoreUnavailable(self._store.url, str(exc) or type(exc).__name__) from exc

    # -- readers ---------------------------------------------------------------------

    async def _exclusive(self, work: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """A reader's write (``work``), after the one in flight; real I/O a virtual clock
        waits for."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._adopt(loop)
        with REAL_IO:
            await self._guarded(work)

    async def flush(self) -> None:
        """Write everything this server buffered, its requests in flight too, now."""
        await self._exclusive(functools.partial(self._write, force=True))

    async def sync(self) -> None:
        """Write this server's buffer, then load the journal every server shares (a lost
        Redis is a :class:`~mockbankr.errors.StoreUnavailable`)."""
        await self.flush()
        done_key, open_key, meta_key = self._keys
        try:
            with REAL_IO:
                await asyncio.sleep(READ_DELAY)  # the other servers' writes behind land
                client = (await self._client())[0]
                pipe = client.pipeline(transaction=True)
                pipe.lrange(done_key, 0, -1)
                pipe.hvals(open_key)
                pipe.hget(meta_key, "dropped")
                done, opened, dropped = await pipe.execute()
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            raise StoreUnavailable(self._store.url, str(exc) or type(exc).__name__) from exc
        now_wall = wall_time()
        entries: list[Entry] = []
        for stored in done:
            seq, _, blob = stored.split(b" ", 2)
            entries.append(_done_entry((int(seq), *_decode(blob))))
        for stored in opened:
            seq, _, blob = stored.split(b" ", 2)
            method, path, owner, arrived, since, user_agent = _decode(blob)
            so_far = max(0.0, now_wall - since)
            entries.append(
                Entry(
                    seq=int(seq),
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
            )
        entries.sort(key=_seq_of)
        self._entries = entries
        self._dropped = int(dropped or 0)

    async def aclear(self) -> None:
        """Forget every entry, on every server: a request in flight now (here, or shown in
        flight by another server) is not recorded when it ends; the seqs go on."""
        await self._exclusive(self._clear)

    async def _clear(self) -> None:
        done_key, open_key, meta_key = self._keys
        try:
            client = (await self._client())[0]
            pipe = client.pipeline(transaction=True)
            pipe.delete(done_key, open_key)
            # Entries that arrived before now, written later by any server, are not kept.
            pipe.hset(meta_key, mapping={"bytes": 0, "dropped": 0, "cleared": wall_time()})
            await pipe.execute()
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            raise StoreUnavailable(self._store.url, str(exc) or type(exc).__name__) from exc
        self._open.clear()
        self._shown.clear()
        self._pending.clear()
        self._pending_bytes = self._lost = 0
        self._entries, self._dropped = [], 0

    @property
    def dropped(self) -> int:
        """Finished requests since the last clear the journal no longer holds (as of the
        last :meth:`sync`, and those this server could not write)."""
        return self._dropped + self._lost

    def entry(self, handle: Handle) -> Entry | None:
        """This server's request, while it is open or not yet written (its seq is 0 until
        Redis gives one); else ``None``."""
        opened = self._open.get(handle)
        if opened is not None:
            seq = self._shown.get(handle, 0)
            now_perf, now_wall = perf_seconds(), wall_time()
            so_far = max(0.0, now_perf - opened[5])
            return Entry(
                seq=seq,
                method=opened[1],
                path=opened[2],
                status=0,
                owner=opened[3],
                job_id=_job_id(None, opened[2]),
                sim_time=opened[4],
                wall_time=now_wall - so_far,
                latency_ms=so_far * 1000,
                user_agent=opened[6],
                in_flight=True,
            )
        for raw in reversed(self._pending):  # a request just finished is the last one
            if raw[0] == handle:
                return _done_entry((self._shown.get(handle, 0), *raw[1:]))
        return None

    def entries(self) -> list[Entry]:
        """Every entry held, in flight or finished, by seq (as of the last :meth:`sync`)."""
        return list(self._entries)

    def query(self, filters: Mapping[str, str], *, limit: int | None = None) -> list[Entry]:
        """As :meth:`mockbankr.journal.Journal.query` (as of the last :meth:`sync`)."""
        return select_entries(self._entries, filters, limit=limit)

    def __len__(self) -> int:
        return len(self._entries)
