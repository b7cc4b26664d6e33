"""Accounts, keys and the quota as plain code (no HTTP): ``mockbankr.accounts``, ``limits``."""

from __future__ import annotations

import random
import socket
from pathlib import Path

import hypothesis
import pytest
from click.testing import CliRunner
from hypothesis import strategies as st

from mockbankr.accounts import ApiKey, Denial, KeyBook, KeyConfig, Plan, load_keys_file, parse_keys
from mockbankr.cli import main
from mockbankr.errors import AccessDenied, ConfigError, DailyLimitExceeded, FixtureError
from mockbankr.limits import DAY, DailyLimit
from mockbankr.settings import Settings

GOOD = """\
[accounts.acme]
plan = "club"

[accounts.broke]
plan = "none"

[[keys]]
key = "bk_agent"
account = "acme"
readOnly = true
dailyLimit = 5
allowedIps = ["127.0.0.1", "10.0.0.0/8"]

[[keys]]
key = "bk_broke"
account = "broke"
"""


def book(config: KeyConfig | None = None) -> KeyBook:
    return KeyBook(config or KeyConfig.default(), rng=random.Random(1))


def denial(run: object) -> Denial:
    with pytest.raises(AccessDenied) as caught:
        run()  # type: ignore[operator]
    return Denial(caught.value.reason)


def test_a_keys_file_gives_accounts_and_keys(tmp_path: Path) -> None:
    path = tmp_path / "keys.toml"
    path.write_text(GOOD, encoding="utf-8")
    config = load_keys_file(path)
    assert [(a.id, a.plan, a.daily_limit) for a in config.accounts] == [
        ("acme", Plan.CLUB, 1000),
        ("broke", Plan.NONE, None),
    ]
    agent = config.keys[0]
    assert (agent.read_only, agent.daily_limit, agent.agent_api_enabled) == (True, 5, True)
    assert config.open is False


@pytest.mark.parametrize(
    ("text", "key", "message"),
    [
        ('[accounts.a]\nplan = "club"\nplna = 1\n', "accounts.a.plna", "unknown key"),
        (
            '[accounts.a]\nplan = "club"\n[[keys]]\nkey = "k"\naccount = "a"\nreadonly = true\n',
            "keys[0].readonly",
            "unknown key",
        ),
        ('wallets = 1\n[accounts.a]\nplan = "club"\n', "wallets", "unknown key"),
        ('[accounts.a]\nplan = "gold"\n', "accounts.a.plan", "Invalid enum value 'gold'"),
        ("[accounts]\n", None, ""),  # an empty file of accounts is fine: no key is valid
        ("accounts = [\n", None, "invalid TOML"),
    ],
)
def test_a_bad_keys_file_names_the_file_and_the_key(
    tmp_path: Path, text: str, key: str | None, message: str
) -> None:
    path = tmp_path / "keys.toml"
    path.write_text(text, encoding="utf-8")
    if text == "[accounts]\n":
        assert load_keys_file(path).keys == ()
        return
    with pytest.raises(FixtureError) as caught:
        load_keys_file(path)
    assert caught.value.path == str(path)
    assert caught.value.key == key
    assert message in str(caught.value)
    assert str(caught.value).startswith(f"{path}: {key}: " if key else f"{path}: ")


def test_an_oversized_or_unreadable_keys_file_is_a_clear_error(tmp_path: Path) -> None:
    big = tmp_path / "big.toml"
    big.write_bytes(b"#" * (2 << 20))
    with pytest.raises(FixtureError, match="larger than"):
        load_keys_file(big)
    with pytest.raises(FixtureError, match="cannot read"):
        load_keys_file(tmp_path / "missing.toml")
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(FixtureError, match="invalid TOML"):
        load_keys_file(binary)


def test_serve_stops_on_a_bad_keys_file_naming_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "keys.toml"
    path.write_text('[accounts.a]\nplan = "club"\ncolour = "red"\n', encoding="utf-8")
    with socket.socket() as busy:  # a server that did not stop first would fail on the port
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        result = CliRunner().invoke(main, ["serve", "--keys", str(path), "--port", port])
    assert result.exit_code == 1
    assert f"{path}: accounts.a.colour: unknown key" in result.output


