"""The control plane's keys endpoints, ``/__mock/keys*``: read, load, revoke, rotate.

* ``GET /__mock/keys``: the accounts (with the prompts ``used`` in their window now)
  and the keys known now.
* ``PUT /__mock/keys``: load a keys document (the ``--keys`` TOML file's keys, as JSON).
* ``POST /__mock/keys/revoke`` ``{"key": "bk_..."}``: the key answers
  ``401 Invalid API key`` from its next request on.
* ``POST /__mock/keys/rotate`` ``{"key": "bk_...", "newKey"?: "bk_..."}``: a new key
  with the same account, name, flags and limit; the old one is revoked. A ``newKey``
  that is a key already is a 409.

``POST /__mock/reset`` returns to the keys the server started with.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from mockbankr._http import read_json_object
from mockbankr.accounts import MAX_KEY_LENGTH, KeyBook, parse_keys
from mockbankr.clock import Clock
from mockbankr.errors import ApiError, ConfigError, FixtureError
from mockbankr.limits import DailyLimit
from mockbankr.wire import JSONResponse

__all__ = ["KeysControl"]


def _bad(message: str) -> ApiError:
    return ApiError(400, "Invalid request", message)


def _key_field(data: dict[str, Any], name: str, *, required: bool = True) -> str | None:
    if name not in data and not required:
        return None  # left out; a null is no key (the document says string) and a 400
    value = data.get(name)
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_KEY_LENGTH:
        raise _bad(f"{name} must be a string of 1..{MAX_KEY_LENGTH} characters")
    return value


def _only(data: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise _bad(f"unknown key {unknown[0]!r}; use {', '.join(sorted(allowed))}")


class KeysControl:
    """The ``/__mock/keys*`` endpoints over one :class:`~mockbankr.accounts.KeyBook`.

    Example::

        keys = KeysControl(book, quota, clock)
        Route("/__mock/keys/revoke", control.guard(keys.revoke), methods=["POST"])
    """

    def __init__(self, book: KeyBook, quota: DailyLimit, clock: Clock) -> None:
        self.book = book
        self.quota = quota
        self.clock = clock

    async def _listing(self) -> dict[str, Any]:
        data = self.book.to_json()
        accounts = data["accounts"]
        used = await self.quota.usage(accounts, self.clock.now())
        for account_id, account in accounts.items():
            account["used"] = used[account_id]
        return data

    async def get_keys(self, request: Request) -> Response:
        return JSONResponse(await self._listing())

    async def put_keys(self, request: Request) -> Response:
        data = await read_json_object(request)
        try:
            config = parse_keys(data)
        except FixtureError as exc:
            where = f"{exc.key}: " if exc.key else ""
            message = str(exc).removeprefix(f": {exc.key}: " if exc.key else ": ")
            raise _bad(f"{where}{message}") from exc
        self.book.replace(config)
        return JSONResponse(await self._listing())

    async def revoke(self, request: Request) -> Response:
        data = await read_json_object(request)
        _only(data, {"key"})
        key = _key_field(data, "key")
        assert key is not None
        try:
            revoked = self.book.revoke(key)
        except ConfigError as exc:
            raise _bad(str(exc)) from exc
        if revoked is None:
            raise _unknown_key()
        return JSONResponse({"key": revoked.to_json()})

    async def rotate(self, request: Request) -> Response:
        data = await read_json_object(request)
        _only(data, {"key", "newKey"})
        key = _key_field(data, "key")
        new_key = _key_field(data, "newKey", required=False)
        assert key is not None
        try:
            successor = self.book.rotate(key, new_key)
        except ConfigError as exc:
            if new_key == key or any(known.key == new_key for known in self.book.config.keys):
                # Taken: the state, not the request, is in the way (as a rule id that exists).
                raise ApiError(409, "Key exists", str(exc)) from exc
            raise _bad(str(exc)) from exc
        if successor is None:
            raise _unknown_key()
        return JSONResponse({"key": successor.to_json(), "replaced": key})


def _unknown_key() -> ApiError:
    return ApiError(404, "Key not found", "No active API key with that value")
