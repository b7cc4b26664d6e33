"""The Redis store: one population of jobs, payments and nonces shared by every server.

:class:`RedisStore` implements :class:`~mockbankr.store.JobStore` on Redis (the
``mockbankr[redis]`` extra: redis-py's asyncio client with hiredis). It is the only
module that knows Redis; it is imported only for ``--store redis://...``.

Layout (every key shares the hash tag ``{mockbankr}``, so the multi-key scripts also
run on a Redis Cluster, all in one slot)::

    {mockbankr}:seq     INCR counter: the job sequence
    {mockbankr}:jobs    hash job id -> msgpack array of the JobRecord's fields
    {mockbankr}:order   list of job ids in submission order
    {mockbankr}:ledger  list of msgpack LedgerEntry, oldest first
    {mockbankr}:nonces  set of the x402 nonces accepted so far
    {mockbankr}:versions      hash area -> version (clock, rules, keys)
    {mockbankr}:area:NAME     an area's blob (see mockbankr.shared)
    {mockbankr}:rule_left     hash rule uid -> firings left (a rule's ``times``)
    {mockbankr}:quota         hash account -> "START USED": its daily-limit window
    {mockbankr}:lock          the control-plane lock: a token, with a lease (PX)
    {mockbankr}:requests  hash "status route" -> requests (the metrics' request counters)
    {mockbankr}:faults    hash rule id -> firings (the metrics' fault counters)
    {mockbankr}:journal:*     the request journal (mockbankr.redis_journal)

Every change is one atomic Lua script (add, compare-and-set, paid add, an area's write,
a rule's firing, a prompt counted in its daily window), so any number of servers may race
on a job, a nonce, a rule or a quota. Each request's version read is one script call,
pipelined with the other requests of the same event-loop iteration (:class:`_Batch`). A
lost connection is a :class:`~mockbankr.errors.StoreUnavailable` (the server's 503);
redis-py connects again on the next command, so the server serves again once Redis is
back. Control-plane changes take a lease lock (``{mockbankr}:lock``) one at a time.

Example::

    store = await RedisStore.connect("redis://127.0.0.1:6379/0")
    await store.add(job)
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import hashlib
import secrets
import time
import weakref
from collections.abc import AsyncGenerator, Callable, Coroutine, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, ParamSpec, TypeVar, cast
from urllib.parse import urlsplit, urlunsplit

import msgspec
import redis.asyncio as aioredis
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from mockbankr.clock import REAL_IO
from mockbankr.counters import CounterSnapshot
from mockbankr.errors import ConfigError, StoreUnavailable
from mockbankr.jobs import JobRecord
from mockbankr.ledger import LedgerEntry
from mockbankr.shared import AREAS

if TYPE_CHECKING:
    from mockbankr.redis_journal import RedisJournal

__all__ = ["RedisCounters", "RedisStore", "decode_job", "encode_job", "redact"]

#: Seconds to connect, and to wait for one answer: a lost or frozen Redis is a quick 503.
CONNECT_TIMEOUT: Final = 1.0
COMMAND_TIMEOUT: Final = 2.0
#: Connections to Redis per event loop (one server process): requests in flight at once.
MAX_CONNECTIONS: Final = 1000
#: Records read per round trip when scanning.
_SCAN_CHUNK: Final = 1000

_P = ParamSpec("_P")
_T = TypeVar("_T")

# A record is a msgpack array of its fields (no field names): about 130 bytes.
_FIELDS = msgspec.structs.fields(JobRecord)
_JobTuple: Any = tuple.__class_getitem__(tuple(field.type for field in _FIELDS))
_encode = msgspec.msgpack.Encoder().encode
_decode_job_tuple: Callable[[bytes], tuple[Any, ...]] = msgspec.msgpack.Decoder(_JobTuple).decode
_decode_entry = msgspec.msgpack.Decoder(LedgerEntry).decode


def encode_job(job: JobRecord) -> bytes:
    """A record's compact msgpack form (an array of its fields, in order)."""
    return _encode(msgspec.structs.astuple(job))


