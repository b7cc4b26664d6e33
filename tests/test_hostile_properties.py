"""Hostile input, generated: no field, header or rules-file key can make a 5xx.

Every field of every control-plane body (clock, rules with each nested match and action
key, a job's outcome, reset, keys), every ``X-Mockbankr-*`` header and every rules-file
key (through the loader and through ``mockbankr serve --rules``'s own loading) is fed
arbitrary text, numbers (huge integers, floats, inf and nan, negatives, Unicode digits),
nulls, lists and objects. The answer is never a 5xx the client did not ask for, nor an
unhandled exception, and a refused request changes nothing stored (jobs, rules, ledger,
clock, keys). In-process, on a VirtualClock, with bounded examples.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette

from mockbankr import MemoryStore, Settings, VirtualClock, create_app
from mockbankr.cli import _build_app, serve
from mockbankr.errors import ConfigError
from mockbankr.rules import load_rules_file
from mockbankr.testing import SyncClockTransport

KEY = "bk_hostile"
PROMPT = "What is the price of ETH?"

# -- what a hostile client sends -----------------------------------------------------

#: Text that looks like a number to a careless parser, and some that looks like nothing.
TRICKY_TEXT = [
    "",
    " ",
    "²",
    "\u0661\u0662\u0663",  # Arabic-Indic digits: str.isdigit() says yes
    "\u0663.\u0665",
    "1e308",
    "-1",
    "inf",
    "-Infinity",
    "nan",
    "0x10",
    "1_000",
    "9" * 400,
    "1.5",
    " 7 ",
    "+3",
    "null",
    "true",
    "{}",
    "[]",
    "a" * 5000,
    "\x00",
    "hang",
    "drop",
    "delay=inf",
    "completed",
]
NUMBERS = st.one_of(
    st.integers(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.sampled_from([2**31, 2**31 + 1, 2**63, 2**64, -(2**64), 10**400, 0, -1, 1]),
    st.floats(),  # inf, -inf, nan and the subnormals included
    st.sampled_from([math.inf, -math.inf, math.nan, 1e308, -0.0, 5e-324, 0.5]),
)
TEXT = st.one_of(st.text(max_size=40), st.sampled_from(TRICKY_TEXT))
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, TEXT)
#: Any JSON-ish value: scalars, and lists and objects of them (nested a little).
HOSTILE = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=6,
)

EXAMPLES = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,  # one app per test: each example checks its own
    ],
)


def _body(value: Any) -> bytes:
    """JSON as a careless client writes it: ``NaN`` and ``Infinity`` included."""
    return json.dumps(value, allow_nan=True).encode()


def _with(base: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    """A deep copy of ``base`` with ``value`` at ``path`` (created as needed)."""
    out = json.loads(json.dumps(base))
    node = out
    for name in path[:-1]:
        if not isinstance(node.get(name), dict):
            node[name] = {}
        node = node[name]
    node[path[-1]] = value
    return out


# -- the app, and what it stores -----------------------------------------------------


def _app() -> tuple[Starlette, VirtualClock]:
    clock = VirtualClock()
    app = create_app(Settings(seed=1), clock=clock, rng=random.Random(1), store=MemoryStore())
    return app, clock


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    app, clock = _app()
    with httpx.Client(
        transport=SyncClockTransport(app, clock),
        base_url="http://mockbankr.local",
        headers={"X-API-Key": KEY},
        timeout=None,  # a hang or a delay runs on the virtual clock, at once
    ) as client:
        yield client


def stored(http: httpx.Client) -> tuple[Any, ...]:
    """Everything a refused request must leave alone; every read of it answers 200
    (an accepted value must not break a later read, as a huge latency once did)."""
    out = []
    for path in (
        "/__mock/jobs",
        "/__mock/rules",
        "/__mock/ledger",
        "/__mock/clock",
        "/__mock/keys",
    ):
        response = http.get(path)
        assert response.status_code == 200, (path, response.text[:300])
        out.append(response.json())
    return tuple(out)


def _send(http: httpx.Client, method: str, path: str, body: Any) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    return http.request(method, path, content=_body(body), headers=headers)


def _assert_no_5xx_and_nothing_changed_if_refused(
    http: httpx.Client, method: str, path: str, body: Any
) -> None:
    before = stored(http)
    response = _send(http, method, path, body)
    assert response.status_code < 500, (response.status_code, response.text[:300])
    after = stored(http)
    if response.status_code >= 400:
        assert response.json()["message"], response.text  # the error says what it was
        assert after == before
    # Still answering (a rule the example added may steer /_health, never /__mock).
    assert http.get("/__mock/clock").status_code == 200


# -- control-plane bodies ------------------------------------------------------------

CLOCK_FIELDS = [("advance",), ("speed",), ("now",)]


@EXAMPLES
@given(field=st.sampled_from(CLOCK_FIELDS), value=HOSTILE, extra=st.booleans())
def test_no_clock_field_makes_a_5xx(
    http: httpx.Client, field: tuple[str, ...], value: Any, extra: bool
) -> None:
    base: dict[str, Any] = {"advance": 1} if extra else {}
    _assert_no_5xx_and_nothing_changed_if_refused(
        http, "POST", "/__mock/clock", _with(base, field, value)
    )


RULE = {"match": {"method": "GET", "path": "/agent/job/*"}, "action": {"drop": {}}, "times": 1}
RULE_FIELDS = [
    ("match",),
    ("action",),
    ("times",),
    ("probability",),
    ("id",),
    *[("match", name) for name in ("method", "path", "prompt", "key", "wallet", "category")],
    *[("action", name) for name in ("respond", "delay", "hang", "drop", "malformed", "job")],
    ("action", "respond", "status"),
    ("action", "respond", "body"),
    ("action", "respond", "headers"),
    ("action", "respond", "headers", "Retry-After"),
    ("action", "respond", "headers", "Content-Length"),
    ("action", "delay", "seconds"),
    ("action", "hang", "seconds"),
    *[("action", "job", name) for name in ("outcome", "error", "latency", "category", "after")],
    ("unknown",),
]


def _rule_base(field: tuple[str, ...]) -> dict[str, Any]:
    """A valid rule whose action is the one ``field`` lies in (so only the field is bad)."""
    if len(field) >= 2 and field[0] == "action":
        return {"match": RULE["match"], "action": {}, "times": 1}
    return RULE


#: The documented bounds of a rule's numbers (README, "Every number that comes in").
RULE_BOUNDS: list[tuple[tuple[str, ...], float, float]] = [
    (("times",), 1, 2**31),
    (("probability",), 0, 1),
    (("action", "respond", "status"), 200, 599),
    (("action", "delay", "seconds"), 0, 3600),
    (("action", "hang", "seconds"), 0, 3600),
    (("action", "job", "latency"), 0, 365 * 86_400),
    (("action", "job", "after"), 0, 365 * 86_400),
]


def _assert_within_bounds(rule: Any) -> None:
    """Every number of an accepted rule is a finite number within its documented bound."""
    for path, lo, hi in RULE_BOUNDS:
        node = rule
        for name in path:
            node = node.get(name) if isinstance(node, dict) else None
        if node is None:
            continue
        assert isinstance(node, int | float), (path, node)
        assert not isinstance(node, bool), (path, node)
        assert math.isfinite(node), (path, node)
        assert lo <= node <= hi, (path, node)


@EXAMPLES
@given(field=st.sampled_from(RULE_FIELDS), value=HOSTILE)
def test_no_rule_field_makes_a_5xx(http: httpx.Client, field: tuple[str, ...], value: Any) -> None:
    rule = _with(_rule_base(field), field, value)
    if field[:2] == ("action", "respond") and len(field) > 2:
        rule["action"]["respond"].setdefault("status", 503)
    _assert_no_5xx_and_nothing_changed_if_refused(http, "POST", "/__mock/rules", rule)
    for listed in http.get("/__mock/rules").json()["rules"]:
        _assert_within_bounds(listed)


@EXAMPLES
@given(body=HOSTILE)
def test_no_rule_body_at_all_makes_a_5xx(http: httpx.Client, body: Any) -> None:
    _assert_no_5xx_and_nothing_changed_if_refused(http, "POST", "/__mock/rules", body)


OUTCOME_FIELDS = [("outcome",), ("error",), ("finish_in",), ("unknown",)]


@EXAMPLES
@given(field=st.sampled_from(OUTCOME_FIELDS), value=HOSTILE, failed=st.booleans())
def test_no_outcome_field_makes_a_5xx(
    http: httpx.Client, field: tuple[str, ...], value: Any, failed: bool
) -> None:
    job_id = http.post("/agent/prompt", json={"prompt": PROMPT}).json()["jobId"]
    base: dict[str, Any] = {"outcome": "failed", "error": "boom"} if failed else {}
    _assert_no_5xx_and_nothing_changed_if_refused(
        http, "POST", f"/__mock/jobs/{job_id}/outcome", _with(base, field, value)
    )


@EXAMPLES
@given(field=st.sampled_from([("clock",), ("unknown",)]), value=HOSTILE)
def test_no_reset_field_makes_a_5xx(http: httpx.Client, field: tuple[str, ...], value: Any) -> None:
    http.post("/agent/prompt", json={"prompt": PROMPT})  # something a reset would forget
    _assert_no_5xx_and_nothing_changed_if_refused(
        http, "POST", "/__mock/reset", _with({}, field, value)
    )


KEYS = {
    "accounts": {"a": {"plan": "club"}},
    "keys": [{"key": KEY, "account": "a"}, {"key": "bk_second", "account": "a"}],
}
KEY_FIELDS = [
    ("accounts",),
    ("keys",),
    ("unknown",),
    ("accounts", "a"),
    ("accounts", "a", "plan"),
    ("accounts", "a", "wallet"),
    ("accounts", "a", "unknown"),
    *[
        ("keys", 0, name)
        for name in (
            "key",
            "account",
            "name",
            "agentApiEnabled",
            "readOnly",
            "dailyLimit",
            "revoked",
            "allowedIps",
            "unknown",
        )
    ],
]


@EXAMPLES
@given(field=st.sampled_from(KEY_FIELDS), value=HOSTILE)
def test_no_keys_document_field_makes_a_5xx(
    http: httpx.Client, field: tuple[Any, ...], value: Any
) -> None:
    document = json.loads(json.dumps(KEYS))
    if field[0] == "keys" and len(field) == 3:
        document["keys"][0][field[2]] = value
    else:
        document = _with(document, field, value)  # type: ignore[arg-type]
    _assert_no_5xx_and_nothing_changed_if_refused(http, "PUT", "/__mock/keys", document)


@EXAMPLES
@given(
    route=st.sampled_from(["/__mock/keys/revoke", "/__mock/keys/rotate"]),
    field=st.sampled_from([("key",), ("newKey",), ("unknown",)]),
    value=HOSTILE,
)
def test_no_revoke_or_rotate_field_makes_a_5xx(
    http: httpx.Client, route: str, field: tuple[str, ...], value: Any
) -> None:
    _assert_no_5xx_and_nothing_changed_if_refused(
        http, "POST", route, _with({"key": "bk_nobody"}, field, value)
    )


# -- X-Mockbankr-* headers -------------------------------------------------------------


def _header_bytes(text: str, encoding: str) -> bytes:
    raw = text.encode(encoding, "replace")
    return raw.replace(b"\r", b"").replace(b"\n", b"")


TRICKY_NUMBER = st.one_of(NUMBERS.map(str), st.sampled_from(TRICKY_TEXT))
#: A header value as it can arrive on a socket: any bytes but CR and LF. Text in UTF-8 or
#: Latin-1 ("²" is one Latin-1 byte, which the server decodes to a digit), numbers, and
#: numbers where a directive takes one ("delay=...").
HEADER_VALUE = st.one_of(
    st.binary(max_size=60).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"")),
    st.tuples(TEXT, st.sampled_from(["utf-8", "latin-1"])).map(lambda p: _header_bytes(*p)),
    TRICKY_NUMBER.map(lambda n: _header_bytes(n, "latin-1")),
    TRICKY_NUMBER.map(lambda n: _header_bytes("delay=" + n, "latin-1")),
    st.sampled_from([b"500", b"503", b"hang", b"drop", b"malformed", b"delay=2", b"failed"]),
)
DIRECTIVES = ["X-Mockbankr-Fault", "X-Mockbankr-Outcome", "X-Mockbankr-Latency"]
REQUESTS = [("POST", "/agent/prompt"), ("GET", "/agent/job/job_nope"), ("GET", "/_health")]


@settings(EXAMPLES, max_examples=200)  # cheap examples, and many ways to write a number
@given(
    headers=st.dictionaries(
        st.sampled_from(DIRECTIVES)
        | st.sampled_from(DIRECTIVES)  # mostly the directives there are, sometimes a typo
        | st.text("abcxyz-", min_size=1, max_size=8).map(lambda s: f"X-Mockbankr-{s}"),
        HEADER_VALUE,
        min_size=1,
        max_size=3,
    ),
    request=st.sampled_from(REQUESTS),
)
def test_no_directive_header_makes_a_5xx_it_did_not_ask_for(
    http: httpx.Client, headers: dict[str, bytes], request: tuple[str, str]
) -> None:
    method, path = request
    before = stored(http)
    body = {"prompt": PROMPT} if method == "POST" else None
    try:
        response = http.request(method, path, json=body, headers=headers)
    except httpx.RemoteProtocolError:
        # The one way to get no answer is to ask for it: X-Mockbankr-Fault: drop.
        assert headers.get("X-Mockbankr-Fault", b"").strip(b" \t").lower() == b"drop"
        return
    if response.status_code >= 500:
        # Only a fault it asked for: an injected status, or a hang's 504; never a bug.
        assert response.json()["error"] != "Internal server error", response.text
        assert "Injected fault" in response.text or "hang" in response.text, response.text
    after = stored(http)
    if response.status_code == 400:
        assert "X-Mockbankr" in response.json()["message"] or "directive" in response.text
        assert after == before
    assert http.get("/_health").status_code == 200


# -- rules files -----------------------------------------------------------------------


def _toml(value: Any) -> str | None:
    """A TOML value (inline), or ``None`` for what TOML cannot say (null)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # JSON escapes are TOML escapes
    if isinstance(value, list):
        items = [t for t in map(_toml, value) if t is not None]
        return "[" + ", ".join(items) + "]"
    pairs = [(k, _toml(v)) for k, v in value.items()]
    return (
        "{" + ", ".join(f"{json.dumps(k, ensure_ascii=False)} = {t}" for k, t in pairs if t) + "}"
    )