def test_a_keys_file_contradicts_api_keys_and_daily_limit() -> None:
    keys = parse_keys({"accounts": {}})
    with pytest.raises(ConfigError, match="keys file"):
        Settings(keys=keys, api_keys=frozenset({"bk_1"}))
    with pytest.raises(ConfigError, match="keys file"):
        Settings(keys=keys, daily_limit=5)


def test_the_default_accepts_any_key_as_its_own_account() -> None:
    keys = book()
    one, two = keys.identify("bk_1", client_ip=None), keys.identify("bk_2", client_ip=None)
    assert (one.owner, two.owner) == ("key:bk_1", "key:bk_2")
    assert one.account.plan is None
    assert denial(lambda: keys.identify(None, client_ip=None)) is Denial.KEY_REQUIRED
    assert denial(lambda: keys.identify("", client_ip=None)) is Denial.KEY_REQUIRED
    assert denial(lambda: keys.identify("k" * 257, client_ip=None)) is Denial.INVALID_KEY
    assert denial(lambda: keys.identify("bk 1", client_ip=None)) is Denial.INVALID_KEY


def test_the_api_key_list_accepts_only_its_keys() -> None:
    keys = book(KeyConfig.default(api_keys={"bk_1"}, daily_limit=3))
    assert keys.identify("bk_1", client_ip=None).daily_limit == 3
    assert denial(lambda: keys.identify("bk_2", client_ip=None)) is Denial.INVALID_KEY
    with pytest.raises(ConfigError):
        KeyConfig.default(api_keys={"has space"})


def test_flags_and_plans_are_checked() -> None:
    keys = book(
        parse_keys(
            {
                "accounts": {"a": {"plan": "max-mode"}, "n": {"plan": "none"}},
                "keys": [
                    {"key": "k_off", "account": "a", "agentApiEnabled": False},
                    {"key": "k_ip", "account": "a", "allowedIps": ["10.0.0.0/8", "2001:db8::/32"]},
                    {"key": "k_none", "account": "n", "dailyLimit": 9},
                ],
            }
        )
    )
    off = keys.identify("k_off", client_ip=None)
    assert denial(lambda: keys.check_agent(off)) is Denial.AGENT_API_DISABLED
    for ip in ("127.0.0.1", None, "nonsense", "2001:db9::1"):
        assert denial(lambda ip=ip: keys.identify("k_ip", client_ip=ip)) is Denial.IP_NOT_ALLOWED
    assert keys.identify("k_ip", client_ip="10.2.3.4").daily_limit == 100
    assert keys.identify("k_ip", client_ip="2001:db8::7").key.key == "k_ip"
    none = keys.identify("k_none", client_ip=None)
    assert denial(lambda: keys.check_prompt(none)) is Denial.SUBSCRIPTION_REQUIRED


def test_revoke_and_rotate() -> None:
    keys = book(
        parse_keys(
            {
                "accounts": {"a": {"plan": "club"}},
                "keys": [{"key": "k1", "account": "a", "name": "ci"}],
            }
        )
    )
    successor = keys.rotate("k1")
    assert successor is not None
    assert (successor.account, successor.name) == ("a", "ci")
    assert denial(lambda: keys.identify("k1", client_ip=None)) is Denial.INVALID_KEY
    assert keys.rotate("k1") is None  # no longer active
    assert keys.revoke("nope") is None
    assert keys.revoke(successor.key) is not None
    assert denial(lambda: keys.identify(successor.key, client_ip=None)) is Denial.INVALID_KEY
    keys.reset()
    assert keys.identify("k1", client_ip=None).owner == "account:a"


def test_the_book_stays_bounded() -> None:
    full = tuple(ApiKey(f"k{i}", account=f"k{i}", revoked=True) for i in range(10_000))
    keys = book(KeyConfig(keys=full, open=True))
    with pytest.raises(ConfigError, match="at most 10000 keys"):
        keys.revoke("bk_one_more")