def decode_job(data: bytes | str) -> JobRecord:
    """The record :func:`encode_job` encoded (redis-py types its replies ``bytes | str``)."""
    return JobRecord(*_decode_job_tuple(cast(bytes, data)))


# KEYS: jobs, order. ARGV: id, record. A new id is stored and appended to the order.
_ADD = """
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  redis.call('RPUSH', KEYS[2], ARGV[1])
  return 1
end
return 0
"""
# KEYS: jobs. ARGV: id, old record, new record. Swap only if the stored one is still old.
_REPLACE = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
  return 1
end
return 0
"""
# KEYS: jobs, order, ledger, nonces. ARGV: id, record, entry, nonce.
_ADD_PAID = """
if redis.call('SISMEMBER', KEYS[4], ARGV[4]) == 1 then
  return 0
end
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  return 0
end
redis.call('SADD', KEYS[4], ARGV[4])
redis.call('RPUSH', KEYS[3], ARGV[3])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('RPUSH', KEYS[2], ARGV[1])
return 1
"""

# KEYS: versions, blob, counts. ARGV: area, data, if_absent (0/1), then uid, count pairs
# (only for the rules: counters of new rules start, those of dropped rules go).
_WRITE = """
if ARGV[3] == '1' and redis.call('EXISTS', KEYS[2]) == 1 then
  return tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
end
redis.call('SET', KEYS[2], ARGV[2])
if #ARGV > 3 or ARGV[1] == 'rules' then
  local keep = {}
  for i = 4, #ARGV, 2 do
    keep[ARGV[i]] = true
    redis.call('HSETNX', KEYS[3], ARGV[i], ARGV[i + 1])
  end
  for _, uid in ipairs(redis.call('HKEYS', KEYS[3])) do
    if not keep[uid] then redis.call('HDEL', KEYS[3], uid) end
  end
end
return redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
"""
# KEYS: versions, jobs. ARGV: [job id]. Every area's version, then the job (a status poll):
# one command, one round trip. (A missing value ends Redis's reply array: a missing version
# is read as 0, a missing job as None.)
_SYNC = f"""
local found = redis.call('HMGET', KEYS[1], {", ".join(repr(a) for a in AREAS)})
for i = 1, #found do
  if not found[i] then found[i] = '0' end
