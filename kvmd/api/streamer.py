# SPDX-License-Identifier: GPL-3.0-or-later
"""/api/streamer: the video streamer's state."""

from aiohttp import web

from kvmd.auth.principal import Permission
from kvmd.bus import Topic
from kvmd.server.auth import requires
from kvmd.server.errors import json_response
from kvmd.server.keys import BUS, STREAMER

routes = web.RouteTableDef()


@routes.get("/streamer")
@requires(Permission.STATE)
async def get_state(request: web.Request) -> web.Response:
    return json_response(request.app[STREAMER].state())


@routes.get("/streamer/ocr")
@requires(Permission.STATE)
async def get_ocr(request: web.Request) -> web.Response:
    return json_response({"ocr": request.app[BUS].state(Topic.OCR)})
