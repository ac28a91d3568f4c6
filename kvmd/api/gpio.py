# SPDX-License-Identifier: GPL-3.0-or-later
"""/api/gpio: user channels."""

from aiohttp import web

from kvmd.auth.principal import Permission
from kvmd.server.auth import requires
from kvmd.server.errors import json_response
from kvmd.server.keys import GPIO

routes = web.RouteTableDef()


@routes.get("/gpio")
@requires(Permission.STATE)
async def get_state(request: web.Request) -> web.Response:
    return json_response(request.app[GPIO].state())