end
if ARGV[1] then found[#found + 1] = redis.call('HGET', KEYS[2], ARGV[1]) end
return found
"""
_SYNC_SHA = hashlib.sha1(_SYNC.encode()).hexdigest()
# KEYS: counts. ARGV: uid. One firing of a counted rule, if any is left.
_CLAIM = """
local left = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if left <= 0 then return -1 end
return redis.call('HINCRBY', KEYS[1], ARGV[1], -1)
"""

# KEYS: quota. ARGV: account, limit, now, day. The account's window open at ``now`` (a new
# one if none is), and one prompt counted in it if fewer than ``limit`` were: {counted
# (0/1), used, window start}. The start is kept as the text Python sent (exact float).
_TAKE_QUOTA = """
local now = tonumber(ARGV[3])
local start, used = ARGV[3], 0
local found = redis.call('HGET', KEYS[1], ARGV[1])
if found then
  local s, u = string.match(found, '^(%S+) (%d+)$')
  if s and now < tonumber(s) + tonumber(ARGV[4]) then start, used = s, tonumber(u) end
end
if used >= tonumber(ARGV[2]) then return {0, used, start} end
redis.call('HSET', KEYS[1], ARGV[1], start .. ' ' .. (used + 1))
return {1, used + 1, start}
"""
# KEYS: lock. ARGV: token. Give the lock back only if this token still holds it.
_UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
#: Seconds between two tries of a taken lock, at most.
_LOCK_POLL: Final = 0.02


def _window(value: bytes | str | None, now: float, day: float) -> int:
    """The prompts used in a stored quota window (``"START USED"``) still open at ``now``."""
    if value is None:
        return 0
    start, _, used = _text(value).partition(" ")
    return int(used) if now < float(start) + day else 0


def redact(url: str) -> str:
    """``url`` without its password (what errors and logs may show)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _unavailable(
    method: Callable[_P, Coroutine[Any, Any, _T]],
) -> Callable[_P, Coroutine[Any, Any, _T]]:
    """A store operation: real I/O (a virtual clock waits for it), and a lost or timed-out
    connection is a :class:`StoreUnavailable`."""

    @functools.wraps(method)
    async def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _T:
        try:
            with REAL_IO:
                return await method(*args, **kwargs)
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            store = args[0]
            assert isinstance(store, RedisStore)
            raise StoreUnavailable(store.url, str(exc) or type(exc).__name__) from exc

    return wrapper


class RedisStore:
    """A :class:`~mockbankr.store.JobStore` on Redis, shared by every server on it.

    ``prefix`` is the hash tag of every key (``{mockbankr}:jobs``, ...): servers on one
    Redis with the same prefix share one population. A client is made per event loop
    (redis-py's connections belong to the loop that opened them); :meth:`aclose`
    closes the running loop's.

    Example::

        store = await RedisStore.connect("redis://127.0.0.1:6379/0")
    """

    def __init__(self, url: str, *, prefix: str = "mockbankr") -> None:
        if urlsplit(url).scheme not in ("redis", "rediss", "unix"):
            raise ConfigError(f"--store must be memory or redis://host:port/db, got {url!r}")
        self.url = redact(url)
        self._url = url
        tag = "{" + prefix + "}:"
        self.keys = _Keys(tag)
        self._sync_keys = (self.keys.versions, self.keys.jobs)
        self._conns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Conn] = (
            weakref.WeakKeyDictionary()
        )

    @classmethod
    async def connect(cls, url: str, *, prefix: str = "mockbankr") -> RedisStore:
        """A store on ``url``, checked with a PING: an unreachable one is a
        :class:`StoreUnavailable` naming the URL."""
        store = cls(url, prefix=prefix)
        await store.ping()
        return store

    async def _conn(self) -> _Conn:
        """The running event loop's client and scripts (made on first use).

        An async generator holds each one open: the loop closes it on its way out
        (``loop.shutdown_asyncgens()``, which ``asyncio.run`` and every runner call),
        so no connection outlives its loop unclosed.
        """
        conn = self._conns.get(asyncio.get_running_loop())
        return conn if conn is not None else await self._open()

    async def _open(self) -> _Conn:
        conn = self._conns[asyncio.get_running_loop()] = _Conn(self._url)
        await conn.keeper.asend(None)
        return conn

    @_unavailable
    async def ping(self) -> None:
        """Check Redis answers (an unreachable one is a StoreUnavailable naming the URL)."""
        await (await self._conn()).client.ping()

    async def aclose(self) -> None:
        """Close the running loop's client now (the others close with their loops)."""
        conn = self._conns.pop(asyncio.get_running_loop(), None)
        if conn is not None:
            await conn.keeper.aclose()

    @_unavailable
    async def next_seq(self) -> int:
        return int(await (await self._conn()).client.incr(self.keys.seq)) - 1

    @_unavailable
    async def add(self, job: JobRecord) -> bool:
        script = (await self._conn()).add
        keys = [self.keys.jobs, self.keys.order]
        args: list[str | bytes] = [job.id, encode_job(job)]
        return bool(await script(keys=keys, args=args))

    @_unavailable
    async def get(self, job_id: str) -> JobRecord | None:
        fetched = _prefetched.get()
        data: bytes | str | None
        if fetched is not None and fetched[0] == job_id:
            _prefetched.set(None)  # once: a retried compare-and-set reads afresh
            data = fetched[1]
        else:
            data = await (await self._conn()).client.hget(self.keys.jobs, job_id)
        return None if data is None else decode_job(data)

    @_unavailable
    async def replace(self, old: JobRecord, new: JobRecord) -> bool:
        if old.id != new.id:
            return False
        script = (await self._conn()).replace
        args: list[str | bytes] = [old.id, encode_job(old), encode_job(new)]
        return bool(await script(keys=[self.keys.jobs], args=args))

    @_unavailable
    async def scan(
        self, predicate: Callable[[JobRecord], bool], *, offset: int, limit: int
    ) -> tuple[list[JobRecord], int]:
        client = (await self._conn()).client
        page: list[JobRecord] = []
        total = 0
        start = 0
        while True:
            ids = await client.lrange(self.keys.order, start, start + _SCAN_CHUNK - 1)
            if not ids:
                return page, total
            start += len(ids)
            for data in await client.hmget(self.keys.jobs, ids):
                if data is None:  # cleared meanwhile
                    continue
                job = decode_job(data)
                if not predicate(job):
                    continue
                if offset <= total < offset + limit:
                    page.append(job)
                total += 1

    @_unavailable
    async def count(self) -> int:
        return int(await (await self._conn()).client.hlen(self.keys.jobs))

    @_unavailable
    async def add_paid(self, job: JobRecord, payment: LedgerEntry) -> bool:
        script = (await self._conn()).add_paid
        keys = [self.keys.jobs, self.keys.order, self.keys.ledger, self.keys.nonces]
        args: list[str | bytes] = [job.id, encode_job(job), _encode(payment), payment.nonce]
        return bool(await script(keys=keys, args=args))

    @_unavailable
    async def ledger(self) -> list[LedgerEntry]:
        found = await (await self._conn()).client.lrange(self.keys.ledger, 0, -1)
        return [_decode_entry(cast(bytes, data)) for data in found]

    # -- the shared areas (mockbankr.shared.StateBackend) ---------------------------------

    @_unavailable
    async def versions(self, job_id: str | None) -> dict[str, int]:
        conn = await self._conn()
        keys = self._sync_keys
        found = await conn.syncs.submit(keys if job_id is None else (*keys, job_id))
        if job_id is not None:
            _prefetched.set((job_id, found[len(AREAS)] if len(found) > len(AREAS) else None))
        versions = {}
        for name, version in zip(AREAS, found, strict=False):
            if version is not None:
                versions[name] = int(version)
        return versions

    @_unavailable
    async def read(self, area: str) -> tuple[int, bytes | None]:
        pipe = (await self._conn()).client.pipeline(transaction=True)
        pipe.hget(self.keys.versions, area)
        pipe.get(self.keys.area(area))
        version, data = await pipe.execute()
        return int(version or 0), data

    @_unavailable
    async def write(
        self,
        area: str,
        data: bytes,
        *,
        if_absent: bool = False,
        counts: Mapping[str, int] | None = None,
    ) -> int:
        args: list[str | bytes | int] = [area, data, "1" if if_absent else "0"]
        for uid, left in (counts or {}).items():
            args += [uid, left]
        keys = [self.keys.versions, self.keys.area(area), self.keys.counts]
        return int(await (await self._conn()).write(keys=keys, args=args))

    @_unavailable
    async def claim(self, uid: str) -> int:
        return int(await (await self._conn()).claim(keys=[self.keys.counts], args=[uid]))

    @_unavailable
    async def counts(self) -> dict[str, int]:
        found = await (await self._conn()).client.hgetall(self.keys.counts)
        return {_text(uid): int(left) for uid, left in found.items()}

    async def client(self) -> aioredis.Redis:
        """The running event loop's client, for the keys of :mod:`mockbankr.redis_journal`."""
        return (await self._conn()).client

    def request_journal(self, size: int, max_bytes: int) -> RedisJournal:
        """The request journal every server on this Redis writes to and reads."""
        from mockbankr.redis_journal import RedisJournal

        return RedisJournal(self, size, max_bytes)

    # -- the daily-limit windows (mockbankr.limits.QuotaBackend) ------------------------

    @_unavailable
    async def take_quota(
        self, account: str, *, limit: int, now: float, day: float
    ) -> tuple[bool, int, float]:
        script = (await self._conn()).take_quota
        args: list[str | int] = [account, limit, repr(now), repr(day)]
        counted, used, start = await script(keys=[self.keys.quota], args=args)
        return bool(counted), int(used), float(start)

    @_unavailable
    async def quota_used(self, accounts: Sequence[str], now: float, day: float) -> list[int]:
        found = await (await self._conn()).client.hmget(self.keys.quota, list(accounts))
        return [_window(value, now, day) for value in found]

    @_unavailable
    async def clear_quota(self) -> None:
        await (await self._conn()).client.delete(self.keys.quota)

    # -- the control-plane lock (mockbankr.shared.SharedState.exclusive) -------------------

    @_unavailable
    async def lock(self, *, lease: float, wait: float) -> str:
        client = (await self._conn()).client
        token = secrets.token_hex(16)
        deadline = time.monotonic() + wait
        pause = 0.001
        while not await client.set(self.keys.lock, token, nx=True, px=round(lease * 1000)):
            if time.monotonic() >= deadline:
                raise StoreUnavailable(
                    self.url, f"its control-plane lock stayed taken for {wait:g} s"
                )
            await asyncio.sleep(pause)
            pause = min(pause * 2, _LOCK_POLL)
        return token

    @_unavailable
    async def unlock(self, token: str) -> None:
        await (await self._conn()).unlock(keys=[self.keys.lock], args=[token])

    def request_counters(self) -> RedisCounters:
        """Request and fault counters every server on this Redis adds to (the metrics')."""
        return RedisCounters(self)

    @_unavailable
    async def add_counts(self, requests: dict[str, int], faults: dict[str, int]) -> None:
        """Add to the shared request (``"status route"``) and fault counts, in one round trip."""
        pipe = (await self._conn()).client.pipeline(transaction=False)
        for field, count in requests.items():
            pipe.hincrby(self.keys.requests, field, count)
        for field, count in faults.items():
            pipe.hincrby(self.keys.faults, field, count)
        await pipe.execute()

    @_unavailable
    async def read_counts(self) -> tuple[dict[bytes, bytes], dict[bytes, bytes]]:
        """The shared request and fault counts, as Redis holds them."""
        pipe = (await self._conn()).client.pipeline(transaction=False)
        pipe.hgetall(self.keys.requests)
        pipe.hgetall(self.keys.faults)
        requests, faults = await pipe.execute()
        return requests, faults

    @_unavailable
    async def clear_counts(self) -> None:
        await (await self._conn()).client.delete(self.keys.requests, self.keys.faults)

    @_unavailable
    async def clear(self) -> None:
        k = self.keys
        await (await self._conn()).client.delete(k.seq, k.jobs, k.order, k.ledger, k.nonces)


