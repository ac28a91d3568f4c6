# SPDX-License-Identifier: GPL-3.0-or-later
"""/api/hid: keyboard and mouse state."""

from aiohttp import web

from kvmd.auth.principal import Permission
from kvmd.bus import Topic
from kvmd.server.auth import requires
from kvmd.server.errors import json_response
from kvmd.server.keys import BUS, HID

routes = web.RouteTableDef()


@routes.get("/hid")
@requires(Permission.STATE)
async def get_state(request: web.Request) -> web.Response:
    return json_response(request.app[HID].state())


@routes.get("/hid/keymaps")
@requires(Permission.STATE)
async def get_keymaps(request: web.Request) -> web.Response:
    return json_response(request.app[BUS].state(Topic.HID_KEYMAPS))
