"""Fault rules: a match plus an action, as plain validated data.

A rule posted as JSON (or written in a TOML rules file, same keys)::

    {"match": {"method": "GET", "path": "/agent/job/*"},
     "action": {"respond": {"status": 503,
                            "body": {"error": "Service unavailable", "message": "Try again"}}},
     "times": 2}

Match keys (an absent key matches anything): ``method``, ``path`` (a glob),
``prompt`` (a regex searched in the prompt), ``key`` (the API key), ``wallet``
(the x402 wallet) and ``category`` (the prompt's timing category).

Exactly one action key: ``respond {status, body, headers}``, ``delay {seconds}``,
``hang {seconds?}``, ``drop {}``, ``malformed {}``, or ``job {outcome, error,
latency, category, after}`` which shapes the job a matching prompt creates.
``times`` limits how often a rule fires; ``probability`` fires it at random
(seeded). Rules are evaluated in order and the first that fires wins.
"""

from __future__ import annotations

import fnmatch
import random
import re
import secrets
import tomllib
from collections.abc import Awaitable, Callable, Collection, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, NamedTuple

import msgspec
import re2

from mockbankr.errors import ConfigError, FixtureError, UnknownCategory
from mockbankr.validate import (
    AFTER,
    DELAY,
    FAULT_STATUS,
    LATENCY,
    MAX_DELAY_SECONDS,
    PROBABILITY,
    RESPOND_STATUS,
    TIMES,
    Bound,
    parse_float,
    parse_int,
)

__all__ = [
    "Action",
    "DIRECTIVE_HEADERS",
    "FRAMING_HEADERS",
    "JobShape",
    "MAX_PATTERN_LENGTH",
    "Match",
    "PROMPT_PATHS",
    "RULE_ID_PATTERN",
    "Request",
    "Rule",
    "RuleSet",
    "check_categories",
    "compile_prompt_pattern",
    "load_rules_file",
    "parse_rule",
    "unknown_categories",
]

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 field name
_FIELD_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")  # no CR, LF or other controls

#: How many (method, key) pairs :meth:`RuleSet.candidates` remembers before starting over.
_INDEX_SIZE = 1024

#: The paths whose request body is read for a ``prompt`` or ``category`` match.
PROMPT_PATHS = ("/agent/prompt", "/v2/prompt")

#: The ``X-Mockbankr-*`` request headers there are, as ASGI gives their names.
DIRECTIVE_HEADERS = frozenset(
    {b"x-mockbankr-fault", b"x-mockbankr-outcome", b"x-mockbankr-latency"}
)
_DIRECTIVES = frozenset(name.decode() for name in DIRECTIVE_HEADERS)

#: A rule id: a letter or digit, then up to 63 letters, digits, ``.``, ``_``, ``~`` or ``-``.
#: Every such id is one path segment (never ``.`` or ``..``, never a ``/``), so
#: ``DELETE /__mock/rules/{id}`` reaches every rule. The OpenAPI document says the same.
RULE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._~-]{0,63}$"
_RULE_ID = re.compile(RULE_ID_PATTERN)

#: How long a ``hang`` lasts at most, in simulated seconds, unless it says otherwise.
HANG_CAP = MAX_DELAY_SECONDS

#: The longest ``match.prompt`` regex accepted, in characters.
MAX_PATTERN_LENGTH = 1000

#: The headers a ``respond`` action may not set: they frame the response, which is
#: the server's job (a wrong one breaks the connection for the next request).
FRAMING_HEADERS = frozenset({"content-length", "transfer-encoding", "connection"})

#: Every number in a rule: where it sits, its bound, and whether it is an integer.
_NUMBERS: tuple[tuple[tuple[str, ...], Bound, bool], ...] = (
    (("times",), TIMES, True),
    (("probability",), PROBABILITY, False),
    (("action", "respond", "status"), RESPOND_STATUS, True),
    (("action", "delay", "seconds"), DELAY, False),
    (("action", "hang", "seconds"), DELAY, False),
    (("action", "job", "latency"), LATENCY, False),
    (("action", "job", "after"), AFTER, False),
)


def _re2_options() -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # a bad pattern is the caller's 400, not a log line
    options.max_mem = 8 << 20  # bounds the automaton: a huge pattern fails to compile
    return options