#: A job fetched with the versions, for the same request's first read of it.
_prefetched: contextvars.ContextVar[tuple[str, bytes | None] | None] = contextvars.ContextVar(
    "mockbankr_prefetched", default=None
)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class _Batch:
    """The requests' version reads of one loop iteration, sent as one pipeline.

    Under load many requests are in flight at once; each would pay a command's whole
    client cost (packing, a write, a read, their timeouts). Those that start in the same
    iteration of the event loop share one round trip instead (auto-pipelining).
    """

    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client
        self.pending: list[tuple[tuple[str, ...], asyncio.Future[Any]]] = []

    def submit(self, args: tuple[str, ...]) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        if not self.pending:
            loop.call_soon(self._flush)
        self.pending.append((args, future))
        return future

    def _flush(self) -> None:
        batch, self.pending = self.pending, []
        task = asyncio.ensure_future(self._send(batch))
        _TASKS.add(task)
        task.add_done_callback(_TASKS.discard)

    async def _send(self, batch: list[tuple[tuple[str, ...], asyncio.Future[Any]]]) -> None:
        try:
            with REAL_IO:
                results = await self._execute(batch, "EVALSHA", _SYNC_SHA)
                if any(isinstance(r, NoScriptError) for r in results):  # a restarted Redis
                    results = await self._execute(batch, "EVAL", _SYNC)
        except BaseException as exc:  # the connection is lost: every request learns it
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc if isinstance(exc, Exception) else RuntimeError())
            if not isinstance(exc, Exception):
                raise
            return
        for (_, future), result in zip(batch, results, strict=True):
            if future.done():
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)

    async def _execute(
        self, batch: list[tuple[tuple[str, ...], asyncio.Future[Any]]], command: str, script: str
    ) -> list[Any]:
        pipe = self.client.pipeline(transaction=False)
        for args, _ in batch:
            pipe.execute_command(command, script, 2, *args)
        results: list[Any] = await pipe.execute(raise_on_error=False)
        return results


