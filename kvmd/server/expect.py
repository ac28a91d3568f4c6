# SPDX-License-Identifier: GPL-3.0-or-later
"""`Expect: 100-continue`, answered without echoing a bad value back.

aiohttp's own handler puts the header's value into its 417 text, and a value that is not
UTF-8 then fails to encode: a 500 with a traceback for one header byte. It runs before any
middleware, so every route gets the handler here, and one last catch-all route takes the
paths no other route has (answering 404 or 405 as aiohttp would), so that they get it too.
"""

from aiohttp import HttpVersion11, hdrs, web

from kvmd.auth.principal import Access
from kvmd.server.auth import requires


async def expect_handler(request: web.Request) -> None:
    if request.version != HttpVersion11:
        return  # only HTTP/1.1 clients wait for the interim answer
    if request.headers.get(hdrs.EXPECT, "").lower() != "100-continue":
        raise web.HTTPExpectationFailed(text="Unknown Expect")
    await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    request.writer.output_size = 0  # the interim answer is no part of the response's size


@requires(Access.PUBLIC)
async def unrouted(request: web.Request) -> web.StreamResponse:
    """404, or 405 with `Allow` when another route has the path: aiohttp's own answers."""
    own = request.match_info.route.resource
    allowed: set[str] = set()
    for resource in request.app.router.resources():
        if resource is not own:
            (_, methods) = await resource.resolve(request)
            allowed |= methods
    if allowed:
        raise web.HTTPMethodNotAllowed(request.method, allowed)
    raise web.HTTPNotFound


def add_unrouted(app: web.Application) -> None:
    """Call last: the catch-all must come after every other route."""
    app.router.add_route(hdrs.METH_ANY, "/{path:.*}", unrouted, expect_handler=expect_handler)