_RE2_OPTIONS = _re2_options()


def compile_prompt_pattern(pattern: str, *, where: str = "rule") -> Any:
    """Compile a ``match.prompt`` regex with RE2, which matches in linear time.

    A pattern cannot stall the server however it is written. The price: RE2 has no
    backreferences (``\\1``) and no lookaround (``(?=``, ``(?<=``); such a pattern is
    a :class:`ConfigError` that says so.

    Example::

        compile_prompt_pattern("(a+)+$").search("a" * 35 + "!") is None
    """
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise ConfigError(f"{where}: match.prompt is longer than {MAX_PATTERN_LENGTH} characters")
    try:
        return re2.compile(pattern, _RE2_OPTIONS)
    except re2.error as exc:
        detail = exc.args[0] if exc.args else ""
        if isinstance(detail, bytes):
            detail = detail.decode("utf-8", "replace")
        raise ConfigError(
            f"{where}: match.prompt cannot be compiled by RE2, the linear-time regex engine"
            f" mockbankr matches prompts with ({detail}); backreferences and lookarounds"
            " are not supported"
        ) from None


def _checked_numbers(raw: Any, where: str) -> Any:
    """``raw`` with every number of :data:`_NUMBERS` validated (a copy where changed)."""
    if not isinstance(raw, dict):
        return raw
    out = dict(raw)
    for path, bound, integer in _NUMBERS:
        parents = [out]
        for name in path[:-1]:
            child = parents[-1].get(name)
            if not isinstance(child, dict):
                break
            parents.append(dict(child))
        else:
            leaf = path[-1]
            if parents[-1].get(leaf) is not None:
                field = f"{where}: {'.'.join(path)}" if where != "rule" else ".".join(path)
                if isinstance(parents[-1][leaf], str):  # JSON and TOML have numbers
                    raise ConfigError(f"{field}: expected a number, got a string")
                parse = parse_int if integer else parse_float
                parents[-1][leaf] = parse(parents[-1][leaf], field, bound)
                for depth in range(len(path) - 1, 0, -1):  # put the copies back in place
                    parents[depth - 1][path[depth - 1]] = parents[depth]
    return out


Outcome = Literal["completed", "failed", "stuck", "regress", "vanish"]


class _Strict(msgspec.Struct, forbid_unknown_fields=True, frozen=True, omit_defaults=True):
    pass


class Match(_Strict, frozen=True):
    """Which requests a rule applies to; every given key must match."""

    method: str | None = None
    path: str | None = None
    prompt: str | None = None
    key: str | None = None
    wallet: str | None = None
    category: str | None = None


class Respond(_Strict, frozen=True):
    status: int
    body: Any = None
    headers: dict[str, str] = {}


class Delay(_Strict, frozen=True):
    seconds: float


class Hang(_Strict, frozen=True):
    seconds: float = HANG_CAP


class Empty(_Strict, frozen=True):
    pass


class JobShape(_Strict, frozen=True):
    """How a matching prompt's job behaves.

    ``outcome``: ``completed`` or ``failed`` (with ``error``) force the result;
    ``stuck`` stays processing forever; ``regress`` answers ``pending`` once more
    on a single poll during processing; ``vanish`` answers 404 ``after`` seconds.
    ``latency`` fixes the total time (seconds), ``category`` the timing category.
    """

    outcome: Outcome | None = None
    error: str | None = None
    latency: float | None = None
    category: str | None = None
    after: float | None = None


class Action(_Strict, frozen=True):
    """Exactly one of these keys."""

    respond: Respond | None = None
    delay: Delay | None = None
    hang: Hang | None = None
    drop: Empty | None = None
    malformed: Empty | None = None
    job: JobShape | None = None

    @property
    def kind(self) -> str:
        return next(name for name in self.__struct_fields__ if getattr(self, name) is not None)


class Rule(_Strict, frozen=True):
    """A match, an action, and how often it may fire."""

    match: Match = Match()
    action: Action = Action()
    times: int | None = None
    probability: float | None = None
    id: str | None = None