#: Batches being sent (a task must be referenced until it is done).
_TASKS: set[asyncio.Task[None]] = set()


class _Conn:
    """One event loop's client and its registered scripts."""

    def __init__(self, url: str) -> None:
        # The plain pool (a blocking one costs ~50 us per command): one connection per
        # request in flight, at most MAX_CONNECTIONS (beyond: StoreUnavailable, a 503).
        pool = aioredis.ConnectionPool.from_url(
            url,
            max_connections=MAX_CONNECTIONS,
            socket_connect_timeout=CONNECT_TIMEOUT,
            socket_timeout=COMMAND_TIMEOUT,
            # One attempt: a lost Redis answers 503 now, not after a backoff.
            retry=Retry(NoBackoff(), 0),
        )
        self.client: aioredis.Redis = aioredis.Redis(connection_pool=pool)
        self.command: Callable[..., Coroutine[Any, Any, Any]] = self.client.execute_command
        self.add: AsyncScript = self.client.register_script(_ADD)
        self.replace: AsyncScript = self.client.register_script(_REPLACE)
        self.add_paid: AsyncScript = self.client.register_script(_ADD_PAID)
        self.write: AsyncScript = self.client.register_script(_WRITE)
        self.claim: AsyncScript = self.client.register_script(_CLAIM)
        self.take_quota: AsyncScript = self.client.register_script(_TAKE_QUOTA)
        self.unlock: AsyncScript = self.client.register_script(_UNLOCK)
        self.syncs = _Batch(self.client)
        self.keeper = self._keep()

    async def _keep(self) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            await self.client.aclose()
            await self.client.connection_pool.disconnect()


