# SPDX-License-Identifier: GPL-3.0-or-later
"""A permanent redirect from `/x/` and `//x` to `/x`, as PiKVM's server gives.

DMTF's Redfish clients start at `/redfish/v1/`; without this they meet a 404 at once.

aiohttp's `normalize_path_middleware(remove_slash=True, append_slash=False)` does the same,
but only for a request that matched no route (its `SystemRoute`), and it takes any path
that resolves as the target. Here the catch-all `unrouted` route (expect.py) matches every
path, so that middleware would never act, and if it did, every candidate would resolve.
This one asks the same question of the real routes only.
"""

import re

from aiohttp import web
from aiohttp.typedefs import Handler
from yarl import URL

from kvmd.server.expect import unrouted

_SLASHES = re.compile(r"//+")


@web.middleware
async def normalize_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.match_info.handler is unrouted:
        target = await _normal_target(request)
        if target is not None:
            # Encoded as it came: yarl would otherwise re-quote the query (%2F to /).
            raise web.HTTPPermanentRedirect(URL(target, encoded=True))
    return await handler(request)


async def _normal_target(request: web.Request) -> str | None:
    """The first of merged, unslashed, and both, that a real route serves for this method."""
    (path, mark, query) = request.raw_path.partition("?")
    merged = _SLASHES.sub("/", path)
    for candidate in (merged, path.removesuffix("/"), merged.removesuffix("/")):
        # A leading // would leave the host (GHSA-v6wp-4m6f-gcjg); "" is no path.
        if candidate in ("", path) or candidate.startswith("//"):
            continue
        match = await request.app.router.resolve(request.clone(rel_url=candidate))
        if match.http_exception is None and match.handler is not unrouted:
            return candidate + mark + query
    return None