class Request(msgspec.Struct, frozen=True):
    """What a rule can see of a request."""

    method: str
    path: str
    key: str | None = None
    wallet: str | None = None
    prompt: str | None = None
    category: str | None = None


def parse_rule(raw: Any, *, where: str = "rule") -> Rule:
    """Validate one rule; raise :class:`ConfigError` naming the offending key."""
    action = raw.get("action") if isinstance(raw, dict) else None
    if isinstance(action, dict) and (nulls := sorted(k for k, v in action.items() if v is None)):
        # Not "no action": the one key of an action is the action, so it needs a value.
        raise ConfigError(f"{where}: action.{nulls[0]} is null; an action is an object")
    raw = _checked_numbers(raw, where)
    try:
        rule = msgspec.convert(raw, Rule)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    kinds = [name for name in Action.__struct_fields__ if getattr(rule.action, name) is not None]
    if len(kinds) != 1:
        raise ConfigError(
            f"{where}: action needs exactly one of {', '.join(Action.__struct_fields__)}"
            f" (got {', '.join(kinds) or 'none'})"
        )
    if rule.id is not None and not _RULE_ID.fullmatch(rule.id):
        raise ConfigError(
            f"{where}: id must be a letter or digit, then at most 63 letters, digits, '.', '_',"
            f" '~' or '-', got {rule.id[:80]!r}"
        )
    if rule.match.prompt is not None:
        compile_prompt_pattern(rule.match.prompt, where=where)
    action = rule.action
    if action.respond is not None:
        for name, value in action.respond.headers.items():
            if not _TOKEN.fullmatch(name) or not _FIELD_VALUE.fullmatch(value):
                raise ConfigError(
                    f"{where}: respond.headers {name[:80]!r}: a header needs a token name and a"
                    " printable Latin-1 value without line breaks"
                )
            if name.lower() in FRAMING_HEADERS:
                raise ConfigError(
                    f"{where}: respond.headers {name!r}: mockbankr frames the response itself;"
                    " Content-Length, Transfer-Encoding and Connection cannot be set"
                )
    shape = action.job
    if shape is not None:
        if shape.error is not None and shape.outcome not in (None, "failed"):
            raise ConfigError(f"{where}: job.error only goes with outcome 'failed'")
        if shape.after is not None and shape.outcome != "vanish":
            raise ConfigError(f"{where}: job.after only goes with outcome 'vanish'")
    return rule