class _Keys:
    """The Redis key names of one prefix."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.seq = tag + "seq"
        self.jobs = tag + "jobs"
        self.order = tag + "order"
        self.ledger = tag + "ledger"
        self.nonces = tag + "nonces"
        self.versions = tag + "versions"
        self.counts = tag + "rule_left"
        self.requests = tag + "requests"
        self.faults = tag + "faults"
        self.quota = tag + "quota"
        self.lock = tag + "lock"

    def area(self, name: str) -> str:
        return self.tag + "area:" + name


class RedisCounters:
    """:class:`~mockbankr.counters.RequestCounters` on a :class:`RedisStore`'s Redis.

    Every server on the Redis adds to the same two hashes, so a scrape of any one of
    them counts the whole population's requests. Counting stays a dict increment on
    the request's path; the steering layer then awaits :meth:`flush` (one pipelined
    round trip, after the answer is sent). A flush Redis cannot take keeps its counts
    for the next one: a lost Redis loses no count, and answers no request with an error.

    Example::

        counters = store.request_counters()
        counters.count_request("/agent/prompt", 202)
        await counters.flush()
    """

    def __init__(self, store: RedisStore) -> None:
        self._store = store
        self._requests: dict[str, int] = {}
        self._faults: dict[str, int] = {}

    def count_request(self, route: str, status: int) -> None:
        field = f"{status} {route}"
        self._requests[field] = self._requests.get(field, 0) + 1

    def count_fault(self, rule_id: str) -> None:
        self._faults[rule_id] = self._faults.get(rule_id, 0) + 1

    @property
    def flush_due(self) -> bool:
        return bool(self._requests or self._faults)

    async def flush(self) -> None:
        requests, faults = self._requests, self._faults
        if not (requests or faults):
            return
        self._requests, self._faults = {}, {}
        try:
            await self._store.add_counts(requests, faults)
        except StoreUnavailable:  # keep them for the next flush
            for field, count in requests.items():
                self._requests[field] = self._requests.get(field, 0) + count
            for field, count in faults.items():
                self._faults[field] = self._faults.get(field, 0) + count

    async def snapshot(self) -> CounterSnapshot:
        await self.flush()
        requests, faults = await self._store.read_counts()
        snapshot = CounterSnapshot()
        for field, count in requests.items():
            status, _, route = field.decode().partition(" ")
            snapshot.requests[route, int(status)] = int(count)
        for field, count in faults.items():
            snapshot.faults[field.decode()] = int(count)
        return snapshot

    async def clear(self) -> None:
        self._requests.clear()
        self._faults.clear()
        await self._store.clear_counts()
