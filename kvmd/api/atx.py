# SPDX-License-Identifier: GPL-3.0-or-later
"""/api/atx: the target's power and reset buttons."""

import msgspec
from aiohttp import web

from kvmd.auth.principal import Permission
from kvmd.plugins.atx.base import Button, PowerAction
from kvmd.server.auth import requires
from kvmd.server.errors import json_response
from kvmd.server.keys import ATX
from kvmd.server.params import parse_params

routes = web.RouteTableDef()


class PowerQuery(msgspec.Struct, frozen=True, kw_only=True):
    action: PowerAction
    wait: bool = False


class ClickQuery(msgspec.Struct, frozen=True, kw_only=True):
    button: Button
    wait: bool = False


@routes.get("/atx")
@requires(Permission.STATE)
async def get_state(request: web.Request) -> web.Response:
    return json_response(request.app[ATX].state())


@routes.post("/atx/power")
@requires(Permission.ATX, audit="atx.power")
async def power(request: web.Request) -> web.Response:
    query = parse_params(request.query, PowerQuery)
    await request.app[ATX].power(query.action, wait=query.wait)
    return json_response({})


@routes.post("/atx/click")
@requires(Permission.ATX, audit="atx.click")
async def click(request: web.Request) -> web.Response:
    query = parse_params(request.query, ClickQuery)
    await request.app[ATX].click(query.button, wait=query.wait)
    return json_response({})
