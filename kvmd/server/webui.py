# SPDX-License-Identifier: GPL-3.0-or-later
"""kvmd's own browser console: static files from the package, served at `/` and `/ui/`.

The files hold no secrets, so they need no credentials; the page itself logs in through
/api/auth/login and everything it shows comes from the public API.
"""

import re
from pathlib import Path

from aiohttp import web

from kvmd.auth.principal import Access
from kvmd.server.auth import requires

WEB_ROOT = Path(__file__).resolve().parent.parent / "web"

# Only plain file names of the kinds the console ships: nothing else in the package leaks.
_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,63}\.(js|css|svg)$")
# Set here, not guessed from the system's mime.types: module scripts need a script type.
_TYPES = {
    "js": "text/javascript; charset=utf-8",
    "css": "text/css; charset=utf-8",
    "svg": "image/svg+xml",
}
_HEADERS = {
    # Revalidate every time (a cheap 304 on loopback or LAN), so an upgrade is never mixed
    # with a cached older module.
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
}
# The console needs nothing from elsewhere: no CDN, no web fonts, no framing by other sites.
_INDEX_HEADERS = {
    **_HEADERS,
    "Content-Type": "text/html; charset=utf-8",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; frame-ancestors 'none'"
    ),
}

routes = web.RouteTableDef()


@routes.get("/")
@requires(Access.PUBLIC)
async def index(_: web.Request) -> web.FileResponse:
    return web.FileResponse(WEB_ROOT / "index.html", headers=_INDEX_HEADERS)


@routes.get("/ui/{name}")
@requires(Access.PUBLIC)
async def asset(request: web.Request) -> web.FileResponse:
    name = request.match_info["name"]
    known = _NAME.match(name)
    path = WEB_ROOT / "ui" / name
    if known is None or not path.is_file():
        raise web.HTTPNotFound
    return web.FileResponse(path, headers={**_HEADERS, "Content-Type": _TYPES[known[1]]})
