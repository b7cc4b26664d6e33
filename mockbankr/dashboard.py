"""``GET /__mock/ui``: a live dashboard of one server, a page served by the app itself.

The page (``mockbankr/_dashboard/``: one HTML file, one script, one style sheet, no
build step) loads nothing from anywhere but this server, and reads and steers it
through the very control-plane endpoints a script uses (``/__mock/clock``, ``jobs``,
``journal``, ``ledger``, ``rules``, ``verdicts``), polling them every second.

Protection is the control plane's: without an admin token the page answers loopback
callers only (and :class:`~mockbankr.guard.RequestGuard` checks ``Host`` and
``Origin``, as on every ``/__mock`` path). With ``--admin-token`` the page itself is
served to anyone, since it holds no data: the token is typed into it once, kept in
the tab's ``sessionStorage``, and sent as ``Authorization: Bearer`` on its fetches.
A strict ``Content-Security-Policy`` keeps the page to its own origin.

Example::

    dashboard = Dashboard(control.guard, admin_token=None)
    Route("/__mock/ui", dashboard.page, methods=["GET"])
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Final

from starlette.requests import Request
from starlette.responses import Response

from mockbankr.errors import ApiError

__all__ = ["ASSETS", "Dashboard", "SECURITY_HEADERS"]

Endpoint = Callable[[Request], Awaitable[Response]]

#: The page's files besides ``index.html``, by the name it asks for, with their media types.
ASSETS: Final = {
    "dashboard.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
}

#: Sent with every file of the page: nothing from elsewhere, no framing, no sniffing.
SECURITY_HEADERS: Final = {
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self';"
        " img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}


def _read(name: str) -> bytes:
    return resources.files("mockbankr").joinpath("_dashboard", name).read_bytes()


class Dashboard:
    """The page's two endpoints. ``guard`` is the control plane's check
    (:meth:`~mockbankr.control.ControlApi.guard`), applied unless an admin token
    protects the data instead.

    Example::

        dashboard = Dashboard(control.guard, admin_token=settings.admin_token)
    """

    def __init__(self, guard: Callable[[Endpoint], Endpoint], *, admin_token: str | None) -> None:
        self._files = {name: _read(name) for name in ("index.html", *ASSETS)}
        wrap = guard if admin_token is None else (lambda endpoint: endpoint)
        self.page = wrap(self._page)
        self.asset = wrap(self._asset)

    async def _page(self, request: Request) -> Response:
        return Response(
            self._files["index.html"],
            media_type="text/html; charset=utf-8",
            headers=SECURITY_HEADERS,
        )

    async def _asset(self, request: Request) -> Response:
        name = request.path_params["asset"]
        media = ASSETS.get(name)
        if media is None:
            raise ApiError(404, "Not found", f"The dashboard has no file {name[:80]!r}")
        return Response(self._files[name], media_type=media, headers=SECURITY_HEADERS)
