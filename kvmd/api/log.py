# SPDX-License-Identifier: GPL-3.0-or-later
"""/api/log: the daemon's log as text, optionally followed."""

from aiohttp import web

from kvmd.auth.principal import Permission
from kvmd.server.auth import requires
from kvmd.server.keys import LOG_READER
from kvmd.server.params import parse_params
from kvmd.server.streaming import FollowQuery, stream_lines

routes = web.RouteTableDef()


@routes.get("/log")
@requires(Permission.LOGS)
async def get_log(request: web.Request) -> web.StreamResponse:
    query = parse_params(request.query, FollowQuery)
    reader = request.app[LOG_READER]
    reader.check_enabled()
    return await stream_lines(request, reader.lines(query.seek, query.follow))