RULES_FILE_FIELDS = [field for field in RULE_FIELDS if field != ("action",)]
NO_SURROGATES = st.text(st.characters(exclude_categories=("Cs",)), max_size=30)
FILE_HOSTILE = st.recursive(
    st.one_of(st.booleans(), NUMBERS, NO_SURROGATES, st.sampled_from(TRICKY_TEXT)),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(NO_SURROGATES, inner, max_size=3),
    max_leaves=6,
)


def _rules_file(tmp: Path, field: tuple[str, ...], value: Any) -> Path:
    rule = _with(_rule_base(field), field, value)
    lines = ["[[rules]]"]
    for name, item in rule.items():
        text = _toml(item)
        if text is not None:
            lines.append(f"{json.dumps(name, ensure_ascii=False)} = {text}")
    path = tmp / "rules.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@EXAMPLES
@given(field=st.sampled_from(RULES_FILE_FIELDS), value=FILE_HOSTILE)
def test_no_rules_file_key_breaks_the_loader_or_serve(
    tmp_path: Path, field: tuple[str, ...], value: Any
) -> None:
    path = _rules_file(tmp_path, field, value)
    # Each refusal is a ConfigError (FixtureError) naming the rules file; anything else
    # (another exception) fails the test.
    loaded: list[Any] = []
    refused = _config_error(lambda: loaded.extend(load_rules_file(path)))
    assert refused is None or "rules" in refused
    for rule in loaded:
        _assert_within_bounds(msgspec.to_builtins(rule))
    # What `mockbankr serve --rules FILE` does before it listens, in-process.
    params = serve.make_context("serve", ["--rules", str(path), "--seed", "1"]).params
    built: list[Any] = []
    refused_by_serve = _config_error(lambda: built.append(_build_app(params)))
    assert refused is None or refused_by_serve is not None  # serve refuses what it refuses
    if refused_by_serve is None:
        assert isinstance(built[0][0], Starlette)
    else:
        assert "rules" in refused_by_serve


def _config_error(call: Callable[[], object]) -> str | None:
    try:
        call()
    except ConfigError as exc:
        return str(exc)
    return None