def load_rules_file(path: Path) -> list[Rule]:
    """Rules from a TOML file: ``[[rules]]`` tables with the same keys as the JSON."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise FixtureError(f"cannot read the rules file ({exc.strerror})", path=str(path)) from exc
    except tomllib.TOMLDecodeError as exc:
        raise FixtureError(f"invalid TOML ({exc})", path=str(path)) from exc
    unknown = set(raw) - {"rules"}
    if unknown:
        raise FixtureError("unknown top-level key", path=str(path), key=sorted(unknown)[0])
    rules = raw.get("rules", [])
    if not isinstance(rules, list):
        raise FixtureError("must be an array of tables ([[rules]])", path=str(path), key="rules")
    out = []
    for i, item in enumerate(rules):
        try:
            out.append(parse_rule(item, where=f"rules[{i}]"))
        except ConfigError as exc:
            message = str(exc).removeprefix(f"rules[{i}]: ")  # the key is given apart
            raise FixtureError(message, path=str(path), key=f"rules[{i}]") from exc
    return out


def unknown_categories(
    rule: Rule, categories: Collection[str]
) -> list[tuple[str, UnknownCategory]]:
    """The keys of ``rule`` that name a category outside ``categories``, with the error.

    Example::

        unknown_categories(rule, table.categories)  # [("match.category", UnknownCategory(...))]
    """
    known = tuple(categories)
    job = rule.action.job
    named = (
        ("match.category", rule.match.category),
        ("action.job.category", job.category if job is not None else None),
    )
    return [
        (key, UnknownCategory(category, known=known))
        for key, category in named
        if category is not None and category not in categories
    ]


def check_categories(rules: Sequence[Rule], categories: Collection[str], *, source: str) -> None:
    """Refuse rules naming a category the timing table lacks, before any request.

    Raises :class:`~mockbankr.errors.FixtureError` naming ``source`` (the rules
    file), the rule and the key.

    Example::

        check_categories(load_rules_file(path), table.categories, source=str(path))
    """
    for i, rule in enumerate(rules):
        for key, error in unknown_categories(rule, categories):
            raise FixtureError(str(error), path=source, key=f"rules[{i}].{key}") from error


def _literal_prefix(glob: str) -> str:
    """The part of a path glob before its first wildcard: every path it matches starts so."""
    return re.split(r"[*?\[]", glob, maxsplit=1)[0]


class _Compiled:
    """A rule with its matchers compiled and its remaining count.

    ``prefixes``: every path the rule can match starts with one of them (``""``: any
    path). A rule that reads the prompt can only match the prompt paths.
    """

    __slots__ = ("key", "method", "path", "prefixes", "prompt", "remaining", "rule", "uid")

    def __init__(self, rule: Rule, uid: str | None = None) -> None:
        self.rule = rule
        self.remaining = rule.times
        #: Names this rule's ``times`` counter in a shared store: unique per added rule.
        self.uid = uid or secrets.token_hex(8)
        m = rule.match
        self.method = m.method.upper() if m.method is not None else None
        self.key = m.key
        self.path = re.compile(fnmatch.translate(m.path)) if m.path is not None else None
        self.prompt = compile_prompt_pattern(m.prompt) if m.prompt is not None else None
        self.prefixes: tuple[str, ...]
        if m.path is not None:
            self.prefixes = (_literal_prefix(m.path),)
        elif m.prompt is not None or m.category is not None:
            self.prefixes = PROMPT_PATHS
        else:
            self.prefixes = ("",)

    def matches(self, req: Request) -> bool:
        m = self.rule.match
        return (
            (self.method is None or self.method == req.method)
            and req.path.startswith(self.prefixes)
            and (self.path is None or self.path.match(req.path) is not None)
            and (m.key is None or m.key == req.key)
            and (m.wallet is None or (req.wallet or "").lower() == m.wallet.lower())
            and (m.category is None or m.category == req.category)
            and (
                self.prompt is None
                or (req.prompt is not None and self.prompt.search(req.prompt) is not None)
            )
        )


class _Exported(msgspec.Struct):
    next: int
    rules: list[tuple[str, Rule]]


def _reads_prompt(compiled: _Compiled) -> bool:
    match = compiled.rule.match
    return match.prompt is not None or match.category is not None


def _listed(compiled: _Compiled) -> dict[str, Any]:
    return {**msgspec.to_builtins(compiled.rule), "remaining": compiled.remaining}


class _Candidates(NamedTuple):
    """The rules a (method, key) could match, and the union of their path prefixes."""

    rules: list[_Compiled]
    prefixes: tuple[str, ...]


class RuleSet:
    """The ordered rules of one server, with their ``times`` counters.

    Example::

        rules = RuleSet(random.Random(0))
        rule_id = rules.add(parse_rule({"match": {"method": "GET"}, "action": {"drop": {}}}))
        rules.pick(Request("GET", "/agent/job/x"))
    """

    def __init__(self, rng: random.Random, initial: list[Rule] | None = None) -> None:
        self._rng = rng
        self._initial = list(initial or [])
        self._rules: list[_Compiled] = []
        self._by_id: dict[str, _Compiled] = {}
        self._index: dict[tuple[str, str | None], _Candidates] = {}
        self._next_id = 1
        self._prompt_rules = 0  # how many rules read the prompt (match.prompt or .category)
        self.needs_prompt = False
        #: Whether there is any rule at all: the steering layer's first, cheapest test.
        self.active = False
        #: Counts the changes made here (add, remove, clear, reset), not :meth:`load`.
        self.revision = 0
        #: Takes one firing of a counted rule (its ``uid``) from a shared counter: the new
        #: count, or -1 when none is left. ``None``: this set counts alone (:meth:`pick`).
        self.claim: Callable[[str], Awaitable[int]] | None = None
        self.reset()

    def reset(self) -> None:
        """Back to the rules the server started with."""
        self.clear()
        self._next_id = 1
        for rule in self._initial:
            self.add(rule)

    def __len__(self) -> int:
        return len(self._rules)

    def add(self, rule: Rule) -> str:
        """Append a rule and return its id (given, or ``r1``, ``r2`` ...).

        Amortised O(1) whatever the number of rules: the ids are a dict, and the
        per-(method, key) index is rebuilt lazily, on the next request that needs it.
        """
        taken = self._by_id
        if rule.id is not None and rule.id in taken:
            raise ConfigError(f"a rule with id {rule.id!r} exists already")
        while rule.id is None and f"r{self._next_id}" in taken:  # a given id took it
            self._next_id += 1
        rule_id = rule.id or f"r{self._next_id}"
        self._next_id += 1
        compiled = _Compiled(msgspec.structs.replace(rule, id=rule_id))
        self._rules.append(compiled)
        taken[rule_id] = compiled
        if _reads_prompt(compiled):
            self._prompt_rules += 1
        self._changed()
        return rule_id

    def remove(self, rule_id: str) -> bool:
        compiled = self._by_id.pop(rule_id, None)
        if compiled is None:
            return False
        self._rules.remove(compiled)
        if _reads_prompt(compiled):
            self._prompt_rules -= 1
        self._changed()
        return True

    def clear(self) -> None:
        self._rules = []
        self._by_id = {}
        self._prompt_rules = 0
        self._changed()

    def _changed(self) -> None:
        self.revision += 1
        if self._index:  # a new dict: the old one's table may have grown large
            self._index = {}
        self.active = bool(self._rules)
        self.needs_prompt = self._prompt_rules > 0

    def describe(self, rule_id: str) -> dict[str, Any] | None:
        """One rule as :meth:`listing` shows it, or ``None`` if there is no such rule."""
        compiled = self._by_id.get(rule_id)
        return None if compiled is None else _listed(compiled)

    def export(self) -> bytes:
        """The rules, their ids and the next id, for :meth:`load` in another server."""
        rules = [(c.uid, c.rule) for c in self._rules]
        return msgspec.msgpack.encode({"next": self._next_id, "rules": rules})

    def load(self, data: bytes, remaining: Mapping[str, int] | None = None) -> None:
        """Take the rules of an :meth:`export` (and the shared ``remaining`` counts by uid)."""
        state = msgspec.msgpack.decode(data, type=_Exported)
        revision = self.revision
        self._rules = [_Compiled(rule, uid) for uid, rule in state.rules]
        self._by_id = {c.rule.id: c for c in self._rules if c.rule.id is not None}
        self._prompt_rules = sum(1 for c in self._rules if _reads_prompt(c))
        self._next_id = state.next
        self._changed()
        self.revision = revision  # loaded, not changed here
        if remaining is not None:
            self.set_remaining(remaining)

    def counted(self) -> dict[str, int]:
        """The ``times`` counters left, by rule uid (rules without ``times`` are not counted)."""
        return {c.uid: c.remaining for c in self._rules if c.remaining is not None}

    def set_remaining(self, remaining: Mapping[str, int]) -> None:
        """Take shared counts (a rule counted elsewhere fired there)."""
        for c in self._rules:
            if c.remaining is not None and c.uid in remaining:
                c.remaining = max(0, remaining[c.uid])

    def listing(self) -> list[dict[str, Any]]:
        """The rules as JSON-ready dicts, each with its ``remaining`` count."""
        return [_listed(c) for c in self._rules]

    def candidates(self, method: str, key: str | None) -> list[_Compiled]:
        """The rules, in order, that a request with this method and API key could match."""
        return self._candidates(method, key).rules

    def could_match(self, method: str, key: str | None, path: str) -> bool:
        """Whether any rule could match a request with this method, API key and path.

        ``False`` is certain, ``True`` only possible. Cached per (method, key), so a
        rule list that cannot match a request (none at all, a hundred rules for other
        keys, methods or paths) costs a dict lookup and one ``str.startswith``.
        """
        return self.active and path.startswith(self._candidates(method, key).prefixes)

    def _candidates(self, method: str, key: str | None) -> _Candidates:
        found = self._index.get((method, key))
        if found is None:
            if len(self._index) >= _INDEX_SIZE:
                self._index.clear()
            rules = [
                c
                for c in self._rules
                if (c.method is None or c.method == method) and (c.key is None or c.key == key)
            ]
            prefixes = tuple(dict.fromkeys(p for c in rules for p in c.prefixes))
            found = self._index[(method, key)] = _Candidates(rules, prefixes)
        return found

    def pick(self, req: Request) -> Action | None:
        """The action of the first rule that matches and fires, counting it down."""
        rule = self.pick_rule(req)
        return None if rule is None else rule.action

    def _firing(self, req: Request) -> Iterator[_Compiled]:
        """The rules that match ``req`` and have firings left, in order, each past its
        ``probability`` draw (drawn lazily: only for the rules looked at)."""
        for compiled in self.candidates(req.method, req.key):
            if compiled.remaining == 0 or not compiled.matches(req):
                continue
            p = compiled.rule.probability
            if p is not None and self._rng.random() >= p:
                continue
            yield compiled

    def pick_rule(self, req: Request) -> Rule | None:
        """The first rule that matches and fires (its ``id`` set), counting it down."""
        for compiled in self._firing(req):
            if compiled.remaining is not None:
                compiled.remaining -= 1
            return compiled.rule
        return None

    async def pick_shared(self, req: Request) -> Rule | None:
        """:meth:`pick_rule`, each firing of a counted rule taken from the shared counter
        (:attr:`claim`) first, so ``times`` holds across every server."""
        claim = self.claim
        if claim is None:
            return self.pick_rule(req)
        for compiled in self._firing(req):
            if compiled.remaining is not None:
                left = await claim(compiled.uid)
                compiled.remaining = max(0, left)
                if left < 0:
                    continue  # spent on another server
            return compiled.rule
        return None


def directive_action(headers: Mapping[str, str]) -> Action | None:
    """The action of ``X-Mockbankr-*`` request headers, for clients that can set them.

    ``X-Mockbankr-Outcome: failed`` (or completed/stuck/regress/vanish),
    ``X-Mockbankr-Latency: 12.5`` (seconds) and ``X-Mockbankr-Fault: 503`` (a status),
    ``hang``, ``drop``, ``malformed`` or ``delay=2``. Next to them, an unknown
    ``X-Mockbankr-*`` header (a typo) is an error.
    """
    unknown = sorted(
        name for name in headers if name.startswith("x-mockbankr-") and name not in _DIRECTIVES
    )
    if unknown:
        raise ConfigError(
            f"unknown directive header {unknown[0]!r}; the directives are"
            " X-Mockbankr-Outcome, X-Mockbankr-Latency and X-Mockbankr-Fault"
        )
    fault = headers.get("x-mockbankr-fault")
    outcome = headers.get("x-mockbankr-outcome")
    latency = headers.get("x-mockbankr-latency")
    if fault is None and outcome is None and latency is None:
        return None
    raw: dict[str, Any]
    if fault is not None:
        fault = fault.strip(" \t").lower()
        if fault[:1].isdigit():  # any digit, so that "²" is named as a bad status
            status = parse_int(fault, "X-Mockbankr-Fault", FAULT_STATUS)
            raw = {"respond": {"status": status, "body": _fault_body(status)}}
        elif fault.startswith("delay="):
            raw = {"delay": {"seconds": parse_float(fault[6:], "X-Mockbankr-Fault delay", DELAY)}}
        elif fault in ("hang", "drop", "malformed"):
            raw = {fault: {}}
        else:
            raise ConfigError(
                "X-Mockbankr-Fault: expected a status, hang, drop, malformed or delay=N,"
                f" got {fault!r}"
            )
    else:
        job: dict[str, Any] = {}
        if outcome is not None:
            job["outcome"] = outcome.strip().lower()
        if latency is not None:
            job["latency"] = parse_float(latency, "X-Mockbankr-Latency", LATENCY)
        raw = {"job": job}
    return parse_rule({"action": raw}, where="X-Mockbankr headers").action


def _fault_body(status: int) -> dict[str, str]:
    if status == 429:
        return {"error": "Rate limit exceeded", "message": "Retry after 60 seconds"}
    if status >= 500:
        return {"error": "Service unavailable", "message": "Injected fault (mockbankr)"}
    return {"error": "Injected fault", "message": f"mockbankr answered {status} on request"}
