# SPDX-License-Identifier: GPL-3.0-or-later
"""/api/log: the daemon's log as text, optionally followed."""

from typing import Annotated

import msgspec
from aiohttp import web

from kvmd.auth.principal import Permission
from kvmd.server.auth import requires
from kvmd.server.keys import LOG_READER
from kvmd.server.params import parse_params
from kvmd.server.streaming import stream_lines

routes = web.RouteTableDef()


class LogQuery(msgspec.Struct, frozen=True, kw_only=True):
    seek: Annotated[int, msgspec.Meta(ge=0)] = 0
    follow: bool = False


@routes.get("/log")
@requires(Permission.LOGS)
async def get_log(request: web.Request) -> web.StreamResponse:
    query = parse_params(request.query, LogQuery)
    reader = request.app[LOG_READER]
    reader.check_enabled()
    return await stream_lines(request, reader.lines(query.seek, query.follow))