def test_the_quota_is_per_account_over_a_rolling_day() -> None:
    quota = DailyLimit()
    quota.take("a", limit=2, now=100.0)
    quota.take("a", limit=2, now=200.0)
    quota.take("b", limit=2, now=200.0)
    with pytest.raises(DailyLimitExceeded) as caught:
        quota.take("a", limit=2, now=300.0, upgrade=False)
    assert (caught.value.limit, caught.value.used, caught.value.reset_at) == (2, 2, 100.0 + DAY)
    assert caught.value.upgrade is False
    assert quota.used("a", 300.0) == 2
    quota.take("a", limit=3, now=300.0)  # a key with a higher custom limit
    assert quota.used("a", 300.0) == 3
    assert quota.used("a", 100.0 + DAY) == 0
    quota.take("a", limit=2, now=100.0 + DAY)


# -- properties of the shared quota --------------------------------------------------------

QUOTA_KEYS = parse_keys(
    {
        "accounts": {"a": {"plan": "max-mode"}, "b": {"plan": "max-mode"}},
        "keys": [
            {"key": "a_plain", "account": "a"},
            {"key": "a_small", "account": "a", "dailyLimit": 3},
            {"key": "a_big", "account": "a", "dailyLimit": 150},
            {"key": "b_plain", "account": "b", "dailyLimit": 2},
        ],
    }
)

#: (key, seconds to wait before it prompts)
Events = list[tuple[str, float]]
events_strategy = st.lists(
    st.tuples(
        st.sampled_from(["a_plain", "a_small", "a_big", "b_plain"]),
        st.sampled_from([0.0, 1.0, 3600.0, 6 * 3600.0, DAY - 1, DAY]),
    ),
    max_size=160,
)


def play(events: Events) -> list[tuple[str, float, float | None]]:
    """Each prompt's key, time and outcome: ``None`` accepted, else the ``reset_at`` refused."""
    keys, quota = book(QUOTA_KEYS), DailyLimit()
    now, out = 0.0, []
    for key, wait in events:
        now += wait
        caller = keys.identify(key, client_ip=None)
        limit = caller.daily_limit
        assert limit is not None
        refused: DailyLimitExceeded | None = None
        try:
            quota.take(caller.account.id, limit=limit, now=now)
        except DailyLimitExceeded as exc:
            refused = exc
        if refused is None:
            out.append((key, now, None))
            continue
        assert refused.used >= refused.limit == limit
        assert now < refused.reset_at <= now + DAY
        out.append((key, now, refused.reset_at))
    return out


@hypothesis.given(events_strategy)
@hypothesis.settings(max_examples=150, deadline=None)
def test_accounts_do_not_share_a_quota(events: Events) -> None:
    # What account a's keys get does not depend on account b's prompts in between.
    events = [(k, 0.0 if k.startswith("b_") else w) for k, w in events]  # b moves no clock
    only_a = [(k, w) for k, w in events if k.startswith("a_")]
    full = [entry for entry in play(events) if entry[0].startswith("a_")]
    assert full == play(only_a)


@hypothesis.given(events_strategy)
@hypothesis.settings(max_examples=150, deadline=None)
def test_a_refused_key_stays_refused_until_reset_at_then_a_window_opens(events: Events) -> None:
    played = play(events)
    for i, (key, _, reset_at) in enumerate(played):
        if reset_at is None:
            continue
        later = [(at, refused) for k, at, refused in played[i + 1 :] if k == key]
        assert all(refused is not None for at, refused in later if at < reset_at)
        # The account's first prompt at or after resetAt opens a new window: it goes through.
        account = [r for k, at, r in played[i + 1 :] if k[0] == key[0] and at >= reset_at]
        assert account[:1] in ([], [None])


def test_a_custom_limit_below_the_accounts_use_refuses_at_once() -> None:
    # a_plain (100) uses 3 of account a's prompts: a_small (3) is refused, a_big (150) is not.
    played = play([("a_plain", 0.0)] * 3 + [("a_small", 1.0), ("a_big", 0.0)])
    assert [refused is None for _, _, refused in played] == [True, True, True, False, True]
