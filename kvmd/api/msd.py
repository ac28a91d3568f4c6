# SPDX-License-Identifier: GPL-3.0-or-later
"""/api/msd: the virtual drive and its image storage."""

from aiohttp import web

from kvmd.auth.principal import Permission
from kvmd.server.auth import requires
from kvmd.server.errors import json_response
from kvmd.server.keys import MSD

routes = web.RouteTableDef()


@routes.get("/msd")
@requires(Permission.STATE)
async def get_state(request: web.Request) -> web.Response:
    return json_response(request.app[MSD].state())
